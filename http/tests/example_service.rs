//! The example service (examples/service.rs) served on loopback, driven over real HTTP: each
//! way a request is accepted or refused through `WarrantLayer` and the extractor.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;
#[allow(dead_code)] // Its `main` is the example's.
#[path = "../examples/service.rs"]
mod service;

use std::net::SocketAddr;

use common::{send, Fixture, Signed, ORIGIN};
use warrant_http::{authorization_value, FileStatusSource, RequestVerifier};

const DEPLOY: &str = "https://api.example.com/v1/deploy/prod";
const BODY: &[u8] = br#"{"version":"1.4.2"}"#;

async fn serve(requests: RequestVerifier) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, service::app(requests)).await.unwrap() });
    addr
}

fn deploy<'a>(target: &'a str, body: &'a [u8]) -> Signed<'a> {
    Signed { method: "POST", target, body, action: "deploy", resource: "prod/api" }
}

fn auth(warrant: &[u8]) -> String {
    authorization_value(warrant)
}

#[tokio::test]
async fn a_warrant_for_the_request_is_accepted_once() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "alice deploys prod/api (19 bytes)\n");

    let again = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(again.status, 401);
    assert!(again.challenge().unwrap().starts_with("Warrant error=\"replayed\""), "{again:?}");
    assert_eq!(again.json()["code"], "replayed");
}

#[tokio::test]
async fn no_warrant_is_a_401_with_the_challenge() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    let answer = send(addr, "POST", "/v1/deploy/prod", &[], BODY).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge(), Some("Warrant"));
    assert_eq!(answer.json()["code"], "missing_warrant");
    // Another scheme is no warrant.
    let bearer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", "Bearer secret")], BODY).await;
    assert_eq!((bearer.status, bearer.challenge()), (401, Some("Warrant")));
}

#[tokio::test]
async fn a_changed_body_is_refused() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer =
        send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], b"{\"version\":\"6.6.6\"}")
            .await;
    assert_eq!(answer.status, 401);
    assert!(answer.challenge().unwrap().starts_with("Warrant error=\"invalid_warrant\""));
    assert_eq!(answer.json()["code"], "request_body_mismatch");
}

#[tokio::test]
async fn the_target_comes_from_the_origin_never_the_host_header() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    // The client names another host: the target is still the configured origin's.
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer =
        send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header), ("host", "evil.example")], BODY)
            .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // A warrant bound to another origin's URL does not pass here, whatever Host says.
    let elsewhere = auth(&f.warrant(&deploy("https://evil.example/v1/deploy/prod", BODY)));
    let answer = send(
        addr,
        "POST",
        "/v1/deploy/prod",
        &[("authorization", &elsewhere), ("host", "evil.example")],
        BODY,
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["code"], "request_target_mismatch");
}

#[tokio::test]
async fn a_warrant_for_another_operation_than_the_routes_is_refused() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    // Signed for `read` (which the policy permits anywhere), sent to the deploy route.
    let read = Signed { action: "read", resource: "prod/api", ..deploy(DEPLOY, BODY) };
    let answer =
        send(addr, "POST", "/v1/deploy/prod", &[("authorization", &auth(&f.warrant(&read)))], BODY).await;
    assert_eq!(answer.status, 403);
    assert!(answer.challenge().unwrap().starts_with("Warrant error=\"insufficient_policy\""));
    assert_eq!(answer.json()["code"], "action_mismatch");
    // The route binds {env}: a warrant for prod does not serve staging.
    let staging = "https://api.example.com/v1/deploy/staging";
    let answer = send(
        addr,
        "POST",
        "/v1/deploy/staging",
        &[("authorization", &auth(&f.warrant(&deploy(staging, BODY))))],
        BODY,
    )
    .await;
    assert_eq!((answer.status, answer.json()["code"].as_str()), (403, Some("resource_mismatch")));
}

#[tokio::test]
async fn a_policy_that_denies_is_a_403() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    // The grant permits deploy on prod/api only.
    let staging = "https://api.example.com/v1/deploy/staging";
    let signed = Signed { resource: "staging/api", ..deploy(staging, BODY) };
    let answer =
        send(addr, "POST", "/v1/deploy/staging", &[("authorization", &auth(&f.warrant(&signed)))], BODY)
            .await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.challenge().unwrap().starts_with("Warrant error=\"insufficient_policy\""));
    assert_eq!(answer.json()["code"], "policy_denied");
}

#[tokio::test]
async fn an_expired_warrant_is_refused_as_expired() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    f.clock.advance(60 + 61);
    let answer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(answer.status, 401);
    assert!(answer.challenge().unwrap().starts_with("Warrant error=\"expired\""));
    assert_eq!(answer.json()["code"], "warrant_expired");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES).with_body_limit(16)).await;
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["code"], "body_too_large");
}

#[tokio::test]
async fn without_a_status_list_the_verifier_cannot_decide_and_answers_503() {
    let f = Fixture::new();
    let requests = RequestVerifier::new(f.bare_verifier(), warrant_http::Origin::parse(ORIGIN).unwrap())
        .with_routes(warrant_http::RouteTable::from_toml(service::ROUTES).unwrap());
    let addr = serve(requests).await;
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.challenge(), None);
    assert_eq!(answer.json()["code"], "status_list_missing");
}

#[tokio::test]
async fn a_revocation_in_the_status_file_takes_effect_without_a_restart() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.cbor");
    std::fs::write(&file, &f.status).unwrap();
    let requests = f.requests(service::ROUTES);
    let source = FileStatusSource::new(&file);
    let verifier = requests.verifier().clone();
    // The held list again: unchanged content is not installed twice.
    assert_eq!(warrant_http::refresh(&verifier, &source).await.unwrap().map(|i| i.sequence), Some(1));
    assert!(warrant_http::refresh(&verifier, &source).await.unwrap().is_none());
    let addr = serve(requests).await;

    let revoking = f.revoking_status(&f.status);
    let tmp = dir.path().join("status.tmp");
    std::fs::write(&tmp, &revoking).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    assert_eq!(warrant_http::refresh(&verifier, &source).await.unwrap().map(|i| i.sequence), Some(2));

    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(answer.status, 401);
    assert!(answer.challenge().unwrap().starts_with("Warrant error=\"revoked\""));
    assert_eq!(answer.json()["code"], "revoked");

    // An older list put back in the file is refused, and the revocation holds.
    std::fs::write(&file, &f.status).unwrap();
    let refused = warrant_http::refresh(&verifier, &source).await.unwrap_err();
    assert_eq!(refused.code(), "status_list_rollback");
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer = send(addr, "POST", "/v1/deploy/prod", &[("authorization", &header)], BODY).await;
    assert_eq!(answer.json()["code"], "revoked");
}

#[tokio::test]
async fn optional_authentication_lets_no_warrant_through_but_not_a_bad_one() {
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    let anonymous = send(addr, "GET", "/v1/whoami", &[], b"").await;
    assert_eq!((anonymous.status, anonymous.body.as_str()), (200, "anonymous\n"));

    let read = Signed {
        method: "GET",
        target: "https://api.example.com/v1/whoami",
        body: b"",
        action: "read",
        resource: "whoami",
    };
    let header = auth(&f.warrant(&read));
    let known = send(addr, "GET", "/v1/whoami", &[("authorization", &header)], b"").await;
    assert_eq!((known.status, known.body.as_str()), (200, "alice\n"));
    // The same warrant again is a replay, refused even where a warrant is optional.
    let replay = send(addr, "GET", "/v1/whoami", &[("authorization", &header)], b"").await;
    assert_eq!((replay.status, replay.json()["code"].as_str()), (401, Some("replayed")));
    let garbage = send(addr, "GET", "/v1/whoami", &[("authorization", "Warrant AA==")], b"").await;
    assert_eq!((garbage.status, garbage.json()["code"].as_str()), (401, Some("malformed_authorization")));
}

#[tokio::test]
async fn a_request_without_a_warrant_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::new();
    let addr = serve(f.requests(service::ROUTES)).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A body is announced and never sent: the answer cannot wait for it.
    let head = "POST /v1/deploy/prod HTTP/1.1\r\nhost: api.example.com\r\ncontent-length: 100000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("the layer waited for a body it does not need")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("www-authenticate: warrant\r\n"), "{answer}");
}

#[tokio::test]
async fn the_extractor_behind_no_layer_refuses_rather_than_run_unauthenticated() {
    use axum::routing::get;
    let app =
        axum::Router::new().route("/", get(|w: warrant_http::Warrant| async move { w.principal.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Even a well-formed warrant header is not a verified warrant.
    let f = Fixture::new();
    let header = auth(&f.warrant(&deploy(DEPLOY, BODY)));
    let answer = send(addr, "GET", "/", &[("authorization", &header)], b"").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge(), Some("Warrant"));
    assert_eq!(answer.json()["code"], "missing_warrant");
}
