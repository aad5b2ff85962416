//! The warrant: one operation, signed by the device key that a grant confirms.

use std::collections::BTreeMap;

use ciborium::Value;
use warrant_attestation::{AttestationError, AttributeValue, WarrantEvidence};

use crate::cbor::{self, Key, Reader};
use crate::cwt::{self, MAX_TEXT};
use crate::digest::sha256;
use crate::request::RequestBinding;
use crate::signer::Signer;
use crate::{attributes, cose, Error, ObjectType};

const ACTION: Key = Key::Text("action");
const RESOURCE: Key = Key::Text("resource");
const REQUEST: Key = Key::Text("request");
const CONTEXT: Key = Key::Text("context");
const GRANT: Key = Key::Text("grant");
const EVIDENCE: Key = Key::Text("evidence");

/// Shortest and longest verifier nonce (EAT: 8 to 64 bytes).
const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=64;

/// The claims of a warrant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarrantClaims {
    /// The principal asking (`iss`); must equal the grant's `sub`.
    pub issuer: String,
    /// The one verifier this warrant is for (`aud`).
    pub audience: String,
    /// `iat`, seconds since the epoch.
    pub issued_at: u64,
    /// `exp`.
    pub expires_at: u64,
    /// Warrant id (`cti`), 16 random bytes; refused the second time.
    pub id: [u8; 16],
    /// Nonce the verifier issued (`eat_nonce`), if it issues them.
    pub nonce: Option<Vec<u8>>,
    /// Cedar action id, e.g. `deploy`.
    pub action: String,
    /// Cedar resource id, e.g. `prod/api`.
    pub resource: String,
    /// The bound request.
    pub request: RequestBinding,
    /// Free context claims (e.g. CI job and step), visible to policy as `context.claims`.
    pub context: BTreeMap<String, AttributeValue>,
    /// The grant, exactly as the authority signed it.
    pub grant: Vec<u8>,
    /// The device's fresh evidence.
    pub evidence: WarrantEvidence,
}

impl WarrantClaims {
    fn to_cbor_parts(&self, with_evidence: bool) -> Value {
        let mut entries = vec![
            (cwt::ISS, Value::Text(self.issuer.clone())),
            (cwt::AUD, Value::Text(self.audience.clone())),
            (cwt::EXP, Value::Integer(self.expires_at.into())),
            (cwt::IAT, Value::Integer(self.issued_at.into())),
            (cwt::CTI, Value::Bytes(self.id.to_vec())),
            (GRANT, Value::Bytes(self.grant.clone())),
            (ACTION, Value::Text(self.action.clone())),
            (CONTEXT, attributes::to_cbor(&self.context)),
            (REQUEST, self.request.to_cbor()),
            (RESOURCE, Value::Text(self.resource.clone())),
        ];
        if let Some(nonce) = &self.nonce {
            entries.push((cwt::EAT_NONCE, Value::Bytes(nonce.clone())));
        }
        if with_evidence {
            entries.push((EVIDENCE, self.evidence.to_cbor()));
        }
        cbor::map_of(entries)
    }

    /// Encodes the claims as a CWT claims set.
    pub fn to_cbor(&self) -> Value {
        self.to_cbor_parts(true)
    }

    /// The digest that hardware evidence binds to this operation: SHA-256 of the claims set
    /// without its `evidence` entry.
    pub fn evidence_binding(&self) -> Result<[u8; 32], Error> {
        cbor::encode(ObjectType::Warrant, &self.to_cbor_parts(false)).map(|encoded| sha256(&encoded))
    }

    /// Decodes a claims set from its encoding, strictly.
    pub fn from_payload(payload: &[u8]) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::Warrant;
        let mut r = Reader::new(O, payload, O.size_limit())?;
        let mut keys = r.map("claims")?;
        let mut c = WarrantParts::default();
        while let Some(key) = keys.next(&mut r)? {
            match key {
                k if cwt::ISS.is(k) => c.issuer = Some(r.text(cwt::ISS.name(), MAX_TEXT)?.to_owned()),
                k if cwt::AUD.is(k) => {
                    let aud = r.text(cwt::AUD.name(), MAX_TEXT).map_err(|_| {
                        r.invalid(cwt::AUD.name(), "must be exactly one audience, as non-empty text")
                    })?;
                    c.audience = Some(aud.to_owned());
                }
                k if cwt::EXP.is(k) => c.expires_at = Some(r.uint(cwt::EXP.name())?),
                k if cwt::IAT.is(k) => c.issued_at = Some(r.uint(cwt::IAT.name())?),
                k if cwt::CTI.is(k) => c.id = Some(r.fixed_bytes::<16>(cwt::CTI.name())?),
                k if cwt::EAT_NONCE.is(k) => {
                    let nonce = r.bytes(cwt::EAT_NONCE.name())?;
                    if !NONCE_LEN.contains(&nonce.len()) {
                        return Err(r.invalid(cwt::EAT_NONCE.name(), "must be 8 to 64 bytes"));
                    }
                    c.nonce = Some(nonce.to_vec());
                }
                k if GRANT.is(k) => {
                    let grant = r.bytes(GRANT.name())?;
                    if grant.len() > ObjectType::Grant.size_limit() {
                        return Err(r.invalid(GRANT.name(), "larger than a grant may be"));
                    }
                    c.grant = Some(grant.to_vec());
                }
                k if ACTION.is(k) => c.action = Some(r.text(ACTION.name(), MAX_TEXT)?.to_owned()),
                k if CONTEXT.is(k) => c.context = Some(attributes::read(&mut r, CONTEXT.name())?),
                k if REQUEST.is(k) => c.request = Some(RequestBinding::read(&mut r)?),
                k if EVIDENCE.is(k) => c.evidence = Some(read_evidence(&mut r, WarrantEvidence::from_cbor)?),
                k if RESOURCE.is(k) => c.resource = Some(r.text(RESOURCE.name(), MAX_TEXT)?.to_owned()),
                other => return Err(cbor::unknown(O, other)),
            }
        }
        r.finish()?;
        let claims = Self {
            issuer: cbor::required(O, cwt::ISS.name(), c.issuer)?,
            audience: cbor::required(O, cwt::AUD.name(), c.audience)?,
            issued_at: cbor::required(O, cwt::IAT.name(), c.issued_at)?,
            expires_at: cbor::required(O, cwt::EXP.name(), c.expires_at)?,
            id: cbor::required(O, cwt::CTI.name(), c.id)?,
            nonce: c.nonce,
            action: cbor::required(O, ACTION.name(), c.action)?,
            resource: cbor::required(O, RESOURCE.name(), c.resource)?,
            request: cbor::required(O, REQUEST.name(), c.request)?,
            context: cbor::required(O, CONTEXT.name(), c.context)?,
            grant: cbor::required(O, GRANT.name(), c.grant)?,
            evidence: cbor::required(O, EVIDENCE.name(), c.evidence)?,
        };
        if claims.expires_at <= claims.issued_at {
            return Err(Error::InvalidClaim { object: O, claim: "exp", reason: "must be after iat".into() });
        }
        Ok(claims)
    }

    /// Signs the warrant with the device key. Refuses claims a verifier would refuse for
    /// their form: a request target it does not accept, empty context names or values.
    pub fn sign(&self, device: &dyn Signer) -> Result<Vec<u8>, Error> {
        self.request.check_signable()?;
        attributes::check_non_empty(ObjectType::Warrant, CONTEXT.name(), &self.context)?;
        let payload = cbor::encode(ObjectType::Warrant, &self.to_cbor())?;
        cose::sign(ObjectType::Warrant, device, payload)
    }
}

/// Warrant claims as they are read, before the required ones are checked.
#[derive(Default)]
struct WarrantParts {
    issuer: Option<String>,
    audience: Option<String>,
    issued_at: Option<u64>,
    expires_at: Option<u64>,
    id: Option<[u8; 16]>,
    nonce: Option<Vec<u8>>,
    action: Option<String>,
    resource: Option<String>,
    request: Option<RequestBinding>,
    context: Option<BTreeMap<String, AttributeValue>>,
    grant: Option<Vec<u8>>,
    evidence: Option<WarrantEvidence>,
}

/// Reads device evidence: its encoding is checked by the strict reader, its structure (and
/// that its kind belongs in this object) by the attestation crate's `decode`.
pub(crate) fn read_evidence<E>(
    r: &mut Reader<'_>,
    decode: fn(Value) -> Result<E, AttestationError>,
) -> Result<E, Error> {
    let raw = r.item()?;
    let value: Value = ciborium::de::from_reader(raw)
        .map_err(|e| Error::Malformed { object: r.object(), reason: format!("evidence: {e}") })?;
    Ok(decode(value)?)
}

/// A warrant decoded from its bytes, with the signed envelope kept for verification.
#[derive(Debug, Clone)]
pub(crate) struct DecodedWarrant {
    pub signed: cose::SignedObject,
    pub claims: WarrantClaims,
}

impl DecodedWarrant {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let signed = cose::decode(ObjectType::Warrant, bytes)?;
        let claims = WarrantClaims::from_payload(&signed.payload)?;
        Ok(Self { signed, claims })
    }
}
