//! Enrollment challenges for TPM devices, made as TPM credentials.
//!
//! The device shows its EK certificate and attestation key (AK). The authority checks the EK
//! certificate against its EK CA roots and hides the challenge in a TPM2_MakeCredential for that
//! EK and the AK's Name. Only the TPM holding both can run TPM2_ActivateCredential and learn the
//! challenge; the certify in the enrollment must then be by that same AK.

use warrant_attestation::certificate::{chain_to_anchor, Cert};
use warrant_attestation::tpm::{check_attestation_key, make_credential, Credential, TpmPublic};
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
    let ek = Cert::from_der(&identity.ek_certificate).map_err(|e| refuse(format!("EK certificate: {e}")))?;
    chain_to_anchor(&ek, &[], anchors, now).map_err(|e| refuse(format!("EK certificate: {e}")))?;
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
