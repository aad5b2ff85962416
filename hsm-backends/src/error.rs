use std::path::PathBuf;

use thiserror::Error;

/// Why a key-store operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key name is not acceptable.
    #[error(
        "invalid key name {0:?}: use 1-64 characters from A-Z a-z 0-9 . _ - , not starting with '.' or '-'"
    )]
    InvalidKeyName(String),
    /// A key of that name already exists.
    #[error("key {0:?} already exists")]
    KeyExists(String),
    /// No key of that name.
    #[error("no key named {0:?}")]
    KeyNotFound(String),
    /// A key file or the store directory is readable by others than its owner.
    #[error("{path} has mode {mode:o}: it must be accessible by its owner only (chmod go-rwx)")]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key is sealed with a passphrase and none was given.
    #[error("key {0:?} is sealed with a passphrase: supply it")]
    PassphraseRequired(String),
    /// The passphrase does not open the key (or the sealed file was altered).
    #[error("the passphrase does not unseal key {0:?} (wrong passphrase or altered key file)")]
    WrongPassphrase(String),
    /// The key file is not in the expected format.
    #[error("key file {path} is corrupt: {reason}")]
    CorruptKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A cryptographic primitive failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}
