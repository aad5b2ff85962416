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
    /// An EK certificate whose key is not RSA: the credential challenge is made for an RSA EK
    /// only.
    NotRsa(String),
}

impl std::fmt::Display for EkRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EkRefusal::Malformed(reason)
            | EkRefusal::Unchained(reason)
            | EkRefusal::NotEk(reason)
            | EkRefusal::NotRsa(reason) => f.write_str(reason),
        }
    }
}

/// An EK certificate the authority makes a credential challenge for.
#[derive(Debug)]
pub struct CheckedEk<'a> {
    /// The certificate.
    pub cert: Cert,
    /// The root it chains to (doctor names it; read only where the `tpm` feature builds
    /// doctor's TPM checks).
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    pub anchor: &'a Cert,
    /// Its RSA key, which the challenge is encrypted to.
    pub key: rsa::RsaPublicKey,
}

/// Checks an EK certificate as the authority does before it makes a credential challenge for
/// it: it parses, chains to one of `anchors` at `now`, has the EK certificate profile, and
/// its key is RSA. Everything the authority refuses an EK certificate for is here, so that
/// `warrantd doctor` reports the same verdict on the TPM it finds.
pub fn check_ek<'a>(ek_der: &[u8], anchors: &'a [Cert], now: u64) -> Result<CheckedEk<'a>, EkRefusal> {
    use rsa::pkcs8::DecodePublicKey;
    let cert = Cert::from_der(ek_der).map_err(|e| EkRefusal::Malformed(e.to_string()))?;
    let anchor =
        chain_to_anchor(&cert, &[], anchors, now).map_err(|e| EkRefusal::Unchained(e.to_string()))?;
    check_ek_certificate(&cert).map_err(|e| EkRefusal::NotEk(e.to_string()))?;
    let spki = cert.public_key_der().map_err(|e| EkRefusal::Malformed(e.to_string()))?;
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).map_err(|_| {
        EkRefusal::NotRsa("its key is not RSA: only RSA endorsement keys are supported".into())
    })?;
    Ok(CheckedEk { cert, anchor, key })
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
    let ek = check_ek(&identity.ek_certificate, anchors, now)
        .map_err(|e| refuse(format!("EK certificate: {e}")))?;
    let ak = TpmPublic::parse(&identity.ak_public).map_err(|e| refuse(format!("attestation key: {e}")))?;
    check_attestation_key(&ak).map_err(|e| refuse(e.to_string()))?;
    let credential = make_credential(&ek.key, &ak.name(), challenge).map_err(|e| refuse(e.to_string()))?;
    let binding =
        TpmBinding { ak_name: hex::encode(ak.name()), ek_sha256: hex::encode(ek.cert.fingerprint()) };
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
        credential_for(&identity, &[cert("root"), cert("ek-ecc-root")], b"challenge", NOW)
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
        // An EK certificate with the profile, chaining, on a P-256 key.
        assert!(refusal("ek-ecc", SHA256).contains("EK certificate: its key is not RSA"));
    }

    /// What doctor calls is what the authority calls: every certificate the challenge refuses
    /// for its EK, check_ek refuses, and for the same reason.
    #[test]
    fn check_ek_refuses_every_ek_certificate_the_challenge_refuses() {
        let roots = [cert("root"), cert("ek-ecc-root")];
        let checked = check_ek(cert("ek").der(), &roots, NOW).unwrap();
        assert_eq!(checked.anchor.subject(), cert("root").subject());
        for (name, refused) in
            [("ek-ecc", "NotRsa"), ("ek-ca", "NotEk"), ("tls-server", "NotEk"), ("ek-sign-only", "NotEk")]
        {
            let why = check_ek(cert(name).der(), &roots, NOW).unwrap_err();
            assert!(format!("{why:?}").starts_with(refused), "{name}: {why:?}");
            assert!(refusal(name, SHA256).ends_with(&why.to_string()), "{name}: {why}");
        }
        let unchained = check_ek(cert("ek").der(), &roots[1..], NOW).unwrap_err();
        assert!(matches!(unchained, EkRefusal::Unchained(_)), "{unchained:?}");
    }
}
