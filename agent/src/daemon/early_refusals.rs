//! Refusals made before any handler runs, answered in JSON and audited like the rest:
//! - axum's own rejections (an extractor that cannot decode the path, e.g. a percent-escape
//!   that is not UTF-8), which are plain text: a router layer rewrites them;
//! - hyper's automatic answers to a request it cannot parse (400: a malformed request line,
//!   header or a target that is not ASCII; 414; 431: headers too large), which it writes
//!   itself with an empty body: [`HyperAnswer`] recognises them where the connection writes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::audit::{Decision, Entry};
use super::error::ApiError;
use super::peer::Caller;
use super::state::Daemon;

/// The most of a rejection's text kept in its message.
const MAX_REJECTION_TEXT: usize = 1024;

/// Router layer: an error answer that is not JSON (an extractor's rejection) becomes a JSON
/// error with the same status, and is audited.
pub async fn rejections_as_json(State(daemon): State<Arc<Daemon>>, req: Request, next: Next) -> Response {
    let caller = req.extensions().get::<Caller>().cloned();
    let response = next.run(req).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_REJECTION_TEXT).collect().await;
    let text = body.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned()).unwrap_or_default();
    let message = format!("the request was refused before it reached its handler: {text}");
    refuse(&daemon, caller.as_ref(), ApiError::new(status, "bad_request", message)).await.into_response()
}

/// Audits `error` as a refusal; the answer is `error`, or why it could not be audited.
async fn refuse(daemon: &Daemon, caller: Option<&Caller>, error: ApiError) -> ApiError {
    let entry =
        Entry { operation: "request", reason: Some(error.body.message.clone()), ..Default::default() };
    match daemon.audit.record(caller, Decision::Deny, entry).await {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}

/// One of hyper's automatic answers to a request it could not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HyperAnswer {
    status: StatusCode,
}

/// The status lines hyper answers parse errors with (hyper 1's `role::Server::on_error`),
/// always with an empty body; no answer of warrantd's own has an empty error body.
const HYPER_ANSWERS: [(&[u8], StatusCode); 3] = [
    (b"HTTP/1.1 400 Bad Request\r\n", StatusCode::BAD_REQUEST),
    (b"HTTP/1.1 414 URI Too Long\r\n", StatusCode::URI_TOO_LONG),
    (b"HTTP/1.1 431 Request Header Fields Too Large\r\n", StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
];

impl HyperAnswer {
    /// Where in `written` (bytes hyper hands the connection) one of its automatic answers
    /// starts, if it ends them: the answers before it are written as they are.
    pub fn find(written: &[u8]) -> Option<(usize, Self)> {
        if !written.ends_with(b"\r\n\r\n") {
            return None;
        }
        HYPER_ANSWERS.iter().find_map(|(line, status)| {
            let start = written.windows(line.len()).rposition(|w| w == *line)?;
            let head = String::from_utf8_lossy(&written[start..]).to_ascii_lowercase();
            // Only its head, with no body: raw CR LF never occurs in a JSON body.
            let bare =
                head.contains("\r\ncontent-length: 0\r\n") && head.find("\r\n\r\n") == Some(head.len() - 4);
            bare.then_some((start, Self { status: *status }))
        })
    }

    /// Audits the refusal and returns the JSON answer that replaces hyper's (closing the
    /// connection, as hyper's would).
    pub async fn answer(self, daemon: Arc<Daemon>, caller: Caller, max_header_bytes: usize) -> Vec<u8> {
        let (code, message) = match self.status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "headers_too_large",
                format!("the request's headers exceed the {max_header_bytes} bytes warrantd reads"),
            ),
            StatusCode::URI_TOO_LONG => ("uri_too_long", "the request's target is too long".to_owned()),
            _ => (
                "bad_request",
                "the request is not HTTP/1.1 warrantd can parse (its request line or a header is malformed, or its target is not ASCII)".to_owned(),
            ),
        };
        let error = refuse(&daemon, Some(&caller), ApiError::new(self.status, code, message)).await;
        closing_response(&error)
    }
}

/// `error` as a whole HTTP/1.1 response that closes the connection.
pub fn closing_response(error: &ApiError) -> Vec<u8> {
    let body = serde_json::to_string(&error.body).unwrap_or_default();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        error.status.as_u16(),
        error.status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_answers_are_found_after_earlier_answers_and_ours_are_not() {
        let hyper400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(HyperAnswer::find(hyper400), Some((0, HyperAnswer { status: StatusCode::BAD_REQUEST })));
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let both = [&earlier[..], &hyper400[..]].concat();
        assert_eq!(HyperAnswer::find(&both).map(|(at, _)| at), Some(earlier.len()));
        let hyper431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            HyperAnswer::find(hyper431).map(|(_, a)| a.status),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let ours = closing_response(&ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "x"));
        assert_eq!(HyperAnswer::find(&ours), None);
        let ours_head_only = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 40\r\n\r\n";
        assert_eq!(HyperAnswer::find(ours_head_only), None, "a head whose body follows later");
    }
}
