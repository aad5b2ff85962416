//! X.509 certificates as attestation evidence uses them: parsed strictly (DER), and checked
//! link by link — issuer name, signature, validity — up to a pinned anchor. This is not RFC 5280
//! path validation on purpose: real EK and YubiKey attestation certificates break its rules
//! (critical TPM-specific extensions, missing basicConstraints), and the anchors are pinned.

use der::{Decode, Encode};
use p256::ecdsa::signature::Verifier;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::SignatureScheme;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use crate::AttestationError;

mod extensions;

/// Largest certificate accepted.
pub const MAX_CERTIFICATE: usize = 8 * 1024;
/// Most links walked from a leaf to an anchor.
const MAX_DEPTH: usize = 4;

/// A parsed certificate and its DER bytes.
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    parsed: Certificate,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({})", self.subject())
    }
}

fn invalid(reason: String) -> AttestationError {
    AttestationError::CertificateInvalid(reason)
}

impl Cert {
    /// Parses DER.
    pub fn from_der(der: &[u8]) -> Result<Self, AttestationError> {
        if der.len() > MAX_CERTIFICATE {
            return Err(invalid(format!("certificate of {} bytes is larger than allowed", der.len())));
        }
        let parsed =
            Certificate::from_der(der).map_err(|e| invalid(format!("not a DER X.509 certificate: {e}")))?;
        Ok(Self { der: der.to_vec(), parsed })
    }

    /// Parses PEM (one `CERTIFICATE` block) or, failing that, DER.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, AttestationError> {
        match pem_body(bytes) {
            Some(der) => Self::from_der(&der),
            None => Self::from_der(bytes),
        }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER encoding.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// The subject, as text.
    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate.subject.to_string()
    }

    /// The parsed certificate.
    pub fn parsed(&self) -> &Certificate {
        &self.parsed
    }

    /// The subject public key, DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Result<Vec<u8>, AttestationError> {
        self.parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| invalid(format!("subject public key: {e}")))
    }

    /// Checks that `issuer` signed this certificate: names chain and the signature verifies.
    pub fn check_issued_by(&self, issuer: &Cert) -> Result<(), AttestationError> {
        if self.parsed.tbs_certificate.issuer != issuer.parsed.tbs_certificate.subject {
            return Err(invalid(format!("{} was not issued by {}", self.subject(), issuer.subject())));
        }
        let tbs =
            self.parsed.tbs_certificate.to_der().map_err(|e| invalid(format!("tbsCertificate: {e}")))?;
        let signature = self.parsed.signature.raw_bytes();
        let alg = self.parsed.signature_algorithm.oid.to_string();
        let spki = issuer.public_key_der()?;
        let bad = || {
            invalid(format!(
                "the signature on {} does not verify with {}'s key",
                self.subject(),
                issuer.subject()
            ))
        };
        match alg.as_str() {
            "1.2.840.10045.4.3.2" => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|_| bad())?;
                let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| bad())?;
                key.verify(&tbs, &sig).map_err(|_| bad())
            }
            "1.2.840.10045.4.3.3" => {
                let key = p384::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|_| bad())?;
                let sig = p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| bad())?;
                key.verify(&tbs, &sig).map_err(|_| bad())
            }
            "1.2.840.113549.1.1.11" | "1.2.840.113549.1.1.12" | "1.2.840.113549.1.1.13" => {
                let key = rsa::RsaPublicKey::from_public_key_der(&spki).map_err(|_| bad())?;
                let (scheme, digest) = match alg.as_str() {
                    "1.2.840.113549.1.1.11" => {
                        (rsa::Pkcs1v15Sign::new::<Sha256>(), Sha256::digest(&tbs).to_vec())
                    }
                    "1.2.840.113549.1.1.12" => {
                        (rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), sha2::Sha384::digest(&tbs).to_vec())
                    }
                    _ => (rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), sha2::Sha512::digest(&tbs).to_vec()),
                };
                scheme.verify(&key, &digest, signature).map_err(|_| bad())
            }
            other => {
                Err(invalid(format!("signature algorithm {other} on {} is not supported", self.subject())))
            }
        }
    }

    /// Fails unless `now` (seconds since the epoch) is inside the validity period.
    pub fn check_validity(&self, now: u64) -> Result<(), AttestationError> {
        let validity = &self.parsed.tbs_certificate.validity;
        let from = validity.not_before.to_unix_duration().as_secs();
        let until = validity.not_after.to_unix_duration().as_secs();
        if now < from || now > until {
            return Err(invalid(format!(
                "{} is not valid now (valid {from} to {until}, Unix time)",
                self.subject()
            )));
        }
        Ok(())
    }
}

/// Walks from `leaf` through `intermediates` to one of `anchors`, checking each link's names
/// and signature and every certificate's validity at `now`. Returns the anchor reached.
pub fn chain_to_anchor<'a>(
    leaf: &Cert,
    intermediates: &[Cert],
    anchors: &'a [Cert],
    now: u64,
) -> Result<&'a Cert, AttestationError> {
    let mut current = leaf.clone();
    for _ in 0..MAX_DEPTH {
        current.check_validity(now)?;
        if let Some(anchor) = anchors.iter().find(|a| current.check_issued_by(a).is_ok()) {
            anchor.check_validity(now)?;
            return Ok(anchor);
        }
        match intermediates.iter().find(|c| current.check_issued_by(c).is_ok()) {
            Some(next) => current = next.clone(),
            None => break,
        }
    }
    Err(invalid(format!(
        "{} does not chain to a trusted certificate authority (issuer {})",
        leaf.subject(),
        current.parsed.tbs_certificate.issuer
    )))
}

/// The body of the first PEM `CERTIFICATE` block, if `bytes` hold one.
fn pem_body(bytes: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + text[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Every `CERTIFICATE` block in a PEM file (a bundle of anchors, say).
pub fn certificates_from_pem(bytes: &[u8]) -> Result<Vec<Cert>, AttestationError> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("a PEM file must be text".into()))?;
    let mut out = Vec::new();
    for block in text.split("-----END CERTIFICATE-----") {
        if let Some(at) = block.find("-----BEGIN CERTIFICATE-----") {
            let pem = format!("{}-----END CERTIFICATE-----", &block[at..]);
            out.push(Cert::from_pem_or_der(pem.as_bytes())?);
        }
    }
    if out.is_empty() {
        return Err(invalid("no CERTIFICATE block found".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Cert {
        let bytes = std::fs::read(format!("tests/data/{name}")).unwrap();
        Cert::from_pem_or_der(&bytes).unwrap()
    }

    const NOW: u64 = 1_800_000_000; // 2027

    #[test]
    fn chains_link_by_link_to_a_pinned_anchor() {
        let (root, inter, leaf) =
            (load("test-root-p256.pem"), load("test-intermediate-rsa.pem"), load("test-leaf.pem"));
        // An ECDSA P-256 root signs an RSA intermediate, which signs a P-256 leaf (sha384WithRSA).
        let anchor =
            chain_to_anchor(&leaf, std::slice::from_ref(&inter), std::slice::from_ref(&root), NOW).unwrap();
        assert_eq!(anchor.subject(), "CN=Test EK Root");
        // The intermediate pinned as an anchor is enough on its own.
        chain_to_anchor(&leaf, &[], std::slice::from_ref(&inter), NOW).unwrap();
        // Without the intermediate, or against another root, there is no chain.
        assert!(matches!(
            chain_to_anchor(&leaf, &[], std::slice::from_ref(&root), NOW),
            Err(AttestationError::CertificateInvalid(_))
        ));
        let stranger = load("unrelated-ca.pem");
        assert!(chain_to_anchor(&leaf, std::slice::from_ref(&inter), &[stranger], NOW).is_err());
        // Validity is checked on every link.
        assert!(chain_to_anchor(
            &leaf,
            std::slice::from_ref(&inter),
            std::slice::from_ref(&root),
            4_000_000_000
        )
        .is_err());
        assert!(chain_to_anchor(&leaf, &[inter], &[root], 1_000_000_000).is_err());
    }

    #[test]
    fn authority_info_access_names_the_issuers_certificate() {
        let aia = load("ek-test/aia.pem");
        assert_eq!(
            aia.ca_issuers().unwrap(),
            ["http://ca.example/ek-ca.crt", "ldap://ca.example/ek-ca"],
            "caIssuers only, in order (not the OCSP responder)"
        );
        assert!(load("ek-test/ek.pem").ca_issuers().unwrap().is_empty(), "no extension: none");
    }

    #[test]
    fn a_changed_signature_or_issuer_breaks_the_link() {
        let (inter, leaf) = (load("test-intermediate-rsa.pem"), load("test-leaf.pem"));
        let mut der = leaf.der().to_vec();
        let last = der.len() - 1;
        der[last] ^= 1;
        let forged = Cert::from_der(&der).unwrap();
        assert!(
            matches!(forged.check_issued_by(&inter), Err(AttestationError::CertificateInvalid(m)) if m.contains("does not verify"))
        );
        assert!(
            matches!(inter.check_issued_by(&leaf), Err(AttestationError::CertificateInvalid(m)) if m.contains("was not issued by"))
        );
    }

    #[test]
    fn parsing_is_strict_and_bounded() {
        assert!(Cert::from_der(b"not a certificate").is_err());
        assert!(Cert::from_der(&vec![0x30; MAX_CERTIFICATE + 1]).is_err());
        let leaf = load("test-leaf.pem");
        let mut trailing = leaf.der().to_vec();
        trailing.push(0);
        assert!(Cert::from_der(&trailing).is_err());
        assert!(certificates_from_pem(b"no pem here").is_err());
        let bundle = [
            std::fs::read("tests/data/test-root-p256.pem").unwrap(),
            std::fs::read("tests/data/test-leaf.pem").unwrap(),
        ]
        .concat();
        assert_eq!(certificates_from_pem(&bundle).unwrap().len(), 2);
    }
}
