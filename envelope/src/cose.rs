//! COSE_Sign1 (RFC 9052) as this format uses it: tag 18, ES256, a protected header with
//! exactly alg, kid and typ, an empty unprotected header and an embedded payload.

use ciborium::Value;
use coset::{iana, AsCborValue, CborSerializable, CoseSign1, Header, HeaderBuilder, ProtectedHeader};

use crate::cbor::{self, KeyRef, Reader};
use crate::digest::sha256;
use crate::keys::{thumbprint, KeyId, VerifyingKey};
use crate::signer::Signer;
use crate::{Error, ObjectType};

const COSE_SIGN1_TAG: u64 = 18;
const TYP_LABEL: i64 = 16;

/// A decoded COSE_Sign1 whose headers passed the format's checks; its signature is not yet
/// verified.
#[derive(Debug, Clone)]
pub(crate) struct SignedObject {
    /// The protected header exactly as received: the signature covers these bytes.
    pub protected: Vec<u8>,
    /// The kid from the protected header.
    pub kid: KeyId,
    /// The payload bytes (a CWT claims set).
    pub payload: Vec<u8>,
    /// The raw r||s signature.
    pub signature: [u8; 64],
}

impl SignedObject {
    /// Whether the signature verifies under `key`.
    pub(crate) fn verifies_with(&self, key: &VerifyingKey) -> bool {
        key.verifies(&sig_structure(&self.protected, &self.payload), &self.signature)
    }

    /// SHA-256 of what the signature covers; see [`signed_content_digest`].
    pub(crate) fn content_digest(&self) -> [u8; 32] {
        signed_content_digest(&self.protected, &self.payload)
    }
}

/// SHA-256 of the Sig_structure: the digest ES256 signs. It identifies an object's content
/// independently of its signature, which ECDSA lets anyone re-encode (`(r, n-s)` verifies too).
pub(crate) fn signed_content_digest(protected: &[u8], payload: &[u8]) -> [u8; 32] {
    sha256(&sig_structure(protected, payload))
}

/// The bytes ES256 signs: `["Signature1", protected, h'', payload]`.
///
/// Written with the low-level encoder rather than coset's `tbs_data`, which clones the
/// payload through a `Value`: this is on every verification's path.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + protected.len() + payload.len());
    // array(4), text(10) "Signature1"
    out.push(0x84);
    out.push(0x6a);
    out.extend_from_slice(b"Signature1");
    push_bytes_head(&mut out, protected.len());
    out.extend_from_slice(protected);
    // external_aad: h''
    out.push(0x40);
    push_bytes_head(&mut out, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The preferred (shortest) CBOR head of a byte string of `len` bytes (major type 2).
/// Written out, so that building the bytes a signature covers cannot fail.
fn push_bytes_head(out: &mut Vec<u8>, len: usize) {
    const MAJOR: u8 = 2 << 5;
    let len = len as u64;
    match len {
        0..=23 => out.push(MAJOR | len as u8),
        24..=0xff => out.extend_from_slice(&[MAJOR | 24, len as u8]),
        0x100..=0xffff => {
            out.push(MAJOR | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(MAJOR | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        _ => {
            out.push(MAJOR | 27);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// Signs `payload` as a COSE_Sign1 of type `object` and returns the tagged encoding.
pub(crate) fn sign(object: ObjectType, signer: &dyn Signer, payload: Vec<u8>) -> Result<Vec<u8>, Error> {
    let kid = thumbprint(signer.public_key());
    let header = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(kid.to_vec())
        .value(TYP_LABEL, Value::Text(object.media_type().into()))
        .build();
    let protected_bytes =
        header.clone().to_vec().map_err(|e| Error::Malformed { object, reason: format!("header: {e}") })?;
    let digest = signed_content_digest(&protected_bytes, &payload);
    let signature = signer.sign_digest(&digest).map_err(|e| Error::Signing(e.to_string()))?;
    let sign1 = CoseSign1 {
        protected: ProtectedHeader { original_data: Some(protected_bytes), header },
        unprotected: Header::default(),
        payload: Some(payload),
        signature: signature.to_vec(),
    };
    let value = sign1.to_cbor_value().map_err(|e| Error::Malformed { object, reason: format!("{e}") })?;
    cbor::encode(object, &Value::Tag(COSE_SIGN1_TAG, Box::new(value)))
}

/// Decodes a COSE_Sign1 of type `object` strictly and checks its headers.
pub(crate) fn decode(object: ObjectType, bytes: &[u8]) -> Result<SignedObject, Error> {
    let mut r = Reader::new(object, bytes, object.size_limit())?;
    if r.tag()? != COSE_SIGN1_TAG {
        return Err(Error::NotTagged { object });
    }
    if r.array("COSE_Sign1")? != 4 {
        return Err(Error::Malformed { object, reason: "a COSE_Sign1 has 4 elements".into() });
    }
    let protected = r.bytes("protected header")?;
    let kid = check_protected_header(object, protected)?;
    let mut unprotected = r.map("unprotected header")?;
    if unprotected.next(&mut r)?.is_some() {
        return Err(Error::UnexpectedHeader("the unprotected header must be empty".into()));
    }
    if r.null()? {
        return Err(Error::Malformed { object, reason: "detached payloads are not used".into() });
    }
    let payload = r.bytes("payload")?.to_vec();
    let signature = r.bytes("signature")?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| Error::Malformed { object, reason: "ES256 signatures are 64 bytes".into() })?;
    r.finish()?;
    Ok(SignedObject { protected: protected.to_vec(), kid, payload, signature })
}

/// Reads only the `typ` of a signed object, to dispatch on it (inspection).
pub(crate) fn peek_type(bytes: &[u8]) -> Option<ObjectType> {
    let mut r = Reader::new(ObjectType::Warrant, bytes, ObjectType::StatusList.size_limit()).ok()?;
    if r.tag().ok()? != COSE_SIGN1_TAG || r.array("COSE_Sign1").ok()? != 4 {
        return None;
    }
    let mut h = Reader::new(ObjectType::Warrant, r.bytes("protected header").ok()?, 1024).ok()?;
    let mut keys = h.map("protected header").ok()?;
    while let Some(key) = keys.next(&mut h).ok()? {
        if key == KeyRef::Int(TYP_LABEL) {
            let typ = h.text("typ", 256).ok()?;
            return ObjectType::ALL.into_iter().find(|o| o.media_type() == typ);
        }
        h.item().ok()?;
    }
    None
}

/// Checks the protected header: exactly alg = ES256, a 32-byte kid and the expected typ.
fn check_protected_header(object: ObjectType, raw: &[u8]) -> Result<KeyId, Error> {
    const ALG: i64 = 1;
    const CRIT: i64 = 2;
    const KID: i64 = 4;
    const ES256: i64 = -7;
    // RFC 9052 encodes an empty protected header as a zero-length bstr (or, loosely, `h'a0'`).
    if raw.is_empty() || raw == [0xa0] {
        return Err(Error::ProtectedHeaderEmpty { object });
    }
    let mut r = Reader::new(object, raw, 1024)?;
    let mut keys = r.map("protected header")?;
    let (mut alg, mut kid, mut typ) = (None, None, None);
    while let Some(key) = keys.next(&mut r)? {
        match key {
            KeyRef::Int(ALG) => {
                alg = Some(r.int("alg").map_err(|e| wrong_type(e, Error::AlgorithmNotAllowed))?)
            }
            KeyRef::Int(CRIT) => return Err(Error::UnknownCritical),
            KeyRef::Int(KID) => {
                let not_a_thumbprint =
                    || Error::UnexpectedHeader("kid must be a 32-byte key thumbprint".into());
                kid = Some(r.fixed_bytes::<32>("kid").map_err(|e| wrong_type(e, not_a_thumbprint()))?)
            }
            KeyRef::Int(TYP_LABEL) => typ = Some(r.text("typ", 256)?),
            other => return Err(Error::UnexpectedHeader(format!("protected header parameter {other}"))),
        }
    }
    r.finish()?;
    if alg != Some(ES256) {
        return Err(Error::AlgorithmNotAllowed);
    }
    match typ {
        Some(t) if t == object.media_type() => {}
        found => {
            return Err(Error::WrongObjectType {
                expected: object.media_type(),
                found: found.unwrap_or("(none)").into(),
            })
        }
    }
    kid.ok_or_else(|| Error::UnexpectedHeader("kid is missing".into()))
}

/// A header value of the wrong type or size is `instead`; an encoding error (a non-preferred
/// head, truncation) keeps its own reason, so `-7` in a long form is not "algorithm not allowed".
fn wrong_type(e: Error, instead: Error) -> Error {
    match e {
        Error::InvalidClaim { .. } => instead,
        encoding => encoding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_structure_matches_coset() {
        let header = HeaderBuilder::new().algorithm(iana::Algorithm::ES256).key_id(vec![7; 32]).build();
        let protected_bytes = header.clone().to_vec().unwrap();
        for len in [0usize, 23, 24, 255, 256, 70000] {
            let payload = vec![0xab; len];
            let sign1 = CoseSign1 {
                protected: ProtectedHeader {
                    original_data: Some(protected_bytes.clone()),
                    header: header.clone(),
                },
                unprotected: Header::default(),
                payload: Some(payload.clone()),
                signature: vec![],
            };
            assert_eq!(
                sig_structure(&protected_bytes, &payload),
                sign1.tbs_data(&[]),
                "payload length {len}"
            );
        }
    }
}
