//! Maps of simple attributes (device properties, entity attributes, context claims) and lists
//! of names, with bounded sizes.

use std::collections::BTreeMap;

use ciborium::Value;
use warrant_attestation::AttributeValue;

use crate::cbor::{self, KeyRef, Reader};
use crate::cwt::{MAX_ENTRIES, MAX_TEXT};
use crate::{Error, ObjectType};

/// An attribute map as CBOR: text keys in deterministic order.
pub(crate) fn to_cbor(map: &BTreeMap<String, AttributeValue>) -> Value {
    cbor::map(map.iter().map(|(k, v)| (Value::Text(k.clone()), v.to_cbor())).collect())
}

/// Refuses a map with an empty name or an empty text value, which decoders refuse: an object
/// carrying one would be signed only to be rejected.
pub(crate) fn check_non_empty(
    object: ObjectType,
    claim: &'static str,
    map: &BTreeMap<String, AttributeValue>,
) -> Result<(), Error> {
    let empty =
        |(k, v): (&String, &AttributeValue)| k.is_empty() || *v == AttributeValue::Text(String::new());
    if map.iter().any(empty) {
        return Err(Error::EmptyText { object, claim });
    }
    Ok(())
}

/// Reads an attribute map: text keys of 1 to 1024 bytes, simple values (text non-empty), at
/// most [`MAX_ENTRIES`].
pub(crate) fn read(
    r: &mut Reader<'_>,
    claim: &'static str,
) -> Result<BTreeMap<String, AttributeValue>, Error> {
    let mut keys = r.map(claim)?;
    let mut out = BTreeMap::new();
    while let Some(key) = keys.next(r)? {
        let KeyRef::Text(name) = key else { return Err(r.invalid(claim, "keys must be text")) };
        if out.len() == MAX_ENTRIES {
            return Err(r.invalid(claim, "too many entries"));
        }
        if name.is_empty() {
            return Err(Error::EmptyText { object: r.object(), claim });
        }
        if name.len() > MAX_TEXT {
            return Err(r.invalid(claim, "keys must be 1 to 1024 bytes"));
        }
        let name = name.to_owned();
        out.insert(name, r.attribute(claim, MAX_TEXT)?);
    }
    Ok(out)
}

/// A list of names as CBOR.
pub(crate) fn names_to_cbor(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| Value::Text(n.clone())).collect())
}

/// Reads a list of at most [`MAX_ENTRIES`] non-empty names.
pub(crate) fn read_names(r: &mut Reader<'_>, claim: &'static str) -> Result<Vec<String>, Error> {
    let len = r.array(claim)?;
    if len > MAX_ENTRIES {
        return Err(r.invalid(claim, "too many entries"));
    }
    (0..len).map(|_| r.text(claim, MAX_TEXT).map(str::to_owned)).collect()
}
