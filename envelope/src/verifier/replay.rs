use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::Error;

/// What a replay store remembers of an accepted warrant.
///
/// The warrant id (`cti`) is chosen by the device, so alone it would let one device burn
/// another's id by presenting it first. The key scopes it to the grant and its issuer, and to
/// the audience so that one store shared by several services keeps them apart: [`Self::digest`]
/// is SHA-256 over the issuer, the grant id, the warrant id and the audience, each preceded
/// by its length as 8 bytes big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayKey {
    digest: [u8; 32],
    warrant_id: [u8; 16],
}

impl ReplayKey {
    /// The key of warrant `warrant_id` under grant `grant_id` of `issuer`, for `audience`.
    pub fn new(issuer: &str, grant_id: &[u8; 16], warrant_id: &[u8; 16], audience: &str) -> Self {
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [issuer.as_bytes(), grant_id, warrant_id, audience.as_bytes()] {
            hash.update(&(part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(hash.finish().as_ref());
        Self { digest, warrant_id: *warrant_id }
    }

    /// The 32 bytes a store indexes by.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The warrant id, for messages: the digest alone tells a person nothing.
    pub fn warrant_id(&self) -> &[u8; 16] {
        &self.warrant_id
    }

    /// The [`Error::Replayed`] a store returns for this key.
    pub fn replayed(&self) -> Error {
        Error::Replayed { id: hex::encode(self.warrant_id) }
    }
}

/// Remembers accepted warrants until they expire, so each is accepted once.
///
/// Implementations must make [`ReplayStore::remember`] atomic: of two concurrent calls with
/// the same key, exactly one succeeds. A store shared by a fleet of verifiers, even of several
/// audiences, implements this trait over its database, indexed by [`ReplayKey::digest`].
pub trait ReplayStore: Send + Sync {
    /// Records `key`, valid until `forget_after` (seconds since the epoch). Fails with
    /// [`ReplayKey::replayed`] if it is already recorded, [`Error::ReplayStoreFull`] if the
    /// store cannot take it without forgetting an unexpired key, or
    /// [`Error::ReplayStoreUnavailable`] if it cannot tell (a shared store that does not
    /// answer): never `Ok` unless the key is now recorded, so an outage fails closed.
    fn remember(&self, key: &ReplayKey, forget_after: u64, now: u64) -> Result<(), Error>;
}

/// An in-memory replay store with a fixed capacity; it fails closed when full.
#[derive(Debug)]
pub struct MemoryReplayStore {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<[u8; 32], u64>,
    /// Keys by the second they may be forgotten: few distinct seconds are live at once, so
    /// inserting and purging touch a small tree.
    by_expiry: BTreeMap<u64, Vec<[u8; 32]>>,
}

impl Entries {
    fn purge_expired(&mut self, now: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for key in entry.remove() {
                self.by_key.remove(&key);
            }
        }
    }
}

impl MemoryReplayStore {
    /// A store that holds at most `capacity` live keys.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Entries::default()) }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether no key is held.
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
    fn remember(&self, key: &ReplayKey, forget_after: u64, now: u64) -> Result<(), Error> {
        let digest = *key.digest();
        let mut entries = self.lock();
        if entries.by_key.contains_key(&digest) {
            return Err(key.replayed());
        }
        if entries.by_key.len() >= self.capacity {
            entries.purge_expired(now);
            if entries.by_key.len() >= self.capacity {
                return Err(Error::ReplayStoreFull { capacity: self.capacity });
            }
        }
        entries.by_key.insert(digest, forget_after);
        entries.by_expiry.entry(forget_after).or_default().push(digest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(warrant: u8) -> ReplayKey {
        ReplayKey::new("acme", &[7; 16], &[warrant; 16], "https://api.example.com")
    }

    #[test]
    fn second_use_is_a_replay_named_by_its_warrant_id() {
        let store = MemoryReplayStore::new(4);
        store.remember(&key(1), 100, 0).unwrap();
        let err = store.remember(&key(1), 100, 50).unwrap_err();
        assert!(matches!(&err, Error::Replayed { id } if *id == hex::encode([1u8; 16])), "{err:?}");
    }

    #[test]
    fn the_key_is_the_documented_hash() {
        // SHA-256 over 8-byte big-endian lengths and parts, computed independently (Python).
        assert_eq!(
            hex::encode(key(1).digest()),
            "ae1e2e6ddcafc6ec444b7d45f069a02c5c47d6ee9109cb50da51d19254eef719"
        );
    }

    #[test]
    fn each_scope_part_separates_keys() {
        let base = key(1);
        assert_ne!(base, ReplayKey::new("acme2", &[7; 16], &[1; 16], "https://api.example.com"));
        assert_ne!(base, ReplayKey::new("acme", &[8; 16], &[1; 16], "https://api.example.com"));
        assert_ne!(base, ReplayKey::new("acme", &[7; 16], &[1; 16], "https://other.example.com"));
        // Length prefixes: moving bytes between issuer and audience changes the key.
        assert_ne!(
            ReplayKey::new("ab", &[7; 16], &[1; 16], "c"),
            ReplayKey::new("a", &[7; 16], &[1; 16], "bc")
        );
    }

    #[test]
    fn full_store_fails_closed_until_keys_expire() {
        let store = MemoryReplayStore::new(2);
        store.remember(&key(1), 100, 0).unwrap();
        store.remember(&key(2), 200, 0).unwrap();
        assert!(matches!(store.remember(&key(3), 300, 50), Err(Error::ReplayStoreFull { capacity: 2 })));
        // At 150 the first key has expired and is forgotten; the second is still live.
        store.remember(&key(3), 300, 150).unwrap();
        assert_eq!(store.len(), 2);
        assert!(matches!(store.remember(&key(2), 200, 150), Err(Error::Replayed { .. })));
    }
}
