//! The directory the configuration (and the software store's passphrase file) goes in: made
//! with its mode and owner set explicitly, and refused when someone other than its owner could
//! swap the files in it (a symlink, another owner, writable by group or others).

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::unistd::{Gid, Uid};

use crate::Error;

/// User mode's directory: mode 0700, the user's.
const USER_MODE: u32 = 0o700;
/// System mode's `/etc/warrant`: root's, its group (warrant) may read agent.toml in it.
const SYSTEM_MODE: u32 = 0o750;

/// Makes `dir` (its parents too) if missing, mode 0700, and checks it is this user's own.
pub(crate) fn user(dir: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(USER_MODE)
        .create(dir)
        .map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    check(dir, nix::unistd::getuid())
}

/// Makes `dir` if missing, mode 0750 and group `group` set explicitly (not through the umask),
/// and checks it is root's and writable by root only.
pub(crate) fn system(dir: &Path, group: Option<Gid>) -> Result<(), Error> {
    let io = |source| Error::Io { path: dir.to_owned(), source };
    match std::fs::DirBuilder::new().mode(SYSTEM_MODE).create(dir) {
        Ok(()) => {
            let handle = open(dir)?;
            nix::unistd::fchown(&handle, Some(Uid::from_raw(0)), group).map_err(|e| io(e.into()))?;
            nix::sys::stat::fchmod(&handle, nix::sys::stat::Mode::from_bits_truncate(SYSTEM_MODE))
                .map_err(|e| io(e.into()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    check(dir, Uid::from_raw(0))
}

/// `dir` is a directory, not a symlink, owned by `owner`, and not writable by group or others.
pub(crate) fn check(dir: &Path, owner: Uid) -> Result<(), Error> {
    let meta = open(dir)?.metadata().map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    let why = if !meta.is_dir() {
        "is not a directory".to_owned()
    } else if meta.uid() != owner.as_raw() {
        format!("is owned by uid {}, not {}", meta.uid(), owner.as_raw())
    } else if meta.mode() & 0o022 != 0 {
        format!("is writable by group or others (mode {:04o})", meta.mode() & 0o7777)
    } else {
        return Ok(());
    };
    Err(Error::Config(format!(
        "{} {why}: another user could replace the configuration or the passphrase in it; fix it (chown, chmod go-w) or move it away",
        dir.display()
    )))
}

/// `dir` opened without following a symlink at its last component.
fn open(dir: &Path) -> Result<File, Error> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|source| {
            let symlink = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
            if symlink {
                Error::Config(format!(
                    "{} is a symlink: the configuration goes in a real directory (replace the link with one)",
                    dir.display()
                ))
            } else {
                Error::Io { path: dir.to_owned(), source }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_directory_others_could_change_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let me = nix::unistd::getuid();
        let dir = tmp.path().join("a/warrant");
        user(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        check(&dir, me).unwrap();
        for mode in [0o720, 0o702, 0o777] {
            chmod(&dir, mode);
            let e = check(&dir, me).unwrap_err().to_string();
            assert!(e.contains("writable by group or others"), "{mode:o}: {e}");
            assert!(user(&dir).is_err());
        }
        chmod(&dir, 0o755);
        check(&dir, me).unwrap();
        let e = check(&dir, Uid::from_raw(me.as_raw() + 1)).unwrap_err().to_string();
        assert!(e.contains(&format!("owned by uid {}", me.as_raw())), "{e}");
        // Root-owned is what system mode wants: refused when it is not.
        if !me.is_root() {
            assert!(check(&dir, Uid::from_raw(0)).is_err());
        }
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = check(&link, me).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        assert!(user(&link).is_err());
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(check(&file, me).is_err());
    }

    #[test]
    fn system_mode_makes_its_directory_0750_root_owned_and_refuses_a_writable_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("warrant");
        let made = system(&dir, None);
        if nix::unistd::geteuid().is_root() {
            made.unwrap();
            let meta = std::fs::metadata(&dir).unwrap();
            assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o750, 0));
            chmod(&dir, 0o770);
            assert!(system(&dir, None).unwrap_err().to_string().contains("writable by group"));
        } else {
            // Not root: chown to root fails, and the directory is not root's.
            assert!(made.is_err());
        }
    }
}
