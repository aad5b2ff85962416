//! Key stores for warrant: one trait, one module per backend.
//!
//! Every backend keeps P-256 device or authority keys, signs SHA-256 digests with them and
//! produces evidence about where they live. The software and PKCS#11 stores are always built
//! (cryptoki loads the PKCS#11 module at run time); backends that link a system library come
//! with cargo features; their settings are always built, so a configuration can name them
//! and be told they are not in this build. [`open`] makes a store from a [`KeyStoreConfig`].

#![forbid(unsafe_code)]

mod clock;
mod config;
mod error;
mod key_cache;
mod key_name;
mod key_store;
mod pin;
pub mod pkcs11;
mod private_files;
mod reconcile;
pub mod soft;
mod sync;
pub mod tpm;
pub mod yubikey;

pub use clock::unix_seconds;
pub use config::{backend, open, Backend, ConfigError, KeyStoreConfig, BACKENDS};
pub use error::Error;
pub use key_name::KeyName;
pub use key_store::{KeyInfo, KeyProtection, KeyStore, TpmIdentity, WarrantScope};
pub use pin::PinSource;
pub use reconcile::{Reconciled, QUARANTINE_DIR};
