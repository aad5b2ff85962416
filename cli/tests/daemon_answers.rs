//! `warrant` against a stand-in for warrantd that answers what the test says: what the CLI
//! does with answers it must not pass on, and with a daemon it cannot reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output};
use std::thread::JoinHandle;

/// Answers one HTTP request on `socket` with `200` and `body`.
fn answer_once(socket: &Path, body: String) -> JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).unwrap();
    })
}

fn warrant(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warrant")).arg("--socket").arg(socket).args(args).output().unwrap()
}

/// A trust file whose kid is not its key's thumbprint (the key is P-256's generator).
fn forged_trust_file() -> String {
    serde_json::json!({
        "issuer": "acme",
        "keys": [{
            "kid": "00".repeat(32),
            "x": "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
            "y": "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        }],
    })
    .to_string()
}

#[test]
fn authority_trust_refuses_an_invalid_trust_file_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("agent.sock");
    let out = tmp.path().join("trust.json");

    // No file before: none after.
    let server = answer_once(&socket, forged_trust_file());
    let result = warrant(&socket, &["--json", "authority", "trust", "--out", out.to_str().unwrap()]);
    server.join().unwrap();
    assert_eq!(result.status.code(), Some(2), "{}", String::from_utf8_lossy(&result.stderr));
    let error: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(error["error"], "unexpected_answer");
    assert!(error["message"].as_str().unwrap().contains("kid is not the key's thumbprint"), "{error}");
    assert!(!out.exists(), "an invalid trust file was written");

    // A trust file verifiers use already: left as it was.
    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&out, "the verifiers' current trust file").unwrap();
    let server = answer_once(&socket, r#"{"issuer": "acme", "keys": []}"#.into());
    let result = warrant(&socket, &["authority", "trust", "--out", out.to_str().unwrap()]);
    server.join().unwrap();
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("no keys"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the verifiers' current trust file");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "temporary files left: {leftovers:?}");
}

#[test]
fn an_unreachable_daemon_is_named_by_its_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("no-daemon-here.sock");
    let result = warrant(&socket, &["keys", "list"]);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains(&format!("cannot reach warrantd at {}", socket.display())), "{stderr}");

    let result = warrant(&socket, &["--json", "keys", "list"]);
    let error: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(error["error"], "unreachable");
}
