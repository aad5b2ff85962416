//! The software store's passphrase file: made once, random, mode 0600, and never replaced
//! (keys sealed under a passphrase are lost with it).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::unistd::{Gid, Uid};
use zeroize::Zeroizing;

use crate::Error;

/// Random bytes in a new passphrase (written as hex).
const PASSPHRASE_BYTES: usize = 32;

/// What [`ensure`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passphrase {
    /// The file was there and is kept.
    Kept,
    /// A new file was written.
    Created,
}

/// Makes `path` hold a new random passphrase unless it exists, owned by `owner` (uid, gid)
/// when given (set through the open file, before the secret is written). Refused when `key_dir`
/// already holds key files: they are sealed under a passphrase that a new one would not open;
/// and when `path` is a symlink (the passphrase is a file in the checked configuration
/// directory).
pub(crate) fn ensure(path: &Path, key_dir: &Path, owner: Option<(Uid, Gid)>) -> Result<Passphrase, Error> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::Config(format!(
            "{} is a symlink: the passphrase file must be a file of its own (replace the link with the file)",
            path.display()
        )))
        }
        Ok(_) => return Ok(Passphrase::Kept),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let has_keys = std::fs::read_dir(key_dir)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".key")))
        .unwrap_or(false);
    if has_keys {
        return Err(Error::Config(format!(
            "{} is missing but {} holds software keys sealed under it: restore the file (a new passphrase would not open them)",
            path.display(),
            key_dir.display()
        )));
    }
    if let Some(dir) = path.parent() {
        crate::files::create_private_dir(dir)?;
    }
    let secret = Zeroizing::new(hex::encode(warrant_envelope::issue::random_bytes::<PASSPHRASE_BYTES>()?));
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(&file, Some(uid), Some(gid)).map_err(|e| io(e.into()))?;
    }
    file.write_all(secret.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
    super::sync_dir(path.parent().unwrap_or(Path::new("/")))?;
    Ok(Passphrase::Created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keys) = (dir.path().join("cfg/passphrase"), dir.path().join("keys"));
        assert_eq!(ensure(&path, &keys, None).unwrap(), Passphrase::Created);
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first.len(), 2 * PASSPHRASE_BYTES);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(ensure(&path, &keys, None).unwrap(), Passphrase::Kept);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    }

    #[test]
    fn a_symlink_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, target) = (dir.path().join("passphrase"), dir.path().join("theirs"));
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = ensure(&path, &dir.path().join("keys"), None).unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
        assert!(!target.exists(), "nothing written through the link");
        std::fs::write(&target, "known").unwrap();
        assert!(ensure(&path, &dir.path().join("keys"), None).is_err(), "nor kept when it points at a file");
    }

    #[test]
    fn not_made_when_keys_sealed_under_another_exist() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keys) = (dir.path().join("passphrase"), dir.path().join("keys"));
        std::fs::create_dir(&keys).unwrap();
        std::fs::write(keys.join("laptop.key"), b"sealed").unwrap();
        let e = ensure(&path, &keys, None).unwrap_err();
        assert!(e.to_string().contains("restore the file"), "{e}");
        assert!(!path.exists());
    }
}
