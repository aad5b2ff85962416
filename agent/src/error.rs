use std::path::PathBuf;

use thiserror::Error;

/// Why a `warrantd` operation failed. [`crate::daemon`] answers each with an HTTP status
/// and its [`code`](Error::code).
#[derive(Debug, Error)]
pub enum Error {
    /// An object was rejected (verification, or an enrollment the authority refuses).
    #[error(transparent)]
    Rejected(#[from] warrant_envelope::Error),
    /// The key store failed.
    #[error(transparent)]
    KeyStore(#[from] warrant_hsm_backends::Error),
    /// A request field is not what the API allows (400).
    #[error(transparent)]
    Api(#[from] warrant_api::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state database failed or holds something it should not.
    #[error("state database {}: {reason}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The daemon's configuration is invalid (the message names file, line and key).
    #[error("{0}")]
    Config(String),
    /// The authority refuses the operation (its own rules, not a malformed object).
    #[error("authority refuses: {0}")]
    AuthorityRefuses(String),
    /// The enrollment asks for another principal than the one the authority decided on.
    #[error(
        "authority refuses: the enrollment asks for principal {requested:?} but the authority \
         decided on {intended:?} ({decided_by}); enroll again as {intended:?}, or make a new \
         challenge for {requested:?} if that is who the device is for"
    )]
    EnrollmentPrincipalMismatch {
        /// The principal the authority decided on.
        intended: String,
        /// The principal the enrollment names.
        requested: String,
        /// Where the decision was recorded: the challenge or the grant request.
        decided_by: &'static str,
    },
    /// The grant request names another principal than the one its challenge was made for.
    #[error(
        "authority refuses: the grant names principal {grant:?} but its challenge was made for \
         {challenge:?}; grant as {challenge:?} or make a new challenge for {grant:?}"
    )]
    GrantPrincipalConflict {
        /// The principal recorded with the challenge.
        challenge: String,
        /// The principal the grant request names.
        grant: String,
    },
    /// Neither the challenge nor the grant request names the principal.
    #[error(
        "authority refuses: no principal was decided for this enrollment; give the principal \
         with `authority grant --principal` (or make challenges with `authority challenge --principal`)"
    )]
    PrincipalUndecided,
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// The daemon's rules refuse the caller.
    #[error("refused by rule {rule:?}: {reason}")]
    Forbidden {
        /// The rule that applied (`default-deny` when none matched).
        rule: String,
        /// Why.
        reason: String,
    },
    /// The caller exceeded a rule's rate limit.
    #[error("rate limit of rule {rule:?} exceeded; retry in a moment")]
    RateLimited {
        /// The rule whose limit applies.
        rule: String,
    },
    /// A uid was refused more often than `[limits]` lets the audit log record line by line.
    #[error(
        "{who} was refused more than {burst} times in a burst ({per_second} a second after it): further refusals are answered 429 and counted in the audit log, not written one by one; fix the requests or ask for a rule"
    )]
    TooManyRefusals {
        /// `uid N`, or `an unidentified caller`.
        who: String,
        /// The bucket's size (`refusal_burst`).
        burst: u32,
        /// Its refill rate (`refusals_per_second`).
        per_second: u32,
    },
    /// The calling process could not be identified, or changed while its request was handled.
    #[error("caller identity: {0}")]
    Caller(String),
    /// The daemon is short of a resource (file descriptors, memory) and cannot serve now.
    #[error("warrantd is short of resources and cannot serve this request now ({0}); retry shortly")]
    Unavailable(String),
    /// The audit log cannot record (its writer stopped, a write or fsync failed): nothing is
    /// done that it cannot record.
    #[error("audit log: {0}")]
    Audit(String),
    /// The daemon could not start one of its parts (a runtime, a thread, signal handlers).
    #[error("cannot start {what}: {source}")]
    Start {
        /// The part.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The daemon failed, not the request (500): a task ended without its outcome, an
    /// encoding that cannot fail did.
    #[error("internal error while {task}: {reason}")]
    Internal {
        /// What the daemon was doing.
        task: &'static str,
        /// What failed.
        reason: String,
    },
    /// An argument is not acceptable.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// A stable machine-readable name for API error bodies and the demo's output.
    pub fn code(&self) -> &str {
        match self {
            Error::Rejected(e) => e.code(),
            Error::KeyStore(_) => "key_store",
            // The codes these had when they were usage errors.
            Error::Api(_) => "usage",
            // Audit failures are I/O on the audit log; their code stays.
            Error::Io { .. } | Error::Audit(_) => "io",
            Error::Start { .. } | Error::Internal { .. } => "internal",
            Error::BadFile { .. } => "bad_file",
            Error::Database { .. } => "database",
            Error::Config(_) => "config",
            Error::AuthorityRefuses(_) => "authority_refuses",
            Error::EnrollmentPrincipalMismatch { .. } => "enrollment_principal_mismatch",
            Error::GrantPrincipalConflict { .. } => "grant_principal_conflict",
            Error::PrincipalUndecided => "principal_undecided",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Forbidden { .. } => "forbidden",
            Error::RateLimited { .. } => "rate_limited",
            Error::TooManyRefusals { .. } => "too_many_refusals",
            Error::Caller(_) => "caller_identity",
            Error::Unavailable(_) => "unavailable",
            Error::Usage(_) => "usage",
        }
    }
}
