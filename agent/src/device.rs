//! The device's side: enrollment requests and warrants, signed by a key in a key store.

use std::collections::BTreeMap;

use warrant_attestation::{AttributeValue, WarrantEvidence};
use warrant_envelope::device::{
    new_id, EnrollmentClaims, RequestBinding, Signer, WarrantClaims, CHALLENGE_LEN,
};
use warrant_envelope::issue::GrantClaims;
use warrant_envelope::{inspect, Claims};

use warrant_envelope::verify::{Clock, SystemClock};

use crate::key_signer::KeySigner;
use crate::newest_lists::NewestStatusLists;
use crate::Error;
use warrant_hsm_backends::WarrantScope;

/// Builds and signs an enrollment request for `principal` answering `challenge`.
pub fn enroll(
    key: &KeySigner<'_>,
    principal: &str,
    challenge: [u8; CHALLENGE_LEN],
) -> Result<Vec<u8>, Error> {
    let claims = EnrollmentClaims {
        principal: principal.into(),
        device_key: key.public_key().clone(),
        challenge,
        issued_at: now(),
        evidence: key.store().enrollment_evidence(key.name(), &challenge)?,
    };
    Ok(claims.sign(key)?)
}

/// What a warrant is for.
#[derive(Debug, Clone)]
pub struct WarrantRequest<'a> {
    /// The grant to sign under, as the authority issued it.
    pub grant: &'a [u8],
    /// The verifier.
    pub audience: &'a str,
    /// Cedar action.
    pub action: &'a str,
    /// Cedar resource.
    pub resource: &'a str,
    /// The request it authorises (the body only by its digest: it need not reach the signer).
    pub request: RequestBinding,
    /// Context claims.
    pub context: BTreeMap<String, AttributeValue>,
    /// The verifier's nonce, if it issued one.
    pub nonce: Option<Vec<u8>>,
    /// Lifetime in seconds.
    pub lifetime: u64,
    /// The status lists the device knows: evidence reused across warrants (a cached TPM
    /// quote) is bound to the newest list of the grant's authority. None: evidence for this
    /// warrant alone.
    pub status_lists: Option<&'a NewestStatusLists>,
}

/// Reads the claims of a grant (unverified: the device trusts what its authority sent it,
/// and the verifier checks everything anyway).
pub fn grant_claims(grant: &[u8]) -> Result<GrantClaims, Error> {
    match inspect(grant)?.claims {
        Claims::Grant(claims) => Ok(claims),
        _ => Err(Error::Usage("the object given as a grant is not a grant".into())),
    }
}

/// Builds and signs a warrant; returns it with its claims.
pub fn sign_warrant(
    key: &KeySigner<'_>,
    request: &WarrantRequest<'_>,
) -> Result<(Vec<u8>, WarrantClaims), Error> {
    // Before any key or evidence work: a target verifiers refuse is never signed.
    request.request.check_signable()?;
    let grant = grant_claims(request.grant)?;
    if &grant.device_key != key.public_key() {
        return Err(Error::Usage(format!(
            "the grant is for another device key than {:?}",
            key.name().as_str()
        )));
    }
    if request.lifetime == 0 || request.lifetime > grant.max_warrant_lifetime {
        return Err(Error::Usage(format!(
            "warrant lifetime must be 1 to {} seconds under this grant",
            grant.max_warrant_lifetime
        )));
    }
    let issued_at = now();
    let mut claims = WarrantClaims {
        issuer: grant.principal,
        audience: request.audience.into(),
        issued_at,
        expires_at: issued_at + request.lifetime,
        id: new_id()?,
        nonce: request.nonce.clone(),
        action: request.action.into(),
        resource: request.resource.into(),
        request: request.request.clone(),
        context: request.context.clone(),
        grant: request.grant.to_vec(),
        // Replaced below: the evidence binding is over the claims without it.
        evidence: WarrantEvidence::Software,
    };
    let status_list = request.status_lists.and_then(|lists| lists.newest(&grant.issuer, &grant.status.uri));
    let scope = WarrantScope { grant_id: grant.id, now: issued_at, status_list };
    claims.evidence = key.store().warrant_evidence(key.name(), &scope, &claims.evidence_binding()?)?;
    let warrant = claims.sign(key)?;
    Ok((warrant, claims))
}

fn now() -> u64 {
    SystemClock.now()
}
