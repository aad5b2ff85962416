//! Start-up reconciliation of a key directory whose every key file is warrant's own: a crash
//! between linking a key file and committing its record leaves a key file nothing records
//! (its name can then be neither created nor used), and a crash while writing leaves a
//! `.tmp-` file holding key material. The first is moved into a private quarantine
//! directory, never deleted (it is key material someone may need to examine); the second is
//! removed (it never became a key).

use std::fs;
use std::path::{Path, PathBuf};

use crate::clock::unix_seconds;
use crate::private_files::{io, open_private_dir};
use crate::{Error, KeyName};

/// The quarantine directory inside a key directory.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Prefix of the temporary files a key file is written through.
pub(crate) const TEMPORARY_PREFIX: &str = ".tmp-";

/// What reconciliation did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// A key file with no record, moved into quarantine; its name is free again.
    Quarantined {
        /// The key's name.
        name: KeyName,
        /// Where the file is now.
        to: PathBuf,
    },
    /// A partly written file (a crash during a write), removed.
    RemovedPartial {
        /// Where it was.
        path: PathBuf,
    },
}

/// Reconciles `dir`, whose key files are `<name><suffix>`: quarantines each whose name
/// `recorded` does not know, and removes `.tmp-` files. Other files are left alone.
pub(crate) fn reconcile_dir(
    dir: &Path,
    suffix: &str,
    recorded: &dyn Fn(&KeyName) -> bool,
) -> Result<Vec<Reconciled>, Error> {
    let mut done = Vec::new();
    let mut names: Vec<(PathBuf, String)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if !entry.file_type().map_err(io(dir))?.is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            names.push((entry.path(), name.to_owned()));
        }
    }
    names.sort();
    for (path, file_name) in names {
        if file_name.starts_with(TEMPORARY_PREFIX) {
            fs::remove_file(&path).map_err(io(&path))?;
            done.push(Reconciled::RemovedPartial { path });
            continue;
        }
        // Names that are not key names (a TPM's attestation key file starts with a dot).
        let Some(name) = file_name.strip_suffix(suffix).and_then(|stem| KeyName::new(stem).ok()) else {
            continue;
        };
        if !recorded(&name) {
            let to = quarantine(dir, &path, &file_name)?;
            done.push(Reconciled::Quarantined { name, to });
        }
    }
    if !done.is_empty() {
        sync_dir(dir)?;
    }
    Ok(done)
}

/// Moves `path` into `dir/quarantine/` under `<file name>.<seconds>[-n]`, never replacing a
/// file there, durably.
fn quarantine(dir: &Path, path: &Path, file_name: &str) -> Result<PathBuf, Error> {
    let quarantine = dir.join(QUARANTINE_DIR);
    open_private_dir(&quarantine)?;
    let seconds = unix_seconds();
    for n in 0u32.. {
        let suffix = if n == 0 { String::new() } else { format!("-{n}") };
        let to = quarantine.join(format!("{file_name}.{seconds}{suffix}"));
        match fs::hard_link(path, &to) {
            Ok(()) => {
                sync_dir(&quarantine)?;
                fs::remove_file(path).map_err(io(path))?;
                return Ok(to);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::Io { path: to, source: e }),
        }
    }
    Err(Error::Io { path: quarantine, source: std::io::Error::other("no free quarantine name") })
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn orphans_are_quarantined_partials_removed_and_the_rest_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for file in ["kept.key", "orphan.key", ".tmp-a1b2", "notes.txt", ".attestation-key.key"] {
            fs::write(dir.join(file), file).unwrap();
        }
        let kept = KeyName::new("kept").unwrap();
        let done = reconcile_dir(dir, ".key", &|n| *n == kept).unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        assert_eq!(done[0], Reconciled::RemovedPartial { path: dir.join(".tmp-a1b2") });
        let Reconciled::Quarantined { name, to } = &done[1] else { panic!("{done:?}") };
        assert_eq!(name.as_str(), "orphan");
        assert_eq!(fs::read_to_string(to).unwrap(), "orphan.key", "moved whole, not deleted");
        assert!(!dir.join("orphan.key").exists() && !dir.join(".tmp-a1b2").exists());
        for file in ["kept.key", "notes.txt", ".attestation-key.key"] {
            assert!(dir.join(file).exists(), "{file} is left alone");
        }
        let mode = fs::metadata(dir.join(QUARANTINE_DIR)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A second orphan of the same name never replaces the first.
        fs::write(dir.join("orphan.key"), "again").unwrap();
        let again = reconcile_dir(dir, ".key", &|n| *n == kept).unwrap();
        let Reconciled::Quarantined { to: second, .. } = &again[0] else { panic!("{again:?}") };
        assert_ne!(second, to);
        assert_eq!(fs::read_to_string(to).unwrap(), "orphan.key");
    }
}
