//! What evidence is appraised against besides the evidence itself: the authority's trust at
//! enrollment, the verifier's view of a warrant. Each evidence kind's module depends on this
//! one and never on the evidence enums that gather them.

use crate::piv::PivVerifier;
use crate::AttestationError;

/// What a warrant's evidence is appraised against besides the enrolled facts.
pub struct WarrantContext<'a> {
    /// The id of the grant the warrant is made under.
    pub grant_id: [u8; 16],
    /// The verifier's time, seconds since the epoch.
    pub now: u64,
    /// Yields the digest the evidence must be bound to (the operation); only evidence kinds
    /// that carry a binding compute it.
    pub binding: &'a dyn Fn() -> Result<[u8; 32], AttestationError>,
    /// The status list the verifier holds for the grant's (issuer, status URI), if any.
    pub status_list: Option<StatusListAnchor>,
    /// The list that one replaced, if the verifier held it: a cached quote made just before the
    /// authority published its newest list still serves until the next one.
    pub previous_status_list: Option<StatusListAnchor>,
    /// Whether the warrant carries a nonce this verifier chose and checked (inside the binding):
    /// only then is a quote bound to the warrant known to be made at request time.
    pub verifier_nonce: bool,
}

/// A status list a verifier holds, as a cached TPM quote is bound to it: what proves the
/// quote was made after the list's `iat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusListAnchor {
    /// The list's freshness digest (over its signed content and its low-S signature).
    pub digest: [u8; 32],
    /// The list's `iat`, seconds since the epoch.
    pub issued_at: u64,
}

impl WarrantContext<'_> {
    /// The held status list (the newest or the previous) whose digest is `digest`.
    pub fn status_list_anchor(&self, digest: &[u8; 32]) -> Option<StatusListAnchor> {
        [self.status_list, self.previous_status_list].into_iter().flatten().find(|a| &a.digest == digest)
    }
}

/// What an authority trusts when it appraises enrollment evidence beyond the evidence itself.
#[derive(Debug, Clone)]
pub struct EnrollmentTrust {
    /// YubiKey PIV attestation roots and firmware rules.
    pub piv: PivVerifier,
    /// The authority's time, seconds since the epoch (certificate validity).
    pub now: u64,
}

impl EnrollmentTrust {
    /// Yubico's pinned roots, ECDSA on firmware affected by YSA-2024-03 refused.
    pub fn new(now: u64) -> Result<Self, AttestationError> {
        Ok(Self { piv: PivVerifier::yubico()?, now })
    }
}
