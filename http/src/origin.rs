//! The service's external origin, from which the verifier reconstructs each request's target.

use std::fmt;

use http::Uri;
use warrant_envelope::verify::check_request_target;

use crate::Error;

/// `scheme://host[:port]` as clients address the service (`https://api.example.com`), in the
/// normal form the envelope requires of targets. The target a warrant binds is this origin
/// followed by the request's path and query: never the client-supplied `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// Parses and checks an origin: absolute, lower-case scheme and host, no default port, no
    /// userinfo, no path, query or fragment.
    pub fn parse(origin: &str) -> Result<Self, Error> {
        let refuse = |reason: String| Error::Origin { origin: origin.to_owned(), reason };
        check_request_target(origin).map_err(|defect| refuse(defect.to_string()))?;
        let rest = origin.split_once("://").map_or("", |(_, rest)| rest);
        if rest.contains(['/', '?']) {
            return Err(refuse("it has a path or query: give scheme://host[:port] only".into()));
        }
        Ok(Self(origin.to_owned()))
    }

    /// The origin's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The target of a request for `uri` (its path and query; an absolute-form URI's own
    /// scheme and authority are ignored), in absolute form.
    pub fn target(&self, uri: &Uri) -> Result<String, Error> {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        if !path_and_query.starts_with('/') {
            return Err(Error::TargetUnusable(format!("{path_and_query:?} is not an origin-form path")));
        }
        let target = format!("{}{path_and_query}", self.0);
        check_request_target(&target)
            .map_err(|defect| Error::TargetUnusable(format!("{target:?}: {defect}")))?;
        Ok(target)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_in_normal_form_is_accepted() {
        for origin in ["https://api.example.com", "http://127.0.0.1:8080", "https://[::1]:8443"] {
            assert_eq!(Origin::parse(origin).unwrap().as_str(), origin);
        }
    }

    #[test]
    fn an_origin_with_a_path_or_not_in_normal_form_is_refused() {
        for origin in [
            "https://api.example.com/",
            "https://api.example.com/v1",
            "https://api.example.com?x",
            "https://API.example.com",
            "https://api.example.com:443",
            "https://user@api.example.com",
            "api.example.com",
            "https://api.example.com#f",
        ] {
            assert!(matches!(Origin::parse(origin), Err(Error::Origin { .. })), "{origin}");
        }
    }

    #[test]
    fn the_target_is_the_origin_and_the_path_never_the_uris_authority() {
        let origin = Origin::parse("https://api.example.com").unwrap();
        let uri: Uri = "/v1/deploy?env=prod".parse().unwrap();
        assert_eq!(origin.target(&uri).unwrap(), "https://api.example.com/v1/deploy?env=prod");
        // An absolute-form request line names another host: only its path counts.
        let uri: Uri = "http://evil.example/v1/read".parse().unwrap();
        assert_eq!(origin.target(&uri).unwrap(), "https://api.example.com/v1/read");
        let uri: Uri = "*".parse().unwrap();
        assert!(matches!(origin.target(&uri), Err(Error::TargetUnusable(_))));
        let uri: Uri = "/v1/../admin".parse().unwrap();
        assert!(matches!(origin.target(&uri), Err(Error::TargetUnusable(_))));
    }
}
