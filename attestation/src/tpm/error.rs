use thiserror::Error;

/// Why TPM evidence was refused. Each rejection has its own kind.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TpmError {
    /// A TPM structure could not be decoded.
    #[error("malformed TPM structure: {0}")]
    Malformed(String),
    /// An algorithm or curve this verifier does not handle.
    #[error("unsupported TPM algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// TPMS_ATTEST without TPM_GENERATED_VALUE: the TPM did not make it.
    #[error("TPMS_ATTEST magic is not TPM_GENERATED_VALUE: the TPM did not produce this structure")]
    NotTpmGenerated,
    /// A certify where a quote was expected, or the reverse, or another attestation type.
    #[error("wrong attestation type: expected a {expected}, found {found}")]
    WrongAttestType {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// The signature does not verify with the attestation key.
    #[error("the attestation signature does not verify with the attestation key")]
    SignatureInvalid,
    /// Signature scheme and key type do not go together.
    #[error("a {signature} signature cannot come from a {key} key")]
    SignatureKeyMismatch {
        /// The signature scheme.
        signature: &'static str,
        /// The key type.
        key: String,
    },
    /// The attestation key is not a restricted signing key fixed to its TPM: such a key can sign
    /// forged attestation structures.
    #[error("the attestation key is not a restricted, TPM-fixed signing key (attributes 0x{0:08x}): it could sign forged evidence")]
    AttestationKeyNotRestricted(u32),
    /// extraData is not the expected nonce.
    #[error("the quote or certify was made for another nonce: it does not belong to this operation")]
    NonceMismatch,
    /// The certified key's Name is not the Name of the key presented.
    #[error("the certify is for another key than the one presented")]
    CertifiedNameMismatch,
    /// The certified key lacks a required attribute.
    #[error(
        "the certified key lacks {0}: it is not a TPM-generated, non-duplicable, unrestricted signing key"
    )]
    CertifiedKeyAttributes(&'static str),
    /// The certified key is not the device key.
    #[error("the certified key is not the device key")]
    CertifiedKeyNotDeviceKey,
    /// The supplied PCR values do not match the selection.
    #[error("the PCR values supplied are not exactly the PCRs the quote selects, in its order")]
    PcrCoverage,
    /// The PCR values do not hash to the quote's pcrDigest.
    #[error("the PCR values do not match the quote's PCR digest")]
    PcrDigestMismatch,
    /// A cached quote bound to a status list the verifier does not hold: nothing shows when it
    /// was made.
    #[error("the cached quote is bound to a status list this verifier does not hold (neither its newest nor the previous list of the grant's authority), so nothing shows it is fresh: the device needs the authority's newest status list")]
    QuoteNotFresh,
    /// The AK in the grant could not be read.
    #[error("the grant does not record a usable TPM attestation key: re-enroll the device")]
    NoEnrolledAttestationKey,
    /// An object's Name is computed with SHA-1.
    #[error("the {0}'s Name algorithm is SHA-1: SHA-1 Names can be made to collide, so a certify or a credential could name another object; recreate it with nameAlg SHA-256")]
    WeakNameAlgorithm(&'static str),
    /// The EK certificate asserts cA.
    #[error("the EK certificate is a CA certificate (basicConstraints cA is true): an endorsement key certificate is a leaf; send the TPM's EK certificate")]
    EkCertificateIsCa,
    /// The EK certificate's keyUsage does not allow the EK's use.
    #[error("the EK certificate's keyUsage {0}: an RSA endorsement key certificate allows keyEncipherment")]
    EkKeyUsage(&'static str),
    /// Neither the EK certificate EKU nor the TPM attributes.
    #[error("the certificate is not a TPM EK certificate: it has neither the TCG EK certificate extended key usage (2.23.133.8.1) nor the TPM manufacturer, model and version (2.23.133.2.1/2/3) in a subjectAltName directoryName")]
    NotEkCertificate,
}
