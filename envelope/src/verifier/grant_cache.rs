use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::grant::GrantClaims;
use crate::keys::VerifyingKey;
use crate::policy::PrincipalEntities;
use crate::verifier::policy_cache::ParsedPolicy;

/// A grant whose signature, issuer and policy checked out: what does not depend on time,
/// revocation or the request, and so can be reused for every warrant under it.
#[derive(Debug)]
pub(crate) struct VerifiedGrant {
    /// SHA-256 of the grant's bytes.
    pub digest: [u8; 32],
    pub claims: GrantClaims,
    pub device_key: VerifyingKey,
    /// Its policy, parsed.
    pub policy: Arc<ParsedPolicy>,
    pub principal: PrincipalEntities,
}

/// Verified grants by the SHA-256 of their bytes, bounded.
#[derive(Debug)]
pub(crate) struct GrantCache {
    capacity: usize,
    by_digest: RwLock<HashMap<[u8; 32], Arc<VerifiedGrant>>>,
}

impl GrantCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, by_digest: RwLock::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<Arc<VerifiedGrant>> {
        let map = self.by_digest.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(digest).cloned()
    }

    pub(crate) fn insert(&self, digest: [u8; 32], grant: Arc<VerifiedGrant>, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.by_digest.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.capacity {
            map.retain(|_, g| g.claims.expires_at > now);
        }
        if map.len() >= self.capacity {
            // Still full of live grants: dropping any one is safe, it is only re-verified.
            if let Some(victim) = map.keys().next().copied() {
                map.remove(&victim);
            }
        }
        map.insert(digest, grant);
    }
}
