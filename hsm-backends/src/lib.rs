//! Key stores for warrant: one trait, one module per backend.
//!
//! Every backend keeps P-256 device or authority keys, signs SHA-256 digests with them and
//! produces evidence about where they live. The software store is always built; hardware
//! backends come with cargo features as they land.

mod error;
mod key_name;
mod key_store;
pub mod soft;

pub use error::Error;
pub use key_name::KeyName;
pub use key_store::{KeyInfo, KeyProtection, KeyStore};
