//! Maps of simple attributes (device properties, entity attributes, context claims) and lists
//! of names, with bounded sizes.

use std::collections::BTreeMap;

use ciborium::Value;
use warrant_attestation::AttributeValue;

use crate::cbor;
use crate::cwt::{MAX_ENTRIES, MAX_TEXT};
use crate::{Error, ObjectType};

/// An attribute map as CBOR: text keys in deterministic order.
pub(crate) fn to_cbor(map: &BTreeMap<String, AttributeValue>) -> Value {
    cbor::map(map.iter().map(|(k, v)| (Value::Text(k.clone()), v.to_cbor())).collect())
}

/// Reads an attribute map: text keys in deterministic order, simple values, bounded count.
pub(crate) fn from_cbor(
    object: ObjectType,
    claim: &'static str,
    value: Value,
) -> Result<BTreeMap<String, AttributeValue>, Error> {
    let invalid = |reason: &str| Error::InvalidClaim { object, claim, reason: reason.into() };
    let Value::Map(entries) = value else { return Err(invalid("must be a map")) };
    if entries.len() > MAX_ENTRIES {
        return Err(invalid("too many entries"));
    }
    cbor::check_keys(object, &entries, claim)?;
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        let Value::Text(k) = k else { return Err(invalid("keys must be text")) };
        if k.len() > MAX_TEXT {
            return Err(invalid("key too long"));
        }
        let v = AttributeValue::from_cbor(v)
            .ok_or_else(|| invalid("values must be text, integers or booleans"))?;
        if matches!(&v, AttributeValue::Text(t) if t.len() > MAX_TEXT) {
            return Err(invalid("value too long"));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// A list of names as CBOR.
pub(crate) fn names_to_cbor(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| Value::Text(n.clone())).collect())
}

/// Reads a bounded list of non-empty names.
pub(crate) fn names_from_cbor(
    object: ObjectType,
    claim: &'static str,
    value: Value,
) -> Result<Vec<String>, Error> {
    let invalid = |reason: &str| Error::InvalidClaim { object, claim, reason: reason.into() };
    let Value::Array(items) = value else { return Err(invalid("must be an array")) };
    if items.len() > MAX_ENTRIES {
        return Err(invalid("too many entries"));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::Text(t) if !t.is_empty() && t.len() <= MAX_TEXT => Ok(t),
            _ => Err(invalid("entries must be non-empty text")),
        })
        .collect()
}
