//! The form a bound request target must have: absolute-form (RFC 9112 §3.2.2), exactly as
//! the service reconstructs it, with nothing a server would normalise away later.
//!
//! A policy reads `context.request.target` (e.g. `like "https://api.example.com/v1/read/*"`).
//! If the service later resolved `/v1/read/../admin`, decoded `%2F` into a path separator,
//! dropped a fragment or a userinfo, the operation performed would not be the one the policy
//! judged. Such targets are refused when a warrant is made and when it is verified.

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
    // The query is not path-normalised by servers, and routinely carries encoded URLs.
    let path = path_and_query.split_once('?').map_or(path_and_query, |(path, _)| path);
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(TargetDefect::DotSegment);
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%2e") {
        return Err(TargetDefect::EncodedSeparator);
    }
    Ok(())
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
        ] {
            assert_eq!(check_request_target(target), Err(defect), "{target}");
        }
    }
}
