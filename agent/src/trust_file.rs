//! The trust file a verifier is given: an authority's id and its issuance public keys.
//!
//! ```json
//! {"issuer": "acme-authority", "keys": [{"kid": "<hex>", "x": "<hex>", "y": "<hex>"}]}
//! ```
//! `kid` is the RFC 9679 thumbprint; it is checked against the key on reading.

use std::path::Path;

use serde::{Deserialize, Serialize};
use warrant_attestation::P256PublicKey;
use warrant_envelope::thumbprint;
use warrant_envelope::verify::TrustedAuthority;

use crate::files;
use crate::Error;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    issuer: String,
    keys: Vec<TrustKey>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustKey {
    kid: String,
    x: String,
    y: String,
}

/// The JSON form of `authority`.
pub fn to_json(authority: &TrustedAuthority) -> String {
    let keys: Vec<serde_json::Value> = authority
        .keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kid": hex::encode(thumbprint(k)),
                "x": hex::encode(k.x()),
                "y": hex::encode(k.y()),
            })
        })
        .collect();
    // A JSON value displays infallibly (`{:#}` is pretty), unlike serialising a struct.
    let file = serde_json::json!({ "issuer": authority.issuer, "keys": keys });
    format!("{file:#}\n")
}

/// Reads a trust file.
pub fn read(path: &Path) -> Result<TrustedAuthority, Error> {
    let bad = |reason: String| Error::BadFile { path: path.to_owned(), reason };
    let file: TrustFile = serde_json::from_slice(&files::read(path)?).map_err(|e| bad(e.to_string()))?;
    if file.keys.is_empty() {
        return Err(bad("no keys".into()));
    }
    let mut keys = Vec::new();
    for k in file.keys {
        let coord =
            |h: &str| hex::decode(h).map_err(|_| bad(format!("key {}: coordinates must be hex", k.kid)));
        let key = P256PublicKey::from_coordinates(&coord(&k.x)?, &coord(&k.y)?)
            .map_err(|e| bad(format!("key {}: {e}", k.kid)))?;
        if hex::encode(thumbprint(&key)) != k.kid.to_ascii_lowercase() {
            return Err(bad(format!("key {}: kid is not the key's thumbprint", k.kid)));
        }
        keys.push(key);
    }
    Ok(TrustedAuthority { issuer: file.issuer, keys })
}
