use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::Error;

/// Remembers accepted warrant ids until they expire, so each is accepted once.
///
/// Implementations must make [`ReplayStore::remember`] atomic: of two concurrent calls with
/// the same id, exactly one succeeds. A store shared by a fleet of verifiers implements this
/// trait over its database.
pub trait ReplayStore: Send + Sync {
    /// Records `id`, valid until `forget_after` (seconds since the epoch). Fails with
    /// [`Error::Replayed`] if it is already recorded, or [`Error::ReplayStoreFull`] if the
    /// store cannot take it without forgetting an unexpired id.
    fn remember(&self, id: &[u8; 16], forget_after: u64, now: u64) -> Result<(), Error>;
}

/// An in-memory replay store with a fixed capacity; it fails closed when full.
#[derive(Debug)]
pub struct MemoryReplayStore {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<[u8; 16], u64>,
    /// Ids by the second they may be forgotten: few distinct seconds are live at once, so
    /// inserting and purging touch a small tree.
    by_expiry: BTreeMap<u64, Vec<[u8; 16]>>,
}

impl Entries {
    fn purge_expired(&mut self, now: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for id in entry.remove() {
                self.by_id.remove(&id);
            }
        }
    }
}

impl MemoryReplayStore {
    /// A store that holds at most `capacity` live ids.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Entries::default()) }
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The maps stay consistent even if a holder panicked: every update is two inserts.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(1 << 20)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn remember(&self, id: &[u8; 16], forget_after: u64, now: u64) -> Result<(), Error> {
        let mut entries = self.lock();
        if entries.by_id.contains_key(id) {
            return Err(Error::Replayed { id: hex::encode(id) });
        }
        if entries.by_id.len() >= self.capacity {
            entries.purge_expired(now);
            if entries.by_id.len() >= self.capacity {
                return Err(Error::ReplayStoreFull { capacity: self.capacity });
            }
        }
        entries.by_id.insert(*id, forget_after);
        entries.by_expiry.entry(forget_after).or_default().push(*id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_a_replay() {
        let store = MemoryReplayStore::new(4);
        store.remember(&[1; 16], 100, 0).unwrap();
        assert!(matches!(store.remember(&[1; 16], 100, 50), Err(Error::Replayed { .. })));
    }

    #[test]
    fn full_store_fails_closed_until_ids_expire() {
        let store = MemoryReplayStore::new(2);
        store.remember(&[1; 16], 100, 0).unwrap();
        store.remember(&[2; 16], 200, 0).unwrap();
        assert!(matches!(store.remember(&[3; 16], 300, 50), Err(Error::ReplayStoreFull { capacity: 2 })));
        // At 150 the first id has expired and is forgotten; the second is still live.
        store.remember(&[3; 16], 300, 150).unwrap();
        assert_eq!(store.len(), 2);
        assert!(matches!(store.remember(&[2; 16], 200, 150), Err(Error::Replayed { .. })));
    }
}
