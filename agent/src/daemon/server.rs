//! The accept loop: one task per connection, HTTP/1.1 by hyper with header and request
//! timeouts, a cap on connections, SIGHUP-style reloads and a draining stop.

use std::convert::Infallible;
use std::path::PathBuf;
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
use tokio::task::JoinHandle;
use tower::ServiceExt;
use warrant_http::HttpStatusSource;

use super::audit::{Decision, Entry};
use super::config::{Config, Limits};
use super::conn_io::{AnswerContext, ConnectionIo};
use super::connections::{self, Connections};
use super::early_refusals;
use super::error::ApiError;
use super::listener::{self, Listener};
use super::notify;
use super::operation::Progress;
use super::peer::Caller;
use super::routes::Routes;
use super::state::Daemon;
use super::status_fetch;
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
    /// The status lists the device side fetches (`[device] status_urls`).
    status_sources: Vec<HttpStatusSource>,
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
        let status_sources = status_fetch::sources(&config.device)?;
        let listener = listener::listen(&config)?;
        let daemon = match Daemon::open(config) {
            Ok(d) => d,
            Err(e) => {
                remove_socket(&listener.bound_path);
                return Err(e);
            }
        };
        Ok(Self { daemon: Arc::new(daemon), listener, connection_capacity, status_sources })
    }

    /// Serves until `control` says stop (or is closed).
    pub async fn run(self, mut control: mpsc::Receiver<Control>) -> Result<(), Error> {
        let Server { daemon, listener: Listener { socket, bound_path }, connection_capacity, status_sources } =
            self;
        let start = |source| Error::Start { what: "serving the listening socket", source };
        socket.set_nonblocking(true).map_err(start)?;
        let socket = UnixListener::from_std(socket).map_err(start)?;
        let router = Routes::all().into_router(daemon.clone());
        let connections = Arc::new(Connections::default());
        daemon.audit.refusals.configure(&daemon.limits());
        let summaries = tokio::spawn(summarize_refusals(daemon.clone()));
        let fetches = status_fetch::spawn(&daemon, status_sources);
        let graceful = GracefulShutdown::new();
        notify::notify("READY=1");
        loop {
            tokio::select! {
                accepted = socket.accept() => match accepted {
                    Ok((stream, _)) => {
                        accept(&daemon, &router, &connections, &graceful, connection_capacity, stream)
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
        tracing::info!("stopping: draining {} connection(s)", connections.total());
        if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
            tracing::warn!("connections still open after {} ms; closing them", drain.as_millis());
        }
        summaries.abort();
        fetches.iter().for_each(JoinHandle::abort);
        write_suppressed(&daemon).await;
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
            daemon.audit.refusals.configure(&daemon.limits());
            tracing::info!("configuration reloaded from {}", path.display());
            if !not_applied.is_empty() {
                tracing::warn!("changes to {} take effect only after a restart", not_applied.join(", "));
            }
        }
        Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
    }
    notify::notify("READY=1");
}

/// Every `refusal_summary_ms`, writes how many refusals each uid had answered without a line.
async fn summarize_refusals(daemon: Arc<Daemon>) {
    loop {
        tokio::time::sleep(Duration::from_millis(daemon.limits().refusal_summary_ms)).await;
        write_suppressed(&daemon).await;
    }
}

async fn write_suppressed(daemon: &Daemon) {
    for suppressed in daemon.audit.refusals.take_suppressed() {
        if let Err(e) = daemon.audit.record_suppressed(suppressed).await {
            tracing::error!("audit log: the count of {} unlogged refusals is lost: {e}", suppressed.count);
        }
    }
}

fn accept(
    daemon: &Arc<Daemon>,
    router: &axum::Router,
    connections: &Arc<Connections>,
    graceful: &GracefulShutdown,
    connection_capacity: usize,
    stream: UnixStream,
) {
    let limits = daemon.limits();
    let max_connections = limits.max_connections.min(connection_capacity);
    let caller = Caller::of(&stream);
    if connections.full(max_connections) {
        refuse(daemon.clone(), caller.ok(), stream, connections::full(max_connections));
        return;
    }
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            refuse(daemon.clone(), None, stream, e.into());
            return;
        }
    };
    let share = limits.per_uid_connections(max_connections);
    let slot = match connections.take(caller.uid, max_connections, share) {
        Ok(slot) => slot,
        Err(e) => {
            refuse(daemon.clone(), Some(caller), stream, e);
            return;
        }
    };
    let answers = AnswerContext {
        daemon: daemon.clone(),
        caller: caller.clone(),
        max_header_bytes: max_buf_size(&limits),
    };
    let request_timeout = Duration::from_millis(limits.request_timeout_ms);
    let write_timeout = Duration::from_millis(limits.write_timeout_ms);
    let (daemon, router) = (daemon.clone(), router.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(caller.clone());
        // What the handler got to, so the timeout's line says whether work was begun.
        let progress = Progress::default();
        req.extensions_mut().insert(progress.clone());
        let (daemon, router, caller) = (daemon.clone(), router.clone(), caller.clone());
        async move {
            match tokio::time::timeout(request_timeout, router.oneshot(req)).await {
                Ok(Ok(response)) => Ok::<_, Infallible>(response),
                Ok(Err(never)) => match never {},
                Err(_) => {
                    // Begun work runs on and records itself; this line says the answer is lost.
                    let (decision, entry, message) = progress.timed_out(request_timeout);
                    let audited = daemon.audit.record(Some(&caller), decision, entry).await;
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
        .max_buf_size(max_buf_size(&limits))
        .serve_connection(TokioIo::new(ConnectionIo::new(stream, write_timeout, answers)), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        let _slot = slot;
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
}

/// The most bytes hyper buffers of a request (headers and body), and so the header limit.
fn max_buf_size(limits: &Limits) -> usize {
    limits.max_body_bytes.max(16 * 1024) + 16 * 1024
}

/// Answers `error` on a connection that will not be served, then closes it; a refusal the
/// audit log cannot take (over the uid's refusal budget) is answered with why.
fn refuse(daemon: Arc<Daemon>, caller: Option<Caller>, mut stream: UnixStream, error: ApiError) {
    tokio::spawn(async move {
        let entry =
            Entry { operation: "connection", reason: Some(error.body.message.clone()), ..Default::default() };
        let error = match daemon.audit.record(caller.as_ref(), Decision::Deny, entry).await {
            Ok(()) => error,
            Err(e) => e.into(),
        };
        let response = early_refusals::closing_response(&error);
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&response)).await;
    });
}
