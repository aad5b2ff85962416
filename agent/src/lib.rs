//! warrant's daemon crate: `warrantd` (keys, rules, audit, the Unix-socket API), the
//! authority's and the device's operations it performs, and `warrantd demo`. The API's bodies
//! are `warrant-api`'s; the `warrant` command line is `warrant-cli`, which links none of this.

pub mod authority;
pub mod daemon;
pub mod database;
mod demo;
pub mod device;
pub mod doctor;
mod error;
mod files;
pub mod key_signer;
pub mod keyring;
mod locks;
pub mod newest_lists;
pub mod setup;
pub mod system_unit;

pub use error::Error;
