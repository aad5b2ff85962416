//! TPM 2.0 evidence, verified in pure Rust: the wire structures (TPMT_PUBLIC, TPMS_ATTEST,
//! TPMT_SIGNATURE, tpm2-tools PCR files), Names, certify and quote checks with ECDSA P-256 and
//! RSASSA/RSA-PSS attestation keys, and MakeCredential for the authority.

mod attest;
mod credential;
mod ek;
mod error;
mod evidence;
mod hash;
mod pcrs;
mod public;
mod signature;
mod verify;
mod wire;

pub use attest::{Attested, ClockInfo, PcrBank, TpmAttest};
pub use credential::{make_credential, Credential, MAX_CREDENTIAL};
pub use ek::check_ek_certificate;
pub use error::TpmError;
pub use evidence::{cached_quote_nonce, quote_properties, unquoted, TpmCertifyEvidence, TpmQuoteEvidence};
pub use hash::TpmHash;
pub use pcrs::{parse_pcr_selection, pcr_digest, read_pcr_file, PcrFileFormat, PcrValue, MAX_PCR_VALUES};
pub use public::{attributes, TpmPublic, TpmPublicKey};
pub use signature::{SignatureAlg, TpmSignature};
pub use verify::{check_attestation_key, verify_certify, verify_quote, VerifiedQuote};

#[cfg(test)]
mod tests;
