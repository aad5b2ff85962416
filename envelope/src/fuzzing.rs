//! Entry points for the fuzz targets (fuzz/), behind the `fuzzing` feature: not part of the
//! API, and not built by default.
//!
//! The strict CBOR reader is internal; [`strict_value`] runs it over a whole input and returns
//! the item it read as a `ciborium::Value`, so that a differential target can compare it with
//! ciborium's own reading of the same bytes.

use ciborium::value::Integer;
use ciborium::Value;
use warrant_attestation::AttributeValue;

use crate::cbor::{KeyRef, Reader};
use crate::{Error, ObjectType};

/// The largest input read (the largest object's limit).
const LIMIT: usize = 256 * 1024;

/// Reads `bytes` as exactly one data item with the strict reader (every rule it enforces, the
/// nesting depth included; no trailing bytes) and returns it as a value tree.
pub fn strict_value(bytes: &[u8]) -> Result<Value, Error> {
    let mut r = Reader::new(ObjectType::Warrant, bytes, LIMIT)?;
    let item = r.item()?;
    r.finish()?;
    value_of(item)
}

/// The value of one item already checked by [`Reader::item`], read with the reader's typed
/// methods (each item again through its own reader, so each method's checks run too).
fn value_of(item: &[u8]) -> Result<Value, Error> {
    let mut r = Reader::new(ObjectType::Warrant, item, LIMIT)?;
    let malformed = |reason: &str| Error::Malformed { object: ObjectType::Warrant, reason: reason.into() };
    let initial = *item.first().ok_or_else(|| malformed("empty item"))?;
    let value = match initial >> 5 {
        0 => Value::Integer(r.uint("uint")?.into()),
        1 => match r.int("nint") {
            Ok(i) => Value::Integer(i.into()),
            // Below i64::MIN the typed reader refuses; the item itself is valid CBOR (down
            // to -2^64), so its argument is taken from the head `item` already checked.
            Err(_) => {
                let mut argument = [0u8; 8];
                let tail = item.get(1..9).ok_or_else(|| malformed("short negative integer"))?;
                argument.copy_from_slice(tail);
                let n = -1 - i128::from(u64::from_be_bytes(argument));
                Value::Integer(Integer::try_from(n).map_err(|_| malformed("integer out of range"))?)
            }
        },
        2 => Value::Bytes(r.bytes("bytes")?.to_vec()),
        // The reader's `text` refuses empty text (a rule of the format's claims, not of CBOR).
        3 if item == [0x60] => return Ok(Value::Text(String::new())),
        3 => Value::Text(r.text("text", usize::MAX)?.to_owned()),
        4 => {
            let len = r.array("array")?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value_of(r.item()?)?);
            }
            Value::Array(items)
        }
        5 => {
            let mut keys = r.map("map")?;
            let mut entries = Vec::new();
            while let Some(key) = keys.next(&mut r)? {
                let key = match key {
                    KeyRef::Int(i) => Value::Integer(i.into()),
                    KeyRef::Text(t) => Value::Text(t.to_owned()),
                };
                entries.push((key, value_of(r.item()?)?));
            }
            Value::Map(entries)
        }
        6 => {
            let tag = r.tag()?;
            Value::Tag(tag, Box::new(value_of(r.item()?)?))
        }
        _ if r.null()? => Value::Null,
        _ => match r.attribute("simple value", 0)? {
            AttributeValue::Bool(b) => Value::Bool(b),
            _ => return Err(malformed("simple value")),
        },
    };
    r.finish()?;
    Ok(value)
}
