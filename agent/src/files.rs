//! The daemon's reads of files the configuration names, and its private directories.

use std::fs;
use std::path::{Path, PathBuf};

use warrant_attestation::certificate::{certificates_from_pem, Cert};

use crate::Error;

/// Most bytes read from a file the configuration names (certificates): larger than any of them.
const MAX_INPUT: u64 = 1024 * 1024;

/// Reads a whole file, refusing absurd sizes.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
        .map_err(|source| Error::Io { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(Error::BadFile {
            path: path.to_owned(),
            reason: format!("larger than {MAX_INPUT} bytes"),
        });
    }
    Ok(bytes)
}

/// Every certificate in the PEM files at `paths` (CA roots the configuration names: the
/// authority's checks and `warrantd doctor` read them alike).
pub(crate) fn certificates(paths: &[PathBuf]) -> Result<Vec<Cert>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let certs = certificates_from_pem(&read(path)?)
            .map_err(|e| Error::BadFile { path: path.clone(), reason: e.to_string() })?;
        out.extend(certs);
    }
    Ok(out)
}

/// Creates a directory readable by its owner only.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| Error::Io { path: path.to_owned(), source })
}
