//! The accept loop: one task per connection, HTTP/1.1 by hyper with header and request
//! timeouts, a cap on connections, SIGHUP-style reloads and a draining stop.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tower::ServiceExt;

use super::audit::{Decision, Entry};
use super::config::Config;
use super::error::ApiError;
use super::listener::{self, Listener};
use super::notify;
use super::peer::Caller;
use super::routes::Routes;
use super::state::Daemon;
use crate::Error;

/// What the process asks of a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration (SIGHUP).
    Reload,
    /// Stop accepting, finish in-flight requests, exit (SIGTERM).
    Stop,
}

/// A daemon ready to serve: state opened, socket listening.
pub struct Server {
    daemon: Arc<Daemon>,
    listener: Listener,
    /// The most connections the process's descriptors allow, whatever `max_connections` says.
    connection_capacity: usize,
}

impl Server {
    /// Opens the state and the socket; at most `connection_capacity` connections are served at
    /// once (the descriptor limit's share), whatever the configuration allows.
    pub fn open(config: Config, connection_capacity: usize) -> Result<Self, Error> {
        if config.limits.max_connections > connection_capacity {
            tracing::warn!(
                "max_connections = {} needs more file descriptors than this process may open; serving at most {connection_capacity} (raise LimitNOFILE)",
                config.limits.max_connections
            );
        }
        let listener = listener::listen(&config)?;
        let daemon = match Daemon::open(config) {
            Ok(d) => d,
            Err(e) => {
                remove_socket(&listener.bound_path);
                return Err(e);
            }
        };
        Ok(Self { daemon: Arc::new(daemon), listener, connection_capacity })
    }

    /// Serves until `control` says stop (or is closed).
    pub async fn run(self, mut control: mpsc::Receiver<Control>) -> Result<(), Error> {
        let Server { daemon, listener: Listener { socket, bound_path }, connection_capacity } = self;
        socket.set_nonblocking(true).map_err(|source| Error::Io { path: "socket".into(), source })?;
        let socket =
            UnixListener::from_std(socket).map_err(|source| Error::Io { path: "socket".into(), source })?;
        let router = Routes::all().into_router(daemon.clone());
        let active = Arc::new(AtomicUsize::new(0));
        let graceful = GracefulShutdown::new();
        notify::notify("READY=1");
        loop {
            tokio::select! {
                accepted = socket.accept() => match accepted {
                    Ok((stream, _)) => {
                        accept(&daemon, &router, &active, &graceful, connection_capacity, stream)
                    }
                    Err(e) => {
                        // Out of file descriptors, most likely: wait rather than spin.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                message = control.recv() => match message {
                    Some(Control::Reload) => reload(&daemon),
                    Some(Control::Stop) | None => break,
                },
            }
        }
        drop(socket);
        remove_socket(&bound_path);
        notify::notify("STOPPING=1");
        let drain = Duration::from_millis(daemon.limits().drain_timeout_ms);
        tracing::info!("stopping: draining {} connection(s)", active.load(Ordering::SeqCst));
        if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
            tracing::warn!("connections still open after {} ms; closing them", drain.as_millis());
        }
        Ok(())
    }
}

fn remove_socket(path: &Option<PathBuf>) {
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}

fn reload(daemon: &Daemon) {
    notify::reloading();
    // The logrotate convention: after `mv` and SIGHUP, write to a new file at the path.
    daemon.audit.reopen();
    let path = daemon.live().config.path.clone();
    match Config::load(&path) {
        Ok(config) => {
            let not_applied = daemon.reload(config);
            tracing::info!("configuration reloaded from {}", path.display());
            if !not_applied.is_empty() {
                tracing::warn!("changes to {} take effect only after a restart", not_applied.join(", "));
            }
        }
        Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
    }
    notify::notify("READY=1");
}

/// Decrements the connection count when a connection ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept(
    daemon: &Arc<Daemon>,
    router: &axum::Router,
    active: &Arc<AtomicUsize>,
    graceful: &GracefulShutdown,
    connection_capacity: usize,
    stream: UnixStream,
) {
    let limits = daemon.limits();
    let max_connections = limits.max_connections.min(connection_capacity);
    let caller = Caller::of(&stream);
    if active.load(Ordering::SeqCst) >= max_connections {
        let message = format!("warrantd serves at most {max_connections} connections at once; retry shortly");
        refuse(
            daemon.clone(),
            caller.ok(),
            stream,
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_connections", message),
        );
        return;
    }
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            refuse(daemon.clone(), None, stream, e.into());
            return;
        }
    };
    active.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(active.clone());
    let request_timeout = Duration::from_millis(limits.request_timeout_ms);
    let (daemon, router) = (daemon.clone(), router.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(caller.clone());
        let (daemon, router, caller) = (daemon.clone(), router.clone(), caller.clone());
        async move {
            match tokio::time::timeout(request_timeout, router.oneshot(req)).await {
                Ok(Ok(response)) => Ok::<_, Infallible>(response),
                Ok(Err(never)) => match never {},
                Err(_) => {
                    let message = format!("the request took longer than {} ms", request_timeout.as_millis());
                    let entry =
                        Entry { operation: "request", reason: Some(message.clone()), ..Default::default() };
                    let audited = daemon.audit.record(Some(&caller), Decision::Deny, entry).await;
                    let error = audited.err().map(ApiError::from);
                    Ok(error
                        .unwrap_or_else(|| {
                            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message)
                        })
                        .into_response())
                }
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms))
        .max_buf_size(limits.max_body_bytes.max(16 * 1024) + 16 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        let _slot = slot;
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
}

/// Answers `error` on a connection that will not be served, then closes it.
fn refuse(daemon: Arc<Daemon>, caller: Option<Caller>, mut stream: UnixStream, error: ApiError) {
    tokio::spawn(async move {
        let entry =
            Entry { operation: "connection", reason: Some(error.body.message.clone()), ..Default::default() };
        let _ = daemon.audit.record(caller.as_ref(), Decision::Deny, entry).await;
        let body = serde_json::to_string(&error.body).unwrap_or_default();
        let response = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            error.status.as_u16(),
            error.status.canonical_reason().unwrap_or(""),
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(response.as_bytes())).await;
    });
}
