//! Work and record agree: an operation is either not done, or done and audited as done (with
//! what its caller could not receive), whatever happens meanwhile. Each test drives a real
//! fault at the exact point: strace holds warrantd in a system call (the link of a key file,
//! the sync of a `begin` line) while the caller is killed, the request times out, the audit
//! disk fills, or the daemon is killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use common::base_config;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use warrant_api as api;

/// strace attached to every thread of a running process, injecting `inject` (for example
/// `linkat:delay_exit=1500000`: the link is made, then the thread is held 1.5 s).
struct Strace {
    child: Child,
    _stderr: BufReader<ChildStderr>,
}

impl Strace {
    fn attach(pid: u32, syscall: &str, inject: &str) -> Self {
        let mut child = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e", &format!("trace={syscall}"), "-e"])
            .arg(format!("inject={syscall}:{inject}"))
            .args(["-p", &pid.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace (scripts/test installs it)");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        // "strace: Process N attached with M threads": every thread is traced from here on.
        while !line.contains("attached") {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "strace did not attach: {line}");
        }
        Self { child, _stderr: stderr }
    }
}

impl Drop for Strace {
    fn drop(&mut self) {
        // SIGTERM: strace detaches and lets a held thread go.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Waits up to 20 s for `ready`, failing with `what`.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The audit lines of `path`, whole (a torn line fails), or none while it is missing.
fn lines(path: &Path) -> Vec<Value> {
    if path.exists() {
        common::audit_lines(path)
    } else {
        Vec::new()
    }
}

/// The lines of operation `name` in `lines` with `decision`.
fn with<'a>(lines: &'a [Value], name: &str, decision: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["operation"] == name && l["decision"] == decision).collect()
}

/// The line of `op` with a decision other than `begin` (its outcome), if written.
fn outcome<'a>(lines: &'a [Value], op: &Value) -> Option<&'a Value> {
    lines.iter().find(|l| l["op"] == *op && l["decision"] != "begin" && l["operation"] != "request")
}

fn key_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("state/keys").join(format!("{name}.key"))
}

fn key_names(d: &common::Daemon) -> Vec<String> {
    let keys: api::KeyList = d.client().get("/keys").unwrap();
    keys.keys.into_iter().map(|k| k.name).collect()
}

/// `warrant keys create NAME` as a child process: a caller that can be killed while it waits.
fn create_in_child(d: &common::Daemon, name: &str) -> Child {
    Command::new(common::warrant_bin())
        .args(["keys", "create", name])
        .env("WARRANT_SOCKET", &d.socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The caller leaves while its key is being made (held after the link of the key file): the
/// key is made and recorded, the line says `allow` and that the answer was withheld. Before,
/// the line said `deny` for a key that existed.
#[test]
fn a_caller_that_leaves_during_the_work_gets_an_allow_line_saying_its_answer_was_withheld() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let audit = tmp.path().join("audit.jsonl");
    let strace = Strace::attach(d.child.id(), "linkat", "delay_exit=1500000");
    let mut caller = create_in_child(&d, "laptop");
    wait_for("the key file", || key_file(tmp.path(), "laptop").exists());
    caller.kill().unwrap();
    caller.wait().unwrap();
    wait_for("the outcome line", || !with(&lines(&audit), "keys.create", "allow").is_empty());
    drop(strace);
    let lines = lines(&audit);
    let allowed = with(&lines, "keys.create", "allow");
    assert_eq!(allowed.len(), 1, "{lines:?}");
    let reason = allowed[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("withheld"), "{reason}");
    let begun = with(&lines, "keys.create", "begin");
    assert_eq!(begun.len(), 1, "{lines:?}");
    assert_eq!(begun[0]["op"], allowed[0]["op"], "one operation, two lines");
    assert!(with(&lines, "keys.create", "deny").is_empty(), "never a deny for work that was done");
    assert_eq!(key_names(&d), ["laptop"]);
}

/// The caller leaves while its `begin` line is synced (held after the write): it is gone
/// before the work begins, so nothing is done and the line says `deny`.
#[test]
fn a_caller_that_leaves_before_the_work_begins_is_refused_and_nothing_is_done() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let audit = tmp.path().join("audit.jsonl");
    // The first fdatasync after attaching is the audit writer's, for the begin line.
    let strace = Strace::attach(d.child.id(), "fdatasync", "delay_exit=1500000:when=1");
    let mut caller = create_in_child(&d, "laptop");
    wait_for("the begin line", || !with(&lines(&audit), "keys.create", "begin").is_empty());
    caller.kill().unwrap();
    caller.wait().unwrap();
    wait_for("the outcome line", || !with(&lines(&audit), "keys.create", "deny").is_empty());
    drop(strace);
    let lines = lines(&audit);
    let denied = with(&lines, "keys.create", "deny");
    assert_eq!(denied[0]["op"], with(&lines, "keys.create", "begin")[0]["op"]);
    let reason = denied[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("nothing was done"), "{reason}");
    assert!(with(&lines, "keys.create", "allow").is_empty(), "{lines:?}");
    assert!(!key_file(tmp.path(), "laptop").exists());
    assert!(key_names(&d).is_empty());
}

/// The request times out (200 ms) while the key file's link is held (1.5 s): the 408 names
/// the operation, the key is made and recorded anyway, its line says `allow` and that the
/// answer was not delivered, and the timeout's line says the same. Before, the key existed
/// after a 408 audited only as a refusal.
#[test]
fn a_request_timeout_never_cancels_work_and_every_line_says_what_happened() {
    let tmp = common::workdir();
    let config = format!("{}\n[limits]\nrequest_timeout_ms = 200\n", base_config(tmp.path()));
    let d = common::start(tmp.path(), &config);
    let audit = tmp.path().join("audit.jsonl");
    let strace = Strace::attach(d.child.id(), "linkat", "delay_enter=1500000");
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    let (status, body) = common::raw_request(&mut stream, "POST", "/v1/keys", Some(r#"{"name":"laptop"}"#));
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("runs to completion"), "{body}");
    wait_for("the outcome line", || !with(&lines(&audit), "keys.create", "allow").is_empty());
    drop(strace);
    let lines = lines(&audit);
    let allowed = with(&lines, "keys.create", "allow")[0];
    let reason = allowed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not delivered"), "{reason}");
    let op = &allowed["op"];
    assert!(body.contains(op.as_str().unwrap()), "the 408 names operation {op}: {body}");
    let timeout = lines.iter().find(|l| l["operation"] == "request").unwrap();
    assert_eq!((&timeout["op"], &timeout["decision"]), (op, &Value::from("error")), "{timeout}");
    assert!(timeout["reason"].as_str().unwrap().contains("not delivered"), "{timeout}");
    assert!(lines.iter().all(|l| l["decision"] != "deny"), "nothing was refused: {lines:?}");
    assert_eq!(key_names(&d), ["laptop"]);
}

/// A key file and a `.tmp-` file nothing records, placed before start-up: the orphan goes to
/// quarantine (whole), the partial file is removed, each with an audit and a log line, and
/// the name can be created again. Before, the name answered 409 to create and 404 to use.
#[test]
fn orphan_and_partial_key_files_are_put_aside_at_start_with_a_line_each() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let _: api::Key = d.client().post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    d.stop();
    let keys = tmp.path().join("state/keys");
    let orphan = std::fs::read(keys.join("laptop.key")).unwrap();
    std::fs::write(keys.join("orphan.key"), &orphan).unwrap();
    std::fs::write(keys.join(".tmp-Ab12Cd"), b"half a key").unwrap();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    assert_reconciled(tmp.path(), &d, "orphan", &orphan);
}

/// The same, made by a real `kill -9` between the link of the key file and its record.
#[test]
fn a_kill_between_a_key_file_and_its_record_is_reconciled_at_the_next_start() {
    let tmp = common::workdir();
    let mut d = common::start(tmp.path(), &base_config(tmp.path()));
    let strace = Strace::attach(d.child.id(), "linkat", "delay_exit=5000000");
    let mut caller = create_in_child(&d, "laptop");
    wait_for("the key file", || key_file(tmp.path(), "laptop").exists());
    let keys = tmp.path().join("state/keys");
    let partial = std::fs::read_dir(&keys)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"));
    assert!(partial, "the temporary file is still there while the link is held");
    let bytes = std::fs::read(key_file(tmp.path(), "laptop")).unwrap();
    d.child.kill().unwrap();
    d.wait_exit(Duration::from_secs(10));
    drop(strace);
    let _ = caller.wait();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    assert_reconciled(tmp.path(), &d, "laptop", &bytes);
}

/// `name`'s orphan file is in quarantine with `bytes`, no `.tmp-` file is left, both have
/// audit and log lines, and `name` can be created again.
fn assert_reconciled(dir: &Path, d: &common::Daemon, name: &str, bytes: &[u8]) {
    let keys = dir.join("state/keys");
    assert!(!key_file(dir, name).exists());
    let left: Vec<String> =
        std::fs::read_dir(&keys).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(left.iter().all(|f| !f.starts_with(".tmp-")), "{left:?}");
    let quarantined: Vec<PathBuf> =
        std::fs::read_dir(keys.join("quarantine")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(std::fs::read(&quarantined[0]).unwrap(), bytes, "moved whole, never deleted");
    let lines = d.audit();
    let reconciled = with(&lines, "keys.reconcile", "allow");
    assert_eq!(reconciled.len(), 2, "{lines:?}");
    assert!(reconciled
        .iter()
        .any(|l| l["key"] == name && l["reason"].as_str().unwrap().contains("quarantine")));
    assert!(reconciled.iter().any(|l| l["reason"].as_str().unwrap().contains("partly written")));
    assert!(d.stderr().contains("moved to"), "{}", d.stderr());
    let created: api::Key = d.client().post("/keys", &api::CreateKey { name: name.into() }).unwrap();
    assert_eq!(created.name, name);
}

/// The audit disk fills (and the file is rotated) while a key is being made: its `begin` line
/// is written, its outcome line cannot be. The key is committed, so the answer is the key,
/// not a 500, and the failure is logged. Before, committed state was answered 500.
#[test]
fn an_outcome_line_that_cannot_be_written_after_the_commit_still_answers_the_result() {
    let tmp = common::workdir();
    let Some(fs) = common::Tmpfs::mount(&tmp.path().join("audit-fs"), 64) else { return };
    let audit = fs.0.join("audit.jsonl");
    let d = common::start(tmp.path(), &common::with_audit_file(&base_config(tmp.path()), &audit));
    let strace = Strace::attach(d.child.id(), "linkat", "delay_exit=1500000");
    let socket = d.socket.clone();
    let asking = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(&socket).unwrap();
        common::raw_request(&mut stream, "POST", "/v1/keys", Some(r#"{"name":"laptop"}"#))
    });
    wait_for("the begin line", || !with(&lines(&audit), "keys.create", "begin").is_empty());
    // logrotate moves the file and the disk fills: the reopened file has no page to grow into.
    let rotated = fs.0.join("audit.jsonl.1");
    std::fs::rename(&audit, &rotated).unwrap();
    let filler = fs.0.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0u8; 4096]).is_ok() {}
    let (status, body) = asking.join().unwrap();
    drop(strace);
    assert_eq!(status, 200, "the committed key is the answer: {body}");
    let key: api::Key = serde_json::from_str(&body).unwrap();
    assert_eq!(key.name, "laptop");
    let begun = common::audit_lines(&rotated);
    let op = &with(&begun, "keys.create", "begin")[0]["op"];
    assert!(outcome(&begun, op).is_none());
    assert!(d.stderr().contains("its begin line stands"), "{}", d.stderr());
    drop(file);
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(key_names(&d), ["laptop"]);
}

/// A client that loops over the authority's committing operations until its daemon dies.
fn authority_work(socket: PathBuf) {
    let Ok(mut client) = warrant_client::Client::new(&socket) else { return };
    loop {
        let challenge =
            api::ChallengeRequest { ttl: 60, principal: Some("alice".into()), tpm_identity: None };
        let Ok(challenge) = client.post::<_, api::ChallengeResponse>("/authority/challenges", &challenge)
        else {
            return;
        };
        let request = api::EnrollRequest {
            key: "laptop".into(),
            principal: "alice".into(),
            challenge: challenge.challenge,
            tpm_credential: None,
        };
        let Ok(enrollment) = client.post::<_, api::EnrollResponse>("/enroll", &request) else { return };
        let request =
            api::GrantRequest { allow_self_reported: true, ..common::grant_request(enrollment.enrollment) };
        let Ok(grant) = client.post::<_, api::GrantResponse>("/authority/grants", &request) else { return };
        let revoke = api::RevokeRequest { grant_id: grant.grant_id };
        if client.post::<_, api::RevokeResponse>("/authority/revocations", &revoke).is_err() {
            return;
        }
        let publish = api::PublishRequest { valid_for: 3600, ttl: None };
        if client.post::<_, api::StatusListResponse>("/authority/status-lists", &publish).is_err() {
            return;
        }
    }
}

/// 25 `kill -9`s at random points while a client loops on challenges, grants, revocations and
/// publishes: every committed grant, revocation and status list has a line before its
/// answer (its outcome line, or a `begin` line whose outcome the kill cut off), and no line
/// is torn. Before, 6 committed operations in 25 kills had no line at all.
#[test]
fn kill_9_during_authority_work_never_leaves_a_commit_without_a_line() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut client = d.client();
    common::init_authority(&mut client, "acme");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    drop(client);
    d.stop();
    // A fixed-seed generator: the kill points vary over 10-400 ms, reproducibly.
    let mut seed: u64 = 0x5eed_2026;
    for _ in 0..25 {
        let mut d = common::start(tmp.path(), &base_config(tmp.path()));
        let worker = std::thread::spawn({
            let socket = d.socket.clone();
            move || authority_work(socket)
        });
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(10 + (seed >> 33) % 390));
        d.child.kill().unwrap();
        d.wait_exit(Duration::from_secs(10));
        worker.join().unwrap();
    }
    let lines = common::audit_lines(&tmp.path().join("audit.jsonl"));
    let db = rusqlite::Connection::open(tmp.path().join("state/state.db")).unwrap();
    let grants: Vec<(String, bool)> = db
        .prepare("SELECT lower(hex(id)), revoked_at IS NOT NULL FROM grants")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lists: Vec<u64> = db
        .prepare("SELECT sequence FROM status_lists")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(grants.len() >= 5 && !lists.is_empty(), "too little work to prove anything: {grants:?}");
    // Operations the kills cut off after their begin line: each may or may not have committed.
    let cut_off = |name: &str| {
        with(&lines, name, "begin").into_iter().filter(|b| outcome(&lines, &b["op"]).is_none()).count()
    };
    eprintln!(
        "{} grant(s), {} list(s); cut off after their begin line: {} grant(s), {} publish(es), {} revocation(s)",
        grants.len(),
        lists.len(),
        cut_off("authority.grant"),
        cut_off("authority.publish"),
        cut_off("authority.revoke")
    );
    let unlined_grants = grants
        .iter()
        .filter(|(id, _)| {
            !with(&lines, "authority.grant", "allow").iter().any(|l| l["grant_id"] == id.as_str())
        })
        .count();
    assert!(
        unlined_grants <= cut_off("authority.grant"),
        "{unlined_grants} grant(s) committed without a line"
    );
    let unlined_lists = lists
        .iter()
        .filter(|s| !with(&lines, "authority.publish", "allow").iter().any(|l| l["status_sequence"] == **s))
        .count();
    assert!(
        unlined_lists <= cut_off("authority.publish"),
        "{unlined_lists} list(s) published without a line"
    );
    for (id, revoked) in &grants {
        if *revoked {
            // The begin line of a revocation names its grant.
            let named =
                with(&lines, "authority.revoke", "begin").iter().any(|l| l["grant_id"] == id.as_str());
            assert!(named, "grant {id} was revoked without a line");
        }
    }
    // Every allowed committing operation had its begin line first.
    for (at, line) in lines.iter().enumerate() {
        let name = line["operation"].as_str().unwrap_or_default();
        if line["decision"] == "allow" && name.starts_with("authority.") && name != "authority.read" {
            let begun = lines[..at].iter().any(|b| b["op"] == line["op"] && b["decision"] == "begin");
            assert!(begun, "no begin line before {line}");
        }
    }
}
