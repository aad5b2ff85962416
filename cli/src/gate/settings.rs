//! The gate's settings: command-line flags over an optional TOML file with the same names.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::{files, Error};

/// `warrant gate`'s flags (each may also be given in --config's file, flags win).
#[derive(Debug, Args)]
pub(crate) struct GateArgs {
    /// A TOML file with any of the settings below (keys as the flags, with _ for -; `trust` is
    /// a list); flags given on the command line win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The address to listen on (e.g. 0.0.0.0:8443).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The service behind the gate: http://host:port[/prefix] or https://...
    #[arg(long)]
    upstream: Option<String>,
    /// The external origin clients address, scheme://host[:port] (e.g. https://api.example.com):
    /// each request's target is this plus its path and query, never its Host header.
    #[arg(long)]
    origin: Option<String>,
    /// This verifier's audience (default: the origin).
    #[arg(long)]
    audience: Option<String>,
    /// A trust file from `warrant authority trust` (repeatable).
    #[arg(long = "trust")]
    trust: Vec<PathBuf>,
    /// A status list file, read again when it changes (replace it atomically). Repeatable: one
    /// per authority (or list) whose grants the gate accepts.
    #[arg(long = "status-file")]
    status_file: Vec<PathBuf>,
    /// Seconds between looks at the status files for a new list. Default 2.
    #[arg(long)]
    status_interval: Option<u64>,
    /// A status list's URL (https://...; http:// only to a loopback address), fetched again at
    /// the held list's iat + ttl with jitter, conditionally, walking the published history
    /// when lists were missed (FORMAT.md §6). Repeatable: one per authority (or list).
    #[arg(long = "status-url")]
    status_url: Vec<String>,
    /// PEM CA certificates an https status host's certificate must chain to (default: the
    /// system's roots).
    #[arg(long)]
    status_ca: Option<PathBuf>,
    /// Longest wait, seconds, between fetches of a status URL that fail (or serve nothing newer
    /// than a list past its ttl); they start at 1 s and double. Default 60.
    #[arg(long)]
    status_retry_max: Option<u64>,
    /// Tolerated clock skew, seconds: warrants, grants and status lists are accepted this long
    /// past their expiry (and before their start). Default 60.
    #[arg(long)]
    skew: Option<u64>,
    /// The route table (TOML, docs/HTTP.md); without one the operation is the method and path.
    #[arg(long)]
    routes: Option<PathBuf>,
    /// A local Cedar policy file that must also permit every request.
    #[arg(long)]
    local_policy: Option<PathBuf>,
    /// Accept devices with software keys.
    #[arg(long)]
    allow_software: bool,
    /// Accept devices whose evidence is self-reported by their key store (PKCS#11).
    #[arg(long)]
    allow_self_reported: bool,
    /// The largest request body, bytes (larger: 413). Default 1 MiB.
    #[arg(long)]
    body_limit: Option<usize>,
    /// Seconds to wait for the upstream's response headers (then 504). Default 30.
    #[arg(long)]
    upstream_timeout: Option<u64>,
    /// Most client connections served at once (more wait to be accepted). Default 1024.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most connections from one client address at once (more are closed at once). Default
    /// 64; behind a load balancer, which is one address, raise it to --max-connections.
    #[arg(long)]
    max_connections_per_client: Option<usize>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates for an https upstream (default: the system's roots).
    #[arg(long)]
    upstream_ca: Option<PathBuf>,
    /// A replay store shared by every gate of the service, on Redis:
    /// redis://[:password@]host[:port][/db] or redis+unix:///path, or on a Redis Cluster:
    /// redis+cluster://[:password@]host:port[,host:port...] (the nodes to start from; the others
    /// are found). Default: in this process's memory, which another gate, or this one after a
    /// restart, does not see.
    #[arg(long)]
    replay: Option<String>,
}

/// The same settings in a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    listen: Option<SocketAddr>,
    upstream: Option<String>,
    origin: Option<String>,
    audience: Option<String>,
    #[serde(default)]
    trust: Vec<PathBuf>,
    #[serde(default, deserialize_with = "one_or_many")]
    status_file: Vec<PathBuf>,
    status_interval: Option<u64>,
    #[serde(default, deserialize_with = "one_or_many")]
    status_url: Vec<String>,
    status_ca: Option<PathBuf>,
    status_retry_max: Option<u64>,
    skew: Option<u64>,
    routes: Option<PathBuf>,
    local_policy: Option<PathBuf>,
    #[serde(default)]
    allow_software: bool,
    #[serde(default)]
    allow_self_reported: bool,
    body_limit: Option<usize>,
    upstream_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    upstream_ca: Option<PathBuf>,
    replay: Option<String>,
}

/// The settings the gate runs with.
#[derive(Debug)]
pub(crate) struct Settings {
    pub listen: SocketAddr,
    pub upstream: String,
    pub origin: String,
    pub audience: String,
    pub trust: Vec<PathBuf>,
    pub status_files: Vec<PathBuf>,
    pub status_interval: u64,
    pub status_urls: Vec<String>,
    pub status_ca: Option<PathBuf>,
    pub status_retry_max: u64,
    pub skew: u64,
    pub routes: Option<PathBuf>,
    pub local_policy: Option<PathBuf>,
    pub allow_software: bool,
    pub allow_self_reported: bool,
    pub body_limit: usize,
    pub upstream_timeout: u64,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub upstream_ca: Option<PathBuf>,
    pub replay: Option<String>,
}

impl GateArgs {
    /// The flags over the config file's settings; each required one present.
    pub(crate) fn settings(self) -> Result<Settings, Error> {
        let file = match &self.config {
            Some(path) => toml::from_str::<GateFile>(&files::read_text(path)?)
                .map_err(|e| Error::BadFile { path: path.clone(), reason: e.to_string() })?,
            None => GateFile::default(),
        };
        let missing =
            |name: &str| Error::Usage(format!("--{name} is required (on the command line or in --config)"));
        let origin = self.origin.or(file.origin).ok_or_else(|| missing("origin"))?;
        let trust = if self.trust.is_empty() { file.trust } else { self.trust };
        if trust.is_empty() {
            return Err(missing("trust"));
        }
        let status_files = if self.status_file.is_empty() { file.status_file } else { self.status_file };
        let status_urls = if self.status_url.is_empty() { file.status_url } else { self.status_url };
        if status_files.is_empty() && status_urls.is_empty() {
            return Err(Error::Usage(
                "a status list is required: --status-url or --status-file (each repeatable: one per authority), on the command line or in --config".into(),
            ));
        }
        let tls = match (self.tls_cert.or(file.tls_cert), self.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(Error::Usage("--tls-cert and --tls-key go together".into())),
        };
        Ok(Settings {
            listen: self.listen.or(file.listen).ok_or_else(|| missing("listen"))?,
            upstream: self.upstream.or(file.upstream).ok_or_else(|| missing("upstream"))?,
            audience: self.audience.or(file.audience).unwrap_or_else(|| origin.clone()),
            origin,
            trust,
            status_files,
            status_interval: self.status_interval.or(file.status_interval).unwrap_or(2).max(1),
            status_urls,
            status_ca: self.status_ca.or(file.status_ca),
            status_retry_max: self.status_retry_max.or(file.status_retry_max).unwrap_or(60).max(1),
            skew: self.skew.or(file.skew).unwrap_or(warrant_envelope::verify::DEFAULT_CLOCK_SKEW_SECS),
            routes: self.routes.or(file.routes),
            local_policy: self.local_policy.or(file.local_policy),
            allow_software: self.allow_software || file.allow_software,
            allow_self_reported: self.allow_self_reported || file.allow_self_reported,
            body_limit: self.body_limit.or(file.body_limit).unwrap_or(warrant_http::DEFAULT_BODY_LIMIT),
            upstream_timeout: self.upstream_timeout.or(file.upstream_timeout).unwrap_or(30).max(1),
            max_connections: self.max_connections.or(file.max_connections).unwrap_or(1024).max(1),
            max_connections_per_client: self
                .max_connections_per_client
                .or(file.max_connections_per_client)
                .unwrap_or(64)
                .max(1),
            tls,
            upstream_ca: self.upstream_ca.or(file.upstream_ca),
            replay: self.replay.or(file.replay),
        })
    }
}

/// A TOML value that is one item or a list of them (`status_file = "a"` or `["a", "b"]`).
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    })
}
