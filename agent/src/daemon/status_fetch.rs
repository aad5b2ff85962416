//! The device side's status lists over HTTP (`[device] status_urls`): each URL fetched on its
//! list's schedule (at `iat + ttl`, retries backing off, jittered, conditionally) and offered to
//! the daemon's [`NewestStatusLists`](crate::newest_lists::NewestStatusLists), so that cached
//! TPM quotes are bound to the authority's newest list without a sign request carrying it.
//!
//! The device does not verify lists (it need not hold its authorities' keys) and so walks no
//! chain: a list that is not the authority's only makes quotes that verifiers refuse.

use std::sync::Arc;

use tokio::task::JoinHandle;
use warrant_envelope::{inspect, Claims};
use warrant_http::{HttpStatusSource, RefreshSchedule, StatusSource};

use super::config::DeviceConfig;
use super::state::Daemon;
use crate::newest_lists::Offered;
use crate::Error;

/// A source for each configured URL.
pub fn sources(config: &DeviceConfig) -> Result<Vec<HttpStatusSource>, Error> {
    let options = config.fetch_options();
    config
        .status_urls
        .iter()
        .map(|url| {
            // The configuration was checked with the same call: this fails only if the CA file
            // changed since.
            HttpStatusSource::new(url, &options)
                .map_err(|e| Error::Config(format!("[device] status_urls: {e}")))
        })
        .collect()
}

/// Starts one fetching task per source.
pub fn spawn(daemon: &Arc<Daemon>, sources: Vec<HttpStatusSource>) -> Vec<JoinHandle<()>> {
    sources
        .into_iter()
        .map(|source| {
            tracing::info!(url = %source.name(), "fetching this status list on its schedule");
            tokio::spawn(keep_fresh(daemon.clone(), source, RefreshSchedule::default()))
        })
        .collect()
}

/// Fetches `source` on its list's schedule, forever.
async fn keep_fresh(daemon: Arc<Daemon>, source: HttpStatusSource, mut schedule: RefreshSchedule) {
    // The `iat` and `ttl` of the list last fetched: when the next one is due.
    let mut held = None;
    loop {
        let wait = match source.fetch().await {
            Ok(Some(bytes)) => match daemon.status_lists.offer(&bytes) {
                Ok(offered) => {
                    held = issued_and_ttl(&bytes);
                    match offered {
                        Offered::Newest => {
                            tracing::info!(url = %source.name(), "status list taken as the newest")
                        }
                        Offered::Known => {}
                        Offered::Superseded { held } => tracing::info!(
                            url = %source.name(),
                            held,
                            "the status list fetched is not newer than the one held"
                        ),
                    }
                    schedule.after_fetch(held, unix_now())
                }
                Err(e) => {
                    tracing::warn!(url = %source.name(), error = %e, "status list not taken");
                    source.not_installed();
                    schedule.after_failure()
                }
            },
            Ok(None) => schedule.after_fetch(held, unix_now()),
            Err(e) => {
                tracing::warn!(url = %source.name(), error = %e, code = e.code(), "status list not fetched");
                schedule.after_failure()
            }
        };
        tokio::time::sleep(schedule.jittered(wait)).await;
    }
}

/// The `iat` and `ttl` of the list `bytes` (which the offer has just decoded).
fn issued_and_ttl(bytes: &[u8]) -> Option<(u64, u64)> {
    match inspect(bytes).ok()?.claims {
        Claims::StatusList(claims) => Some((claims.issued_at, claims.time_to_live)),
        _ => None,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
