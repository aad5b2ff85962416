//! The API's JSON request bodies (agent/src/api.rs), deserialized as the daemon's body
//! extractor does (`serde_json::from_slice`, unknown fields refused), then the helpers the
//! handlers apply to them (attribute values, hex fields). The first byte picks the body type;
//! an accepted body must serialize and read back the same. Seeds: one body of each type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use warrant_agent::api;

/// Reads `data` as `T`; an accepted body round-trips through its serialization.
fn body<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&value).unwrap();
    let again: T = serde_json::from_slice(&json).unwrap();
    assert_eq!(serde_json::to_vec(&again).unwrap(), json, "a body does not read back the same");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else { return };
    match choice % 10 {
        0 => drop(body::<api::CreateKey>(data)),
        1 => drop(body::<api::ExistingKey>(data)),
        2 => {
            if let Some(req) = body::<api::EvidenceRequest>(data) {
                let _ = api::hex_field::<32>("nonce", &req.nonce);
            }
        }
        3 => {
            if let Some(req) = body::<api::EnrollRequest>(data) {
                let _ = req.challenge.map(|c| api::hex_field::<32>("challenge", &c));
            }
        }
        4 => {
            if let Some(req) = body::<api::SignRequest>(data) {
                let _ = api::attributes(&req.context);
                let _ = api::hex_field::<32>("body_sha256", &req.request.body_sha256);
                let _ = req.nonce.map(|n| hex::decode(n));
            }
        }
        5 => drop(body::<api::InitAuthority>(data)),
        6 => drop(body::<api::ChallengeRequest>(data)),
        7 => {
            if let Some(req) = body::<api::GrantRequest>(data) {
                let _ = api::attributes(&req.attributes);
            }
        }
        8 => {
            if let Some(req) = body::<api::RevokeRequest>(data) {
                let _ = api::hex_field::<16>("grant_id", &req.grant_id);
            }
        }
        _ => drop(body::<api::PublishRequest>(data)),
    }
});
