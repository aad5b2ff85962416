//! The machine's part: the state and audit directories (writable, free space) and the clock
//! (synchronised: verifiers allow warrants 60 s of skew).

use std::path::Path;
use std::process::Command;

use super::report::Check;

/// Free space below which a directory fails (SQLite and the audit log stop writing).
const FAIL_BYTES: u64 = 64 * 1024 * 1024;
/// Free space below which it warns.
const WARN_BYTES: u64 = 1024 * 1024 * 1024;

/// Checks that warrantd can write in `dir` (made when missing, if its parent allows) and that
/// it has room.
pub fn directory(name: &str, dir: &Path, what: &str) -> Vec<Check> {
    // The nearest existing ancestor: warrantd creates the rest.
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(Path::new("/"));
    let mut checks = Vec::new();
    match writable(existing) {
        Ok(()) if existing == dir => {
            checks.push(Check::ok(name, format!("{} ({what}) is writable", dir.display())))
        }
        Ok(()) => checks.push(Check::ok(
            name,
            format!("{} ({what}) will be made in {}, which is writable", dir.display(), existing.display()),
        )),
        Err(e) => {
            checks.push(Check::fail(
                name,
                format!("{} ({what}) is not writable: {e}", existing.display()),
                "give the daemon's user write access (system mode: `systemd-tmpfiles --create` makes it for user warrant), or name another directory in agent.toml",
            ));
            return checks;
        }
    }
    match nix::sys::statvfs::statvfs(existing) {
        Ok(stat) => {
            let free = stat.blocks_available().saturating_mul(stat.fragment_size());
            let mib = free / (1024 * 1024);
            let space = format!("{name}.space");
            if free < FAIL_BYTES {
                checks.push(Check::fail(
                    space,
                    format!("{} MiB free on {}", mib, existing.display()),
                    "free space on that file system",
                ));
            } else if free < WARN_BYTES {
                checks.push(Check::warn(
                    space,
                    format!("{} MiB free on {}", mib, existing.display()),
                    "free space on that file system",
                ));
            } else {
                checks.push(Check::ok(space, format!("{} MiB free on {}", mib, existing.display())));
            }
        }
        Err(e) => checks.push(Check::warn(
            format!("{name}.space"),
            format!("free space unknown: {e}"),
            "check it with df",
        )),
    }
    checks
}

/// Writes and removes a file in `dir`: the one test that holds for root, ACLs and read-only
/// mounts alike.
fn writable(dir: &Path) -> Result<(), std::io::Error> {
    let probe = tempfile::Builder::new().prefix(".warrant-doctor-").tempfile_in(dir)?;
    probe.close()
}

/// Whether the clock is synchronised, as systemd-timesyncd (or whatever timedatectl reports)
/// says.
pub fn clock() -> Check {
    if Path::new("/run/systemd/timesync/synchronized").exists() {
        return Check::ok("clock", "synchronised (systemd-timesyncd)");
    }
    let answer =
        Command::new("timedatectl").args(["show", "--property", "NTPSynchronized", "--value"]).output();
    match answer {
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "yes" => {
            Check::ok("clock", "synchronised (timedatectl)")
        }
        Ok(out) if out.status.success() => Check::warn(
            "clock",
            "not synchronised: warrants from a clock off by more than 60 s are refused",
            "enable time synchronisation (timedatectl set-ntp true, or chrony)",
        ),
        _ => Check::warn(
            "clock",
            "whether the clock is synchronised is unknown (no timedatectl answer)",
            "make sure NTP keeps the clock within 60 s (warrants beyond that skew are refused)",
        ),
    }
}
