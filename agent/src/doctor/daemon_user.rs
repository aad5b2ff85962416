//! Who the daemon-side checks run as. What warrantd itself must reach (its TPM device node,
//! the state and audit directories, its key, passphrase and PIN files, the TPM, the PKCS#11
//! token, pcscd and its cards) is decided by the identity it runs with, not by the identity of
//! whoever runs doctor. In user mode that is the same user. In system mode the unit runs
//! warrantd as `User=warrant`, `Group=warrant`, `SupplementaryGroups=tss` (see
//! [`crate::system_unit`]), so a root doctor runs those checks in a child process that has
//! become that user with those groups (`warrantd doctor --as-daemon-user`, which reads the
//! configuration itself, as the daemon does, and prints its checks as JSON), and every such line
//! says who it ran as.
//!
//! Tests (which run as root, on machines without a `warrant` user, where creating one would
//! change every other system-mode test: the configuration gives the socket group warrant when
//! it exists) name a throwaway user in `WARRANTD_TEST_SYSTEM_USER`: the checks then run as that
//! user, its primary group and the unit's supplementary groups. Nothing else sets it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use nix::unistd::{Gid, Group, Uid, User};
use serde::{Deserialize, Serialize};
use warrant_attestation::certificate::Cert;

use super::report::Check;
use crate::system_unit;

/// Names another user than the unit's for the daemon-side checks (tests only).
pub const TEST_USER_VARIABLE: &str = "WARRANTD_TEST_SYSTEM_USER";

/// Most bytes read from the child: far more than its checks take.
const MAX_CHILD_OUTPUT: usize = 1024 * 1024;

/// A user and the groups it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's name.
    pub user: String,
    /// Its uid.
    pub uid: Uid,
    /// The group it runs as.
    pub gid: Gid,
    /// Every group it runs with, the primary first, by name.
    pub groups: Vec<(String, Gid)>,
}

impl Identity {
    /// The system unit's user, group and supplementary groups as this machine has them; a
    /// failed check (with its fix) when one of them does not exist, as the unit then does not
    /// start either.
    pub fn of_system_unit() -> Result<Self, Check> {
        let test_user = std::env::var(TEST_USER_VARIABLE).ok().filter(|u| !u.is_empty());
        let user_name = test_user.clone().unwrap_or_else(|| system_unit::USER.to_owned());
        let sysusers = "create it: `systemd-sysusers` (the package's sysusers.d/warrant.conf)";
        let user = match User::from_name(&user_name) {
            Ok(Some(user)) => user,
            Ok(None) => {
                return Err(Check::fail(
                    "daemon-user",
                    format!("user {user_name} does not exist: the system unit (User={user_name}) cannot start, and the checks of what it reaches were not run"),
                    sysusers,
                ))
            }
            Err(e) => {
                return Err(Check::fail(
                    "daemon-user",
                    format!("looking up user {user_name}: {e}"),
                    "check the system's user database (getent passwd)",
                ))
            }
        };
        // A test user runs with its own primary group, as sysusers gives warrant its own.
        let primary = match test_user {
            Some(_) => Group::from_gid(user.gid).ok().flatten().map(|g| g.name),
            None => Some(system_unit::GROUP.to_owned()),
        }
        .unwrap_or_else(|| user.gid.to_string());
        let mut groups = Vec::new();
        for name in std::iter::once(primary.as_str()).chain(system_unit::SUPPLEMENTARY_GROUPS.iter().copied())
        {
            match Group::from_name(name) {
                Ok(Some(group)) => groups.push((group.name, group.gid)),
                _ => {
                    return Err(Check::fail(
                        "daemon-user",
                        format!("group {name} does not exist: the system unit (Group=, SupplementaryGroups=) cannot start, and the checks of what it reaches were not run"),
                        sysusers,
                    ))
                }
            }
        }
        let gid = groups.first().map(|(_, gid)| *gid).unwrap_or(user.gid);
        Ok(Self { user: user.name, uid: user.uid, gid, groups })
    }

    /// "user warrant (uid 998), groups warrant, tss".
    pub fn describe(&self) -> String {
        let groups: Vec<&str> = self.groups.iter().map(|(name, _)| name.as_str()).collect();
        format!("user {} (uid {}), groups {}", self.user, self.uid, groups.join(", "))
    }

    /// Makes this process run as this identity, for good: groups first (root may still set
    /// them), then the gid and the uid, real, effective and saved alike.
    fn become_it(&self) -> Result<(), String> {
        let gids: Vec<Gid> = self.groups.iter().map(|(_, gid)| *gid).collect();
        nix::unistd::setgroups(&gids).map_err(|e| format!("setgroups: {e}"))?;
        nix::unistd::setresgid(self.gid, self.gid, self.gid).map_err(|e| format!("setresgid: {e}"))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid).map_err(|e| format!("setresuid: {e}"))?;
        if !self.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err("root could be regained".into());
        }
        Ok(())
    }
}

/// What the parent hands the child on its standard input.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    /// The configuration's text, as the parent read and checked it (a file only root may
    /// write): the child acts on it, not on whatever the path holds by the time it runs.
    config: String,
    /// The EK roots' certificates (DER, hex), read by the parent: the files may be where
    /// only the person running doctor can read them.
    tpm_ek_roots: Vec<String>,
}

/// Most bytes of the request the child reads: the configuration and the roots, with room.
const MAX_REQUEST: u64 = 16 * 1024 * 1024;

/// Runs the daemon-side checks of the configuration `config_text` (read from `config`) in a
/// child process that becomes `identity`; each check says who it ran as.
pub fn checks_as(identity: &Identity, config: &Path, config_text: &str, ek_roots: &[Cert]) -> Vec<Check> {
    let failed = |e: String| {
        vec![Check::fail(
            "daemon-user",
            format!("the checks as {} could not be run: {e}", identity.describe()),
            "run `warrantd doctor` as root from the installed warrantd",
        )]
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return failed(format!("this program's path: {e}")),
    };
    let request = Request {
        config: config_text.to_owned(),
        tpm_ek_roots: ek_roots.iter().map(|c| hex::encode(c.der())).collect(),
    };
    let child = Command::new(exe)
        .args(["doctor", "--as-daemon-user", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return failed(e.to_string()),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = serde_json::to_writer(&mut stdin, &request).map(|()| stdin.flush());
    }
    let out = match collect(child) {
        Ok(out) => out,
        Err(e) => return failed(e),
    };
    match serde_json::from_slice::<Vec<Check>>(&out.stdout) {
        Ok(checks) if out.status.success() => labelled(checks, identity),
        _ => {
            failed(format!("it exited with {} ({})", out.status, String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

/// Most bytes of the child's standard error kept (for the failure line): the rest is not read,
/// and the child's next write to it fails.
const MAX_CHILD_STDERR: u64 = 4096;

/// What the child wrote, and how it ended.
#[derive(Debug)]
struct Output {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Waits for `child`, holding at most [`MAX_CHILD_OUTPUT`] bytes of its answer and
/// [`MAX_CHILD_STDERR`] of its standard error: an answer beyond the first kills it and is
/// refused (reading all of it first would hold whatever it writes).
fn collect(mut child: std::process::Child) -> Result<Output, String> {
    use std::io::Read;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(MAX_CHILD_STDERR).read_to_end(&mut kept);
        }
        kept
    });
    let mut stdout = Vec::new();
    if let Some(out) = child.stdout.take() {
        let _ = out.take(MAX_CHILD_OUTPUT as u64 + 1).read_to_end(&mut stdout);
    }
    let too_long = stdout.len() > MAX_CHILD_OUTPUT;
    if too_long {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let stderr = errors.join().unwrap_or_default();
    if too_long {
        return Err(format!("its answer is longer than {MAX_CHILD_OUTPUT} bytes"));
    }
    Ok(Output { status, stdout, stderr })
}

/// `checks`, each saying it ran as `identity`.
pub fn labelled(checks: Vec<Check>, identity: &Identity) -> Vec<Check> {
    let who = format!(" (as {})", identity.describe());
    checks
        .into_iter()
        .map(|mut check| {
            check.detail.push_str(&who);
            check
        })
        .collect()
}

/// `warrantd doctor --as-daemon-user --config FILE`: becomes the system unit's identity, reads
/// the request on standard input and the configuration, and prints the daemon-side checks as
/// a JSON array. `run_checks` are those checks (the caller's, so this module does not pick
/// them).
pub fn child_main(
    config: &Path,
    run_checks: impl FnOnce(&crate::daemon::Config, &[Cert]) -> Vec<Check>,
) -> ExitCode {
    let checks = match Identity::of_system_unit() {
        Err(check) => vec![check],
        Ok(identity) => match identity.become_it() {
            Err(e) => vec![Check::fail(
                "daemon-user",
                format!("could not become {}: {e}", identity.describe()),
                "run `warrantd doctor` as root",
            )],
            Ok(()) => child_checks(config, run_checks),
        },
    };
    match serde_json::to_string(&checks) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(_) => ExitCode::from(2),
    }
}

fn child_checks(
    path: &Path,
    run_checks: impl FnOnce(&crate::daemon::Config, &[Cert]) -> Vec<Check>,
) -> Vec<Check> {
    use std::io::Read;
    let mut input = Vec::new();
    let request = std::io::stdin()
        .take(MAX_REQUEST)
        .read_to_end(&mut input)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<Request>(&input).map_err(|e| e.to_string()))
        .and_then(|request| {
            let roots = request
                .tpm_ek_roots
                .iter()
                .map(|der| {
                    let der = hex::decode(der).map_err(|e| e.to_string())?;
                    Cert::from_der(&der).map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<Cert>, String>>()?;
            Ok((request.config, roots))
        });
    // Roots lost on the way would turn a chain check into "no roots given": refused instead.
    let (text, roots) = match request {
        Ok(request) => request,
        Err(e) => {
            return vec![Check::fail(
                "daemon-user",
                format!("the request from doctor could not be read: {e}"),
                "run `warrantd doctor` itself, not --as-daemon-user",
            )]
        }
    };
    // Whether the daemon's user may read the file is its own check; what is checked is the
    // text doctor read and vetted.
    let readable = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()));
    let config =
        match readable.and_then(|_| crate::daemon::Config::parse(path, &text).map_err(|e| e.to_string())) {
            Ok(config) => config,
            Err(e) => {
                return vec![Check::fail(
                    "config.daemon-user",
                    format!("warrantd cannot read its configuration: {e}"),
                    format!(
                        "make it readable by the daemon's user: chown root:{} {}; chmod 0640 {}",
                        system_unit::GROUP,
                        path.display(),
                        path.display()
                    ),
                )]
            }
        };
    let mut checks = Vec::new();
    if config.mode != crate::daemon::config::Mode::System {
        checks.push(Check::fail(
            "config.mode",
            format!("{} does not set mode = \"system\": the unit's warrantd, not root, would read it in user mode (its socket and state under $XDG_RUNTIME_DIR and $XDG_STATE_HOME)", path.display()),
            "add mode = \"system\" at its top",
        ));
    }
    checks.extend(run_checks(&config, &roots));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::process::Child {
        Command::new("sh").args(["-c", script]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    #[test]
    fn the_childs_answer_and_its_errors_are_read_within_bounds() {
        let out = collect(sh("echo '[]'; echo said >&2")).unwrap();
        assert!(out.status.success());
        assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"[]\n"[..], &b"said\n"[..]));
        // An answer without end: refused once past the bound, the child killed.
        let e = collect(sh("exec cat /dev/zero")).unwrap_err();
        assert!(e.contains("longer than 1048576 bytes"), "{e}");
        // Errors without end: the first bytes kept, the child's next write fails.
        let out = collect(sh("cat /dev/zero >&2; echo '[]'")).unwrap();
        assert_eq!(out.stderr.len() as u64, MAX_CHILD_STDERR);
        assert_eq!(out.stdout, b"[]\n");
    }
}
