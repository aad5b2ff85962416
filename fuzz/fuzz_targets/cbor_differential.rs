//! Differential: the envelope's strict CBOR reader (envelope/src/cbor.rs) against ciborium.
//! Whatever the strict reader accepts must be CBOR ciborium reads as the same value, and must
//! be the preferred (deterministic) encoding of that value: re-encoding it gives the input
//! back byte for byte. Inputs only ciborium accepts (non-preferred heads, indefinite lengths,
//! floats, unordered or duplicate map keys...) are the strict reader's refusals, not findings.
#![no_main]

use ciborium::value::Integer;
use ciborium::Value;
use libfuzzer_sys::fuzz_target;

/// ciborium reads tags 2 and 3 around a byte string of at most 16 bytes (bignums) as
/// integers: the strict reader's tree, in ciborium's terms (`None`: ciborium refuses it).
fn as_ciborium_reads(v: &Value) -> Option<Value> {
    Some(match v {
        Value::Tag(tag @ (2 | 3), inner) => match inner.as_ref() {
            Value::Bytes(b) if b.len() <= 16 => {
                let mut be = [0u8; 16];
                be[16 - b.len()..].copy_from_slice(b);
                let n = u128::from_be_bytes(be);
                if *tag == 2 {
                    Value::Integer(Integer::try_from(n).ok()?)
                } else {
                    let n = i128::try_from(n).ok()?;
                    Value::Integer(Integer::try_from(-1 - n).ok()?)
                }
            }
            other => Value::Tag(*tag, Box::new(as_ciborium_reads(other)?)),
        },
        Value::Tag(tag, inner) => Value::Tag(*tag, Box::new(as_ciborium_reads(inner)?)),
        Value::Array(items) => Value::Array(items.iter().map(as_ciborium_reads).collect::<Option<_>>()?),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| Some((as_ciborium_reads(k)?, as_ciborium_reads(v)?)))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

fuzz_target!(|data: &[u8]| {
    let strict = warrant_envelope::fuzzing::strict_value(data);
    let mut rest = data;
    let loose: Result<Value, _> = ciborium::de::from_reader(&mut rest);
    let loose = loose.ok().filter(|_| rest.is_empty());
    let Ok(strict) = strict else { return };
    // Accepted strictly: the bytes are the preferred encoding of the value they hold.
    let mut again = Vec::new();
    ciborium::ser::into_writer(&strict, &mut again).unwrap();
    assert_eq!(again, data, "the strict reader accepted a non-preferred encoding of {strict:?}");
    match (as_ciborium_reads(&strict), loose) {
        (Some(expected), Some(loose)) => assert_eq!(expected, loose, "the readers disagree"),
        (Some(expected), None) => panic!("the strict reader accepted what ciborium refuses: {expected:?}"),
        // A bignum beyond ciborium's integers: ciborium refuses it, rightly or not, by design.
        (None, _) => {}
    }
});
