//! Enrollment challenges for TPM devices, made as TPM credentials.
//!
//! The device shows its EK certificate and attestation key (AK). The authority checks the EK
//! certificate against its EK CA roots and the EK certificate profile (so that no other
//! certificate under those roots passes for an EK), refuses an AK Named with SHA-1, and hides
//! the challenge in a TPM2_MakeCredential for that EK and the AK's Name. Only the TPM holding
//! both can run TPM2_ActivateCredential and learn the challenge; the certify in the enrollment
//! must then be by that same AK.

use warrant_attestation::certificate::{chain_to_anchor, Cert};
use warrant_attestation::tpm::{
    check_attestation_key, check_ek_certificate, make_credential, Credential, TpmPublic,
};
use warrant_hsm_backends::TpmIdentity;

use crate::Error;

/// What the authority keeps with a TPM challenge, to match against the enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmBinding {
    /// The AK's Name, hex.
    pub ak_name: String,
    /// SHA-256 of the EK certificate, hex.
    pub ek_sha256: String,
}

fn refuse(reason: String) -> Error {
    Error::AuthorityRefuses(reason)
}

/// Why [`check_ek`] refuses an EK certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EkRefusal {
    /// It is not a certificate.
    Malformed(String),
    /// It does not chain to the roots (the reason names its issuer).
    Unchained(String),
    /// It chains, but is not an EK certificate (a CA's, a TLS server's, one without
    /// keyEncipherment).
    NotEk(String),
}

impl std::fmt::Display for EkRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EkRefusal::Malformed(reason) | EkRefusal::Unchained(reason) | EkRefusal::NotEk(reason) => {
                f.write_str(reason)
            }
        }
    }
}

/// Checks an EK certificate as the authority does before it makes a credential challenge for
/// it: it parses, chains to one of `anchors` at `now`, and has the EK certificate profile.
/// Returns the certificate and the anchor it chains to (`warrantd doctor` reports the same
/// verdict on the TPM it finds).
pub fn check_ek<'a>(ek_der: &[u8], anchors: &'a [Cert], now: u64) -> Result<(Cert, &'a Cert), EkRefusal> {
    let ek = Cert::from_der(ek_der).map_err(|e| EkRefusal::Malformed(e.to_string()))?;
    let anchor = chain_to_anchor(&ek, &[], anchors, now).map_err(|e| EkRefusal::Unchained(e.to_string()))?;
    check_ek_certificate(&ek).map_err(|e| EkRefusal::NotEk(e.to_string()))?;
    Ok((ek, anchor))
}

/// Checks `identity` against `anchors` and protects `challenge` for it.
pub fn credential_for(
    identity: &TpmIdentity,
    anchors: &[Cert],
    challenge: &[u8],
    now: u64,
) -> Result<(Credential, TpmBinding), Error> {
    if anchors.is_empty() {
        return Err(refuse(
            "no TPM EK CA roots are configured: set [authority] tpm_ek_roots in warrantd's configuration"
                .into(),
        ));
    }
    let (ek, _) = check_ek(&identity.ek_certificate, anchors, now)
        .map_err(|e| refuse(format!("EK certificate: {e}")))?;
    let ak = TpmPublic::parse(&identity.ak_public).map_err(|e| refuse(format!("attestation key: {e}")))?;
    check_attestation_key(&ak).map_err(|e| refuse(e.to_string()))?;
    use rsa::pkcs8::DecodePublicKey;
    let spki = ek.public_key_der().map_err(|e| refuse(format!("EK certificate: {e}")))?;
    let ek_key = rsa::RsaPublicKey::from_public_key_der(&spki).map_err(|_| {
        refuse("the EK certificate's key is not RSA: only RSA endorsement keys are supported".into())
    })?;
    let credential = make_credential(&ek_key, &ak.name(), challenge).map_err(|e| refuse(e.to_string()))?;
    let binding = TpmBinding { ak_name: hex::encode(ak.name()), ek_sha256: hex::encode(ek.fingerprint()) };
    Ok((credential, binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const SHA1: u16 = 0x0004;
    const SHA256: u16 = 0x000B;

    fn cert(name: &str) -> Cert {
        let pem = std::fs::read(format!("../attestation/tests/data/ek-test/{name}.pem")).unwrap();
        Cert::from_pem_or_der(&pem).unwrap()
    }

    /// A restricted ECDSA P-256 signing key's TPMT_PUBLIC (its point is the curve's generator).
    fn ak_public(name_alg: u16) -> Vec<u8> {
        let mut out = vec![0x00, 0x23];
        out.extend(name_alg.to_be_bytes());
        out.extend(0x0005_0072u32.to_be_bytes()); // fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted sign
        out.extend([0, 0, 0x00, 0x10, 0x00, 0x18, 0x00, 0x0B, 0x00, 0x03, 0x00, 0x10, 0x00, 0x20]);
        out.extend(hex::decode("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296").unwrap());
        out.extend([0x00, 0x20]);
        out.extend(hex::decode("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5").unwrap());
        out
    }

    fn challenge(ek: &str, name_alg: u16) -> Result<(Credential, TpmBinding), Error> {
        let identity =
            TpmIdentity { ek_certificate: cert(ek).der().to_vec(), ak_public: ak_public(name_alg) };
        credential_for(&identity, &[cert("root")], b"challenge", NOW)
    }

    fn refusal(ek: &str, name_alg: u16) -> String {
        match challenge(ek, name_alg) {
            Err(Error::AuthorityRefuses(reason)) => reason,
            other => panic!("{ek}: {other:?}"),
        }
    }

    #[test]
    fn a_challenge_is_made_only_for_an_ek_certificate_and_an_ak_not_named_with_sha1() {
        challenge("ek", SHA256).unwrap();
        // Certificates under the EK root that are not EK certificates.
        assert!(refusal("ek-ca", SHA256).contains("is a CA certificate"));
        assert!(refusal("ek-sign-only", SHA256).contains("does not include keyEncipherment"));
        assert!(refusal("tls-server", SHA256).contains("not a TPM EK certificate"));
        // An AK whose Name is SHA-1.
        assert!(refusal("ek", SHA1).contains("attestation key's Name algorithm is SHA-1"));
    }
}
