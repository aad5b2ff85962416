//! The daemon's socket: whether warrantd answers on it, its mode and who may connect, and its
//! owner (a socket someone else made is not talked to).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use warrant_api as api;
use warrant_client::Client;

use super::daemon_user::Identity;
use super::report::Check;
use crate::daemon::config::Mode;

/// How warrantd is started.
const START: &str =
    "start it: `systemctl --user enable --now warrantd.socket` (system mode: `sudo systemctl enable --now warrantd.socket`)";

/// Checks the socket at `path` of a `mode` daemon (`daemon`: the system unit's identity, when
/// it exists); returns the client when warrantd answered and the socket is owned by who runs
/// warrantd in that mode.
pub fn check(path: &Path, mode: Mode, daemon: Option<&Identity>, checks: &mut Vec<Check>) -> Option<Client> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => meta,
        Ok(_) => {
            checks.push(Check::fail(
                "socket",
                format!("{} is not a socket", path.display()),
                "remove it and start warrantd",
            ));
            return None;
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            checks.push(Check::fail(
                "socket",
                format!("{}: {e}: its directory is closed to you", path.display()),
                "system mode: join group warrant (sudo usermod -aG warrant $USER, then log in again)",
            ));
            return None;
        }
        Err(e) => {
            checks.push(Check::fail(
                "socket",
                format!("{}: {e}: warrantd is not running there", path.display()),
                START,
            ));
            return None;
        }
    };
    let bits = meta.mode() & 0o777;
    let who = super::who_may_connect::describe(path);
    checks.push(if bits & 0o002 != 0 {
        Check::fail(
            "socket.mode",
            format!("{} has mode {bits:o}, writable by others: {who} may connect", path.display()),
            "restart warrantd, which makes the socket 0600 (0660 with socket_group)",
        )
    } else {
        Check::ok(
            "socket.mode",
            format!("mode {bits:o}: {who} may connect (the rules decide what each may do)"),
        )
    });
    let owner = owner_name(meta.uid());
    let expected = expected_owners(mode, daemon);
    if !expected.contains(&meta.uid()) {
        let wanted = expected.iter().map(|uid| owner_name(*uid)).collect::<Vec<_>>().join(" or ");
        checks.push(Check::fail(
            "socket.owner",
            format!(
                "{} is owned by {owner}, not {wanted}: another program may be listening in warrantd's place (not connected to)",
                path.display()
            ),
            "find who made it (ss -xlp), stop that, remove the socket and start warrantd",
        ));
        return None;
    }
    checks.push(Check::ok("socket.owner", format!("owned by {owner}")));
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            checks.push(Check::fail(
                "socket",
                format!(
                    "nothing listens on {}: warrantd is not running (the socket is left from an earlier run)",
                    path.display()
                ),
                START,
            ));
            return None;
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            checks.push(Check::fail(
                "socket",
                format!("{}: {e}: you may not connect", path.display()),
                "system mode: join group warrant (sudo usermod -aG warrant $USER, then log in again)",
            ));
            return None;
        }
        Err(_) => {}
    }
    let answer =
        Client::new(path).and_then(|mut client| client.get::<api::Version>("/version").map(|v| (client, v)));
    match answer {
        Ok((client, version)) => {
            checks.push(Check::ok(
                "socket",
                format!("warrantd {} answers on {}", version.version, path.display()),
            ));
            Some(client)
        }
        Err(e) => {
            checks.push(Check::fail(
                "socket",
                format!("warrantd does not answer on {}: {e}", path.display()),
                "see its log (journalctl --user -u warrantd); system mode: join group warrant to connect",
            ));
            None
        }
    }
}

/// The uids a `mode` warrantd's socket may be owned by: this user's own in user mode; root or
/// the daemon's user (the unit's `User=`) in system mode.
fn expected_owners(mode: Mode, daemon: Option<&Identity>) -> Vec<u32> {
    match mode {
        Mode::User => vec![nix::unistd::geteuid().as_raw()],
        Mode::System => {
            let mut uids = vec![0];
            uids.extend(daemon.map(|d| d.uid.as_raw()));
            uids
        }
    }
}

/// `uid` as "name (uid N)", or "uid N" without a name.
fn owner_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(uid.into()).ok().flatten() {
        Some(user) => format!("{} (uid {uid})", user.name),
        None => format!("uid {uid}"),
    }
}
