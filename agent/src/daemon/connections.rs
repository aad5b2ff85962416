//! Connection slots: how many connections are open, in all and per caller uid, so that the cap
//! on connections holds and one uid cannot take more than its share of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::StatusCode;

use super::error::ApiError;

/// Open connections, in all and per uid.
#[derive(Debug, Default)]
pub struct Connections {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

/// One open connection's place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    uid: u32,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        crate::locks::lock(&self.counts)
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        self.lock().total
    }

    /// Whether `max` connections are open (checked before the caller is identified, which
    /// costs a descriptor).
    pub fn full(&self, max: usize) -> bool {
        self.total() >= max
    }

    /// A slot for a connection of `uid`, unless `max` are open (503) or `uid` holds `share`
    /// already (429).
    pub fn take(self: &Arc<Self>, uid: u32, max: usize, share: usize) -> Result<Slot, ApiError> {
        let mut counts = self.lock();
        if counts.total >= max {
            return Err(full(max));
        }
        let held = counts.per_uid.entry(uid).or_insert(0);
        if *held >= share {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections_for_uid",
                format!(
                    "uid {uid} holds {share} connections, its share of warrantd's {max} (max_connections_per_uid); close one or retry shortly"
                ),
            ));
        }
        *held += 1;
        counts.total += 1;
        Ok(Slot { connections: self.clone(), uid })
    }
}

/// The refusal when every connection is taken.
pub fn full(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        format!("warrantd serves at most {max} connections at once; retry shortly"),
    )
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_uid.get_mut(&self.uid) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_held_to_its_share_and_slots_come_back() {
        let connections = Arc::new(Connections::default());
        let a: Vec<Slot> = (0..2).map(|_| connections.take(1001, 4, 2).unwrap()).collect();
        let err = connections.take(1001, 4, 2).unwrap_err();
        assert_eq!(
            (err.status, err.body.error.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_connections_for_uid")
        );
        let b: Vec<Slot> = (0..2).map(|_| connections.take(1000, 4, 2).unwrap()).collect();
        let err = connections.take(1002, 4, 2).unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(connections.full(4));
        drop(a);
        assert_eq!(connections.total(), 2);
        connections.take(1001, 4, 2).unwrap();
        drop(b);
        assert_eq!(connections.total(), 0, "every slot given back");
        assert!(connections.lock().per_uid.is_empty());
    }
}
