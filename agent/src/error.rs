use std::path::PathBuf;

use thiserror::Error;

/// Why a `warrant` operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// An object was rejected (verification, or an enrollment the authority refuses).
    #[error(transparent)]
    Rejected(#[from] warrant_envelope::Error),
    /// The key store failed.
    #[error(transparent)]
    KeyStore(#[from] warrant_hsm_backends::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file is not what it should be.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The authority refuses the operation (its own rules, not a malformed object).
    #[error("authority refuses: {0}")]
    AuthorityRefuses(String),
    /// An argument is not acceptable.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The process exit code: 1 for a rejection, 2 for usage or I/O errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            // A key that cannot sign is an operational error, not a verdict on an object.
            Error::Rejected(warrant_envelope::Error::Signing(_)) => 2,
            Error::Rejected(_) | Error::AuthorityRefuses(_) => 1,
            _ => 2,
        }
    }

    /// A stable machine-readable name for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Rejected(e) => e.code(),
            Error::KeyStore(_) => "key_store",
            Error::Io { .. } => "io",
            Error::BadFile { .. } => "bad_file",
            Error::AuthorityRefuses(_) => "authority_refuses",
            Error::Usage(_) => "usage",
        }
    }
}
