//! `warrant demo`: runs `warrantd demo`, which starts a warrantd on a temporary socket and walks
//! the whole flow through it as a client would. The demo belongs to the daemon's package so that
//! this program links no daemon code; `cargo run --release -- demo` in a source tree runs it
//! directly.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use super::args::Output;
use crate::Error;

/// The warrantd to run: the one installed next to this program (a package, a cargo target
/// directory), else the one on `$PATH`.
fn warrantd() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("warrantd"))
        .filter(|sibling| sibling.is_file())
        .unwrap_or_else(|| PathBuf::from("warrantd"))
}

/// Runs the demo; its exit status is warrantd's (0 when every step behaved as it should).
pub(super) fn run(out: Output) -> Result<ExitCode, Error> {
    let program = warrantd();
    let mut command = Command::new(&program);
    command.arg("demo");
    if out.json {
        command.arg("--json");
    }
    let status = command.status().map_err(|source| Error::Demo { program, source })?;
    // Killed by a signal: no code, reported as a failure.
    Ok(ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(2)))
}
