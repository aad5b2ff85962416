use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::digest::{digests_equal, sha256};
use crate::grant::GrantClaims;
use crate::status_list::{DecodedStatusList, StatusBits};
use crate::verifier::trust::TrustStore;
use crate::Error;

/// What a verifier knows of an installed status list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListInfo {
    /// The authority that signed it.
    pub issuer: String,
    /// Its URI.
    pub uri: String,
    /// Its sequence number.
    pub sequence: u64,
    /// SHA-256 of its encoded bytes (what the next list names as `prev`).
    pub digest: [u8; 32],
    /// Its `exp`.
    pub expires_at: u64,
}

#[derive(Debug)]
struct HeldList {
    info: StatusListInfo,
    bits: StatusBits,
}

/// The latest status list per URI, advanced only forward along the hash chain.
#[derive(Debug, Default)]
pub(crate) struct HeldStatusLists {
    by_uri: RwLock<HashMap<String, Arc<HeldList>>>,
}

impl HeldStatusLists {
    /// Verifies `bytes` and makes it the held list for its URI.
    pub(crate) fn install(
        &self,
        trust: &TrustStore,
        bytes: &[u8],
        now: u64,
        skew: u64,
    ) -> Result<StatusListInfo, Error> {
        let decoded = DecodedStatusList::decode(bytes)?;
        let (issuer, key) = trust.get(&decoded.signed.kid).ok_or(Error::StatusListSignatureInvalid)?;
        if !decoded.signed.verifies_with(key) {
            return Err(Error::StatusListSignatureInvalid);
        }
        let claims = decoded.claims;
        if claims.issuer != issuer {
            return Err(Error::StatusListIssuerMismatch { expected: issuer.into(), found: claims.issuer });
        }
        if now >= claims.expires_at.saturating_add(skew) {
            return Err(Error::StatusListExpired { uri: claims.uri, expired_at: claims.expires_at, now });
        }
        let info = StatusListInfo {
            issuer: claims.issuer,
            uri: claims.uri,
            sequence: claims.sequence,
            digest: sha256(bytes),
            expires_at: claims.expires_at,
        };
        let mut held = self.by_uri.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = held.get(&info.uri) {
            let current = &current.info;
            if info.sequence < current.sequence {
                return Err(Error::StatusListRollback { held: current.sequence, offered: info.sequence });
            }
            if info.sequence == current.sequence {
                return if digests_equal(&info.digest, &current.digest) {
                    Ok(info)
                } else {
                    Err(Error::StatusListForked { sequence: info.sequence })
                };
            }
            // The direct successor must name the held list; after a gap the chain cannot be
            // checked here, and the signature and sequence are what protect the verifier.
            if info.sequence == current.sequence + 1 && !digests_equal(&claims.previous, &current.digest) {
                return Err(Error::StatusListChainBroken { sequence: info.sequence, held: current.sequence });
            }
        }
        held.insert(info.uri.clone(), Arc::new(HeldList { info: info.clone(), bits: claims.bits }));
        Ok(info)
    }

    /// Checks the grant against the held list it references; returns that list's sequence.
    pub(crate) fn check(&self, grant: &GrantClaims, now: u64, skew: u64) -> Result<u64, Error> {
        let list = {
            let held = self.by_uri.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            held.get(&grant.status.uri).cloned()
        };
        let Some(list) = list else {
            return Err(Error::StatusListMissing { uri: grant.status.uri.clone() });
        };
        let info = &list.info;
        if info.issuer != grant.issuer {
            return Err(Error::StatusListIssuerMismatch {
                expected: grant.issuer.clone(),
                found: info.issuer.clone(),
            });
        }
        if now >= info.expires_at.saturating_add(skew) {
            return Err(Error::StatusListExpired { uri: info.uri.clone(), expired_at: info.expires_at, now });
        }
        if list.bits.is_revoked(grant.status.index)? {
            return Err(Error::Revoked {
                grant_id: hex::encode(grant.id),
                uri: info.uri.clone(),
                sequence: info.sequence,
            });
        }
        Ok(info.sequence)
    }

    /// The held list for `uri`.
    pub(crate) fn info(&self, uri: &str) -> Option<StatusListInfo> {
        let held = self.by_uri.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.get(uri).map(|l| l.info.clone())
    }
}
