//! The daemon's client: HTTP/1.1 over the Unix socket, one persistent connection, blocking
//! calls (a current-thread runtime inside), JSON in and out.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{ErrorBody, PREFIX};
use crate::daemon::config::Mode;
use crate::Error;

/// Largest answer read from the daemon.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// The socket to use: `explicit` (from `--socket` or `$WARRANT_SOCKET`), else the user
/// daemon's socket when it exists, else the system daemon's.
pub fn socket_path(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let user = Mode::User.default_socket().filter(|p| p.exists());
    user.or_else(|| Mode::System.default_socket())
        .ok_or_else(|| Error::Usage("name the daemon's socket with --socket".into()))
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|source| Error::Io { path: "tokio runtime".into(), source })?;
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
            serde_json::to_vec(body).map_err(|e| Error::Usage(format!("encoding the request: {e}")))?;
        self.call(Method::POST, path, Some(json))
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> Error {
        Error::Unreachable { socket: self.socket.clone(), reason: reason.to_string() }
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
            .map_err(|e| Error::Usage(e.to_string()))?;
        let Self { socket, runtime, sender: slot } = self;
        let unreachable = |reason: String| Error::Unreachable { socket: socket.clone(), reason };
        let (status, bytes) = runtime.block_on(async {
            let mut sender = match slot.take() {
                Some(s) if s.is_ready() => s,
                _ => {
                    let stream = tokio::net::UnixStream::connect(&socket)
                        .await
                        .map_err(|e| unreachable(e.to_string()))?;
                    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| unreachable(e.to_string()))?;
                    tokio::spawn(connection);
                    sender
                }
            };
            let response = sender.send_request(request).await.map_err(|e| unreachable(e.to_string()))?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            *slot = Some(sender);
            Ok::<_, Error>((status, body))
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| self.unreachable(format!("unexpected answer: {e}")));
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
