//! The device's view of its authorities' status lists: the newest list it was given per
//! (issuer, URI), which cached TPM quotes are bound to so that verifiers can tell they were
//! made after the list was issued.
//!
//! This is the one place lists enter on the device side: from sign requests
//! (`warrant sign --status-list`) and from the status URLs warrantd fetches
//! (`[device] status_urls`, daemon/status_fetch.rs).

use std::collections::HashMap;
use std::sync::RwLock;

use warrant_envelope::device::status_list_freshness;
use warrant_envelope::{inspect, Claims};

use crate::Error;

/// Most (issuer, URI) pairs remembered: far more than a device has authorities.
const MAX_LISTS: usize = 1024;

/// A list as the device remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    sequence: u64,
    /// Its `status_list_freshness` (what verifiers compare a cached quote's binding with).
    freshness: [u8; 32],
}

/// What [`NewestStatusLists::offer`] did with a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// It is now the newest list known for its issuer and URI.
    Newest,
    /// The device already knew it.
    Known,
    /// The device knows a later list (or another list with its sequence): it was not taken.
    Superseded {
        /// The sequence the device holds.
        held: u64,
    },
}

/// The newest status list the device was given per (issuer, URI), only ever moving forward.
///
/// Lists are not verified: the device need not hold its authorities' keys, and a list that is
/// not the authority's only makes quotes that verifiers refuse.
#[derive(Debug, Default)]
pub struct NewestStatusLists {
    lists: RwLock<HashMap<(String, String), Known>>,
}

impl NewestStatusLists {
    /// Remembers `bytes` (an encoded status list) if it is later than the list known for its
    /// issuer and URI. A list that does not decode is refused.
    pub fn offer(&self, bytes: &[u8]) -> Result<Offered, Error> {
        let not_a_list =
            |reason: String| Error::Usage(format!("the status list given is not usable: {reason}"));
        let claims = match inspect(bytes).map_err(|e| not_a_list(e.to_string()))?.claims {
            Claims::StatusList(claims) => claims,
            _ => return Err(not_a_list("it is another kind of object".into())),
        };
        let offered = Known {
            sequence: claims.sequence,
            freshness: status_list_freshness(bytes).map_err(|e| not_a_list(e.to_string()))?,
        };
        let mut lists = crate::locks::write(&self.lists);
        let key = (claims.issuer, claims.uri);
        match lists.get(&key) {
            Some(held) if *held == offered => return Ok(Offered::Known),
            // Never backwards: an older list would bind quotes to what verifiers replaced.
            Some(held) if held.sequence >= offered.sequence => {
                return Ok(Offered::Superseded { held: held.sequence })
            }
            Some(_) => {}
            None if lists.len() >= MAX_LISTS => {
                return Err(Error::Conflict(format!(
                    "warrantd already remembers status lists for {MAX_LISTS} issuer and URI pairs; \
                     restart it to forget them"
                )))
            }
            None => {}
        }
        lists.insert(key, offered);
        Ok(Offered::Newest)
    }

    /// The `status_list_freshness` of the newest list known for (`issuer`, `uri`).
    pub fn newest(&self, issuer: &str, uri: &str) -> Option<[u8; 32]> {
        let lists = crate::locks::read(&self.lists);
        lists.get(&(issuer.to_owned(), uri.to_owned())).map(|known| known.freshness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warrant_envelope::issue::{StatusBits, StatusListClaims};
    use warrant_hsm_backends::soft::SoftKeyStore;
    use warrant_hsm_backends::{KeyName, KeyStore};

    use crate::key_signer::KeySigner;

    fn list(signer: &KeySigner<'_>, issuer: &str, uri: &str, sequence: u64, revoked: Option<u64>) -> Vec<u8> {
        let mut bits = StatusBits::with_capacity(1024);
        if let Some(index) = revoked {
            bits.revoke(index).unwrap();
        }
        let claims = StatusListClaims {
            issuer: issuer.into(),
            uri: uri.into(),
            sequence,
            previous: [0; 32],
            issued_at: 1_800_000_000 + sequence,
            expires_at: 1_900_000_000,
            time_to_live: 300,
            bits,
        };
        claims.sign(signer).unwrap()
    }

    fn authority(dir: &std::path::Path) -> SoftKeyStore {
        let store = SoftKeyStore::open(dir.join("keys")).unwrap();
        store.create(&KeyName::new("authority").unwrap()).unwrap();
        store
    }

    #[test]
    fn the_newest_list_per_issuer_and_uri_is_kept_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = authority(dir.path());
        let signer = KeySigner::new(&store, KeyName::new("authority").unwrap()).unwrap();
        let lists = NewestStatusLists::default();
        let (one, two) =
            (list(&signer, "a", "https://a/s", 1, None), list(&signer, "a", "https://a/s", 2, None));
        let digest = |bytes: &[u8]| status_list_freshness(bytes).unwrap();

        assert_eq!(lists.newest("a", "https://a/s"), None);
        assert_eq!(lists.offer(&one).unwrap(), Offered::Newest);
        assert_eq!(lists.offer(&one).unwrap(), Offered::Known);
        assert_eq!(lists.offer(&two).unwrap(), Offered::Newest);
        assert_eq!(lists.newest("a", "https://a/s"), Some(digest(&two)));
        // An older list, or another list with the held sequence, is not taken.
        assert_eq!(lists.offer(&one).unwrap(), Offered::Superseded { held: 2 });
        let fork = list(&signer, "a", "https://a/s", 2, Some(7));
        assert_eq!(lists.offer(&fork).unwrap(), Offered::Superseded { held: 2 });
        assert_eq!(lists.newest("a", "https://a/s"), Some(digest(&two)));
        // Another authority's list for the same URI is its own entry.
        let other = list(&signer, "b", "https://a/s", 9, None);
        assert_eq!(lists.offer(&other).unwrap(), Offered::Newest);
        assert_eq!(lists.newest("a", "https://a/s"), Some(digest(&two)));
        assert_eq!(lists.newest("b", "https://a/s"), Some(digest(&other)));
    }

    #[test]
    fn what_is_not_a_status_list_is_refused_with_its_reason() {
        let lists = NewestStatusLists::default();
        for bytes in [&b"not cbor"[..], &[]] {
            let err = lists.offer(bytes).unwrap_err();
            assert!(matches!(err, Error::Usage(_)), "{err:?}");
            assert!(err.to_string().contains("status list given is not usable"), "{err}");
        }
    }

    #[test]
    fn the_lists_remembered_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = authority(dir.path());
        let signer = KeySigner::new(&store, KeyName::new("authority").unwrap()).unwrap();
        let lists = NewestStatusLists::default();
        for i in 0..MAX_LISTS {
            lists.offer(&list(&signer, "a", &format!("https://a/s/{i}"), 1, None)).unwrap();
        }
        // A known pair still moves forward; a new one is refused, saying why.
        assert_eq!(lists.offer(&list(&signer, "a", "https://a/s/0", 2, None)).unwrap(), Offered::Newest);
        let err = lists.offer(&list(&signer, "a", "https://a/s/new", 1, None)).unwrap_err();
        assert!(matches!(&err, Error::Conflict(m) if m.contains("restart")), "{err:?}");
    }
}
