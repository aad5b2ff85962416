use std::sync::Arc;

use cedar_policy::PolicySet;

use crate::context_fields::ContextFields;
use crate::digest::sha256;
use crate::policy::{self, PolicySource};
use crate::verifier::digest_cache::DigestCache;
use crate::Error;

/// A grant's policy set, parsed, with the context fields it reads.
#[derive(Debug)]
pub(crate) struct ParsedPolicy {
    pub set: PolicySet,
    pub fields: ContextFields,
}

/// The parsed form of `text`, from `cache` (keyed by the text's SHA-256) or parsed now.
///
/// Grants of one team usually carry the same policy, and Cedar's parser costs more than a
/// signature check; a parse depends on nothing but the text, so sharing it is always sound.
pub(crate) fn parsed(cache: &DigestCache<Arc<ParsedPolicy>>, text: &str) -> Result<Arc<ParsedPolicy>, Error> {
    let digest = sha256(text.as_bytes());
    if let Some(parsed) = cache.get(&digest) {
        return Ok(parsed);
    }
    let set = policy::parse(PolicySource::Grant, text)?;
    let parsed = Arc::new(ParsedPolicy { fields: ContextFields::read_by(&set), set });
    cache.insert(digest, parsed.clone(), |_| false);
    Ok(parsed)
}
