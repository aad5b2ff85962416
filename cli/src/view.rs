//! JSON views of keys, objects and verification results, for printing.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use warrant_attestation::{AttributeValue, DeviceFacts, EvidenceKind, P256PublicKey};
use warrant_envelope::issue::GrantClaims;
use warrant_envelope::verify::VerifiedWarrant;
use warrant_envelope::{thumbprint, Claims, Inspected};

fn attributes(map: &BTreeMap<String, AttributeValue>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| {
                let v = match v {
                    AttributeValue::Text(t) => json!(t),
                    AttributeValue::Int(i) => json!(i),
                    AttributeValue::Bool(b) => json!(b),
                };
                (k.clone(), v)
            })
            .collect::<Map<_, _>>(),
    )
}

fn device(facts: &DeviceFacts) -> Value {
    json!({"backend": facts.backend.as_str(), "properties": attributes(&facts.properties)})
}

fn public_key(key: &P256PublicKey) -> Value {
    json!({"kid": hex::encode(thumbprint(key)), "x": hex::encode(key.x()), "y": hex::encode(key.y())})
}

fn evidence(kind: EvidenceKind) -> Value {
    json!({"kind": kind.as_str()})
}

/// A key store entry.
pub(super) fn key(key: &warrant_api::Key) -> Value {
    serde_json::to_value(key).unwrap_or_default()
}

fn grant(g: &GrantClaims) -> Value {
    json!({
        "iss": g.issuer,
        "sub": g.principal,
        "cti": hex::encode(g.id),
        "iat": g.issued_at,
        "nbf": g.not_before,
        "exp": g.expires_at,
        "cnf": public_key(&g.device_key),
        "device": device(&g.device),
        "entity": {"groups": g.entity.groups, "attrs": attributes(&g.entity.attributes)},
        "policy": g.policy,
        "max_ttl": g.max_warrant_lifetime,
        "status": {"uri": g.status.uri, "idx": g.status.index},
    })
}

/// A decoded (unverified) object.
pub(super) fn inspected(i: &Inspected) -> Value {
    let claims = match &i.claims {
        Claims::Grant(g) => grant(g),
        Claims::Warrant(w, g) => json!({
            "iss": w.issuer,
            "aud": w.audience,
            "iat": w.issued_at,
            "exp": w.expires_at,
            "cti": hex::encode(w.id),
            "nonce": w.nonce.as_ref().map(hex::encode),
            "action": w.action,
            "resource": w.resource,
            "request": {
                "method": w.request.method,
                "target": w.request.target,
                "body_sha256": hex::encode(w.request.body_sha256),
            },
            "context": attributes(&w.context),
            "evidence": evidence(w.evidence.kind()),
            "grant": grant(g),
        }),
        Claims::StatusList(s) => {
            let revoked: Vec<u64> =
                (0..s.bits.len()).filter(|i| s.bits.is_revoked(*i).unwrap_or(false)).collect();
            json!({
                "iss": s.issuer,
                "sub": s.uri,
                "seq": s.sequence,
                "prev": hex::encode(s.previous),
                "iat": s.issued_at,
                "exp": s.expires_at,
                "entries": s.bits.len(),
                "revoked": revoked,
            })
        }
        Claims::EnrollmentRequest(e) => json!({
            "sub": e.principal,
            "iat": e.issued_at,
            "cnf": public_key(&e.device_key),
            "challenge": hex::encode(e.challenge),
            "evidence": evidence(e.evidence.kind()),
        }),
    };
    json!({
        "object": i.object.to_string(),
        "typ": i.object.media_type(),
        "size": i.size,
        "kid": hex::encode(i.kid),
        "verified": false,
        "claims": claims,
    })
}

/// A successful verification.
pub(super) fn verified(v: &VerifiedWarrant) -> Value {
    json!({
        "accepted": true,
        "warrant_id": hex::encode(v.warrant_id),
        "grant_id": hex::encode(v.grant_id),
        "authority": v.authority,
        "principal": v.principal,
        "groups": v.groups,
        "action": v.action,
        "resource": v.resource,
        "audience": v.audience,
        "issued_at": v.issued_at,
        "expires_at": v.expires_at,
        "context": attributes(&v.context),
        "device": device(&v.device),
        "status_sequence": v.status_sequence,
    })
}
