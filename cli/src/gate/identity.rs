//! The headers a gate puts on a forwarded request: the verified identity, and nothing of the
//! client's that could pass for it.

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use warrant_http::Warrant;

/// The identity headers, in the order they are set.
pub(crate) const IDENTITY_HEADERS: [&str; 6] = [
    "warrant-principal",
    "warrant-groups",
    "warrant-id",
    "warrant-action",
    "warrant-resource",
    "warrant-assurance",
];

/// Removes `Authorization` and every `Warrant-*` header the client sent, also spelt with `_`
/// (CGI-style servers, WSGI and PHP among them, read `Warrant_Principal` as
/// `Warrant-Principal`).
pub(crate) fn strip_client_identity(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().replace('_', "-").starts_with("warrant-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Sets the identity headers from `warrant` (each value percent-encoded, see [`encode`]).
pub(crate) fn add_identity(headers: &mut HeaderMap, warrant: &Warrant) {
    let groups: Vec<String> = warrant.groups.iter().map(|g| encode(g)).collect();
    let values = [
        encode(&warrant.principal),
        groups.join(","),
        hex::encode(warrant.warrant_id),
        encode(&warrant.action),
        encode(&warrant.resource),
        warrant.device.backend.assurance().as_str().to_owned(),
    ];
    for (name, value) in IDENTITY_HEADERS.iter().zip(values) {
        // Encoded values are visible ASCII: the conversion cannot fail, and an empty value is
        // still a value.
        let value = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""));
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// `text` with every byte outside visible ASCII, and `%` and `,`, percent-encoded: a value
/// that is safe in a header and unambiguous in the comma-separated group list.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'%' | b',' => out.push_str(&format!("%{byte:02X}")),
            0x21..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_so_no_header_can_be_forged_or_split() {
        assert_eq!(encode("alice"), "alice");
        assert_eq!(
            encode("a b,c%\r\nWarrant-Principal: root é"),
            "a%20b%2Cc%25%0D%0AWarrant-Principal:%20root%20%C3%A9"
        );
    }

    #[test]
    fn the_clients_authorization_and_warrant_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Warrant x"));
        headers.insert("warrant-principal", HeaderValue::from_static("root"));
        headers.insert("Warrant-Whatever", HeaderValue::from_static("x"));
        headers.insert("warrant_principal", HeaderValue::from_static("root"));
        headers.insert("x-kept", HeaderValue::from_static("y"));
        strip_client_identity(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }
}
