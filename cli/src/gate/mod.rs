//! `warrant gate`: a reverse proxy that verifies the warrant of each request (warrant-http)
//! and forwards accepted ones to the upstream service with the verified identity in
//! `Warrant-*` headers, answering refusals itself (docs/HTTP.md). Served with hyper directly:
//! the `warrant` binary links no server framework.

mod audit;
mod identity;
mod settings;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use warrant_envelope::verify::Verifier;
use warrant_http::{
    refusal, warrant_from_headers, FetchOptions, FileStatusSource, HttpStatusSource, Origin,
    RedisReplayStore, RefreshSchedule, RequestVerifier, RouteTable, StatusRefresher, DEFAULT_RETRY_MIN,
};

use crate::upstream::{strip_hop_by_hop, Upstream};
use crate::{files, tls, Error};
use audit::Decision;
pub(crate) use settings::GateArgs;
use settings::Settings;

/// How long a client may take to send a request's headers, or its body.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's headers: short, as a connection waiting for
/// them holds one of the gate's connection slots.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type GateBody = Either<Incoming, Full<Bytes>>;

/// Runs the gate until SIGTERM or SIGINT.
pub(crate) fn run(args: GateArgs) -> Result<(), Error> {
    let settings = args.settings()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(settings))
}

struct Gate {
    requests: RequestVerifier,
    upstream: Upstream,
    upstream_timeout: Duration,
}

async fn serve(s: Settings) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARRANT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Only the first subscriber counts; a second call (none here) would change nothing.
    // Colours only for a person at a terminal, not in a log file or the journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .try_init();

    let mut builder = Verifier::builder(&s.audience)
        .clock_skew(s.skew)
        .allow_software_evidence(s.allow_software)
        .allow_self_reported_evidence(s.allow_self_reported);
    for path in &s.trust {
        builder = builder.trust(files::read_trust(path)?);
    }
    if let Some(path) = &s.local_policy {
        builder = builder.local_policy(files::read_text(path)?);
    }
    if let Some(url) = &s.replay {
        let store = RedisReplayStore::new(url).map_err(|e| Error::Usage(e.to_string()))?;
        let kind = if store.is_cluster() { "Redis Cluster" } else { "Redis" };
        eprintln!("warrant gate: replay store on {kind} at {}", store.address());
        builder = builder.replay_store(Arc::new(store));
    }
    let verifier = Arc::new(builder.build()?);
    // Every source must give a list to start with: a gate that started without one would
    // answer that authority's grants 503 without anyone having noticed.
    for path in &s.status_files {
        let source = Arc::new(FileStatusSource::new(path));
        warrant_http::refresh(&verifier, source.as_ref()).await?;
        warrant_http::spawn_refresh(verifier.clone(), source, Duration::from_secs(s.status_interval));
    }
    let options = FetchOptions { ca_file: s.status_ca.clone(), ..FetchOptions::default() };
    let retries = RefreshSchedule::new(DEFAULT_RETRY_MIN, Duration::from_secs(s.status_retry_max));
    for url in &s.status_urls {
        let source = Arc::new(HttpStatusSource::new(url, &options)?);
        let mut refresher = StatusRefresher::new(verifier.clone(), source, retries.clone());
        if let Some(info) = refresher.refresh().await? {
            eprintln!("warrant gate: status list {} of {:?} from {url}", info.sequence, info.issuer);
        }
        refresher.spawn();
    }
    let routes = match &s.routes {
        Some(path) => RouteTable::read(path)?,
        None => RouteTable::default(),
    };
    let requests = RequestVerifier::new(verifier, Origin::parse(&s.origin)?)
        .with_routes(routes)
        .with_body_limit(s.body_limit);
    let upstream = Upstream::new(&s.upstream, s.upstream_ca.as_deref())?;
    let tls = match &s.tls {
        Some((cert, key)) => Some(TlsAcceptor::from(tls::server_config(cert, key)?)),
        None => None,
    };
    let listener =
        TcpListener::bind(s.listen).await.map_err(|source| Error::Listen { addr: s.listen, source })?;
    let local = listener.local_addr().map_err(|source| Error::Listen { addr: s.listen, source })?;
    eprintln!(
        "warrant gate: listening on {local} ({}), forwarding to {}",
        if tls.is_some() { "https" } else { "http" },
        s.upstream
    );
    let gate =
        Arc::new(Gate { requests, upstream, upstream_timeout: Duration::from_secs(s.upstream_timeout) });
    let permits = Arc::new(tokio::sync::Semaphore::new(s.max_connections));
    let per_client = Arc::new(ClientConnections::new(s.max_connections_per_client));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // At the limit, connections wait in the listen backlog until one closes.
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => return Ok(()),
            },
        };
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // One client (one address) cannot hold every slot: beyond its share its
                    // connections are closed at once.
                    let Some(share) = per_client.admit(peer.ip()) else {
                        drop(stream);
                        continue;
                    };
                    let gate = gate.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        gate.connection(stream, peer, tls).await;
                        drop(share);
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of descriptors, most likely: wait for connections to close.
                    eprintln!("warrant gate: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Open connections per client address, bounded.
struct ClientConnections {
    limit: usize,
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
struct ClientShare {
    clients: Arc<ClientConnections>,
    ip: std::net::IpAddr,
}

impl ClientConnections {
    fn new(limit: usize) -> Self {
        Self { limit, open: Default::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, usize>> {
        // A map of counters, each updated in one statement: consistent after a panic.
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a connection from `ip`, unless it has `limit` open already.
    fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<ClientShare> {
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientShare { clients: self.clone(), ip })
    }
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Gate {
    async fn connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        let gate = self.clone();
        let service = service_fn(move |request| {
            let gate = gate.clone();
            async move { Ok::<_, Infallible>(gate.handle(request, peer).await) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
        // A connection's end, orderly or not, concerns only that client.
        let _ = match tls {
            Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
                _ => return,
            },
            None => http.serve_connection(TokioIo::new(stream), service).await,
        };
    }

    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<GateBody> {
        let (parts, body) = request.into_parts();
        let (method, path) = (parts.method.as_str().to_owned(), parts.uri.path().to_owned());
        let refuse = |e: warrant_http::Error| {
            let status = e.status().0.as_u16();
            audit::record(
                peer,
                &method,
                &path,
                &Decision::Refused { status, code: e.code(), message: e.to_string() },
            );
            refusal(&e).map(Either::Right)
        };
        // What can be refused without the body is, before a byte of it is read.
        let carried = match warrant_from_headers(&parts.headers) {
            Ok(Some(carried)) => carried,
            Ok(None) => return refuse(warrant_http::Error::MissingWarrant),
            Err(e) => return refuse(e),
        };
        if let Err(e) = self.requests.operation(&parts.method, &parts.uri, &parts.headers) {
            return refuse(e);
        }
        let body =
            match tokio::time::timeout(CLIENT_TIMEOUT, self.requests.read_body(&parts.headers, body)).await {
                Ok(Ok(body)) => body,
                Ok(Err(e)) => return refuse(e),
                Err(_) => return refuse(warrant_http::Error::BodyUnreadable("not received in time".into())),
            };
        // The replay store may wait on Redis (at most its timeouts): off the async workers.
        let requests = self.requests.clone();
        let (request_method, uri, headers) = (parts.method.clone(), parts.uri.clone(), parts.headers.clone());
        let checked_body = body.clone();
        let verified = tokio::task::spawn_blocking(move || {
            requests.verify_warrant(&carried, &request_method, &uri, &headers, &checked_body)
        })
        .await;
        let warrant = match verified {
            Ok(Ok(warrant)) => warrant,
            Ok(Err(e)) => return refuse(e),
            Err(e) => {
                return refuse(warrant_http::Error::Undecided(format!(
                    "the verification did not finish: {e}"
                )))
            }
        };

        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = match self.upstream.uri_for(path_and_query) {
            Ok(uri) => uri,
            Err(e) => return refuse(warrant_http::Error::TargetUnusable(e.to_string())),
        };
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        identity::strip_client_identity(&mut headers);
        // Forwarding headers the client wrote say what it wants the upstream to believe: the
        // gate states the one it knows, the client's address.
        for name in ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"] {
            headers.remove(name);
        }
        if let Ok(value) = http::HeaderValue::from_str(&peer.ip().to_string()) {
            headers.insert("x-forwarded-for", value);
        }
        headers.remove(HOST);
        // The body is read whole already: nothing to continue.
        headers.remove(EXPECT);
        headers.remove(CONTENT_LENGTH);
        identity::add_identity(&mut headers, &warrant);
        let mut forwarded = Request::new(Full::new(body));
        *forwarded.method_mut() = parts.method;
        *forwarded.uri_mut() = uri;
        *forwarded.version_mut() = Version::HTTP_11;
        *forwarded.headers_mut() = headers;

        let failed = |status: StatusCode, reason: String| {
            audit::record(
                peer,
                &method,
                &path,
                &Decision::UpstreamFailed {
                    warrant: &warrant,
                    status: status.as_u16(),
                    reason: reason.clone(),
                },
            );
            gateway_error(status, &reason)
        };
        match tokio::time::timeout(self.upstream_timeout, self.upstream.send(forwarded)).await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                let status = parts.status.as_u16();
                audit::record(peer, &method, &path, &Decision::Forwarded { warrant: &warrant, status });
                Response::from_parts(parts, Either::Left(body))
            }
            Ok(Err(e)) => {
                failed(StatusCode::BAD_GATEWAY, format!("the upstream did not answer: {}", error_chain(&e)))
            }
            Err(_) => failed(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the upstream did not answer within {} s", self.upstream_timeout.as_secs()),
            ),
        }
    }
}

/// A 502 or 504 with a JSON body.
fn gateway_error(status: StatusCode, message: &str) -> Response<GateBody> {
    let code =
        if status == StatusCode::GATEWAY_TIMEOUT { "upstream_timeout" } else { "upstream_unreachable" };
    let body = serde_json::json!({"error": "bad_gateway", "code": code, "message": message});
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error and its sources, `: `-separated (hyper's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
