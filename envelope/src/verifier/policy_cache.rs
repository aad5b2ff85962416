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
///
/// With `read_set`, the context fields the policy reads are worked out (which costs about a
/// parse more: Cedar renders the policy's JSON form from its text); without, every field is
/// built. Both give the same decisions; the read set makes each evaluation cheaper and keeps a
/// remembered decision's key to what the decision depends on.
pub(crate) fn parsed(
    cache: &DigestCache<Arc<ParsedPolicy>>,
    text: &str,
    read_set: bool,
) -> Result<Arc<ParsedPolicy>, Error> {
    let digest = sha256(text.as_bytes());
    if let Some(parsed) = cache.get(&digest) {
        return Ok(parsed);
    }
    let set = policy::parse(PolicySource::Grant, text)?;
    let fields = if read_set { ContextFields::read_by(&set) } else { ContextFields::ALL };
    let parsed = Arc::new(ParsedPolicy { fields, set });
    cache.insert(digest, parsed.clone(), |_| false);
    Ok(parsed)
}
