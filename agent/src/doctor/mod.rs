//! `warrantd doctor` (run by `warrant doctor`): one line per check, `ok`, `warn` or `fail`,
//! with the fix; exit 0 when nothing fails. The checks: the configuration, the socket, the key
//! store (through the backends compiled into this warrantd: what they find is what the daemon
//! will), the state and audit directories, the clock, and the grants given. The key store's
//! and the directories' checks run as the daemon runs: in system mode as the unit's user and
//! groups (see `daemon_user.rs`).

mod daemon_user;
mod grant;
mod host;
mod keystore;
mod report;
mod socket;
mod tpm;
mod who_may_connect;
mod yubikey;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use warrant_attestation::certificate::Cert;

pub use daemon_user::TEST_USER_VARIABLE;
pub use report::{Check, Status};

use crate::daemon::config::Mode;
use crate::daemon::Config;
use daemon_user::Identity;

/// `warrantd doctor`'s arguments.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The configuration file (default: /etc/warrant/agent.toml for root,
    /// $XDG_CONFIG_HOME/warrant/agent.toml otherwise).
    /// Run by root, doctor uses only a file no other user may write.
    #[arg(long, env = "WARRANTD_CONFIG")]
    config: Option<PathBuf>,
    /// warrantd's socket (default: the configuration's).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// A grant of a key of this warrantd: its expiry and revocation are checked (repeatable).
    #[arg(long = "grant")]
    grants: Vec<PathBuf>,
    /// The authority's newest status list, which the grants are looked up in (repeatable).
    #[arg(long = "status-list")]
    status_lists: Vec<PathBuf>,
    /// PEM files of the CAs a TPM's EK certificate must chain to, checked as an authority
    /// checks it (repeatable; default: the configuration's [authority] tpm_ek_roots).
    #[arg(long = "tpm-ek-roots", value_name = "FILE")]
    tpm_ek_roots: Vec<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Internal: become the system unit's user and print the daemon-side checks as JSON (a
    /// root doctor runs itself so).
    #[arg(long, hide = true)]
    as_daemon_user: bool,
}

/// Runs every check; exit 0 when none fails, 1 otherwise.
pub fn run(args: DoctorArgs) -> ExitCode {
    if args.as_daemon_user {
        let config = args.config.unwrap_or_else(|| Mode::System.default_config());
        return daemon_user::child_main(&config, |config, roots| daemon_side(config, false, roots));
    }
    let checks = checks(&args);
    if args.json {
        let failed = checks.iter().any(|c| c.status == Status::Fail);
        println!("{}", serde_json::json!({ "ok": !failed, "checks": checks }));
    } else {
        for check in &checks {
            println!("{}", check.line());
        }
    }
    if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every check, in order.
pub fn checks(args: &DoctorArgs) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some((config, defaults, text)) = config(args, &mut checks) else { return checks };
    let socket = args.socket.clone().unwrap_or_else(|| config.socket.clone());
    let identity = match config.mode {
        Mode::System => Some(Identity::of_system_unit()),
        Mode::User => None,
    };
    let daemon = identity.as_ref().and_then(|i| i.as_ref().ok());
    let client = socket::check(&socket, config.mode, daemon, &mut checks);
    let roots = ek_roots(args, &config, &mut checks);
    let me = nix::unistd::geteuid();
    match identity {
        None => checks.extend(daemon_side(&config, defaults, &roots)),
        Some(Err(missing)) => checks.push(missing),
        Some(Ok(identity)) if me.is_root() => {
            checks.extend(daemon_user::checks_as(&identity, &config.path, &text, &roots))
        }
        Some(Ok(identity)) if me == identity.uid => {
            checks.extend(daemon_user::labelled(daemon_side(&config, defaults, &roots), &identity))
        }
        Some(Ok(identity)) => {
            let name = nix::unistd::User::from_uid(me).ok().flatten().map(|u| u.name);
            checks.push(Check::warn(
                "daemon-user",
                format!(
                    "the key store and directories are checked as you ({}), not as the daemon's {}: what it may reach can differ",
                    name.unwrap_or_else(|| format!("uid {me}")),
                    identity.describe()
                ),
                "run it as root (sudo warrant doctor), which checks them as the daemon's user",
            ));
            checks.extend(daemon_side(&config, defaults, &roots));
        }
    }
    checks.push(host::clock());
    let keys = client
        .and_then(|mut c| c.get::<warrant_api::KeyList>("/keys").ok())
        .map(|list| list.keys.into_iter().map(|k| (k.name, k.kid)).collect::<Vec<_>>())
        .unwrap_or_default();
    checks.extend(grant::checks(
        &args.grants,
        &args.status_lists,
        &keys,
        warrant_hsm_backends::unix_seconds(),
    ));
    checks
}

/// The checks decided by what the daemon's identity may reach: the key store, and the state
/// and audit directories.
fn daemon_side(config: &Config, defaults: bool, ek_roots: &[Cert]) -> Vec<Check> {
    let mut checks = keystore::checks(&config.keystore, &config.state_dir, defaults, config.mode, ek_roots);
    checks.extend(host::directory("state", &config.state_dir, "the state database and keys"));
    match config.audit.file.as_ref().and_then(|f| f.parent()) {
        Some(dir) => checks.extend(host::directory("audit", dir, "the audit log")),
        None if config.audit.stdout => checks.push(Check::ok("audit", "to standard output (journald)")),
        None => checks.push(Check::warn(
            "audit",
            "no audit destination: decisions are not recorded",
            "set [audit] file (or stdout = true under systemd)",
        )),
    }
    checks
}

/// The CA certificates a TPM's EK certificate is checked against: `--tpm-ek-roots`, else the
/// configuration's `[authority] tpm_ek_roots` (an authority's); read as the person running
/// doctor. A file that cannot be read fails, and no roots are used.
fn ek_roots(args: &DoctorArgs, config: &Config, checks: &mut Vec<Check>) -> Vec<Cert> {
    if !matches!(config.keystore, warrant_hsm_backends::KeyStoreConfig::Tpm(_)) {
        return Vec::new();
    }
    let (paths, from) = if args.tpm_ek_roots.is_empty() {
        (&config.authority.tpm_ek_roots, "[authority] tpm_ek_roots")
    } else {
        (&args.tpm_ek_roots, "--tpm-ek-roots")
    };
    match crate::files::certificates(paths) {
        Ok(roots) => roots,
        Err(e) => {
            checks.push(Check::fail(
                "tpm.ek-roots",
                format!("{from}: {e}"),
                "name PEM files of the TPM vendors' EK CAs (the ones the authority uses)",
            ));
            Vec::new()
        }
    }
}

/// The configuration, as warrantd would read it, whether it is the built-in user-mode one,
/// and the text it was read from (handed to the daemon-side child, which then acts on what
/// was checked here, not on whatever the path holds later); `None` when it cannot be used.
fn config(args: &DoctorArgs, checks: &mut Vec<Check>) -> Option<(Config, bool, String)> {
    let mode = Mode::default_for_this_process();
    let (path, explicit) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (mode.default_config(), false),
    };
    let absent = match Mode::config_absent(&path) {
        Ok(absent) => absent,
        Err(e) => {
            checks.push(Check::fail(
                "config",
                format!("{}: {e}", path.display()),
                "make the directory readable by this user (warrantd cannot read it either)",
            ));
            return None;
        }
    };
    if !explicit && mode == Mode::User && absent {
        return match crate::setup::user_defaults_unmade(&path) {
            Ok(config) => {
                checks.push(Check::warn(
                    "config",
                    format!(
                        "no file at {}: warrantd runs on the built-in user-mode defaults (software keys)",
                        path.display()
                    ),
                    "write one for this machine's key store with `warrant setup`",
                ));
                Some((config, true, String::new()))
            }
            Err(e) => {
                checks.push(Check::fail("config", e.to_string(), "write one with `warrant setup`"));
                None
            }
        };
    }
    let text = match read_config(&path) {
        Ok(text) => text,
        Err(ConfigFileProblem::Unreadable(e)) => {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "write one with `warrant setup`, or name the file with --config"
            } else {
                "make it readable by warrantd's user (system mode: root:warrant, mode 0640)"
            };
            checks.push(Check::fail("config", format!("{}: {e}", path.display()), fix));
            return None;
        }
        Err(ConfigFileProblem::TooLong) => {
            checks.push(Check::fail(
                "config",
                format!("{}: longer than {MAX_CONFIG_BYTES} bytes: not a configuration", path.display()),
                "name the right file with --config",
            ));
            return None;
        }
        Err(ConfigFileProblem::OthersMayWrite(why)) => {
            checks.push(Check::fail(
                "config",
                format!("{}: {why}: doctor run by root does not act on it (it would load the module it names, as root or as the daemon's user)", path.display()),
                format!(
                    "run doctor as the user whose file it is (sudo -u USER warrant doctor --config {}), or make it root's: chown root:{} {}; chmod 0640 {}",
                    path.display(),
                    crate::system_unit::GROUP,
                    path.display(),
                    path.display()
                ),
            ));
            return None;
        }
    };
    match Config::parse(&path, &text) {
        Ok(config) => {
            checks.push(Check::ok("config", format!("{} is valid", path.display())));
            Some((config, false, text))
        }
        Err(e) => {
            checks.push(Check::fail(
                "config",
                e.to_string(),
                "correct the key named at that line (warrantd.toml(5) and docs/agent.example.toml describe each), or write a new file with `warrant setup --force`",
            ));
            None
        }
    }
}

/// Most bytes of a configuration file: far more than any.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why the configuration file is not used.
enum ConfigFileProblem {
    /// It cannot be opened or read.
    Unreadable(std::io::Error),
    /// It is longer than [`MAX_CONFIG_BYTES`].
    TooLong,
    /// doctor runs as root, and a user other than root may write it (the reason).
    OthersMayWrite(String),
}

/// The configuration file's text, read through one open file (its owner and mode are those of
/// what is read). As root, a file another user may write is refused: the checks load the
/// PKCS#11 module it names and act on the paths it gives, and its writer would choose them for
/// root (or, in system mode, for the daemon's user).
fn read_config(path: &std::path::Path) -> Result<String, ConfigFileProblem> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::open(path).map_err(ConfigFileProblem::Unreadable)?;
    let meta = file.metadata().map_err(ConfigFileProblem::Unreadable)?;
    if nix::unistd::geteuid().is_root() {
        if meta.uid() != 0 {
            let owner = nix::unistd::User::from_uid(meta.uid().into()).ok().flatten().map(|u| u.name);
            return Err(ConfigFileProblem::OthersMayWrite(format!(
                "owned by {} (uid {}), not root",
                owner.as_deref().unwrap_or("an unknown user"),
                meta.uid()
            )));
        }
        if meta.mode() & 0o002 != 0 || (meta.mode() & 0o020 != 0 && meta.gid() != 0) {
            return Err(ConfigFileProblem::OthersMayWrite(format!(
                "mode {:o}: others than root may write it",
                meta.mode() & 0o777
            )));
        }
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text).map_err(ConfigFileProblem::Unreadable)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigFileProblem::TooLong);
    }
    Ok(text)
}
