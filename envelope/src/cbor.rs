//! Strict CBOR: bounded decoding, preferred serialization, deterministic map order, and a
//! reader that takes claims out of a map and refuses whatever is left.

use std::cmp::Ordering;

use ciborium::Value;

use crate::{Error, ObjectType};

/// Deepest nesting any warrant object needs (COSE_Sign1 > claims > request > ...), with room.
const MAX_DEPTH: usize = 12;

/// Decodes one CBOR item that must fill `bytes` exactly and be in preferred serialization.
pub(crate) fn decode(object: ObjectType, bytes: &[u8], limit: usize) -> Result<Value, Error> {
    if bytes.len() > limit {
        return Err(Error::TooLarge { object, size: bytes.len(), limit });
    }
    let mut rest = bytes;
    let value: Value =
        ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH).map_err(|e| match e {
            ciborium::de::Error::RecursionLimitExceeded => Error::TooDeep { object },
            other => Error::Malformed { object, reason: format!("{other}") },
        })?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes { object });
    }
    // Re-encoding yields preferred serialization; any other encoding of the same data
    // (indefinite lengths, over-long integers) differs and is refused.
    if encode(object, &value)? != bytes {
        return Err(Error::NonCanonical { object });
    }
    Ok(value)
}

/// Encodes a CBOR value.
pub(crate) fn encode(object: ObjectType, value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|e| Error::Malformed { object, reason: format!("cannot encode: {e}") })?;
    Ok(out)
}

/// A map key as this format uses them: a registered integer claim or a text name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    /// An integer label and the claim's name for messages.
    Int(i64, &'static str),
    /// A text label.
    Text(&'static str),
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Int(_, name) | Key::Text(name) => name,
        }
    }

    fn matches(self, value: &Value) -> bool {
        match (self, value) {
            (Key::Int(k, _), Value::Integer(i)) => i64::try_from(*i).is_ok_and(|i| i == k),
            (Key::Text(k), Value::Text(t)) => t == k,
            _ => false,
        }
    }

    fn to_value(self) -> Value {
        match self {
            Key::Int(k, _) => Value::Integer(k.into()),
            Key::Text(k) => Value::Text(k.into()),
        }
    }
}

/// Deterministic order of map keys (RFC 8949 §4.2.1: bytewise order of the encoded keys),
/// for the key types this format allows: integers, then text.
fn key_order(a: &Value, b: &Value) -> Option<Ordering> {
    fn rank(v: &Value) -> Option<(u8, u128, &[u8])> {
        match v {
            Value::Integer(i) => {
                let i = i128::from(*i);
                // Non-negative integers (major 0) sort before negative ones (major 1); within
                // each, preferred encoding makes byte order equal numeric order of the argument.
                Some(if i >= 0 { (0, i as u128, &[][..]) } else { (1, (-1 - i) as u128, &[][..]) })
            }
            Value::Text(t) => Some((3, t.len() as u128, t.as_bytes())),
            _ => None,
        }
    }
    Some(rank(a)?.cmp(&rank(b)?))
}

/// Builds a map in deterministic key order.
pub(crate) fn map(mut entries: Vec<(Value, Value)>) -> Value {
    entries.sort_by(|a, b| key_order(&a.0, &b.0).unwrap_or(Ordering::Equal));
    Value::Map(entries)
}

/// Builds a map from typed keys.
pub(crate) fn map_of(entries: impl IntoIterator<Item = (Key, Value)>) -> Value {
    map(entries.into_iter().map(|(k, v)| (k.to_value(), v)).collect())
}

/// Checks that map keys are integers or text in strictly increasing deterministic order
/// (which also rules out duplicates).
pub(crate) fn check_keys(
    object: ObjectType,
    entries: &[(Value, Value)],
    what: &'static str,
) -> Result<(), Error> {
    let bad_key =
        || Error::InvalidClaim { object, claim: what, reason: "map keys must be integers or text".into() };
    if let Some((key, _)) = entries.first() {
        key_order(key, key).ok_or_else(bad_key)?;
    }
    for pair in entries.windows(2) {
        match key_order(&pair[0].0, &pair[1].0).ok_or_else(bad_key)? {
            Ordering::Less => {}
            Ordering::Equal => return Err(Error::DuplicateKey { object, key: format!("{:?}", pair[1].0) }),
            Ordering::Greater => return Err(Error::NonCanonical { object }),
        }
    }
    Ok(())
}

/// Takes claims out of a CBOR map; whatever is not taken is an unknown claim.
pub(crate) struct Claims {
    object: ObjectType,
    entries: Vec<(Value, Value)>,
}

impl Claims {
    /// Opens a map whose keys pass [`check_keys`].
    pub(crate) fn open(object: ObjectType, value: Value, what: &'static str) -> Result<Self, Error> {
        let Value::Map(entries) = value else {
            return Err(Error::InvalidClaim { object, claim: what, reason: "must be a map".into() });
        };
        check_keys(object, &entries, what)?;
        Ok(Self { object, entries })
    }

    /// Removes and returns the value under `key`, if present.
    pub(crate) fn take(&mut self, key: Key) -> Option<Value> {
        let at = self.entries.iter().position(|(k, _)| key.matches(k))?;
        Some(self.entries.remove(at).1)
    }

    /// Removes the value under `key`, which must be present.
    pub(crate) fn required(&mut self, key: Key) -> Result<Value, Error> {
        self.take(key).ok_or(Error::MissingClaim { object: self.object, claim: key.name() })
    }

    /// An error saying that `key`'s value is invalid.
    pub(crate) fn invalid(&self, key: Key, reason: impl Into<String>) -> Error {
        Error::InvalidClaim { object: self.object, claim: key.name(), reason: reason.into() }
    }

    /// A required text claim, at most `max` bytes long.
    pub(crate) fn text(&mut self, key: Key, max: usize) -> Result<String, Error> {
        match self.required(key)? {
            Value::Text(t) if t.is_empty() => Err(self.invalid(key, "must not be empty")),
            Value::Text(t) if t.len() <= max => Ok(t),
            Value::Text(_) => Err(self.invalid(key, format!("longer than {max} bytes"))),
            _ => Err(self.invalid(key, "must be text")),
        }
    }

    /// A required unsigned integer claim.
    pub(crate) fn uint(&mut self, key: Key) -> Result<u64, Error> {
        match self.required(key)? {
            Value::Integer(i) => {
                u64::try_from(i).map_err(|_| self.invalid(key, "must be an unsigned integer"))
            }
            _ => Err(self.invalid(key, "must be an unsigned integer")),
        }
    }

    /// A required byte string of exactly `N` bytes.
    pub(crate) fn fixed_bytes<const N: usize>(&mut self, key: Key) -> Result<[u8; N], Error> {
        let value = self.required(key)?;
        self.bytes_from::<N>(key, value)
    }

    /// Converts `value` to exactly `N` bytes.
    pub(crate) fn bytes_from<const N: usize>(&self, key: Key, value: Value) -> Result<[u8; N], Error> {
        match value {
            Value::Bytes(b) => b.try_into().map_err(|_| self.invalid(key, format!("must be {N} bytes"))),
            _ => Err(self.invalid(key, "must be a byte string")),
        }
    }

    /// A required byte string of at most `max` bytes.
    pub(crate) fn bytes(&mut self, key: Key, max: usize) -> Result<Vec<u8>, Error> {
        match self.required(key)? {
            Value::Bytes(b) if b.len() <= max => Ok(b),
            Value::Bytes(_) => Err(self.invalid(key, format!("longer than {max} bytes"))),
            _ => Err(self.invalid(key, "must be a byte string")),
        }
    }

    /// Refuses any claim that was not taken.
    pub(crate) fn finish(self) -> Result<(), Error> {
        match self.entries.into_iter().next() {
            None => Ok(()),
            Some((key, _)) => Err(Error::UnknownClaim { object: self.object, claim: format!("{key:?}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: ObjectType = ObjectType::Warrant;

    fn bytes_of(v: &Value) -> Vec<u8> {
        encode(O, v).unwrap()
    }

    #[test]
    fn preferred_serialization_round_trips() {
        let v = map(vec![
            (Value::Text("b".into()), Value::Integer(1.into())),
            (Value::Integer(1.into()), Value::Null),
        ]);
        assert_eq!(decode(O, &bytes_of(&v), 100).unwrap(), v);
    }

    #[test]
    fn non_preferred_integer_is_refused() {
        // 0x18 0x01 is the two-byte encoding of 1.
        assert!(matches!(decode(O, &[0x18, 0x01], 10), Err(Error::NonCanonical { .. })));
    }

    #[test]
    fn indefinite_length_is_refused() {
        // [_ 1]
        assert!(matches!(decode(O, &[0x9f, 0x01, 0xff], 10), Err(Error::NonCanonical { .. })));
    }

    #[test]
    fn trailing_bytes_and_truncation_are_refused() {
        assert!(matches!(decode(O, &[0x01, 0x01], 10), Err(Error::TrailingBytes { .. })));
        assert!(matches!(decode(O, &[0x82, 0x01], 10), Err(Error::Malformed { .. })));
    }

    #[test]
    fn size_and_depth_are_bounded() {
        assert!(matches!(decode(O, &[0u8; 11], 10), Err(Error::TooLarge { .. })));
        let mut deep = vec![0x81; 64];
        deep.push(0x01);
        assert!(matches!(decode(O, &deep, 100), Err(Error::TooDeep { .. })));
    }

    #[test]
    fn claims_refuse_duplicates_disorder_unknown_and_bad_keys() {
        let one = || Value::Integer(1.into());
        let dup = Value::Map(vec![(one(), one()), (one(), one())]);
        assert!(matches!(Claims::open(O, dup, "x"), Err(Error::DuplicateKey { .. })));
        let disorder = Value::Map(vec![(Value::Text("a".into()), one()), (one(), one())]);
        assert!(matches!(Claims::open(O, disorder, "x"), Err(Error::NonCanonical { .. })));
        let bad_key = Value::Map(vec![(Value::Bool(true), one())]);
        assert!(matches!(Claims::open(O, bad_key, "x"), Err(Error::InvalidClaim { .. })));
        let mut c = Claims::open(O, Value::Map(vec![(one(), one())]), "x").unwrap();
        assert!(matches!(c.uint(Key::Int(2, "two")), Err(Error::MissingClaim { claim: "two", .. })));
        assert!(matches!(c.finish(), Err(Error::UnknownClaim { .. })));
    }

    #[test]
    fn deterministic_order_puts_uints_then_nints_then_text_by_length() {
        let v = map(vec![
            (Value::Text("aa".into()), Value::Null),
            (Value::Text("b".into()), Value::Null),
            (Value::Integer((-1).into()), Value::Null),
            (Value::Integer(65535.into()), Value::Null),
            (Value::Integer(1.into()), Value::Null),
        ]);
        let keys: Vec<Value> = match v {
            Value::Map(m) => m.into_iter().map(|(k, _)| k).collect(),
            _ => unreachable!(),
        };
        assert_eq!(
            keys,
            vec![
                Value::Integer(1.into()),
                Value::Integer(65535.into()),
                Value::Integer((-1).into()),
                Value::Text("b".into()),
                Value::Text("aa".into())
            ]
        );
    }
}
