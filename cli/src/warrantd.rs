//! `warrant demo`, `warrant setup` and `warrant doctor`: each runs the `warrantd` subcommand of
//! the same name. The demo starts a daemon in warrantd's process; setup and doctor probe key
//! stores through the backends compiled into warrantd (so what they find working is what
//! the daemon can open) and read its configuration with its own parser. This program links
//! none of it: no daemon code, no hardware library.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, ValueEnum};

use super::args::Output;
use crate::Error;

/// The warrantd to run: only the one installed next to this program (a package, a cargo
/// target directory). Not `$PATH`: a `.` or a writable directory there would let whatever
/// is called `warrantd` in it run as this user.
fn warrantd(subcommand: &'static str) -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Warrantd {
        program: "warrantd".into(),
        subcommand,
        source,
    })?;
    let sibling = exe.with_file_name("warrantd");
    if sibling.is_file() {
        Ok(sibling)
    } else {
        let reason = format!("not installed next to warrant: run `warrantd {subcommand}` yourself");
        Err(Error::Warrantd {
            program: sibling,
            subcommand,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        })
    }
}

/// Runs `warrantd SUBCOMMAND ARGS`; its exit status is warrantd's.
fn run(subcommand: &'static str, args: Vec<OsString>, out: Output) -> Result<ExitCode, Error> {
    let program = warrantd(subcommand)?;
    let mut command = Command::new(&program);
    command.arg(subcommand).args(args);
    if out.json {
        command.arg("--json");
    }
    let status = command.status().map_err(|source| Error::Warrantd { program, subcommand, source })?;
    // Killed by a signal: no code, reported as a failure.
    Ok(ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(2)))
}

/// Runs the demo (exit 0 when every step behaved as it should).
pub(super) fn demo(out: Output) -> Result<ExitCode, Error> {
    run("demo", Vec::new(), out)
}

/// The key stores `warrant setup --backend` takes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Backend {
    /// The strongest that works here.
    Auto,
    /// A TPM 2.0 (--tcti, default the kernel's resource manager).
    Tpm,
    /// A YubiKey behind pcscd.
    Yubikey,
    /// A PKCS#11 token (--pkcs11-module, --token, --pin-file).
    Pkcs11,
    /// Software key files sealed with a generated passphrase.
    Soft,
}

/// Where the configuration goes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Mode {
    /// $XDG_CONFIG_HOME/warrant/agent.toml, for a warrantd of your own.
    User,
    /// /etc/warrant/agent.toml, as root.
    System,
}

/// `warrant setup`'s arguments (passed to `warrantd setup`, which defines the same).
#[derive(Debug, Args)]
pub(super) struct SetupArgs {
    /// The key store: the strongest that works here (auto: a TPM with an EK certificate, else
    /// a YubiKey behind pcscd, else the PKCS#11 token named, else software keys; a token or
    /// YubiKey named with --pkcs11-module or --serial must work), or the one named, which must
    /// work.
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// user: $XDG_CONFIG_HOME/warrant/agent.toml, for a warrantd of your own; system:
    /// /etc/warrant/agent.toml, as root. Default: system for root, else user.
    #[arg(long, value_enum)]
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
}

/// Writes a configuration for this machine (`warrantd setup`).
pub(super) fn setup(args: SetupArgs, out: Output) -> Result<ExitCode, Error> {
    let mut forwarded: Vec<OsString> = Vec::new();
    let mut pair = |flag: &str, value: OsString| {
        forwarded.push(flag.into());
        forwarded.push(value);
    };
    let backend = args.backend.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
    pair("--backend", backend.into());
    if let Some(mode) = args.mode {
        pair("--mode", mode.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default().into());
    }
    pair("--tcti", args.tcti.into());
    if let Some(serial) = args.serial {
        pair("--serial", serial.to_string().into());
    }
    if let Some(module) = args.pkcs11_module {
        pair("--pkcs11-module", module.into());
    }
    if let Some(token) = args.token {
        pair("--token", token.into());
    }
    if let Some(file) = args.pin_file {
        pair("--pin-file", file.into());
    }
    if args.force {
        forwarded.push("--force".into());
    }
    if args.downgrade {
        forwarded.push("--downgrade".into());
    }
    run("setup", forwarded, out)
}

/// `warrant doctor`'s arguments (passed to `warrantd doctor`).
#[derive(Debug, Args)]
pub(super) struct DoctorArgs {
    /// warrantd's configuration file (default: /etc/warrant/agent.toml for root,
    /// $XDG_CONFIG_HOME/warrant/agent.toml otherwise).
    /// Run by root, doctor uses only a file no other user may write.
    #[arg(long, env = "WARRANTD_CONFIG")]
    config: Option<PathBuf>,
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
}

/// Checks this machine's warrantd (`warrantd doctor`): exit 0 when nothing fails, 1 otherwise.
pub(super) fn doctor(args: DoctorArgs, socket: Option<&Path>, out: Output) -> Result<ExitCode, Error> {
    let mut forwarded: Vec<OsString> = Vec::new();
    if let Some(config) = args.config {
        forwarded.extend(["--config".into(), config.into()]);
    }
    if let Some(socket) = socket {
        forwarded.extend(["--socket".into(), socket.as_os_str().to_owned()]);
    }
    for grant in args.grants {
        forwarded.extend(["--grant".into(), grant.into()]);
    }
    for list in args.status_lists {
        forwarded.extend(["--status-list".into(), list.into()]);
    }
    for roots in args.tpm_ek_roots {
        forwarded.extend(["--tpm-ek-roots".into(), roots.into()]);
    }
    run("doctor", forwarded, out)
}
