//! Files only their owner may read: the key stores' directories, key files and records.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::Error;

/// Maps an I/O error to [`Error::Io`] naming `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// Creates `dir` (mode 0700) if missing; refuses one that others can access.
pub(crate) fn open_private_dir(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
    }
    check_private(dir)
}

/// Refuses a file or directory that anyone but its owner can access.
pub(crate) fn check_private(path: &Path) -> Result<(), Error> {
    let mode = fs::metadata(path).map_err(io(path))?.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path`, mode 0600, durably, never replacing a file: the
/// content goes to a temporary file first and is hard-linked into place, so a crash leaves
/// either no file or a whole one.
pub(crate) fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(crate::reconcile::TEMPORARY_PREFIX)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let result = (|| {
        let mut file = tmp.as_file();
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::hard_link(tmp.path(), path)?;
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(io(path))
}
