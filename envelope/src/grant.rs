//! The grant: an authority's signed capability for one principal's device key, carrying the
//! Cedar policy under which the device's warrants are admissible.

use std::collections::BTreeMap;

use ciborium::Value;
use warrant_attestation::{AttributeValue, BackendKind, DeviceFacts, P256PublicKey};

use crate::cbor::{self, Key, Reader};
use crate::cwt::{self, MAX_TEXT};
use crate::signer::Signer;
use crate::{attributes, cose, keys, Error, ObjectType};

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

    /// Decodes a claims set from its encoding, strictly.
    pub fn from_payload(payload: &[u8]) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::Grant;
        let mut r = Reader::new(O, payload, O.size_limit())?;
        let mut keys = r.map("claims")?;
        let mut c = GrantParts::default();
        while let Some(key) = keys.next(&mut r)? {
            match key {
                k if cwt::ISS.is(k) => c.issuer = Some(r.text(cwt::ISS.name(), MAX_TEXT)?.to_owned()),
                k if cwt::SUB.is(k) => c.principal = Some(r.text(cwt::SUB.name(), MAX_TEXT)?.to_owned()),
                k if cwt::EXP.is(k) => c.expires_at = Some(r.uint(cwt::EXP.name())?),
                k if cwt::NBF.is(k) => c.not_before = Some(r.uint(cwt::NBF.name())?),
                k if cwt::IAT.is(k) => c.issued_at = Some(r.uint(cwt::IAT.name())?),
                k if cwt::CTI.is(k) => c.id = Some(r.fixed_bytes::<16>(cwt::CTI.name())?),
                k if cwt::CNF.is(k) => c.device_key = Some(keys::read_cnf(&mut r)?),
                k if cwt::STATUS.is(k) => c.status = Some(read_status_reference(&mut r)?),
                k if DEVICE.is(k) => c.device = Some(read_device(&mut r)?),
                k if ENTITY.is(k) => c.entity = Some(read_entity(&mut r)?),
                k if POLICY.is(k) => c.policy = Some(r.text(POLICY.name(), MAX_POLICY_BYTES)?.to_owned()),
                k if MAX_TTL.is(k) => c.max_warrant_lifetime = Some(r.uint(MAX_TTL.name())?),
                other => return Err(cbor::unknown(O, other)),
            }
        }
        r.finish()?;
        let claims = Self {
            issuer: cbor::required(O, cwt::ISS.name(), c.issuer)?,
            principal: cbor::required(O, cwt::SUB.name(), c.principal)?,
            id: cbor::required(O, cwt::CTI.name(), c.id)?,
            issued_at: cbor::required(O, cwt::IAT.name(), c.issued_at)?,
            not_before: cbor::required(O, cwt::NBF.name(), c.not_before)?,
            expires_at: cbor::required(O, cwt::EXP.name(), c.expires_at)?,
            device_key: cbor::required(O, cwt::CNF.name(), c.device_key)?,
            device: cbor::required(O, DEVICE.name(), c.device)?,
            entity: cbor::required(O, ENTITY.name(), c.entity)?,
            policy: cbor::required(O, POLICY.name(), c.policy)?,
            max_warrant_lifetime: cbor::required(O, MAX_TTL.name(), c.max_warrant_lifetime)?,
            status: cbor::required(O, cwt::STATUS.name(), c.status)?,
        };
        if claims.not_before >= claims.expires_at {
            return Err(Error::InvalidClaim { object: O, claim: "exp", reason: "must be after nbf".into() });
        }
        Ok(claims)
    }

    /// Signs the grant with the authority's issuance key. Refuses empty attribute names or
    /// text values and empty group names, which decoders refuse.
    pub fn sign(&self, authority: &dyn Signer) -> Result<Vec<u8>, Error> {
        const O: ObjectType = ObjectType::Grant;
        attributes::check_non_empty(O, DEVICE_PROPS.name(), &self.device.properties)?;
        attributes::check_non_empty(O, ENTITY_ATTRS.name(), &self.entity.attributes)?;
        if self.entity.groups.iter().any(String::is_empty) {
            return Err(Error::EmptyText { object: O, claim: ENTITY_GROUPS.name() });
        }
        let payload = cbor::encode(ObjectType::Grant, &self.to_cbor())?;
        cose::sign(ObjectType::Grant, authority, payload)
    }
}

/// Grant claims as they are read, before the required ones are checked.
#[derive(Default)]
struct GrantParts {
    issuer: Option<String>,
    principal: Option<String>,
    id: Option<[u8; 16]>,
    issued_at: Option<u64>,
    not_before: Option<u64>,
    expires_at: Option<u64>,
    device_key: Option<P256PublicKey>,
    device: Option<DeviceFacts>,
    entity: Option<EntityData>,
    policy: Option<String>,
    max_warrant_lifetime: Option<u64>,
    status: Option<StatusReference>,
}

fn read_status_reference(r: &mut Reader<'_>) -> Result<StatusReference, Error> {
    let o = r.object();
    let mut outer = r.map(cwt::STATUS.name())?;
    let mut reference = None;
    while let Some(key) = outer.next(r)? {
        if !STATUS_LIST_REF.is(key) {
            return Err(cbor::unknown(o, key));
        }
        let mut inner = r.map(STATUS_LIST_REF.name())?;
        let (mut index, mut uri) = (None, None);
        while let Some(key) = inner.next(r)? {
            match key {
                k if STATUS_IDX.is(k) => index = Some(r.uint(STATUS_IDX.name())?),
                k if STATUS_URI.is(k) => uri = Some(r.text(STATUS_URI.name(), MAX_TEXT)?.to_owned()),
                other => return Err(cbor::unknown(o, other)),
            }
        }
        reference = Some(StatusReference {
            uri: cbor::required(o, STATUS_URI.name(), uri)?,
            index: cbor::required(o, STATUS_IDX.name(), index)?,
        });
    }
    cbor::required(o, STATUS_LIST_REF.name(), reference)
}

fn read_device(r: &mut Reader<'_>) -> Result<DeviceFacts, Error> {
    let o = r.object();
    let mut keys = r.map(DEVICE.name())?;
    let (mut backend, mut properties) = (None, None);
    while let Some(key) = keys.next(r)? {
        match key {
            k if DEVICE_BACKEND.is(k) => {
                let name = r.text(DEVICE_BACKEND.name(), MAX_TEXT)?;
                backend =
                    Some(BackendKind::parse(name).ok_or_else(|| {
                        r.invalid(DEVICE_BACKEND.name(), format!("unknown backend {name:?}"))
                    })?);
            }
            k if DEVICE_PROPS.is(k) => properties = Some(attributes::read(r, DEVICE_PROPS.name())?),
            other => return Err(cbor::unknown(o, other)),
        }
    }
    Ok(DeviceFacts {
        backend: cbor::required(o, DEVICE_BACKEND.name(), backend)?,
        properties: cbor::required(o, DEVICE_PROPS.name(), properties)?,
    })
}

fn read_entity(r: &mut Reader<'_>) -> Result<EntityData, Error> {
    let o = r.object();
    let mut keys = r.map(ENTITY.name())?;
    let (mut groups, mut attributes) = (None, None);
    while let Some(key) = keys.next(r)? {
        match key {
            k if ENTITY_GROUPS.is(k) => groups = Some(attributes::read_names(r, ENTITY_GROUPS.name())?),
            k if ENTITY_ATTRS.is(k) => attributes = Some(attributes::read(r, ENTITY_ATTRS.name())?),
            other => return Err(cbor::unknown(o, other)),
        }
    }
    Ok(EntityData {
        groups: cbor::required(o, ENTITY_GROUPS.name(), groups)?,
        attributes: cbor::required(o, ENTITY_ATTRS.name(), attributes)?,
    })
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
        let claims = GrantClaims::from_payload(&signed.payload)?;
        Ok(Self { signed, claims })
    }
}
