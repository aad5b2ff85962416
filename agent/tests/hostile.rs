//! warrantd against hostile local callers and a hostile host: its memory stays out of cores
//! and debuggers, a resource shortage is answered as one, the socket's directory is not
//! re-moded, and bodies are the objects the API says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use common::base_config;
use warrant_api as api;

/// A limit line of /proc/PID/limits: (soft, hard).
fn limit(pid: u32, name: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_owned(), fields[1].to_owned())
}

#[test]
fn no_core_files_and_every_descriptor_the_hard_limit_allows() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let pid = d.child.id();
    assert_eq!(limit(pid, "Max core file size"), ("0".into(), "0".into()));
    let (soft, hard) = limit(pid, "Max open files");
    assert_eq!(soft, hard, "the soft descriptor limit is raised to the hard one");
}

/// The kernel makes /proc/PID of an undumpable process root's, so its own uid can neither
/// read its memory nor ptrace it (nor get a core of it). Checked on warrantd running as a
/// second user, against a plain process of that user.
#[test]
fn the_daemons_own_uid_cannot_read_its_memory() {
    let Some((uid, user)) = common::test_user() else { return };
    let tmp = common::workdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
    let daemon = common::reachable_copy(tmp.path(), env!("CARGO_BIN_EXE_warrantd"));
    let config = warrant_agent::daemon::config::single_user(&home, uid, common::AUDIENCE);
    let path = home.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
    // setpriv execs warrantd in place: the child's pid is the daemon's.
    let mut command = Command::new("setpriv");
    command.args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups"]).arg(&daemon);
    let d = common::start_command_as(&home, &path, command, uid)
        .unwrap_or_else(|e| panic!("warrantd did not start as {user}: {e}"));
    let owner = |pid: u32| std::fs::metadata(format!("/proc/{pid}/mem")).unwrap().uid();
    assert_eq!(owner(d.child.id()), 0, "/proc/PID/mem of warrantd belongs to root: it is undumpable");
    let mut plain = Command::new("setpriv")
        .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups", "sleep", "30"])
        .spawn()
        .unwrap();
    // Until setpriv has switched to the user and exec'd sleep, the process is root's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{}/comm", plain.id())).unwrap_or_default().trim() != "sleep"
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let plain_owner = owner(plain.id());
    plain.kill().unwrap();
    plain.wait().unwrap();
    assert_eq!(plain_owner, uid, "the control: a dumpable process of that user owns its /proc files");
}

/// With few descriptors, connections beyond what they allow get 503 `too_many_connections`,
/// never an identity refusal, and the daemon says why in its log.
#[test]
fn a_descriptor_shortage_is_a_503_not_an_identity_refusal() {
    let tmp = common::workdir();
    let path = tmp.path().join("agent.toml");
    // One uid takes every connection here: no share of them is kept for others.
    std::fs::write(&path, base_config(tmp.path()) + "\n[limits]\nmax_connections_per_uid = 512\n").unwrap();
    // 100 descriptors: 64 reserved, room for 18 connections.
    let mut command = Command::new("prlimit");
    command.args(["--nofile=100:100", env!("CARGO_BIN_EXE_warrantd")]);
    let d = common::start_command(tmp.path(), &path, command).unwrap();
    assert!(d.stderr().contains("serving at most 18"), "{}", d.stderr());
    let held: Vec<UnixStream> = (0..18).map(|_| UnixStream::connect(&d.socket).unwrap()).collect();
    // Every one of them is served.
    for mut stream in held.iter().take(2).map(|s| s.try_clone().unwrap()) {
        assert_eq!(common::raw_request(&mut stream, "GET", "/v1/health", None).0, 200);
    }
    let mut extra = UnixStream::connect(&d.socket).unwrap();
    let (status, body) = common::read_response(&mut extra);
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "too_many_connections");
    drop(held);
}

#[test]
fn an_existing_socket_directory_keeps_its_mode() {
    let tmp = common::workdir();
    // Like /tmp: world-writable with the sticky bit. The daemon must not make it 0700.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(shared.join("someone-elses-file"), "").unwrap();
    let socket = shared.join("agent.sock");
    let config = common::with_path(&base_config(tmp.path()), "socket", &socket);
    let d = common::start(tmp.path(), &config);
    assert_eq!(d.socket, socket);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(mode(&socket), 0o600, "the socket's own mode protects it");
    let _: api::Health = d.client().get("/health").unwrap();
    // A directory the daemon makes itself is private, and stays so across restarts.
    drop(d);
    let fresh = tmp.path().join("fresh/run");
    let config = common::with_path(&base_config(tmp.path()), "socket", &fresh.join("agent.sock"));
    let d = common::start(tmp.path(), &config);
    assert_eq!(mode(&fresh), 0o700);
    drop(d);
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _d = common::start(tmp.path(), &config);
    assert_eq!(mode(&fresh), 0o700, "holding only its socket, the directory is the daemon's");
}

#[test]
fn a_json_array_is_not_an_object_body() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    let (status, body) = common::raw_request(&mut stream, "POST", "/v1/keys", Some(r#"["laptop"]"#));
    assert_eq!(status, 400, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "bad_json");
    assert!(body["message"].as_str().unwrap().contains("must be an object"), "{body}");
    let keys: api::KeyList = d.client().get("/keys").unwrap();
    assert!(keys.keys.iter().all(|k| k.name != "laptop"), "no key was created");
    // The object form still works.
    let (status, _) = common::raw_request(&mut stream, "POST", "/v1/keys", Some(r#"{"name":"laptop"}"#));
    assert_eq!(status, 200);
}

/// A full disk under the audit log: the operations that cannot be audited fail, no line is
/// torn (each is whole or absent), and once there is room again every line is whole.
#[test]
fn a_full_disk_never_tears_an_audit_line() {
    let tmp = common::workdir();
    let Some(fs) = common::Tmpfs::mount(&tmp.path().join("audit-fs"), 64) else { return };
    let audit = fs.0.join("audit.jsonl");
    let d = common::start(tmp.path(), &common::with_audit_file(&base_config(tmp.path()), &audit));
    // Leave about one page free for the audit file.
    let filler = fs.0.join("filler");
    let mut size = 64 * 1024;
    while std::fs::write(&filler, vec![0u8; size]).is_err() {
        size -= 4096;
    }
    let mut client = d.client();
    let mut refused = 0;
    for n in 0..200 {
        // Long key names make lines of varying length, so some write straddles the edge.
        let name = format!("k{n}-{}", "x".repeat(n % 97));
        if client.post::<_, api::Key>("/keys", &api::CreateKey { name }).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "the disk never filled: the test proves nothing");
    let full = common::audit_lines(&audit);
    std::fs::remove_file(&filler).unwrap();
    let _: api::KeyList = client.get("/keys").unwrap();
    let after = common::audit_lines(&audit);
    assert_eq!(after.len(), full.len() + 1, "auditing resumes once there is room");
    drop(d);
}

#[test]
fn a_rotated_or_deleted_audit_file_is_replaced_not_written_into_the_void() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let audit = tmp.path().join("audit.jsonl");
    let mut client = d.client();
    let _: api::KeyList = client.get("/keys").unwrap();
    // logrotate: mv, then SIGHUP.
    let rotated = tmp.path().join("audit.jsonl.1");
    std::fs::rename(&audit, &rotated).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(d.wait_notification("READY=1", std::time::Duration::from_secs(10)));
    let _: api::Health = client.get("/health").unwrap();
    let _: api::KeyList = client.get("/keys").unwrap();
    let fresh = common::audit_lines(&audit);
    assert!(fresh.iter().any(|l| l["operation"] == "keys.list"), "{fresh:?}");
    let old = common::audit_lines(&rotated);
    assert!(!old.is_empty());
    // Deleted without a signal: noticed at the next line.
    std::fs::remove_file(&audit).unwrap();
    let _: api::KeyList = client.get("/keys").unwrap();
    let recreated = common::audit_lines(&audit);
    assert_eq!(recreated.len(), 1, "{recreated:?}");
    assert_eq!(recreated[0]["operation"], "keys.list");
}

#[test]
fn a_huge_refused_key_name_makes_a_small_audit_line() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let name = "n".repeat(60_000);
    let err = d.client().post::<_, api::Key>("/keys", &api::CreateKey { name }).unwrap_err();
    assert!(!err.to_string().is_empty());
    let text = std::fs::read_to_string(tmp.path().join("audit.jsonl")).unwrap();
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(longest < 2048, "an audit line of {longest} bytes");
    assert!(text.contains("(60000 bytes)"), "the cut says how long the text was: {text}");
}

/// A ttl of 2^64-1 once overflowed into an expired challenge that was answered 200.
#[test]
fn lifetimes_out_of_range_are_refused() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut client = d.client();
    common::init_authority(&mut client, "acme");
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    for (path, body) in [
        ("/v1/authority/challenges", format!(r#"{{"ttl":{}}}"#, u64::MAX)),
        ("/v1/authority/challenges", r#"{"ttl":0}"#.to_owned()),
        ("/v1/authority/challenges", r#"{"ttl":86401}"#.to_owned()),
        ("/v1/authority/status-lists", format!(r#"{{"valid_for":{}}}"#, u64::MAX)),
        ("/v1/authority/status-lists", r#"{"valid_for":0}"#.to_owned()),
        // A list verifiers should refresh after its end, or at once.
        ("/v1/authority/status-lists", r#"{"valid_for":600,"ttl":601}"#.to_owned()),
        ("/v1/authority/status-lists", r#"{"valid_for":600,"ttl":0}"#.to_owned()),
    ] {
        let (status, answer) = common::raw_request(&mut stream, "POST", path, Some(&body));
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer.contains("seconds"), "{answer}");
    }
    let (status, answer) =
        common::raw_request(&mut stream, "POST", "/v1/authority/challenges", Some(r#"{"ttl":60}"#));
    assert_eq!(status, 200, "{answer}");
}
