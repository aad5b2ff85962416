//! The API's JSON request bodies (warrant-api, api/src/lib.rs), deserialized as the daemon's body
//! extractor does (`serde_json::from_slice`, unknown fields refused), then the helpers the
//! handlers apply to them (attribute values, hex fields). The first byte picks the body type;
//! an accepted body must serialize and read back the same. Seeds: one body of each type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use warrant_api as api;

/// Reads `data` as `T`, as the daemon's body extractor does.
fn body<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

/// A body the daemon accepts reads back the same after serialising. (Not asserted for bodies
/// whose free-form JSON values the handlers refuse: serde_json does not round-trip every
/// float exactly, and floats are never attribute values; regression seed
/// `corpus/api_json/regression-float-attribute`.)
fn round_trips<T: DeserializeOwned + Serialize>(value: &T) {
    let json = serde_json::to_vec(value).unwrap();
    let again: T = serde_json::from_slice(&json).unwrap();
    assert_eq!(serde_json::to_vec(&again).unwrap(), json, "a body does not read back the same");
}

/// [`body`], then [`round_trips`]: for bodies with no free-form values.
fn typed<T: DeserializeOwned + Serialize>(data: &[u8]) -> Option<T> {
    let value = body::<T>(data)?;
    round_trips(&value);
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else { return };
    match choice % 10 {
        0 => drop(typed::<api::CreateKey>(data)),
        1 => drop(typed::<api::ExistingKey>(data)),
        2 => {
            if let Some(req) = typed::<api::EvidenceRequest>(data) {
                let _ = api::hex_field::<32>("nonce", &req.nonce);
            }
        }
        3 => {
            if let Some(req) = typed::<api::EnrollRequest>(data) {
                let _ = req.challenge.map(|c| api::hex_field::<32>("challenge", &c));
            }
        }
        4 => {
            if let Some(req) = body::<api::SignRequest>(data) {
                if api::attributes(&req.context).is_ok() {
                    round_trips(&req);
                }
                let _ = api::hex_field::<32>("body_sha256", &req.request.body_sha256);
                let _ = req.nonce.map(|n| hex::decode(n));
            }
        }
        5 => drop(typed::<api::InitAuthority>(data)),
        6 => drop(typed::<api::ChallengeRequest>(data)),
        7 => {
            if let Some(req) = body::<api::GrantRequest>(data) {
                if api::attributes(&req.attributes).is_ok() {
                    round_trips(&req);
                }
            }
        }
        8 => {
            if let Some(req) = typed::<api::RevokeRequest>(data) {
                let _ = api::hex_field::<16>("grant_id", &req.grant_id);
            }
        }
        _ => drop(typed::<api::PublishRequest>(data)),
    }
});
