use thiserror::Error;

use crate::tpm::TpmError;

/// Why a piece of evidence, or a key inside it, was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AttestationError {
    /// The bytes are not a valid uncompressed P-256 point.
    #[error("invalid P-256 public key: {0}")]
    InvalidPublicKey(&'static str),
    /// The evidence structure could not be decoded.
    #[error("malformed evidence: {0}")]
    MalformedEvidence(String),
    /// The evidence names a kind this verifier does not know.
    #[error("unknown evidence kind {0:?}")]
    UnknownEvidenceKind(String),
    /// The evidence is of another backend than the one the authority appraised at enrollment.
    #[error("evidence is from backend {found:?} but the grant was issued for backend {expected:?}: re-enroll the device")]
    BackendMismatch {
        /// Backend recorded in the grant.
        expected: String,
        /// Backend the evidence claims.
        found: String,
    },
    /// A certificate is malformed or does not chain to a trusted anchor.
    #[error("certificate refused: {0}")]
    CertificateInvalid(String),
    /// A YubiKey PIV attestation was refused.
    #[error("YubiKey PIV attestation refused: {0}")]
    PivAttestationInvalid(String),
    /// The attested ECDSA key is on firmware with the YSA-2024-03 side channel.
    #[error("the YubiKey's firmware {0} is affected by YSA-2024-03 (ECDSA side channel, fixed in 5.7.0): its ECDSA keys are refused unless the verifier allows them")]
    PivVulnerableFirmware(String),
    /// TPM evidence was refused.
    #[error(transparent)]
    Tpm(#[from] TpmError),
}
