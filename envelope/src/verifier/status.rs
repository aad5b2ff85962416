use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::digest::digests_equal;
use crate::grant::GrantClaims;
use crate::status_list::{DecodedStatusList, StatusBits};
use crate::verifier::trust::TrustStore;
use crate::Error;

/// What a verifier knows of an installed status list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusListInfo {
    /// The authority that signed it.
    pub issuer: String,
    /// Its URI.
    pub uri: String,
    /// Its sequence number.
    pub sequence: u64,
    /// SHA-256 of its signed content (what the next list names as `prev`; see
    /// [`crate::issue::status_list_digest`]).
    pub digest: [u8; 32],
    /// Its `iat`.
    pub issued_at: u64,
    /// Its `exp`.
    pub expires_at: u64,
    /// Its `ttl`: seconds after `iat` at which a newer list should be fetched.
    pub time_to_live: u64,
}

/// What a cached quote can be bound to: a list's [`crate::device::status_list_freshness`] and its `iat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainLink {
    pub freshness: [u8; 32],
    pub issued_at: u64,
}

#[derive(Debug)]
struct HeldList {
    info: StatusListInfo,
    bits: StatusBits,
    /// This list's [`crate::device::status_list_freshness`].
    freshness: [u8; 32],
    /// The list this one replaced, if the verifier held one.
    previous: Option<ChainLink>,
}

impl HeldList {
    fn link(&self) -> ChainLink {
        ChainLink { freshness: self.freshness, issued_at: self.info.issued_at }
    }
}

/// The latest status list per (issuer, URI), advanced only forward along the hash chain.
///
/// Keyed by issuer as well as URI so that one trusted authority (or its stolen key) cannot
/// take over another's URI: a list speaks only for the grants of the authority that signed it.
#[derive(Debug, Default)]
pub(crate) struct HeldStatusLists {
    /// Issuer, then URI.
    by_issuer: RwLock<HashMap<String, HashMap<String, Arc<HeldList>>>>,
}

/// A list whose signature and issuer were checked, not yet compared with the held one.
struct Candidate {
    info: StatusListInfo,
    previous: [u8; 32],
    bits: StatusBits,
    freshness: [u8; 32],
}

impl Candidate {
    fn link(&self) -> ChainLink {
        ChainLink { freshness: self.freshness, issued_at: self.info.issued_at }
    }
}

/// What a list is to the one held before it.
enum Step {
    /// The held list itself (the same signed content): nothing to install.
    Same,
    /// A later list that may replace it.
    Later,
}

/// Decodes `bytes` and checks its signature and that its `iss` owns the signing key.
fn signed_by_its_issuer(trust: &TrustStore, bytes: &[u8]) -> Result<Candidate, Error> {
    let decoded = DecodedStatusList::decode(bytes)?;
    let (key_owner, key) = trust.get(&decoded.signed.kid).ok_or(Error::StatusListSignatureInvalid)?;
    if !decoded.signed.verifies_with(key) {
        return Err(Error::StatusListSignatureInvalid);
    }
    let digest = decoded.digest();
    let freshness = decoded.freshness()?;
    let claims = decoded.claims;
    if claims.issuer != key_owner {
        return Err(Error::StatusListIssuerMismatch { key_owner: key_owner.into(), claimed: claims.issuer });
    }
    Ok(Candidate {
        info: StatusListInfo {
            issuer: claims.issuer,
            uri: claims.uri,
            sequence: claims.sequence,
            digest,
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
            time_to_live: claims.time_to_live,
        },
        previous: claims.previous,
        bits: claims.bits,
        freshness,
    })
}

/// Refuses an expired list.
fn unexpired(info: &StatusListInfo, now: u64, skew: u64) -> Result<(), Error> {
    if now >= info.expires_at.saturating_add(skew) {
        return Err(Error::StatusListExpired { uri: info.uri.clone(), expired_at: info.expires_at, now });
    }
    Ok(())
}

/// Refuses a list of a walk that is not the direct successor of the one before it (a history
/// entry served for another sequence would otherwise turn the walk into a gap).
fn consecutive(before: &StatusListInfo, info: &StatusListInfo) -> Result<(), Error> {
    if before.sequence.checked_add(1) != Some(info.sequence) {
        return Err(Error::StatusListChainBroken { sequence: info.sequence, held: before.sequence });
    }
    Ok(())
}

/// Whether `offered` may follow `held`, a list of the same issuer and URI: never older
/// (rollback), the same sequence only with the same content (else equivocation), and the
/// direct successor only if it names `held` as `prev`. After a gap the chain cannot be
/// checked; the signature and sequence are what protect the verifier.
fn follows(held: &StatusListInfo, offered: &Candidate) -> Result<Step, Error> {
    let info = &offered.info;
    if info.issuer != held.issuer || info.uri != held.uri {
        return Err(Error::StatusListChainBroken { sequence: info.sequence, held: held.sequence });
    }
    if info.sequence < held.sequence {
        return Err(Error::StatusListRollback { held: held.sequence, offered: info.sequence });
    }
    if info.sequence == held.sequence {
        // Same signed content is the same list, whatever its signature bytes: a no-op.
        return if digests_equal(&info.digest, &held.digest) {
            Ok(Step::Same)
        } else {
            Err(Error::StatusListForked { sequence: info.sequence })
        };
    }
    if info.sequence == held.sequence + 1 && !digests_equal(&offered.previous, &held.digest) {
        return Err(Error::StatusListChainBroken { sequence: info.sequence, held: held.sequence });
    }
    Ok(Step::Later)
}

impl HeldStatusLists {
    /// Verifies `bytes` and makes it the held list for its (issuer, URI).
    pub(crate) fn install(
        &self,
        trust: &TrustStore,
        bytes: &[u8],
        now: u64,
        skew: u64,
    ) -> Result<StatusListInfo, Error> {
        self.install_after(trust, &[], bytes, now, skew)
    }

    /// Verifies `between` (oldest first) and `bytes`, each against the one before it (the first
    /// against the held list), and makes `bytes` the held list for its (issuer, URI); if any is
    /// refused nothing changes. With `between` given, each list must be the direct successor
    /// of the one before it. Only `bytes` must be unexpired: the lists between are links of
    /// the chain, not lists the verifier relies on.
    pub(crate) fn install_after(
        &self,
        trust: &TrustStore,
        between: &[&[u8]],
        bytes: &[u8],
        now: u64,
        skew: u64,
    ) -> Result<StatusListInfo, Error> {
        let newest = signed_by_its_issuer(trust, bytes)?;
        unexpired(&newest.info, now, skew)?;
        let mut held = self.by_issuer.write().unwrap_or_else(PoisonError::into_inner);
        let current = held.get(&newest.info.issuer).and_then(|lists| lists.get(&newest.info.uri)).cloned();
        // The list the next one is compared with, and what it replaced (a held list remembers
        // the list it replaced: a cached quote bound to that one is still accepted).
        let mut last: Option<(StatusListInfo, ChainLink)> =
            current.as_ref().map(|c| (c.info.clone(), c.link()));
        let mut replaced = current.as_ref().and_then(|c| c.previous);
        for entry in between {
            // Decoded one at a time and dropped: only the newest list's bits are kept.
            let entry = signed_by_its_issuer(trust, entry)?;
            match &last {
                // Older or forked links are refused as such; any other that is not the next
                // list is a gap or a repeat, which a walk does not have.
                Some((info, _)) => {
                    follows(info, &entry)?;
                    consecutive(info, &entry.info)?;
                }
                // Nothing held: the first link is taken as it is, the rest chain to it.
                None if entry.info.issuer == newest.info.issuer && entry.info.uri == newest.info.uri => {}
                None => {
                    return Err(Error::StatusListChainBroken {
                        sequence: entry.info.sequence,
                        held: newest.info.sequence,
                    })
                }
            }
            replaced = last.map(|(_, link)| link);
            last = Some((entry.info.clone(), entry.link()));
        }
        if let Some((info, link)) = &last {
            let step = follows(info, &newest)?;
            if !between.is_empty() {
                consecutive(info, &newest.info)?;
            }
            match step {
                // The held list itself (only without a walk: a walk's lists are consecutive).
                Step::Same => return Ok(newest.info),
                Step::Later => replaced = Some(*link),
            }
        }
        let info = newest.info.clone();
        let list = HeldList {
            info: newest.info,
            bits: newest.bits,
            freshness: newest.freshness,
            previous: replaced,
        };
        held.entry(info.issuer.clone()).or_default().insert(info.uri.clone(), Arc::new(list));
        Ok(info)
    }

    /// Checks the grant against the list held for its issuer and status URI; returns that
    /// list's sequence.
    pub(crate) fn check(&self, grant: &GrantClaims, now: u64, skew: u64) -> Result<u64, Error> {
        let Some(list) = self.held(&grant.issuer, &grant.status.uri) else {
            return Err(Error::StatusListMissing {
                issuer: grant.issuer.clone(),
                uri: grant.status.uri.clone(),
            });
        };
        let info = &list.info;
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

    /// The list held for (`issuer`, `uri`).
    pub(crate) fn info(&self, issuer: &str, uri: &str) -> Option<StatusListInfo> {
        self.held(issuer, uri).map(|l| l.info.clone())
    }

    /// The held list for (`issuer`, `uri`) and the one it replaced, if the verifier held one:
    /// what a cached TPM quote is bound to, to prove it was made after the list was issued.
    pub(crate) fn held_and_previous(
        &self,
        issuer: &str,
        uri: &str,
    ) -> Option<(ChainLink, Option<ChainLink>)> {
        self.held(issuer, uri).map(|l| (l.link(), l.previous))
    }

    fn held(&self, issuer: &str, uri: &str) -> Option<Arc<HeldList>> {
        let held = self.by_issuer.read().unwrap_or_else(PoisonError::into_inner);
        held.get(issuer).and_then(|lists| lists.get(uri)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::digest::{Digest, SHA256};
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use warrant_attestation::P256PublicKey;

    use super::*;
    use crate::signer::Signer;
    use crate::status_list::{status_list_digest, status_list_freshness, StatusListClaims};
    use crate::verifier::trust::TrustedAuthority;

    struct Key(EcdsaKeyPair, P256PublicKey);

    impl Signer for Key {
        fn public_key(&self) -> &P256PublicKey {
            &self.1
        }

        fn sign_digest(
            &self,
            digest: &[u8; 32],
        ) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>> {
            let digest = Digest::import_less_safe(digest, &SHA256)?;
            Ok(self.0.sign_digest(&digest)?.as_ref().try_into()?)
        }
    }

    #[test]
    fn the_held_list_remembers_the_one_it_replaced() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let public = P256PublicKey::from_sec1(pair.public_key().as_ref()).unwrap();
        let key = Key(pair, public.clone());
        let mut trust = TrustStore::default();
        trust.add(&TrustedAuthority { issuer: "acme".into(), keys: vec![public] }).unwrap();
        let mut claims = StatusListClaims {
            issuer: "acme".into(),
            uri: "https://a.example/status".into(),
            sequence: 1,
            previous: [0; 32],
            issued_at: 100,
            expires_at: 1000,
            time_to_live: 300,
            bits: StatusBits::with_capacity(1024),
        };
        let first = claims.sign(&key).unwrap();
        claims.sequence = 2;
        claims.previous = status_list_digest(&first).unwrap();
        claims.issued_at = 200;
        let second = claims.sign(&key).unwrap();

        let held = HeldStatusLists::default();
        assert_eq!(held.held_and_previous("acme", "https://a.example/status"), None);
        held.install(&trust, &first, 150, 0).unwrap();
        let link1 = ChainLink { freshness: status_list_freshness(&first).unwrap(), issued_at: 100 };
        assert_eq!(held.held_and_previous("acme", "https://a.example/status"), Some((link1, None)));
        held.install(&trust, &second, 250, 0).unwrap();
        // Installing the held list again keeps what it replaced.
        held.install(&trust, &second, 250, 0).unwrap();
        let link2 = ChainLink { freshness: status_list_freshness(&second).unwrap(), issued_at: 200 };
        assert_eq!(held.held_and_previous("acme", "https://a.example/status"), Some((link2, Some(link1))));
        assert_eq!(held.held_and_previous("other", "https://a.example/status"), None);

        // After a walk along the chain, the held list replaced the last link, not the list held
        // before the walk: a cached quote bound to that link is still fresh.
        claims.sequence = 3;
        claims.previous = status_list_digest(&second).unwrap();
        claims.issued_at = 300;
        let third = claims.sign(&key).unwrap();
        claims.sequence = 4;
        claims.previous = status_list_digest(&third).unwrap();
        claims.issued_at = 400;
        let fourth = claims.sign(&key).unwrap();
        let walked = HeldStatusLists::default();
        walked.install(&trust, &first, 150, 0).unwrap();
        walked.install_after(&trust, &[&second, &third], &fourth, 450, 0).unwrap();
        let link3 = ChainLink { freshness: status_list_freshness(&third).unwrap(), issued_at: 300 };
        let link4 = ChainLink { freshness: status_list_freshness(&fourth).unwrap(), issued_at: 400 };
        assert_eq!(walked.held_and_previous("acme", "https://a.example/status"), Some((link4, Some(link3))));
    }
}
