//! Requests that name a second method: refused, because the verifier authorizes the request's
//! method and the upstream might perform the other one.
//!
//! Frameworks honour a method named outside the request line: Rails (`Rack::MethodOverride`),
//! Laravel, Symfony and Spring read `X-HTTP-Method-Override` and kin, or a `_method` query or
//! form parameter, and turn a `POST` into the `DELETE` it names. A warrant for `update` on a
//! `POST` would then delete. No legitimate client of a warrant-protected service needs these:
//! it sends the method it means, which its warrant is bound to.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Uri};

use crate::Error;

/// Headers through which frameworks take another method (or another path) than the request
/// line's.
const OVERRIDE_HEADERS: [&str; 5] =
    ["x-http-method-override", "x-http-method", "x-method-override", "x-original-url", "x-rewrite-url"];

/// The parameter Rails, Laravel and Spring's `HiddenHttpMethodFilter` read a method from.
const OVERRIDE_PARAMETER: &str = "_method";

/// Refuses a method that is not an upper-case token, and any override in the headers or the
/// query: a request must mean exactly its request line.
pub(crate) fn refuse_in_head(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Error> {
    // Servers that upper-case the method (Django, Symfony) would run `Delete` as `DELETE`,
    // which the verifier and the policy saw as another action.
    if !method.as_str().bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::AmbiguousMethod(format!("the method {:?} is not upper case", method.as_str())));
    }
    if let Some(name) = OVERRIDE_HEADERS.iter().find(|name| headers.contains_key(**name)) {
        return Err(Error::AmbiguousMethod(format!("the request carries {name}")));
    }
    if uri.query().is_some_and(names_override) {
        return Err(Error::AmbiguousMethod(format!("the query names {OVERRIDE_PARAMETER}")));
    }
    Ok(())
}

/// Refuses a form body that names a method (`_method=DELETE`), as Rails, Laravel and Spring
/// read one from `application/x-www-form-urlencoded` and `multipart/form-data` bodies.
pub(crate) fn refuse_in_body(headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let named = match essence.as_str() {
        "application/x-www-form-urlencoded" => names_override(&String::from_utf8_lossy(body)),
        // A part named `_method`: its Content-Disposition carries name="_method" (or the
        // name unquoted, which some parsers accept).
        "multipart/form-data" => {
            let text = String::from_utf8_lossy(body).to_ascii_lowercase();
            text.contains("name=\"_method\"") || text.contains("name=_method")
        }
        _ => false,
    };
    if named {
        return Err(Error::AmbiguousMethod(format!("the form body names {OVERRIDE_PARAMETER}")));
    }
    Ok(())
}

/// Whether `pairs` (`a=1&b=2`) has a key that decodes to `_method`, in any spelling a
/// framework would decode (`%5Fmethod`, `_Method` where keys are case-folded).
fn names_override(pairs: &str) -> bool {
    pairs.split(['&', ';']).any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        decode_key(key).eq_ignore_ascii_case(OVERRIDE_PARAMETER)
    })
}

/// Percent- and `+`-decodes a form key (lossy: a key that is not UTF-8 is not `_method`).
fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (bytes.get(i + 1).and_then(hex_value), bytes.get(i + 2).and_then(hex_value)) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head(method: &str, uri: &str, header: Option<(&'static str, &str)>) -> Result<(), Error> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = header {
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        refuse_in_head(&Method::from_bytes(method.as_bytes()).unwrap(), &uri.parse().unwrap(), &headers)
    }

    #[test]
    fn a_second_method_in_the_head_is_refused() {
        assert!(head("POST", "/v1/items/42?x=1", None).is_ok());
        for (name, value) in [
            ("x-http-method-override", "DELETE"),
            ("X-HTTP-Method", "DELETE"),
            ("x-method-override", "DELETE"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
        ] {
            let name: &'static str = Box::leak(name.to_ascii_lowercase().into_boxed_str());
            let err = head("POST", "/v1/items/42", Some((name, value))).unwrap_err();
            assert!(matches!(err, Error::AmbiguousMethod(_)), "{name}: {err:?}");
        }
        for query in
            ["_method=DELETE", "a=1&_method=DELETE", "%5Fmethod=DELETE", "_METHOD=delete", "a=1;_method=x"]
        {
            let err = head("POST", &format!("/v1/items/42?{query}"), None).unwrap_err();
            assert!(err.to_string().contains("query names _method"), "{query}: {err}");
        }
        assert!(head("POST", "/v1/items/42?__method=x&method=y", None).is_ok());
        let err = head("Delete", "/v1/items/42", None).unwrap_err();
        assert!(err.to_string().contains("not upper case"), "{err}");
    }

    #[test]
    fn a_form_body_naming_a_method_is_refused() {
        let mut headers = HeaderMap::new();
        assert!(refuse_in_body(&headers, b"_method=DELETE").is_ok(), "not a form: the body is data");
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert!(refuse_in_body(&headers, b"name=a&_method=DELETE").is_err());
        assert!(refuse_in_body(&headers, b"name=a&%5fmethod=DELETE").is_err());
        assert!(refuse_in_body(&headers, b"name=_method").is_ok(), "a value is not a key");
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("multipart/form-data; boundary=x"));
        let part = b"--x\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--x--\r\n";
        assert!(refuse_in_body(&headers, part).is_err());
        assert!(refuse_in_body(
            &headers,
            b"--x\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n1\r\n--x--"
        )
        .is_ok());
    }
}
