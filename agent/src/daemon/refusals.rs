//! How many refusals each uid gets audited line by line: a token bucket per caller uid
//! (callers that could not be identified share one). Beyond its bucket a refusal is answered
//! 429 without a line of its own and only counted; the counts are written as one summary line
//! per uid per interval. A caller the rules deny can otherwise make the daemon write (and
//! fsync) a line per request, as fast as it can send them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::config::Limits;
use crate::Error;

/// Most uids tracked before buckets that carry no information are dropped; beyond it, an
/// untracked uid is counted with the unidentified callers (fail closed, memory bounded).
const MAX_UIDS: usize = 4096;

/// The per-uid refusal buckets and the counts of refusals not written.
#[derive(Debug)]
pub struct RefusalLimiter {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    burst: u32,
    per_second: u32,
    buckets: HashMap<Option<u32>, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

/// Refusals of one uid (`None`: unidentified or untracked callers) that were not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    /// Whose.
    pub uid: Option<u32>,
    /// How many.
    pub count: u64,
}

impl Default for RefusalLimiter {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            inner: Mutex::new(Inner {
                burst: limits.refusal_burst,
                per_second: limits.refusals_per_second,
                buckets: HashMap::new(),
            }),
        }
    }
}

impl RefusalLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::locks::lock(&self.inner)
    }

    /// Applies `limits` (at start and on reload); the buckets and counts carry over.
    pub fn configure(&self, limits: &Limits) {
        let mut inner = self.lock();
        inner.burst = limits.refusal_burst;
        inner.per_second = limits.refusals_per_second;
    }

    /// Takes a token for one refusal of `uid`. Without one, the refusal is counted and
    /// [`Error::TooManyRefusals`] says it is not to be written.
    pub fn admit(&self, uid: Option<u32>) -> Result<(), Error> {
        let now = Instant::now();
        let mut inner = self.lock();
        let (burst, per_second) = (f64::from(inner.burst), f64::from(inner.per_second));
        let refill =
            |b: &Bucket| (b.tokens + now.duration_since(b.last).as_secs_f64() * per_second).min(burst);
        if !inner.buckets.contains_key(&uid) && inner.buckets.len() >= MAX_UIDS {
            // Full buckets with nothing to report are the same as no bucket.
            inner.buckets.retain(|_, b| b.suppressed > 0 || refill(b) < burst);
        }
        let key = if inner.buckets.contains_key(&uid) || inner.buckets.len() < MAX_UIDS { uid } else { None };
        let bucket = inner.buckets.entry(key).or_insert(Bucket { tokens: burst, last: now, suppressed: 0 });
        bucket.tokens = refill(bucket);
        bucket.last = now;
        if key == uid && bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        bucket.suppressed += 1;
        let who = match uid {
            Some(uid) => format!("uid {uid}"),
            None => "an unidentified caller".into(),
        };
        Err(Error::TooManyRefusals { who, burst: inner.burst, per_second: inner.per_second })
    }

    /// The refusals not written since the last call, per uid; their counts start again at 0.
    pub fn take_suppressed(&self) -> Vec<Suppressed> {
        let mut inner = self.lock();
        let mut out: Vec<Suppressed> = inner
            .buckets
            .iter_mut()
            .filter(|(_, b)| b.suppressed > 0)
            .map(|(uid, b)| Suppressed { uid: *uid, count: std::mem::take(&mut b.suppressed) })
            .collect();
        out.sort_by_key(|s| s.uid);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, per_second: u32) -> RefusalLimiter {
        let limiter = RefusalLimiter::default();
        limiter.configure(&Limits {
            refusal_burst: burst,
            refusals_per_second: per_second,
            ..Limits::default()
        });
        limiter
    }

    #[test]
    fn a_uid_beyond_its_burst_is_counted_not_admitted_and_others_are_not_affected() {
        let limiter = limiter(3, 1);
        for _ in 0..3 {
            limiter.admit(Some(1001)).unwrap();
        }
        for _ in 0..5 {
            let err = limiter.admit(Some(1001)).unwrap_err();
            assert_eq!(err.code(), "too_many_refusals");
            assert!(err.to_string().contains("uid 1001 was refused more than 3 times"), "{err}");
        }
        limiter.admit(Some(1000)).unwrap();
        limiter.admit(None).unwrap();
        assert_eq!(limiter.take_suppressed(), vec![Suppressed { uid: Some(1001), count: 5 }]);
        assert_eq!(limiter.take_suppressed(), Vec::new(), "counts start again");
    }

    #[test]
    fn tokens_come_back_at_the_configured_rate() {
        let limiter = limiter(1, 50);
        limiter.admit(Some(7)).unwrap();
        assert!(limiter.admit(Some(7)).is_err());
        std::thread::sleep(std::time::Duration::from_millis(60));
        limiter.admit(Some(7)).unwrap();
    }

    #[test]
    fn memory_is_bounded_and_untracked_uids_are_refused_with_the_unidentified() {
        let limiter = limiter(1, 1);
        // Each uid spends its token and is refused once: nothing can be dropped.
        for uid in 0..MAX_UIDS as u32 {
            limiter.admit(Some(uid)).unwrap();
            assert!(limiter.admit(Some(uid)).is_err());
        }
        assert!(limiter.admit(Some(u32::MAX)).is_err(), "no room: refused, not tracked");
        let suppressed = limiter.take_suppressed();
        assert_eq!(suppressed.len(), MAX_UIDS + 1);
        assert_eq!(suppressed[0], Suppressed { uid: None, count: 1 });
        assert!(limiter.lock().buckets.len() <= MAX_UIDS + 1);
    }
}
