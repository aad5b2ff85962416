//! The `warrant` command-line tool's library: the authority's offline operations, the device's
//! enrollment and signing, trust files, and the demo. The binaries are thin shells over it.

pub mod authority;
pub mod cli;
pub mod device;
mod error;
mod files;
pub mod key_signer;
pub mod trust_file;

pub use error::Error;
