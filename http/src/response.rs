//! The answer to a refused request (docs/HTTP.md): the status, a `WWW-Authenticate: Warrant`
//! challenge on 401 and 403, and a JSON body with the stable code.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::carriage::SCHEME;
use crate::Error;

/// The longest `error_description` put in a challenge.
const MAX_DESCRIPTION: usize = 300;

/// The response refusing a request for `error`.
pub fn refusal(error: &Error) -> Response<Full<Bytes>> {
    let (status, challenge) = error.status();
    let message = error.to_string();
    let body = json!({
        "error": challenge.map_or_else(|| fallback_error(status), |c| c.as_str()),
        "code": error.code(),
        "message": message,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let value = match challenge {
        Some(c) => Some(format!(
            "{SCHEME} error=\"{}\", error_description=\"{}\"",
            c.as_str(),
            quoted_string_safe(&message)
        )),
        None if status == StatusCode::UNAUTHORIZED => Some(SCHEME.to_owned()),
        None => None,
    };
    // The description holds visible ASCII only, so the value always converts; were it not to,
    // the bare scheme still tells the client how to authenticate.
    if let Some(value) = value {
        let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(SCHEME));
        headers.insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// The JSON `error` of an answer without a challenge.
fn fallback_error(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "missing_warrant",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::BAD_REQUEST => "invalid_request",
        _ => "unavailable",
    }
}

/// `text` made safe for a quoted-string: visible ASCII and spaces, `"` and `\` replaced, and
/// at most [`MAX_DESCRIPTION`] characters (messages may quote what the client sent).
fn quoted_string_safe(text: &str) -> String {
    text.chars()
        .take(MAX_DESCRIPTION)
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn parts(error: &Error) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = refusal(error);
        let status = response.status();
        let challenge = response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        let body = futures_body(response.into_body());
        (status, challenge, serde_json::from_slice(&body).unwrap())
    }

    fn futures_body(body: Full<Bytes>) -> Bytes {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async { body.collect().await.unwrap().to_bytes() })
    }

    #[test]
    fn no_warrant_is_a_bare_challenge() {
        let (status, challenge, body) = parts(&Error::MissingWarrant);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Warrant"));
        assert_eq!(body["code"], "missing_warrant");
    }

    #[test]
    fn each_verdict_gets_its_status_and_challenge() {
        use warrant_envelope::Error as E;
        let cases: Vec<(Error, u16, Option<&str>, &str)> = vec![
            (E::Replayed { id: "ab".into() }.into(), 401, Some("replayed"), "replayed"),
            (
                E::Revoked { grant_id: "g".into(), uri: "u".into(), sequence: 2 }.into(),
                401,
                Some("revoked"),
                "revoked",
            ),
            (E::WarrantExpired { expired_at: 1, now: 2 }.into(), 401, Some("expired"), "warrant_expired"),
            (E::GrantExpired { expired_at: 1, now: 2 }.into(), 401, Some("expired"), "grant_expired"),
            (
                E::UnknownAuthorityKey { kid: "k".into() }.into(),
                401,
                Some("untrusted"),
                "unknown_authority_key",
            ),
            (E::SoftwareEvidenceNotAllowed.into(), 401, Some("untrusted"), "software_evidence_not_allowed"),
            (E::RequestBodyMismatch.into(), 401, Some("invalid_warrant"), "request_body_mismatch"),
            (E::WarrantSignatureInvalid.into(), 401, Some("invalid_warrant"), "warrant_signature_invalid"),
            (
                E::PolicyDenied {
                    which: "grant",
                    action: "a".into(),
                    resource: "r".into(),
                    reason: "x".into(),
                }
                .into(),
                403,
                Some("insufficient_policy"),
                "policy_denied",
            ),
            (
                E::ActionMismatch { expected: "deploy".into(), found: "read".into() }.into(),
                403,
                Some("insufficient_policy"),
                "action_mismatch",
            ),
            (
                Error::NoRoute { method: "GET".into(), path: "/x".into() },
                403,
                Some("insufficient_policy"),
                "no_route",
            ),
            (Error::MalformedAuthorization("x"), 401, Some("invalid_warrant"), "malformed_authorization"),
            (Error::BodyTooLarge { limit: 1 }, 413, None, "body_too_large"),
            (
                E::ReplayStoreUnavailable { reason: "down".into() }.into(),
                503,
                None,
                "replay_store_unavailable",
            ),
            (E::ReplayStoreFull { capacity: 1 }.into(), 503, None, "replay_store_full"),
            (
                E::StatusListMissing { issuer: "i".into(), uri: "u".into() }.into(),
                503,
                None,
                "status_list_missing",
            ),
            (
                E::StatusListExpired { uri: "u".into(), expired_at: 1, now: 2 }.into(),
                503,
                None,
                "status_list_expired",
            ),
        ];
        for (error, status, challenge, code) in cases {
            let (s, c, body) = parts(&error);
            assert_eq!(s.as_u16(), status, "{error}");
            match challenge {
                Some(name) => {
                    let c = c.unwrap_or_else(|| panic!("{error}: no challenge"));
                    assert!(c.starts_with(&format!("Warrant error=\"{name}\", error_description=\"")), "{c}");
                    assert_eq!(body["error"], name);
                }
                None => assert_eq!(c, None, "{error}"),
            }
            assert_eq!(body["code"], code);
            assert_eq!(body["message"], error.to_string());
        }
    }

    #[test]
    fn a_description_quoting_the_client_cannot_break_the_header() {
        let error: Error = warrant_envelope::Error::RequestTargetMismatch {
            expected: "a".into(),
            found: "\"\\\u{1}é".repeat(200),
        }
        .into();
        let (_, challenge, _) = parts(&error);
        let challenge = challenge.unwrap();
        let description = challenge.split("error_description=\"").nth(1).unwrap();
        assert!(description.ends_with('"'));
        assert!(!description[..description.len() - 1].contains(['"', '\\']));
        assert!(description.len() <= MAX_DESCRIPTION + 1);
    }
}
