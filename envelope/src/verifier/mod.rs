//! The offline verifier: everything a downstream service needs to decide on a warrant,
//! without calling the authority.

mod clock;
mod digest_cache;
mod policy_cache;
mod replay;
mod status;
mod trust;
mod verified_grant;

use std::collections::BTreeMap;
use std::sync::Arc;

use cedar_policy::PolicySet;
use warrant_attestation::{
    Assurance, AttestationError, AttributeValue, DeviceFacts, StatusListAnchor, WarrantContext,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use replay::{MemoryReplayStore, ReplayKey, ReplayStore};
pub use status::StatusListInfo;
pub use trust::TrustedAuthority;

use crate::context_fields::ContextFields;
use crate::digest::{digests_equal, sha256};
use crate::grant::DecodedGrant;
use crate::keys::VerifyingKey;
use crate::policy::{self, EntityTypes, PolicyInput, PolicyRequest, PolicySource, PrincipalEntities};
use crate::request::HttpRequest;
use crate::warrant::DecodedWarrant;
use crate::Error;
use digest_cache::DigestCache;
use policy_cache::ParsedPolicy;
use status::HeldStatusLists;
use trust::TrustStore;
use verified_grant::VerifiedGrant;

/// Default tolerance for clock differences between devices and verifiers.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;

/// What a successful verification established.
///
/// Built only by the verifier; new fields may be added, so match it with `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedWarrant {
    /// The warrant id.
    pub warrant_id: [u8; 16],
    /// The grant id.
    pub grant_id: [u8; 16],
    /// The authority that issued the grant.
    pub authority: String,
    /// The principal.
    pub principal: String,
    /// The principal's groups, per the grant.
    pub groups: Vec<String>,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// The audience (this verifier).
    pub audience: String,
    /// `iat` of the warrant.
    pub issued_at: u64,
    /// `exp` of the warrant.
    pub expires_at: u64,
    /// The warrant's context claims.
    pub context: BTreeMap<String, AttributeValue>,
    /// What the warrant's evidence established about the device.
    pub device: DeviceFacts,
    /// The status list sequence the revocation check used.
    pub status_sequence: u64,
}

/// The operation the service means to perform for a request: the warrant must be for exactly
/// this action on this resource.
///
/// The request binding ties a warrant to a method, target and body, but which action and
/// resource that request is, only the service knows. Without this check a warrant for a
/// harmless action (`read` on `docs`), bound to the request of another endpoint, would pass
/// the grant's policy as `read` while the service performs `deploy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The action, as the grant's policies name it (`Warrant::Action::"<action>"`).
    pub action: &'a str,
    /// The resource, as the grant's policies name it (`Warrant::Resource::"<resource>"`).
    pub resource: &'a str,
}

impl Expected<'_> {
    fn check(&self, action: &str, resource: &str) -> Result<(), Error> {
        if action != self.action {
            return Err(Error::ActionMismatch { expected: self.action.into(), found: action.into() });
        }
        if resource != self.resource {
            return Err(Error::ResourceMismatch { expected: self.resource.into(), found: resource.into() });
        }
        Ok(())
    }
}

/// Builds a [`Verifier`]; construction errors (a bad local policy) surface at `build`.
pub struct VerifierBuilder {
    audience: String,
    authorities: Vec<TrustedAuthority>,
    clock: Arc<dyn Clock>,
    replay: Arc<dyn ReplayStore>,
    skew: u64,
    local_policy: Option<String>,
    allow_software_evidence: bool,
    allow_self_reported_evidence: bool,
    grant_cache_capacity: usize,
    policy_cache_capacity: usize,
    decision_cache_capacity: usize,
}

impl VerifierBuilder {
    /// Trusts `authority` (may be called for several authorities).
    pub fn trust(mut self, authority: TrustedAuthority) -> Self {
        self.authorities.push(authority);
        self
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `store` to remember warrant ids (e.g. one shared by a fleet of verifiers).
    pub fn replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay = store;
        self
    }

    /// Tolerated clock difference, in seconds (default 60).
    pub fn clock_skew(mut self, seconds: u64) -> Self {
        self.skew = seconds;
        self
    }

    /// A Cedar policy set of the verifier's own that must also permit every warrant.
    pub fn local_policy(mut self, text: impl Into<String>) -> Self {
        self.local_policy = Some(text.into());
        self
    }

    /// Accepts devices whose key is a software key (off by default: software evidence
    /// claims no hardware protection at all).
    pub fn allow_software_evidence(mut self, allow: bool) -> Self {
        self.allow_software_evidence = allow;
        self
    }

    /// Accepts devices whose evidence is self-reported by their key store (PKCS#11 tokens;
    /// off by default: a software key can make the same claims). Such devices are never
    /// `hardware` to policies, and their `assurance` is `"self-reported"`.
    pub fn allow_self_reported_evidence(mut self, allow: bool) -> Self {
        self.allow_self_reported_evidence = allow;
        self
    }

    /// How many verified grants to keep (default 1024; 0 disables the cache).
    pub fn grant_cache_capacity(mut self, capacity: usize) -> Self {
        self.grant_cache_capacity = capacity;
        self
    }

    /// How many parsed grant policies to keep, by their text (default 256; 0 parses each
    /// new grant's policy).
    pub fn policy_cache_capacity(mut self, capacity: usize) -> Self {
        self.policy_cache_capacity = capacity;
        self
    }

    /// How many "allow" policy decisions to remember (default 4096; 0 evaluates every
    /// warrant's policy afresh).
    pub fn decision_cache_capacity(mut self, capacity: usize) -> Self {
        self.decision_cache_capacity = capacity;
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Result<Verifier, Error> {
        let mut trust = TrustStore::default();
        for authority in &self.authorities {
            trust.add(authority)?;
        }
        if trust.is_empty() {
            return Err(Error::UnknownAuthorityKey { kid: "(no trusted authority configured)".into() });
        }
        let local_policy = match &self.local_policy {
            Some(text) => {
                let set = policy::parse(PolicySource::Local, text)?;
                // Worked out once, when the verifier is built.
                let fields = ContextFields::read_by(&set);
                Some((set, fields))
            }
            None => None,
        };
        Ok(Verifier {
            audience: self.audience,
            trust,
            clock: self.clock,
            replay: self.replay,
            skew: self.skew,
            local_policy,
            allow_software_evidence: self.allow_software_evidence,
            allow_self_reported_evidence: self.allow_self_reported_evidence,
            types: EntityTypes::new()?,
            grants: DigestCache::new(self.grant_cache_capacity),
            policies: DigestCache::new(self.policy_cache_capacity),
            decisions: DigestCache::new(self.decision_cache_capacity),
            status: HeldStatusLists::default(),
        })
    }
}

/// Verifies warrants offline for one audience.
///
/// It is `Sync`: one verifier serves all of a service's threads, sharing its grant cache,
/// status lists and replay store.
pub struct Verifier {
    audience: String,
    trust: TrustStore,
    clock: Arc<dyn Clock>,
    replay: Arc<dyn ReplayStore>,
    skew: u64,
    /// The verifier's own policy and the context fields it reads.
    local_policy: Option<(PolicySet, ContextFields)>,
    allow_software_evidence: bool,
    allow_self_reported_evidence: bool,
    types: EntityTypes,
    /// Verified grants, by the SHA-256 of their bytes.
    grants: DigestCache<Arc<VerifiedGrant>>,
    /// Parsed grant policies, by the SHA-256 of their text.
    policies: DigestCache<Arc<ParsedPolicy>>,
    /// "Allow" decisions, by [`PolicyInput::decision_key`]: Cedar evaluation is deterministic,
    /// so a request of a shape already allowed under the same grant need not be evaluated.
    decisions: DigestCache<()>,
    status: HeldStatusLists,
}

impl Verifier {
    /// Starts building a verifier for `audience`.
    pub fn builder(audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            audience: audience.into(),
            authorities: Vec::new(),
            clock: Arc::new(SystemClock),
            replay: Arc::new(MemoryReplayStore::default()),
            skew: DEFAULT_CLOCK_SKEW_SECS,
            local_policy: None,
            allow_software_evidence: false,
            allow_self_reported_evidence: false,
            grant_cache_capacity: 1024,
            policy_cache_capacity: 256,
            decision_cache_capacity: 4096,
        }
    }

    /// Installs a status list: it must be signed by a trusted authority, unexpired, and not
    /// older than (or a different list with the same sequence as) the one held for its issuer
    /// and URI.
    pub fn install_status_list(&self, bytes: &[u8]) -> Result<StatusListInfo, Error> {
        self.status.install(&self.trust, bytes, self.clock.now(), self.skew)
    }

    /// Installs `list` after the lists `between` it and the held one (oldest first: the
    /// history a verifier that missed lists fetched), so that the whole chain from the held
    /// list to `list` is checked: each is checked as [`Verifier::install_status_list`] checks
    /// a list against the one held before it (signature, issuer, rollback, equivocation,
    /// `prev`), each must be the direct successor of the one before it (the first of the held
    /// list, when one is held), all must be of `list`'s issuer and URI, and only `list` must be unexpired
    /// (the others are links, not lists relied on). If any is refused, nothing is installed
    /// and the held list stays.
    pub fn install_status_list_after(&self, between: &[&[u8]], list: &[u8]) -> Result<StatusListInfo, Error> {
        self.status.install_after(&self.trust, between, list, self.clock.now(), self.skew)
    }

    /// The status list of authority `issuer` held for `uri`, if any.
    pub fn status_list(&self, issuer: &str, uri: &str) -> Option<StatusListInfo> {
        self.status.info(issuer, uri)
    }

    /// Verifies `warrant` for `request`, which the service performs as `expected` (its action
    /// and resource). `nonce` is the nonce this verifier issued for the request, if it issues
    /// them; the warrant must then carry exactly it.
    pub fn verify(
        &self,
        warrant: &[u8],
        expected: &Expected<'_>,
        request: &HttpRequest<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<VerifiedWarrant, Error> {
        self.check(warrant, Some(expected), request, nonce)
    }

    /// Verifies `warrant` for `request` like [`Verifier::verify`], accepting whatever action and
    /// resource the warrant names: for a caller that cannot know which operation the request
    /// means (a command-line check of a stored warrant). A service that acts on the request
    /// uses [`Verifier::verify`], or compares the result's `action` and `resource` with the
    /// operation it performs before acting.
    pub fn verify_without_operation_check(
        &self,
        warrant: &[u8],
        request: &HttpRequest<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<VerifiedWarrant, Error> {
        self.check(warrant, None, request, nonce)
    }

    fn check(
        &self,
        warrant: &[u8],
        expected: Option<&Expected<'_>>,
        request: &HttpRequest<'_>,
        nonce: Option<&[u8]>,
    ) -> Result<VerifiedWarrant, Error> {
        let now = self.clock.now();
        let DecodedWarrant { signed, claims: w } = DecodedWarrant::decode(warrant)?;
        let grant = self.verified_grant(&w.grant, now)?;
        let g = &grant.claims;
        if now.saturating_add(self.skew) < g.not_before {
            return Err(Error::GrantNotYetValid { not_before: g.not_before, now });
        }
        if now >= g.expires_at.saturating_add(self.skew) {
            return Err(Error::GrantExpired { expired_at: g.expires_at, now });
        }

        if signed.kid != *grant.device_key.kid() {
            return Err(Error::WarrantKeyMismatch);
        }
        if !signed.verifies_with(&grant.device_key) {
            return Err(Error::WarrantSignatureInvalid);
        }
        if w.issuer != g.principal {
            return Err(Error::PrincipalMismatch { expected: g.principal.clone(), found: w.issuer });
        }

        if w.issued_at > now.saturating_add(self.skew) {
            return Err(Error::WarrantNotYetValid { issued_at: w.issued_at, now });
        }
        if now >= w.expires_at.saturating_add(self.skew) {
            return Err(Error::WarrantExpired { expired_at: w.expires_at, now });
        }
        let lifetime = w.expires_at - w.issued_at;
        if lifetime > g.max_warrant_lifetime {
            return Err(Error::WarrantLifetimeExceeded {
                lifetime,
                reason: "longer than the grant's max_ttl",
            });
        }
        if w.issued_at < g.not_before || w.expires_at > g.expires_at {
            return Err(Error::WarrantLifetimeExceeded {
                lifetime,
                reason: "outside the grant's validity window",
            });
        }

        if w.audience != self.audience {
            return Err(Error::AudienceMismatch { expected: self.audience.clone(), found: w.audience });
        }
        if let Some(expected) = nonce {
            match &w.nonce {
                None => return Err(Error::NonceMissing),
                Some(found)
                    if found.len() != expected.len() || !digests_equal(&sha256(found), &sha256(expected)) =>
                {
                    return Err(Error::NonceMismatch)
                }
                Some(_) => {}
            }
        }
        w.request.check(request)?;
        if let Some(expected) = expected {
            expected.check(&w.action, &w.resource)?;
        }

        let status_sequence = self.status.check(g, now, self.skew)?;

        let binding = || w.evidence_binding().map_err(|e| AttestationError::MalformedEvidence(e.to_string()));
        // A cached TPM quote must be bound to a list of the grant's authority held here.
        let anchor =
            |link: status::ChainLink| StatusListAnchor { digest: link.freshness, issued_at: link.issued_at };
        let (status_list, previous) = match self.status.held_and_previous(&g.issuer, &g.status.uri) {
            Some((held, previous)) => (Some(anchor(held)), previous.map(anchor)),
            None => (None, None),
        };
        let context = WarrantContext {
            grant_id: g.id,
            now,
            binding: &binding,
            status_list,
            previous_status_list: previous,
            // Checked above: the warrant carries exactly the nonce this verifier issued.
            verifier_nonce: nonce.is_some(),
        };
        let device = w.evidence.appraise(&g.device_key, &g.device, &context)?;
        match device.backend.assurance() {
            Assurance::Software if !self.allow_software_evidence => {
                return Err(Error::SoftwareEvidenceNotAllowed)
            }
            Assurance::SelfReported if !self.allow_self_reported_evidence => {
                return Err(Error::SelfReportedEvidenceNotAllowed)
            }
            _ => {}
        }

        let fields = match &self.local_policy {
            Some((_, local)) => grant.policy.fields.union(*local),
            None => grant.policy.fields,
        };
        let input = PolicyInput {
            principal: &grant.principal,
            action: &w.action,
            resource: &w.resource,
            method: request.method,
            target: request.target,
            audience: &w.audience,
            claims: &w.context,
            device: &device,
            now,
            issued_at: w.issued_at,
            expires_at: w.expires_at,
            authority: &g.issuer,
        };
        let decision = input.decision_key(&grant.digest, fields);
        if self.decisions.get(&decision).is_none() {
            let policy_request = PolicyRequest::new(&self.types, &input, fields)?;
            policy_request.authorize(PolicySource::Grant, &grant.policy.set, &grant.principal.entities)?;
            if let Some((local, _)) = &self.local_policy {
                policy_request.authorize(PolicySource::Local, local, &grant.principal.entities)?;
            }
            self.decisions.insert(decision, (), |_| false);
        }

        // Last, so that only a warrant that is otherwise acceptable consumes its id; the
        // store's atomicity decides between concurrent copies.
        let replay_key = ReplayKey::new(&g.issuer, &g.id, &w.id, &self.audience);
        self.replay.remember(&replay_key, w.expires_at.saturating_add(self.skew), now)?;

        Ok(VerifiedWarrant {
            warrant_id: w.id,
            grant_id: g.id,
            authority: g.issuer.clone(),
            principal: g.principal.clone(),
            groups: g.entity.groups.clone(),
            action: w.action,
            resource: w.resource,
            audience: w.audience,
            issued_at: w.issued_at,
            expires_at: w.expires_at,
            context: w.context,
            device,
            status_sequence,
        })
    }

    /// The grant in `bytes`, verified: from the cache, or checked now (signature by a trusted
    /// authority key, issuer owning that key, policy parsed) and cached.
    fn verified_grant(&self, bytes: &[u8], now: u64) -> Result<Arc<VerifiedGrant>, Error> {
        let digest = sha256(bytes);
        if let Some(grant) = self.grants.get(&digest) {
            return Ok(grant);
        }
        let DecodedGrant { signed, claims } = DecodedGrant::decode(bytes)?;
        let (issuer, key) = self
            .trust
            .get(&signed.kid)
            .ok_or_else(|| Error::UnknownAuthorityKey { kid: hex::encode(signed.kid) })?;
        if !signed.verifies_with(key) {
            return Err(Error::GrantSignatureInvalid);
        }
        if claims.issuer != issuer {
            return Err(Error::GrantIssuerMismatch { expected: issuer.into(), found: claims.issuer });
        }
        // The read set costs about a parse: worth it when the parse is kept (once per policy
        // text) or when decisions are remembered (it keeps their key exact).
        let read_set = self.policies.is_enabled() || self.decisions.is_enabled();
        let policy = policy_cache::parsed(&self.policies, &claims.policy, read_set)?;
        let principal = PrincipalEntities::of_grant(&self.types, &claims)?;
        let device_key = VerifyingKey::new(claims.device_key.clone())?;
        let grant = Arc::new(VerifiedGrant { digest, claims, device_key, policy, principal });
        self.grants.insert(digest, grant.clone(), |g| g.claims.expires_at > now);
        Ok(grant)
    }
}
