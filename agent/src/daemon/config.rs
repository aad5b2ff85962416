//! `agent.toml`: the daemon's configuration, parsed strictly and validated as a whole before it
//! is used, with errors that name the file, the line and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use warrant_hsm_backends::pkcs11::Pkcs11Uri;

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

    /// The default socket path, if one can be named.
    pub fn default_socket(self) -> Option<PathBuf> {
        match self {
            Mode::System => Some(PathBuf::from(warrant_api::socket::SYSTEM)),
            Mode::User => warrant_api::socket::user(),
        }
    }

    fn default_state_dir(self) -> PathBuf {
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

fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(fallback),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mode: Option<Mode>,
    socket: Option<PathBuf>,
    socket_group: Option<String>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    keystore: KeyStoreConfig,
    #[serde(default)]
    authority: AuthorityConfig,
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

/// Which key store holds the keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyStoreConfig {
    /// `soft` (files), `pkcs11` (a token or HSM) or `tpm` (a TPM 2.0).
    pub backend: String,
    /// soft, tpm: the store's directory (default: `keys`, or `tpm-keys`, in the state directory).
    pub dir: Option<PathBuf>,
    /// soft: a file holding the passphrase that seals the keys.
    pub passphrase_file: Option<PathBuf>,
    /// pkcs11: the token as an RFC 7512 URI (`pkcs11:token=...?module-path=...`), instead of
    /// `module` and `token`/`serial`.
    pub uri: Option<String>,
    /// pkcs11: the module (shared library) to load.
    pub module: Option<PathBuf>,
    /// pkcs11: the token's label.
    pub token: Option<String>,
    /// pkcs11: the token's serial number.
    pub serial: Option<String>,
    /// pkcs11: a file (mode 0600) holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// pkcs11: a systemd credential holding the user PIN.
    pub pin_credential: Option<String>,
    /// pkcs11: an environment variable holding the user PIN (for tests).
    pub pin_env: Option<String>,
    /// tpm: the TCTI (default `device:/dev/tpmrm0`; also `swtpm:host=...,port=...`, `tabrmd`).
    pub tcti: Option<String>,
    /// tpm: the PCRs quoted into every warrant, as `sha256:0,1,2,3,4,5,6,7` (banks joined by
    /// `+`), or `none` for warrants without a quote. Default: SHA-256 PCRs 0-7.
    pub quote_pcrs: Option<String>,
    /// tpm: reuse one quote per grant for at most this many seconds (1 to 3600) instead of
    /// quoting for every warrant. The quote is bound to the newest status list of the grant's
    /// authority that warrantd was given with a sign request (a new list, a new quote); with
    /// none known, every warrant gets its own quote. Verifiers see the quote's age
    /// (`quote_age`, from the list's `iat`) and their policy decides.
    pub quote_cache_seconds: Option<u64>,
    /// yubikey: the card's serial (needed when several are present).
    pub serial_number: Option<u32>,
    /// yubikey: slots new keys may take, in order (default: retired slots 82-95).
    pub slots: Option<Vec<String>>,
    /// yubikey: PIN policy of new keys (`never`, `once`, `always`; default `once`).
    pub pin_policy: Option<String>,
    /// yubikey: touch policy of new keys (`never`, `always`, `cached`; default `never`).
    pub touch_policy: Option<String>,
    /// pkcs11, tpm, yubikey: a program that prints the PIN (an askpass or pinentry wrapper,
    /// for workstations).
    pub pin_askpass: Option<PathBuf>,
}

impl Default for KeyStoreConfig {
    fn default() -> Self {
        Self {
            backend: "soft".into(),
            dir: None,
            passphrase_file: None,
            uri: None,
            module: None,
            token: None,
            serial: None,
            pin_file: None,
            pin_credential: None,
            pin_env: None,
            tcti: None,
            quote_pcrs: None,
            quote_cache_seconds: None,
            serial_number: None,
            slots: None,
            pin_policy: None,
            touch_policy: None,
            pin_askpass: None,
        }
    }
}

impl KeyStoreConfig {
    /// Checks the settings belong to the backend; returns the offending key and why.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let token = [
            ("uri", self.uri.is_some()),
            ("module", self.module.is_some()),
            ("token", self.token.is_some()),
            ("serial", self.serial.is_some()),
        ];
        let pins = [
            ("pin_file", self.pin_file.is_some()),
            ("pin_credential", self.pin_credential.is_some()),
            ("pin_env", self.pin_env.is_some()),
            ("pin_askpass", self.pin_askpass.is_some()),
        ];
        let yubikey_set = [
            ("serial_number", self.serial_number.is_some()),
            ("slots", self.slots.is_some()),
            ("pin_policy", self.pin_policy.is_some()),
            ("touch_policy", self.touch_policy.is_some()),
        ];
        let tpm_set = [
            ("tcti", self.tcti.is_some()),
            ("quote_pcrs", self.quote_pcrs.is_some()),
            ("quote_cache_seconds", self.quote_cache_seconds.is_some()),
        ];
        let dir = [("dir", self.dir.is_some())];
        let passphrase = [("passphrase_file", self.passphrase_file.is_some())];
        let (foreign, backend): (Vec<_>, _) = match self.backend.as_str() {
            "soft" => (token.iter().chain(&pins).chain(&tpm_set).chain(&yubikey_set).collect(), "soft"),
            "pkcs11" => {
                (dir.iter().chain(&passphrase).chain(&tpm_set).chain(&yubikey_set).collect(), "pkcs11")
            }
            "tpm" if cfg!(feature = "tpm") => {
                (token.iter().chain(&passphrase).chain(&yubikey_set).collect(), "tpm")
            }
            "yubikey" if cfg!(feature = "yubikey") => {
                (token.iter().chain(&passphrase).chain(&tpm_set).collect(), "yubikey")
            }
            "yubikey" => {
                return Err((
                    "backend",
                    "this build of warrantd has no YubiKey support (built without the `yubikey` feature)"
                        .into(),
                ))
            }
            "tpm" => {
                return Err((
                    "backend",
                    "this build of warrantd has no TPM support (built without the `tpm` feature)".into(),
                ))
            }
            other => {
                let mut built = vec!["soft", "pkcs11"];
                built.extend(cfg!(feature = "tpm").then_some("tpm"));
                built.extend(cfg!(feature = "yubikey").then_some("yubikey"));
                let built = built.join(", ");
                return Err(("backend", format!("unknown backend {other:?}; this build has: {built}")));
            }
        };
        if let Some((key, _)) = foreign.iter().find(|(_, set)| *set) {
            return Err((key, format!("does not apply to the {backend} backend")));
        }
        if backend == "pkcs11" {
            if let Some(uri) = &self.uri {
                if let Some((key, _)) = token[1..].iter().find(|(_, set)| *set) {
                    return Err((key, "give the token either as `uri` or as module and token/serial".into()));
                }
                let parsed = Pkcs11Uri::parse(uri).map_err(|e| ("uri", e.to_string()))?;
                if parsed.module_path.is_none() {
                    return Err(("uri", "the URI needs ?module-path=... (the module to load)".into()));
                }
            } else {
                if self.module.is_none() {
                    return Err(("module", "the pkcs11 backend needs the module's path (or a `uri`)".into()));
                }
                if self.token.is_none() && self.serial.is_none() {
                    return Err(("token", "name the token by label (token) or serial".into()));
                }
            }
        }
        let pin_count = pins.iter().filter(|(_, set)| *set).count();
        if pin_count > 1 || (matches!(backend, "pkcs11" | "yubikey") && pin_count != 1) {
            return Err((
                "pin_file",
                "give exactly one of pin_file, pin_credential, pin_env, pin_askpass".into(),
            ));
        }
        for slot in self.slots.iter().flatten() {
            parse_slot_name(slot).map_err(|e| ("slots", e))?;
        }
        for (key, value, allowed) in [
            ("pin_policy", &self.pin_policy, ["never", "once", "always"]),
            ("touch_policy", &self.touch_policy, ["never", "always", "cached"]),
        ] {
            if let Some(v) = value {
                if !allowed.contains(&v.as_str()) {
                    return Err((key, format!("{v:?} is not one of {}", allowed.join(", "))));
                }
            }
        }
        if let Some(spec) = &self.quote_pcrs {
            if spec != "none" {
                warrant_attestation::tpm::parse_pcr_selection(spec).map_err(|e| ("quote_pcrs", e))?;
            }
        }
        if let Some(seconds) = self.quote_cache_seconds {
            if !(1..=3600).contains(&seconds) {
                return Err(("quote_cache_seconds", "must be 1 to 3600 seconds".into()));
            }
            if self.quote_pcrs.as_deref() == Some("none") {
                return Err((
                    "quote_cache_seconds",
                    "there are no quotes to cache with quote_pcrs = \"none\"".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A PIV key slot: 9a, 9c, 9d, 9e or 82-95.
pub fn parse_slot_name(name: &str) -> Result<u8, String> {
    let slot = u8::from_str_radix(name, 16).ok().filter(|_| name.len() == 2);
    match slot {
        Some(s @ (0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95)) => Ok(s),
        _ => Err(format!("{name:?} is not a key slot (9a, 9c, 9d, 9e, 82-95)")),
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
    /// The key store.
    pub keystore: KeyStoreConfig,
    /// The authority's configured settings.
    pub authority: AuthorityConfig,
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
                    " (create it, or name another with --config; see docs/ARCHITECTURE.md for an example)"
                } else {
                    ""
                }
            ))
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let at = Locator { path, text };
        let file: File = toml::from_str(text).map_err(|e| at.toml_error(&e))?;
        let mode = file.mode.unwrap_or_else(Mode::default_for_this_process);
        let socket = match file.socket {
            Some(s) => s,
            None => mode.default_socket().ok_or_else(|| {
                at.error(
                    None,
                    "socket",
                    "no socket path: set `socket`, or run where $XDG_RUNTIME_DIR is set (user mode)",
                )
            })?,
        };
        let socket_gid = match (&file.socket_group, mode) {
            (Some(name), _) => Some(resolve_group(name).map_err(|e| at.error(None, "socket_group", &e))?),
            (None, Mode::System) => resolve_group("warrant").ok(),
            (None, Mode::User) => None,
        };
        if let Err((key, message)) = file.keystore.validate() {
            return Err(at.error(Some("keystore"), key, &message));
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
                return Err(at.error(Some("limits"), key, "is too small to serve anything"));
            }
        }
        let mut rules = Vec::new();
        for (i, section) in file.rules.into_iter().enumerate() {
            rules.push(rule(&at, i, section)?);
        }
        let mut names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(at.error(None, "name", &format!("two rules are named {:?}", w[0])));
        }
        let admin = Subjects {
            uids: file.admin.uids,
            gids: resolve_groups(&at, Some("admin"), file.admin.gids, &file.admin.groups)?,
            exe: Vec::new(),
        };
        Ok(Self {
            path: path.to_owned(),
            mode,
            socket,
            socket_gid,
            state_dir: file.state_dir.unwrap_or_else(|| mode.default_state_dir()),
            keystore: file.keystore,
            authority: file.authority,
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

fn rule(at: &Locator<'_>, index: usize, s: RuleSection) -> Result<Rule, Error> {
    let err = |key: &str, msg: &str| at.error_in_rule(index, key, &format!("rule {:?}: {msg}", s.name));
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

struct RuleTable(usize);

impl std::fmt::Display for RuleTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rules[{}]", self.0)
    }
}

fn resolve_groups(
    at: &Locator<'_>,
    table: Option<&str>,
    mut gids: Vec<u32>,
    names: &[String],
) -> Result<Vec<u32>, Error> {
    for name in names {
        gids.push(resolve_group(name).map_err(|e| at.error(table, "groups", &e))?);
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

/// Turns positions in the file into `file:line: key`.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn toml_error(&self, e: &toml::de::Error) -> Error {
        let Some(span) = e.span() else {
            return Error::Config(format!("{}: {}", self.path.display(), e.message()));
        };
        let line = self.line_of(span.start);
        let line_text = self.text.lines().nth(line - 1).unwrap_or("");
        let key = line_text.split('=').next().unwrap_or("").trim();
        Error::Config(format!("{}:{line}: key `{key}`: {}", self.path.display(), e.message().trim_end()))
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    /// An error about `key` in `[table]` (top level when `None`).
    fn error(&self, table: Option<&str>, key: &str, msg: &str) -> Error {
        let start = match table {
            None => Some(0),
            Some(t) => self.find_line_start(&format!("[{t}]")),
        };
        self.report(start, table, key, msg)
    }

    fn error_in_rule(&self, index: usize, key: &str, msg: &str) -> Error {
        let mut offset = 0;
        let mut start = None;
        let mut seen = 0;
        for line in self.text.split_inclusive('\n') {
            if line.trim() == "[[rules]]" {
                if seen == index {
                    start = Some(offset);
                    break;
                }
                seen += 1;
            }
            offset += line.len();
        }
        self.report(start, Some(&RuleTable(index).to_string()), key, msg)
    }

    fn find_line_start(&self, header: &str) -> Option<usize> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            if line.trim() == header {
                return Some(offset);
            }
            offset += line.len();
        }
        None
    }

    fn report(&self, table_start: Option<usize>, table: Option<&str>, key: &str, msg: &str) -> Error {
        let qualified = match table {
            Some(t) => format!("{t}.{key}"),
            None => key.to_owned(),
        };
        // The key's own line: the first `key =` after the table's header and before the next one.
        let line = table_start.and_then(|start| {
            let mut offset = start;
            for (i, line) in self.text[start..].split_inclusive('\n').enumerate() {
                let t = line.trim_start();
                if i > 0 && t.starts_with('[') {
                    break;
                }
                if t.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=')) {
                    return Some(self.line_of(offset));
                }
                offset += line.len();
            }
            (table.is_some()).then(|| self.line_of(start))
        });
        match line {
            Some(line) => Error::Config(format!("{}:{line}: key `{qualified}`: {msg}", self.path.display())),
            None => Error::Config(format!("{}: key `{qualified}`: {msg}", self.path.display())),
        }
    }
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
    }

    #[test]
    fn syntax_and_type_errors_name_file_line_and_key() {
        let e = parse(&GOOD.replace("max_body_bytes = 65536", "max_body_bytes = \"big\"")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:6: key `max_body_bytes`"), "{e}");
        let e = parse(&GOOD.replace("max_body_bytes", "max_bodybytes")).unwrap_err();
        assert!(e.to_string().starts_with("/etc/warrant/agent.toml:6: key `max_bodybytes`"), "{e}");
        assert!(e.to_string().contains("unknown field"), "{e}");
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
            assert!(e.to_string().contains("does not apply to the tpm backend"), "{e}");
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
            assert!(e.to_string().contains("without the `tpm` feature"), "{e}");
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
            assert!(e.to_string().contains("key `keystore.touch_policy`"), "{e}");
            let e =
                parse(&GOOD.replace("[limits]", &format!("{with_pin}tcti = \"x\"\n[limits]"))).unwrap_err();
            assert!(e.to_string().contains("does not apply to the yubikey backend"), "{e}");
            let ok = format!(
                "{with_pin}serial_number = 7\nslots = [\"9c\", \"82\"]\npin_policy = \"always\"\n[limits]"
            );
            parse(&GOOD.replace("[limits]", &ok)).unwrap();
        } else {
            let e = parse(&GOOD.replace("[limits]", &format!("{yk}[limits]"))).unwrap_err();
            assert!(e.to_string().contains("without the `yubikey` feature"), "{e}");
        }
        let e = parse(&GOOD.replace("[limits]", "[keystore]\ntcti = \"x\"\n[limits]")).unwrap_err();
        assert!(e.to_string().contains("key `keystore.tcti`: does not apply to the soft backend"), "{e}");
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
        assert!(e.to_string().contains("key `keystore.dir`: does not apply to the pkcs11 backend"), "{e}");
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
