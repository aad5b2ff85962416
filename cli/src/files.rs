//! Reading and writing the CLI's files: durable replacement for state, private modes for
//! anything an attacker should not read or swap.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use warrant_api::trust::TrustFile;
use warrant_envelope::verify::TrustedAuthority;

use crate::Error;

/// Most bytes read from any input file: larger than any object or policy the format allows.
const MAX_INPUT: u64 = 1024 * 1024;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// Reads a whole input file, refusing absurd sizes.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes)).map_err(io(path))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(Error::BadFile {
            path: path.to_owned(),
            reason: format!("larger than {MAX_INPUT} bytes"),
        });
    }
    Ok(bytes)
}

/// Reads a UTF-8 text file.
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    String::from_utf8(read(path)?)
        .map_err(|_| Error::BadFile { path: path.to_owned(), reason: "not UTF-8".into() })
}

/// Replaces `path` with `bytes` atomically and durably (temporary file, fsync, rename, fsync
/// of the directory), with mode `mode`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    write_atomic_modified(path, bytes, mode, None)
}

/// [`write_atomic`], the new file's modification time set to `modified` when given.
pub(crate) fn write_atomic_modified(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    modified: Option<std::time::SystemTime>,
) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    (|| {
        tmp.as_file().write_all(bytes)?;
        if let Some(time) = modified {
            tmp.as_file().set_modified(time)?;
        }
        tmp.as_file().sync_all()?;
        Ok::<_, std::io::Error>(())
    })()
    .map_err(io(path))?;
    tmp.persist(path).map_err(|e| Error::Io { path: path.to_owned(), source: e.error })?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads a JSON file into `T`.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    serde_json::from_slice(&read(path)?)
        .map_err(|e| Error::BadFile { path: path.to_owned(), reason: format!("not the expected JSON: {e}") })
}

/// Writes `value` as JSON (0644: identities and credentials are public or bound to one TPM).
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| io(path)(e.into()))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, 0o644)
}

/// Reads and validates a trust file (from `warrant authority trust`).
pub(crate) fn read_trust(path: &Path) -> Result<TrustedAuthority, Error> {
    TrustFile::parse(&read(path)?)
        .map_err(|e| Error::BadFile { path: path.to_owned(), reason: e.to_string() })
}
