//! Structure-aware status lists: generated from `arbitrary` choices and signed by the vectors'
//! authority (or another key), each relative to the one generated before it, so that a
//! sequence of them reaches the verifier's rollback, fork, chain and expiry checks.

use arbitrary::Arbitrary;
use warrant_envelope::issue::{status_list_digest, StatusBits, StatusListClaims, MIN_STATUS_ENTRIES};

use crate::fixtures::{FixedKey, ISSUER, STATUS_URI, T};
use crate::structured::Pick;

/// The sequence number, relative to the previous generated list.
#[derive(Arbitrary, Debug, Clone)]
pub enum Sequence {
    /// One more.
    Next,
    /// The same.
    Same,
    /// One less.
    Back,
    /// A gap.
    Skip(u8),
    /// Any.
    Raw(u64),
}

/// What the list names as its predecessor.
#[derive(Arbitrary, Debug, Clone)]
pub enum Previous {
    /// The previous generated list.
    Last,
    /// Nothing (all zero, as a first list).
    Zero,
    /// Anything.
    Raw([u8; 32]),
}

/// The signer.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ListSigner {
    /// The trusted authority.
    Authority,
    /// The device key (untrusted).
    Device,
}

/// A status list's choices.
#[derive(Arbitrary, Debug, Clone)]
pub struct ListSpec {
    /// `iss`.
    pub issuer: Pick,
    /// `sub`.
    pub uri: Pick,
    /// Sequence.
    pub sequence: Sequence,
    /// `prev`.
    pub previous: Previous,
    /// `iat`, seconds from T.
    pub issued_at: i32,
    /// `exp - iat`.
    pub lifetime: u32,
    /// Entries beyond the minimum.
    pub extra_entries: u16,
    /// Revoked indexes.
    pub revoked: Vec<u16>,
    /// Signer.
    pub signer: ListSigner,
}

/// The previous generated list: its sequence and digest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Last {
    /// Sequence.
    pub sequence: u64,
    /// Its `status_list_digest`.
    pub digest: [u8; 32],
}

const ISSUERS: &[&str] = &[ISSUER, "other-authority"];
const URIS: &[&str] = &[STATUS_URI, "https://authority.example.com/status/2"];

impl ListSpec {
    /// Builds and signs the list after `last`; returns it and its place for the next one.
    pub fn generate(&self, last: Last) -> (Vec<u8>, Last) {
        let sequence = match &self.sequence {
            Sequence::Next => last.sequence.saturating_add(1),
            Sequence::Same => last.sequence,
            Sequence::Back => last.sequence.saturating_sub(1),
            Sequence::Skip(n) => last.sequence.saturating_add(2 + u64::from(*n)),
            Sequence::Raw(n) => *n,
        };
        let previous = match &self.previous {
            Previous::Last => last.digest,
            Previous::Zero => [0; 32],
            Previous::Raw(d) => *d,
        };
        let mut bits = StatusBits::with_capacity(MIN_STATUS_ENTRIES + u64::from(self.extra_entries));
        for i in &self.revoked {
            let _ = bits.revoke(u64::from(*i) % bits.len().max(1));
        }
        let issued_at = T.saturating_add_signed(i64::from(self.issued_at));
        let claims = StatusListClaims {
            issuer: self.issuer.resolve(ISSUERS),
            uri: self.uri.resolve(URIS),
            sequence,
            previous,
            issued_at,
            expires_at: issued_at.saturating_add(u64::from(self.lifetime)),
            // Derived, so that every generated list keeps a valid `ttl` (the signer refuses others).
            time_to_live: (u64::from(self.lifetime) / 2).max(1),
            bits,
        };
        let key = match self.signer {
            ListSigner::Authority => FixedKey::authority(),
            ListSigner::Device => FixedKey::device(),
        };
        match claims.sign(&key) {
            Ok(bytes) => {
                let digest = status_list_digest(&bytes).unwrap_or_default();
                (bytes, Last { sequence, digest })
            }
            Err(_) => (Vec::new(), last),
        }
    }
}
