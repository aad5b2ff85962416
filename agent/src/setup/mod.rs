//! `warrantd setup` (run by `warrant setup`): writes a commented configuration for this
//! machine with the strongest key store that works here, checks it as `--check-config` does,
//! and names the next command. Its software-store defaults are also what warrantd runs on in
//! user mode when no configuration file exists ([`user_defaults`]).
//!
//! It lives in the daemon's package because it probes key stores through the backends compiled
//! into this warrantd: what it finds working is what this daemon can open.

mod config_dir;
mod config_text;
mod detect;
mod passphrase;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use config_text::{render, KeyStoreChoice};
use detect::{BackendArg, Choice, Wanted};

use crate::daemon::config::Mode;
use crate::daemon::Config;
use crate::Error;

/// The group whose members a system-mode configuration lets use device keys: the unit's, which
/// may connect to the socket and reads agent.toml.
const DEVICE_GROUP: &str = crate::system_unit::GROUP;

/// `warrantd setup`'s arguments.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The key store: the strongest that works here (auto: a TPM with an EK certificate, else
    /// a YubiKey behind pcscd, else the PKCS#11 token named, else software keys; a token or
    /// YubiKey named with --pkcs11-module or --serial must work), or the one named, which must
    /// work.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// user: $XDG_CONFIG_HOME/warrant/agent.toml, for a warrantd of your own; system:
    /// /etc/warrant/agent.toml, as root. Default: system for root, else user.
    #[arg(long, value_parser = parse_mode)]
    mode: Option<Mode>,
    /// Replace an existing configuration (kept as agent.toml.bak; a passphrase file is never
    /// replaced).
    #[arg(long)]
    force: bool,
    /// With --force: allow replacing a configuration with a weaker key store (tpm or yubikey,
    /// then pkcs11, then soft).
    #[arg(long, requires = "force")]
    downgrade: bool,
    /// The TCTI a TPM is looked for on.
    #[arg(long, default_value = "device:/dev/tpmrm0")]
    tcti: String,
    /// The YubiKey to use when several are present.
    #[arg(long)]
    serial: Option<u32>,
    /// A PKCS#11 module (shared library) holding the token (with --token).
    #[arg(long, requires = "token")]
    pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token's label.
    #[arg(long, requires = "pkcs11_module")]
    token: Option<String>,
    /// A file (mode 0600) with the YubiKey's or the token's PIN (YubiKey, user mode: default
    /// asked with /usr/bin/ssh-askpass; a system daemon has no one to ask, and needs the file).
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl SetupArgs {
    /// Whether the report (and a failure) is to be JSON.
    pub fn json(&self) -> bool {
        self.json
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "user" => Ok(Mode::User),
        "system" => Ok(Mode::System),
        other => Err(format!("{other:?}: expected user or system")),
    }
}

/// Runs `warrantd setup`.
pub fn run(args: SetupArgs) -> Result<(), Error> {
    let mode = args.mode.unwrap_or_else(Mode::default_for_this_process);
    let root = nix::unistd::geteuid().is_root();
    if mode == Mode::System && !root {
        return Err(Error::Usage("system mode writes /etc/warrant/agent.toml: run it as root (sudo)".into()));
    }
    let path = mode.default_config();
    environment_paths(mode)?;
    // Anything there, a dangling symlink too, is kept without --force (checked again, atomically,
    // when the file is installed: the probes below take time).
    let absent = Mode::config_absent(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    if !absent && !args.force {
        return Err(exists(&path));
    }
    let pkcs11_module =
        args.pkcs11_module.as_deref().map(|m| absolute_existing("--pkcs11-module", m)).transpose()?;
    let pin_file = args.pin_file.as_deref().map(|p| absolute_existing("--pin-file", p)).transpose()?;
    let wanted = Wanted {
        #[cfg(feature = "yubikey")]
        mode,
        tcti: args.tcti.clone(),
        serial: args.serial,
        pkcs11: pkcs11_module.zip(args.token.clone()),
        pin_file,
        passphrase_file: config_text::default_passphrase_file(mode),
        state_dir: mode.default_state_dir(),
    };
    let mut considered = Vec::new();
    let choice = detect::choose(args.backend, &wanted, &mut considered).map_err(Error::Usage)?;
    if !args.downgrade {
        refuse_downgrade(&path, choice.keystore.backend())?;
    }
    let group = match mode {
        Mode::System => nix::unistd::Group::from_name(DEVICE_GROUP).ok().flatten(),
        Mode::User => None,
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    match mode {
        // Not private: the daemon's user (group warrant) reads agent.toml in it.
        Mode::System => config_dir::system(dir, group.as_ref().map(|g| g.gid))?,
        Mode::User => config_dir::user(dir)?,
    }
    let group = group.is_some().then_some(DEVICE_GROUP);
    let uid = nix::unistd::getuid().as_raw();
    let text = render(mode, uid, group, &choice.keystore, &choice.warnings);
    // Checked before it replaces anything (a user session without $XDG_RUNTIME_DIR, say).
    Config::parse(&path, &text)?;
    if let KeyStoreChoice::Soft { passphrase_file } = &choice.keystore {
        // In system mode the daemon runs as user `warrant`: it must own the passphrase file.
        let owner = match mode {
            Mode::System => {
                nix::unistd::User::from_name(crate::system_unit::USER).ok().flatten().map(|u| (u.uid, u.gid))
            }
            Mode::User => None,
        };
        passphrase::ensure(passphrase_file, &mode.default_state_dir().join("keys"), owner)?;
    }
    write_config(&path, &text, mode, args.force)?;
    // The same check as `warrantd --check-config`, on the file as written.
    let config = Config::load(&path)?;
    let next = match mode {
        Mode::User => "systemctl --user enable --now warrantd.socket",
        Mode::System => "systemctl enable --now warrantd.socket",
    };
    report(&args, &path, &config, &choice, &considered, next);
    Ok(())
}

/// Refuses to replace the configuration at `path` with a weaker key store than its own (an
/// existing file whose key store cannot be read counts as the strongest).
fn refuse_downgrade(path: &Path, new: &str) -> Result<(), Error> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => existing_backend(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => None,
    };
    let old_strength = old.as_deref().and_then(BackendArg::strength).unwrap_or(u8::MAX);
    if BackendArg::strength(new).unwrap_or(0) >= old_strength {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} uses the {} key store, stronger than {new}: it is left as it is (add --downgrade to replace it anyway)",
        path.display(),
        old.as_deref().unwrap_or("(unreadable)")
    )))
}

/// The `[keystore] backend` of a configuration's text (soft when not set); `None` when the text
/// is not TOML.
fn existing_backend(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    match table.get("keystore").and_then(|k| k.get("backend")) {
        None => Some("soft".into()),
        Some(backend) => backend.as_str().map(str::to_owned),
    }
}

/// The paths `mode` takes from the environment (configuration, passphrase file, state), each
/// absolute and free of control characters.
fn environment_paths(mode: Mode) -> Result<(), Error> {
    use crate::daemon::config::environment_path;
    environment_path("configuration file", &mode.default_config())?;
    environment_path("passphrase file", &config_text::default_passphrase_file(mode))?;
    environment_path("state directory", &mode.default_state_dir())
}

/// `path` (given as `flag`) as an absolute path, for the configuration: a relative one would be
/// resolved later against whatever directory warrantd or a root `warrant doctor` runs in. Its
/// directory is resolved (symlinks too), its last component kept (a library's unversioned
/// symlink keeps pointing at the installed version). It must exist.
fn absolute_existing(flag: &str, path: &Path) -> Result<PathBuf, Error> {
    let missing = |e: std::io::Error| Error::Usage(format!("{flag} {}: {e}", path.display()));
    std::fs::metadata(path).map_err(missing)?;
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            Ok(std::fs::canonicalize(dir).map_err(missing)?.join(name))
        }
        _ => std::fs::canonicalize(path).map_err(missing),
    }
}

fn report(
    args: &SetupArgs,
    path: &Path,
    config: &Config,
    choice: &Choice,
    considered: &[String],
    next: &str,
) {
    if args.json {
        let value = json!({
            "config": path,
            "backend": choice.keystore.backend(),
            "found": choice.found,
            "warnings": choice.warnings,
            "passed_over": considered,
            "socket": config.socket,
            "state_dir": config.state_dir,
            "next": next,
        });
        println!("{value}");
        return;
    }
    for line in considered {
        println!("passed over: {line}");
    }
    println!("key store: {} ({})", choice.keystore.backend(), choice.found);
    for warning in &choice.warnings {
        println!("warning: {warning}");
    }
    println!("wrote {}", path.display());
    println!(
        "{}: valid ({} mode, socket {}, state {}, {} rule(s))",
        path.display(),
        if config.mode == Mode::System { "system" } else { "user" },
        config.socket.display(),
        config.state_dir.display(),
        config.rules.len()
    );
    println!("next: {next}");
}

fn exists(path: &Path) -> Error {
    Error::Usage(format!(
        "{} exists: it is left as it is (check it with `warrant doctor`, or replace it with --force)",
        path.display()
    ))
}

/// Writes the configuration whole or not at all: a temporary file linked into place (which
/// fails if anything, even a dangling symlink, is at `path`), or with `replace` renamed over
/// what is there (kept as `agent.toml.bak`). The directory is synced after.
fn write_config(path: &Path, text: &str, mode: Mode, replace: bool) -> Result<(), Error> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let file_mode = if mode == Mode::System { 0o640 } else { 0o600 };
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(file_mode).open(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
    if mode == Mode::System {
        if let Ok(Some(group)) = nix::unistd::Group::from_name(DEVICE_GROUP) {
            nix::unistd::fchown(&file, None, Some(group.gid))
                .map_err(|e| Error::Io { path: tmp.clone(), source: e.into() })?;
        }
    }
    drop(file);
    if replace {
        keep_old(path)?;
        std::fs::rename(&tmp, path).map_err(io)?;
    } else {
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
            other => other.map_err(io)?,
        }
    }
    sync_dir(dir)
}

/// Makes a new or renamed entry in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io { path: dir.to_owned(), source })
}

/// Keeps the configuration being replaced as `agent.toml.bak` (a hard link: the file stays in
/// place until the new one is renamed over it).
fn keep_old(path: &Path) -> Result<(), Error> {
    let bak = path.with_extension("toml.bak");
    let io = |source| Error::Io { path: bak.clone(), source };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
        Ok(_) => {}
    }
    match std::fs::remove_file(&bak) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    std::fs::hard_link(path, &bak).map_err(io)
}

/// The configuration warrantd runs on in user mode when `path` (the default file) does not
/// exist: what `warrant setup --backend soft` would write, its passphrase file made if needed.
pub fn user_defaults(path: &Path) -> Result<Config, Error> {
    environment_paths(Mode::User)?;
    let passphrase_file = config_text::default_passphrase_file(Mode::User);
    config_dir::user(&config_text::user_config_dir())?;
    passphrase::ensure(&passphrase_file, &Mode::User.default_state_dir().join("keys"), None)?;
    user_defaults_unmade(path)
}

/// [`user_defaults`] without making the passphrase file (for `warrantd doctor`, which changes
/// nothing).
pub fn user_defaults_unmade(path: &Path) -> Result<Config, Error> {
    environment_paths(Mode::User)?;
    let passphrase_file = config_text::default_passphrase_file(Mode::User);
    let text = render(
        Mode::User,
        nix::unistd::getuid().as_raw(),
        None,
        &KeyStoreChoice::Soft { passphrase_file },
        &[],
    );
    Config::parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_replace_nothing_at_the_path_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        // Made after setup's first look: the install itself refuses it.
        std::fs::write(&path, "# mine\n").unwrap();
        let e = write_config(&path, "# new\n", Mode::User, false).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
        // A dangling symlink is something too.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere.toml"), &path).unwrap();
        assert!(write_config(&path, "# new\n", Mode::User, false).is_err());
        assert_eq!(std::fs::read_link(&path).unwrap(), dir.path().join("elsewhere.toml"));
        assert!(!dir.path().join("elsewhere.toml").exists());
        assert!(!dir.path().join("agent.toml.tmp").exists(), "the temporary file is removed");
        // With replace, it is replaced and kept as agent.toml.bak.
        write_config(&path, "# new\n", Mode::User, true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# new\n");
        assert!(std::fs::symlink_metadata(dir.path().join("agent.toml.bak"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Nothing there: installed.
        let fresh = dir.path().join("fresh.toml");
        write_config(&fresh, "# fresh\n", Mode::User, false).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "# fresh\n");
    }
}
