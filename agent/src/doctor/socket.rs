//! The daemon's socket: whether warrantd answers on it, its mode and who may connect.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use warrant_api as api;
use warrant_client::Client;

use super::report::Check;

/// How warrantd is started.
const START: &str =
    "start it: `systemctl --user enable --now warrantd.socket` (system mode: `sudo systemctl enable --now warrantd.socket`)";

/// Checks the socket at `path`; returns the client when warrantd answered.
pub fn check(path: &Path, checks: &mut Vec<Check>) -> Option<Client> {
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
    let mode = meta.mode() & 0o777;
    let group = nix::unistd::Group::from_gid(meta.gid().into()).ok().flatten().map(|g| g.name);
    let who = match mode & 0o077 {
        0 => "its owner only".to_owned(),
        0o060 | 0o020 => format!("its owner and group {}", group.unwrap_or_else(|| meta.gid().to_string())),
        _ => "anyone on this machine".to_owned(),
    };
    checks.push(if mode & 0o007 != 0 {
        Check::fail(
            "socket.mode",
            format!("{} has mode {mode:o}: {who} may connect", path.display()),
            "restart warrantd, which makes the socket 0600 (0660 with socket_group)",
        )
    } else {
        Check::ok(
            "socket.mode",
            format!("mode {mode:o}: {who} may connect (the rules decide what each may do)"),
        )
    });
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
