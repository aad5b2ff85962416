//! RFC 7512 PKCS#11 URIs (`pkcs11:token=ci;object=issuance-1?module-path=/usr/lib/...`),
//! parsed strictly: known attributes only, each once, percent-encoding checked. Slot ids are
//! refused (they change between runs; tokens are found by label or serial), and so are PINs
//! in the URI (URIs end up in logs and shell history; use a PIN source).

use std::path::PathBuf;

use crate::Error;

/// A parsed PKCS#11 URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// CK_TOKEN_INFO label.
    pub token: Option<String>,
    /// CK_TOKEN_INFO serialNumber.
    pub serial: Option<String>,
    /// CK_TOKEN_INFO manufacturerID.
    pub manufacturer: Option<String>,
    /// CK_TOKEN_INFO model.
    pub model: Option<String>,
    /// CKA_LABEL of the object.
    pub object: Option<String>,
    /// CKA_ID of the object.
    pub id: Option<Vec<u8>>,
    /// Object class: `private`, `public`, `cert`, `secret-key` or `data`.
    pub object_type: Option<String>,
    /// The module to load (query attribute `module-path`).
    pub module_path: Option<PathBuf>,
}

const SCHEME: &str = "pkcs11:";
/// Longest URI accepted.
const MAX_LEN: usize = 4096;

fn invalid(uri: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidUri { uri: redacted(uri), reason: reason.to_string() }
}

/// The path attributes whose values are shown in messages: the ones that name a token or an
/// object. Anything else (a `pin-value` put in the path by mistake, a misspelt attribute that
/// may hold one) is shown as `…`.
const SHOWN_PATH_ATTRIBUTES: &[&str] = &["token", "serial", "manufacturer", "model", "object", "id", "type"];

/// `uri` as it may be shown in messages and audit lines: the path's token and object
/// attributes only (the query, or a mistaken path attribute, may hold a `pin-value`), cut to
/// 80 characters (it is outside input).
pub fn redacted(uri: &str) -> String {
    let (path, query) = match uri.split_once('?') {
        Some((path, _)) => (path, "?…"),
        None => (uri, ""),
    };
    let (scheme, attributes) = match path.strip_prefix(SCHEME) {
        Some(attributes) => (SCHEME, attributes),
        None => ("", path),
    };
    let shown: Vec<&str> = attributes
        .split(';')
        .map(|attribute| match attribute.split_once('=') {
            Some((name, _)) if SHOWN_PATH_ATTRIBUTES.contains(&name) => attribute,
            _ if attribute.is_empty() => attribute,
            _ => "…",
        })
        .collect();
    let shown: String = format!("{scheme}{}", shown.join(";")).chars().take(80).collect();
    format!("{shown}{query}")
}

impl Pkcs11Uri {
    /// Parses `uri`.
    pub fn parse(uri: &str) -> Result<Self, Error> {
        if uri.len() > MAX_LEN {
            return Err(invalid(uri, format!("longer than {MAX_LEN} bytes")));
        }
        let rest =
            uri.strip_prefix(SCHEME).ok_or_else(|| invalid(uri, "a PKCS#11 URI starts with \"pkcs11:\""))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = Self::default();
        let mut seen = Vec::new();
        for (part, separator) in [(path, ';'), (query.unwrap_or(""), '&')] {
            if part.is_empty() {
                continue;
            }
            let (in_path, place) = if separator == ';' { (true, "path") } else { (false, "query") };
            for (index, attribute) in part.split(separator).enumerate() {
                // Neither the attribute nor its value is repeated: it may be a PIN.
                let (name, raw) = attribute.split_once('=').ok_or_else(|| {
                    invalid(uri, format!("attribute {} of the {place} is not name=value", index + 1))
                })?;
                if seen.contains(&name) {
                    return Err(invalid(uri, format!("attribute {name:?} appears twice")));
                }
                seen.push(name);
                // Decoded only for an attribute taken, after the PIN's refusal: a decoding
                // error quotes the value.
                let value = || percent_decode(raw).map_err(|e| invalid(uri, format!("{name}: {e}")));
                let text =
                    || String::from_utf8(value()?).map_err(|_| invalid(uri, format!("{name} is not UTF-8")));
                match (name, in_path) {
                    ("pin-value", _) => {
                        return Err(invalid(
                            uri,
                            "a PIN in a URI ends up in logs: configure a PIN source instead",
                        ))
                    }
                    ("token", true) => out.token = Some(text()?),
                    ("serial", true) => out.serial = Some(text()?),
                    ("manufacturer", true) => out.manufacturer = Some(text()?),
                    ("model", true) => out.model = Some(text()?),
                    ("object", true) => out.object = Some(text()?),
                    ("id", true) => out.id = Some(value()?),
                    ("type", true) => {
                        let t = text()?;
                        if !matches!(t.as_str(), "private" | "public" | "cert" | "secret-key" | "data") {
                            return Err(invalid(uri, format!("unknown object type {t:?}")));
                        }
                        out.object_type = Some(t);
                    }
                    ("slot-id", true) => {
                        return Err(invalid(
                            uri,
                            "slot ids change between runs: name the token by label or serial",
                        ))
                    }
                    ("module-path", false) => out.module_path = Some(PathBuf::from(text()?)),
                    (name, true) => return Err(invalid(uri, format!("unsupported path attribute {name:?}"))),
                    (name, false) => {
                        return Err(invalid(uri, format!("unsupported query attribute {name:?}")))
                    }
                }
            }
        }
        if out.token.is_none() && out.serial.is_none() {
            return Err(invalid(uri, "name the token with token= (its label) or serial="));
        }
        Ok(out)
    }
}

fn percent_decode(raw: &str) -> Result<Vec<u8>, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex}"))?);
                i += 3;
            }
            // RFC 3986 unreserved and the sub-delims RFC 7512 allows in values, plus ':' '@' '/'.
            c if c.is_ascii_alphanumeric() || b"-._~!$'()*+,:@/|".contains(&c) => {
                out.push(c);
                i += 1;
            }
            c => return Err(format!("character {:?} must be %-encoded", c as char)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_uri_parses() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=CI%20HSM;object=issuance-1;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("CI HSM"));
        assert_eq!(uri.object.as_deref(), Some("issuance-1"));
        assert_eq!(uri.id, Some(vec![1, 2]));
        assert_eq!(uri.object_type.as_deref(), Some("private"));
        assert_eq!(uri.module_path, Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")));
        assert_eq!(Pkcs11Uri::parse("pkcs11:serial=abc").unwrap().serial.as_deref(), Some("abc"));
    }

    #[test]
    fn malformed_uris_are_refused_with_reasons() {
        for (uri, reason) in [
            ("pkcs12:token=a", "starts with"),
            ("token=a", "starts with"),
            ("pkcs11:object=k", "name the token"),
            ("pkcs11:token=a;token=b", "twice"),
            ("pkcs11:token=a;slot-id=3", "slot ids change"),
            ("pkcs11:token=a?pin-value=1234", "PIN in a URI"),
            ("pkcs11:token=a;colour=red", "unsupported path attribute"),
            ("pkcs11:token=a?module-path", "not name=value"),
            ("pkcs11:token=a%2", "truncated"),
            ("pkcs11:token=a%zz", "bad %-escape"),
            ("pkcs11:token=a b", "must be %-encoded"),
            ("pkcs11:token=a;type=key", "unknown object type"),
            ("pkcs11:token=%ff", "not UTF-8"),
            ("pkcs11:module-path=/x;token=a", "unsupported path attribute"),
        ] {
            let err = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(err.contains(reason), "{uri}: {err}");
        }
        assert!(Pkcs11Uri::parse(&format!("pkcs11:token={}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn a_pin_in_a_refused_uri_is_not_repeated_in_the_error() {
        let err = Pkcs11Uri::parse("pkcs11:token=t?module-path=/m.so&pin-value=123456").unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("123456") && shown.contains("pkcs11:token=t?…"), "{shown}");
        assert_eq!(redacted("pkcs11:token=t;object=k"), "pkcs11:token=t;object=k");
        // A PIN where it does not belong, or written so that it does not parse: neither the
        // URI shown nor the reason repeats it.
        for (uri, reason) in [
            ("pkcs11:token=t;pin-value=123456", "PIN in a URI"),
            ("pkcs11:pin-value=123456;token=t", "PIN in a URI"),
            ("pkcs11:token=t;pin=123456", "unsupported path attribute \"pin\""),
            ("pkcs11:token=t;pin-value%3D123456", "attribute 2 of the path is not name=value"),
            ("pkcs11:token=t?pin-value%3D123456", "attribute 1 of the query is not name=value"),
            ("pkcs11:token=t?module-path=/m.so&pin-value:123456", "attribute 2 of the query"),
            ("pkcs11:token=t?pin-value=123456%zz", "PIN in a URI"),
            ("pkcs11:token=t?pin-value=12 3456", "PIN in a URI"),
            ("pkcs11:token=t?pin-value=123456&pin-value=123456", "PIN in a URI"),
        ] {
            let shown = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(shown.contains(reason), "{uri}: {shown}");
            assert!(!shown.contains("123") && !shown.contains("456"), "{uri}: {shown}");
            assert!(shown.contains("pkcs11:"), "the URI is still named: {shown}");
        }
        assert_eq!(redacted("pkcs11:token=t;pin-value=1;object=k?x"), "pkcs11:token=t;…;object=k?…");
    }
}
