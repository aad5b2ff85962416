//! The JSON body extractor: bounded by the configured size, strict (unknown fields refused),
//! and every refusal a JSON error that is also audited.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::audit::{Decision, Entry};
use super::error::ApiError;
use super::peer::Caller;
use super::state::Daemon;

/// A request body parsed as JSON `T`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<Arc<Daemon>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, daemon: &Arc<Daemon>) -> Result<Self, ApiError> {
        let caller = req.extensions().get::<Caller>().cloned();
        let result = parse(req, daemon.limits().max_body_bytes).await;
        if let Err(e) = &result {
            let entry =
                Entry { operation: "request", reason: Some(e.body.message.clone()), ..Default::default() };
            daemon.audit.record(caller.as_ref(), Decision::Deny, entry).await?;
        }
        result.map(JsonBody)
    }
}

async fn parse<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, ApiError> {
    let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request bodies are limited to {limit} bytes"),
        )
    };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_body", format!("reading the body: {e}"))
            }
        })?
        .to_bytes();
    // serde reads a struct from a JSON array too (`["name"]` as `{"name": ...}`): every body
    // of this API is an object, and nothing else is accepted.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "the JSON body must be an object"));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the JSON body is not acceptable: {e}"))
    })
}
