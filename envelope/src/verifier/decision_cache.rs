use std::collections::HashSet;
use std::sync::RwLock;

/// Policy decisions that were "allow", by [`crate::policy::PolicyInput::decision_key`].
///
/// Evaluating Cedar costs more than everything else a warm verification does besides the
/// signature; repeated requests of the same shape (the same CI job deploying again) need not
/// pay it twice. Only allows are kept (a denial is recomputed for its message), the set is
/// bounded, and forgetting is always safe: the decision is evaluated again.
#[derive(Debug)]
pub(crate) struct DecisionCache {
    capacity: usize,
    allowed: RwLock<HashSet<[u8; 32]>>,
}

impl DecisionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, allowed: RwLock::new(HashSet::new()) }
    }

    pub(crate) fn is_allowed(&self, key: &[u8; 32]) -> bool {
        self.capacity > 0
            && self.allowed.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(key)
    }

    pub(crate) fn remember_allowed(&self, key: [u8; 32]) {
        if self.capacity == 0 {
            return;
        }
        let mut allowed = self.allowed.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if allowed.len() >= self.capacity {
            allowed.clear();
        }
        allowed.insert(key);
    }
}
