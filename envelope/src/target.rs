//! The form a bound request target must have: absolute-form (RFC 9112 §3.2.2), exactly as
//! the service reconstructs it, with nothing a server would normalise away later.
//!
//! A policy reads `context.request.target` (e.g. `like "https://api.example.com/v1/read/*"`).
//! If the service later resolved `/v1/read/../admin`, decoded `%2F` into a path separator,
//! dropped a fragment or a userinfo, the operation performed would not be the one the policy
//! judged. Such targets are refused when a warrant is made and when it is verified.
//!
//! Beyond that, the scheme, authority and path must be in the normal form of RFC 3986 §6.2.2,
//! so that no two spellings of one resource exist for a policy to miss: a percent-encoded
//! unreserved character (`/%61dmin` is `/admin` to every server), a double encoding
//! (`%252e`), an escape of a character that may stand as is or in lower-case hex (`%3a`
//! is `:`), a backslash (WHATWG parsers read it as `/`), a `;` path parameter (`/..;/` is
//! `..` to some Java servers), an empty segment (`//admin`, merged by nginx), a character
//! that is not a path character (space, controls, raw non-ASCII), an upper-case scheme or
//! host, and a default port are all refused. The query is left as sent: servers do not
//! resolve paths in it, and it routinely carries encoded URLs.

use std::fmt;

/// Why a request target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetDefect {
    /// Not `scheme://authority[/path][?query]`.
    NotAbsolute,
    /// A path segment is `.` or `..`.
    DotSegment,
    /// The path has a percent-encoded `/` or `.` (`%2F`, `%2E`, either case).
    EncodedSeparator,
    /// The target has a fragment (`#`).
    Fragment,
    /// The authority has userinfo (`user@host`).
    Userinfo,
    /// The path percent-encodes an unreserved character (`%61` for `a`).
    EncodedUnreserved,
    /// The path has a percent-encoded `%` followed by two hex digits (`%252e`).
    DoubleEncoded,
    /// The path escapes a character that may stand as is (`%3A` for `:`, `%40` for `@`, a
    /// sub-delimiter), or writes an escape's hex digits in lower case (`%c3`): a second
    /// spelling of the same path.
    EscapeNotNormal,
    /// The path has a byte that is not a path character (a backslash, a space, a control
    /// character, raw non-ASCII, a malformed `%` escape), or encodes NUL or a backslash.
    ForbiddenCharacter,
    /// A path segment has a `;` parameter (or an encoded one, `%3B`).
    PathParameter,
    /// The path has an empty segment (`//`).
    EmptySegment,
    /// The scheme or host has upper-case letters, or the port is empty or the scheme's default.
    AuthorityNotNormal,
}

impl fmt::Display for TargetDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetDefect::NotAbsolute => {
                "it is not in absolute form (scheme://host[:port]/path?query, as the service reconstructs it)"
            }
            TargetDefect::DotSegment => {
                "its path has a \".\" or \"..\" segment, which a server resolves later"
            }
            TargetDefect::EncodedSeparator => {
                "its path has a percent-encoded \"/\" or \".\" (%2F or %2E), which a server may decode later"
            }
            TargetDefect::Fragment => "it has a fragment (#...), which is never sent to the service",
            TargetDefect::Userinfo => {
                "it has userinfo (user@host), which is not part of what the service sees"
            }
            TargetDefect::EncodedUnreserved => {
                "its path percent-encodes a letter, digit or one of -._~, which every server decodes: send it as is"
            }
            TargetDefect::EscapeNotNormal => {
                "its path percent-encodes a character allowed as is (: @ ! $ & ' ( ) * + , =) or writes an escape in lower case (%c3): send the normal form (RFC 3986 6.2.2), in which a path has one spelling"
            }
            TargetDefect::DoubleEncoded => {
                "its path has a double percent-encoding (%25 and two hex digits), which a server may decode twice"
            }
            TargetDefect::ForbiddenCharacter => {
                "its path has a character that must be percent-encoded (a backslash, space, control or non-ASCII character, a bad % escape) or encodes NUL or a backslash"
            }
            TargetDefect::PathParameter => {
                "its path has a \";\" parameter, which some servers strip before routing (/..;/ is \"..\")"
            }
            TargetDefect::EmptySegment => "its path has an empty segment (//), which some servers merge",
            TargetDefect::AuthorityNotNormal => {
                "its scheme or host has upper-case letters, or its port is empty or the scheme's default: use the normal form"
            }
        })
    }
}

/// Checks that `target` is an absolute-form request target with no dot-segment, no
/// percent-encoded `/` or `.` in its path, no fragment and no userinfo.
pub fn check_request_target(target: &str) -> Result<(), TargetDefect> {
    if target.contains('#') {
        return Err(TargetDefect::Fragment);
    }
    let (scheme, rest) = target.split_once("://").ok_or(TargetDefect::NotAbsolute)?;
    if !is_scheme(scheme) {
        return Err(TargetDefect::NotAbsolute);
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(TargetDefect::Userinfo);
    }
    if authority.is_empty() {
        return Err(TargetDefect::NotAbsolute);
    }
    if !authority_is_normal(scheme, authority) {
        return Err(TargetDefect::AuthorityNotNormal);
    }
    // The query is not path-normalised by servers, and routinely carries encoded URLs.
    let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(TargetDefect::DotSegment);
    }
    if path.contains("//") {
        return Err(TargetDefect::EmptySegment);
    }
    check_path_characters(path)
}

/// Every byte of `path` is a path character (RFC 3986 `pchar` or `/`), every `%` starts an
/// escape of two hex digits, and no escape is one a server would decode into something else
/// than data: `/`, `.`, an unreserved character, `%XX`, NUL or a backslash.
fn check_path_characters(path: &str) -> Result<(), TargetDefect> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let value = escaped(bytes, i).ok_or(TargetDefect::ForbiddenCharacter)?;
                match value {
                    b'/' | b'.' => return Err(TargetDefect::EncodedSeparator),
                    0 | b'\\' => return Err(TargetDefect::ForbiddenCharacter),
                    // Some servers decode it and then strip the "parameter" (`..%3b` is `..`).
                    b';' => return Err(TargetDefect::PathParameter),
                    b'%' if escaped(bytes, i + 2).is_some() || hex_pair(bytes, i + 3) => {
                        return Err(TargetDefect::DoubleEncoded)
                    }
                    v if is_unreserved(v) => return Err(TargetDefect::EncodedUnreserved),
                    // `%3a` and `%3A` and `:` are one path to a server that decodes before
                    // routing: only the upper-case escape of a character that must be escaped
                    // is the normal form, so a policy on one spelling covers them all.
                    v if is_pchar(v) => return Err(TargetDefect::EscapeNotNormal),
                    _ if bytes[i + 1..i + 3].iter().any(u8::is_ascii_lowercase) => {
                        return Err(TargetDefect::EscapeNotNormal)
                    }
                    _ => i += 3,
                }
            }
            b';' => return Err(TargetDefect::PathParameter),
            c if c == b'/' || is_pchar(c) => i += 1,
            _ => return Err(TargetDefect::ForbiddenCharacter),
        }
    }
    Ok(())
}

/// The byte the escape `%HH` at `at` stands for.
fn escaped(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') || !hex_pair(bytes, at + 1) {
        return None;
    }
    let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

/// Whether two hex digits stand at `at`.
fn hex_pair(bytes: &[u8], at: usize) -> bool {
    bytes.get(at..at + 2).is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
}

/// RFC 3986 `unreserved`: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` without pct-encoded: unreserved / sub-delims / ":" / "@".
fn is_pchar(c: u8) -> bool {
    is_unreserved(c)
        || matches!(
            c,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'
        )
}

/// The scheme and host are lower-case, and a port, if given, is digits and not the scheme's
/// default (`http` 80, `https` 443).
fn authority_is_normal(scheme: &str, authority: &str) -> bool {
    if scheme.bytes().any(|c| c.is_ascii_uppercase()) || authority.bytes().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    // An IPv6 literal holds colons: the port follows its closing bracket.
    let host_end = if authority.starts_with('[') { authority.find(']').map_or(0, |i| i + 1) } else { 0 };
    let port = match authority[host_end..].rfind(':') {
        Some(colon) => &authority[host_end + colon + 1..],
        None => return host_end != 0 || !authority.is_empty(),
    };
    let default = match scheme {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    };
    !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) && Some(port) != default
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_targets_without_ambiguity_pass() {
        for target in [
            "https://api.example.com/v1/deploy",
            "https://api.example.com",
            "https://api.example.com/",
            "http://[::1]:8080/a/b?x=%2F..%2e&y=/./",
            "http://[::1]/a",
            "https://api.example.com:8443/v1/a%20b/%C3%A9/%3F%23/~user/x-y_z.1",
            "https://api.example.com/v1/deploy/",
            "https://api.example.com/v1/a:b@c!$&'()*+,=",
            "https://api.example.com/v1/file.tar.gz/..x/.well-known",
        ] {
            assert_eq!(check_request_target(target), Ok(()), "{target}");
        }
    }

    #[test]
    fn each_defect_is_named() {
        for (target, defect) in [
            ("/v1/deploy", TargetDefect::NotAbsolute),
            ("api.example.com/v1", TargetDefect::NotAbsolute),
            ("https:///v1", TargetDefect::NotAbsolute),
            ("1https://a/b", TargetDefect::NotAbsolute),
            ("https://a/v1/./deploy", TargetDefect::DotSegment),
            ("https://a/v1/../admin", TargetDefect::DotSegment),
            ("https://a/v1/.", TargetDefect::DotSegment),
            ("https://a/v1/..", TargetDefect::DotSegment),
            ("https://a/v1/..?x=1", TargetDefect::DotSegment),
            ("https://a/v1%2Fadmin", TargetDefect::EncodedSeparator),
            ("https://a/v1%2fadmin", TargetDefect::EncodedSeparator),
            ("https://a/v1/%2E%2E/admin", TargetDefect::EncodedSeparator),
            ("https://a/v1/%2e/admin", TargetDefect::EncodedSeparator),
            ("https://a/v1#admin", TargetDefect::Fragment),
            ("https://a/v1?x=1#", TargetDefect::Fragment),
            ("https://user@a/v1", TargetDefect::Userinfo),
            ("https://user:pw@a/v1", TargetDefect::Userinfo),
            // What a server normalises after the policy saw the target.
            ("https://a/%61dmin", TargetDefect::EncodedUnreserved),
            ("https://a/ad%6Din", TargetDefect::EncodedUnreserved),
            ("https://a/v1/%7euser", TargetDefect::EncodedUnreserved),
            // One path, several spellings: a policy that forbids `secret:plan` must not be
            // passed by `secret%3Aplan` or `secret%3aplan`.
            ("https://a/v1/docs/secret%3Aplan", TargetDefect::EscapeNotNormal),
            ("https://a/v1/docs/secret%3aplan", TargetDefect::EscapeNotNormal),
            ("https://a/v1/%40me", TargetDefect::EscapeNotNormal),
            ("https://a/v1/a%2Bb", TargetDefect::EscapeNotNormal),
            ("https://a/v1/a%3Db", TargetDefect::EscapeNotNormal),
            ("https://a/v1/caf%c3%a9", TargetDefect::EscapeNotNormal),
            ("https://a/v1/a%20b%3f", TargetDefect::EscapeNotNormal),
            ("https://a/v1/%252e%252e/admin", TargetDefect::DoubleEncoded),
            ("https://a/v1/%2541", TargetDefect::DoubleEncoded),
            ("https://a/v1/read\\..\\admin", TargetDefect::ForbiddenCharacter),
            ("https://a/v1/read/%5c..%5cadmin", TargetDefect::ForbiddenCharacter),
            ("https://a/v1/.%00./admin", TargetDefect::ForbiddenCharacter),
            ("https://a/admin%00", TargetDefect::ForbiddenCharacter),
            ("https://a/ad\tmin", TargetDefect::ForbiddenCharacter),
            ("https://a/a b", TargetDefect::ForbiddenCharacter),
            ("https://a/caf\u{e9}", TargetDefect::ForbiddenCharacter),
            ("https://a/v1/%zz", TargetDefect::ForbiddenCharacter),
            ("https://a/v1/%4", TargetDefect::ForbiddenCharacter),
            ("https://a/v1/read/..;/admin", TargetDefect::PathParameter),
            ("https://a/v1/..%3b/admin", TargetDefect::PathParameter),
            ("https://a//admin", TargetDefect::EmptySegment),
            ("https://a/v1//admin", TargetDefect::EmptySegment),
            ("https://API.EXAMPLE.COM/admin", TargetDefect::AuthorityNotNormal),
            ("HTTPS://a/admin", TargetDefect::AuthorityNotNormal),
            ("https://a:443/admin", TargetDefect::AuthorityNotNormal),
            ("http://a:80/admin", TargetDefect::AuthorityNotNormal),
            ("https://a:/admin", TargetDefect::AuthorityNotNormal),
            ("https://a:44x/admin", TargetDefect::AuthorityNotNormal),
        ] {
            assert_eq!(check_request_target(target), Err(defect), "{target}");
        }
    }
}
