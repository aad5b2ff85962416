//! Cedar policy: how a warrant becomes a Cedar request, and the evaluation of a policy set.
//!
//! Entity types live in the `Warrant` namespace:
//! - `Warrant::Principal::"<grant sub>"` with the grant's entity attributes, member of
//! - `Warrant::Group::"<name>"` for each of the grant's groups;
//! - `Warrant::Action::"<warrant action>"` and `Warrant::Resource::"<warrant resource>"`.
//!
//! The context record is described in docs/FORMAT.md ("Policy evaluation").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    AuthorizationError, Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicyId, PolicySet, Request, RestrictedExpression,
};
use warrant_attestation::{Assurance, AttributeValue, DeviceFacts};

use crate::context_fields::ContextFields;
use crate::grant::GrantClaims;
use crate::Error;

/// Which policy set is being evaluated, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PolicySource {
    /// The policy carried in the grant.
    Grant,
    /// The verifier's own policy.
    Local,
}

impl PolicySource {
    fn name(self) -> &'static str {
        match self {
            PolicySource::Grant => "grant",
            PolicySource::Local => "local",
        }
    }
}

/// Parses a Cedar policy set.
pub(crate) fn parse(source: PolicySource, text: &str) -> Result<PolicySet, Error> {
    PolicySet::from_str(text)
        .map_err(|e| Error::PolicyInvalid { which: source.name(), reason: e.to_string() })
}

/// Checks that `text` is a Cedar policy set this verifier can evaluate (for issuers, before
/// they sign it into a grant).
pub fn validate_policy(text: &str) -> Result<(), Error> {
    parse(PolicySource::Grant, text).map(|_| ())
}

/// The entity type names of the `Warrant` namespace, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct EntityTypes {
    principal: EntityTypeName,
    group: EntityTypeName,
    action: EntityTypeName,
    resource: EntityTypeName,
}

impl EntityTypes {
    pub(crate) fn new() -> Result<Self, Error> {
        let name = |n: &str| {
            EntityTypeName::from_str(n)
                .map_err(|e| Error::PolicyInvalid { which: "built-in", reason: e.to_string() })
        };
        Ok(Self {
            principal: name("Warrant::Principal")?,
            group: name("Warrant::Group")?,
            action: name("Warrant::Action")?,
            resource: name("Warrant::Resource")?,
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// The principal of a grant as Cedar sees it; built once per grant.
#[derive(Debug, Clone)]
pub(crate) struct PrincipalEntities {
    pub uid: EntityUid,
    pub entities: Entities,
}

impl PrincipalEntities {
    pub(crate) fn of_grant(types: &EntityTypes, grant: &GrantClaims) -> Result<Self, Error> {
        let invalid =
            |e: &dyn std::fmt::Display| Error::PolicyInvalid { which: "grant", reason: e.to_string() };
        let uid = EntityTypes::uid(&types.principal, &grant.principal);
        let attrs: HashMap<String, RestrictedExpression> =
            grant.entity.attributes.iter().map(|(k, v)| (k.clone(), expr(v))).collect();
        let parents: HashSet<EntityUid> =
            grant.entity.groups.iter().map(|g| EntityTypes::uid(&types.group, g)).collect();
        let principal = Entity::new(uid.clone(), attrs, parents).map_err(|e| invalid(&e))?;
        let entities = Entities::from_entities([principal], None).map_err(|e| invalid(&e))?;
        Ok(Self { uid, entities })
    }
}

fn expr(value: &AttributeValue) -> RestrictedExpression {
    match value {
        AttributeValue::Text(t) => RestrictedExpression::new_string(t.clone()),
        AttributeValue::Int(i) => RestrictedExpression::new_long(*i),
        AttributeValue::Bool(b) => RestrictedExpression::new_bool(*b),
    }
}

fn record(
    fields: impl IntoIterator<Item = (String, RestrictedExpression)>,
) -> Result<RestrictedExpression, Error> {
    RestrictedExpression::new_record(fields)
        .map_err(|e| Error::PolicyInvalid { which: "context", reason: e.to_string() })
}

fn attribute_record(map: &BTreeMap<String, AttributeValue>) -> Result<RestrictedExpression, Error> {
    record(map.iter().map(|(k, v)| (k.clone(), expr(v))))
}

/// Everything a policy decision is about.
pub(crate) struct PolicyInput<'a> {
    pub principal: &'a PrincipalEntities,
    pub action: &'a str,
    pub resource: &'a str,
    pub method: &'a str,
    pub target: &'a str,
    pub audience: &'a str,
    pub claims: &'a BTreeMap<String, AttributeValue>,
    pub device: &'a DeviceFacts,
    pub now: u64,
    pub issued_at: u64,
    pub expires_at: u64,
    pub authority: &'a str,
}

impl PolicyInput<'_> {
    /// A digest of everything the decision depends on besides the policies and entities
    /// (which the grant digest stands for): the action, the resource and every context value
    /// that [`PolicyRequest::new`] builds for `fields`. Cedar evaluation is deterministic, so
    /// equal keys under the same grant and local policy mean equal decisions.
    pub(crate) fn decision_key(&self, grant_digest: &[u8; 32], fields: ContextFields) -> [u8; 32] {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut put = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        put(grant_digest);
        put(self.action.as_bytes());
        put(self.resource.as_bytes());
        // Each field in the order `new` reads it, tagged so absent fields cannot alias.
        let attributes = |put: &mut dyn FnMut(&[u8]), map: &BTreeMap<String, AttributeValue>| {
            put(&(map.len() as u64).to_be_bytes());
            for (k, v) in map {
                put(k.as_bytes());
                // A type tag, then the value: "1" the text and 1 the integer differ.
                match v {
                    AttributeValue::Text(t) => {
                        put(&[0]);
                        put(t.as_bytes());
                    }
                    AttributeValue::Int(i) => {
                        put(&[1]);
                        put(&i.to_be_bytes());
                    }
                    AttributeValue::Bool(b) => put(&[2, u8::from(*b)]),
                }
            }
        };
        if fields.contains("request") {
            put(b"request");
            put(self.method.as_bytes());
            put(self.target.as_bytes());
        }
        if fields.contains("audience") {
            put(b"audience");
            put(self.audience.as_bytes());
        }
        if fields.contains("authority") {
            put(b"authority");
            put(self.authority.as_bytes());
        }
        if fields.contains("claims") {
            put(b"claims");
            attributes(&mut put, self.claims);
        }
        if fields.contains("device") {
            put(b"device");
            put(self.device.backend.as_str().as_bytes());
            attributes(&mut put, &self.device.properties);
        }
        if fields.contains("time") {
            put(b"time");
            put(&self.now.to_be_bytes());
        }
        if fields.contains("warrant") {
            put(b"warrant");
            put(&self.issued_at.to_be_bytes());
            put(&self.expires_at.to_be_bytes());
        }
        let digest = h.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

/// A Cedar request built from a [`PolicyInput`], evaluated against one or more policy sets.
pub(crate) struct PolicyRequest {
    request: Request,
    action: String,
    resource: String,
}

impl PolicyRequest {
    /// Builds the request with the context `fields` the policies read. Cedar spends about half
    /// a microsecond per context value on every verification, so ids and digests that only
    /// the verifier itself compares are never in the context, and fields no policy reads are
    /// not built.
    pub(crate) fn new(
        types: &EntityTypes,
        input: &PolicyInput<'_>,
        fields: ContextFields,
    ) -> Result<Self, Error> {
        let long = |v: u64| RestrictedExpression::new_long(i64::try_from(v).unwrap_or(i64::MAX));
        let text = |v: &str| RestrictedExpression::new_string(v.to_owned());
        let mut pairs = Vec::with_capacity(7);
        if fields.contains("request") {
            let request = record([
                ("method".to_owned(), text(input.method)),
                ("target".to_owned(), text(input.target)),
            ])?;
            pairs.push(("request".to_owned(), request));
        }
        if fields.contains("audience") {
            pairs.push(("audience".to_owned(), text(input.audience)));
        }
        if fields.contains("authority") {
            pairs.push(("authority".to_owned(), text(input.authority)));
        }
        if fields.contains("claims") {
            pairs.push(("claims".to_owned(), attribute_record(input.claims)?));
        }
        if fields.contains("device") {
            // Both derive from the backend, which the decision key covers.
            let assurance = input.device.backend.assurance();
            let device = record([
                ("backend".to_owned(), text(input.device.backend.as_str())),
                ("assurance".to_owned(), text(assurance.as_str())),
                ("hardware".to_owned(), RestrictedExpression::new_bool(assurance == Assurance::Attested)),
                ("properties".to_owned(), attribute_record(&input.device.properties)?),
            ])?;
            pairs.push(("device".to_owned(), device));
        }
        if fields.contains("time") {
            pairs.push(("time".to_owned(), long(input.now)));
        }
        if fields.contains("warrant") {
            let warrant = record([
                ("issued_at".to_owned(), long(input.issued_at)),
                ("expires_at".to_owned(), long(input.expires_at)),
                ("lifetime".to_owned(), long(input.expires_at.saturating_sub(input.issued_at))),
            ])?;
            pairs.push(("warrant".to_owned(), warrant));
        }
        let context = Context::from_pairs(pairs)
            .map_err(|e| Error::PolicyInvalid { which: "context", reason: e.to_string() })?;
        let request = Request::new(
            input.principal.uid.clone(),
            EntityTypes::uid(&types.action, input.action),
            EntityTypes::uid(&types.resource, input.resource),
            context,
            None,
        )
        .map_err(|e| Error::PolicyInvalid { which: "context", reason: e.to_string() })?;
        Ok(Self { request, action: input.action.to_owned(), resource: input.resource.to_owned() })
    }

    /// Evaluates `policies`: only an explicit permit with no evaluation error in any policy
    /// allows. Cedar skips a policy whose evaluation errors and decides on the rest, so a
    /// `forbid ... unless { context.claims.approved }` would be dodged by leaving the claim
    /// out; here that error is itself the denial.
    pub(crate) fn authorize(
        &self,
        source: PolicySource,
        policies: &PolicySet,
        entities: &Entities,
    ) -> Result<(), Error> {
        let response = Authorizer::new().is_authorized(&self.request, policies, entities);
        let diagnostics = response.diagnostics();
        // Name policies by their @id annotation where they have one, else by Cedar's id.
        let name = |id: &PolicyId| match policies.policy(id).and_then(|p| p.annotation("id")) {
            Some(name) => name.to_owned(),
            None => id.to_string(),
        };
        let errors: Vec<String> = diagnostics
            .errors()
            .map(|AuthorizationError::PolicyEvaluationError(e)| {
                format!("policy {}: {}", name(e.policy_id()), e.inner())
            })
            .collect();
        if !errors.is_empty() {
            return Err(Error::PolicyEvaluationFailed {
                which: source.name(),
                action: self.action.clone(),
                resource: self.resource.clone(),
                errors: errors.join("; "),
            });
        }
        if response.decision() == Decision::Allow {
            return Ok(());
        }
        let forbidding: Vec<String> = diagnostics.reason().map(name).collect();
        let reason = if forbidding.is_empty() {
            "no policy permits".to_owned()
        } else {
            format!("forbidden by {}", forbidding.join(", "))
        };
        Err(Error::PolicyDenied {
            which: source.name(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            reason,
        })
    }
}
