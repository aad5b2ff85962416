//! Where a verifier's status lists come from, and keeping the newest installed.
//!
//! A [`StatusSource`] hands out the current list when it has changed; [`refresh`] installs it,
//! walking the chain through the source's history when the verifier missed lists, and
//! [`spawn_refresh`] does so periodically. [`FileStatusSource`] reads a file (replaced by
//! whoever publishes, e.g. `warrant authority status-list --out`); `HttpStatusSource`
//! (feature `fetch`) fetches one over HTTP and is refreshed on the list's own schedule
//! ([`StatusRefresher`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use warrant_envelope::device::sha256;
use warrant_envelope::issue::MAX_STATUS_BYTES;
use warrant_envelope::verify::{StatusListInfo, Verifier};
use warrant_envelope::{inspect, Claims};

use crate::refresh_schedule::RefreshSchedule;
use crate::Error;

/// Most earlier lists fetched to walk the chain from the held list to a newer one; a verifier
/// that missed more installs the newest without checking the chain (FORMAT.md §6).
pub const MAX_CHAIN_WALK: u64 = 64;

/// A future a [`StatusSource`] returns.
pub type SourceFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, Error>> + Send + 'a>>;

/// A place status lists are taken from.
pub trait StatusSource: Send + Sync {
    /// Names the source in messages (a path, a URL).
    fn name(&self) -> String;

    /// The current list's bytes if they changed since the last successful call (the first
    /// call always returns them), `None` if unchanged, an error if they cannot be had.
    fn fetch(&self) -> SourceFuture<'_>;

    /// The earlier list with sequence `sequence` from the source's history (FORMAT.md §6,
    /// publishing), `None` if the source has none: [`refresh`] then installs the newest list
    /// without walking the chain. By default a source keeps no history.
    fn fetch_history(&self, sequence: u64) -> SourceFuture<'_> {
        let _ = sequence;
        Box::pin(async { Ok(None) })
    }

    /// Told that the list the last [`StatusSource::fetch`] handed out was not installed (refused,
    /// or its chain could not be fetched): the next fetch should hand it out again rather
    /// than report it unchanged. By default nothing is remembered to forget.
    fn not_installed(&self) {}
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
///
/// When the verifier holds an earlier list of the same authority and URI and the new one is
/// more than one sequence ahead, the lists in between are fetched from the source's history
/// (at most [`MAX_CHAIN_WALK`]) and the chain from the held list to the new one is checked
/// link by link ([`Verifier::install_status_list_after`]): a link that does not chain refuses
/// the new list, and the held one stays. A source without those lists (no history, or an
/// entry it no longer keeps) gets the new list installed directly, with a warning: the
/// verifier accepts a gap, protected by the signature and the sequence.
pub async fn refresh(
    verifier: &Verifier,
    source: &dyn StatusSource,
) -> Result<Option<StatusListInfo>, Error> {
    let Some(bytes) = source.fetch().await? else {
        return Ok(None);
    };
    let installed = install_along_the_chain(verifier, source, &bytes).await;
    if installed.is_err() {
        source.not_installed();
    }
    installed.map(Some)
}

async fn install_along_the_chain(
    verifier: &Verifier,
    source: &dyn StatusSource,
    bytes: &[u8],
) -> Result<StatusListInfo, Error> {
    let refused = |error| Error::StatusList { source_name: source.name(), error };
    let direct = || verifier.install_status_list(bytes).map_err(refused);
    // Read unverified, only to know what the verifier holds before it: the installation
    // checks everything, and a list that does not decode is refused there with its reason.
    let Ok(Claims::StatusList(claims)) = inspect(bytes).map(|i| i.claims) else {
        return direct();
    };
    let held = match verifier.status_list(&claims.issuer, &claims.uri) {
        Some(held) if claims.sequence > held.sequence.saturating_add(1) => held.sequence,
        _ => return direct(),
    };
    let missed = held + 1..claims.sequence;
    if missed.end - missed.start > MAX_CHAIN_WALK {
        tracing::warn!(
            source = %source.name(),
            held,
            sequence = claims.sequence,
            "more than {MAX_CHAIN_WALK} status lists missed: installing the newest without walking the chain"
        );
        return direct();
    }
    let mut between = Vec::new();
    for sequence in missed {
        match source.fetch_history(sequence).await? {
            Some(list) => between.push(list),
            None => {
                tracing::warn!(
                    source = %source.name(),
                    held,
                    missing = sequence,
                    sequence = claims.sequence,
                    "an earlier status list is not available from the source: installing the newest without walking the chain"
                );
                return direct();
            }
        }
    }
    let between: Vec<&[u8]> = between.iter().map(Vec::as_slice).collect();
    verifier.install_status_list_after(&between, bytes).map_err(refused)
}

/// Refreshes from `source` every `every`, logging (tracing) what was installed or refused,
/// until the task is aborted or the runtime stops. For a source read cheaply and often (a
/// file); a source fetched over the network is refreshed on its list's schedule with
/// [`StatusRefresher`].
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
            log_refresh(source.as_ref(), &refresh(&verifier, source.as_ref()).await);
        }
    })
}

fn log_refresh(source: &dyn StatusSource, outcome: &Result<Option<StatusListInfo>, Error>) {
    match outcome {
        Ok(Some(info)) => {
            tracing::info!(source = %source.name(), sequence = info.sequence, "status list installed")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(source = %source.name(), error = %e, code = e.code(), "status list not installed")
        }
    }
}

/// Keeps one source's list installed on the list's own schedule (FORMAT.md §6, fetching): the
/// next fetch at the held list's `iat + ttl`, retries with backoff after a failure, and jitter
/// on every wait so that a fleet of verifiers does not fetch in step. A fetch that fails keeps
/// the held list, which the verifier refuses to rely on after its `exp`
/// (`status_list_expired`).
pub struct StatusRefresher {
    verifier: Arc<Verifier>,
    source: Arc<dyn StatusSource>,
    schedule: RefreshSchedule,
    /// The (issuer, URI) of the list this source supplies, once one was installed.
    supplies: Option<(String, String)>,
}

impl StatusRefresher {
    /// Refreshes `verifier` from `source` on `schedule`.
    pub fn new(verifier: Arc<Verifier>, source: Arc<dyn StatusSource>, schedule: RefreshSchedule) -> Self {
        Self { verifier, source, schedule, supplies: None }
    }

    /// Fetches and installs once ([`refresh`]), remembering which list the source supplies.
    pub async fn refresh(&mut self) -> Result<Option<StatusListInfo>, Error> {
        let outcome = refresh(&self.verifier, self.source.as_ref()).await;
        if let Ok(Some(info)) = &outcome {
            self.supplies = Some((info.issuer.clone(), info.uri.clone()));
        }
        outcome
    }

    /// How long to wait after a refresh that succeeded or not: until the held list's
    /// `iat + ttl` after a success, a growing retry delay after a failure or while the source
    /// serves nothing newer than a list past its `ttl` (then at most `ttl`); jittered.
    fn wait_after(&mut self, succeeded: bool) -> Duration {
        let held = self
            .supplies
            .as_ref()
            .and_then(|(issuer, uri)| self.verifier.status_list(issuer, uri))
            .map(|held| (held.issued_at, held.time_to_live));
        let wait = if succeeded {
            self.schedule.after_fetch(held, unix_now())
        } else {
            self.schedule.after_failure()
        };
        self.schedule.jittered(wait)
    }

    /// Refreshes on the schedule, logging (tracing) what was installed or refused, until the
    /// task is aborted or the runtime stops. The first wait follows from what is held now
    /// (call [`StatusRefresher::refresh`] first to start with a list).
    pub fn spawn(mut self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut succeeded = self.supplies.is_some();
            loop {
                tokio::time::sleep(self.wait_after(succeeded)).await;
                let outcome = self.refresh().await;
                log_refresh(self.source.as_ref(), &outcome);
                succeeded = outcome.is_ok();
            }
        })
    }
}

/// Seconds since the Unix epoch (0 before it: a clock that broken makes every list look late,
/// so the refresher only retries sooner).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
