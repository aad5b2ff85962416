//! When a status list is fetched next (FORMAT.md §6, fetching): at the held list's
//! `iat + ttl`, sooner with a growing delay after failures, each wait jittered so that a fleet
//! of verifiers holding the same list does not fetch it in step.

use std::time::Duration;

use warrant_envelope::issue::random_bytes;

/// The first retry delay by default.
pub const DEFAULT_RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest retry delay by default.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(60);

/// The schedule of one source's fetches.
#[derive(Debug, Clone)]
pub struct RefreshSchedule {
    retry_min: Duration,
    retry_max: Duration,
    /// Retries in a row: fetches that failed or found nothing newer than a list already due.
    retries: u32,
}

impl Default for RefreshSchedule {
    fn default() -> Self {
        Self::new(DEFAULT_RETRY_MIN, DEFAULT_RETRY_MAX)
    }
}

impl RefreshSchedule {
    /// Retries `retry_min` after the first failure, doubling up to `retry_max` (which is at
    /// least `retry_min`).
    pub fn new(retry_min: Duration, retry_max: Duration) -> Self {
        Self { retry_min, retry_max: retry_max.max(retry_min), retries: 0 }
    }

    /// The wait after a fetch that succeeded (a list installed, or the source's list unchanged)
    /// when the held list was issued at `issued_at` with `ttl` (`None` when nothing is held)
    /// and it is `now`: until `issued_at + ttl`; once that has passed (the publisher has
    /// nothing newer yet), a retry delay, but never more than `ttl`, the longest a list is
    /// meant to be relied on without asking for a newer one.
    pub fn after_fetch(&mut self, held: Option<(u64, u64)>, now: u64) -> Duration {
        match held {
            Some((issued_at, ttl)) if issued_at.saturating_add(ttl) > now => {
                self.retries = 0;
                Duration::from_secs(issued_at.saturating_add(ttl) - now)
            }
            Some((_, ttl)) => self.retry().min(Duration::from_secs(ttl.max(1))),
            None => self.retry(),
        }
    }

    /// The wait after a fetch that failed: `retry_min`, doubled with each failure in a row, at
    /// most `retry_max`.
    pub fn after_failure(&mut self) -> Duration {
        self.retry()
    }

    fn retry(&mut self) -> Duration {
        let doublings = self.retries.min(30);
        self.retries = self.retries.saturating_add(1);
        self.retry_min.saturating_mul(1 << doublings).min(self.retry_max)
    }

    /// `wait` lengthened by a random part of up to a tenth of it.
    pub fn jittered(&self, wait: Duration) -> Duration {
        // Without randomness the wait is not spread, which is no reason to stop refreshing.
        let random = random_bytes::<8>().map(u64::from_le_bytes).unwrap_or(0);
        jitter(wait, random)
    }
}

/// `wait` plus `random / 2^64` of a tenth of it.
fn jitter(wait: Duration, random: u64) -> Duration {
    let tenth = wait.as_nanos() / 10;
    let extra = tenth.saturating_mul(u128::from(random)) >> 64;
    wait + Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_next_fetch_is_at_the_held_lists_iat_plus_ttl() {
        let mut schedule = RefreshSchedule::default();
        assert_eq!(schedule.after_fetch(Some((NOW - 10, 300)), NOW), Duration::from_secs(290));
        assert_eq!(schedule.after_fetch(Some((NOW, 1)), NOW), Duration::from_secs(1));
    }

    #[test]
    fn failures_and_late_lists_back_off_up_to_the_bound_and_a_fresh_list_resets() {
        let mut schedule = RefreshSchedule::new(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (0..6).map(|_| schedule.after_failure().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(schedule.after_fetch(Some((NOW, 30)), NOW), Duration::from_secs(30));
        // Nothing held, or a held list past its ttl with nothing newer: retried, backing off.
        assert_eq!(schedule.after_fetch(None, NOW), Duration::from_secs(1));
        assert_eq!(schedule.after_fetch(Some((NOW - 300, 300)), NOW), Duration::from_secs(2));
        assert_eq!(schedule.after_fetch(Some((NOW - 400, 300)), NOW), Duration::from_secs(4));
        for _ in 0..100 {
            schedule.after_failure();
        }
        assert_eq!(schedule.after_failure(), Duration::from_secs(10));
    }

    #[test]
    fn a_late_list_is_asked_for_again_at_least_every_ttl() {
        let mut schedule = RefreshSchedule::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> =
            (0..8).map(|_| schedule.after_fetch(Some((NOW - 10, 5)), NOW).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5, 5, 5, 5]);
    }

    #[test]
    fn jitter_adds_at_most_a_tenth() {
        let wait = Duration::from_secs(300);
        assert_eq!(jitter(wait, 0), wait);
        assert_eq!(jitter(wait, u64::MAX / 2), Duration::from_secs(315) - Duration::from_nanos(1));
        let most = jitter(wait, u64::MAX);
        assert!(most > Duration::from_secs(329) && most <= Duration::from_secs(330), "{most:?}");
        // Random draws spread, and stay in bounds.
        let schedule = RefreshSchedule::default();
        let draws: Vec<Duration> = (0..32).map(|_| schedule.jittered(wait)).collect();
        assert!(draws.iter().all(|d| *d >= wait && *d <= Duration::from_secs(330)), "{draws:?}");
        assert!(draws.iter().any(|d| *d != draws[0]), "{draws:?}");
    }
}
