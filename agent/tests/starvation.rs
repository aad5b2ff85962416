//! No caller starves the others: a second uid that floods refused requests, holds connections
//! without reading its answers, or opens more connections than its share, while this uid (the
//! legitimate caller) is served; and refusals made before any handler are JSON and audited.
//!
//! The hostile uid's clients are this test binary run again as that user (copied where it can
//! run it), in the mode `WARRANT_HOSTILE` names: see [`hostile_client`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::base_config;
use warrant_api as api;

/// `[limits]` lines added to the test configuration.
fn config_with(dir: &Path, limits: &str, socket_group: &str) -> String {
    base_config(dir)
        .replacen("state_dir", &format!("socket_group = \"{socket_group}\"\nstate_dir"), 1)
        .replacen("[audit]", &format!("[limits]\n{limits}\n\n[audit]"), 1)
}

/// A daemon whose socket the test user's group may use, and the test user's uid and name;
/// `None` when not root.
fn shared_daemon(limits: &str) -> Option<(tempfile::TempDir, common::Daemon, u32, std::path::PathBuf)> {
    let (uid, user) = common::test_user()?;
    let tmp = common::workdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let me = std::env::current_exe().unwrap();
    let helper = common::reachable_copy(tmp.path(), me.to_str().unwrap());
    let d = common::start(tmp.path(), &config_with(tmp.path(), limits, &user));
    Some((tmp, d, uid, helper))
}

/// Starts this binary's [`hostile_client`] as `uid` in `mode` against `socket`.
fn hostile(helper: &Path, uid: u32, mode: &str, socket: &Path, count: usize, hold_ms: u64) -> Child {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).unwrap().unwrap();
    Command::new(helper)
        .args(["--exact", "hostile_client", "--nocapture", "--test-threads=1"])
        .env("WARRANT_HOSTILE", mode)
        .env("WARRANT_HOSTILE_SOCKET", socket)
        .env("WARRANT_HOSTILE_COUNT", count.to_string())
        .env("WARRANT_HOSTILE_HOLD_MS", hold_ms.to_string())
        .uid(uid)
        .gid(user.gid.as_raw())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the helper's report lines (`HOSTILE key value`) until `until` (or its end).
fn report(child: &mut Child, until: Option<&str>) -> BTreeMap<String, String> {
    let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    let mut out = BTreeMap::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The test harness's own output may share the first line.
        let Some(rest) = line.split_once("HOSTILE ").map(|(_, rest)| rest) else { continue };
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        out.insert(key.to_owned(), value.to_owned());
        if until == Some(key) {
            return out;
        }
    }
    out
}

fn wait_ok(mut child: Child) -> BTreeMap<String, String> {
    let out = report(&mut child, None);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success(), "hostile client failed: {stderr}");
    out
}

fn number(report: &BTreeMap<String, String>, key: &str) -> u64 {
    report.get(key).map(|v| v.parse().unwrap()).unwrap_or(0)
}

/// The legitimate caller (this uid, allowed by the rules) is served.
fn served(d: &common::Daemon) -> Duration {
    let start = Instant::now();
    let _: api::KeyList =
        d.client().get("/keys").unwrap_or_else(|e| panic!("legitimate caller refused: {e}"));
    start.elapsed()
}

#[test]
fn a_refusal_flood_is_answered_429_beyond_its_budget_and_the_audit_log_stays_small() {
    let limits = "refusal_burst = 20\nrefusals_per_second = 2\nrefusal_summary_ms = 300";
    let Some((_tmp, d, uid, helper)) = shared_daemon(limits) else { return };
    let flood = hostile(&helper, uid, "flood", &d.socket, 3000, 0);
    // Meanwhile, the legitimate caller is served.
    for _ in 0..20 {
        assert!(served(&d) < Duration::from_secs(2));
    }
    let counts = wait_ok(flood);
    let (refused, limited) = (number(&counts, "403"), number(&counts, "429"));
    assert_eq!(refused + limited, 3000, "{counts:?}");
    assert!((20..60).contains(&refused), "the burst and what refilled meanwhile: {counts:?}");
    // The summary comes within refusal_summary_ms.
    std::thread::sleep(Duration::from_millis(800));
    let lines = d.audit();
    let theirs: Vec<_> = lines.iter().filter(|l| l["uid"] == uid).collect();
    let one_by_one = theirs.iter().filter(|l| l["operation"] == "keys.list").count() as u64;
    assert_eq!(one_by_one, refused, "one line per refusal answered 403, none per 429");
    let summarized: u64 = theirs
        .iter()
        .filter(|l| l["operation"] == "refusals")
        .map(|l| l["suppressed"].as_u64().unwrap())
        .sum();
    assert_eq!(summarized, limited, "every 429 is counted in a summary line");
    let size = std::fs::metadata(d.dir.join("audit.jsonl")).unwrap().len();
    assert!(size < 100 * 1024, "3000 refusals wrote {size} bytes of audit");
    // The legitimate caller's own refusals have their own budget.
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    assert_eq!(common::raw_request(&mut stream, "GET", "/v1/no-such-thing", None).0, 404);
}

#[test]
fn clients_that_do_not_read_their_answers_are_cut_off_and_others_are_served() {
    // 16 slots: without a share and a write timeout the 16 would hold them all for ever.
    let limits = "max_connections = 16\nmax_connections_per_uid = 12\nwrite_timeout_ms = 1000";
    let Some((_tmp, d, uid, helper)) = shared_daemon(limits) else { return };
    let mut hold = hostile(&helper, uid, "hold", &d.socket, 16, 3000);
    let ready = report(&mut hold, Some("holding"));
    assert_eq!(number(&ready, "holding"), 12, "its share: {ready:?}");
    assert_eq!(number(&ready, "refused"), 4, "beyond its share: {ready:?}");
    // While they hold their 12, this uid is served (not 503).
    assert!(served(&d) < Duration::from_secs(2));
    let result = wait_ok(hold);
    assert_eq!(number(&result, "closed"), 12, "closed after the write timeout: {result:?}");
    let stalled = d.stderr();
    assert!(!stalled.contains("panicked"), "{stalled}");
}

#[test]
fn one_uid_beyond_its_share_of_connections_is_refused_while_another_connects() {
    let limits = "max_connections = 16\nmax_connections_per_uid = 4";
    let Some((_tmp, d, uid, helper)) = shared_daemon(limits) else { return };
    let mut open = hostile(&helper, uid, "open", &d.socket, 8, 2000);
    let ready = report(&mut open, Some("holding"));
    assert_eq!(number(&ready, "200"), 4, "{ready:?}");
    assert_eq!(number(&ready, "429"), 4, "{ready:?}");
    assert_eq!(ready.get("error").map(String::as_str), Some("too_many_connections_for_uid"), "{ready:?}");
    // Its 4 are held; this uid still gets its own 4.
    let mine: Vec<UnixStream> = (0..4).map(|_| UnixStream::connect(&d.socket).unwrap()).collect();
    for mut stream in mine {
        assert_eq!(common::raw_request(&mut stream, "GET", "/v1/health", None).0, 200);
    }
    wait_ok(open);
    let refusals =
        d.audit().into_iter().filter(|l| l["uid"] == uid && l["operation"] == "connection").count();
    assert_eq!(refusals, 4, "each refused connection is audited");
}

#[test]
fn a_connection_idle_between_requests_is_closed_after_the_header_timeout() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &config_with(tmp.path(), "header_timeout_ms = 500", "root"));
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    assert_eq!(common::raw_request(&mut stream, "GET", "/v1/health", None).0, 200);
    // hyper starts the header timer when it waits for the next request: an idle connection
    // holds its slot no longer than that.
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let n = stream.read(&mut [0u8; 64]).unwrap();
    assert_eq!(n, 0, "closed");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

/// Sends `bytes` as a request and returns the answer's status and JSON body.
fn refused_before_any_handler(d: &common::Daemon, bytes: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    // The daemon may answer and close before it has read all of an oversized request.
    let _ = stream.write_all(bytes);
    let (status, body) = common::read_response(&mut stream);
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}")))
}

#[test]
fn refusals_before_any_handler_are_json_and_audited() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let audited = |reason: &str| {
        d.audit().iter().any(|l| {
            l["decision"] == "deny"
                && l["uid"].is_u64()
                && l["reason"].as_str().is_some_and(|r| r.contains(reason))
        })
    };
    // A target that is not ASCII: hyper refuses it while parsing.
    let (status, body) = refused_before_any_handler(&d, b"GET /v1/keys/\xff\xfe HTTP/1.1\r\nhost: w\r\n\r\n");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(audited("not HTTP/1.1 warrantd can parse"), "{:?}", d.audit());
    // A percent-escape that is not UTF-8: axum's path extractor refuses it.
    let (status, body) = refused_before_any_handler(&d, b"GET /v1/keys/%FF%FE HTTP/1.1\r\nhost: w\r\n\r\n");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("before it reached its handler"), "{body}");
    assert!(audited("before it reached its handler"), "{:?}", d.audit());
    // Headers larger than hyper reads.
    let big = format!("GET /v1/health HTTP/1.1\r\nhost: w\r\nx-big: {}\r\n\r\n", "a".repeat(200 * 1024));
    let (status, body) = refused_before_any_handler(&d, big.as_bytes());
    assert_eq!((status, body["error"].as_str()), (431, Some("headers_too_large")), "{body}");
    assert!(audited("headers exceed"), "{:?}", d.audit());
    // A malformed header line.
    let (status, body) = refused_before_any_handler(&d, b"GET /v1/health HTTP/1.1\r\nno colon here\r\n\r\n");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    // And the daemon serves on.
    let _: api::Health = d.client().get("/health").unwrap();
}

/// The hostile uid's side, run by the tests above as a separate process; does nothing unless
/// `WARRANT_HOSTILE` names a mode. Reports `HOSTILE key value` lines on standard output.
/// - `flood`: COUNT refused requests (`GET /v1/keys`) on one kept-alive connection; counts
///   the statuses.
/// - `hold`: COUNT connections, each sent requests until the daemon stops reading them, never
///   reading an answer; reports how many are held, waits HOLD_MS, then how many the daemon
///   closed.
/// - `open`: COUNT connections with one request each; reports the statuses, holds them
///   HOLD_MS.
#[test]
fn hostile_client() {
    let Ok(mode) = std::env::var("WARRANT_HOSTILE") else { return };
    let socket = std::env::var("WARRANT_HOSTILE_SOCKET").unwrap();
    let count: usize = std::env::var("WARRANT_HOSTILE_COUNT").unwrap().parse().unwrap();
    let hold = Duration::from_millis(std::env::var("WARRANT_HOSTILE_HOLD_MS").unwrap().parse().unwrap());
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    match mode.as_str() {
        "flood" => {
            let mut stream = UnixStream::connect(&socket).unwrap();
            for _ in 0..count {
                let (status, _) = common::raw_request(&mut stream, "GET", "/v1/keys", None);
                *statuses.entry(status).or_default() += 1;
            }
        }
        "hold" => {
            let request = b"GET /v1/health HTTP/1.1\r\nhost: w\r\n\r\n".repeat(64);
            // All connected first: the daemon takes them in this order.
            let streams: Vec<UnixStream> =
                (0..count).map(|_| UnixStream::connect(&socket).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(300));
            // A connection refused beyond the share got one answer and was closed.
            let (refused, mut held): (Vec<_>, Vec<_>) = streams.into_iter().partition(|s| {
                let mut first = [0u8; 12];
                s.set_nonblocking(true).unwrap();
                (&*s).read(&mut first).is_ok_and(|n| n == 12 && first.starts_with(b"HTTP/1.1 429"))
            });
            // Requests on each until the daemon, its answers unread, stops reading them.
            let mut last_progress = Instant::now();
            while last_progress.elapsed() < Duration::from_millis(300) {
                for stream in &mut held {
                    if stream.write(&request).is_ok_and(|n| n > 0) {
                        last_progress = Instant::now();
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            println!("HOSTILE refused {}", refused.len());
            println!("HOSTILE holding {}", held.len());
            std::thread::sleep(hold);
            let closed = held.iter_mut().map(closed_by_peer).filter(|closed| *closed).count();
            println!("HOSTILE closed {closed}");
            return;
        }
        "open" => {
            let mut held = Vec::new();
            for _ in 0..count {
                let mut stream = UnixStream::connect(&socket).unwrap();
                // Refused at accept, the connection may be closed before the request is sent.
                let _ = stream.write_all(b"GET /v1/health HTTP/1.1\r\nhost: w\r\n\r\n");
                let (status, body) = common::read_response(&mut stream);
                *statuses.entry(status).or_default() += 1;
                if status == 429 {
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                    println!("HOSTILE error {}", body["error"].as_str().unwrap());
                }
                held.push(stream);
            }
            for (status, n) in &statuses {
                println!("HOSTILE {status} {n}");
            }
            println!("HOSTILE holding {}", held.len());
            std::thread::sleep(hold);
            return;
        }
        other => panic!("unknown mode {other}"),
    }
    for (status, n) in &statuses {
        println!("HOSTILE {status} {n}");
    }
}

/// Whether the daemon closed `stream`: reading what it sent ends in end-of-file soon (an open
/// connection would instead answer more of the queued requests and go on).
fn closed_by_peer(stream: &mut UnixStream) -> bool {
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return true,
        }
    }
    false
}
