//! The carriage of a warrant in a request: `Authorization: Warrant <token>`, the token being
//! the warrant's bytes in base64url without padding (RFC 4648 §5).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::Error;

/// The authentication scheme's name (compared case-insensitively, RFC 9110 §11.1).
pub const SCHEME: &str = "Warrant";

/// The largest warrant the format allows ([`warrant_envelope::ObjectType::size_limit`] of a warrant).
const MAX_WARRANT_BYTES: usize = 32 * 1024;

/// The longest token accepted: the base64url of the largest warrant the format allows.
pub const MAX_TOKEN_LEN: usize = (MAX_WARRANT_BYTES * 4).div_ceil(3);

/// The `Authorization` header value carrying `warrant`.
pub fn authorization_value(warrant: &[u8]) -> String {
    format!("{SCHEME} {}", URL_SAFE_NO_PAD.encode(warrant))
}

/// The warrant `headers` carry: `None` when there is no `Authorization` header or it is of
/// another scheme; an error when there are several, or the token is not strict base64url
/// without padding of at most [`MAX_TOKEN_LEN`] characters.
pub fn warrant_from_headers(headers: &HeaderMap) -> Result<Option<Vec<u8>>, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::MalformedAuthorization("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| Error::MalformedAuthorization("the header has bytes that are not visible ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Ok(None);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(Error::MalformedAuthorization("the Warrant scheme has no token"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::MalformedAuthorization("the token is longer than any warrant"));
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .map(Some)
        .map_err(|_| Error::MalformedAuthorization("the token is not base64url without padding"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use warrant_envelope::ObjectType;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn the_token_bound_is_the_formats_warrant_limit() {
        assert_eq!(MAX_WARRANT_BYTES, ObjectType::Warrant.size_limit());
        assert_eq!(URL_SAFE_NO_PAD.encode(vec![0; MAX_WARRANT_BYTES]).len(), MAX_TOKEN_LEN);
    }

    #[test]
    fn a_token_round_trips_and_the_scheme_is_case_insensitive() {
        let warrant = vec![0xd2, 0x84, 0x43, 0xff, 0xfe];
        let value = authorization_value(&warrant);
        assert_eq!(value, "Warrant 0oRD__4");
        assert_eq!(warrant_from_headers(&headers(&[&value])).unwrap(), Some(warrant.clone()));
        assert_eq!(warrant_from_headers(&headers(&["warrant 0oRD__4"])).unwrap(), Some(warrant));
    }

    #[test]
    fn no_header_or_another_scheme_is_no_warrant() {
        assert_eq!(warrant_from_headers(&HeaderMap::new()).unwrap(), None);
        assert_eq!(warrant_from_headers(&headers(&["Bearer abc"])).unwrap(), None);
        assert_eq!(warrant_from_headers(&headers(&["Warranty abc"])).unwrap(), None);
    }

    #[test]
    fn each_malformed_carriage_is_refused_with_its_reason() {
        for (values, reason) in [
            (&["Warrant AAAA", "Warrant AAAA"][..], "more than one Authorization header"),
            (&["Warrant"][..], "the Warrant scheme has no token"),
            (&["Warrant   "][..], "the Warrant scheme has no token"),
            // Padding, the standard alphabet, and non-canonical trailing bits are refused.
            (&["Warrant AA=="][..], "the token is not base64url without padding"),
            (&["Warrant a+/b"][..], "the token is not base64url without padding"),
            (&["Warrant AB"][..], "the token is not base64url without padding"),
            (&["Warrant A"][..], "the token is not base64url without padding"),
        ] {
            match warrant_from_headers(&headers(values)) {
                Err(Error::MalformedAuthorization(r)) => assert_eq!(r, reason, "{values:?}"),
                other => panic!("{values:?}: {other:?}"),
            }
        }
        let long = format!("Warrant {}", "A".repeat(MAX_TOKEN_LEN + 1));
        assert!(matches!(
            warrant_from_headers(&headers(&[&long])),
            Err(Error::MalformedAuthorization("the token is longer than any warrant"))
        ));
        let mut map = HeaderMap::new();
        map.insert(AUTHORIZATION, HeaderValue::from_bytes(b"Warrant \xff").unwrap());
        assert!(matches!(warrant_from_headers(&map), Err(Error::MalformedAuthorization(_))));
    }
}
