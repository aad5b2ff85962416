//! Strict CBOR for this format.
//!
//! Decoding reads the bytes directly, without building a value tree, and refuses anything
//! outside the format's encoding rules as it goes: non-preferred heads (over-long integers
//! and lengths, indefinite lengths), map keys that are not integers or text or not in
//! deterministic order (RFC 8949 §4.2.1: bytewise order of the encoded keys), duplicates,
//! floats, truncation and trailing bytes. ciborium and coset do not check these, and a
//! decode-then-re-encode comparison costs more than the signature check it guards.
//!
//! Encoding builds `ciborium::Value`s in deterministic key order.

use std::cmp::Ordering;

use ciborium::Value;
use warrant_attestation::AttributeValue;

use crate::{Error, ObjectType};

/// Deepest nesting accepted in the free-form parts (evidence).
const MAX_DEPTH: usize = 12;

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;
const FALSE: u64 = 20;
const TRUE: u64 = 21;
const NULL: u64 = 22;

/// A map key of this format, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRef<'a> {
    /// An integer key.
    Int(i64),
    /// A text key.
    Text(&'a str),
}

impl std::fmt::Display for KeyRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Int(i) => write!(f, "{i}"),
            KeyRef::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// Reads one CBOR data item from a byte slice, strictly.
pub(crate) struct Reader<'a> {
    object: ObjectType,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, which must not exceed `limit`.
    pub(crate) fn new(object: ObjectType, bytes: &'a [u8], limit: usize) -> Result<Self, Error> {
        if bytes.len() > limit {
            return Err(Error::TooLarge { object, size: bytes.len(), limit });
        }
        Ok(Self { object, bytes, pos: 0 })
    }

    /// The object being read, for errors.
    pub(crate) fn object(&self) -> ObjectType {
        self.object
    }

    fn malformed(&self, reason: &str) -> Error {
        Error::Malformed { object: self.object, reason: format!("{reason} at byte {}", self.pos) }
    }

    /// An error for a claim whose value is invalid.
    pub(crate) fn invalid(&self, claim: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidClaim { object: self.object, claim, reason: reason.into() }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.bytes.len());
        let Some(end) = end else { return Err(self.malformed("truncated")) };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn peek_major(&self) -> Result<u8, Error> {
        self.bytes.get(self.pos).map(|b| b >> 5).ok_or_else(|| self.malformed("truncated"))
    }

    /// Reads an initial byte and its argument, refusing non-preferred encodings.
    fn head(&mut self) -> Result<(u8, u64), Error> {
        let initial = self.take(1)?[0];
        let (major, minor) = (initial >> 5, initial & 0x1f);
        let arg = match minor {
            0..=23 => u64::from(minor),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => {
                let b = self.take(4)?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            27 => {
                let b = self.take(8)?;
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            31 => return Err(Error::NonCanonical { object: self.object }),
            _ => return Err(self.malformed("reserved additional information")),
        };
        // Preferred serialization: the shortest head that holds the argument. Floats (major
        // 7 with 2-8 byte arguments) are not part of this format at all.
        let shortest = match arg {
            0..=23 => 23,
            24..=0xff => 24,
            0x100..=0xffff => 25,
            0x1_0000..=0xffff_ffff => 26,
            _ => 27,
        };
        if major == MAJOR_SIMPLE && minor >= 24 {
            return Err(self.malformed("floating-point and extended simple values are not used"));
        }
        if (minor < 24 && shortest != 23) || (minor >= 24 && minor != shortest) {
            return Err(Error::NonCanonical { object: self.object });
        }
        Ok((major, arg))
    }

    fn head_of_type(&mut self, major: u8, claim: &'static str, what: &str) -> Result<u64, Error> {
        let start = self.pos;
        let (found, arg) = self.head()?;
        if found != major {
            self.pos = start;
            return Err(self.invalid(claim, format!("must be {what}")));
        }
        Ok(arg)
    }

    fn length(&self, arg: u64) -> Result<usize, Error> {
        usize::try_from(arg)
            .ok()
            .filter(|n| *n <= self.bytes.len() - self.pos)
            .ok_or_else(|| self.malformed("length beyond the end of the input"))
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self, claim: &'static str) -> Result<u64, Error> {
        self.head_of_type(MAJOR_UINT, claim, "an unsigned integer")
    }

    /// A signed integer within i64.
    pub(crate) fn int(&mut self, claim: &'static str) -> Result<i64, Error> {
        let (major, arg) = self.head()?;
        let value = match major {
            MAJOR_UINT => i64::try_from(arg).ok(),
            MAJOR_NINT => i64::try_from(arg).ok().map(|a| -1 - a),
            _ => return Err(self.invalid(claim, "must be an integer")),
        };
        value.ok_or_else(|| self.invalid(claim, "integer out of range"))
    }

    /// A byte string.
    pub(crate) fn bytes(&mut self, claim: &'static str) -> Result<&'a [u8], Error> {
        let len = self.head_of_type(MAJOR_BYTES, claim, "a byte string")?;
        let len = self.length(len)?;
        self.take(len)
    }

    /// A byte string of exactly `N` bytes.
    pub(crate) fn fixed_bytes<const N: usize>(&mut self, claim: &'static str) -> Result<[u8; N], Error> {
        let b = self.bytes(claim)?;
        b.try_into().map_err(|_| self.invalid(claim, format!("must be {N} bytes")))
    }

    /// A text string of 1 to `max` bytes.
    pub(crate) fn text(&mut self, claim: &'static str, max: usize) -> Result<&'a str, Error> {
        let len = self.head_of_type(MAJOR_TEXT, claim, "text")?;
        let len = self.length(len)?;
        let raw = self.take(len)?;
        let text = std::str::from_utf8(raw).map_err(|_| self.invalid(claim, "not UTF-8"))?;
        if text.is_empty() {
            return Err(Error::EmptyText { object: self.object, claim });
        }
        if text.len() > max {
            return Err(self.invalid(claim, format!("longer than {max} bytes")));
        }
        Ok(text)
    }

    /// A tag number.
    pub(crate) fn tag(&mut self) -> Result<u64, Error> {
        let start = self.pos;
        let (major, arg) = self.head()?;
        if major != MAJOR_TAG {
            self.pos = start;
            return Err(Error::NotTagged { object: self.object });
        }
        Ok(arg)
    }

    /// An array header; returns its length.
    pub(crate) fn array(&mut self, claim: &'static str) -> Result<usize, Error> {
        let len = self.head_of_type(MAJOR_ARRAY, claim, "an array")?;
        self.length(len)
    }

    /// A map header; returns a reader of its keys.
    pub(crate) fn map(&mut self, claim: &'static str) -> Result<MapKeys<'a>, Error> {
        let len = self.head_of_type(MAJOR_MAP, claim, "a map")?;
        Ok(MapKeys { remaining: self.length(len)?, last: None })
    }

    /// Whether the next item is `null` (consuming it if so).
    pub(crate) fn null(&mut self) -> Result<bool, Error> {
        if self.bytes.get(self.pos) == Some(&(MAJOR_SIMPLE << 5 | NULL as u8)) {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// A text, integer or boolean attribute value.
    pub(crate) fn attribute(
        &mut self,
        claim: &'static str,
        max_text: usize,
    ) -> Result<AttributeValue, Error> {
        match self.peek_major()? {
            MAJOR_UINT | MAJOR_NINT => Ok(AttributeValue::Int(self.int(claim)?)),
            MAJOR_TEXT => Ok(AttributeValue::Text(self.text(claim, max_text)?.to_owned())),
            MAJOR_SIMPLE => match self.head()? {
                (_, FALSE) => Ok(AttributeValue::Bool(false)),
                (_, TRUE) => Ok(AttributeValue::Bool(true)),
                _ => Err(self.invalid(claim, "values must be text, integers or booleans")),
            },
            _ => Err(self.invalid(claim, "values must be text, integers or booleans")),
        }
    }

    /// Skips one well-formed item of any type (checking the same rules, and nesting depth)
    /// and returns its encoded bytes.
    pub(crate) fn item(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        self.skip(0)?;
        Ok(&self.bytes[start..self.pos])
    }

    fn skip(&mut self, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { object: self.object });
        }
        let (major, arg) = self.head()?;
        match major {
            MAJOR_UINT | MAJOR_NINT => {}
            MAJOR_BYTES | MAJOR_TEXT => {
                let len = self.length(arg)?;
                let raw = self.take(len)?;
                if major == MAJOR_TEXT && std::str::from_utf8(raw).is_err() {
                    return Err(self.malformed("text is not UTF-8"));
                }
            }
            MAJOR_ARRAY => {
                for _ in 0..self.length(arg)? {
                    self.skip(depth + 1)?;
                }
            }
            MAJOR_MAP => {
                let mut keys = MapKeys { remaining: self.length(arg)?, last: None };
                while keys.next(self)?.is_some() {
                    self.skip(depth + 1)?;
                }
            }
            MAJOR_TAG => self.skip(depth + 1)?,
            _ => {
                if !matches!(arg, FALSE | TRUE | NULL) {
                    return Err(self.malformed("unassigned simple value"));
                }
            }
        }
        Ok(())
    }

    /// Refuses bytes after the item.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(Error::TrailingBytes { object: self.object })
        }
    }
}

/// Iterates a map's keys in the reader, enforcing deterministic order and uniqueness.
pub(crate) struct MapKeys<'a> {
    remaining: usize,
    last: Option<&'a [u8]>,
}

impl<'a> MapKeys<'a> {
    /// The next key, or `None` at the end of the map; the caller then reads its value.
    pub(crate) fn next(&mut self, r: &mut Reader<'a>) -> Result<Option<KeyRef<'a>>, Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let start = r.pos;
        let key = match r.peek_major()? {
            MAJOR_UINT | MAJOR_NINT => KeyRef::Int(r.int("map key")?),
            MAJOR_TEXT => {
                let len = r.head()?.1;
                let len = r.length(len)?;
                let raw = r.take(len)?;
                KeyRef::Text(std::str::from_utf8(raw).map_err(|_| r.malformed("map key is not UTF-8"))?)
            }
            _ => return Err(r.invalid("map key", "map keys must be integers or text")),
        };
        let raw = &r.bytes[start..r.pos];
        if let Some(last) = self.last {
            match last.cmp(raw) {
                Ordering::Less => {}
                Ordering::Equal => {
                    return Err(Error::DuplicateKey { object: r.object, key: key.to_string() })
                }
                Ordering::Greater => return Err(Error::NonCanonical { object: r.object }),
            }
        }
        self.last = Some(raw);
        Ok(Some(key))
    }
}

/// The error for a claim that is not part of the object.
pub(crate) fn unknown(object: ObjectType, key: KeyRef<'_>) -> Error {
    Error::UnknownClaim { object, claim: key.to_string() }
}

/// The value of a required claim.
pub(crate) fn required<T>(object: ObjectType, claim: &'static str, value: Option<T>) -> Result<T, Error> {
    value.ok_or(Error::MissingClaim { object, claim })
}

// ---- encoding --------------------------------------------------------------------------------

/// Encodes a CBOR value.
pub(crate) fn encode(object: ObjectType, value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    ciborium::ser::into_writer(value, &mut out)
        .map_err(|e| Error::Malformed { object, reason: format!("cannot encode: {e}") })?;
    Ok(out)
}

/// A map key as this format writes them: a registered integer claim or a text name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    /// An integer label and the claim's name for messages.
    Int(i64, &'static str),
    /// A text label.
    Text(&'static str),
}

impl Key {
    /// The claim's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Int(_, name) | Key::Text(name) => name,
        }
    }

    /// Whether `key` (as read) is this key.
    pub(crate) fn is(self, key: KeyRef<'_>) -> bool {
        match (self, key) {
            (Key::Int(a, _), KeyRef::Int(b)) => a == b,
            (Key::Text(a), KeyRef::Text(b)) => a == b,
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

/// Deterministic order of the integer and text keys this format writes.
fn key_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> (u8, u128, &[u8]) {
        match v {
            Value::Integer(i) => {
                let i = i128::from(*i);
                if i >= 0 {
                    (0, i as u128, &[])
                } else {
                    (1, (-1 - i) as u128, &[])
                }
            }
            Value::Text(t) => (3, t.len() as u128, t.as_bytes()),
            _ => (9, 0, &[]),
        }
    }
    rank(a).cmp(&rank(b))
}

/// Builds a map in deterministic key order.
pub(crate) fn map(mut entries: Vec<(Value, Value)>) -> Value {
    entries.sort_by(|a, b| key_order(&a.0, &b.0));
    Value::Map(entries)
}

/// Builds a map from typed keys.
pub(crate) fn map_of(entries: impl IntoIterator<Item = (Key, Value)>) -> Value {
    map(entries.into_iter().map(|(k, v)| (k.to_value(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: ObjectType = ObjectType::Warrant;

    fn reader(bytes: &[u8]) -> Reader<'_> {
        Reader::new(O, bytes, 1 << 20).unwrap()
    }

    fn bytes_of(v: &Value) -> Vec<u8> {
        encode(O, v).unwrap()
    }

    #[test]
    fn preferred_heads_are_read() {
        for n in [0u64, 23, 24, 255, 256, 65535, 65536, u32::MAX as u64, u32::MAX as u64 + 1, u64::MAX] {
            let bytes = bytes_of(&Value::Integer(n.into()));
            let mut r = reader(&bytes);
            assert_eq!(r.uint("n").unwrap(), n);
            r.finish().unwrap();
        }
        let bytes = bytes_of(&Value::Integer((-500).into()));
        assert_eq!(reader(&bytes).int("n").unwrap(), -500);
    }

    #[test]
    fn over_long_heads_are_refused() {
        for bytes in [
            &[0x18u8, 0x01][..],
            &[0x19, 0x00, 0xff],
            &[0x1a, 0, 0, 0xff, 0xff],
            &[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(reader(bytes).uint("n"), Err(Error::NonCanonical { .. })), "{bytes:?}");
        }
        // A one-byte text string with a two-byte length head.
        assert!(matches!(reader(&[0x78, 0x01, b'a']).text("t", 10), Err(Error::NonCanonical { .. })));
    }

    #[test]
    fn indefinite_lengths_floats_and_reserved_are_refused() {
        assert!(matches!(reader(&[0x9f, 0x01, 0xff]).item(), Err(Error::NonCanonical { .. })));
        assert!(matches!(reader(&[0x7f, 0xff]).item(), Err(Error::NonCanonical { .. })));
        assert!(matches!(reader(&[0xf9, 0x3c, 0x00]).item(), Err(Error::Malformed { .. })));
        assert!(matches!(reader(&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0]).item(), Err(Error::Malformed { .. })));
        assert!(matches!(reader(&[0x1c]).item(), Err(Error::Malformed { .. })));
        assert!(matches!(reader(&[0xf7]).item(), Err(Error::Malformed { .. })));
        // undefined
    }

    #[test]
    fn truncation_trailing_bytes_size_and_depth() {
        assert!(matches!(reader(&[0x82, 0x01]).item(), Err(Error::Malformed { .. })));
        assert!(matches!(reader(&[0x45, 1, 2]).item(), Err(Error::Malformed { .. })));
        let mut r = reader(&[0x01, 0x01]);
        r.item().unwrap();
        assert!(matches!(r.finish(), Err(Error::TrailingBytes { .. })));
        assert!(matches!(Reader::new(O, &[0u8; 11], 10), Err(Error::TooLarge { .. })));
        let mut deep = vec![0x81; 64];
        deep.push(0x01);
        assert!(matches!(reader(&deep).item(), Err(Error::TooDeep { .. })));
        let mut ok = vec![0x81; MAX_DEPTH];
        ok.push(0x01);
        assert!(reader(&ok).item().is_ok());
    }

    #[test]
    fn depth_counts_arrays_maps_and_tags_but_not_embedded_cbor() {
        // The item read is at depth 0; each array, map or tag adds one for what it holds.
        let at_depth = |prefix: &[u8], n: usize| [prefix.repeat(n), vec![0x01]].concat();
        for prefix in [&[0x81u8][..], &[0xa1, 0x01], &[0xc1]] {
            assert!(reader(&at_depth(prefix, MAX_DEPTH)).item().is_ok(), "{prefix:?}");
            let deep = at_depth(prefix, MAX_DEPTH + 1);
            assert!(matches!(reader(&deep).item(), Err(Error::TooDeep { .. })), "{prefix:?}");
        }
        // A byte string is one item whatever it holds: tag 24 (embedded CBOR) counts as a
        // level, the 100 arrays inside its byte string do not.
        let inner = at_depth(&[0x81], 100);
        let embedded = [vec![0xd8, 24, 0x58, inner.len() as u8], inner].concat();
        let wrapped = [vec![0x81; MAX_DEPTH - 1], embedded.clone()].concat();
        assert!(reader(&wrapped).item().is_ok());
        let wrapped = [vec![0x81; MAX_DEPTH], embedded].concat();
        assert!(matches!(reader(&wrapped).item(), Err(Error::TooDeep { .. })));
    }

    #[test]
    fn map_keys_must_be_ordered_unique_ints_or_text() {
        let one = || Value::Integer(1.into());
        let read_all = |v: Value| {
            let bytes = bytes_of(&v);
            let mut r = Reader::new(O, &bytes, 1 << 20).unwrap();
            r.item().map(|_| ())
        };
        assert!(matches!(
            read_all(Value::Map(vec![(one(), one()), (one(), one())])),
            Err(Error::DuplicateKey { .. })
        ));
        let disorder = Value::Map(vec![(Value::Text("a".into()), one()), (one(), one())]);
        assert!(matches!(read_all(disorder), Err(Error::NonCanonical { .. })));
        let by_length = Value::Map(vec![(Value::Text("aa".into()), one()), (Value::Text("b".into()), one())]);
        assert!(matches!(read_all(by_length), Err(Error::NonCanonical { .. })));
        assert!(matches!(
            read_all(Value::Map(vec![(Value::Bool(true), one())])),
            Err(Error::InvalidClaim { .. })
        ));
        assert!(read_all(map(vec![
            (Value::Text("aa".into()), one()),
            (Value::Text("b".into()), one()),
            (one(), one())
        ]))
        .is_ok());
    }

    #[test]
    fn encoder_order_is_the_decoders_order() {
        let v = map(vec![
            (Value::Text("aa".into()), Value::Null),
            (Value::Text("b".into()), Value::Null),
            (Value::Integer((-1).into()), Value::Null),
            (Value::Integer((-300).into()), Value::Null),
            (Value::Integer(65535.into()), Value::Null),
            (Value::Integer(1.into()), Value::Null),
        ]);
        let bytes = bytes_of(&v);
        assert!(reader(&bytes).item().is_ok());
        let Value::Map(entries) = v else { panic!("unexpected shape") };
        let keys: Vec<String> = entries.iter().map(|(k, _)| format!("{k:?}")).collect();
        assert_eq!(keys.len(), 6);
        assert!(
            keys[0].contains("(1)")
                && keys[1].contains("65535")
                && keys[2].contains("-1")
                && keys[5].contains("aa")
        );
    }

    #[test]
    fn attributes_are_text_ints_or_bools() {
        for (v, expected) in [
            (Value::Text("x".into()), AttributeValue::Text("x".into())),
            (Value::Integer((-7).into()), AttributeValue::Int(-7)),
            (Value::Bool(true), AttributeValue::Bool(true)),
        ] {
            let bytes = bytes_of(&v);
            assert_eq!(reader(&bytes).attribute("a", 10).unwrap(), expected);
        }
        for v in [Value::Null, Value::Bytes(vec![1]), Value::Array(vec![]), Value::Integer(u64::MAX.into())] {
            let bytes = bytes_of(&v);
            assert!(matches!(reader(&bytes).attribute("a", 10), Err(Error::InvalidClaim { .. })), "{v:?}");
        }
    }
}
