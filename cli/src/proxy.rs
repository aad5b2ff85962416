//! `warrant proxy` and `warrant exec`: a local HTTP endpoint that has warrantd sign a warrant
//! for each request it receives (only the body's digest goes to the daemon) and forwards the
//! request to the upstream with `Authorization: Warrant ...` (docs/HTTP.md), so that any tool
//! taking a base URL sends warrants without knowing it.

use std::convert::Infallible;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use warrant_api as api;
use warrant_client::Client;
use warrant_envelope::device::sha256;
use warrant_http::{authorization_value, Origin, RouteTable};

use crate::upstream::{strip_hop_by_hop, Upstream};
use crate::{files, Error};

/// How long a client may take to send a request's headers, or its body; and the upstream to
/// send its response headers.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the proxy signs with and forwards to.
#[derive(Debug, Args)]
pub(crate) struct SigningArgs {
    /// The service to forward to: https://host[:port][/prefix] (or http://).
    #[arg(long)]
    upstream: String,
    /// The device key warrantd signs with.
    #[arg(long)]
    key: String,
    /// The grant file.
    #[arg(long)]
    grant: PathBuf,
    /// The route table (TOML, docs/HTTP.md) telling each request's action and resource; without
    /// one the action is the method and the resource the path.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// The origin the service reconstructs targets from (default: the upstream's scheme://host[:port]).
    #[arg(long)]
    origin: Option<String>,
    /// The audience of the warrants (default: the origin).
    #[arg(long)]
    audience: Option<String>,
    /// Warrant lifetime in seconds.
    #[arg(long, default_value_t = 60)]
    ttl: u64,
    /// PEM CA certificates for an https upstream (default: the system's roots).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The largest request body, bytes (larger: 413).
    #[arg(long, default_value_t = warrant_http::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
}

/// `warrant proxy`.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// The loopback address to listen on (e.g. 127.0.0.1:8080): whoever reaches it gets
    /// requests signed with the key, so other addresses are refused.
    #[arg(long)]
    listen: SocketAddr,
    #[command(flatten)]
    signing: SigningArgs,
}

/// `warrant exec`.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    #[command(flatten)]
    signing: SigningArgs,
    /// Also put the proxy's URL in this environment variable of the command (repeatable).
    #[arg(long = "env", value_name = "NAME")]
    env: Vec<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// A sign request and where its answer goes.
type SignJob =
    (api::SignRequest, tokio::sync::oneshot::Sender<Result<api::SignResponse, warrant_client::Error>>);

/// One connection to warrantd on a thread of its own (the client is blocking and holds its
/// own runtime), serving one sign request at a time.
struct Daemon {
    jobs: std::sync::mpsc::Sender<SignJob>,
}

impl Daemon {
    fn start(socket: &std::path::Path) -> Result<Self, Error> {
        let mut client = Client::new(socket)?;
        let (jobs, queue) = std::sync::mpsc::channel::<SignJob>();
        std::thread::Builder::new()
            .name("warrantd-client".into())
            .spawn(move || {
                for (request, reply) in queue {
                    // The requester may have gone (its client hung up): nothing to tell.
                    let _ = reply.send(client.post("/sign", &request));
                }
            })
            .map_err(|e| Error::Usage(format!("cannot start a thread: {e}")))?;
        Ok(Self { jobs })
    }

    async fn sign(&self, request: api::SignRequest) -> Result<api::SignResponse, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs.send((request, reply)).map_err(|_| "the warrantd client thread has stopped".to_owned())?;
        match answer.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("the warrantd client thread has stopped".to_owned()),
        }
    }
}

/// Signs through warrantd and forwards.
struct Proxy {
    daemon: Daemon,
    key: String,
    grant: Vec<u8>,
    audience: String,
    /// The origin and the upstream's path prefix: the target a request's path is appended to.
    origin: String,
    ttl: u64,
    routes: RouteTable,
    upstream: Upstream,
    body_limit: usize,
}

type ProxyBody = Either<Incoming, Full<Bytes>>;

impl Proxy {
    fn new(args: SigningArgs, socket: &std::path::Path) -> Result<Self, Error> {
        let upstream = Upstream::new(&args.upstream, args.ca.as_deref())?;
        let origin = Origin::parse(args.origin.as_deref().unwrap_or(upstream.origin()))?;
        let routes = match &args.routes {
            Some(path) => RouteTable::read(path)?,
            None => RouteTable::default(),
        };
        Ok(Self {
            daemon: Daemon::start(socket)?,
            key: args.key,
            grant: files::read(&args.grant)?,
            audience: args.audience.unwrap_or_else(|| origin.as_str().to_owned()),
            origin: origin.as_str().to_owned(),
            ttl: args.ttl,
            routes,
            upstream,
            body_limit: args.body_limit,
        })
    }

    async fn serve(self: Arc<Self>, listener: TcpListener) {
        let me = rustix::process::geteuid().as_raw();
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(local) = stream.local_addr() else { continue };
            let _ = stream.set_nodelay(true);
            // Only this user's programs have requests signed with this user's key: on
            // loopback, any local user could connect.
            let caller = match crate::loopback_peer::peer_uid(local, peer) {
                Ok(Some(uid)) if uid == me => Ok(()),
                Ok(Some(uid)) => {
                    Err(format!("a program of uid {uid} connected; only uid {me}'s may use this proxy"))
                }
                Ok(None) => Err("the connecting program could not be identified".to_owned()),
                Err(e) => Err(format!("the connecting program could not be identified: {e}")),
            };
            let proxy = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let proxy = proxy.clone();
                    let caller = caller.clone();
                    async move {
                        let response = match caller {
                            Ok(()) => proxy.handle(request, local).await,
                            Err(reason) => answer(StatusCode::FORBIDDEN, "caller_refused", &reason),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new()).header_read_timeout(TIMEOUT);
                // A connection's end concerns only that client.
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>, local: SocketAddr) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        // A web page the user visits can send requests to loopback (and, by DNS rebinding,
        // read the answers): the tools this serves send neither a browser's headers nor
        // another Host than the address they were given.
        if let Err(reason) = check_not_a_browser(&parts.headers, local.port()) {
            return answer(StatusCode::FORBIDDEN, "browser_refused", &reason);
        }
        let body = match tokio::time::timeout(TIMEOUT, Limited::new(body, self.body_limit).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                let message = format!("the request body is over the {}-byte limit", self.body_limit);
                return answer(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &message);
            }
            Ok(Err(e)) => return answer(StatusCode::BAD_REQUEST, "body_unreadable", &e.to_string()),
            Err(_) => return answer(StatusCode::BAD_REQUEST, "body_unreadable", "not received in time"),
        };
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let service_path = self.upstream.path_for(path_and_query);
        let path = service_path.split_once('?').map_or(service_path.as_str(), |(path, _)| path);
        let operation = match self.routes.operation(parts.method.as_str(), path) {
            Ok(operation) => operation,
            Err(e) => return answer(StatusCode::FORBIDDEN, e.code(), &e.to_string()),
        };
        let sign = api::SignRequest {
            key: self.key.clone(),
            grant: self.grant.clone(),
            audience: self.audience.clone(),
            action: operation.action,
            resource: operation.resource,
            request: api::BoundRequest {
                method: parts.method.as_str().to_owned(),
                target: format!("{}{service_path}", self.origin),
                body_sha256: hex::encode(sha256(&body)),
            },
            context: Default::default(),
            nonce: None,
            ttl: self.ttl,
            status_list: None,
        };
        // A key that waits for a touch or a PIN must not hold the client forever.
        let warrant = match tokio::time::timeout(TIMEOUT, self.daemon.sign(sign)).await {
            Ok(Ok(answer)) => answer.warrant,
            Ok(Err(e)) => {
                return answer(
                    StatusCode::BAD_GATEWAY,
                    "signing_failed",
                    &format!("warrantd did not sign: {e}"),
                )
            }
            Err(_) => {
                return answer(
                    StatusCode::GATEWAY_TIMEOUT,
                    "signing_timeout",
                    "warrantd did not sign in time",
                )
            }
        };
        let uri = match self.upstream.uri_for(path_and_query) {
            Ok(uri) => uri,
            Err(e) => return answer(StatusCode::BAD_REQUEST, "target_unusable", &e.to_string()),
        };
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        headers.remove(HOST);
        // The body is read whole already: nothing to continue.
        headers.remove(EXPECT);
        headers.remove(CONTENT_LENGTH);
        match HeaderValue::from_str(&authorization_value(&warrant)) {
            Ok(value) => headers.insert(AUTHORIZATION, value),
            Err(_) => {
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "signing_failed", "unencodable warrant")
            }
        };
        let mut forwarded = Request::new(Full::new(body));
        *forwarded.method_mut() = parts.method;
        *forwarded.uri_mut() = uri;
        *forwarded.version_mut() = Version::HTTP_11;
        *forwarded.headers_mut() = headers;
        match tokio::time::timeout(TIMEOUT, self.upstream.send(forwarded)).await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Either::Left(body))
            }
            Ok(Err(e)) => answer(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                &format!("the upstream did not answer: {e}"),
            ),
            Err(_) => {
                answer(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", "the upstream did not answer in time")
            }
        }
    }
}

/// Refuses a request a web browser made: one with an `Origin` or `Sec-Fetch-*` header (a
/// browser adds them; command-line tools and SDKs do not), or whose `Host` is not this
/// proxy's own loopback address (a DNS-rebinding page names its own host).
fn check_not_a_browser(headers: &http::HeaderMap, port: u16) -> Result<(), String> {
    if headers.contains_key(http::header::ORIGIN) {
        return Err("a request with an Origin header (from a web page) is not signed".into());
    }
    if let Some(name) = headers.keys().find(|name| name.as_str().starts_with("sec-fetch-")) {
        return Err(format!("a request with {name} (from a web browser) is not signed"));
    }
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let own = [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
    if !own.iter().any(|name| name.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "Host {host:?} is not this proxy's address (127.0.0.1:{port}, localhost:{port} or [::1]:{port})"
        ));
    }
    Ok(())
}

/// An answer of the proxy's own, with a JSON body.
fn answer(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({"error": code, "code": code, "message": message});
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the runtime: {e}")))
}

async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    if !addr.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "{addr} is not a loopback address: whoever reaches the proxy has requests signed with the key"
        )));
    }
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr, source })?;
    let local = listener.local_addr().map_err(|source| Error::Listen { addr, source })?;
    Ok((listener, local))
}

/// Runs `warrant proxy` until SIGTERM or SIGINT.
pub(crate) fn run_proxy(args: ProxyArgs, socket: &std::path::Path) -> Result<(), Error> {
    let proxy = Arc::new(Proxy::new(args.signing, socket)?);
    let runtime = runtime()?;
    runtime.block_on(async {
        let (listener, local) = listen(args.listen).await?;
        eprintln!("warrant proxy: listening on {local}, forwarding to {}", proxy.upstream.origin());
        tokio::select! {
            () = proxy.serve(listener) => {}
            () = crate::gate::shutdown_signal() => {}
        }
        Ok(())
    })
}

/// Runs `warrant exec`: the command with a proxy of its own, stopped when it exits; its exit
/// status is the command's (128 + the signal for one killed by a signal).
pub(crate) fn run_exec(args: ExecArgs, socket: &std::path::Path) -> Result<ExitCode, Error> {
    for name in &args.env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(Error::Usage(format!("--env {name:?} is not an environment variable name")));
        }
    }
    let proxy = Arc::new(Proxy::new(args.signing, socket)?);
    let runtime = runtime()?;
    let (listener, local) = runtime.block_on(listen(SocketAddr::from(([127, 0, 0, 1], 0))))?;
    let server = runtime.spawn(proxy.serve(listener));
    let url = format!("http://{local}");
    let (program, rest) =
        args.command.split_first().ok_or_else(|| Error::Usage("no command given".into()))?;
    let mut command = std::process::Command::new(program);
    command.args(rest).env("WARRANT_PROXY_URL", &url);
    for name in &args.env {
        command.env(name, &url);
    }
    // The terminal's SIGINT and SIGQUIT reach the command too (one process group): here they
    // must not end the proxy before the command. SIGTERM and SIGHUP, sent to this process
    // alone, are passed on to the command.
    let signals = {
        let _runtime = runtime.enter();
        Signals::register().map_err(|e| Error::Usage(format!("cannot handle signals: {e}")))?
    };
    let status = match command.spawn() {
        Ok(mut child) => {
            let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
            runtime.spawn(signals.pass_on(pid));
            child.wait().map_err(|source| Error::Exec { program: program.into(), source })
        }
        Err(source) => Err(Error::Exec { program: program.into(), source }),
    };
    server.abort();
    runtime.shutdown_background();
    let status = status?;
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// The signals `warrant exec` handles while its command runs.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Takes the four signals from their default action (within a runtime).
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Passes SIGTERM and SIGHUP on to the command `pid`; SIGINT and SIGQUIT only do not end
    /// this process (the terminal sent them to the command already).
    async fn pass_on(mut self, pid: Option<rustix::process::Pid>) {
        use rustix::process::{kill_process, Signal};
        loop {
            let passed = tokio::select! {
                _ = self.interrupt.recv() => None,
                _ = self.quit.recv() => None,
                _ = self.terminate.recv() => Some(Signal::TERM),
                _ = self.hangup.recv() => Some(Signal::HUP),
            };
            if let (Some(signal), Some(pid)) = (passed, pid) {
                // The command may have exited meanwhile: then there is no one to tell.
                let _ = kill_process(pid, signal);
            }
        }
    }
}
