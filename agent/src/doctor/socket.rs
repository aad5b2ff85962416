//! The daemon's socket: whether warrantd answers on it, its mode and who may connect, and its
//! owner (a socket someone else made is not talked to).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::unistd::{Gid, Group, User};
use warrant_api as api;
use warrant_client::Client;

use super::daemon_user::Identity;
use super::report::Check;
use crate::daemon::config::Mode;

/// Most users named in "who may connect" before the rest are counted.
const MAX_NAMED: usize = 8;

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
    let who = who_may_connect(path, &meta);
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

/// A file's owner, group and permission bits, as the kernel's access check reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    uid: u32,
    gid: u32,
    mode: u32,
}

/// Someone who might connect: a name for the line, a uid and every gid it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    name: String,
    uid: u32,
    gids: Vec<u32>,
}

/// Whether `who` has permission `bit` (2: write, 1: search) on `node`, as the kernel decides
/// without ACLs: the owner's bits for its owner, else the group's for a member, else the
/// others'. Root passes (CAP_DAC_OVERRIDE).
fn permits(who: &Candidate, node: &Node, bit: u32) -> bool {
    let shift = if who.uid == 0 {
        return true;
    } else if node.uid == who.uid {
        6
    } else if who.gids.contains(&node.gid) {
        3
    } else {
        0
    };
    (node.mode >> shift) & bit != 0
}

/// Connecting takes write permission on the socket and search permission on every directory
/// above it.
fn may_connect(who: &Candidate, socket: &Node, dirs: &[Node]) -> bool {
    dirs.iter().all(|dir| permits(who, dir, 0o1)) && permits(who, socket, 0o2)
}

/// Who may connect to `socket` under `dirs`: anyone (a user in no group that owns anything),
/// else root and each of `candidates` who may, by name.
fn who_of(socket: &Node, dirs: &[Node], candidates: &[Candidate]) -> String {
    let anyone = Candidate { name: String::new(), uid: u32::MAX - 1, gids: Vec::new() };
    if may_connect(&anyone, socket, dirs) {
        return "anyone on this machine".to_owned();
    }
    let mut names: Vec<&str> = Vec::new();
    for candidate in candidates.iter().filter(|c| c.uid != 0 && may_connect(c, socket, dirs)) {
        if !names.contains(&candidate.name.as_str()) {
            names.push(&candidate.name);
        }
    }
    let more = names.len().saturating_sub(MAX_NAMED);
    names.truncate(MAX_NAMED);
    match (names.as_slice(), more) {
        ([], _) => "root only".to_owned(),
        (names, 0) => format!("root and {}", names.join(", ")),
        (names, more) => format!("root, {} and {more} more", names.join(", ")),
    }
}

/// Who may connect to the socket at `path`: root; its owner, its group's members (those
/// /etc/group lists, and the users whose primary group it is) and everyone else, each when the
/// socket's write bits and every directory's search bits above it let them through.
fn who_may_connect(path: &Path, meta: &std::fs::Metadata) -> String {
    let node = |m: &std::fs::Metadata| Node { uid: m.uid(), gid: m.gid(), mode: m.mode() & 0o7777 };
    let dirs: Vec<Node> =
        path.ancestors().skip(1).filter_map(|d| std::fs::metadata(d).ok()).map(|m| node(&m)).collect();
    let socket = node(meta);
    let mut candidates = Vec::new();
    if let Ok(Some(owner)) = User::from_uid(meta.uid().into()) {
        let description = format!("{} (uid {}, its owner)", owner.name, owner.uid);
        candidates.extend(candidate(&owner, description));
    }
    if let Ok(Some(group)) = Group::from_gid(meta.gid().into()) {
        let by_primary = primary_members(group.gid);
        let listed = group.mem.iter().filter_map(|name| User::from_name(name).ok().flatten());
        for user in by_primary.into_iter().chain(listed) {
            let description = format!("{} (uid {}, group {})", user.name, user.uid, group.name);
            candidates.extend(candidate(&user, description));
        }
    }
    who_of(&socket, &dirs, &candidates)
}

/// `user` with every group it runs with.
fn candidate(user: &User, name: String) -> Option<Candidate> {
    let c_name = std::ffi::CString::new(user.name.as_bytes()).ok()?;
    let gids = nix::unistd::getgrouplist(&c_name, user.gid).unwrap_or_else(|_| vec![user.gid]);
    Some(Candidate { name, uid: user.uid.as_raw(), gids: gids.into_iter().map(Gid::as_raw).collect() })
}

/// The local users (/etc/passwd) whose primary group is `gid`: /etc/group does not list them.
fn primary_members(gid: Gid) -> Vec<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter(|line| line.split(':').nth(3) == Some(gid.to_string().as_str()))
        .filter_map(|line| line.split(':').next())
        .filter_map(|name| User::from_name(name).ok().flatten())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: u32, gids: &[u32]) -> Candidate {
        Candidate { name: name.into(), uid, gids: gids.to_vec() }
    }

    const ALICE: u32 = 1000;
    const WARRANT: u32 = 998;

    #[test]
    fn who_may_connect_takes_the_write_bits_and_every_directorys_search_bits() {
        let open_dirs = [Node { uid: 0, gid: 0, mode: 0o755 }];
        let alice = user("alice (uid 1000, its owner)", ALICE, &[ALICE]);
        let mine = |mode| Node { uid: ALICE, gid: ALICE, mode };
        // User mode: a 0600 socket in the user's 0700 runtime directory.
        let runtime = [Node { uid: ALICE, gid: ALICE, mode: 0o700 }, open_dirs[0]];
        assert_eq!(
            who_of(&mine(0o600), &runtime, std::slice::from_ref(&alice)),
            "root and alice (uid 1000, its owner)"
        );
        // Reading a socket does not connect; nor do others' bits through a closed directory.
        assert_eq!(
            who_of(&mine(0o644), &open_dirs, std::slice::from_ref(&alice)),
            "root and alice (uid 1000, its owner)"
        );
        assert_eq!(
            who_of(&mine(0o666), &runtime, std::slice::from_ref(&alice)),
            "root and alice (uid 1000, its owner)"
        );
        assert_eq!(who_of(&mine(0o662), &open_dirs, std::slice::from_ref(&alice)), "anyone on this machine");
        assert_eq!(who_of(&mine(0o400), &open_dirs, &[alice]), "root only");
    }

    #[test]
    fn system_mode_names_root_the_daemon_and_the_groups_members_who_can_reach_it() {
        const GROUP: u32 = 997;
        // /run/warrant 0750 warrant:warrant, the socket 0660 root:warrant (the shipped units).
        let socket = Node { uid: 0, gid: GROUP, mode: 0o660 };
        let dirs = [Node { uid: WARRANT, gid: GROUP, mode: 0o750 }, Node { uid: 0, gid: 0, mode: 0o755 }];
        let people = [
            user("root (uid 0, its owner)", 0, &[0]),
            user("warrant (uid 998, group warrant)", WARRANT, &[GROUP, 109]),
            user("alice (uid 1000, group warrant)", ALICE, &[ALICE, GROUP]),
        ];
        let outsider = user("bob (uid 1001)", 1001, &[1001]);
        let all = [&people[..], std::slice::from_ref(&outsider)].concat();
        assert_eq!(
            who_of(&socket, &dirs, &all),
            "root and warrant (uid 998, group warrant), alice (uid 1000, group warrant)"
        );
        // The directory made by systemd for the socket alone (root:root 0750): only root gets
        // through, whatever the socket's group.
        let root_dir = [Node { uid: 0, gid: 0, mode: 0o750 }, dirs[1]];
        assert_eq!(who_of(&socket, &root_dir, &all), "root only");
        // Many members: the first are named, the rest counted.
        let many: Vec<Candidate> = (0..10).map(|i| user(&format!("u{i}"), 2000 + i, &[GROUP])).collect();
        assert_eq!(who_of(&socket, &dirs, &many), "root, u0, u1, u2, u3, u4, u5, u6, u7 and 2 more");
    }
}
