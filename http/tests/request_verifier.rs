//! `RequestVerifier` without a server: the route table's refusal, and the extractor outside
//! a layer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use common::{Fixture, Signed};
use http::{HeaderMap, HeaderValue, Method, Uri};
use warrant_http::{authorization_value, Error};

const ROUTES: &str = r#"
[[route]]
method = "POST"
path = "/v1/deploy/{env}"
action = "deploy"
resource = "{env}/api"
"#;

fn headers(warrant: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&authorization_value(warrant)).unwrap());
    headers
}

#[test]
fn a_request_no_route_matches_is_refused_even_with_a_warrant_for_it() {
    let f = Fixture::new();
    let requests = f.requests(ROUTES);
    // The default mapping would call this POST on /v1/admin: the table does not list it.
    let signed = Signed {
        method: "POST",
        target: "https://api.example.com/v1/admin",
        body: b"",
        action: "POST",
        resource: "/v1/admin",
    };
    let uri: Uri = "/v1/admin".parse().unwrap();
    let error = requests.verify(&Method::POST, &uri, &headers(&f.warrant(&signed)), b"").unwrap_err();
    assert!(matches!(error, Error::NoRoute { .. }), "{error:?}");
    assert_eq!(error.status().0.as_u16(), 403);
}

#[test]
fn the_default_routes_make_the_method_and_path_the_operation() {
    let f = Fixture::new();
    let requests = f.requests("");
    let requests = warrant_http::RequestVerifier::new(requests.verifier().clone(), requests.origin().clone());
    // POLICY permits `read` on any resource; the default action is the method, so a warrant
    // for GET on /docs is an operation GET on "/docs", which the policy does not permit.
    let signed = Signed {
        method: "GET",
        target: "https://api.example.com/docs?x=1",
        body: b"",
        action: "GET",
        resource: "/docs",
    };
    let uri: Uri = "/docs?x=1".parse().unwrap();
    let error = requests.verify(&Method::GET, &uri, &headers(&f.warrant(&signed)), b"").unwrap_err();
    assert_eq!(error.code(), "policy_denied", "{error}");
    // The same request signed as `read` does not match the default operation.
    let read = Signed { action: "read", ..signed };
    let error = requests.verify(&Method::GET, &uri, &headers(&f.warrant(&read)), b"").unwrap_err();
    assert_eq!(error.code(), "action_mismatch");
}
