//! Who may connect to the daemon's socket, worked out as the kernel decides it: write
//! permission on the socket and search permission on every directory above it, through the
//! directories a symbolic link leads to as well, each by its permission bits or, where it has
//! one, its POSIX access ACL (which grants named users and groups what the bits do not show).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

/// Most users named before the rest are counted.
const MAX_NAMED: usize = 8;

/// The extended attribute holding a file's access ACL.
const ACL_XATTR: &str = "system.posix_acl_access";
/// Its format's version (linux/posix_acl_xattr.h).
const ACL_VERSION: u32 = 2;
/// Its largest size: the kernel's limit on an extended attribute's value.
const ACL_MAX_BYTES: usize = 64 * 1024;

/// An ACL entry's tag (linux/posix_acl.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// The file's owner (the owner's bits).
    UserObj,
    /// A named user.
    User,
    /// The file's group (the group bits, when there is no mask).
    GroupObj,
    /// A named group.
    Group,
    /// The most any named user, the file's group and named groups get (the group bits).
    Mask,
    /// Everyone else (the others' bits).
    Other,
}

/// One entry of an access ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AclEntry {
    tag: Tag,
    /// rwx, as in a mode's three bits.
    perm: u32,
    /// The uid or gid of a named entry.
    id: u32,
}

/// A file's owner, group, permission bits and access ACL, as the kernel's access check reads
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    uid: u32,
    gid: u32,
    mode: u32,
    acl: Option<Vec<AclEntry>>,
}

/// Someone who might connect: a name for the line, a uid and every gid it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    name: String,
    uid: u32,
    gids: Vec<u32>,
}

/// Whether `who` has permission `bit` (2: write, 1: search) on `node`, as the kernel decides:
/// root passes (CAP_DAC_OVERRIDE); the owner gets the owner's bits; then the ACL, if there is
/// one; else a member of the file's group gets the group's bits, and everyone else the
/// others'.
fn permits(who: &Candidate, node: &Node, bit: u32) -> bool {
    if who.uid == 0 {
        return true;
    }
    if node.uid == who.uid {
        return (node.mode >> 6) & bit != 0;
    }
    if let Some(acl) = &node.acl {
        return acl_permits(who, node, acl, bit);
    }
    let shift = if who.gids.contains(&node.gid) { 3 } else { 0 };
    (node.mode >> shift) & bit != 0
}

/// The kernel's posix_acl_permission for someone other than the owner: a named user's entry,
/// else the first group entry (the
/// file's group or a named one) of `who`'s that grants `bit`, each limited by the mask; a
/// member of some listed group that none of them grants is refused; everyone else gets the
/// others' entry.
fn acl_permits(who: &Candidate, node: &Node, acl: &[AclEntry], bit: u32) -> bool {
    let mask = acl.iter().find(|e| e.tag == Tag::Mask).map_or(0o7, |e| e.perm);
    let mut in_a_group = false;
    for entry in acl {
        match entry.tag {
            Tag::User if entry.id == who.uid => return entry.perm & mask & bit != 0,
            Tag::GroupObj | Tag::Group => {
                let gid = if entry.tag == Tag::GroupObj { node.gid } else { entry.id };
                if who.gids.contains(&gid) {
                    in_a_group = true;
                    if entry.perm & bit != 0 {
                        return entry.perm & mask & bit != 0;
                    }
                }
            }
            Tag::Other => return !in_a_group && entry.perm & bit != 0,
            Tag::UserObj | Tag::User | Tag::Mask => {}
        }
    }
    false
}

/// Parses an access ACL's extended attribute: its version, then 8-byte entries (tag,
/// permissions, id; little-endian).
fn parse_acl(bytes: &[u8]) -> Result<Vec<AclEntry>, String> {
    let (version, entries) = bytes.split_at_checked(4).ok_or("shorter than its header")?;
    let version = u32::from_le_bytes(<[u8; 4]>::try_from(version).map_err(|_| "shorter than its header")?);
    if version != ACL_VERSION {
        return Err(format!("version {version}, not {ACL_VERSION}"));
    }
    if entries.len() % 8 != 0 {
        return Err("a truncated entry".into());
    }
    entries
        .chunks_exact(8)
        .map(|entry| {
            let tag = u16::from_le_bytes([entry[0], entry[1]]);
            let perm = u32::from(u16::from_le_bytes([entry[2], entry[3]]));
            let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
            let tag = match tag {
                0x01 => Tag::UserObj,
                0x02 => Tag::User,
                0x04 => Tag::GroupObj,
                0x08 => Tag::Group,
                0x10 => Tag::Mask,
                0x20 => Tag::Other,
                other => return Err(format!("an entry of unknown tag {other:#x}")),
            };
            Ok(AclEntry { tag, perm: perm & 0o7, id })
        })
        .collect()
}

/// The node at `path` (symbolic links followed, as connecting follows them).
fn node(path: &Path) -> Result<Node, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buffer = vec![0u8; ACL_MAX_BYTES];
    let acl = match rustix::fs::getxattr(path, ACL_XATTR, &mut buffer[..]) {
        Ok(len) => {
            let bytes =
                buffer.get(..len).ok_or_else(|| format!("{}: its ACL is too long", path.display()))?;
            Some(parse_acl(bytes).map_err(|e| format!("{}: its ACL: {e}", path.display()))?)
        }
        // No ACL beyond the bits, or a file system without ACLs.
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => None,
        Err(e) => return Err(format!("{}: reading its ACL: {e}", path.display())),
    };
    Ok(Node { uid: meta.uid(), gid: meta.gid(), mode: meta.mode() & 0o7777, acl })
}

/// Connecting takes write permission on the socket and search permission on every directory
/// above it.
fn may_connect(who: &Candidate, socket: &Node, dirs: &[Node]) -> bool {
    dirs.iter().all(|dir| permits(who, dir, 0o1)) && permits(who, socket, 0o2)
}

/// Who may connect to `socket` under `dirs`: anyone (a user in no group, named nowhere),
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

/// The directories above `path` that connecting searches: those of the path as given, and,
/// when a symbolic link is on the way, those of where it leads.
fn directories(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
    if let Ok(real) = std::fs::canonicalize(path) {
        for dir in real.ancestors().skip(1) {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs.retain(|d| !d.as_os_str().is_empty());
    dirs
}

/// Who may connect to the socket at `path`: root; and, each when the socket's write
/// permission and every directory's search permission let them through, the owners of the
/// socket and of its directories, their groups' members (those /etc/group lists, and the
/// users whose primary group it is), the users their ACLs name and the named groups' members;
/// "anyone" when a user in none of those may. What cannot be read is said.
pub fn describe(path: &Path) -> String {
    let socket = match node(path) {
        Ok(node) => node,
        Err(e) => return format!("unknown who ({e})"),
    };
    let mut dirs = Vec::new();
    for dir in directories(path) {
        match node(&dir) {
            Ok(node) => dirs.push(node),
            Err(e) => return format!("unknown who ({e})"),
        }
    }
    let mut candidates = Vec::new();
    for (index, node) in std::iter::once(&socket).chain(&dirs).enumerate() {
        let whose = if index == 0 { "its owner".to_owned() } else { "a directory's owner".to_owned() };
        add_user(&mut candidates, User::from_uid(Uid::from_raw(node.uid)).ok().flatten(), &whose);
        add_group(&mut candidates, Gid::from_raw(node.gid));
        for entry in node.acl.iter().flatten() {
            match entry.tag {
                Tag::User => add_user(
                    &mut candidates,
                    User::from_uid(Uid::from_raw(entry.id)).ok().flatten(),
                    "an ACL",
                ),
                Tag::Group => add_group(&mut candidates, Gid::from_raw(entry.id)),
                _ => {}
            }
        }
    }
    who_of(&socket, &dirs, &candidates)
}

/// Adds `user` (when it exists and is not there yet), described as named by `how`.
fn add_user(candidates: &mut Vec<Candidate>, user: Option<User>, how: &str) {
    let Some(user) = user else { return };
    if candidates.iter().any(|c| c.uid == user.uid.as_raw()) {
        return;
    }
    let name = format!("{} (uid {}, {how})", user.name, user.uid);
    candidates.extend(candidate(&user, name));
}

/// Adds the members of the group `gid`: those /etc/group lists and those whose primary group
/// it is.
fn add_group(candidates: &mut Vec<Candidate>, gid: Gid) {
    let Ok(Some(group)) = Group::from_gid(gid) else { return };
    let listed = group.mem.iter().filter_map(|name| User::from_name(name).ok().flatten());
    let how = format!("group {}", group.name);
    for user in primary_members(group.gid).into_iter().chain(listed) {
        add_user(candidates, Some(user), &how);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: u32, gids: &[u32]) -> Candidate {
        Candidate { name: name.into(), uid, gids: gids.to_vec() }
    }

    fn bits(uid: u32, gid: u32, mode: u32) -> Node {
        Node { uid, gid, mode, acl: None }
    }

    fn entry(tag: Tag, perm: u32, id: u32) -> AclEntry {
        AclEntry { tag, perm, id }
    }

    const ALICE: u32 = 1000;
    const BOB: u32 = 1001;
    const WARRANT: u32 = 998;

    #[test]
    fn who_may_connect_takes_the_write_bits_and_every_directorys_search_bits() {
        let open_dirs = [bits(0, 0, 0o755)];
        let alice = user("alice (uid 1000, its owner)", ALICE, &[ALICE]);
        let mine = |mode| bits(ALICE, ALICE, mode);
        // User mode: a 0600 socket in the user's 0700 runtime directory.
        let runtime = [bits(ALICE, ALICE, 0o700), open_dirs[0].clone()];
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
        let socket = bits(0, GROUP, 0o660);
        let dirs = [bits(WARRANT, GROUP, 0o750), bits(0, 0, 0o755)];
        let people = [
            user("root (uid 0, its owner)", 0, &[0]),
            user("warrant (uid 998, group warrant)", WARRANT, &[GROUP, 109]),
            user("alice (uid 1000, group warrant)", ALICE, &[ALICE, GROUP]),
        ];
        let outsider = user("bob (uid 1001)", BOB, &[BOB]);
        let all = [&people[..], std::slice::from_ref(&outsider)].concat();
        assert_eq!(
            who_of(&socket, &dirs, &all),
            "root and warrant (uid 998, group warrant), alice (uid 1000, group warrant)"
        );
        // The directory made by systemd for the socket alone (root:root 0750): only root gets
        // through, whatever the socket's group.
        let root_dir = [bits(0, 0, 0o750), dirs[1].clone()];
        assert_eq!(who_of(&socket, &root_dir, &all), "root only");
        // Many members: the first are named, the rest counted.
        let many: Vec<Candidate> = (0..10).map(|i| user(&format!("u{i}"), 2000 + i, &[GROUP])).collect();
        assert_eq!(who_of(&socket, &dirs, &many), "root, u0, u1, u2, u3, u4, u5, u6, u7 and 2 more");
    }

    /// The bits say "root only" (a 0600 socket in a 0700 directory, both root's); ACLs let
    /// others in, as the kernel decides: a named user through the mask, a named group's member,
    /// and not a user the mask or a group entry without the permission keeps out.
    #[test]
    fn acls_let_named_users_and_groups_through_as_the_kernel_decides() {
        const STAFF: u32 = 50;
        let alice = user("alice (uid 1000, an ACL)", ALICE, &[ALICE]);
        let bob = user("bob (uid 1001, group staff)", BOB, &[BOB, STAFF]);
        let people = [alice.clone(), bob.clone()];
        let acl = |named: &[AclEntry], group: u32, mask: u32, other: u32| {
            let mut entries = vec![entry(Tag::UserObj, 0o6, 0)];
            entries.extend(named.iter().filter(|e| e.tag == Tag::User));
            entries.push(entry(Tag::GroupObj, group, 0));
            entries.extend(named.iter().filter(|e| e.tag == Tag::Group));
            entries.extend([entry(Tag::Mask, mask, 0), entry(Tag::Other, other, 0)]);
            Some(entries)
        };
        let dir = |acl| Node { uid: 0, gid: 0, mode: 0o700, acl };
        let socket = |acl| Node { uid: 0, gid: 0, mode: 0o600, acl };
        let open = [entry(Tag::User, 0o7, ALICE), entry(Tag::Group, 0o5, STAFF)];
        let dirs = [dir(acl(&open, 0, 0o7, 0))];
        assert_eq!(who_of(&socket(None), &dirs, &people), "root only", "the socket's bits still close it");
        let named = [entry(Tag::User, 0o6, ALICE), entry(Tag::Group, 0o6, STAFF)];
        assert_eq!(
            who_of(&socket(acl(&named, 0, 0o6, 0)), &dirs, &people),
            "root and alice (uid 1000, an ACL), bob (uid 1001, group staff)"
        );
        // The mask takes write from every named entry.
        assert_eq!(who_of(&socket(acl(&named, 0, 0o4, 0)), &dirs, &people), "root only");
        // A member of a listed group is refused the others' entry when no group entry grants.
        let read_only = [entry(Tag::Group, 0o4, STAFF)];
        let others_write = socket(acl(&read_only, 0, 0o6, 0o6));
        assert_eq!(who_of(&others_write, &[], &people[1..]), "anyone on this machine");
        assert!(!may_connect(&bob, &others_write, &[]), "bob's group entry, not the others', decides");
        // The directory's ACL without search for the group: bob stops there.
        let no_search = [dir(acl(&[entry(Tag::User, 0o7, ALICE), entry(Tag::Group, 0o6, STAFF)], 0, 0o7, 0))];
        assert_eq!(
            who_of(&socket(acl(&named, 0, 0o6, 0)), &no_search, &people),
            "root and alice (uid 1000, an ACL)"
        );
    }

    #[test]
    fn an_acl_attribute_is_parsed_strictly() {
        let mut bytes = ACL_VERSION.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (0x01u16, 6u16, u32::MAX),
            (0x02, 6, ALICE),
            (0x04, 0, u32::MAX),
            (0x10, 6, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            bytes.extend(tag.to_le_bytes());
            bytes.extend(perm.to_le_bytes());
            bytes.extend(id.to_le_bytes());
        }
        let acl = parse_acl(&bytes).unwrap();
        assert_eq!(acl.len(), 5);
        assert_eq!(acl[1], entry(Tag::User, 0o6, ALICE));
        assert!(parse_acl(&bytes[..bytes.len() - 1]).unwrap_err().contains("truncated"));
        assert!(parse_acl(&bytes[..3]).unwrap_err().contains("header"));
        assert!(parse_acl(&[1, 0, 0, 0]).unwrap_err().contains("version 1"));
        let mut unknown = bytes.clone();
        unknown[4] = 0x40;
        assert!(parse_acl(&unknown).unwrap_err().contains("unknown tag 0x40"));
    }
}
