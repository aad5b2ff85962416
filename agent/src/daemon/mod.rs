//! `warrantd`: the local signing daemon. It holds the device and authority keys, decides every
//! signature by the configured rules, records each decision in the audit log, and serves an
//! HTTP/JSON API (`/v1`) on a Unix socket.

mod audit;
mod body;
pub mod config;
mod conn_io;
mod connections;
mod early_refusals;
mod error;
mod handlers;
mod listener;
mod notify;
mod operation;
mod peer;
mod process_limits;
mod refusals;
mod routes;
mod rules;
mod server;
mod state;
mod status_fetch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

pub use config::Config;
pub use server::{Control, Server};

use crate::Error;

/// warrantd: keeps warrant's device and authority keys and signs on request, by rule.
///
/// Serves HTTP/1.1 + JSON on a Unix socket (user mode: $XDG_RUNTIME_DIR/warrant/agent.sock;
/// system mode: /run/warrant/agent.sock), or on the socket systemd passes (LISTEN_FDS).
/// SIGHUP reloads the configuration; SIGTERM drains in-flight requests and exits.
///
/// `warrantd demo` instead walks the whole flow through a warrantd of its own on a temporary
/// socket, with software keys (`warrant demo` runs it).
#[derive(Debug, Parser)]
#[command(name = "warrantd", version)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file (default: /etc/warrant/agent.toml for root,
    /// $XDG_CONFIG_HOME/warrant/agent.toml otherwise; in user mode, when that file does not
    /// exist, what `warrant setup --backend soft` would write).
    #[arg(long, env = "WARRANTD_CONFIG")]
    config: Option<PathBuf>,
    /// Validate the configuration, print a summary and exit (0 valid, 2 not).
    #[arg(long)]
    check_config: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk the whole flow through a warrantd started in this process on a temporary socket,
    /// with software keys, driven through the client library as another program would (exit
    /// 0 when every step behaved as it should).
    Demo {
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a commented configuration for this machine with the strongest key store that
    /// works here, check it, and name the next command (`warrant setup` runs this).
    Setup(crate::setup::SetupArgs),
    /// Check the configuration, the socket, the key store, the directories, the clock and
    /// the grants given: one line per check, ok, warn or fail with the fix (exit 0 when
    /// nothing fails; `warrant doctor` runs this). In system mode, as root, the key store and
    /// directories are checked as the daemon's user and groups.
    Doctor(crate::doctor::DoctorArgs),
}

/// The route table, for the test that keeps docs/openapi.json in step.
pub fn route_table() -> Vec<(&'static str, String)> {
    routes::Routes::all().table().to_vec()
}

/// Runs `warrantd` with the process arguments.
pub fn main() -> ExitCode {
    let mut args = Args::parse();
    match args.command.take() {
        None => {}
        Some(Command::Setup(setup)) => {
            let json = setup.json();
            return match crate::setup::run(setup) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    if json {
                        let failure =
                            serde_json::json!({"ok": false, "error": e.code(), "message": e.to_string()});
                        println!("{failure}");
                    } else {
                        eprintln!("warrantd setup: {e}");
                    }
                    ExitCode::from(2)
                }
            };
        }
        Some(Command::Doctor(doctor)) => return crate::doctor::run(doctor),
        Some(Command::Demo { json }) => {
            return match crate::demo::run(json) {
                Ok(code) => code,
                Err(e) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"ok": false, "error": e.code(), "message": e.to_string()})
                        );
                    } else {
                        eprintln!("warrantd demo: {e}");
                    }
                    ExitCode::from(2)
                }
            }
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARRANTD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warrantd: {e}");
            ExitCode::from(2)
        }
    }
}

/// The configuration: the file named, else the default file for this process's mode, else, in
/// user mode when that file does not exist, the built-in defaults (`true`; their passphrase
/// file is made unless only checking).
fn configuration(explicit: Option<PathBuf>, check_only: bool) -> Result<(Config, bool), Error> {
    if let Some(path) = explicit {
        return Ok((Config::load(&path)?, false));
    }
    let mode = config::Mode::default_for_this_process();
    let path = mode.default_config();
    let missing =
        config::Mode::config_absent(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    match (missing, mode) {
        (true, config::Mode::User) if check_only => Ok((crate::setup::user_defaults_unmade(&path)?, true)),
        (true, config::Mode::User) => Ok((crate::setup::user_defaults(&path)?, true)),
        _ => Ok((Config::load(&path)?, false)),
    }
}

fn run(args: Args) -> Result<(), Error> {
    if args.check_config {
        let (config, defaults) = configuration(args.config, true)?;
        println!(
            "{}: {} ({} mode, socket {}, state {}, {} rule(s))",
            config.path.display(),
            if defaults { "no such file; the built-in user-mode defaults are valid" } else { "valid" },
            if config.mode == config::Mode::System { "system" } else { "user" },
            config.socket.display(),
            config.state_dir.display(),
            config.rules.len()
        );
        return Ok(());
    }
    // Before any key or secret is in this process: reading the configuration makes the
    // built-in defaults' passphrase when it does not exist yet.
    let connection_capacity = process_limits::apply()?;
    let (config, defaults) = configuration(args.config, false)?;
    if defaults {
        tracing::info!(
            "no configuration file at {}: running on the user-mode defaults `warrant setup --backend soft` writes (software keys sealed with the passphrase file next to where agent.toml goes); write a file for this machine with `warrant setup`",
            config.path.display()
        );
    }
    // Before any other thread exists: opening reads and clears systemd's LISTEN_* variables.
    let server = Server::open(config, connection_capacity)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Start { what: "the async runtime", source })?;
    runtime.block_on(async {
        let (tx, rx) = mpsc::channel(4);
        let signals =
            |kind| signal(kind).map_err(|source| Error::Start { what: "the signal handlers", source });
        let (mut hup, mut term, mut int) = (
            signals(SignalKind::hangup())?,
            signals(SignalKind::terminate())?,
            signals(SignalKind::interrupt())?,
        );
        tokio::spawn(async move {
            loop {
                let control = tokio::select! {
                    _ = hup.recv() => Control::Reload,
                    _ = term.recv() => Control::Stop,
                    _ = int.recv() => Control::Stop,
                };
                if tx.send(control).await.is_err() || control == Control::Stop {
                    break;
                }
            }
        });
        server.run(rx).await
    })
}
