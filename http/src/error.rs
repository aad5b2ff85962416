use std::path::PathBuf;

use http::StatusCode;
use thiserror::Error;
use warrant_envelope::ErrorKind;

/// Every way warrant-http fails: a request refused (see [`Error::status`] for the HTTP answer
/// each gets, per docs/HTTP.md) or a configuration that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // ---- a request refused ----------------------------------------------------------------
    /// The request has no `Authorization` header (or one of another scheme).
    #[error("no warrant: send one in \"Authorization: Warrant <base64url>\"")]
    MissingWarrant,
    /// The `Authorization: Warrant` header is not one header of one base64url token.
    #[error("the Authorization header is malformed: {0}")]
    MalformedAuthorization(&'static str),
    /// The body is larger than the verifier hashes.
    #[error("the request body is over the {limit}-byte limit")]
    BodyTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The body could not be read to its end.
    #[error("the request body could not be read: {0}")]
    BodyUnreadable(String),
    /// The request's path cannot be made into the target a warrant binds (`*`, or a form the
    /// verifier refuses).
    #[error("the request target cannot be verified: {0}")]
    TargetUnusable(String),
    /// The request names a method besides its request line's (an override header, a
    /// `_method` parameter) or one that is not upper case: the service might perform another
    /// operation than the one verified.
    #[error("the request's method is ambiguous: {0}; send the method you mean, without overrides")]
    AmbiguousMethod(String),
    /// No route of the route table matches the request: no operation is defined for it, so no
    /// warrant can authorize it.
    #[error("no route matches {method} {path}")]
    NoRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The verification did not finish (its task failed): nothing was decided, so the
    /// request is refused (503).
    #[error("the request could not be verified: {0}")]
    Undecided(String),
    /// The verifier refused the warrant, or could not decide.
    #[error(transparent)]
    Verification(#[from] warrant_envelope::Error),

    // ---- configuration --------------------------------------------------------------------
    /// The configured external origin is not `scheme://host[:port]` in normal form.
    #[error("origin {origin:?} is not usable: {reason}")]
    Origin {
        /// The origin given.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The route table is invalid.
    #[error("route table: {0}")]
    Routes(String),
    /// A file could not be read.
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
    #[cfg(feature = "fetch")]
    /// A status list URL that cannot be fetched from: not `https://` (or `http://` to a
    /// loopback address), or not the URL of a file.
    #[error("status list URL {url:?} is not usable: {reason}")]
    StatusUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    #[cfg(feature = "fetch")]
    /// A status list could not be fetched: no connection, TLS refused, the answer broken off.
    #[error("fetching the status list {url}: {reason}")]
    StatusFetchFailed {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    #[cfg(feature = "fetch")]
    /// Fetching a status list took longer than allowed.
    #[error("fetching the status list {url}: no complete answer within {seconds} s")]
    StatusFetchTimeout {
        /// The URL.
        url: String,
        /// The time allowed, seconds.
        seconds: f64,
    },
    #[cfg(feature = "fetch")]
    /// The status host answered with a status other than 200 (or 304 to a conditional request).
    #[error("fetching the status list {url}: the server answered {status}")]
    StatusFetchStatus {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    #[cfg(feature = "fetch")]
    /// The status host answered with a redirect, which is not followed.
    #[error("fetching the status list {url}: redirected to {location:?}, which is not followed: configure the list's final URL")]
    StatusFetchRedirected {
        /// The URL.
        url: String,
        /// The `Location` it named.
        location: String,
    },
    #[cfg(feature = "fetch")]
    /// The answer is not a status list token (`Content-Type: application/statuslist+cwt`).
    #[error("fetching the status list {url}: the answer's Content-Type is {found:?}, not application/statuslist+cwt")]
    StatusContentType {
        /// The URL.
        url: String,
        /// The Content-Type received (empty: none).
        found: String,
    },
    #[cfg(feature = "fetch")]
    /// The answer is larger than a status list may be.
    #[error("fetching the status list {url}: the answer is over the {limit}-byte limit")]
    StatusTooLarge {
        /// The URL.
        url: String,
        /// The limit, bytes.
        limit: usize,
    },
    /// A status list from a source was refused by the verifier.
    #[error("status list from {source_name}: {error}")]
    StatusList {
        /// The source (its path or URL).
        source_name: String,
        /// Why the verifier refused it.
        error: warrant_envelope::Error,
    },
}

/// The `error` attribute of a `WWW-Authenticate: Warrant` challenge (docs/HTTP.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// The warrant is malformed, badly signed, or for another request.
    InvalidWarrant,
    /// The warrant was used before.
    Replayed,
    /// The warrant's grant is revoked.
    Revoked,
    /// The warrant or its grant is not valid now.
    Expired,
    /// The grant is not from a trusted authority, or the device is not of an accepted kind.
    Untrusted,
    /// A policy denies the operation, or the warrant is for another operation (403).
    InsufficientPolicy,
}

impl Challenge {
    /// The attribute's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Challenge::InvalidWarrant => "invalid_warrant",
            Challenge::Replayed => "replayed",
            Challenge::Revoked => "revoked",
            Challenge::Expired => "expired",
            Challenge::Untrusted => "untrusted",
            Challenge::InsufficientPolicy => "insufficient_policy",
        }
    }
}

impl Error {
    /// A stable machine-readable name: the envelope's [`warrant_envelope::Error::code`] for a
    /// verifier's verdict, else this crate's own.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingWarrant => "missing_warrant",
            Error::MalformedAuthorization(_) => "malformed_authorization",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::BodyUnreadable(_) => "body_unreadable",
            Error::TargetUnusable(_) => "target_unusable",
            Error::NoRoute { .. } => "no_route",
            Error::AmbiguousMethod(_) => "ambiguous_method",
            Error::Undecided(_) => "undecided",
            Error::Verification(e) => e.code(),
            Error::Origin { .. } => "origin_invalid",
            Error::Routes(_) => "routes_invalid",
            Error::Io { .. } => "io",
            Error::BadFile { .. } => "bad_file",
            Error::StatusList { error, .. } => error.code(),
            #[cfg(feature = "fetch")]
            Error::StatusUrl { .. } => "status_url_invalid",
            #[cfg(feature = "fetch")]
            Error::StatusFetchFailed { .. } => "status_fetch_failed",
            #[cfg(feature = "fetch")]
            Error::StatusFetchTimeout { .. } => "status_fetch_timeout",
            #[cfg(feature = "fetch")]
            Error::StatusFetchStatus { .. } => "status_fetch_status",
            #[cfg(feature = "fetch")]
            Error::StatusFetchRedirected { .. } => "status_fetch_redirected",
            #[cfg(feature = "fetch")]
            Error::StatusContentType { .. } => "status_content_type",
            #[cfg(feature = "fetch")]
            Error::StatusTooLarge { .. } => "status_too_large",
        }
    }

    /// The HTTP status the request gets, and the challenge's `error` attribute where the
    /// answer carries one: 401 for a warrant refused, 403 for an operation refused, 413 for a
    /// body over the limit, 400 for a request that cannot be read, 503 when the verifier
    /// cannot decide. Never a success: every error refuses.
    pub fn status(&self) -> (StatusCode, Option<Challenge>) {
        use warrant_envelope::Error as E;
        let unauthorized = |c| (StatusCode::UNAUTHORIZED, Some(c));
        match self {
            Error::MissingWarrant => (StatusCode::UNAUTHORIZED, None),
            Error::MalformedAuthorization(_) => unauthorized(Challenge::InvalidWarrant),
            Error::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, None),
            Error::BodyUnreadable(_) | Error::TargetUnusable(_) | Error::AmbiguousMethod(_) => {
                (StatusCode::BAD_REQUEST, None)
            }
            Error::NoRoute { .. } => (StatusCode::FORBIDDEN, Some(Challenge::InsufficientPolicy)),
            Error::Verification(e) => match (e, e.kind()) {
                // Without the list the verifier cannot tell whether the grant is revoked.
                (E::StatusListMissing { .. } | E::StatusListExpired { .. }, _) => {
                    (StatusCode::SERVICE_UNAVAILABLE, None)
                }
                (E::Revoked { .. }, _) => unauthorized(Challenge::Revoked),
                (E::Replayed { .. }, _) => unauthorized(Challenge::Replayed),
                (E::ActionMismatch { .. } | E::ResourceMismatch { .. }, _) => {
                    (StatusCode::FORBIDDEN, Some(Challenge::InsufficientPolicy))
                }
                (E::PolicyDenied { .. } | E::PolicyEvaluationFailed { .. }, _) => {
                    (StatusCode::FORBIDDEN, Some(Challenge::InsufficientPolicy))
                }
                (
                    E::GrantExpired { .. }
                    | E::GrantNotYetValid { .. }
                    | E::WarrantExpired { .. }
                    | E::WarrantNotYetValid { .. },
                    _,
                ) => unauthorized(Challenge::Expired),
                (E::UnknownAuthorityKey { .. } | E::GrantIssuerMismatch { .. }, _) => {
                    unauthorized(Challenge::Untrusted)
                }
                (_, ErrorKind::Evidence) => unauthorized(Challenge::Untrusted),
                (_, ErrorKind::Unavailable | ErrorKind::Configuration | ErrorKind::Issuing) => {
                    (StatusCode::SERVICE_UNAVAILABLE, None)
                }
                // Decode, signature, binding, time, status and policy verdicts not named above,
                // and kinds a later envelope adds: the warrant is refused.
                _ => unauthorized(Challenge::InvalidWarrant),
            },
            Error::Undecided(_)
            | Error::Origin { .. }
            | Error::Routes(_)
            | Error::Io { .. }
            | Error::BadFile { .. }
            | Error::StatusList { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
            // A fetch failing is never a request's answer; were it one, nothing was decided.
            #[cfg(feature = "fetch")]
            Error::StatusUrl { .. }
            | Error::StatusFetchFailed { .. }
            | Error::StatusFetchTimeout { .. }
            | Error::StatusFetchStatus { .. }
            | Error::StatusFetchRedirected { .. }
            | Error::StatusContentType { .. }
            | Error::StatusTooLarge { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
        }
    }
}
