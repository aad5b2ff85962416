use std::path::PathBuf;

use thiserror::Error;

/// Why a call to warrantd failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The client's I/O runtime could not be started.
    #[error("cannot start the client's I/O runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The request body could not be encoded as JSON.
    #[error("encoding the request to {path}: {source}")]
    Encode {
        /// The API path.
        path: String,
        /// serde_json's reason.
        source: serde_json::Error,
    },
    /// The request could not be built (a path that is not a valid URI).
    #[error("building the request to {path}: {source}")]
    Request {
        /// The API path.
        path: String,
        /// hyper's reason.
        source: hyper::http::Error,
    },
    /// The socket could not be connected to.
    #[error("cannot reach warrantd at {}: {source}", socket.display())]
    Connect {
        /// The socket path tried.
        socket: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (the daemon closed the connection, the answer was too large).
    #[error("talking to warrantd at {}: {reason}", socket.display())]
    Protocol {
        /// The socket path.
        socket: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A successful answer did not have the expected shape.
    #[error("warrantd at {} gave an unexpected answer to {path}: {source}", socket.display())]
    UnexpectedAnswer {
        /// The socket path.
        socket: PathBuf,
        /// The API path.
        path: String,
        /// serde_json's reason.
        source: serde_json::Error,
    },
    /// The daemon answered with an error.
    #[error("warrantd: {message}")]
    Daemon {
        /// HTTP status.
        status: u16,
        /// The error's code (`http` when the answer had no error body).
        code: String,
        /// The error's message.
        message: String,
    },
}

impl Error {
    /// A stable machine-readable name: the daemon's error code, `unreachable` when the daemon
    /// could not be reached or understood, `internal` for the client's own failures.
    pub fn code(&self) -> &str {
        match self {
            Error::Runtime(_) | Error::Encode { .. } | Error::Request { .. } => "internal",
            Error::Connect { .. } | Error::Protocol { .. } | Error::UnexpectedAnswer { .. } => "unreachable",
            Error::Daemon { code, .. } => code,
        }
    }
}
