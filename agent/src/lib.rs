//! warrant's agent crate: the `warrantd` daemon (keys, rules, audit, the Unix-socket API), its
//! client, the authority's and the device's operations, and the `warrant` command line.

pub mod api;
pub mod authority;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod database;
pub mod device;
mod error;
mod files;
pub mod key_signer;
pub mod keyring;
pub mod newest_lists;
pub mod trust_file;

pub use error::Error;
