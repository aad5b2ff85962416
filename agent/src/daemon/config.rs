//! `agent.toml`: the daemon's configuration, parsed strictly and validated as a whole before it
//! is used, with errors that name the file, the line and the key (from the TOML parser's
//! positions). The `[keystore]` table belongs to warrant-hsm-backends: its `backend` picks the
//! settings type, which checks itself.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use warrant_hsm_backends::KeyStoreConfig;

use super::rules::{Operation, Rule, RuleSet, Subjects};
use crate::Error;

/// Where the socket and state go by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A per-user daemon: `$XDG_RUNTIME_DIR/warrant/agent.sock`, state under `$XDG_STATE_HOME`.
    User,
    /// The system daemon: `/run/warrant/agent.sock`, state in `/var/lib/warrant`.
    System,
}

impl Mode {
    /// System mode for root, user mode otherwise.
    pub fn default_for_this_process() -> Self {
        if nix::unistd::geteuid().is_root() {
            Mode::System
        } else {
            Mode::User
        }
    }

    /// The default configuration file.
    pub fn default_config(self) -> PathBuf {
        match self {
            Mode::System => PathBuf::from("/etc/warrant/agent.toml"),
            Mode::User => xdg_dir("XDG_CONFIG_HOME", ".config").join("warrant/agent.toml"),
        }
    }

    /// Whether nothing at all is at `path`, the one case in which user mode falls back to the
    /// built-in defaults. A dangling symlink is something (a configuration the user meant to
    /// have, e.g. in dotfiles not yet checked out): it is read, and fails, rather than
    /// silently replaced by software keys and the defaults' rules. Other errors (a directory
    /// that cannot be searched) are errors.
    pub fn config_absent(path: &Path) -> std::io::Result<bool> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The default socket path, if one can be named.
    pub fn default_socket(self) -> Option<PathBuf> {
        match self {
            Mode::System => Some(PathBuf::from(warrant_api::socket::SYSTEM)),
            Mode::User => warrant_api::socket::user(),
        }
    }

    /// The default state directory (`$STATE_DIRECTORY` when systemd made it).
    pub fn default_state_dir(self) -> PathBuf {
        // systemd's StateDirectory= says where it made the directory.
        if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        match self {
            Mode::System => PathBuf::from("/var/lib/warrant"),
            Mode::User => xdg_dir("XDG_STATE_HOME", ".local/state").join("warrant"),
        }
    }
}

/// `$var`, else `$HOME/fallback`. A relative `$var` is ignored, as the XDG Base Directory
/// specification requires (it would depend on the working directory).
fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from).filter(|d| d.is_absolute()) {
        Some(dir) => dir,
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(fallback),
    }
}

/// Refuses a default path taken from the environment (`$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`,
/// `$HOME`) that is relative or holds a control character: a newline in one would become a line
/// of a generated configuration, a relative one another file in another directory.
pub fn environment_path(what: &str, path: &Path) -> Result<(), Error> {
    let why = if !path.is_absolute() {
        "is not absolute"
    } else if path.to_string_lossy().chars().any(char::is_control) {
        "holds a control character"
    } else {
        return Ok(());
    };
    Err(Error::Config(format!(
        "the {what} {path:?}, from $XDG_CONFIG_HOME, $XDG_STATE_HOME or $HOME, {why}: fix the environment, or name a configuration file with --config"
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mode: Option<Mode>,
    socket: Option<PathBuf>,
    socket_group: Option<String>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    authority: AuthorityConfig,
    #[serde(default)]
    device: DeviceConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    audit: AuditConfig,
    #[serde(default)]
    admin: AdminSection,
    #[serde(default)]
    rules: Vec<RuleSection>,
}

/// The authority's settings that live in the configuration (the rest is in its database).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorityConfig {
    /// PEM files of the CA certificates TPM EK certificates must chain to (the TPM vendors'
    /// roots and intermediates; swtpm's local CA in tests). Read when a TPM challenge is made.
    pub tpm_ek_roots: Vec<PathBuf>,
    /// PEM files of roots trusted for YubiKey PIV attestation besides Yubico's compiled-in
    /// ones (a virtual card's test CA; never in production).
    pub yubikey_roots: Vec<PathBuf>,
    /// Accept ECDSA keys on YubiKey firmware below 5.7.0 (YSA-2024-03).
    pub allow_ysa_2024_03: bool,
}

/// The device side's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// URLs of the status lists of the authorities whose grants this device signs under
    /// (`https://`, or `http://` to a loopback address), fetched on each list's schedule
    /// (`iat + ttl`, retries backing off, jittered): cached TPM quotes are bound to the newest
    /// list without `warrant sign --status-list`.
    pub status_urls: Vec<String>,
    /// PEM CA certificates the status hosts' certificates must chain to (default: the system's
    /// roots).
    pub status_ca: Option<PathBuf>,
}

impl DeviceConfig {
    /// How the status URLs are fetched.
    pub fn fetch_options(&self) -> warrant_http::FetchOptions {
        warrant_http::FetchOptions { ca_file: self.status_ca.clone(), ..Default::default() }
    }
}

/// Resource limits; each refusal is an error to its client, never the daemon's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers, milliseconds.
    pub header_timeout_ms: u64,
    /// Time a request may take in all (body included), milliseconds.
    pub request_timeout_ms: u64,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections one uid may hold at once; more are answered 429 and closed, so one uid
    /// cannot take every slot. Default: three quarters of `max_connections` (at least 1),
    /// which leaves a quarter to the other uids.
    pub max_connections_per_uid: Option<usize>,
    /// Time a response may wait for its client to read it, milliseconds; a client that does
    /// not drain its answers in time has its connection closed.
    pub write_timeout_ms: u64,
    /// Refusals audited line by line per uid: the bucket's size ...
    pub refusal_burst: u32,
    /// ... and how many tokens it regains per second. Beyond it, refusals are answered 429
    /// and only counted.
    pub refusals_per_second: u32,
    /// How often the counts of refusals not written line by line are written, one line per
    /// uid, milliseconds.
    pub refusal_summary_ms: u64,
    /// Time in-flight requests get to finish on SIGTERM, milliseconds.
    pub drain_timeout_ms: u64,
}

impl Limits {
    /// The connections one uid may hold, within `max_connections`.
    pub fn per_uid_connections(&self, max_connections: usize) -> usize {
        let default = self.max_connections - self.max_connections / 4;
        self.max_connections_per_uid.unwrap_or(default).clamp(1, max_connections.max(1))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            header_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            max_connections: 512,
            max_connections_per_uid: None,
            write_timeout_ms: 10_000,
            refusal_burst: 100,
            refusals_per_second: 10,
            refusal_summary_ms: 10_000,
            drain_timeout_ms: 10_000,
        }
    }
}

/// When audit lines are flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Each answer waits until its audit line is on disk (lines arriving together share one fsync).
    #[default]
    Line,
    /// Answers do not wait; lines are written and synced in batches.
    Batch,
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Append JSON lines to this file.
    pub file: Option<PathBuf>,
    /// Also write them to standard output (for journald).
    pub stdout: bool,
    /// Durability of file lines.
    pub fsync: Fsync,
    /// With `fsync = "batch"`: longest time between a line and its fsync, milliseconds.
    pub batch_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { file: None, stdout: false, fsync: Fsync::Line, batch_interval_ms: 100 }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    #[serde(default)]
    uids: Vec<u32>,
    #[serde(default)]
    gids: Vec<u32>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Effect {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    name: String,
    #[serde(default)]
    effect: Effect,
    #[serde(default)]
    uids: Vec<u32>,
    #[serde(default)]
    gids: Vec<u32>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    exe: Vec<PathBuf>,
    operations: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
    rate: Option<RateSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateSection {
    requests: u32,
    per_seconds: u32,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// User or system mode.
    pub mode: Mode,
    /// The socket path.
    pub socket: PathBuf,
    /// The group given the socket (system mode: `warrant` when it exists).
    pub socket_gid: Option<u32>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The key store (`[keystore]`; the software store when absent).
    pub keystore: KeyStoreConfig,
    /// The authority's configured settings.
    pub authority: AuthorityConfig,
    /// The device side's settings.
    pub device: DeviceConfig,
    /// Limits.
    pub limits: Limits,
    /// Audit destinations.
    pub audit: AuditConfig,
    /// Authorization rules.
    pub rules: RuleSet,
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "{}: {e}{}",
                path.display(),
                if e.kind() == std::io::ErrorKind::NotFound {
                    " (write one with `warrant setup`, or name another with --config; every setting is in warrantd.toml(5), whose example is docs/agent.example.toml)"
                } else {
                    ""
                }
            ))
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let at = Source::parse(path, text)?;
        // Nothing set would run a daemon that refuses every caller with unsealed software
        // keys: more likely a failed write or a stray `touch` than a wish. In user mode the
        // defaults are for a file that is not there at all.
        if at.root.is_empty() {
            return Err(Error::Config(format!(
                "{}: sets nothing (empty, or comments only): write one with `warrant setup --force` (in user mode, removing it runs warrantd on the built-in defaults)",
                path.display()
            )));
        }
        let (file, keystore) = at.read()?;
        let mode = file.mode.unwrap_or_else(Mode::default_for_this_process);
        let socket = match file.socket {
            Some(s) => s,
            None => mode.default_socket().ok_or_else(|| {
                at.key_error(
                    "socket",
                    "no socket path: set `socket`, or run where $XDG_RUNTIME_DIR is set (user mode)",
                )
            })?,
        };
        let socket_gid = match (&file.socket_group, mode) {
            (Some(name), _) => Some(resolve_group(name).map_err(|e| at.key_error("socket_group", &e))?),
            (None, Mode::System) => resolve_group(crate::system_unit::GROUP).ok(),
            (None, Mode::User) => None,
        };
        keystore.check().map_err(|e| at.key_error(&format!("keystore.{}", e.key), &e.reason))?;
        let mut paths: Vec<(String, &Path)> = vec![("socket".to_owned(), socket.as_path())];
        paths.extend(file.state_dir.as_deref().map(|p| ("state_dir".to_owned(), p)));
        paths.extend(file.audit.file.as_deref().map(|p| ("audit.file".to_owned(), p)));
        for (key, list) in
            [("tpm_ek_roots", &file.authority.tpm_ek_roots), ("yubikey_roots", &file.authority.yubikey_roots)]
        {
            paths
                .extend(list.iter().enumerate().map(|(i, p)| (format!("authority.{key}[{i}]"), p.as_path())));
        }
        paths.extend(file.device.status_ca.as_deref().map(|p| ("device.status_ca".to_owned(), p)));
        if let Some((key, path)) = paths.iter().find(|(_, p)| !p.is_absolute()) {
            let message = format!(
                "{} is a relative path: give it from / (a relative one depends on the directory warrantd runs in)",
                path.display()
            );
            return Err(at.key_error(key, &message));
        }
        // Checked as they will be fetched: the URL's form, and the CA file.
        let options = file.device.fetch_options();
        for (i, url) in file.device.status_urls.iter().enumerate() {
            if let Err(e) = warrant_http::HttpStatusSource::new(url, &options) {
                let key = match e {
                    warrant_http::Error::StatusUrl { .. } => format!("device.status_urls[{i}]"),
                    _ => "device.status_ca".to_owned(),
                };
                return Err(at.key_error(&key, &e.to_string()));
            }
        }
        let l = file.limits;
        for (key, ok) in [
            ("max_body_bytes", l.max_body_bytes >= 1024),
            ("header_timeout_ms", l.header_timeout_ms >= 100),
            ("request_timeout_ms", l.request_timeout_ms >= 100),
            ("max_connections", l.max_connections >= 1),
            ("max_connections_per_uid", l.max_connections_per_uid.is_none_or(|n| n >= 1)),
            ("write_timeout_ms", l.write_timeout_ms >= 100),
            ("refusal_burst", l.refusal_burst >= 1),
            ("refusals_per_second", l.refusals_per_second >= 1),
            ("refusal_summary_ms", l.refusal_summary_ms >= 100),
        ] {
            if !ok {
                return Err(at.key_error(&format!("limits.{key}"), "is too small to serve anything"));
            }
        }
        let mut rules = Vec::new();
        for (i, section) in file.rules.into_iter().enumerate() {
            rules.push(rule(&at, i, section)?);
        }
        for (i, rule) in rules.iter().enumerate() {
            if rules[..i].iter().any(|earlier| earlier.name == rule.name) {
                let message = format!("two rules are named {:?}", rule.name);
                return Err(at.key_error(&format!("rules[{i}].name"), &message));
            }
        }
        let admin = Subjects {
            uids: file.admin.uids,
            gids: resolve_groups(&at, "admin", file.admin.gids, &file.admin.groups)?,
            exe: Vec::new(),
        };
        Ok(Self {
            path: path.to_owned(),
            mode,
            socket,
            socket_gid,
            state_dir: file.state_dir.unwrap_or_else(|| mode.default_state_dir()),
            keystore,
            authority: file.authority,
            device: file.device,
            limits: file.limits,
            audit: file.audit,
            rules: RuleSet::new(rules, admin),
        })
    }
}

/// A configuration for one user who runs both the authority and a device, everything under
/// `dir`: `uid` is admin and, by the rule `owner`, may use every device key for `audience`.
/// The demo runs on it, and so do the tests.
pub fn single_user(dir: &Path, uid: u32, audience: &str) -> String {
    format!(
        r#"socket = "{socket}"
state_dir = "{state}"

[audit]
file = "{audit}"

[admin]
uids = [{uid}]

[[rules]]
name = "owner"
uids = [{uid}]
operations = ["keys.create", "keys.list", "keys.read", "keys.delete", "enroll", "sign"]
audiences = ["{audience}"]
"#,
        socket = dir.join("run/agent.sock").display(),
        state = dir.join("state").display(),
        audit = dir.join("audit.jsonl").display(),
    )
}

fn rule(at: &Source<'_>, index: usize, s: RuleSection) -> Result<Rule, Error> {
    let err = |key: &str, msg: &str| {
        at.key_error(&format!("rules[{index}].{key}"), &format!("rule {:?}: {msg}", s.name))
    };
    if s.name.is_empty() || s.name == super::rules::DEFAULT_DENY || s.name == super::rules::ADMIN {
        return Err(err("name", "this name is empty or reserved"));
    }
    let mut gids = s.gids.clone();
    for name in &s.groups {
        gids.push(resolve_group(name).map_err(|e| err("groups", &e))?);
    }
    if s.uids.is_empty() && gids.is_empty() {
        return Err(err(
            "uids",
            "name its callers with `uids`, `gids` or `groups` (rules never match everyone)",
        ));
    }
    if s.operations.is_empty() {
        return Err(err("operations", "list the operations it covers"));
    }
    let mut operations = Vec::new();
    for op in &s.operations {
        match Operation::parse(op) {
            Some(o) if !o.is_authority() => operations.push(o),
            Some(_) => {
                return Err(err(
                    "operations",
                    &format!("{op:?} is an authority operation: grant it with [admin]"),
                ))
            }
            None => {
                return Err(err(
                    "operations",
                    &format!("unknown operation {op:?}; known: {}", Operation::RULE_OPERATIONS.join(", ")),
                ))
            }
        }
    }
    for (key, patterns) in [("keys", &s.keys), ("audiences", &s.audiences), ("actions", &s.actions)] {
        if let Some(p) = patterns.iter().find(|p| p.is_empty() || p[..p.len() - 1].contains('*')) {
            return Err(err(key, &format!("pattern {p:?}: `*` is allowed only at the end")));
        }
    }
    let rate = match s.rate {
        Some(r) if r.requests == 0 || r.per_seconds == 0 => {
            return Err(err("rate", "requests and per_seconds must be at least 1"))
        }
        Some(r) => Some((r.requests, r.per_seconds)),
        None => None,
    };
    Ok(Rule {
        name: s.name.clone(),
        allow: s.effect == Effect::Allow,
        subjects: Subjects { uids: s.uids, gids, exe: s.exe },
        operations,
        keys: s.keys,
        audiences: s.audiences,
        actions: s.actions,
        rate,
    })
}

fn resolve_groups(
    at: &Source<'_>,
    table: &str,
    mut gids: Vec<u32>,
    names: &[String],
) -> Result<Vec<u32>, Error> {
    for name in names {
        gids.push(resolve_group(name).map_err(|e| at.key_error(&format!("{table}.groups"), &e))?);
    }
    Ok(gids)
}

fn resolve_group(name: &str) -> Result<u32, String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("no group named {name:?} on this system")),
        Err(e) => Err(format!("looking up group {name:?}: {e}")),
    }
}

/// The file as the TOML parser read it: every key with its position, so that errors name the
/// file, the line and the key.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    root: DeTable<'a>,
}

impl<'a> Source<'a> {
    fn parse(path: &'a Path, text: &'a str) -> Result<Self, Error> {
        let root = DeTable::parse(text).map_err(|e| {
            Error::Config(format!("{}{}", at_line(path, text, e.span()), e.message().trim_end()))
        })?;
        Ok(Self { path, text, root: root.into_inner() })
    }

    /// The file's sections (all but `[keystore]`), and the key store's configuration: its
    /// `backend` (default: soft) picks the settings type the rest of the table is read as.
    fn read(&self) -> Result<(File, KeyStoreConfig), Error> {
        let mut rest = self.root.clone();
        let keystore = rest.remove("keystore");
        let file = File::deserialize(toml::de::Deserializer::from(Spanned::new(0..self.text.len(), rest)))
            .map_err(|e| self.toml_error(&e))?;
        let keystore = match keystore {
            None => KeyStoreConfig::default(),
            Some(table) => self.keystore(table)?,
        };
        Ok((file, keystore))
    }

    fn keystore(&self, table: Spanned<DeValue<'a>>) -> Result<KeyStoreConfig, Error> {
        let span = table.span();
        let DeValue::Table(mut settings) = table.into_inner() else {
            return Err(self.key_error("keystore", "must be a table"));
        };
        let name = match settings.remove("backend") {
            None => KeyStoreConfig::default().backend().name.to_owned(),
            Some(value) => match value.get_ref().as_str() {
                Some(name) => name.to_owned(),
                None => return Err(self.key_error("keystore.backend", "must be a string")),
            },
        };
        let backend = warrant_hsm_backends::backend(&name)
            .map_err(|e| self.key_error("keystore.backend", &e.reason))?;
        KeyStoreConfig::from_settings(
            backend.name,
            toml::de::Deserializer::from(Spanned::new(span, settings)),
        )
        .map_err(|e| self.toml_error_about(&e, &format!(" (backend = {name:?})")))
    }

    fn toml_error(&self, e: &toml::de::Error) -> Error {
        self.toml_error_about(e, "")
    }

    /// A parser or type error, at the key it is about; `context` is appended to its message.
    fn toml_error_about(&self, e: &toml::de::Error, context: &str) -> Error {
        let message = e.message().trim_end();
        let key = e.span().and_then(|span| {
            let mut path = Vec::new();
            key_at(&self.root, span.start, &mut path).then(|| dotted(&path))
        });
        let at = at_line(self.path, self.text, e.span());
        match key {
            Some(key) => Error::Config(format!("{at}key `{key}`: {message}{context}")),
            None => Error::Config(format!("{at}{message}{context}")),
        }
    }

    /// An error about `key` (`table.key`, `rules[2].key`), at its line, or at its table's
    /// where the key is missing.
    fn key_error(&self, key: &str, message: &str) -> Error {
        let mut table = &self.root;
        let mut found = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((name, index)) => (name, index.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((k, v)) = table.get_key_value(name) else { break };
            found = Some(k.span());
            let value = match (v.get_ref(), index) {
                (DeValue::Array(items), Some(i)) => match items.get(i) {
                    Some(item) => {
                        found = Some(item.span());
                        item.get_ref()
                    }
                    None => break,
                },
                (value, _) => value,
            };
            match value {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        Error::Config(format!("{}key `{key}`: {message}", at_line(self.path, self.text, found)))
    }
}

/// `path:line: `, or `path: ` without a position.
fn at_line(path: &Path, text: &str, span: Option<Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
            format!("{}:{line}: ", path.display())
        }
        None => format!("{}: ", path.display()),
    }
}

/// Finds the key whose name or value holds `offset`, the innermost one; `path` gets its names
/// (and array indices).
fn key_at(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if key.span().contains(&offset) || in_value(value, offset, path) || value.span().contains(&offset) {
            return true;
        }
        path.pop();
    }
    false
}

fn in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<String>) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => key_at(table, offset, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(format!("[{i}]"));
            let found =
                in_value(item, offset, path) || (item.get_ref().is_table() && item.span().contains(&offset));
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

/// `["rules", "[0]", "uids"]` as `rules[0].uids`.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(Path::new("/etc/warrant/agent.toml"), text)
    }

    const GOOD: &str = r#"
socket = "/tmp/w.sock"
state_dir = "/tmp/w"

[limits]
max_body_bytes = 65536

[admin]
uids = [0]

[[rules]]
name = "developers"
uids = [1000]
operations = ["sign", "enroll", "keys.list"]
keys = ["laptop-*"]
rate = { requests = 10, per_seconds = 1 }
"#;

    #[test]
    fn relative_paths_are_refused_at_their_line() {
        for (key, line) in [
            ("socket", "socket = \"agent.sock\""),
            ("state_dir", "state_dir = \"state\""),
            ("audit.file", "[audit]\nfile = \"audit.jsonl\""),
            ("authority.tpm_ek_roots[1]", "[authority]\ntpm_ek_roots = [\"/ca.pem\", \"ca.pem\"]"),
            ("authority.yubikey_roots[0]", "[authority]\nyubikey_roots = [\"./root.pem\"]"),
        ] {
            let socket = if key == "socket" { "" } else { "socket = \"/run/t.sock\"\n" };
            let text = format!("mode = \"user\"\n{socket}{line}\n");
            let e = Config::parse(Path::new("/etc/x.toml"), &text).unwrap_err().to_string();
            let at = text.lines().count();
            assert!(e.contains(&format!("/etc/x.toml:{at}")) && e.contains("relative path"), "{key}: {e}");
        }
    }

    #[test]
    fn device_status_urls_are_checked_as_they_will_be_fetched_and_refused_at_their_line() {
        let base = "mode = \"user\"\nsocket = \"/run/t.sock\"\n[device]\n";
        let good = format!(
            "{base}status_urls = [\"https://status.example.com/status/1\", \"http://127.0.0.1:8080/s/2\"]\n"
        );
        let config = Config::parse(Path::new("/etc/x.toml"), &good).unwrap();
        assert_eq!(config.device.status_urls.len(), 2);
        for (line, key, says) in [
            (
                "status_urls = [\"https://s.example.com/1\", \"http://s.example.com/1\"]",
                "device.status_urls[1]",
                "plain http is only",
            ),
            ("status_urls = [\"https://s.example.com/\"]", "device.status_urls[0]", "must name a file"),
            ("status_ca = \"ca.pem\"", "device.status_ca", "relative path"),
            (
                "status_urls = [\"https://s.example.com/1\"]\nstatus_ca = \"/nonexistent/ca.pem\"",
                "device.status_ca",
                "/nonexistent/ca.pem",
            ),
            ("status_url = \"https://s.example.com/1\"", "", "unknown field `status_url`"),
        ] {
            let text = format!("{base}{line}\n");
            let e = Config::parse(Path::new("/etc/x.toml"), &text).unwrap_err().to_string();
            let at = text.lines().count();
            assert!(
                e.contains(&format!("/etc/x.toml:{at}")) && e.contains(key) && e.contains(says),
                "{line}: {e}"
            );
        }
    }

    #[test]
    fn environment_paths_must_be_absolute_and_plain() {
        assert!(environment_path("state directory", Path::new("/home/a b/.local/state")).is_ok());
        let e = environment_path("state directory", Path::new("/s\nsocket = \"/x\"")).unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
        let e = environment_path("configuration file", Path::new("config/warrant/agent.toml")).unwrap_err();
        assert!(e.to_string().contains("not absolute"), "{e}");
    }

    #[test]
    fn a_file_that_sets_nothing_is_refused() {
        for text in ["", "\n\n", "# nothing here yet\n   # nor here\n"] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("/etc/warrant/agent.toml: sets nothing") && e.contains("warrant setup"),
                "{text:?}: {e}"
            );
        }
        // One setting is a file someone wrote (the rest takes the defaults).
        parse("mode = \"user\"\nsocket = \"/run/t.sock\"\n").unwrap();
    }

    #[test]
    fn a_good_file_parses() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.socket, PathBuf::from("/tmp/w.sock"));
        assert_eq!(config.limits.max_body_bytes, 65536);
        assert_eq!(config.limits.header_timeout_ms, 5000);
        assert_eq!(config.audit.fsync, Fsync::Line);
    }

    #[test]
    fn the_documented_example_is_valid_and_so_are_its_commented_rules() {
        let text = include_str!("../../../docs/agent.example.toml");
        let config = parse(text).unwrap();
        assert_eq!(config.mode, Mode::System);
        assert_eq!(config.rules.len(), 1, "as shipped, only [admin]");
        // The examples, uncommented, with group names that exist everywhere.
        let rules: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [[rules]]"))
            .map(|l| l.strip_prefix("# ").or(l.strip_prefix('#')).unwrap_or(l))
            .map(|l| format!("{}\n", l.replace("\"developers\"", "\"root\"")))
            .collect();
        let config = parse(&format!("{text}\n{rules}")).unwrap();
        assert_eq!(config.rules.len(), 3);
        // The status URL example, uncommented.
        let fetching = text.replace("# status_urls = ", "status_urls = ");
        assert_eq!(parse(&fetching).unwrap().device.status_urls, ["https://status.example.com/status/1"]);
    }

    #[test]
    fn syntax_and_type_errors_name_file_line_and_key() {
        let e = parse(&GOOD.replace("max_body_bytes = 65536", "max_body_bytes = \"big\"")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:6: key `limits.max_body_bytes`"), "{e}");
        let e = parse(&GOOD.replace("max_body_bytes", "max_bodybytes")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:6: key `limits.max_bodybytes`"), "{e}");
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e =
            parse(&GOOD.replace("name = \"developers\"", "name = \"developers\"\nratee = 1")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:13: key `rules[0].ratee`"), "{e}");
        let e = parse(&GOOD.replace("[limits]", "[limits\n")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:5: "), "{e}");
    }

    #[test]
    fn semantic_errors_name_file_line_and_key() {
        let e = parse(&GOOD.replace("\"keys.list\"", "\"keys.lst\"")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:14: key `rules[0].operations`"), "{e}");
        assert!(e.to_string().contains("unknown operation \"keys.lst\""), "{e}");
        let e = parse(&GOOD.replace("uids = [1000]\n", "")).unwrap_err();
        assert!(e.to_string().contains("key `rules[0].uids`"), "{e}");
        let e = parse(&GOOD.replace("requests = 10", "requests = 0")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:16: key `rules[0].rate`"), "{e}");
        let e = parse(&GOOD.replace("\"laptop-*\"", "\"lap*top\"")).unwrap_err();
        assert!(e.to_string().contains("`*` is allowed only at the end"), "{e}");
        let e = parse(&GOOD.replace("\"sign\"", "\"authority.grant\"")).unwrap_err();
        assert!(e.to_string().contains("grant it with [admin]"), "{e}");
        let e = parse(&GOOD.replace("[admin]\nuids = [0]", "[admin]\ngroups = [\"no-such-group-xyz\"]"))
            .unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:9: key `admin.groups`"), "{e}");
        let e = parse(&format!(
            "{GOOD}\n[[rules]]\nname = \"developers\"\nuids = [1]\noperations = [\"sign\"]\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("two rules are named \"developers\""), "{e}");
        let e = parse(&GOOD.replace("[limits]", "[keystore]\nbackend = \"sgx\"\n[limits]")).unwrap_err();
        assert!(e.to_string().contains("key `keystore.backend`: unknown backend"), "{e}");
        let tpm = "[keystore]\nbackend = \"tpm\"\n";
        if cfg!(feature = "tpm") {
            let e = parse(&GOOD.replace("[limits]", &format!("{tpm}quote_pcrs = \"sha256:0,99\"\n[limits]")))
                .unwrap_err();
            assert!(e.to_string().contains("key `keystore.quote_pcrs`: PCR index \"99\""), "{e}");
            let e =
                parse(&GOOD.replace("[limits]", &format!("{tpm}module = \"/m.so\"\n[limits]"))).unwrap_err();
            assert!(e.to_string().contains(":7: key `keystore.module`: unknown field `module`"), "{e}");
            assert!(e.to_string().contains("(backend = \"tpm\")"), "{e}");
            let e = parse(&GOOD.replace("[limits]", &format!("{tpm}quote_cache_seconds = 0\n[limits]")))
                .unwrap_err();
            assert!(e.to_string().contains("key `keystore.quote_cache_seconds`: must be 1 to 3600"), "{e}");
            let none = format!("{tpm}quote_pcrs = \"none\"\nquote_cache_seconds = 60\n[limits]");
            let e = parse(&GOOD.replace("[limits]", &none)).unwrap_err();
            assert!(e.to_string().contains("no quotes to cache"), "{e}");
            let ok = format!("{tpm}tcti = \"swtpm:port=2321\"\nquote_pcrs = \"sha256:0,7+sha1:7\"\nquote_cache_seconds = 60\n[limits]");
            parse(&GOOD.replace("[limits]", &ok)).unwrap();
        } else {
            let e = parse(&GOOD.replace("[limits]", &format!("{tpm}[limits]"))).unwrap_err();
            assert!(
                e.to_string().contains(
                    ":6: key `keystore.backend`: this build has no tpm backend; built with: soft, pkcs11"
                ),
                "{e}"
            );
        }
        let yk = "[keystore]\nbackend = \"yubikey\"\n";
        if cfg!(feature = "yubikey") {
            let e = parse(&GOOD.replace("[limits]", &format!("{yk}[limits]"))).unwrap_err();
            assert!(e.to_string().contains("key `keystore.pin_file`: give exactly one"), "{e}");
            let with_pin = format!("{yk}pin_askpass = \"/usr/bin/ssh-askpass\"\n");
            let e = parse(&GOOD.replace("[limits]", &format!("{with_pin}slots = [\"9b\"]\n[limits]")))
                .unwrap_err();
            assert!(e.to_string().contains("key `keystore.slots`: \"9b\" is not a key slot"), "{e}");
            let e =
                parse(&GOOD.replace("[limits]", &format!("{with_pin}touch_policy = \"often\"\n[limits]")))
                    .unwrap_err();
            assert!(
                e.to_string().contains(":8: key `keystore.touch_policy`: unknown variant `often`"),
                "{e}"
            );
            let e =
                parse(&GOOD.replace("[limits]", &format!("{with_pin}pin_policy = 1\n[limits]"))).unwrap_err();
            assert!(e.to_string().contains(":8: key `keystore.pin_policy`: wanted string"), "{e}");
            let e =
                parse(&GOOD.replace("[limits]", &format!("{with_pin}tcti = \"x\"\n[limits]"))).unwrap_err();
            assert!(e.to_string().contains(":8: key `keystore.tcti`: unknown field `tcti`"), "{e}");
            let ok = format!(
                "{with_pin}serial_number = 7\nslots = [\"9c\", \"82\"]\npin_policy = \"always\"\n[limits]"
            );
            parse(&GOOD.replace("[limits]", &ok)).unwrap();
        } else {
            let e = parse(&GOOD.replace("[limits]", &format!("{yk}[limits]"))).unwrap_err();
            assert!(
                e.to_string().contains("key `keystore.backend`: this build has no yubikey backend"),
                "{e}"
            );
        }
        let e = parse(&GOOD.replace("[limits]", "[keystore]\ntcti = \"x\"\n[limits]")).unwrap_err();
        assert!(e.to_string().contains(":6: key `keystore.tcti`: unknown field `tcti`"), "{e}");
        assert!(e.to_string().contains("(backend = \"soft\")"), "{e}");
        let soft = "[keystore]\nbackend = \"soft\"\ndir = \"/k\"\n";
        let e = parse(&GOOD.replace("[limits]", &format!("{soft}slot = \"9c\"\n[limits]"))).unwrap_err();
        assert!(
            e.to_string().starts_with("/etc/warrant/agent.toml:8: key `keystore.slot`: unknown field"),
            "{e}"
        );
        let e = parse(&GOOD.replace("[limits]", "[keystore]\nbackend = 7\n[limits]")).unwrap_err();
        assert!(e.to_string().contains(":6: key `keystore.backend`: must be a string"), "{e}");
        let e = parse(
            &GOOD.replace("[limits]", "[keystore]\nbackend = \"pkcs11\"\nmodule = \"/m.so\"\n[limits]"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("key `keystore.token`"), "{e}");
        let pkcs11 = "[keystore]\nbackend = \"pkcs11\"\nmodule = \"/m.so\"\ntoken = \"t\"\n";
        let e = parse(&GOOD.replace("[limits]", &format!("{pkcs11}[limits]"))).unwrap_err();
        assert!(e.to_string().contains("exactly one of pin_file"), "{e}");
        let e = parse(&GOOD.replace("[limits]", &format!("{pkcs11}pin_env = \"P\"\ndir = \"/k\"\n[limits]")))
            .unwrap_err();
        assert!(e.to_string().contains(":10: key `keystore.dir`: unknown field `dir`"), "{e}");
        parse(&GOOD.replace("[limits]", &format!("{pkcs11}pin_env = \"P\"\n[limits]"))).unwrap();
        let by_uri = "[keystore]\nbackend = \"pkcs11\"\npin_env = \"P\"\nuri = ";
        let e = parse(&GOOD.replace("[limits]", &format!("{by_uri}\"pkcs11:token=t;slot-id=1\"\n[limits]")))
            .unwrap_err();
        assert!(e.to_string().contains("key `keystore.uri`") && e.to_string().contains("slot ids"), "{e}");
        let e =
            parse(&GOOD.replace("[limits]", &format!("{by_uri}\"pkcs11:token=t\"\n[limits]"))).unwrap_err();
        assert!(e.to_string().contains("module-path"), "{e}");
        parse(&GOOD.replace("[limits]", &format!("{by_uri}\"pkcs11:token=t?module-path=/m.so\"\n[limits]")))
            .unwrap();
    }
}
