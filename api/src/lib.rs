//! warrantd's HTTP/JSON API (`/v1`): the request and response bodies, shared by `warrantd`
//! and its clients, where the daemon's socket is by default, and the trust file
//! (`GET /v1/authority/trust`). Binary objects (grants, warrants, enrollment requests, status
//! lists, evidence) travel as standard base64; digests, ids, nonces and challenges as hex.
//! docs/openapi.json describes the same shapes.
#![forbid(unsafe_code)]

mod error;
pub mod socket;
pub mod trust;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warrant_attestation::AttributeValue;

pub use error::Error;

/// The API's path prefix.
pub const PREFIX: &str = "/v1";

/// Standard base64 for `Vec<u8>` fields.
pub mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Decodes, strictly (padding required, no whitespace).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Standard base64 for `Option<Vec<u8>>` fields (absent or null: `None`).
pub mod b64_option {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes.
    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::b64::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    /// Decodes, strictly.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::b64")] Vec<u8>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(bytes)| bytes))
    }
}

/// Decodes a hex field of exactly `N` bytes.
pub fn hex_field<const N: usize>(field: &str, text: &str) -> Result<[u8; N], Error> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::HexField { field: field.to_owned(), bytes: N })
}

/// Converts JSON context or attribute values (string, integer, boolean) to typed attributes.
pub fn attributes(
    values: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, AttributeValue>, Error> {
    values
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => AttributeValue::Text(s.clone()),
                serde_json::Value::Bool(b) => AttributeValue::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => AttributeValue::Int(i),
                    None => return Err(not_typed(k)),
                },
                _ => return Err(not_typed(k)),
            };
            Ok((k.clone(), value))
        })
        .collect()
}

fn not_typed(name: &str) -> Error {
    Error::AttributeType { name: name.to_owned() }
}

/// The JSON form of typed attributes.
pub fn attributes_json(values: &BTreeMap<String, AttributeValue>) -> BTreeMap<String, serde_json::Value> {
    values
        .iter()
        .map(|(k, v)| {
            let json = match v {
                AttributeValue::Text(s) => serde_json::Value::from(s.as_str()),
                AttributeValue::Int(i) => serde_json::Value::from(*i),
                AttributeValue::Bool(b) => serde_json::Value::from(*b),
            };
            (k.clone(), json)
        })
        .collect()
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// A stable code.
    pub error: String,
    /// What a person should know.
    pub message: String,
    /// The authorization rule that applied, for refusals.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<String>,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// A key backend and whether this build and machine have it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backend {
    /// Its name.
    pub name: String,
    /// Compiled into this build.
    pub compiled: bool,
    /// The one this daemon uses.
    pub active: bool,
}

/// `GET /v1/version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Version {
    /// warrantd's version.
    pub version: String,
    /// API version (`v1`).
    pub api: String,
    /// State database schema version.
    pub schema: u32,
    /// Key backends.
    pub backends: Vec<Backend>,
    /// Optional features of this build.
    pub features: Vec<String>,
}

/// `POST /v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The key's name.
    pub name: String,
}

/// `POST /v1/keys/existing`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistingKey {
    /// The key in the backend: a PKCS#11 URI (`pkcs11:token=...;object=...`); its object
    /// label becomes the key's name.
    pub uri: String,
}

/// A key, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    /// Its name.
    pub name: String,
    /// `device` or `issuance`.
    pub purpose: String,
    /// The backend holding it.
    pub backend: String,
    /// How its private part is protected.
    pub protection: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// RFC 9679 thumbprint (the kid), hex.
    pub kid: String,
    /// Public key x coordinate, hex.
    pub x: String,
    /// Public key y coordinate, hex.
    pub y: String,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyList {
    /// The keys.
    pub keys: Vec<Key>,
}

/// `DELETE /v1/keys/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    /// The deleted key's name.
    pub name: String,
}

/// `POST /v1/keys/{name}/evidence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequest {
    /// 32 bytes, hex, to bind the evidence to.
    pub nonce: String,
}

/// Evidence about a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceResponse {
    /// The evidence kind.
    pub kind: String,
    /// Its CBOR encoding.
    #[serde(with = "b64")]
    pub evidence: Vec<u8>,
}

/// `POST /v1/enroll`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The device key.
    pub key: String,
    /// The principal to enroll as.
    pub principal: String,
    /// The authority's challenge, hex (or `tpm_credential`).
    #[serde(default)]
    pub challenge: Option<String>,
    /// The authority's challenge made as a TPM credential, which the daemon's TPM activates.
    #[serde(default)]
    pub tpm_credential: Option<TpmCredential>,
}

/// A TPM's EK certificate and attestation key: `GET /v1/tpm/identity`, and what an authority
/// makes a credential challenge for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmIdentity {
    /// The EK certificate, DER.
    #[serde(with = "b64")]
    pub ek_certificate: Vec<u8>,
    /// The attestation key's TPMT_PUBLIC.
    #[serde(with = "b64")]
    pub ak_public: Vec<u8>,
}

/// An enrollment challenge protected by TPM2_MakeCredential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmCredential {
    /// TPM2B_ID_OBJECT contents.
    #[serde(with = "b64")]
    pub id_object: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET contents.
    #[serde(with = "b64")]
    pub encrypted_secret: Vec<u8>,
}

/// An enrollment request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The signed enrollment request.
    #[serde(with = "b64")]
    pub enrollment: Vec<u8>,
}

/// The HTTP request a warrant binds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundRequest {
    /// Method.
    pub method: String,
    /// Target URI.
    pub target: String,
    /// SHA-256 of the body, hex (the body itself stays with the client).
    pub body_sha256: String,
}

/// `POST /v1/sign`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The device key.
    pub key: String,
    /// The grant to sign under.
    #[serde(with = "b64")]
    pub grant: Vec<u8>,
    /// The verifier.
    pub audience: String,
    /// Cedar action.
    pub action: String,
    /// Cedar resource.
    pub resource: String,
    /// The request the warrant authorises.
    pub request: BoundRequest,
    /// Context claims.
    #[serde(default)]
    pub context: BTreeMap<String, serde_json::Value>,
    /// The verifier's nonce, hex.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Lifetime, seconds.
    pub ttl: u64,
    /// A status list of the grant's authority (its newest): warrantd remembers the newest list
    /// per issuer and URI and binds cached TPM quotes to it. It is not verified here.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64_option")]
    pub status_list: Option<Vec<u8>>,
}

/// A signed warrant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignResponse {
    /// The warrant.
    #[serde(with = "b64")]
    pub warrant: Vec<u8>,
    /// Its id, hex.
    pub warrant_id: String,
    /// Its expiry, seconds since the epoch.
    pub expires_at: u64,
}

/// `POST /v1/authority`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitAuthority {
    /// The authority's id.
    pub issuer: String,
    /// Its status list URI.
    pub status_uri: String,
    /// An existing key to issue with (a PKCS#11 URI); none: a new key is generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_uri: Option<String>,
}

/// The authority's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthoritySettings {
    /// Its id.
    pub issuer: String,
    /// Its status list URI.
    pub status_uri: String,
    /// The issuance key signing new grants.
    pub active_key: String,
    /// All issuance keys, oldest first.
    pub keys: Vec<String>,
    /// Grants issued so far (the next status index).
    pub grants_issued: u64,
    /// Sequence of the last status list (0: none).
    pub status_sequence: u64,
}

/// `POST /v1/authority/challenges`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// Seconds it stays valid.
    pub ttl: u64,
    /// The principal the authority intends: a grant answering this challenge goes to it only.
    /// None: the grant request must name the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Make the challenge a credential for this TPM (its EK must chain to a configured root).
    #[serde(default)]
    pub tpm_identity: Option<TpmIdentity>,
}

/// An enrollment challenge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// 32 bytes, hex (absent for a TPM challenge: only the TPM may learn it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// The challenge as a TPM credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_credential: Option<TpmCredential>,
    /// The principal recorded with the challenge, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Seconds it stays valid.
    pub ttl: u64,
}

/// `POST /v1/authority/grants`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The enrollment request.
    #[serde(with = "b64")]
    pub enrollment: Vec<u8>,
    /// The principal to grant. Required when the challenge recorded none; when it did, must
    /// equal it. The enrollment must ask for the same principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Cedar policy text.
    pub policy: String,
    /// The principal's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The principal's attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Grant lifetime, seconds.
    pub valid_for: u64,
    /// Longest warrant lifetime, seconds.
    pub max_warrant_ttl: u64,
    /// Grant a software key.
    #[serde(default)]
    pub allow_software: bool,
    /// Grant a key whose evidence is self-reported by its key store (PKCS#11).
    #[serde(default)]
    pub allow_self_reported: bool,
}

/// An issued grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantResponse {
    /// The grant.
    #[serde(with = "b64")]
    pub grant: Vec<u8>,
    /// Its id, hex.
    pub grant_id: String,
    /// The principal.
    pub principal: String,
    /// Its index in the status list.
    pub status_index: u64,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

/// `POST /v1/authority/revocations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The grant id, hex.
    pub grant_id: String,
}

/// A revoked grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// Its id, hex.
    pub grant_id: String,
    /// Its principal.
    pub principal: String,
    /// Its status index.
    pub status_index: u64,
}

/// `POST /v1/authority/status-lists`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Seconds verifiers may rely on the list (`exp - iat`).
    pub valid_for: u64,
    /// Seconds after which verifiers should fetch a newer list (the list's `ttl`); at most
    /// `valid_for`; default five minutes or `valid_for` if shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// A signed status list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusListResponse {
    /// Its sequence number.
    pub sequence: u64,
    /// The list.
    #[serde(with = "b64")]
    pub list: Vec<u8>,
}

/// A new issuance key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateResponse {
    /// Its name.
    pub active_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `api_json` fuzz target: a float such as `8.64e127` does not survive
    /// serde_json's parse and print unchanged. Such values never reach a grant: only strings,
    /// 64-bit integers and booleans are attribute values.
    #[test]
    fn attribute_values_are_strings_integers_or_booleans() {
        let json =
            |text: &str| -> BTreeMap<String, serde_json::Value> { serde_json::from_str(text).unwrap() };
        let typed = attributes(&json(r#"{"team": "platform", "level": 3, "admin": false}"#)).unwrap();
        assert_eq!(typed["level"], AttributeValue::Int(3));
        for refused in [
            r#"{"n": 8.6400333333333333333333e127}"#,
            r#"{"n": 3.0}"#,
            r#"{"n": 18446744073709551615}"#,
            r#"{"n": null}"#,
            r#"{"n": [1]}"#,
            r#"{"n": {"a": 1}}"#,
        ] {
            let err = attributes(&json(refused)).unwrap_err();
            assert!(err.to_string().contains("strings, integers (64-bit) or booleans"), "{refused}: {err}");
        }
    }
}
