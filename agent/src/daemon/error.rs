//! API errors: an HTTP status and a JSON body `{"error", "message", "rule"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use warrant_api::ErrorBody;

use crate::Error;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with its own status and code (limits and protocol errors).
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody { error: code.into(), message: message.into(), rule: None } }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use warrant_hsm_backends::Error as Store;
        let status = match &e {
            Error::Usage(_) | Error::Api(_) => StatusCode::BAD_REQUEST,
            Error::Rejected(warrant_envelope::Error::Signing(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Rejected(_)
            | Error::AuthorityRefuses(_)
            | Error::EnrollmentPrincipalMismatch { .. }
            | Error::GrantPrincipalConflict { .. }
            | Error::PrincipalUndecided => StatusCode::UNPROCESSABLE_ENTITY,
            Error::NotFound(_) | Error::KeyStore(Store::KeyNotFound(_)) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::KeyStore(Store::KeyExists(_)) => StatusCode::CONFLICT,
            Error::KeyStore(Store::InvalidKeyName(_) | Store::Unsupported(_)) => StatusCode::BAD_REQUEST,
            Error::Forbidden { .. } | Error::Caller(_) => StatusCode::FORBIDDEN,
            Error::RateLimited { .. } | Error::TooManyRefusals { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            // The daemon's own failures: its files (configured certificates, the state
            // database), its key store, its audit log, its tasks.
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let rule = match &e {
            Error::Forbidden { rule, .. } | Error::RateLimited { rule } => Some(rule.clone()),
            _ => None,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("{e}");
        }
        Self { status, body: ErrorBody { error: e.code().to_owned(), message: e.to_string(), rule } }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: Error) -> (StatusCode, String, String) {
        let api = ApiError::from(e);
        (api.status, api.body.error, api.body.message)
    }

    #[test]
    fn the_daemons_own_failures_are_500_with_their_code() {
        let (status, code, message) =
            answer(Error::Internal { task: "encoding evidence", reason: "out of memory".into() });
        assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        assert_eq!(message, "internal error while encoding evidence: out of memory");
        let audit = answer(Error::Audit("the audit writer stopped".into()));
        assert_eq!((audit.0, audit.1.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "io"));
        let configured_file =
            answer(Error::BadFile { path: "/etc/warrant/ek.pem".into(), reason: "no PEM".into() });
        assert_eq!(configured_file.0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_field_the_api_does_not_allow_is_400_usage() {
        let field = warrant_api::hex_field::<32>("nonce", "zz").unwrap_err();
        let (status, code, message) = answer(Error::from(field));
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "usage"));
        assert_eq!(message, "nonce must be 32 bytes in hex (64 hex digits)");
    }
}
