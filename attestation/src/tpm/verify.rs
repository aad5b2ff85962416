//! The checks on a quote and a certify, in the order formats.md lists them.

use subtle::ConstantTimeEq;

use super::attest::{Attested, ClockInfo, PcrBank, TpmAttest};
use super::hash::TpmHash;
use super::pcrs::{check_coverage, pcr_digest, PcrValue};
use super::public::{attributes as attr, TpmPublic};
use super::signature::TpmSignature;
use super::TpmError;

/// What a verified quote establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedQuote {
    /// The attestation key's Name.
    pub signer: Vec<u8>,
    /// The signature as verified (scheme and hash).
    pub signature: TpmSignature,
    /// The PCR selection.
    pub selection: Vec<PcrBank>,
    /// The PCR values, checked against the quote's digest.
    pub pcrs: Vec<PcrValue>,
    /// extraData.
    pub nonce: Vec<u8>,
    /// The TPM's clock.
    pub clock: ClockInfo,
}

/// Fails unless `ak` is a restricted signing key fixed to its TPM, Named with a strong hash.
pub fn check_attestation_key(ak: &TpmPublic) -> Result<(), TpmError> {
    let required = attr::RESTRICTED | attr::SIGN | attr::FIXED_TPM | attr::FIXED_PARENT;
    if !ak.has(required) || ak.has(attr::DECRYPT) {
        return Err(TpmError::AttestationKeyNotRestricted(ak.attributes));
    }
    check_name_alg(ak, "attestation key")
}

/// Fails if `object`'s Name is SHA-1: a certify and a credential bind an object by its Name.
fn check_name_alg(object: &TpmPublic, what: &'static str) -> Result<(), TpmError> {
    if object.name_alg == TpmHash::Sha1 {
        return Err(TpmError::WeakNameAlgorithm(what));
    }
    Ok(())
}

/// Parses and checks what `ak` signed: key, signature, then the nonce when one is expected.
fn signed_attest(
    ak: &TpmPublic,
    attest: &[u8],
    signature: &[u8],
    nonce: Option<&[u8]>,
) -> Result<(TpmAttest, TpmSignature), TpmError> {
    check_attestation_key(ak)?;
    let signature = TpmSignature::parse(signature)?;
    let parsed = TpmAttest::parse(attest)?;
    signature.verify(ak, attest)?;
    if let Some(nonce) = nonce {
        if !bool::from(parsed.extra_data.ct_eq(nonce)) {
            return Err(TpmError::NonceMismatch);
        }
    }
    Ok((parsed, signature))
}

/// Verifies a TPM2_Quote: `ak` restricted, the signature over `attest`, the nonce (when given),
/// and `pcrs` covering exactly the selection and hashing to the quote's pcrDigest.
pub fn verify_quote(
    ak: &TpmPublic,
    attest: &[u8],
    signature: &[u8],
    pcrs: Vec<PcrValue>,
    nonce: Option<&[u8]>,
) -> Result<VerifiedQuote, TpmError> {
    let (parsed, signature) = signed_attest(ak, attest, signature, nonce)?;
    let Attested::Quote { selection, pcr_digest: digest } = parsed.attested else {
        return Err(TpmError::WrongAttestType { expected: "quote", found: "a certify".into() });
    };
    check_coverage(&selection, &pcrs)?;
    // The TPM hashes the PCR values with the signing scheme's hash.
    if !bool::from(pcr_digest(signature.hash, &pcrs).ct_eq(&digest)) {
        return Err(TpmError::PcrDigestMismatch);
    }
    Ok(VerifiedQuote {
        signer: ak.name(),
        signature,
        selection,
        pcrs,
        nonce: parsed.extra_data,
        clock: parsed.clock,
    })
}

/// Verifies a TPM2_Certify of `certified` by `ak` over `nonce`, and that `certified` is a key
/// the TPM generated, cannot export, and may use to sign anything (not restricted), Named with
/// a strong hash.
pub fn verify_certify(
    ak: &TpmPublic,
    attest: &[u8],
    signature: &[u8],
    certified: &TpmPublic,
    nonce: &[u8],
) -> Result<(), TpmError> {
    let (parsed, _) = signed_attest(ak, attest, signature, Some(nonce))?;
    check_name_alg(certified, "certified key")?;
    let Attested::Certify { name } = parsed.attested else {
        return Err(TpmError::WrongAttestType { expected: "certify", found: "a quote".into() });
    };
    if !bool::from(name.ct_eq(&certified.name())) {
        return Err(TpmError::CertifiedNameMismatch);
    }
    for (bit, what) in [
        (attr::FIXED_TPM, "fixedTPM"),
        (attr::FIXED_PARENT, "fixedParent"),
        (attr::SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
        (attr::SIGN, "sign"),
    ] {
        if !certified.has(bit) {
            return Err(TpmError::CertifiedKeyAttributes(what));
        }
    }
    if certified.has(attr::RESTRICTED) || certified.has(attr::DECRYPT) {
        return Err(TpmError::CertifiedKeyAttributes("restricted and decrypt cleared"));
    }
    Ok(())
}
