//! warrantd as a process: its socket, its limits, signals, restarts, crashes, socket
//! activation and other users, each against the real binary on a temporary socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{base_config, raw_request, sign_request, AUDIENCE, TARGET};
use nix::sys::signal::Signal;
use warrant_api as api;
use warrant_client::Client;
use warrant_client::Error;
use warrant_envelope::verify::{Expected, HttpRequest, Verifier};

/// An authority, a device key `laptop` and a grant for it; returns the grant and a verifier
/// that trusts the authority and holds its first status list.
fn enrolled(client: &mut Client) -> (Vec<u8>, Verifier) {
    common::init_authority(client, "acme");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    let grant = common::grant_for(client, "laptop", "alice", true);
    (grant, verifier(client))
}

fn verifier(client: &mut Client) -> Verifier {
    let verifier = verifier_trusting(client);
    let list: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None }).unwrap();
    verifier.install_status_list(&list.list).unwrap();
    verifier
}

/// A verifier trusting the daemon's authority, holding no status list.
fn verifier_trusting(client: &mut Client) -> Verifier {
    let trust: serde_json::Value = client.get("/authority/trust").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.json"), trust.to_string()).unwrap();
    let trusted =
        warrant_api::trust::TrustFile::parse(&std::fs::read(dir.path().join("t.json")).unwrap()).unwrap();
    Verifier::builder(AUDIENCE).trust(trusted).allow_software_evidence(true).build().unwrap()
}

fn sign(client: &mut Client, grant: &[u8]) -> Result<api::SignResponse, Error> {
    client.post("/sign", &sign_request(grant, AUDIENCE))
}

fn accepted(verifier: &Verifier, warrant: &[u8]) {
    let request = HttpRequest { method: "POST", target: TARGET, body: b"{}" };
    verifier.verify(warrant, &Expected { action: "deploy", resource: "prod/api" }, &request, None).unwrap();
}

fn daemon_status(e: &Error) -> (u16, String) {
    match e {
        Error::Daemon { status, code, .. } => (*status, code.clone()),
        other => panic!("not a daemon error: {other}"),
    }
}

#[test]
fn a_warrant_signed_through_the_socket_verifies_offline_and_is_audited() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut client = d.client();
    let (grant, verifier) = enrolled(&mut client);
    let signed = sign(&mut client, &grant).unwrap();
    accepted(&verifier, &signed.warrant);
    let refused =
        client.post::<_, api::SignResponse>("/sign", &sign_request(&grant, "https://other.example"));
    assert_eq!(daemon_status(&refused.unwrap_err()), (403, "forbidden".into()));

    let audit = d.audit();
    let line = audit.iter().find(|l| l["operation"] == "sign" && l["decision"] == "allow").unwrap();
    assert_eq!(line["warrant_id"], signed.warrant_id.as_str());
    assert_eq!(line["key"], "laptop");
    assert_eq!(line["audience"], AUDIENCE);
    assert_eq!(line["rule"], "owner");
    assert_eq!(line["uid"], nix::unistd::getuid().as_raw());
    assert_eq!(line["pid"], std::process::id());
    assert!(line["exe"].as_str().is_some() && line["time"].as_str().unwrap().ends_with('Z'));
    let deny = audit.iter().find(|l| l["operation"] == "sign" && l["decision"] == "deny").unwrap();
    assert_eq!(deny["rule"], "default-deny");
    assert_eq!(deny["audience"], "https://other.example");
    for op in ["authority.init", "keys.create", "enroll", "authority.grant", "authority.publish"] {
        assert!(audit.iter().any(|l| l["operation"] == op && l["decision"] == "allow"), "{op} not audited");
    }
}

#[test]
fn curl_speaks_to_the_socket() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(&d.socket)
            .arg(format!("http://warrantd/v1{path}"))
            .output()
            .expect("curl (scripts/test installs it)");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(curl("/health")["status"], "ok");
    let version = curl("/version");
    assert_eq!(version["api"], "v1");
    assert!(version["backends"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["name"] == "software" && b["active"] == true));
    assert_eq!(curl("/nope")["error"], "no_such_endpoint");
    let out = Command::new("curl")
        .args(["-sS", "-X", "DELETE", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://warrantd/v1/health")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "no_such_endpoint");
}

#[test]
fn socket_and_directory_are_private() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let socket = std::fs::metadata(&d.socket).unwrap();
    let dir = std::fs::metadata(d.socket.parent().unwrap()).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o600);
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    let state = std::fs::metadata(tmp.path().join("state")).unwrap();
    assert_eq!(state.permissions().mode() & 0o777, 0o700);
    drop(d);

    // With a socket group: 0750 and 0660, owned by that group.
    let group = nix::unistd::getgid().as_raw();
    let name = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(group)).unwrap().unwrap().name;
    let config =
        base_config(tmp.path()).replacen("state_dir", &format!("socket_group = \"{name}\"\nstate_dir"), 1);
    let d = common::start(tmp.path(), &config);
    let socket = std::fs::metadata(&d.socket).unwrap();
    let dir = std::fs::metadata(d.socket.parent().unwrap()).unwrap();
    assert_eq!((socket.permissions().mode() & 0o777, socket.gid()), (0o660, group));
    assert_eq!((dir.permissions().mode() & 0o777, dir.gid()), (0o750, group));
}

/// Creates (once) a user `warrant-test` in a group of the same name; `None` unless root.
#[test]
fn another_user_is_refused_by_the_socket_or_by_the_rules() {
    let Some((_, user)) = common::test_user() else { return };
    let tmp = common::workdir();
    // The test user must reach files under the work directory, and run the CLI: a checkout
    // in a 0700 home directory is out of its reach, so the binary is copied here.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cli = common::reachable_copy(tmp.path(), common::warrant_bin().to_str().unwrap());
    let run_as = |socket: &Path| {
        Command::new("runuser")
            .args(["-u", &user, "--"])
            .arg(&cli)
            .args(["--json", "--socket"])
            .arg(socket)
            .args(["keys", "list"])
            .output()
            .unwrap()
    };
    // Default modes: the other user cannot even connect.
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let out = run_as(&d.socket);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "unreachable");
    assert!(v["message"].as_str().unwrap().contains("ermission denied"), "{v}");
    drop(d);

    // The socket shared with the user's group: it connects, and the rules refuse it.
    let config =
        base_config(tmp.path()).replacen("state_dir", &format!("socket_group = \"{user}\"\nstate_dir"), 1);
    let d = common::start(tmp.path(), &config);
    let out = run_as(&d.socket);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "forbidden");
    assert!(v["message"].as_str().unwrap().contains("default-deny"), "{v}");
    // ... while this user is still served.
    let _: api::KeyList = d.client().get("/keys").unwrap();
}

#[test]
fn two_hundred_fifty_six_concurrent_clients_are_all_served() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let (grant, verifier) = enrolled(&mut d.client());
    let socket = d.socket.clone();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(256));
    let threads: Vec<_> = (0..256)
        .map(|_| {
            let (socket, grant, barrier) = (socket.clone(), grant.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut client = Client::new(&socket).unwrap();
                let _: api::Health = client.get("/health").unwrap();
                barrier.wait();
                sign(&mut client, &grant).unwrap().warrant
            })
        })
        .collect();
    let warrants: Vec<Vec<u8>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for warrant in &warrants {
        accepted(&verifier, warrant);
    }
}

fn limited_config(dir: &Path, limits: &str) -> String {
    base_config(dir).replacen("[audit]", &format!("[limits]\n{limits}\n\n[audit]"), 1)
}

#[test]
fn an_oversized_body_is_refused_and_the_daemon_stays_up() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    let (status, body) = raw_request(&mut stream, "POST", "/v1/keys", Some(&big));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("65536"), "{body}");
    // Without a declared length (chunked), the limit still holds.
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    write!(stream, "POST /v1/keys HTTP/1.1\r\nhost: w\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").unwrap();
    for _ in 0..80 {
        write!(stream, "400\r\n{}\r\n", "x".repeat(1024)).unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    assert_eq!(common::read_response(&mut stream).0, 413);
    let _: api::Health = d.client().get("/health").unwrap();
    assert!(d.audit().iter().any(|l| l["operation"] == "request" && l["decision"] == "deny"));
}

/// Reads from `stream` until it closes; returns what came and how long it took.
fn drain(stream: &mut UnixStream) -> (String, Duration) {
    let start = Instant::now();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[test]
fn slow_clients_are_cut_off_while_others_are_served() {
    let tmp = common::workdir();
    let d = common::start(
        tmp.path(),
        &limited_config(tmp.path(), "header_timeout_ms = 1000\nrequest_timeout_ms = 1500"),
    );
    let (grant, verifier) = enrolled(&mut d.client());

    // Headers at one byte a second.
    let socket = d.socket.clone();
    let slow_headers = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(&socket).unwrap();
        let start = Instant::now();
        for byte in b"POST /v1/sign HTTP/1.1\r\nhost: w\r\n".iter() {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            if start.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        start.elapsed()
    });
    // Headers at once, then the body at one byte a second.
    let mut slow_body = UnixStream::connect(&d.socket).unwrap();
    write!(
        slow_body,
        "POST /v1/sign HTTP/1.1\r\nhost: w\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    )
    .unwrap();
    let dribble = std::thread::spawn(move || {
        let mut stream = slow_body;
        let mut clone = stream.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for _ in 0..10 {
                if clone.write_all(b" ").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let (answer, _) = drain(&mut stream);
        let _ = writer.join();
        answer
    });

    // Meanwhile, others are served.
    let mut client = d.client();
    for _ in 0..5 {
        accepted(&verifier, &sign(&mut client, &grant).unwrap().warrant);
    }

    let took = slow_headers.join().unwrap();
    assert!(took < Duration::from_secs(5), "the slow-header client was not cut off ({took:?})");
    let answer = dribble.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "slow body answered {answer:?}");
    assert!(answer.contains("request_timeout"), "{answer}");
    let _: api::Health = d.client().get("/health").unwrap();
}

#[test]
fn connections_beyond_the_limit_get_503_and_the_daemon_stays_up() {
    let tmp = common::workdir();
    let d = common::start(
        tmp.path(),
        &limited_config(tmp.path(), "max_connections = 4\nmax_connections_per_uid = 4"),
    );
    let mut held: Vec<UnixStream> = (0..4).map(|_| UnixStream::connect(&d.socket).unwrap()).collect();
    for stream in &mut held {
        assert_eq!(raw_request(stream, "GET", "/v1/health", None).0, 200);
    }
    let mut extra = UnixStream::connect(&d.socket).unwrap();
    let (answer, _) = drain(&mut extra);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    drop(held);
    // Slots come back once the held connections close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if d.client().get::<api::Health>("/health").is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not released");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_the_rules_without_dropping_connections() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let (grant, _) = enrolled(&mut d.client());
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    let request = serde_json::to_string(&sign_request(&grant, "https://new.example")).unwrap();
    let (status, body) = raw_request(&mut stream, "POST", "/v1/sign", Some(&request));
    assert_eq!(status, 403, "{body}");

    // A broken file is refused; the running rules stay.
    std::fs::write(&d.config, "this is = = not toml").unwrap();
    d.signal(Signal::SIGHUP);
    assert!(d.wait_notification("READY=1", Duration::from_secs(10)));
    assert!(d.stderr().contains("reload refused"), "{}", d.stderr());
    assert_eq!(raw_request(&mut stream, "GET", "/v1/health", None).0, 200);

    let allowed = base_config(tmp.path()).replace(
        &format!("audiences = [\"{AUDIENCE}\"]"),
        &format!("audiences = [\"{AUDIENCE}\", \"https://new.example\"]"),
    );
    std::fs::write(&d.config, allowed).unwrap();
    d.signal(Signal::SIGHUP);
    assert!(d.wait_notification("RELOADING=1", Duration::from_secs(10)));
    assert!(d.wait_notification("READY=1", Duration::from_secs(10)));
    // The same connection, now allowed.
    let (status, body) = raw_request(&mut stream, "POST", "/v1/sign", Some(&request));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let body = r#"{"name": "late-key"}"#;
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    write!(
        stream,
        "POST /v1/keys HTTP/1.1\r\nhost: w\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body.as_bytes()[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_notification("STOPPING=1", Duration::from_secs(10)));
    // New connections are no longer accepted ...
    assert!(UnixStream::connect(&d.socket).is_err(), "the socket should be gone");
    // ... but the request in flight completes.
    stream.write_all(&body.as_bytes()[5..]).unwrap();
    let (status, answer) = common::read_response(&mut stream);
    assert_eq!(status, 200, "{answer}");
    drop(stream);
    let mut d = d;
    assert!(d.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn a_restart_keeps_keys_and_authority_state() {
    let tmp = common::workdir();
    let config = base_config(tmp.path());
    let d = common::start(tmp.path(), &config);
    let (grant, _) = enrolled(&mut d.client());
    assert!(d.stop().success());
    let d = common::start(tmp.path(), &config);
    let mut client = d.client();
    let keys: api::KeyList = client.get("/keys").unwrap();
    assert!(keys.keys.iter().any(|k| k.name == "laptop" && k.purpose == "device"));
    let settings: api::AuthoritySettings = client.get("/authority").unwrap();
    assert_eq!((settings.grants_issued, settings.status_sequence), (1, 1));
    let verifier = verifier(&mut client);
    accepted(&verifier, &sign(&mut client, &grant).unwrap().warrant);
}

#[test]
fn kill_9_during_status_publishing_leaves_a_consistent_chain() {
    let tmp = common::workdir();
    let config = base_config(tmp.path());
    let d = common::start(tmp.path(), &config);
    let mut client = d.client();
    let (_, verifier) = enrolled(&mut client);
    let socket = d.socket.clone();
    let publisher = std::thread::spawn(move || {
        let mut client = Client::new(&socket).unwrap();
        let mut published = 0;
        while client
            .post::<_, api::StatusListResponse>(
                "/authority/status-lists",
                &api::PublishRequest { valid_for: 3600, ttl: None },
            )
            .is_ok()
        {
            published += 1;
        }
        published
    });
    std::thread::sleep(Duration::from_millis(700));
    d.signal(Signal::SIGKILL);
    let published = publisher.join().unwrap();
    assert!(published > 0, "nothing was published before the kill");
    drop(d);

    let d = common::start(tmp.path(), &config);
    let mut client = d.client();
    let conn = rusqlite::Connection::open(tmp.path().join("state/state.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    // The stored latest list is the one the state names, and the next one chains onto it.
    let settings: api::AuthoritySettings = client.get("/authority").unwrap();
    let latest: api::StatusListResponse = client.get("/authority/status-lists/latest").unwrap();
    assert_eq!(latest.sequence, settings.status_sequence);
    // Every answered publish committed; the one cut by the kill may or may not have.
    let answered = 1 + published as u64;
    assert!((answered..=answered + 1).contains(&latest.sequence), "{} after {answered}", latest.sequence);
    verifier.install_status_list(&latest.list).unwrap();
    let next: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None }).unwrap();
    assert_eq!(next.sequence, latest.sequence + 1);
    verifier.install_status_list(&next.list).unwrap();

    // Every list of the chain is kept and served by its sequence: a verifier that missed all of
    // them walks from the first to the newest.
    let walker = verifier_trusting(&mut client);
    for sequence in 1..=next.sequence {
        let list: api::StatusListResponse =
            client.get(&format!("/authority/status-lists/{sequence}")).unwrap();
        assert_eq!(list.sequence, sequence);
        assert_eq!(walker.install_status_list(&list.list).unwrap().sequence, sequence);
    }
    for (path, status) in [(format!("{}", next.sequence + 1), 404), ("0".into(), 404), ("first".into(), 400)]
    {
        let err =
            client.get::<api::StatusListResponse>(&format!("/authority/status-lists/{path}")).unwrap_err();
        assert!(
            matches!(&err, warrant_client::Error::Daemon { status: s, .. } if *s == status),
            "{path}: {err:?}"
        );
    }
}

#[test]
fn a_second_daemon_refuses_a_busy_state_directory_or_a_live_socket() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    // Same state directory, another socket.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let config = base_config(tmp.path()).replace("run/agent.sock", "other/agent.sock");
    let stderr = common::try_start(&other, &config).err().expect("the second daemon must refuse");
    assert!(stderr.contains("another warrantd is using the state directory"), "{stderr}");
    // Same socket, another state directory.
    let config = base_config(tmp.path()).replace("/state\"", "/other-state\"");
    let stderr = common::try_start(&other, &config).err().expect("the second daemon must refuse");
    assert!(stderr.contains("another warrantd is answering on"), "{stderr}");
    let _: api::Health = d.client().get("/health").unwrap();
}

#[test]
fn a_stale_socket_is_replaced() {
    let tmp = common::workdir();
    std::fs::create_dir_all(tmp.path().join("run")).unwrap();
    drop(std::os::unix::net::UnixListener::bind(tmp.path().join("run/agent.sock")).unwrap());
    assert!(tmp.path().join("run/agent.sock").exists());
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let _: api::Health = d.client().get("/health").unwrap();
    assert!(d.stderr().contains("replacing the stale socket"), "{}", d.stderr());
}

#[test]
fn socket_activation_through_systemd_socket_activate() {
    let tmp = common::workdir();
    let config_text = base_config(tmp.path());
    let config = tmp.path().join("agent.toml");
    std::fs::write(&config, &config_text).unwrap();
    let socket = tmp.path().join("run/agent.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let mut command = Command::new("systemd-socket-activate");
    command.arg("-l").arg(&socket).arg(env!("CARGO_BIN_EXE_warrantd"));
    // systemd-socket-activate listens first and starts warrantd on the first connection.
    let mut child =
        command.arg("--config").arg(&config).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "systemd-socket-activate did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = Client::new(&socket).unwrap();
    let (grant, verifier) = enrolled(&mut client);
    accepted(&verifier, &sign(&mut client, &grant).unwrap().warrant);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("listening on the socket systemd passed"), "{stderr}");
    // warrantd leaves a socket it did not create in place.
    assert!(socket.exists());
}

#[test]
fn check_config_reports_file_line_and_key() {
    let tmp = common::workdir();
    let good = tmp.path().join("good.toml");
    std::fs::write(&good, base_config(tmp.path())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warrantd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, base_config(tmp.path()).replace("\"enroll\"", "\"enrol\"")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warrantd"))
        .arg("--check-config")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:13: key `rules[0].operations`", bad.display())), "{stderr}");
    assert!(stderr.contains("unknown operation \"enrol\""), "{stderr}");
}

#[test]
fn a_rate_limit_answers_429_naming_the_rule() {
    let tmp = common::workdir();
    let config = base_config(tmp.path())
        .replace("audiences = [", "rate = { requests = 2, per_seconds = 3600 }\naudiences = [");
    let d = common::start(tmp.path(), &config);
    let mut client = d.client();
    let (grant, _) = enrolled(&mut client);
    // enrolled() used keys.create and enroll under rule "owner": its two requests are spent.
    let e = sign(&mut client, &grant).unwrap_err();
    assert_eq!(daemon_status(&e), (429, "rate_limited".into()));
    assert!(e.to_string().contains("\"owner\""), "{e}");
    // Authority operations go by the admin rule, which has no limit.
    let _: api::AuthoritySettings = client.get("/authority").unwrap();
}

#[test]
fn sealed_keys_need_the_passphrase_and_it_never_reaches_the_logs() {
    let tmp = common::workdir();
    let secret = "correct horse battery staple";
    std::fs::write(tmp.path().join("pass"), format!("{secret}\n")).unwrap();
    let sealed = base_config(tmp.path()).replacen(
        "[audit]",
        &format!("[keystore]\npassphrase_file = \"{}\"\n\n[audit]", tmp.path().join("pass").display()),
        1,
    );
    // A passphrase file others can read is refused, like a PIN file.
    std::fs::set_permissions(tmp.path().join("pass"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = common::try_start(tmp.path(), &sealed).err().expect("a 0644 passphrase file is refused");
    assert!(refused.contains("readable by its owner only"), "{refused}");
    assert!(!refused.contains(secret), "the passphrase leaked");
    std::fs::set_permissions(tmp.path().join("pass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = common::start(tmp.path(), &sealed);
    let (grant, _) = enrolled(&mut d.client());
    assert!(d.stop().success());

    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let e = sign(&mut d.client(), &grant).unwrap_err();
    assert_eq!(daemon_status(&e).0, 500);
    assert!(e.to_string().contains("passphrase"), "{e}");
    drop(d);

    let d = common::start(tmp.path(), &sealed);
    sign(&mut d.client(), &grant).unwrap();
    let everything = [
        std::fs::read_to_string(tmp.path().join("audit.jsonl")).unwrap(),
        d.stderr(),
        std::fs::read_dir(tmp.path().join("state/keys"))
            .unwrap()
            .map(|f| String::from_utf8_lossy(&std::fs::read(f.unwrap().path()).unwrap()).into_owned())
            .collect(),
    ];
    for text in everything {
        assert!(!text.contains("correct horse"), "the passphrase leaked");
    }
}

#[test]
fn openapi_document_lists_exactly_the_routes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut routed: Vec<(String, String)> =
        warrant_agent::daemon::route_table().into_iter().map(|(m, p)| (m.to_owned(), p)).collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed, "docs/openapi.json and the router disagree");
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &limited_config(tmp.path(), "header_timeout_ms = 1000"));
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    assert_eq!(raw_request(&mut stream, "GET", "/v1/health", None).0, 200);
    // No next request: the connection must not hold a slot for ever.
    let (rest, took) = drain(&mut stream);
    assert!(rest.is_empty(), "{rest}");
    assert!(took < Duration::from_secs(10), "idle connection kept for {took:?}");
}

#[test]
fn malformed_requests_are_refused_with_reasons() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut stream = UnixStream::connect(&d.socket).unwrap();
    let (status, body) = raw_request(&mut stream, "POST", "/v1/keys", Some(r#"{"name": "a", "extra": 1}"#));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown field"), "{body}");
    let (status, body) = raw_request(&mut stream, "POST", "/v1/keys", Some("{not json"));
    assert_eq!((status, body.contains("bad_json")), (400, true), "{body}");
    write!(
        stream,
        "POST /v1/keys HTTP/1.1\r\nhost: w\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    assert_eq!(common::read_response(&mut stream).0, 415);

    let mut client = d.client();
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    let key: api::Key = client.get("/keys/laptop").unwrap();
    assert_eq!((key.purpose.as_str(), key.backend.as_str()), ("device", "software"));
    let evidence: api::EvidenceResponse =
        client.post("/keys/laptop/evidence", &api::EvidenceRequest { nonce: "00".repeat(32) }).unwrap();
    assert_eq!(evidence.kind, "software");
    let e = client.post::<_, api::EvidenceResponse>(
        "/keys/laptop/evidence",
        &api::EvidenceRequest { nonce: "00".into() },
    );
    assert_eq!(daemon_status(&e.unwrap_err()), (400, "usage".into()));
    let e = client.get::<api::Key>("/keys/nope");
    assert_eq!(daemon_status(&e.unwrap_err()), (404, "not_found".into()));
}

#[test]
fn the_api_refuses_a_grant_for_another_principal_than_the_challenges() {
    let tmp = common::workdir();
    let d = common::start(tmp.path(), &base_config(tmp.path()));
    let mut client = d.client();
    common::init_authority(&mut client, "acme");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    let challenge = api::ChallengeRequest { ttl: 60, principal: Some("alice".into()), tpm_identity: None };
    let challenge: api::ChallengeResponse = client.post("/authority/challenges", &challenge).unwrap();
    assert_eq!(challenge.principal.as_deref(), Some("alice"));
    let enroll = api::EnrollRequest {
        key: "laptop".into(),
        principal: "mallory".into(),
        challenge: challenge.challenge,
        tpm_credential: None,
    };
    let enrollment: api::EnrollResponse = client.post("/enroll", &enroll).unwrap();
    let grant = common::grant_request(enrollment.enrollment);
    let e = client.post::<_, api::GrantResponse>("/authority/grants", &grant).unwrap_err();
    assert_eq!(daemon_status(&e), (422, "enrollment_principal_mismatch".into()));
    assert!(e.to_string().contains("\"mallory\"") && e.to_string().contains("\"alice\""), "{e}");
    // The refusal is audited with its reason.
    let refused = d.audit().into_iter().rev().find(|l| l["operation"] == "authority.grant").unwrap();
    assert!(refused["reason"].as_str().unwrap_or_default().contains("mallory"), "{refused}");
}

/// Lists chain by their signed content (`status_list_digest`), the digest verifiers use. A
/// database written before that holds the SHA-256 of the last list's bytes as
/// `last_status_digest`; the next list must still chain onto the published one.
#[test]
fn status_lists_chain_by_signed_content_even_from_an_older_database() {
    let tmp = common::workdir();
    let config = base_config(tmp.path());
    let d = common::start(tmp.path(), &config);
    let (_, verifier) = enrolled(&mut d.client());
    let first: api::StatusListResponse = d.client().get("/authority/status-lists/latest").unwrap();
    assert!(d.stop().success());
    let db = tmp.path().join("state/state.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let old_style = warrant_envelope::device::sha256(&first.list);
    conn.execute("UPDATE authority SET last_status_digest = ?1", [old_style.as_slice()]).unwrap();
    drop(conn);

    let d = common::start(tmp.path(), &config);
    let next: api::StatusListResponse = d
        .client()
        .post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None })
        .unwrap();
    assert_eq!(next.sequence, first.sequence + 1);
    verifier.install_status_list(&next.list).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: Vec<u8> =
        conn.query_row("SELECT last_status_digest FROM authority", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, warrant_envelope::issue::status_list_digest(&next.list).unwrap());
}
