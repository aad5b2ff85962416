use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use cedar_policy::PolicySet;

use crate::context_fields::ContextFields;
use crate::digest::sha256;
use crate::policy::{self, PolicySource};
use crate::Error;

/// A grant's policy set, parsed, with the context fields it reads.
#[derive(Debug)]
pub(crate) struct ParsedPolicy {
    pub set: PolicySet,
    pub fields: ContextFields,
}

/// Parsed grant policies by the SHA-256 of their text, bounded.
///
/// Grants of one team usually carry the same policy, and Cedar's parser costs more than a
/// signature check; a parse depends on nothing but the text, so sharing it is always sound.
#[derive(Debug)]
pub(crate) struct PolicyCache {
    capacity: usize,
    by_digest: RwLock<HashMap<[u8; 32], Arc<ParsedPolicy>>>,
}

impl PolicyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, by_digest: RwLock::new(HashMap::new()) }
    }

    /// The parsed form of `text`, from the cache or parsed now.
    pub(crate) fn parsed(&self, text: &str) -> Result<Arc<ParsedPolicy>, Error> {
        let digest = sha256(text.as_bytes());
        if let Some(parsed) =
            self.by_digest.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&digest)
        {
            return Ok(parsed.clone());
        }
        let parsed = Arc::new(ParsedPolicy {
            set: policy::parse(PolicySource::Grant, text)?,
            fields: ContextFields::read_by(text),
        });
        if self.capacity > 0 {
            let mut map = self.by_digest.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(digest, parsed.clone());
        }
        Ok(parsed)
    }
}
