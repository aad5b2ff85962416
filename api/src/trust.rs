//! The trust file a verifier is given: an authority's id and its issuance public keys. It is
//! also the body of `GET /v1/authority/trust`.
//!
//! ```json
//! {"issuer": "acme-authority", "keys": [{"kid": "<hex>", "x": "<hex>", "y": "<hex>"}]}
//! ```
//! `kid` is the RFC 9679 thumbprint; it is checked against the key on reading.

use serde::{Deserialize, Serialize};
use warrant_attestation::P256PublicKey;
use warrant_envelope::thumbprint;
use warrant_envelope::verify::TrustedAuthority;

use crate::Error;

/// A trust file as written (not yet validated: see [`TrustFile::to_authority`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    /// The authority's id (the `iss` of its grants).
    pub issuer: String,
    /// Its issuance keys.
    pub keys: Vec<TrustKey>,
}

/// One issuance key of a trust file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustKey {
    /// The key's RFC 9679 thumbprint (hex).
    pub kid: String,
    /// The x coordinate (hex).
    pub x: String,
    /// The y coordinate (hex).
    pub y: String,
}

impl From<&TrustedAuthority> for TrustFile {
    fn from(authority: &TrustedAuthority) -> Self {
        let keys = authority
            .keys
            .iter()
            .map(|k| TrustKey {
                kid: hex::encode(thumbprint(k)),
                x: hex::encode(k.x()),
                y: hex::encode(k.y()),
            })
            .collect();
        Self { issuer: authority.issuer.clone(), keys }
    }
}

impl TrustFile {
    /// Parses a trust file's bytes and validates it.
    pub fn parse(bytes: &[u8]) -> Result<TrustedAuthority, Error> {
        let file: TrustFile = serde_json::from_slice(bytes).map_err(|e| Error::TrustFile(e.to_string()))?;
        file.to_authority()
    }

    /// The authority it names, once every key is a P-256 point whose thumbprint is its kid.
    pub fn to_authority(&self) -> Result<TrustedAuthority, Error> {
        let bad = |reason: String| Error::TrustFile(reason);
        if self.keys.is_empty() {
            return Err(bad("no keys".into()));
        }
        let mut keys = Vec::new();
        for k in &self.keys {
            let coord =
                |h: &str| hex::decode(h).map_err(|_| bad(format!("key {}: coordinates must be hex", k.kid)));
            let key = P256PublicKey::from_coordinates(&coord(&k.x)?, &coord(&k.y)?)
                .map_err(|e| bad(format!("key {}: {e}", k.kid)))?;
            if hex::encode(thumbprint(&key)) != k.kid.to_ascii_lowercase() {
                return Err(bad(format!("key {}: kid is not the key's thumbprint", k.kid)));
            }
            keys.push(key);
        }
        Ok(TrustedAuthority { issuer: self.issuer.clone(), keys })
    }

    /// The file's text: pretty JSON and a final newline.
    pub fn to_text(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> TrustedAuthority {
        let key = P256PublicKey::from_sec1(&p256_point()).unwrap();
        TrustedAuthority { issuer: "acme".into(), keys: vec![key] }
    }

    /// The P-256 generator: a valid point.
    fn p256_point() -> Vec<u8> {
        hex::decode(concat!(
            "04",
            "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
            "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
        ))
        .unwrap()
    }

    #[test]
    fn round_trips_and_checks_every_key() {
        let file = TrustFile::from(&authority());
        let parsed = TrustFile::parse(file.to_text().unwrap().as_bytes()).unwrap();
        assert_eq!(parsed.issuer, "acme");
        assert_eq!(parsed.keys, authority().keys);

        let mut wrong_kid = file.clone();
        wrong_kid.keys[0].kid = "00".repeat(32);
        assert!(wrong_kid
            .to_authority()
            .unwrap_err()
            .to_string()
            .contains("kid is not the key's thumbprint"));
        let mut off_curve = file.clone();
        off_curve.keys[0].y = "00".repeat(32);
        assert!(off_curve.to_authority().is_err());
        let empty = TrustFile { issuer: "acme".into(), keys: vec![] };
        assert!(empty.to_authority().unwrap_err().to_string().contains("no keys"));
        assert!(TrustFile::parse(br#"{"issuer": "acme", "keys": [], "extra": 1}"#).is_err());
    }
}
