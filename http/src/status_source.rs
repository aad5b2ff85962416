//! Where a verifier's status lists come from, and keeping the newest installed.
//!
//! A [`StatusSource`] hands out the current list when it has changed; [`refresh`] installs it,
//! and [`spawn_refresh`] does so periodically. [`FileStatusSource`] reads a file (replaced by
//! whoever publishes, e.g. `warrant authority status-list --out`); a source fetching over HTTP
//! implements the same trait.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use warrant_envelope::device::sha256;
use warrant_envelope::issue::MAX_STATUS_BYTES;
use warrant_envelope::verify::{StatusListInfo, Verifier};

use crate::Error;

/// A future a [`StatusSource`] returns.
pub type SourceFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, Error>> + Send + 'a>>;

/// A place status lists are taken from.
pub trait StatusSource: Send + Sync {
    /// Names the source in messages (a path, a URL).
    fn name(&self) -> String;

    /// The current list's bytes if they changed since the last successful call (the first
    /// call always returns them), `None` if unchanged, an error if they cannot be had.
    fn fetch(&self) -> SourceFuture<'_>;
}

/// A status list file, read again on every fetch and handed out when its content changed.
#[derive(Debug)]
pub struct FileStatusSource {
    path: PathBuf,
    /// SHA-256 of the content last handed out.
    last: Mutex<Option<[u8; 32]>>,
}

impl FileStatusSource {
    /// A source reading `path`.
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), last: Mutex::new(None) }
    }

    async fn read(&self) -> Result<Vec<u8>, Error> {
        let io = |source| Error::Io { path: self.path.clone(), source };
        let file = tokio::fs::File::open(&self.path).await.map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_STATUS_BYTES as u64 + 1).read_to_end(&mut bytes).await.map_err(io)?;
        if bytes.len() > MAX_STATUS_BYTES {
            return Err(Error::BadFile {
                path: self.path.clone(),
                reason: format!("larger than a status list may be ({MAX_STATUS_BYTES} bytes)"),
            });
        }
        Ok(bytes)
    }
}

impl StatusSource for FileStatusSource {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn fetch(&self) -> SourceFuture<'_> {
        Box::pin(async move {
            let bytes = self.read().await?;
            let digest = sha256(&bytes);
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if *last == Some(digest) {
                return Ok(None);
            }
            *last = Some(digest);
            Ok(Some(bytes))
        })
    }
}

/// Fetches from `source` and installs what changed: the installed list, or `None` if nothing
/// changed. A list the verifier refuses (older, forked, badly signed) is not installed.
pub async fn refresh(
    verifier: &Verifier,
    source: &dyn StatusSource,
) -> Result<Option<StatusListInfo>, Error> {
    let Some(bytes) = source.fetch().await? else {
        return Ok(None);
    };
    verifier
        .install_status_list(&bytes)
        .map(Some)
        .map_err(|error| Error::StatusList { source_name: source.name(), error })
}

/// Refreshes from `source` every `every`, logging (tracing) what was installed or refused,
/// until the task is aborted or the runtime stops.
pub fn spawn_refresh(
    verifier: Arc<Verifier>,
    source: Arc<dyn StatusSource>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match refresh(&verifier, source.as_ref()).await {
                Ok(Some(info)) => {
                    tracing::info!(source = %source.name(), sequence = info.sequence, "status list installed")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(source = %source.name(), error = %e, code = e.code(), "status list not installed")
                }
            }
        }
    })
}
