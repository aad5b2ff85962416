//! A typed client for warrantd's API: HTTP/1.1 over the daemon's Unix socket, one persistent
//! connection, blocking calls (a current-thread runtime inside), JSON in and out. The bodies
//! are [`warrant_api`]'s.
#![forbid(unsafe_code)]

mod error;

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use warrant_api::{ErrorBody, PREFIX};

pub use error::Error;

/// Largest answer read from the daemon.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// The socket to use: `explicit` (from `--socket` or `$WARRANT_SOCKET`), else the user
/// daemon's socket when it exists, else the system daemon's.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_owned();
    }
    let user = warrant_api::socket::user().filter(|p| p.exists());
    user.unwrap_or_else(|| PathBuf::from(warrant_api::socket::SYSTEM))
}

/// A connection to warrantd.
pub struct Client {
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// A client for the daemon at `socket` (connected on first use).
    pub fn new(socket: &Path) -> Result<Self, Error> {
        // I/O only: the client sets no timers, and a time driver costs on every call.
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(Error::Runtime)?;
        Ok(Self { socket: socket.to_owned(), runtime, sender: None })
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /v1{path}`.
    pub fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, Error> {
        self.call(Method::GET, path, None)
    }

    /// `DELETE /v1{path}`.
    pub fn delete<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, Error> {
        self.call(Method::DELETE, path, None)
    }

    /// `POST /v1{path}` with a JSON body.
    pub fn post<B: Serialize, T: DeserializeOwned>(&mut self, path: &str, body: &B) -> Result<T, Error> {
        let json =
            serde_json::to_vec(body).map_err(|source| Error::Encode { path: path.to_owned(), source })?;
        self.call(Method::POST, path, Some(json))
    }

    fn call<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let mut request =
            Request::builder().method(method).uri(format!("{PREFIX}{path}")).header(header::HOST, "warrantd");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|source| Error::Request { path: path.to_owned(), source })?;
        let Self { socket, runtime, sender: slot } = self;
        let protocol = |reason: String| Error::Protocol { socket: socket.clone(), reason };
        let (status, bytes) = runtime.block_on(async {
            let mut sender = match slot.take() {
                Some(s) if s.is_ready() => s,
                _ => {
                    let stream = tokio::net::UnixStream::connect(&socket)
                        .await
                        .map_err(|source| Error::Connect { socket: socket.clone(), source })?;
                    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| protocol(format!("HTTP handshake: {e}")))?;
                    tokio::spawn(connection);
                    sender
                }
            };
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| protocol(format!("sending the request: {e}")))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| protocol(format!("reading the answer: {e}")))?
                .to_bytes();
            *slot = Some(sender);
            Ok::<_, Error>((status, body))
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|source| Error::UnexpectedAnswer {
                socket: self.socket.clone(),
                path: path.to_owned(),
                source,
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(Error::Daemon {
                status: status.as_u16(),
                code: body.error,
                // Refusals name their rule in the message already.
                message: body.message,
            }),
            Err(_) => Err(Error::Daemon {
                status: status.as_u16(),
                code: "http".into(),
                message: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_names_the_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("absent.sock");
        let mut client = Client::new(&socket).unwrap();
        let err = client.get::<warrant_api::Health>("/health").unwrap_err();
        assert!(matches!(&err, Error::Connect { socket: s, .. } if *s == socket), "{err:?}");
        assert_eq!(err.code(), "unreachable");
        assert!(
            err.to_string().starts_with(&format!("cannot reach warrantd at {}: ", socket.display())),
            "{err}"
        );
    }
}
