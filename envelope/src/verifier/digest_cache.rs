use std::collections::HashMap;
use std::sync::RwLock;

/// A bounded map from SHA-256 digests to shared values: the verifier's grant, policy and
/// decision caches. Every cached value can be recomputed, so forgetting is always safe.
#[derive(Debug)]
pub(crate) struct DigestCache<V> {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], V>>,
}

impl<V: Clone> DigestCache<V> {
    /// A cache of at most `capacity` entries (0 caches nothing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, entries: RwLock::new(HashMap::new()) }
    }

    /// Whether it keeps anything at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<V> {
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    /// Adds `value`. When full, keeps only the entries `still_useful` accepts, and if none can
    /// go, starts afresh.
    pub(crate) fn insert(&self, key: [u8; 32], value: V, still_useful: impl Fn(&V) -> bool) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, v| still_useful(v));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_cache_drops_what_is_no_longer_useful_then_everything() {
        let cache = DigestCache::new(2);
        cache.insert([1; 32], 1u64, |_| true);
        cache.insert([2; 32], 2, |_| true);
        cache.insert([3; 32], 3, |v| *v != 1);
        assert_eq!((cache.get(&[1; 32]), cache.get(&[2; 32]), cache.get(&[3; 32])), (None, Some(2), Some(3)));
        cache.insert([4; 32], 4, |_| true);
        assert_eq!((cache.get(&[2; 32]), cache.get(&[4; 32])), (None, Some(4)));
        let off = DigestCache::new(0);
        off.insert([1; 32], 1u64, |_| true);
        assert_eq!(off.get(&[1; 32]), None);
    }
}
