//! Key stores for warrant: one trait, one module per backend.
//!
//! Every backend keeps P-256 device or authority keys, signs SHA-256 digests with them and
//! produces evidence about where they live. The software and PKCS#11 stores are always built
//! (cryptoki loads the PKCS#11 module at run time); backends that link a system library come
//! with cargo features.

#![forbid(unsafe_code)]

mod error;
mod key_name;
mod key_store;
mod pin;
pub mod pkcs11;
mod private_files;
mod reconcile;
pub mod soft;
#[cfg(feature = "tpm")]
pub mod tpm;
#[cfg(feature = "yubikey")]
pub mod yubikey;

pub use error::Error;
pub use key_name::KeyName;
pub use key_store::{EvidencePurpose, KeyInfo, KeyProtection, KeyStore, TpmIdentity};
pub use pin::PinSource;
pub use reconcile::{Reconciled, QUARANTINE_DIR};
