//! The status list: the authority's signed, sequenced revocation bits, a Token Status List
//! token (draft-ietf-oauth-status-list; one bit per grant) with a sequence number and a hash
//! chain to its predecessor added.

use std::io::{Read, Write};

use ciborium::Value;

use crate::cbor::{self, Key, Reader};
use crate::cwt::{self, MAX_TEXT};
use crate::signer::Signer;
use crate::{cose, Error, ObjectType};

const SEQUENCE: Key = Key::Text("seq");
const PREVIOUS: Key = Key::Text("prev");
const BITS: Key = Key::Text("bits");
const LIST: Key = Key::Text("lst");

/// Largest decompressed bit array accepted: 1 MiB, room for 8,388,608 grants.
pub const MAX_STATUS_BYTES: usize = 1024 * 1024;

/// Fewest entries a list covers: authorities pad to it so that a list does not reveal how
/// few grants exist, and verifiers refuse a shorter list.
pub const MIN_STATUS_ENTRIES: u64 = 1024;

/// One revocation bit per grant index; bit `i` is bit `i % 8` (least significant first) of
/// byte `i / 8`, as in the Token Status List.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusBits {
    bytes: Vec<u8>,
}

impl StatusBits {
    /// A list of at least `entries` bits and at least [`MIN_STATUS_ENTRIES`], all clear.
    pub fn with_capacity(entries: u64) -> Self {
        Self { bytes: vec![0; entries.max(MIN_STATUS_ENTRIES).div_ceil(8) as usize] }
    }

    /// How many indexes the list covers.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64 * 8
    }

    /// Whether the list covers no index.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Marks `index` revoked, growing the list if needed (up to [`MAX_STATUS_BYTES`]).
    pub fn revoke(&mut self, index: u64) -> Result<(), Error> {
        let byte = (index / 8) as usize;
        if byte >= MAX_STATUS_BYTES {
            return Err(Error::StatusIndexOutOfRange { index, size: (MAX_STATUS_BYTES * 8) as u64 });
        }
        if byte >= self.bytes.len() {
            self.bytes.resize(byte + 1, 0);
        }
        self.bytes[byte] |= 1 << (index % 8);
        Ok(())
    }

    /// Whether `index` is revoked; an index outside the list is an error, never "valid".
    pub fn is_revoked(&self, index: u64) -> Result<bool, Error> {
        let byte = usize::try_from(index / 8).ok().and_then(|b| self.bytes.get(b));
        match byte {
            Some(b) => Ok(b & (1 << (index % 8)) != 0),
            None => Err(Error::StatusIndexOutOfRange { index, size: self.len() }),
        }
    }

    fn compress(&self) -> Result<Vec<u8>, Error> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&self.bytes).and_then(|_| z.finish()).map_err(|e| Error::Malformed {
            object: ObjectType::StatusList,
            reason: format!("compress: {e}"),
        })
    }

    fn decompress(compressed: &[u8]) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::StatusList;
        let mut bytes = Vec::new();
        // Over the slice itself (not a buffered copy), so `total_in` is exactly what the stream used.
        let mut decoder = flate2::bufread::ZlibDecoder::new(compressed);
        // Read one byte past the limit so a decompression bomb is detected, not truncated.
        decoder.by_ref().take(MAX_STATUS_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| {
            Error::InvalidClaim { object: O, claim: "lst", reason: format!("not zlib data: {e}") }
        })?;
        if bytes.len() > MAX_STATUS_BYTES {
            return Err(Error::TooLarge { object: O, size: bytes.len(), limit: MAX_STATUS_BYTES });
        }
        if bytes.is_empty() {
            return Err(Error::InvalidClaim { object: O, claim: "lst", reason: "empty list".into() });
        }
        // The stream ends with its checksum; bytes after it mean nothing here, and another
        // decoder might read them as more of the list.
        let extra =
            compressed.len().saturating_sub(usize::try_from(decoder.total_in()).unwrap_or(usize::MAX));
        if extra > 0 {
            return Err(Error::StatusListTrailingData { extra });
        }
        let bits = Self { bytes };
        if bits.len() < MIN_STATUS_ENTRIES {
            return Err(Error::StatusListTooShort { entries: bits.len(), minimum: MIN_STATUS_ENTRIES });
        }
        Ok(bits)
    }
}

/// The claims of a status list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListClaims {
    /// The authority (`iss`).
    pub issuer: String,
    /// The list's URI (`sub`), which grants reference.
    pub uri: String,
    /// Sequence number, increasing by one per published list.
    pub sequence: u64,
    /// The previous list's [`status_list_digest`] (all zero for the first).
    pub previous: [u8; 32],
    /// `iat`.
    pub issued_at: u64,
    /// `exp`: after this a verifier must not rely on the list.
    pub expires_at: u64,
    /// `ttl`: how long, in seconds, a verifier may use this list before it fetches a newer one
    /// (Token Status List); positive and at most `exp - iat`.
    pub time_to_live: u64,
    /// The revocation bits.
    pub bits: StatusBits,
}

impl StatusListClaims {
    /// Encodes the claims as a CWT claims set.
    pub fn to_cbor(&self) -> Result<Value, Error> {
        let list =
            cbor::map_of([(BITS, Value::Integer(1.into())), (LIST, Value::Bytes(self.bits.compress()?))]);
        Ok(cbor::map_of([
            (cwt::ISS, Value::Text(self.issuer.clone())),
            (cwt::SUB, Value::Text(self.uri.clone())),
            (cwt::EXP, Value::Integer(self.expires_at.into())),
            (cwt::IAT, Value::Integer(self.issued_at.into())),
            (cwt::TTL, Value::Integer(self.time_to_live.into())),
            (cwt::STATUS_LIST, list),
            (SEQUENCE, Value::Integer(self.sequence.into())),
            (PREVIOUS, Value::Bytes(self.previous.to_vec())),
        ]))
    }

    /// Decodes a claims set from its encoding, strictly.
    pub fn from_payload(payload: &[u8]) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::StatusList;
        let mut r = Reader::new(O, payload, O.size_limit())?;
        let mut keys = r.map("claims")?;
        let (mut issuer, mut uri, mut expires_at, mut issued_at) = (None, None, None, None);
        let mut time_to_live = None;
        let (mut compressed, mut sequence, mut previous) = (None, None, None);
        while let Some(key) = keys.next(&mut r)? {
            match key {
                k if cwt::ISS.is(k) => issuer = Some(r.text(cwt::ISS.name(), MAX_TEXT)?.to_owned()),
                k if cwt::SUB.is(k) => uri = Some(r.text(cwt::SUB.name(), MAX_TEXT)?.to_owned()),
                k if cwt::EXP.is(k) => expires_at = Some(r.uint(cwt::EXP.name())?),
                k if cwt::IAT.is(k) => issued_at = Some(r.uint(cwt::IAT.name())?),
                k if cwt::TTL.is(k) => time_to_live = Some(r.uint(cwt::TTL.name())?),
                k if cwt::STATUS_LIST.is(k) => {
                    let mut list = r.map(cwt::STATUS_LIST.name())?;
                    let (mut bits, mut lst) = (None, None);
                    while let Some(key) = list.next(&mut r)? {
                        match key {
                            k if BITS.is(k) => bits = Some(r.uint(BITS.name())?),
                            k if LIST.is(k) => lst = Some(r.bytes(LIST.name())?),
                            other => return Err(cbor::unknown(O, other)),
                        }
                    }
                    if cbor::required(O, BITS.name(), bits)? != 1 {
                        return Err(r.invalid(BITS.name(), "only 1 bit per status is used"));
                    }
                    compressed = Some(cbor::required(O, LIST.name(), lst)?);
                }
                k if SEQUENCE.is(k) => sequence = Some(r.uint(SEQUENCE.name())?),
                k if PREVIOUS.is(k) => previous = Some(r.fixed_bytes::<32>(PREVIOUS.name())?),
                other => return Err(cbor::unknown(O, other)),
            }
        }
        r.finish()?;
        let issued_at = cbor::required(O, cwt::IAT.name(), issued_at)?;
        let expires_at = cbor::required(O, cwt::EXP.name(), expires_at)?;
        // Optional in the Token Status List, required here: verifiers refresh by it.
        let time_to_live = cbor::required(O, cwt::TTL.name(), time_to_live)?;
        check_times(issued_at, expires_at, time_to_live)?;
        Ok(Self {
            issuer: cbor::required(O, cwt::ISS.name(), issuer)?,
            uri: cbor::required(O, cwt::SUB.name(), uri)?,
            sequence: cbor::required(O, SEQUENCE.name(), sequence)?,
            previous: cbor::required(O, PREVIOUS.name(), previous)?,
            issued_at,
            expires_at,
            time_to_live,
            bits: StatusBits::decompress(cbor::required(O, cwt::STATUS_LIST.name(), compressed)?)?,
        })
    }

    /// Signs the list with the authority's key.
    pub fn sign(&self, authority: &dyn Signer) -> Result<Vec<u8>, Error> {
        check_times(self.issued_at, self.expires_at, self.time_to_live)?;
        let payload = cbor::encode(ObjectType::StatusList, &self.to_cbor()?)?;
        cose::sign(ObjectType::StatusList, authority, payload)
    }
}

/// `exp` after `iat`, and `ttl` from one second to the list's whole life.
fn check_times(issued_at: u64, expires_at: u64, time_to_live: u64) -> Result<(), Error> {
    const O: ObjectType = ObjectType::StatusList;
    if expires_at <= issued_at {
        return Err(Error::InvalidClaim { object: O, claim: "exp", reason: "must be after iat".into() });
    }
    let life = expires_at - issued_at;
    if time_to_live == 0 || time_to_live > life {
        return Err(Error::InvalidClaim {
            object: O,
            claim: "ttl",
            reason: format!("must be from 1 to exp - iat ({life}) seconds, is {time_to_live}"),
        });
    }
    Ok(())
}

/// A status list decoded from its bytes, with the signed envelope kept for verification.
#[derive(Debug, Clone)]
pub(crate) struct DecodedStatusList {
    pub signed: cose::SignedObject,
    pub claims: StatusListClaims,
}

impl DecodedStatusList {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let signed = cose::decode(ObjectType::StatusList, bytes)?;
        let claims = StatusListClaims::from_payload(&signed.payload)?;
        Ok(Self { signed, claims })
    }

    /// The list's [`status_list_digest`].
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.signed.content_digest()
    }

    /// The list's [`status_list_freshness`].
    pub(crate) fn freshness(&self) -> Result<[u8; 32], Error> {
        let signature = p256::ecdsa::Signature::from_slice(&self.signed.signature)
            .map_err(|_| Error::StatusListSignatureInvalid)?;
        // (r, n-s) verifies too: take the low-S form, so every copy of a list agrees.
        let low_s = signature.normalize_s().unwrap_or(signature);
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        h.update(b"warrant status list freshness v1\0");
        h.update(&self.digest());
        h.update(&low_s.to_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(h.finish().as_ref());
        Ok(out)
    }
}

/// The digest that identifies a status list and that its successor names as `prev`: SHA-256
/// of its signed content, the COSE Sig_structure `["Signature1", protected, h'', payload]`.
///
/// Not of its encoded bytes: ECDSA signatures are malleable, so a relay could serve `(r, n-s)`
/// of a list (same content, other bytes) and break the chain for verifiers that took it.
/// `bytes` is decoded strictly; its signature is not checked here.
pub fn status_list_digest(bytes: &[u8]) -> Result<[u8; 32], Error> {
    DecodedStatusList::decode(bytes).map(|list| list.digest())
}

/// What a cached TPM quote is bound to, to prove it was made after the list was issued:
/// SHA-256 of a label, the list's [`status_list_digest`] and its signature in low-S form.
///
/// The signed content alone is predictable (the next list's `seq`, `prev` and bits are known
/// and its `iat` can be guessed), so a device could quote future lists in advance; the
/// authority's signature cannot be known before it is made. Normalising `s` keeps every copy
/// of a list (`(r, s)` or `(r, n-s)`) the same. `bytes` is decoded strictly; its signature is
/// not checked here (a verifier binds only lists it installed).
pub fn status_list_freshness(bytes: &[u8]) -> Result<[u8; 32], Error> {
    DecodedStatusList::decode(bytes)?.freshness()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_lsb_first_and_bounded() {
        let mut bits = StatusBits::with_capacity(16);
        assert_eq!(bits.len(), MIN_STATUS_ENTRIES, "padded");
        bits.revoke(9).unwrap();
        assert_eq!(bits.bytes[..3], [0, 0b10, 0]);
        assert!(bits.is_revoked(9).unwrap());
        assert!(!bits.is_revoked(8).unwrap());
        assert!(matches!(
            bits.is_revoked(MIN_STATUS_ENTRIES),
            Err(Error::StatusIndexOutOfRange { index: 1024, size: 1024 })
        ));
        assert!(bits.revoke(u64::MAX).is_err());
    }

    #[test]
    fn compression_round_trips_and_bombs_are_refused() {
        let mut bits = StatusBits::with_capacity(10_000);
        bits.revoke(4242).unwrap();
        assert_eq!(StatusBits::decompress(&bits.compress().unwrap()).unwrap(), bits);
        let bomb = StatusBits { bytes: vec![0; MAX_STATUS_BYTES + 1] }.compress().unwrap();
        assert!(bomb.len() < 4096, "a bomb is small");
        assert!(matches!(StatusBits::decompress(&bomb), Err(Error::TooLarge { .. })));
        assert!(matches!(StatusBits::decompress(b"not zlib"), Err(Error::InvalidClaim { .. })));
    }

    /// A signer the refusals must never reach.
    struct Unused(warrant_attestation::P256PublicKey);

    impl Unused {
        fn new() -> Self {
            use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            Self(warrant_attestation::P256PublicKey::from_sec1(pair.public_key().as_ref()).unwrap())
        }
    }

    impl Signer for Unused {
        fn public_key(&self) -> &warrant_attestation::P256PublicKey {
            &self.0
        }

        fn sign_digest(&self, _: &[u8; 32]) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>> {
            panic!("an invalid list was about to be signed")
        }
    }

    fn claims(issued_at: u64, expires_at: u64, time_to_live: u64) -> StatusListClaims {
        StatusListClaims {
            issuer: "acme".into(),
            uri: "https://acme.example/status/1".into(),
            sequence: 1,
            previous: [0; 32],
            issued_at,
            expires_at,
            time_to_live,
            bits: StatusBits::with_capacity(0),
        }
    }

    #[test]
    fn ttl_is_required_and_within_the_lists_life() {
        let good = claims(1000, 1600, 600);
        let payload = cbor::encode(ObjectType::StatusList, &good.to_cbor().unwrap()).unwrap();
        assert_eq!(StatusListClaims::from_payload(&payload).unwrap(), good);

        // Without `ttl` (optional in the draft, required here: verifiers refresh by it).
        let Value::Map(mut entries) = good.to_cbor().unwrap() else { panic!("a map") };
        entries.retain(|(k, _)| k != &Value::Integer(65534.into()));
        let payload = cbor::encode(ObjectType::StatusList, &Value::Map(entries)).unwrap();
        assert!(matches!(
            StatusListClaims::from_payload(&payload),
            Err(Error::MissingClaim { claim: "ttl", .. })
        ));

        // Zero, or longer than the list lives: refused when decoding and when signing.
        for bad in [claims(1000, 1600, 0), claims(1000, 1600, 601)] {
            let payload = cbor::encode(ObjectType::StatusList, &bad.to_cbor().unwrap()).unwrap();
            let err = StatusListClaims::from_payload(&payload).unwrap_err();
            assert!(matches!(err, Error::InvalidClaim { claim: "ttl", .. }), "{err:?}");
            assert!(err.to_string().contains("exp - iat (600)"), "{err}");
            assert!(matches!(bad.sign(&Unused::new()), Err(Error::InvalidClaim { claim: "ttl", .. })));
        }
    }

    #[test]
    fn the_zlib_stream_must_end_the_data_and_cover_the_minimum() {
        let compressed = StatusBits::with_capacity(0).compress().unwrap();
        assert!(StatusBits::decompress(&compressed).is_ok());
        for cut in [1, 4, 5] {
            let truncated = &compressed[..compressed.len() - cut];
            assert!(matches!(StatusBits::decompress(truncated), Err(Error::InvalidClaim { .. })), "{cut}");
        }
        let trailing = [&compressed[..], &[0]].concat();
        assert!(matches!(StatusBits::decompress(&trailing), Err(Error::StatusListTrailingData { extra: 1 })));
        let short = StatusBits { bytes: vec![0; 127] }.compress().unwrap();
        assert!(matches!(
            StatusBits::decompress(&short),
            Err(Error::StatusListTooShort { entries: 1016, minimum: MIN_STATUS_ENTRIES })
        ));
    }
}
