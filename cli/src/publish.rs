//! Publishing status lists for a static web server (FORMAT.md §6, publishing): the list at
//! `DIR/<its URI's path>` and the lists before it at `DIR/<path>.history/<sequence>`, each
//! file replaced atomically so a server never serves half of one, the history written before
//! the list that needs it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use warrant_envelope::issue::status_list_digest;
use warrant_envelope::{inspect, Claims};

use crate::{files, Error};

/// How many earlier lists are kept beside the list by default.
pub(crate) const DEFAULT_KEEP: u64 = 32;

/// Where a list and its history go under a publishing directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The list's file.
    pub list: PathBuf,
    /// The directory of its history.
    pub history: PathBuf,
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    /// The list's file.
    pub list: PathBuf,
    /// Sequences of the history entries written now (missing or not the chain's).
    pub history_written: Vec<u64>,
    /// Sequences of the history entries removed (beyond `keep`).
    pub history_removed: Vec<u64>,
}

/// The files of the list whose URI is `uri`, under `dir`. The URI's path must be relative
/// segments of plain names: no `.` or `..`, no empty segment (`//`, a trailing `/`), no
/// percent-escape (a server decodes them: the file would not be the one it serves), no
/// backslash or control character.
pub(crate) fn layout(dir: &Path, uri: &str) -> Result<Layout, Error> {
    let unusable = |reason: &str| Error::PublishPath { uri: uri.into(), reason: reason.into() };
    let parsed: http::Uri = uri.parse().map_err(|_| unusable("it is not a URI"))?;
    if parsed.scheme().is_none() || parsed.authority().is_none() {
        return Err(unusable("it is not an absolute URI (https://host/path)"));
    }
    if parsed.query().is_some() || uri.contains('#') {
        return Err(unusable("a query or fragment does not name a file"));
    }
    let path = parsed.path().strip_prefix('/').unwrap_or_default();
    if path.is_empty() {
        return Err(unusable("it has no path to write the list at"));
    }
    let mut list = dir.to_path_buf();
    for segment in path.split('/') {
        let why = if segment.is_empty() {
            Some("an empty segment (// or a trailing /)")
        } else if segment == "." || segment == ".." {
            Some("a . or .. segment")
        } else if segment.contains('%') {
            Some("a percent-escape")
        } else if segment.chars().any(|c| c == '\\' || c.is_control()) {
            Some("a backslash or control character")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(unusable(&format!(
                "its path has {why}, which a file under the directory cannot mirror"
            )));
        }
        list.push(segment);
    }
    let mut history = list.clone().into_os_string();
    history.push(".history");
    Ok(Layout { list, history: PathBuf::from(history) })
}

/// The URI and sequence of the encoded list `bytes` (not verified: it comes from the
/// authority's own daemon, and verifiers check it).
pub(crate) fn uri_and_sequence(bytes: &[u8]) -> Result<(String, u64), Error> {
    match inspect(bytes)?.claims {
        Claims::StatusList(claims) => Ok((claims.uri, claims.sequence)),
        _ => Err(Error::UnexpectedAnswer("the status list is another kind of object".into())),
    }
}

/// Writes `list` (sequence `sequence`) and the `keep` lists before it under `dir`, taking
/// earlier lists from `earlier(sequence)`. History files already there are kept when they are
/// the chain's (each the list the next names as `prev`), else replaced; entries older than
/// the kept ones are removed.
pub(crate) fn publish(
    dir: &Path,
    list: &[u8],
    keep: u64,
    mut earlier: impl FnMut(u64) -> Result<Vec<u8>, Error>,
) -> Result<Published, Error> {
    let (uri, sequence) = uri_and_sequence(list)?;
    let layout = layout(dir, &uri)?;
    if !fs::metadata(dir).map_err(files::io(dir))?.is_dir() {
        return Err(Error::BadFile { path: dir.to_owned(), reason: "is not a directory".into() });
    }
    let first_kept = sequence.saturating_sub(keep).max(1);
    let mut history_written = Vec::new();
    if first_kept < sequence {
        make_dirs(dir, &layout.history)?;
        // Backwards along the chain: each entry must be what the one after it names as prev.
        let mut expected_digest = previous_of(list)?;
        for seq in (first_kept..sequence).rev() {
            let path = layout.history.join(seq.to_string());
            let on_disk = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => Some(files::read(&path)?),
                Ok(_) => {
                    return Err(Error::BadFile {
                        path,
                        reason: "is not a regular file: remove it, the history entry goes there".into(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => return Err(Error::Io { path, source }),
            };
            let entry = match on_disk.filter(|bytes| status_list_digest(bytes).ok() == Some(expected_digest))
            {
                Some(bytes) => bytes,
                None => {
                    let bytes = earlier(seq)?;
                    files::write_atomic(&path, &bytes, 0o644)?;
                    history_written.push(seq);
                    bytes
                }
            };
            expected_digest = previous_of(&entry)?;
        }
        history_written.reverse();
    }
    let history_removed = prune(&layout.history, first_kept)?;
    make_dirs(dir, layout.list.parent().unwrap_or(dir))?;
    replace_served(&layout.list, list)?;
    Ok(Published { list: layout.list, history_written, history_removed })
}

/// Replaces the file `path` a web server serves with `bytes`, atomically, its modification
/// time at least a second after the replaced file's: servers derive `ETag` and
/// `Last-Modified` from the time in whole seconds and the size (nginx: `"<mtime>-<size>"`), so a
/// list of the same size published within the same second would otherwise be answered 304 to
/// verifiers holding the one before, which would keep it until the next list.
pub(crate) fn replace_served(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let now = std::time::SystemTime::now();
    let modified = match fs::metadata(path).and_then(|m| m.modified()) {
        Ok(old) => now.max(old + std::time::Duration::from_secs(1)),
        Err(_) => now,
    };
    files::write_atomic_modified(path, bytes, 0o644, Some(modified))
}

/// The `prev` of the encoded list `bytes`.
fn previous_of(bytes: &[u8]) -> Result<[u8; 32], Error> {
    match inspect(bytes)?.claims {
        Claims::StatusList(claims) => Ok(claims.previous),
        _ => Err(Error::UnexpectedAnswer("a history entry is another kind of object".into())),
    }
}

/// Makes the directories from `dir` down to `target` (mode 0755: a web server reads them),
/// refusing a symbolic link on the way, which could lead out of `dir`.
fn make_dirs(dir: &Path, target: &Path) -> Result<(), Error> {
    let relative = target.strip_prefix(dir).map_err(|_| Error::BadFile {
        path: target.to_owned(),
        reason: format!("is not under {}", dir.display()),
    })?;
    let mut path = dir.to_path_buf();
    for component in relative.components() {
        path.push(component);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::BadFile {
                    path,
                    reason: "is a symbolic link: the publishing directory's tree must be its own".into(),
                })
            }
            Ok(_) => {
                return Err(Error::BadFile {
                    path,
                    reason:
                        "is not a directory (a list's path and a directory of another's cannot be one file)"
                            .into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(0o755).create(&path).map_err(files::io(&path))?;
                // The umask may have taken bits the server needs.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(files::io(&path))?;
            }
            Err(source) => return Err(Error::Io { path, source }),
        }
    }
    Ok(())
}

/// Removes the history entries before `first_kept`; returns their sequences.
fn prune(history: &Path, first_kept: u64) -> Result<Vec<u64>, Error> {
    let entries = match fs::read_dir(history) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { path: history.to_owned(), source }),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(files::io(history))?;
        // Only entries this publisher names (decimal sequences); anything else is left alone.
        let Some(seq) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        if seq < first_kept {
            fs::remove_file(entry.path()).map_err(files::io(&entry.path()))?;
            removed.push(seq);
        }
    }
    removed.sort_unstable();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_goes_at_its_uris_path_and_its_history_beside_it() {
        let dir = Path::new("/srv/www");
        let layout = layout(dir, "https://status.example.com/status/1").unwrap();
        assert_eq!(layout.list, Path::new("/srv/www/status/1"));
        assert_eq!(layout.history, Path::new("/srv/www/status/1.history"));
        let layout = layout_of("http://127.0.0.1:8080/lists/acme.cwt");
        assert_eq!(layout.list, Path::new("/srv/www/lists/acme.cwt"));
    }

    fn layout_of(uri: &str) -> Layout {
        layout(Path::new("/srv/www"), uri).unwrap()
    }

    #[test]
    fn a_path_that_could_leave_the_directory_or_name_no_file_is_refused() {
        for (uri, says) in [
            ("https://s.example.com/status/../../etc/passwd", "a . or .. segment"),
            ("https://s.example.com/./status", "a . or .. segment"),
            ("https://s.example.com/status/%2e%2e/x", "a percent-escape"),
            ("https://s.example.com/status%2F1", "a percent-escape"),
            ("https://s.example.com/status//1", "an empty segment"),
            ("https://s.example.com/status/", "an empty segment"),
            ("https://s.example.com/", "no path"),
            ("https://s.example.com", "no path"),
            ("https://s.example.com/status/1?v=1", "a query or fragment"),
            ("/status/1", "not an absolute URI"),
            ("https://s.example.com/a\\b", "a backslash"),
        ] {
            let err = layout(Path::new("/srv/www"), uri).unwrap_err();
            assert!(matches!(&err, Error::PublishPath { uri: u, .. } if u == uri), "{uri}: {err:?}");
            assert!(err.to_string().contains(says), "{uri}: {err}");
        }
    }
}
