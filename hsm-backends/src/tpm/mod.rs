//! TPM 2.0 key store (feature `tpm`), through tss-esapi 7.7 and the system's tpm2-tss.
//!
//! Keys are ECC P-256 signing keys created under a storage root key (SRK) that is re-derived
//! from the standard template at start; each is kept as its wrapped private and public blobs
//! (`<dir>/<name>.tpmkey`, useless outside this TPM). Signing uses password sessions: an HMAC
//! session per call costs 6-8 ms and protects nothing here. One attestation key (AK) per
//! device certifies keys at enrollment and quotes PCRs into warrants.
//!
//! The settings ([`TpmSettings`]) are built without the feature too, so a configuration that
//! names this backend is refused as missing from the build.

#[cfg(feature = "tpm")]
mod key_blob;
#[cfg(feature = "tpm")]
mod probe;
mod settings;
#[cfg(feature = "tpm")]
mod store;
#[cfg(feature = "tpm")]
mod templates;

/// The tss-esapi this store is built on (for benchmarks against the bare library).
#[cfg(feature = "tpm")]
pub use tss_esapi;

#[cfg(feature = "tpm")]
pub use probe::{probe, TpmFacts};
pub use settings::{QuotePcrs, TpmSettings};
#[cfg(feature = "tpm")]
pub use store::{TpmConfig, TpmKeyStore, DEFAULT_TCTI};
