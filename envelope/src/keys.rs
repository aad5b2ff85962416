//! Public keys as the format carries them: COSE_Key (RFC 9052) and their thumbprints
//! (RFC 9679), which serve as key ids.

use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED};
use ciborium::Value;
use warrant_attestation::P256PublicKey;

use crate::cbor::{self, Key, KeyRef, Reader};
use crate::digest::sha256;
use crate::{Error, ObjectType};

const KTY: Key = Key::Int(1, "kty");
const CRV: Key = Key::Int(-1, "crv");
const X: Key = Key::Int(-2, "x");
const Y: Key = Key::Int(-3, "y");
const KTY_EC2: i64 = 2;
const CRV_P256: i64 = 1;

/// A key id: the COSE Key Thumbprint (RFC 9679, SHA-256) of a public key.
pub type KeyId = [u8; 32];

/// The COSE_Key form of a P-256 public key: `{1: 2, -1: 1, -2: x, -3: y}`.
pub(crate) fn cose_key(key: &P256PublicKey) -> Value {
    cbor::map_of([
        (KTY, Value::Integer(KTY_EC2.into())),
        (CRV, Value::Integer(CRV_P256.into())),
        (X, Value::Bytes(key.x().to_vec())),
        (Y, Value::Bytes(key.y().to_vec())),
    ])
}

/// Reads a COSE_Key that must be exactly an EC2 P-256 key with x and y.
pub(crate) fn read_cose_key(r: &mut Reader<'_>) -> Result<P256PublicKey, Error> {
    let object = r.object();
    let mut keys = r.map("cnf")?;
    let (mut kty, mut crv, mut x, mut y) = (None, None, None, None);
    while let Some(key) = keys.next(r)? {
        match key {
            k if KTY.is(k) => kty = Some(r.int(KTY.name())?),
            k if CRV.is(k) => crv = Some(r.int(CRV.name())?),
            k if X.is(k) => x = Some(r.fixed_bytes::<32>(X.name())?),
            k if Y.is(k) => y = Some(r.fixed_bytes::<32>(Y.name())?),
            other => return Err(cbor::unknown(object, other)),
        }
    }
    if cbor::required(object, KTY.name(), kty)? != KTY_EC2 {
        return Err(r.invalid(KTY.name(), "only EC2 keys are supported"));
    }
    if cbor::required(object, CRV.name(), crv)? != CRV_P256 {
        return Err(r.invalid(CRV.name(), "only P-256 is supported"));
    }
    let (x, y) = (cbor::required(object, X.name(), x)?, cbor::required(object, Y.name(), y)?);
    P256PublicKey::from_coordinates(&x, &y).map_err(|e| r.invalid("cnf", e.to_string()))
}

/// Reads a confirmation claim: `{1: COSE_Key}`.
pub(crate) fn read_cnf(r: &mut Reader<'_>) -> Result<P256PublicKey, Error> {
    let mut keys = r.map("cnf")?;
    let mut key = None;
    while let Some(k) = keys.next(r)? {
        match k {
            KeyRef::Int(1) => key = Some(read_cose_key(r)?),
            other => return Err(cbor::unknown(r.object(), other)),
        }
    }
    cbor::required(r.object(), "cnf", key)
}

/// The RFC 9679 thumbprint of a P-256 key: SHA-256 over the deterministic encoding of its
/// required COSE_Key parameters (`{1: 2, -1: 1, -2: x, -3: y}`), as a grant's `cnf` encodes them.
pub fn thumbprint(key: &P256PublicKey) -> KeyId {
    sha256(&thumbprint_input(key))
}

/// The deterministic COSE_Key of a P-256 key, `{1: 2, -1: 1, -2: x, -3: y}`, written out:
/// its shape is fixed, so it is built byte by byte and cannot fail (a test holds it equal to
/// the general encoder's output).
fn thumbprint_input(key: &P256PublicKey) -> [u8; 75] {
    let mut out = [0u8; 75];
    // map(4), 1: 2, -1: 1, -2: bstr(32)
    out[..8].copy_from_slice(&[0xa4, 0x01, 0x02, 0x20, 0x01, 0x21, 0x58, 0x20]);
    out[8..40].copy_from_slice(key.x());
    // -3: bstr(32)
    out[40..43].copy_from_slice(&[0x22, 0x58, 0x20]);
    out[43..].copy_from_slice(key.y());
    out
}

/// A public key ready to verify ES256 signatures, with its key id.
pub(crate) struct VerifyingKey {
    kid: KeyId,
    parsed: ParsedPublicKey,
}

impl VerifyingKey {
    /// Prepares `public` for verification.
    pub(crate) fn new(public: P256PublicKey) -> Result<Self, Error> {
        let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public.sec1()).map_err(|_| {
            Error::InvalidClaim { object: ObjectType::Grant, claim: "cnf", reason: "key rejected".into() }
        })?;
        Ok(Self { kid: thumbprint(&public), parsed })
    }

    /// Its key id.
    pub(crate) fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// Whether `signature` (raw r||s) is a valid ES256 signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey(kid={})", hex::encode(self.kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9679_example_thumbprint() {
        // RFC 9679 section 6 example key and thumbprint.
        let x = hex::decode("65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d").unwrap();
        let y = hex::decode("1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c").unwrap();
        let key = P256PublicKey::from_coordinates(&x, &y).unwrap();
        assert_eq!(
            hex::encode(thumbprint(&key)),
            "496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec"
        );
    }

    #[test]
    fn the_written_out_thumbprint_input_is_the_deterministic_encoding() {
        for _ in 0..16 {
            let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            )
            .unwrap();
            use aws_lc_rs::signature::KeyPair;
            let key = P256PublicKey::from_sec1(pair.public_key().as_ref()).unwrap();
            let general = cbor::encode(ObjectType::Grant, &cose_key(&key)).unwrap();
            assert_eq!(thumbprint_input(&key).as_slice(), general.as_slice());
        }
    }

    #[test]
    fn cose_key_round_trip_and_strictness() {
        let x = hex::decode("65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d").unwrap();
        let y = hex::decode("1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c").unwrap();
        let key = P256PublicKey::from_coordinates(&x, &y).unwrap();
        let read = |v: Value| {
            let bytes = cbor::encode(ObjectType::Grant, &v).unwrap();
            read_cose_key(&mut Reader::new(ObjectType::Grant, &bytes, 1000).unwrap())
        };
        assert_eq!(read(cose_key(&key)).unwrap(), key);
        let Value::Map(mut entries) = cose_key(&key) else { panic!("unexpected shape") };
        entries[0].1 = Value::Integer(1.into()); // kty OKP
        assert!(matches!(read(Value::Map(entries)), Err(Error::InvalidClaim { claim: "kty", .. })));
        let Value::Map(mut entries) = cose_key(&key) else { panic!("unexpected shape") };
        entries.push((Value::Text("extra".into()), Value::Null));
        assert!(matches!(read(Value::Map(entries)), Err(Error::UnknownClaim { .. })));
        let Value::Map(mut entries) = cose_key(&key) else { panic!("unexpected shape") };
        entries.pop();
        assert!(matches!(read(Value::Map(entries)), Err(Error::MissingClaim { claim: "y", .. })));
    }
}
