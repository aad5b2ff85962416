//! The warrant: one operation, signed by the device key that a grant confirms.

use std::collections::BTreeMap;

use ciborium::Value;
use warrant_attestation::{AttributeValue, Evidence};

use crate::cbor::{self, Claims, Key};
use crate::cwt::{self, MAX_TEXT};
use crate::digest::sha256;
use crate::request::RequestBinding;
use crate::{attributes, cose, Error, ObjectType, Signer};

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
    pub evidence: Evidence,
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
    pub fn evidence_binding(&self) -> [u8; 32] {
        let encoded = cbor::encode(ObjectType::Warrant, &self.to_cbor_parts(false)).unwrap_or_default();
        sha256(&encoded)
    }

    /// Decodes a claims set strictly.
    pub fn from_cbor(value: Value) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::Warrant;
        let mut c = Claims::open(O, value, "claims")?;
        let issuer = c.text(cwt::ISS, MAX_TEXT)?;
        let audience = match c.required(cwt::AUD)? {
            Value::Text(t) if !t.is_empty() && t.len() <= MAX_TEXT => t,
            _ => return Err(c.invalid(cwt::AUD, "must be exactly one audience, as non-empty text")),
        };
        let expires_at = c.uint(cwt::EXP)?;
        let issued_at = c.uint(cwt::IAT)?;
        let id = c.fixed_bytes::<16>(cwt::CTI)?;
        let nonce = match c.take(cwt::EAT_NONCE) {
            None => None,
            Some(Value::Bytes(n)) if NONCE_LEN.contains(&n.len()) => Some(n),
            Some(_) => return Err(c.invalid(cwt::EAT_NONCE, "must be 8 to 64 bytes")),
        };
        let grant = c.bytes(GRANT, ObjectType::Grant.size_limit())?;
        let action = c.text(ACTION, MAX_TEXT)?;
        let context = attributes::from_cbor(O, "context", c.required(CONTEXT)?)?;
        let request = RequestBinding::from_cbor(O, c.required(REQUEST)?)?;
        let resource = c.text(RESOURCE, MAX_TEXT)?;
        let evidence = Evidence::from_cbor(c.required(EVIDENCE)?)?;
        c.finish()?;
        if expires_at <= issued_at {
            return Err(Error::InvalidClaim { object: O, claim: "exp", reason: "must be after iat".into() });
        }
        Ok(Self {
            issuer,
            audience,
            issued_at,
            expires_at,
            id,
            nonce,
            action,
            resource,
            request,
            context,
            grant,
            evidence,
        })
    }

    /// Signs the warrant with the device key.
    pub fn sign(&self, device: &dyn Signer) -> Result<Vec<u8>, Error> {
        let payload = cbor::encode(ObjectType::Warrant, &self.to_cbor())?;
        cose::sign(ObjectType::Warrant, device, payload)
    }
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
        let value = cbor::decode(ObjectType::Warrant, &signed.payload, ObjectType::Warrant.size_limit())?;
        let claims = WarrantClaims::from_cbor(value)?;
        Ok(Self { signed, claims })
    }
}
