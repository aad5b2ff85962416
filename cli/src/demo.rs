//! `warrant demo`: runs `warrantd demo`, which starts a warrantd on a temporary socket and walks
//! the whole flow through it as a client would. The demo belongs to the daemon's package so that
//! this program links no daemon code; `cargo run --release -- demo` in a source tree runs it
//! directly.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use super::args::Output;
use crate::Error;

/// The warrantd to run: only the one installed next to this program (a package, a cargo
/// target directory). Not `$PATH`: a `.` or a writable directory there would let whatever
/// is called `warrantd` in it run as this user.
fn warrantd() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Demo { program: "warrantd".into(), source })?;
    let sibling = exe.with_file_name("warrantd");
    if sibling.is_file() {
        Ok(sibling)
    } else {
        let reason = "not installed next to warrant: run `warrantd demo` yourself";
        Err(Error::Demo {
            program: sibling,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, reason),
        })
    }
}

/// Runs the demo; its exit status is warrantd's (0 when every step behaved as it should).
pub(super) fn run(out: Output) -> Result<ExitCode, Error> {
    let program = warrantd()?;
    let mut command = Command::new(&program);
    command.arg("demo");
    if out.json {
        command.arg("--json");
    }
    let status = command.status().map_err(|source| Error::Demo { program, source })?;
    // Killed by a signal: no code, reported as a failure.
    Ok(ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(2)))
}
