//! `HttpStatusSource` against a small hyper server in this process (nginx is in the gate's
//! tests): what it sends, what answers it refuses and why, conditional requests, and the
//! chain walk through the published history.
#![cfg(feature = "fetch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Fixture, ISSUER, STATUS_URI};
use http::{HeaderMap, Request, Response};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use warrant_envelope::issue::{status_list_digest, MAX_STATUS_BYTES};
use warrant_envelope::verify::{Clock, Expected, HttpRequest, Verifier};
use warrant_envelope::Error as Verdict;
use warrant_http::{
    refresh, Error, FetchOptions, HttpStatusSource, RefreshSchedule, StatusRefresher, StatusSource,
    STATUS_LIST_MEDIA_TYPE,
};

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// A list: 200 with the given Content-Type, an ETag, and 304 to a matching If-None-Match.
    List { body: Vec<u8>, content_type: Option<&'static str>, etag: Option<String> },
    /// A bare status with headers.
    Status(u16, Vec<(&'static str, &'static str)>),
    /// A chunked body (no Content-Length) of this many bytes, of the right type.
    Chunked(usize),
    /// Headers never sent.
    Hang,
}

/// A request the server received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
}

#[derive(Default)]
struct Site {
    replies: Mutex<HashMap<String, Reply>>,
    seen: Mutex<Vec<Seen>>,
}

impl Site {
    fn set(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.to_owned(), reply);
    }

    fn list(&self, path: &str, body: &[u8]) {
        self.set(
            path,
            Reply::List {
                body: body.to_vec(),
                content_type: Some(STATUS_LIST_MEDIA_TYPE),
                etag: Some(format!("\"{}\"", hex_digest(body))),
            },
        );
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.path).collect()
    }

    fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(&warrant_envelope::device::sha256(bytes)[..8])
}

/// A body of `remaining` bytes sent in 64 KiB frames, of unknown length (so: chunked).
struct Endless {
    remaining: usize,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(64 * 1024);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![0u8; n])))))
    }
}

type Answer = http_body_util::Either<Full<Bytes>, Endless>;

async fn answer(site: Arc<Site>, request: Request<Incoming>) -> Response<Answer> {
    let path = request.uri().path().to_owned();
    site.seen.lock().unwrap().push(Seen { path: path.clone(), headers: request.headers().clone() });
    let reply = site.replies.lock().unwrap().get(&path).cloned();
    let full = |status: u16, body: Vec<u8>| {
        let mut r = Response::new(Answer::Left(Full::new(Bytes::from(body))));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        r
    };
    match reply {
        None => full(404, b"not found".to_vec()),
        Some(Reply::List { body, content_type, etag }) => {
            let matches = etag.as_deref().is_some_and(|etag| {
                request.headers().get("if-none-match").is_some_and(|v| v.as_bytes() == etag.as_bytes())
            });
            let mut r = if matches { full(304, Vec::new()) } else { full(200, body) };
            if let Some(t) = content_type {
                r.headers_mut().insert("content-type", t.parse().unwrap());
            }
            if let Some(etag) = etag {
                r.headers_mut().insert("etag", etag.parse().unwrap());
            }
            r
        }
        Some(Reply::Status(status, headers)) => {
            let mut r = full(status, Vec::new());
            for (name, value) in headers {
                r.headers_mut().insert(name, value.parse().unwrap());
            }
            r
        }
        Some(Reply::Chunked(size)) => {
            let mut r = Response::new(Answer::Right(Endless { remaining: size }));
            r.headers_mut().insert("content-type", STATUS_LIST_MEDIA_TYPE.parse().unwrap());
            r
        }
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            full(500, Vec::new())
        }
    }
}

/// Serves `site` on a loopback port.
async fn serve(site: Arc<Site>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let site = site.clone();
            tokio::spawn(async move {
                let service = service_fn(move |r| {
                    let site = site.clone();
                    async move { Ok::<_, Infallible>(answer(site, r).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn site() -> (Arc<Site>, SocketAddr) {
    let site = Arc::new(Site::default());
    let addr = serve(site.clone()).await;
    (site, addr)
}

fn source(addr: SocketAddr) -> HttpStatusSource {
    source_with(addr, FetchOptions::default())
}

fn source_with(addr: SocketAddr, options: FetchOptions) -> HttpStatusSource {
    HttpStatusSource::new(&format!("http://{addr}/status/1"), &options).unwrap()
}

#[tokio::test]
async fn a_list_is_fetched_with_accept_and_then_only_when_it_changed() {
    let f = Fixture::new();
    let (site, addr) = site().await;
    site.list("/status/1", &f.status);
    let source = source(addr);
    assert_eq!(source.fetch().await.unwrap().as_deref(), Some(&f.status[..]));
    // The second request is conditional; the server's 304 is "unchanged".
    assert_eq!(source.fetch().await.unwrap(), None);
    let seen = site.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["accept"], STATUS_LIST_MEDIA_TYPE);
    assert!(seen[0].headers.get("if-none-match").is_none());
    assert_eq!(seen[1].headers["if-none-match"], format!("\"{}\"", hex_digest(&f.status)).as_str());

    // A new list: handed out.
    let next = f.revoking_status(&f.status);
    site.list("/status/1", &next);
    assert_eq!(source.fetch().await.unwrap().as_deref(), Some(&next[..]));

    // A server without validators: the same body again is unchanged all the same.
    site.set(
        "/status/1",
        Reply::List { body: next.clone(), content_type: Some(STATUS_LIST_MEDIA_TYPE), etag: None },
    );
    assert_eq!(source.fetch().await.unwrap(), None);

    // Told the list was not installed, the source asks unconditionally and hands it out again.
    site.list("/status/1", &next);
    source.fetch().await.unwrap();
    source.not_installed();
    site.forget();
    assert_eq!(source.fetch().await.unwrap().as_deref(), Some(&next[..]));
    assert!(site.seen()[0].headers.get("if-none-match").is_none());
}

#[tokio::test]
async fn an_answer_that_is_not_a_status_list_token_is_refused_naming_the_url() {
    let f = Fixture::new();
    let (site, addr) = site().await;
    let source = source(addr);
    let url = format!("http://{addr}/status/1");
    for content_type in [None, Some("application/octet-stream"), Some("text/html; charset=utf-8")] {
        site.set("/status/1", Reply::List { body: f.status.clone(), content_type, etag: None });
        let err = source.fetch().await.unwrap_err();
        assert!(matches!(&err, Error::StatusContentType { url: u, .. } if *u == url), "{err:?}");
        assert_eq!(err.code(), "status_content_type");
        assert!(err.to_string().contains(&url), "{err}");
    }
    // Parameters and case do not matter.
    let typed = "Application/StatusList+CWT; charset=binary";
    site.set("/status/1", Reply::List { body: f.status.clone(), content_type: Some(typed), etag: None });
    assert!(source.fetch().await.unwrap().is_some());
}

#[tokio::test]
async fn an_answer_over_the_size_bound_is_refused_announced_or_chunked() {
    let (site, addr) = site().await;
    let source = source(addr);
    site.set("/status/1", Reply::Chunked(MAX_STATUS_BYTES + 1));
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(&err, Error::StatusTooLarge { limit, .. } if *limit == MAX_STATUS_BYTES), "{err:?}");
    assert_eq!(err.code(), "status_too_large");
    // A Content-Length over the bound is refused before the body is read (none follows here,
    // and the connection stays open: reading would end in the timeout instead).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let announcing = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            request.push(byte[0]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {STATUS_LIST_MEDIA_TYPE}\r\ncontent-length: {}\r\n\r\n",
            MAX_STATUS_BYTES + 1
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let options = FetchOptions { timeout: Duration::from_secs(60), ..FetchOptions::default() };
    let err = source_with(announcing, options).fetch().await.unwrap_err();
    assert!(matches!(&err, Error::StatusTooLarge { .. }), "{err:?}");
    // At the bound, the body is taken (and left to the verifier to judge).
    site.set("/status/1", Reply::Chunked(MAX_STATUS_BYTES));
    assert_eq!(source.fetch().await.unwrap().map(|b| b.len()), Some(MAX_STATUS_BYTES));
}

#[tokio::test]
async fn redirects_errors_and_silence_are_refused_each_as_itself() {
    let (site, addr) = site().await;
    let options = FetchOptions { timeout: Duration::from_millis(500), ..FetchOptions::default() };
    let source = source_with(addr, options);
    site.set("/status/1", Reply::Status(302, vec![("location", "http://198.51.100.7/status/1")]));
    let err = source.fetch().await.unwrap_err();
    assert!(
        matches!(&err, Error::StatusFetchRedirected { location, .. } if location == "http://198.51.100.7/status/1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not followed"), "{err}");
    // Not followed: the server saw one request.
    assert_eq!(site.paths(), ["/status/1"]);

    for status in [500, 503, 404, 403] {
        site.set("/status/1", Reply::Status(status, vec![]));
        let err = source.fetch().await.unwrap_err();
        assert!(matches!(&err, Error::StatusFetchStatus { status: s, .. } if *s == status), "{err:?}");
        assert!(err.to_string().contains(&format!("http://{addr}/status/1")), "{err}");
    }
    // A 304 to a request that was not conditional is no answer either.
    site.set("/status/1", Reply::Status(304, vec![]));
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(err, Error::StatusFetchStatus { status: 304, .. }), "{err:?}");

    site.set("/status/1", Reply::Hang);
    let err = source.fetch().await.unwrap_err();
    assert!(matches!(err, Error::StatusFetchTimeout { .. }), "{err:?}");
    assert_eq!(err.code(), "status_fetch_timeout");

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = closed.local_addr().unwrap();
    drop(closed);
    let err = source_with(nowhere, FetchOptions::default()).fetch().await.unwrap_err();
    assert!(matches!(err, Error::StatusFetchFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn plain_http_to_another_host_is_refused_before_anything_is_sent() {
    for url in ["http://status.example.com/status/1", "http://192.0.2.1:8080/status/1"] {
        let err = HttpStatusSource::new(url, &FetchOptions::default()).unwrap_err();
        assert_eq!(err.code(), "status_url_invalid", "{err}");
        assert!(err.to_string().contains(url), "{err}");
    }
}

/// A CA and a certificate it issued for 127.0.0.1, as PEM files in `dir`: (ca.pem, the
/// server's rustls config).
fn tls_identity(dir: &std::path::Path) -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::new(ca_params, &ca_key))
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
    (ca_file, Arc::new(config))
}

#[tokio::test]
async fn https_is_checked_against_the_given_ca() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, config) = tls_identity(dir.path());
    let site = Arc::new(Site::default());
    site.list("/status/1", &f.status);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let served = site.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (acceptor, site) = (acceptor.clone(), served.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service = service_fn(move |r| {
                    let site = site.clone();
                    async move { Ok::<_, Infallible>(answer(site, r).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let url = format!("https://{addr}/status/1");
    let trusting = FetchOptions { ca_file: Some(ca_file), ..FetchOptions::default() };
    let source = HttpStatusSource::new(&url, &trusting).unwrap();
    assert_eq!(source.fetch().await.unwrap().as_deref(), Some(&f.status[..]));

    // Another CA (the system's roots do not know the test CA): no list.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = tls_identity(other.path());
    let untrusting = FetchOptions { ca_file: Some(other_ca), ..FetchOptions::default() };
    let err = HttpStatusSource::new(&url, &untrusting).unwrap().fetch().await.unwrap_err();
    assert!(
        matches!(&err, Error::StatusFetchFailed { reason, .. } if reason.contains("certificate")),
        "{err:?}"
    );
}

/// Lists 1..=n of the fixture's authority, each chaining to the one before; the last revokes
/// the fixture's grant.
fn chain(f: &Fixture, n: u64) -> Vec<Vec<u8>> {
    let mut lists = vec![f.status.clone()];
    for sequence in 2..=n {
        let mut claims = f.status_claims.clone();
        claims.sequence = sequence;
        claims.previous = status_list_digest(lists.last().unwrap()).unwrap();
        if sequence == n {
            claims.bits.revoke(5).unwrap();
        }
        lists.push(claims.sign(&f.authority).unwrap());
    }
    lists
}

fn held(verifier: &Verifier) -> u64 {
    verifier.status_list(ISSUER, STATUS_URI).unwrap().sequence
}

#[tokio::test]
async fn a_verifier_that_missed_lists_walks_the_history_to_the_new_one() {
    let f = Fixture::new();
    let lists = chain(&f, 5);
    let (site, addr) = site().await;
    let verifier = f.bare_verifier();
    verifier.install_status_list(&lists[0]).unwrap();
    site.list("/status/1", &lists[4]);
    for sequence in 2..=4 {
        site.list(&format!("/status/1.history/{sequence}"), &lists[sequence as usize - 1]);
    }
    let source = source(addr);
    assert_eq!(refresh(&verifier, &source).await.unwrap().map(|i| i.sequence), Some(5));
    assert_eq!(
        site.paths(),
        ["/status/1", "/status/1.history/2", "/status/1.history/3", "/status/1.history/4"]
    );
    assert!(site.seen()[1].headers["accept"] == STATUS_LIST_MEDIA_TYPE);
}

#[tokio::test]
async fn a_history_entry_that_breaks_the_chain_refuses_the_new_list_and_keeps_the_held_one() {
    let f = Fixture::new();
    let lists = chain(&f, 5);
    let (site, addr) = site().await;
    let verifier = f.bare_verifier();
    verifier.install_status_list(&lists[0]).unwrap();
    site.list("/status/1", &lists[4]);
    site.list("/status/1.history/2", &lists[1]);
    // A list 3 that does not follow list 2 (a fork).
    let mut forked = f.status_claims.clone();
    forked.sequence = 3;
    forked.previous = status_list_digest(&lists[0]).unwrap();
    site.list("/status/1.history/3", &forked.sign(&f.authority).unwrap());
    site.list("/status/1.history/4", &lists[3]);
    let source = source(addr);
    let err = refresh(&verifier, &source).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::StatusList { error: Verdict::StatusListChainBroken { sequence: 3, held: 2 }, .. }
        ),
        "{err:?}"
    );
    assert_eq!(held(&verifier), 1, "nothing of the walk is installed");

    // An entry served in another's place (list 3 at 4) would make the walk skip a list.
    site.list("/status/1.history/3", &lists[2]);
    site.list("/status/1.history/4", &lists[2]);
    let err = refresh(&verifier, &source).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::StatusList { error: Verdict::StatusListChainBroken { sequence: 3, held: 3 }, .. }
        ),
        "{err:?}"
    );
    assert_eq!(held(&verifier), 1);

    // The history repaired: the next refresh asks again (not conditionally) and installs.
    site.list("/status/1.history/4", &lists[3]);
    site.forget();
    assert_eq!(refresh(&verifier, &source).await.unwrap().map(|i| i.sequence), Some(5));
    assert!(site.seen()[0].headers.get("if-none-match").is_none());
}

#[tokio::test]
async fn history_the_server_no_longer_keeps_is_skipped_and_a_failing_one_is_retried() {
    let f = Fixture::new();
    let lists = chain(&f, 5);
    let (site, addr) = site().await;
    let source = source(addr);
    site.list("/status/1", &lists[4]);
    site.list("/status/1.history/2", &lists[1]);

    // History 3 fails (500): the new list waits, the held one stays.
    let verifier = f.bare_verifier();
    verifier.install_status_list(&lists[0]).unwrap();
    site.set("/status/1.history/3", Reply::Status(500, vec![]));
    let err = refresh(&verifier, &source).await.unwrap_err();
    assert!(
        matches!(&err, Error::StatusFetchStatus { status: 500, url, .. } if url.ends_with("/status/1.history/3")),
        "{err:?}"
    );
    assert_eq!(held(&verifier), 1);

    // History 3 gone (404): the newest is installed across the gap.
    site.set("/status/1.history/3", Reply::Status(404, vec![]));
    assert_eq!(refresh(&verifier, &source).await.unwrap().map(|i| i.sequence), Some(5));
    assert!(!site.paths().contains(&"/status/1.history/4".to_owned()), "{:?}", site.paths());
}

#[tokio::test]
async fn more_missed_lists_than_the_walk_takes_are_installed_across_the_gap() {
    let f = Fixture::new();
    let (site, addr) = site().await;
    let verifier = f.bare_verifier();
    verifier.install_status_list(&f.status).unwrap();
    let mut far = f.status_claims.clone();
    // One more missed (2 ..= 66) than the walk fetches.
    far.sequence = 3 + warrant_http::MAX_CHAIN_WALK;
    site.list("/status/1", &far.sign(&f.authority).unwrap());
    assert_eq!(refresh(&verifier, &source(addr)).await.unwrap().map(|i| i.sequence), Some(far.sequence));
    assert_eq!(site.paths(), ["/status/1"], "no history fetched");
}

#[tokio::test]
async fn an_older_list_served_is_refused_and_the_held_one_stays() {
    let f = Fixture::new();
    let lists = chain(&f, 2);
    let (site, addr) = site().await;
    let verifier = f.bare_verifier();
    verifier.install_status_list(&lists[1]).unwrap();
    site.list("/status/1", &lists[0]);
    let err = refresh(&verifier, &source(addr)).await.unwrap_err();
    assert_eq!(err.code(), "status_list_rollback");
    assert_eq!(held(&verifier), 2);
}

#[tokio::test]
async fn fetches_failing_keep_the_held_list_until_its_exp_then_the_verifier_refuses() {
    let f = Fixture::new();
    let (site, addr) = site().await;
    let mut claims = f.status_claims.clone();
    claims.expires_at = f.clock.now() + 600;
    let short = claims.sign(&f.authority).unwrap();
    site.list("/status/1", &short);
    let verifier = f.bare_verifier();
    let source = source(addr);
    refresh(&verifier, &source).await.unwrap();

    site.set("/status/1", Reply::Status(503, vec![]));
    assert!(refresh(&verifier, &source).await.is_err());
    let target = "https://api.example.com/v1/deploy/prod";
    let deploy =
        common::Signed { method: "POST", target, body: b"{}", action: "deploy", resource: "prod/api" };
    let request = HttpRequest { method: "POST", target, body: b"{}" };
    let expected = Expected { action: "deploy", resource: "prod/api" };
    // Before exp the held list decides.
    verifier.verify(&f.warrant(&deploy), &expected, &request, None).unwrap();
    // Past exp (and the skew), with no fresh list: refused, fail closed.
    f.clock.set(claims.expires_at + 61);
    let err = verifier.verify(&f.warrant(&deploy), &expected, &request, None).unwrap_err();
    assert!(matches!(err, Verdict::StatusListExpired { .. }), "{err:?}");
    assert_eq!(Error::from(err).status().0, http::StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_refresher_installs_a_new_list_on_the_held_lists_schedule() {
    let f = Fixture::new();
    let (site, addr) = site().await;
    // Issued now, to be replaced after a second: the refresher comes back for it.
    let now = common::now();
    let mut claims = f.status_claims.clone();
    claims.issued_at = now;
    claims.time_to_live = 1;
    let first = claims.sign(&f.authority).unwrap();
    site.list("/status/1", &first);
    let verifier = Arc::new(
        Verifier::builder(common::ORIGIN)
            .trust(warrant_envelope::verify::TrustedAuthority {
                issuer: ISSUER.into(),
                keys: vec![warrant_envelope::issue::Signer::public_key(&f.authority).clone()],
            })
            .build()
            .unwrap(),
    );
    let mut refresher =
        StatusRefresher::new(verifier.clone(), Arc::new(source(addr)), RefreshSchedule::default());
    refresher.refresh().await.unwrap();
    let task = refresher.spawn();
    let mut next = f.status_claims.clone();
    next.sequence = 2;
    next.previous = status_list_digest(&first).unwrap();
    next.issued_at = now;
    site.list("/status/1", &next.sign(&f.authority).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while held(&verifier) != 2 {
        assert!(Instant::now() < deadline, "the new list was not fetched: {:?}", site.paths());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
}
