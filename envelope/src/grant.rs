//! The grant: an authority's signed capability for one principal's device key, carrying the
//! Cedar policy under which the device's warrants are admissible.

use std::collections::BTreeMap;

use ciborium::Value;
use warrant_attestation::{AttributeValue, BackendKind, DeviceFacts, P256PublicKey};

use crate::cbor::{self, Claims, Key};
use crate::cwt::{self, MAX_TEXT};
use crate::{attributes, cose, keys, Error, ObjectType, Signer};

const DEVICE: Key = Key::Text("device");
const DEVICE_BACKEND: Key = Key::Text("backend");
const DEVICE_PROPS: Key = Key::Text("props");
const ENTITY: Key = Key::Text("entity");
const ENTITY_GROUPS: Key = Key::Text("groups");
const ENTITY_ATTRS: Key = Key::Text("attrs");
const POLICY: Key = Key::Text("policy");
const MAX_TTL: Key = Key::Text("max_ttl");
const STATUS_LIST_REF: Key = Key::Text("status_list");
const STATUS_IDX: Key = Key::Text("idx");
const STATUS_URI: Key = Key::Text("uri");

/// Longest Cedar policy text a grant may carry.
pub const MAX_POLICY_BYTES: usize = 8 * 1024;

/// The principal's entity data for policy: groups it belongs to and its attributes, as an
/// identity provider knows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntityData {
    /// Groups (Cedar parents `Warrant::Group::"<name>"`).
    pub groups: Vec<String>,
    /// Attributes (Cedar `principal.<name>`).
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// Where a grant's revocation bit lives: a Token Status List reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReference {
    /// The status list's URI (its `sub`).
    pub uri: String,
    /// This grant's index in the list.
    pub index: u64,
}

/// The claims of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantClaims {
    /// The authority's id (`iss`).
    pub issuer: String,
    /// The principal (`sub`).
    pub principal: String,
    /// The grant id (`cti`), 16 random bytes.
    pub id: [u8; 16],
    /// `iat`, seconds since the epoch.
    pub issued_at: u64,
    /// `nbf`.
    pub not_before: u64,
    /// `exp`.
    pub expires_at: u64,
    /// The device's public key (`cnf`): only it may sign warrants under this grant.
    pub device_key: P256PublicKey,
    /// What the authority appraised about the device at enrollment.
    pub device: DeviceFacts,
    /// The principal's groups and attributes.
    pub entity: EntityData,
    /// Cedar policy set (text) under which warrants are admissible.
    pub policy: String,
    /// Longest lifetime (exp - iat) of a warrant under this grant, in seconds.
    pub max_warrant_lifetime: u64,
    /// Where the revocation bit is.
    pub status: StatusReference,
}

impl GrantClaims {
    /// Encodes the claims as a CWT claims set.
    pub fn to_cbor(&self) -> Value {
        let device = cbor::map_of([
            (DEVICE_BACKEND, Value::Text(self.device.backend.as_str().into())),
            (DEVICE_PROPS, attributes::to_cbor(&self.device.properties)),
        ]);
        let entity = cbor::map_of([
            (ENTITY_GROUPS, attributes::names_to_cbor(&self.entity.groups)),
            (ENTITY_ATTRS, attributes::to_cbor(&self.entity.attributes)),
        ]);
        let status = cbor::map_of([(
            STATUS_LIST_REF,
            cbor::map_of([
                (STATUS_IDX, Value::Integer(self.status.index.into())),
                (STATUS_URI, Value::Text(self.status.uri.clone())),
            ]),
        )]);
        cbor::map_of([
            (cwt::ISS, Value::Text(self.issuer.clone())),
            (cwt::SUB, Value::Text(self.principal.clone())),
            (cwt::EXP, Value::Integer(self.expires_at.into())),
            (cwt::NBF, Value::Integer(self.not_before.into())),
            (cwt::IAT, Value::Integer(self.issued_at.into())),
            (cwt::CTI, Value::Bytes(self.id.to_vec())),
            (cwt::CNF, cbor::map_of([(cwt::CNF_COSE_KEY, keys::cose_key(&self.device_key))])),
            (cwt::STATUS, status),
            (DEVICE, device),
            (ENTITY, entity),
            (POLICY, Value::Text(self.policy.clone())),
            (MAX_TTL, Value::Integer(self.max_warrant_lifetime.into())),
        ])
    }

    /// Decodes a claims set strictly.
    pub fn from_cbor(value: Value) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::Grant;
        let mut c = Claims::open(O, value, "claims")?;
        let issuer = c.text(cwt::ISS, MAX_TEXT)?;
        let principal = c.text(cwt::SUB, MAX_TEXT)?;
        let expires_at = c.uint(cwt::EXP)?;
        let not_before = c.uint(cwt::NBF)?;
        let issued_at = c.uint(cwt::IAT)?;
        let id = c.fixed_bytes::<16>(cwt::CTI)?;
        let mut cnf = Claims::open(O, c.required(cwt::CNF)?, "cnf")?;
        let device_key = keys::from_cose_key(O, cnf.required(cwt::CNF_COSE_KEY)?)?;
        cnf.finish()?;
        let mut status = Claims::open(O, c.required(cwt::STATUS)?, "status")?;
        let mut status_ref = Claims::open(O, status.required(STATUS_LIST_REF)?, "status_list")?;
        let status = {
            let index = status_ref.uint(STATUS_IDX)?;
            let uri = status_ref.text(STATUS_URI, MAX_TEXT)?;
            status_ref.finish()?;
            status.finish()?;
            StatusReference { uri, index }
        };
        let mut device = Claims::open(O, c.required(DEVICE)?, "device")?;
        let backend_name = device.text(DEVICE_BACKEND, MAX_TEXT)?;
        let backend = BackendKind::parse(&backend_name)
            .ok_or_else(|| device.invalid(DEVICE_BACKEND, format!("unknown backend {backend_name:?}")))?;
        let properties = attributes::from_cbor(O, "device.props", device.required(DEVICE_PROPS)?)?;
        device.finish()?;
        let mut entity = Claims::open(O, c.required(ENTITY)?, "entity")?;
        let groups = attributes::names_from_cbor(O, "entity.groups", entity.required(ENTITY_GROUPS)?)?;
        let entity_attrs = attributes::from_cbor(O, "entity.attrs", entity.required(ENTITY_ATTRS)?)?;
        entity.finish()?;
        let policy = c.text(POLICY, MAX_POLICY_BYTES)?;
        let max_warrant_lifetime = c.uint(MAX_TTL)?;
        c.finish()?;
        if not_before >= expires_at {
            return Err(Error::InvalidClaim { object: O, claim: "exp", reason: "must be after nbf".into() });
        }
        Ok(Self {
            issuer,
            principal,
            id,
            issued_at,
            not_before,
            expires_at,
            device_key,
            device: DeviceFacts { backend, properties },
            entity: EntityData { groups, attributes: entity_attrs },
            policy,
            max_warrant_lifetime,
            status,
        })
    }

    /// Signs the grant with the authority's issuance key.
    pub fn sign(&self, authority: &dyn Signer) -> Result<Vec<u8>, Error> {
        let payload = cbor::encode(ObjectType::Grant, &self.to_cbor())?;
        cose::sign(ObjectType::Grant, authority, payload)
    }
}

/// A grant decoded from its bytes, with the signed envelope kept for verification.
#[derive(Debug, Clone)]
pub(crate) struct DecodedGrant {
    pub signed: cose::SignedObject,
    pub claims: GrantClaims,
}

impl DecodedGrant {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let signed = cose::decode(ObjectType::Grant, bytes)?;
        let value = cbor::decode(ObjectType::Grant, &signed.payload, ObjectType::Grant.size_limit())?;
        let claims = GrantClaims::from_cbor(value)?;
        Ok(Self { signed, claims })
    }
}
