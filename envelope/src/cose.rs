//! COSE_Sign1 (RFC 9052) as this format uses it: tag 18, ES256, a protected header with
//! exactly alg, kid and typ, an empty unprotected header and an embedded payload.

use ciborium::Value;
use coset::{iana, AsCborValue, CborSerializable, CoseSign1, Header, HeaderBuilder, Label, ProtectedHeader};

use crate::cbor;
use crate::digest::sha256;
use crate::keys::{thumbprint, KeyId, VerifyingKey};
use crate::{Error, ObjectType, Signer};

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
}

/// The bytes ES256 signs: `["Signature1", protected, h'', payload]`.
///
/// Written with the low-level encoder rather than coset's `tbs_data`, which clones the
/// payload through a `Value`: this is on every verification's path.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    use ciborium_ll::{Encoder, Header};
    let mut out = Vec::with_capacity(32 + protected.len() + payload.len());
    {
        let mut enc = Encoder::from(&mut out);
        // Writing into a Vec cannot fail.
        let _ = enc.push(Header::Array(Some(4)));
        let _ = enc.text("Signature1", None);
        let _ = enc.bytes(protected, None);
        let _ = enc.bytes(&[], None);
        let _ = enc.push(Header::Bytes(Some(payload.len())));
    }
    out.extend_from_slice(payload);
    out
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
    let digest = sha256(&sig_structure(&protected_bytes, &payload));
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
    let value = cbor::decode(object, bytes, object.size_limit())?;
    let Value::Tag(COSE_SIGN1_TAG, inner) = value else {
        return Err(Error::NotTagged { object });
    };
    let sign1 = CoseSign1::from_cbor_value(*inner).map_err(|e| match e {
        coset::CoseError::DuplicateMapKey => Error::DuplicateKey { object, key: "in a COSE header".into() },
        other => Error::Malformed { object, reason: format!("not a COSE_Sign1: {other}") },
    })?;
    if !sign1.unprotected.is_empty() {
        return Err(Error::UnexpectedHeader("the unprotected header must be empty".into()));
    }
    let ProtectedHeader { original_data, header } = sign1.protected;
    let protected = original_data.unwrap_or_default();
    check_protected_header(object, &protected, &header)?;
    let Some(payload) = sign1.payload else {
        return Err(Error::Malformed { object, reason: "detached payloads are not used".into() });
    };
    let signature: [u8; 64] = sign1
        .signature
        .try_into()
        .map_err(|_| Error::Malformed { object, reason: "ES256 signatures are 64 bytes".into() })?;
    let kid: KeyId = header
        .key_id
        .try_into()
        .map_err(|_| Error::UnexpectedHeader("kid must be a 32-byte key thumbprint".into()))?;
    Ok(SignedObject { protected, kid, payload, signature })
}

/// Reads only the `typ` of a signed object, to dispatch on it (inspection).
pub(crate) fn peek_type(bytes: &[u8]) -> Option<ObjectType> {
    let value = cbor::decode(ObjectType::Warrant, bytes, ObjectType::StatusList.size_limit()).ok()?;
    let Value::Tag(COSE_SIGN1_TAG, inner) = value else { return None };
    let sign1 = CoseSign1::from_cbor_value(*inner).ok()?;
    let typ = sign1.protected.header.rest.iter().find_map(|(label, value)| match (label, value) {
        (Label::Int(TYP_LABEL), Value::Text(t)) => Some(t.clone()),
        _ => None,
    })?;
    ObjectType::ALL.into_iter().find(|o| o.media_type() == typ)
}

fn check_protected_header(object: ObjectType, raw: &[u8], header: &Header) -> Result<(), Error> {
    // The protected bytes must themselves be in preferred serialization.
    if header.clone().to_vec().ok().as_deref() != Some(raw) {
        return Err(Error::NonCanonical { object });
    }
    if !header.crit.is_empty() {
        return Err(Error::UnknownCritical);
    }
    if header.alg != Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) {
        return Err(Error::AlgorithmNotAllowed);
    }
    if header.content_type.is_some()
        || !header.iv.is_empty()
        || !header.partial_iv.is_empty()
        || !header.counter_signatures.is_empty()
    {
        return Err(Error::UnexpectedHeader("only alg, kid and typ may be protected".into()));
    }
    let mut typ = None;
    for (label, value) in &header.rest {
        match (label, value) {
            (Label::Int(TYP_LABEL), Value::Text(t)) => typ = Some(t.as_str()),
            (label, _) => return Err(Error::UnexpectedHeader(format!("{label:?}"))),
        }
    }
    match typ {
        Some(t) if t == object.media_type() => Ok(()),
        Some(found) => Err(Error::WrongObjectType { expected: object.media_type(), found: found.into() }),
        None => Err(Error::WrongObjectType { expected: object.media_type(), found: "(none)".into() }),
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
