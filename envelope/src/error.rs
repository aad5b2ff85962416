use thiserror::Error;
use warrant_attestation::AttestationError;

use crate::target::TargetDefect;
use crate::ObjectType;

/// Every way building, decoding or verifying a warrant object can fail.
///
/// Each rejection is its own variant so callers (and the tamper tests) can tell them apart;
/// [`Error::code`] gives a stable machine-readable name for logs and JSON output, and
/// [`Error::kind`] the [`ErrorKind`] a service acts on (which HTTP status to answer, whether
/// to retry, whom to alert).
///
/// The enum stays flat, one level, rather than nesting an enum per kind: a service matches on
/// `kind()` to decide what to do and on the variant only where one rejection needs its own
/// handling, and a flat enum keeps that second match one pattern deep. Both enums are
/// `#[non_exhaustive]`: a later version may add rejections, and a caller's `_` arm (for the
/// variants) or its handling of a kind decides for them, so they never silently pass.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // ---- decoding -------------------------------------------------------------------------
    /// The input is larger than the limit for its object type.
    #[error("{object} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// What was being decoded.
        object: ObjectType,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The CBOR is nested deeper than allowed.
    #[error("{object} is nested too deeply")]
    TooDeep {
        /// What was being decoded.
        object: ObjectType,
    },
    /// The bytes are not well-formed CBOR, or not the expected structure.
    #[error("{object} is malformed: {reason}")]
    Malformed {
        /// What was being decoded.
        object: ObjectType,
        /// What was wrong.
        reason: String,
    },
    /// The input is not a CBOR tag 18 (COSE_Sign1).
    #[error("{object} is not a tagged COSE_Sign1 (tag 18)")]
    NotTagged {
        /// What was being decoded.
        object: ObjectType,
    },
    /// Bytes follow the encoded object.
    #[error("{object} has trailing bytes after the CBOR item")]
    TrailingBytes {
        /// What was being decoded.
        object: ObjectType,
    },
    /// The CBOR uses a non-preferred encoding (indefinite length, long-form integer, ...).
    #[error("{object} is not in preferred CBOR serialization")]
    NonCanonical {
        /// What was being decoded.
        object: ObjectType,
    },
    /// A map has the same key twice.
    #[error("{object} has the duplicate map key {key}")]
    DuplicateKey {
        /// What was being decoded.
        object: ObjectType,
        /// The key, in diagnostic form.
        key: String,
    },
    /// A claim this version of the format does not define.
    #[error("{object} carries the unknown claim {claim}")]
    UnknownClaim {
        /// What was being decoded.
        object: ObjectType,
        /// The claim key, in diagnostic form.
        claim: String,
    },
    /// A required claim is absent.
    #[error("{object} lacks the required claim {claim:?}")]
    MissingClaim {
        /// What was being decoded.
        object: ObjectType,
        /// The claim's name.
        claim: &'static str,
    },
    /// A text claim, attribute name or attribute value is the empty string.
    #[error("{object} claim {claim:?} has empty text: text claims, attribute names and attribute values are never empty")]
    EmptyText {
        /// What was being decoded or encoded.
        object: ObjectType,
        /// The claim's name.
        claim: &'static str,
    },
    /// A claim has the wrong type or an invalid value.
    #[error("{object} claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// What was being decoded.
        object: ObjectType,
        /// The claim's name.
        claim: &'static str,
        /// What was wrong.
        reason: String,
    },

    // ---- COSE headers ---------------------------------------------------------------------
    /// The protected header's `typ` is not the one this object must have.
    #[error("wrong object type: expected typ {expected:?}, found {found:?}")]
    WrongObjectType {
        /// The expected media type.
        expected: &'static str,
        /// What the header says.
        found: String,
    },
    /// The protected header is empty (a zero-length byte string or an empty map).
    #[error("{object}'s protected header is empty: it must carry alg ES256, kid and typ")]
    ProtectedHeaderEmpty {
        /// What was being decoded.
        object: ObjectType,
    },
    /// The algorithm is absent from the protected header or is not ES256.
    #[error("algorithm not allowed: only ES256 (-7) in the protected header is accepted")]
    AlgorithmNotAllowed,
    /// The `crit` header lists parameters this verifier does not process.
    #[error("the protected header marks parameters critical that this verifier does not understand")]
    UnknownCritical,
    /// A header parameter that this format does not use (including anything unprotected).
    #[error("unexpected COSE header parameter: {0}")]
    UnexpectedHeader(String),

    // ---- keys and signatures --------------------------------------------------------------
    /// The grant's `kid` names no trusted authority key.
    #[error("grant signed by unknown authority key {kid}: add the authority's key to the trust set")]
    UnknownAuthorityKey {
        /// The kid, hex.
        kid: String,
    },
    /// The grant's issuer is not the authority that owns the signing key.
    #[error("grant issuer {found:?} does not own the signing key (authority {expected:?})")]
    GrantIssuerMismatch {
        /// The key owner's id.
        expected: String,
        /// The `iss` claim.
        found: String,
    },
    /// The grant's signature does not verify under the authority key.
    #[error("grant signature is invalid")]
    GrantSignatureInvalid,
    /// The warrant's `kid` is not the thumbprint of the grant's confirmation key.
    #[error("warrant is signed by a key other than the one the grant confirms")]
    WarrantKeyMismatch,
    /// The warrant's signature does not verify under the grant's confirmation key.
    #[error("warrant signature is invalid")]
    WarrantSignatureInvalid,
    /// An enrollment request's proof-of-possession signature does not verify.
    #[error("enrollment request signature is invalid (proof of possession failed)")]
    EnrollmentSignatureInvalid,
    /// One key is listed under two trusted authorities: which one it speaks for would be
    /// ambiguous, so the verifier is not built.
    #[error("key {kid} is listed under two trusted authorities, {first:?} and {second:?}: list each key under one authority")]
    TrustedKeyConflict {
        /// The key's id, hex.
        kid: String,
        /// The authority it was first listed under.
        first: String,
        /// The other authority.
        second: String,
    },
    /// Two trusted authorities have the same issuer id: they would be merged into one, each
    /// able to speak for the other, so the verifier is not built.
    #[error("the authority id {issuer:?} is trusted twice: give each authority one entry with all its keys (two authorities must not share an id)")]
    TrustedIssuerRepeated {
        /// The repeated issuer id.
        issuer: String,
    },
    /// A status list's signature does not verify, or its key is not trusted.
    #[error("status list signature is invalid or by an untrusted key")]
    StatusListSignatureInvalid,
    /// The signer could not produce a signature.
    #[error("signing failed: {0}")]
    Signing(String),

    // ---- time -----------------------------------------------------------------------------
    /// The grant's `nbf` is in the future.
    #[error("grant is not valid before {not_before} (now {now})")]
    GrantNotYetValid {
        /// nbf
        not_before: u64,
        /// Verifier clock.
        now: u64,
    },
    /// The grant's `exp` has passed.
    #[error("grant expired at {expired_at} (now {now}): ask the authority for a new grant")]
    GrantExpired {
        /// exp
        expired_at: u64,
        /// Verifier clock.
        now: u64,
    },
    /// The warrant's `iat` is in the future beyond the allowed clock skew.
    #[error("warrant issued in the future ({issued_at}, now {now}): check the device's clock")]
    WarrantNotYetValid {
        /// iat
        issued_at: u64,
        /// Verifier clock.
        now: u64,
    },
    /// The warrant's `exp` has passed.
    #[error("warrant expired at {expired_at} (now {now})")]
    WarrantExpired {
        /// exp
        expired_at: u64,
        /// Verifier clock.
        now: u64,
    },
    /// The warrant lives longer than the grant allows, or outside the grant's window.
    #[error("warrant lifetime {lifetime}s is not within the grant's limits: {reason}")]
    WarrantLifetimeExceeded {
        /// exp - iat
        lifetime: u64,
        /// Which limit.
        reason: &'static str,
    },

    // ---- binding to the operation ---------------------------------------------------------
    /// The warrant is for another audience.
    #[error("warrant is for audience {found:?}, this verifier is {expected:?}")]
    AudienceMismatch {
        /// This verifier's audience.
        expected: String,
        /// The `aud` claim.
        found: String,
    },
    /// The warrant's issuer is not the grant's principal.
    #[error("warrant issuer {found:?} is not the grant's principal {expected:?}")]
    PrincipalMismatch {
        /// The grant's `sub`.
        expected: String,
        /// The warrant's `iss`.
        found: String,
    },
    /// The verifier requires a nonce it issued and the warrant has none.
    #[error("warrant carries no nonce but this verifier issued one")]
    NonceMissing,
    /// The warrant's nonce is not the one the verifier issued.
    #[error("warrant nonce does not match the nonce this verifier issued")]
    NonceMismatch,
    /// The request method differs from the one the warrant binds.
    #[error("request method {found:?} differs from the warrant's {expected:?}")]
    RequestMethodMismatch {
        /// Bound method.
        expected: String,
        /// Actual method.
        found: String,
    },
    /// The request target differs from the one the warrant binds.
    #[error("request target {found:?} differs from the warrant's {expected:?}")]
    RequestTargetMismatch {
        /// Bound target.
        expected: String,
        /// Actual target.
        found: String,
    },
    /// The warrant binds a request target that verifiers refuse (see [`TargetDefect`]).
    #[error("warrant binds request target {target:?}, which is refused: {defect}")]
    RequestTargetInvalid {
        /// The bound target.
        target: String,
        /// What is wrong with it.
        defect: TargetDefect,
    },
    /// A warrant was asked for a request target that verifiers would refuse; nothing was signed.
    #[error("refusing to sign a warrant for request target {target:?}: {defect}; give the target exactly as the service reconstructs it")]
    RequestTargetUnsignable {
        /// The target asked for.
        target: String,
        /// What is wrong with it.
        defect: TargetDefect,
    },
    /// The request body's SHA-256 differs from the one the warrant binds.
    #[error("request body does not match the digest in the warrant")]
    RequestBodyMismatch,
    /// The warrant's action is not the one the service says the request performs.
    #[error("warrant is for action {found:?} but this request performs {expected:?}")]
    ActionMismatch {
        /// The action the service expects.
        expected: String,
        /// The warrant's `action`.
        found: String,
    },
    /// The warrant's resource is not the one the service says the request acts on.
    #[error("warrant is for resource {found:?} but this request acts on {expected:?}")]
    ResourceMismatch {
        /// The resource the service expects.
        expected: String,
        /// The warrant's `resource`.
        found: String,
    },

    // ---- replay and revocation ------------------------------------------------------------
    /// This warrant id was already accepted.
    #[error("warrant {id} was already used (replay)")]
    Replayed {
        /// cti, hex
        id: String,
    },
    /// The replay store is full of unexpired ids; refusing rather than forgetting one.
    #[error("replay store is full ({capacity} live warrant ids): refusing until some expire")]
    ReplayStoreFull {
        /// Its capacity.
        capacity: usize,
    },
    /// The replay store could not be reached or did not answer; refusing, since whether the
    /// warrant was used before is unknown.
    #[error("replay store unavailable: {reason}; refusing until it answers")]
    ReplayStoreUnavailable {
        /// What failed (never a credential: the store's own message, for the operator).
        reason: String,
    },
    /// No status list of the grant's issuer is held for the grant's status list URI.
    #[error("no status list of authority {issuer:?} held for {uri:?}: install that authority's latest status list")]
    StatusListMissing {
        /// The grant's issuer.
        issuer: String,
        /// The URI the grant references.
        uri: String,
    },
    /// The held status list is expired (the verifier may be frozen on old data).
    #[error("status list {uri:?} expired at {expired_at} (now {now}): fetch a fresh one")]
    StatusListExpired {
        /// The list's URI.
        uri: String,
        /// Its exp.
        expired_at: u64,
        /// Verifier clock.
        now: u64,
    },
    /// A status list older than the held one was offered.
    #[error("status list sequence {offered} is older than the held {held} (rollback)")]
    StatusListRollback {
        /// Held sequence.
        held: u64,
        /// Offered sequence.
        offered: u64,
    },
    /// A different status list with the same sequence as the held one was offered.
    #[error(
        "status list sequence {sequence} differs from the held list with the same sequence (equivocation)"
    )]
    StatusListForked {
        /// The sequence.
        sequence: u64,
    },
    /// The next status list does not name the held list as its predecessor.
    #[error("status list {sequence} does not chain to the held list {held}")]
    StatusListChainBroken {
        /// Offered sequence.
        sequence: u64,
        /// Held sequence.
        held: u64,
    },
    /// The status list's `iss` is not the authority that owns its signing key.
    #[error(
        "status list claims issuer {claimed:?} but is signed by a key of authority {key_owner:?}: a list speaks only for its signer"
    )]
    StatusListIssuerMismatch {
        /// The authority owning the signing key.
        key_owner: String,
        /// The list's `iss` claim.
        claimed: String,
    },
    /// Bytes follow the end of the zlib stream in a status list's `lst`.
    #[error("status list has {extra} bytes after the end of its zlib stream; nothing may follow it")]
    StatusListTrailingData {
        /// How many bytes follow the stream.
        extra: usize,
    },
    /// The status list covers fewer entries than every list must (it is padded so that it
    /// does not reveal how few grants exist).
    #[error("status list covers {entries} entries, fewer than the minimum {minimum}")]
    StatusListTooShort {
        /// Entries covered.
        entries: u64,
        /// The minimum.
        minimum: u64,
    },
    /// The grant's status index is outside the list.
    #[error("grant status index {index} is outside the status list ({size} entries)")]
    StatusIndexOutOfRange {
        /// The index.
        index: u64,
        /// The list's size.
        size: u64,
    },
    /// The grant is revoked.
    #[error("grant {grant_id} is revoked (status list {uri:?}, sequence {sequence})")]
    Revoked {
        /// Grant cti, hex.
        grant_id: String,
        /// Status list URI.
        uri: String,
        /// Sequence of the list that says so.
        sequence: u64,
    },

    // ---- device and policy ----------------------------------------------------------------
    /// The evidence failed appraisal.
    #[error("device evidence rejected: {0}")]
    Evidence(#[from] AttestationError),
    /// The device key is a software key and this verifier does not accept those.
    #[error("device key is a software key (no hardware protection) and this verifier does not allow software evidence")]
    SoftwareEvidenceNotAllowed,
    /// The device's evidence is self-reported (a PKCS#11 token describing itself, which a
    /// software key can imitate) and this verifier does not accept that.
    #[error("device evidence is self-reported by its key store (PKCS#11), not attested by a third party, and this verifier does not allow self-reported evidence")]
    SelfReportedEvidenceNotAllowed,
    /// A Cedar policy set could not be parsed.
    #[error("{which} policy is invalid: {reason}")]
    PolicyInvalid {
        /// "grant" or "local".
        which: &'static str,
        /// Parser message.
        reason: String,
    },
    /// A Cedar policy set did not permit the request.
    #[error("{which} policy denies {action} on {resource}: {reason}")]
    PolicyDenied {
        /// "grant" or "local".
        which: &'static str,
        /// The action asked for.
        action: String,
        /// The resource.
        resource: String,
        /// Which policies decided, or that none permitted.
        reason: String,
    },
    /// A policy could not be evaluated (a missing attribute, a wrong type, an extension
    /// function's error, an overflow). Cedar skips such a policy; a skipped `forbid` would
    /// let the request through, so any evaluation error is a denial.
    #[error("{which} policy could not be evaluated for {action} on {resource}, so it denies: {errors}")]
    PolicyEvaluationFailed {
        /// "grant" or "local".
        which: &'static str,
        /// The action asked for.
        action: String,
        /// The resource.
        resource: String,
        /// Each failing policy (by its `@id` where it has one) and Cedar's error.
        errors: String,
    },
}

impl Error {
    /// A stable, machine-readable name for this rejection (used in JSON output and logs).
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "too_large",
            Error::TooDeep { .. } => "too_deep",
            Error::Malformed { .. } => "malformed",
            Error::NotTagged { .. } => "not_tagged",
            Error::TrailingBytes { .. } => "trailing_bytes",
            Error::NonCanonical { .. } => "non_canonical",
            Error::DuplicateKey { .. } => "duplicate_key",
            Error::UnknownClaim { .. } => "unknown_claim",
            Error::MissingClaim { .. } => "missing_claim",
            Error::EmptyText { .. } => "empty_text",
            Error::InvalidClaim { .. } => "invalid_claim",
            Error::WrongObjectType { .. } => "wrong_object_type",
            Error::ProtectedHeaderEmpty { .. } => "protected_header_empty",
            Error::AlgorithmNotAllowed => "algorithm_not_allowed",
            Error::UnknownCritical => "unknown_critical",
            Error::UnexpectedHeader(_) => "unexpected_header",
            Error::UnknownAuthorityKey { .. } => "unknown_authority_key",
            Error::GrantIssuerMismatch { .. } => "grant_issuer_mismatch",
            Error::GrantSignatureInvalid => "grant_signature_invalid",
            Error::WarrantKeyMismatch => "warrant_key_mismatch",
            Error::WarrantSignatureInvalid => "warrant_signature_invalid",
            Error::EnrollmentSignatureInvalid => "enrollment_signature_invalid",
            Error::TrustedKeyConflict { .. } => "trusted_key_conflict",
            Error::TrustedIssuerRepeated { .. } => "trusted_issuer_repeated",
            Error::StatusListSignatureInvalid => "status_list_signature_invalid",
            Error::Signing(_) => "signing_failed",
            Error::GrantNotYetValid { .. } => "grant_not_yet_valid",
            Error::GrantExpired { .. } => "grant_expired",
            Error::WarrantNotYetValid { .. } => "warrant_not_yet_valid",
            Error::WarrantExpired { .. } => "warrant_expired",
            Error::WarrantLifetimeExceeded { .. } => "warrant_lifetime_exceeded",
            Error::AudienceMismatch { .. } => "audience_mismatch",
            Error::PrincipalMismatch { .. } => "principal_mismatch",
            Error::NonceMissing => "nonce_missing",
            Error::NonceMismatch => "nonce_mismatch",
            Error::RequestMethodMismatch { .. } => "request_method_mismatch",
            Error::RequestTargetMismatch { .. } => "request_target_mismatch",
            Error::RequestTargetInvalid { .. } => "request_target_invalid",
            Error::RequestTargetUnsignable { .. } => "request_target_unsignable",
            Error::RequestBodyMismatch => "request_body_mismatch",
            Error::ActionMismatch { .. } => "action_mismatch",
            Error::ResourceMismatch { .. } => "resource_mismatch",
            Error::Replayed { .. } => "replayed",
            Error::ReplayStoreFull { .. } => "replay_store_full",
            Error::ReplayStoreUnavailable { .. } => "replay_store_unavailable",
            Error::StatusListMissing { .. } => "status_list_missing",
            Error::StatusListExpired { .. } => "status_list_expired",
            Error::StatusListRollback { .. } => "status_list_rollback",
            Error::StatusListForked { .. } => "status_list_forked",
            Error::StatusListChainBroken { .. } => "status_list_chain_broken",
            Error::StatusListIssuerMismatch { .. } => "status_list_issuer_mismatch",
            Error::StatusListTrailingData { .. } => "status_list_trailing_data",
            Error::StatusListTooShort { .. } => "status_list_too_short",
            Error::StatusIndexOutOfRange { .. } => "status_index_out_of_range",
            Error::Revoked { .. } => "revoked",
            Error::Evidence(_) => "evidence_rejected",
            Error::SoftwareEvidenceNotAllowed => "software_evidence_not_allowed",
            Error::SelfReportedEvidenceNotAllowed => "self_reported_evidence_not_allowed",
            Error::PolicyInvalid { .. } => "policy_invalid",
            Error::PolicyDenied { .. } => "policy_denied",
            Error::PolicyEvaluationFailed { .. } => "policy_evaluation_failed",
        }
    }

    /// What kind of failure this is: what a service acts on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::TooLarge { .. }
            | Error::TooDeep { .. }
            | Error::Malformed { .. }
            | Error::NotTagged { .. }
            | Error::TrailingBytes { .. }
            | Error::NonCanonical { .. }
            | Error::DuplicateKey { .. }
            | Error::UnknownClaim { .. }
            | Error::MissingClaim { .. }
            | Error::EmptyText { .. }
            | Error::InvalidClaim { .. }
            | Error::WrongObjectType { .. }
            | Error::ProtectedHeaderEmpty { .. }
            | Error::AlgorithmNotAllowed
            | Error::UnknownCritical
            | Error::UnexpectedHeader(_)
            | Error::StatusListTrailingData { .. } => ErrorKind::Decode,
            Error::UnknownAuthorityKey { .. }
            | Error::GrantIssuerMismatch { .. }
            | Error::GrantSignatureInvalid
            | Error::WarrantKeyMismatch
            | Error::WarrantSignatureInvalid
            | Error::EnrollmentSignatureInvalid
            | Error::StatusListSignatureInvalid
            | Error::StatusListIssuerMismatch { .. }
            | Error::PrincipalMismatch { .. } => ErrorKind::Signature,
            Error::GrantNotYetValid { .. }
            | Error::GrantExpired { .. }
            | Error::WarrantNotYetValid { .. }
            | Error::WarrantExpired { .. }
            | Error::WarrantLifetimeExceeded { .. } => ErrorKind::Time,
            Error::AudienceMismatch { .. }
            | Error::NonceMissing
            | Error::NonceMismatch
            | Error::RequestMethodMismatch { .. }
            | Error::RequestTargetMismatch { .. }
            | Error::RequestTargetInvalid { .. }
            | Error::RequestBodyMismatch
            | Error::ActionMismatch { .. }
            | Error::ResourceMismatch { .. } => ErrorKind::Binding,
            Error::Replayed { .. } => ErrorKind::Replay,
            Error::ReplayStoreFull { .. } | Error::ReplayStoreUnavailable { .. } => ErrorKind::Unavailable,
            Error::StatusListMissing { .. }
            | Error::StatusListExpired { .. }
            | Error::StatusListRollback { .. }
            | Error::StatusListForked { .. }
            | Error::StatusListChainBroken { .. }
            | Error::StatusListTooShort { .. }
            | Error::StatusIndexOutOfRange { .. }
            | Error::Revoked { .. } => ErrorKind::Status,
            Error::Evidence(_)
            | Error::SoftwareEvidenceNotAllowed
            | Error::SelfReportedEvidenceNotAllowed => ErrorKind::Evidence,
            Error::PolicyInvalid { .. }
            | Error::PolicyDenied { .. }
            | Error::PolicyEvaluationFailed { .. } => ErrorKind::Policy,
            Error::TrustedKeyConflict { .. } | Error::TrustedIssuerRepeated { .. } => {
                ErrorKind::Configuration
            }
            Error::Signing(_) | Error::RequestTargetUnsignable { .. } => ErrorKind::Issuing,
        }
    }
}

/// The kinds of [`Error`](enum@Error): each groups the rejections a service handles alike.
///
/// Every kind but [`ErrorKind::Unavailable`], [`ErrorKind::Configuration`] and
/// [`ErrorKind::Issuing`] is a verdict on the object presented: refuse the request (HTTP 401 or
/// 403). Those three say the verifier or the issuer could not do its part: answer 503 or 500,
/// and never accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes are not a well-formed object of the expected type (§1, §2 of FORMAT.md).
    Decode,
    /// A signature does not verify, its key is not trusted, or a signer speaks for someone
    /// its key does not (grant issuer, warrant principal, status list issuer).
    Signature,
    /// The grant or the warrant is not valid now (or lives longer than allowed); a device's
    /// clock may be off.
    Time,
    /// The warrant is for another request: audience, nonce, method, target, body, action or
    /// resource differ.
    Binding,
    /// The warrant was used before.
    Replay,
    /// The verifier's replay store is full or unreachable: not a verdict on the warrant; retry
    /// later (fail closed meanwhile).
    Unavailable,
    /// Revocation: the grant is revoked, or the status list needed to tell is missing,
    /// expired, or was refused at installation (rollback, equivocation, broken chain).
    Status,
    /// The device's evidence failed appraisal or is of an assurance this verifier does not
    /// accept.
    Evidence,
    /// A Cedar policy (the grant's or the verifier's own) is invalid or does not permit.
    Policy,
    /// The verifier's trust configuration is inconsistent; it was not built.
    Configuration,
    /// Producing an object failed (the signer, or a request no verifier would accept); nothing
    /// was signed.
    Issuing,
}
