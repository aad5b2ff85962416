//! The `warrant` binary driven as a user would, against a real warrantd: the README's flow,
//! exit codes, and the authority's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Daemon, AUDIENCE, POLICY, TARGET};

struct Env {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    daemon: Daemon,
}

impl Env {
    fn new() -> Self {
        let tmp = common::workdir();
        let dir = tmp.path().to_owned();
        std::fs::write(dir.join("policy.cedar"), POLICY).unwrap();
        std::fs::write(dir.join("body.json"), br#"{"version":"1.4.2"}"#).unwrap();
        std::fs::write(dir.join("other.json"), br#"{"version":"6.6.6"}"#).unwrap();
        let daemon = common::start(&dir, &common::base_config(&dir));
        Self { _tmp: tmp, dir, daemon }
    }

    fn p(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(common::warrant_bin())
            .args(args)
            .current_dir(&self.dir)
            .env("WARRANT_SOCKET", &self.daemon.socket)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn enroll(&self, principal: &str, challenge: &str, out: &str) {
        let out = self.p(out);
        self.ok(&[
            "enroll",
            "--key",
            "laptop",
            "--principal",
            principal,
            "--challenge",
            challenge,
            "--out",
            &out,
        ]);
    }

    fn grant(&self, enrollment: &str, policy: &str, extra: &[&str]) -> Output {
        let (enrollment, policy) = (self.p(enrollment), self.p(policy));
        let mut args = vec!["authority", "grant", "--enrollment", &enrollment, "--policy", &policy];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Authority, device key, enrollment and grant; leaves files in the dir.
    fn enrolled(&self) {
        self.ok(&["authority", "init", "--issuer", "acme", "--status-uri", "https://a.example/status/1"]);
        self.ok(&["keys", "create", "laptop"]);
        let challenge = self.ok(&["authority", "challenge", "--principal", "alice"]);
        self.enroll("alice", challenge.trim(), "enroll.cbor");
        let grant = self.p("grant.cbor");
        let out = self.grant(
            "enroll.cbor",
            "policy.cedar",
            &["--group", "deployers", "--allow-software", "--out", &grant],
        );
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        self.ok(&["authority", "trust", "--out", &self.p("trust.json")]);
        self.ok(&["authority", "publish-status", "--out", &self.p("status1.cbor")]);
    }

    fn sign(&self, action: &str, out: &str) -> Output {
        self.sign_as("laptop", AUDIENCE, action, out)
    }

    fn sign_as(&self, key: &str, audience: &str, action: &str, out: &str) -> Output {
        let (grant, body, out) = (self.p("grant.cbor"), self.p("body.json"), self.p(out));
        self.run(&[
            "--json",
            "sign",
            "--key",
            key,
            "--grant",
            &grant,
            "--audience",
            audience,
            "--action",
            action,
            "--resource",
            "prod/api",
            "--method",
            "POST",
            "--target",
            TARGET,
            "--body",
            &body,
            "--claim",
            "ci_job=42",
            "--out",
            &out,
        ])
    }

    fn signed(&self, action: &str, out: &str) {
        let o = self.sign(action, out);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// `warrant --json verify` of `warrant` for the test request with `body`, the status
    /// lists `statuses` (oldest first) and `extra` arguments.
    fn verify_with(&self, warrant: &str, body: &str, statuses: &[&str], extra: &[&str]) -> Output {
        let mut args: Vec<String> = ["--json", "verify", &self.p(warrant), "--trust", &self.p("trust.json")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for status in statuses {
            args.extend(["--status".to_string(), self.p(status)]);
        }
        args.extend(["--audience", AUDIENCE, "--method", "POST", "--target", TARGET].map(String::from));
        args.extend(["--body".to_string(), self.p(body)]);
        // The operation the tests' warrants are signed for, unless a test states its own.
        if !extra.contains(&"--action") && !extra.contains(&"--any-operation") {
            args.extend(["--action", "deploy", "--resource", "prod/api"].map(String::from));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)
    }

    fn verify(&self, warrant: &str, body: &str, status: &str) -> Output {
        self.verify_with(warrant, body, &[status], &["--allow-software"])
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn the_flow_through_the_daemon_accepts_then_rejects_with_reasons() {
    let e = Env::new();
    e.enrolled();
    e.signed("deploy", "w1.cbor");

    let out = e.verify("w1.cbor", "body.json", "status1.cbor");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    assert_eq!(v["accepted"], true);
    assert_eq!(v["principal"], "alice");
    assert_eq!(v["device"]["backend"], "software");
    assert_eq!(v["context"]["ci_job"], 42);

    let out = e.verify("w1.cbor", "other.json", "status1.cbor");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "request_body_mismatch");

    // Without --allow-software, a software device is refused.
    let out = e.verify_with("w1.cbor", "body.json", &["status1.cbor"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "software_evidence_not_allowed");

    e.signed("destroy", "w2.cbor");
    let destroy = ["--allow-software", "--action", "destroy", "--resource", "prod/api"];
    let out = e.verify_with("w2.cbor", "body.json", &["status1.cbor"], &destroy);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "policy_denied");

    e.ok(&["authority", "revoke", "--grant", &e.p("grant.cbor")]);
    e.ok(&["authority", "publish-status", "--out", &e.p("status2.cbor")]);
    let out = e.verify("w1.cbor", "body.json", "status2.cbor");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "revoked");

    // The latest list can be fetched again, byte for byte.
    e.ok(&["authority", "status-list", "--out", &e.p("again.cbor")]);
    assert_eq!(std::fs::read(e.p("again.cbor")).unwrap(), std::fs::read(e.p("status2.cbor")).unwrap());

    // Status lists given oldest first advance; newest first is a rollback.
    let out = e.verify_with("w1.cbor", "body.json", &["status2.cbor", "status1.cbor"], &["--allow-software"]);
    assert_eq!(json(&out)["error"], "status_list_rollback");
}

#[test]
fn inspect_decodes_every_object() {
    let e = Env::new();
    e.enrolled();
    e.signed("deploy", "w.cbor");
    for (file, object) in [
        ("enroll.cbor", "enrollment request"),
        ("grant.cbor", "grant"),
        ("status1.cbor", "status list"),
        ("w.cbor", "warrant"),
    ] {
        let v: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "inspect", &e.p(file)])).unwrap();
        assert_eq!(v["object"], object);
        assert_eq!(v["verified"], false);
    }
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "inspect", &e.p("w.cbor")])).unwrap();
    assert_eq!(v["claims"]["grant"]["sub"], "alice");
    assert_eq!(v["claims"]["request"]["method"], "POST");
    let text = e.ok(&["inspect", &e.p("grant.cbor")]);
    assert!(text.contains("sub: alice") && text.contains("deployers"), "{text}");

    std::fs::write(e.dir.join("junk"), b"\x01\x02").unwrap();
    assert_eq!(e.run(&["inspect", &e.p("junk")]).status.code(), Some(1));
}

/// The `--json` error code and message of a refused command.
fn refusal(out: &Output) -> (String, String) {
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (text("error"), text("message"))
}

#[test]
fn a_grant_goes_only_to_the_principal_the_challenge_was_made_for() {
    let e = Env::new();
    e.ok(&["authority", "init", "--issuer", "acme", "--status-uri", "https://a.example/status/1"]);
    e.ok(&["keys", "create", "laptop"]);
    let challenge = e.ok(&["authority", "challenge", "--principal", "alice"]);
    let g = e.p("g.cbor");

    // The enrollee asks for someone else: refused, naming both, and nothing is written.
    e.enroll("mallory", challenge.trim(), "mallory.cbor");
    let out = e.grant("mallory.cbor", "policy.cedar", &["--json", "--allow-software", "--out", &g]);
    let (code, message) = refusal(&out);
    assert_eq!(code, "enrollment_principal_mismatch");
    assert!(message.contains("\"mallory\"") && message.contains("\"alice\""), "{message}");
    assert!(!Path::new(&g).exists());

    // The operator may repeat the decision on the grant, not change it.
    e.enroll("alice", challenge.trim(), "alice.cbor");
    let args = ["--json", "--principal", "bob", "--allow-software", "--out", &g];
    assert_eq!(refusal(&e.grant("alice.cbor", "policy.cedar", &args)).0, "grant_principal_conflict");

    // The refusals left the challenge open: the enrollment the authority intended is granted.
    let out =
        e.grant("alice.cbor", "policy.cedar", &["--principal", "alice", "--allow-software", "--out", &g]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(e.ok(&["inspect", &g]).contains("sub: alice"));
}

/// The device never signs a target a verifier would refuse: nothing is written, and the
/// refusal names the defect before any key or evidence work.
#[test]
fn a_target_a_service_would_rewrite_is_never_signed() {
    let e = Env::new();
    e.enrolled();
    let (grant, out) = (e.p("grant.cbor"), e.p("w.cbor"));
    for target in [
        "/v1/deploy",
        "https://api.example.com/v1/read/../deploy",
        "https://api.example.com/v1/./deploy",
        "https://api.example.com/v1%2Fdeploy",
        "https://api.example.com/v1/%2e%2e/deploy",
        "https://api.example.com/v1/deploy#x",
        "https://ci@api.example.com/v1/deploy",
    ] {
        let mut args = vec!["--json", "sign", "--key", "laptop", "--grant", &grant, "--audience", AUDIENCE];
        args.extend(["--action", "deploy", "--resource", "prod/api", "--method", "POST", "--target", target]);
        args.extend(["--out", &out]);
        let (code, message) = refusal(&e.run(&args));
        assert_eq!(code, "request_target_unsignable", "{target}: {message}");
        assert!(message.contains(target), "{message}");
        assert!(!Path::new(&out).exists());
    }
}

#[test]
fn a_challenge_without_a_principal_needs_the_principal_on_the_grant() {
    let e = Env::new();
    e.ok(&["authority", "init", "--issuer", "acme", "--status-uri", "https://a.example/status/1"]);
    e.ok(&["keys", "create", "laptop"]);
    let challenge = e.ok(&["authority", "challenge"]);
    let g = e.p("g.cbor");
    e.enroll("mallory", challenge.trim(), "mallory.cbor");

    // Neither names the principal: the enrollee's word is not enough.
    let out = e.grant("mallory.cbor", "policy.cedar", &["--json", "--allow-software", "--out", &g]);
    assert_eq!(refusal(&out).0, "principal_undecided");
    let args = ["--json", "--principal", "alice", "--allow-software", "--out", &g];
    let out = e.grant("mallory.cbor", "policy.cedar", &args);
    assert_eq!(refusal(&out).0, "enrollment_principal_mismatch");
    assert!(!Path::new(&g).exists());

    e.enroll("alice", challenge.trim(), "alice.cbor");
    let out =
        e.grant("alice.cbor", "policy.cedar", &["--principal", "alice", "--allow-software", "--out", &g]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_authority_refuses_software_keys_unless_told_and_challenges_are_single_use() {
    let e = Env::new();
    e.enrolled();
    let g2 = e.p("g2.cbor");
    // The challenge in enroll.cbor was consumed by the grant.
    let out = e.grant("enroll.cbor", "policy.cedar", &["--allow-software", "--out", &g2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("challenge"));

    let challenge = e.ok(&["authority", "challenge", "--principal", "bob"]);
    e.enroll("bob", challenge.trim(), "e2.cbor");
    let out = e.grant("e2.cbor", "policy.cedar", &["--out", &g2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("software key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A policy that does not parse is refused before anything is signed.
    std::fs::write(e.dir.join("bad.cedar"), "permit(").unwrap();
    let out = e.grant("e2.cbor", "bad.cedar", &["--allow-software", "--out", &g2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!Path::new(&g2).exists());
}

#[test]
fn key_rotation_keeps_old_grants_valid() {
    let e = Env::new();
    e.enrolled();
    e.ok(&["authority", "rotate-key"]);
    e.ok(&["authority", "trust", "--out", &e.p("trust.json")]);
    let trust: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.p("trust.json")).unwrap()).unwrap();
    assert_eq!(trust["keys"].as_array().unwrap().len(), 2);
    e.ok(&["authority", "publish-status", "--out", &e.p("status2.cbor")]);
    e.signed("deploy", "w.cbor");
    assert_eq!(e.verify("w.cbor", "body.json", "status2.cbor").status.code(), Some(0));
}

#[test]
fn keys_are_listed_and_issuance_keys_cannot_sign_warrants() {
    let e = Env::new();
    e.enrolled();
    let keys: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "keys", "list"])).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let issuance = keys.iter().find(|k| k["purpose"] == "issuance").unwrap();
    let issuance_name = issuance["name"].as_str().unwrap();
    let out = e.run(&["--json", "keys", "create", "laptop"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"], "conflict");
    // The admin rule lets this uid read the issuance key, but signing with it is refused.
    let out = e.sign_as(issuance_name, AUDIENCE, "deploy", "x.cbor");
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["message"].as_str().unwrap().contains("issuance key"), "{:?}", json(&out));
    // Issuance keys cannot be deleted; device keys can.
    let out = e.run(&["--json", "keys", "delete", issuance_name]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["message"].as_str().unwrap().contains("issuance key"), "{:?}", json(&out));
    e.ok(&["keys", "delete", "laptop"]);
    let keys: serde_json::Value = serde_json::from_str(&e.ok(&["--json", "keys", "list"])).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let out = e.run(&["--json", "keys", "delete", "laptop"]);
    assert_eq!((out.status.code(), json(&out)["error"].as_str()), (Some(2), Some("not_found")));
    assert_eq!(e.sign("deploy", "gone.cbor").status.code(), Some(2));
}

#[test]
fn refusals_by_rule_exit_1_and_name_the_rule() {
    let e = Env::new();
    e.enrolled();
    let out = e.sign_as("laptop", "https://elsewhere.example", "deploy", "x.cbor");
    assert_eq!(out.status.code(), Some(1));
    let message = json(&out)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("refused by rule \"default-deny\"") && message.contains("elsewhere"),
        "{message}"
    );
}

#[test]
fn verify_refuses_a_warrant_for_another_operation_and_needs_one_stated() {
    let e = Env::new();
    e.enrolled();
    e.signed("read", "read.cbor");
    let status = ["status1.cbor"];
    // A warrant for a harmless action, bound to the deploy request, presented where the
    // request means deploy: refused, whatever the policy allows.
    let out = e.verify_with("read.cbor", "body.json", &status, &["--allow-software"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["error"], "action_mismatch");
    let other = ["--allow-software", "--action", "read", "--resource", "staging/api"];
    let out = e.verify_with("read.cbor", "body.json", &status, &other);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "resource_mismatch");
    // Without an operation, verify is a usage error unless --any-operation says to only
    // inspect; then the warrant's own action is shown.
    let out = e.run(&[
        "verify",
        &e.p("read.cbor"),
        "--trust",
        &e.p("trust.json"),
        "--audience",
        AUDIENCE,
        "--method",
        "POST",
        "--target",
        TARGET,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--action"));
    e.signed("deploy", "deploy.cbor");
    let out = e.verify_with("deploy.cbor", "body.json", &status, &["--allow-software", "--any-operation"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["action"], "deploy");
}

#[test]
fn usage_io_and_unreachable_daemon_errors_exit_2() {
    let e = Env::new();
    assert_eq!(e.run(&["sign"]).status.code(), Some(2));
    assert_eq!(e.run(&["inspect", &e.p("missing.cbor")]).status.code(), Some(2));
    let out = e.run(&["--json", "keys", "create", "../escape"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(json(&out)["message"].as_str().unwrap().contains("escape"), "{:?}", json(&out));
    let out = e.run(&["--socket", &e.p("nowhere.sock"), "keys", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach warrantd"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_walks_the_flow() {
    let tmp = common::workdir();
    let out = Command::new(common::warrant_bin())
        .args(["--json", "demo"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.iter().filter(|s| s["as_expected"] == true).count() >= 7);
}
