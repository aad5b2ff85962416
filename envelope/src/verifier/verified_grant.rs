use std::sync::Arc;

use crate::grant::GrantClaims;
use crate::keys::VerifyingKey;
use crate::policy::PrincipalEntities;
use crate::verifier::policy_cache::ParsedPolicy;

/// A grant whose signature, issuer and policy checked out: what does not depend on time,
/// revocation or the request, and so can be reused for every warrant under it.
#[derive(Debug)]
pub(crate) struct VerifiedGrant {
    /// SHA-256 of the grant's bytes.
    pub digest: [u8; 32],
    pub claims: GrantClaims,
    pub device_key: VerifyingKey,
    /// Its policy, parsed.
    pub policy: Arc<ParsedPolicy>,
    pub principal: PrincipalEntities,
}
