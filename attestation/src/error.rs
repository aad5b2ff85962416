use thiserror::Error;

use crate::tpm::TpmError;
use crate::{EvidenceKind, EvidencePlace};

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
    /// The evidence is of a kind that belongs in the other place: a TPM quote, or a bare TPM or
    /// YubiKey key, in an enrollment request; a TPM certify or a YubiKey slot attestation in a
    /// warrant.
    #[error("{kind} evidence belongs in {}, not in {place}, which carries {} evidence", place.other(), place.kinds_text())]
    EvidenceMisplaced {
        /// The kind found.
        kind: EvidenceKind,
        /// Where it was found.
        place: EvidencePlace,
    },
    /// The evidence is of another backend than the one the authority appraised at enrollment.
    #[error("evidence is from backend {found:?} but the grant was issued for backend {expected:?}: re-enroll the device")]
    BackendMismatch {
        /// Backend recorded in the grant.
        expected: String,
        /// Backend the evidence claims.
        found: String,
    },
    /// A PKCS#11 token describes itself differently from what the authority recorded at
    /// enrollment (another token, or a changed report).
    #[error("the PKCS#11 token's report differs from the one the authority recorded in the grant: re-enroll the device if its token changed")]
    Pkcs11ReportChanged,
    /// A certificate is malformed or does not chain to a trusted anchor.
    #[error("certificate refused: {0}")]
    CertificateInvalid(String),
    /// A YubiKey PIV attestation was refused.
    #[error("YubiKey PIV attestation refused: {0}")]
    PivAttestationInvalid(String),
    /// The certificate presented as f9 is a FIDO/U2F attestation certificate.
    #[error("the certificate presented as the YubiKey's f9 certificate is a FIDO/U2F attestation certificate (it carries extension {0}), not the PIV attestation intermediate: send the certificate from PIV slot f9")]
    PivF9IsFidoCertificate(String),
    /// The certificate presented as f9 does not have the PIV attestation intermediate's subject.
    #[error("the certificate presented as the YubiKey's f9 certificate has subject {0:?}, not CN=Yubico PIV Attestation (CN=YubiKey PIV Attestation from firmware 5.7.4): send the certificate from PIV slot f9")]
    PivF9Subject(String),
    /// The f9 certificate's basicConstraints make it no issuer of slot certificates.
    #[error("the f9 certificate's basicConstraints forbid what it does ({0}): a PIV attestation intermediate issues slot certificates, so it is a CA with path length 0")]
    PivF9NotCa(String),
    /// The f9 certificate's keyUsage does not allow certificate signing.
    #[error(
        "the f9 certificate's keyUsage lacks keyCertSign: it cannot issue slot attestation certificates"
    )]
    PivF9KeyUsage,
    /// The slot certificate's subject names no PIV slot.
    #[error("the slot certificate's subject {0:?} is not CN=YubiKey PIV Attestation <slot> for a PIV slot: send the output of the YubiKey's attest command (ykman piv keys attest)")]
    PivSlotSubject(String),
    /// The slot certificate claims to be a CA.
    #[error("the slot certificate asserts basicConstraints cA: a slot attestation certificate is a leaf")]
    PivSlotIsCa,
    /// The attested ECDSA key is on firmware with the YSA-2024-03 side channel.
    #[error("the YubiKey's firmware {0} is affected by YSA-2024-03 (ECDSA side channel, fixed in 5.7.0): its ECDSA keys are refused unless the verifier allows them")]
    PivVulnerableFirmware(String),
    /// TPM evidence was refused.
    #[error(transparent)]
    Tpm(#[from] TpmError),
}
