use std::path::PathBuf;

use thiserror::Error;

/// Why a `warrant` command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An object was rejected (verification, inspection, evidence).
    #[error(transparent)]
    Rejected(#[from] warrant_envelope::Error),
    /// The call to warrantd failed, or warrantd refused it.
    #[error(transparent)]
    Client(#[from] warrant_client::Error),
    /// The HTTP carriage: a gate's or proxy's configuration, or a status list it refused.
    #[error(transparent)]
    Http(#[from] warrant_http::Error),
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `warrant exec`'s command could not be started.
    #[error("cannot run {}: {source}", program.display())]
    Exec {
        /// The command.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// warrantd answered in a form this client does not accept (it checks what it passes on).
    #[error("warrantd's answer is not usable: {0}")]
    UnexpectedAnswer(String),
    /// The YubiKey could not be set up.
    #[cfg(feature = "yubikey")]
    #[error(transparent)]
    KeyStore(#[from] warrant_hsm_backends::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `warrantd demo`, `setup` or `doctor` could not be run.
    #[error(
        "cannot run {} {subcommand}: {source}; `warrant {subcommand}` runs warrantd's (from a source \
         tree: `cargo run --release -- {subcommand}`)",
        program.display()
    )]
    Warrantd {
        /// The warrantd tried.
        program: PathBuf,
        /// Its subcommand.
        subcommand: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A status list's URI gives no path its file can be published at under the directory.
    #[error("status list URI {uri:?} cannot be published under a directory: {reason}")]
    PublishPath {
        /// The list's URI.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// An argument is not acceptable.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The process exit code: 1 for a rejection or refusal, 2 for usage, I/O and other errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            // A key that cannot sign is an operational error, not a verdict on an object.
            Error::Rejected(warrant_envelope::Error::Signing(_)) => 2,
            Error::Rejected(_) => 1,
            Error::Client(warrant_client::Error::Daemon { status: 403 | 422, .. }) => 1,
            _ => 2,
        }
    }

    /// A stable machine-readable name for JSON output.
    pub fn code(&self) -> &str {
        match self {
            Error::Rejected(e) => e.code(),
            Error::Client(e) => e.code(),
            Error::Http(e) => e.code(),
            Error::Listen { .. } => "listen",
            Error::Exec { .. } => "exec",
            Error::UnexpectedAnswer(_) => "unexpected_answer",
            #[cfg(feature = "yubikey")]
            Error::KeyStore(_) => "key_store",
            Error::Io { .. } | Error::Warrantd { .. } => "io",
            Error::BadFile { .. } => "bad_file",
            Error::PublishPath { .. } => "publish_path_unusable",
            Error::Usage(_) => "usage",
        }
    }
}
