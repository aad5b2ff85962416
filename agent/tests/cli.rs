//! The `warrant` binary driven as a user would: the README's offline flow, exit codes, and
//! the authority's refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICY: &str = r#"permit (principal in Warrant::Group::"deployers", action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api") when { context.request.method == "POST" };"#;

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        std::fs::write(dir.join("policy.cedar"), POLICY).unwrap();
        std::fs::write(dir.join("body.json"), br#"{"version":"1.4.2"}"#).unwrap();
        std::fs::write(dir.join("other.json"), br#"{"version":"6.6.6"}"#).unwrap();
        Self { _tmp: tmp, dir }
    }

    fn p(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_warrant"))
            .args(args)
            .current_dir(&self.dir)
            .env_remove("WARRANT_PASSPHRASE")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// `warrant enroll` of the device key `laptop` as `principal`.
    fn enroll(&self, principal: &str, challenge: &str, out: &str) {
        let (keys, out) = (self.p("keys"), self.p(out));
        self.ok(&[
            "enroll",
            "--store",
            &keys,
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

    /// `warrant authority grant` of `enrollment` under `policy`, into g2.cbor or `extra`'s --out.
    fn grant(&self, enrollment: &str, policy: &str, extra: &[&str]) -> Output {
        let (auth, enrollment, policy) = (self.p("auth"), self.p(enrollment), self.p(policy));
        let mut args =
            vec!["authority", "grant", "--dir", &auth, "--enrollment", &enrollment, "--policy", &policy];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Authority, device key, enrollment and grant; returns nothing, leaves files in the dir.
    fn enrolled(&self) {
        self.ok(&[
            "authority",
            "init",
            "--dir",
            &self.p("auth"),
            "--issuer",
            "acme",
            "--status-uri",
            "https://a.example/status/1",
        ]);
        self.ok(&["keys", "create", "--store", &self.p("keys"), "laptop"]);
        let challenge = self.ok(&["authority", "challenge", "--dir", &self.p("auth")]);
        self.enroll("alice", challenge.trim(), "enroll.cbor");
        let grant = self.p("grant.cbor");
        let out = self.grant(
            "enroll.cbor",
            "policy.cedar",
            &["--group", "deployers", "--allow-software", "--out", &grant],
        );
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        self.ok(&["authority", "trust", "--dir", &self.p("auth"), "--out", &self.p("trust.json")]);
        self.ok(&["authority", "publish-status", "--dir", &self.p("auth"), "--out", &self.p("status1.cbor")]);
    }

    fn sign(&self, action: &str, out: &str) {
        self.ok(&[
            "sign",
            "--store",
            &self.p("keys"),
            "--key",
            "laptop",
            "--grant",
            &self.p("grant.cbor"),
            "--audience",
            "https://api.example.com",
            "--action",
            action,
            "--resource",
            "prod/api",
            "--method",
            "POST",
            "--target",
            "https://api.example.com/v1/deploy",
            "--body",
            &self.p("body.json"),
            "--claim",
            "ci_job=42",
            "--out",
            &self.p(out),
        ]);
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
        args.extend(
            [
                "--audience",
                "https://api.example.com",
                "--method",
                "POST",
                "--target",
                "https://api.example.com/v1/deploy",
            ]
            .map(String::from),
        );
        args.extend(["--body".to_string(), self.p(body)]);
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
fn offline_flow_accepts_then_rejects_with_reasons() {
    let e = Env::new();
    e.enrolled();
    e.sign("deploy", "w1.cbor");

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
    assert!(json(&out)["message"].as_str().unwrap().contains("software"));

    e.sign("destroy", "w2.cbor");
    let out = e.verify("w2.cbor", "body.json", "status1.cbor");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "policy_denied");

    e.ok(&["authority", "revoke", "--dir", &e.p("auth"), "--grant", &e.p("grant.cbor")]);
    e.ok(&["authority", "publish-status", "--dir", &e.p("auth"), "--out", &e.p("status2.cbor")]);
    let out = e.verify("w1.cbor", "body.json", "status2.cbor");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"], "revoked");

    // Status lists given oldest first advance; newest first is a rollback.
    let out = e.verify_with("w1.cbor", "body.json", &["status2.cbor", "status1.cbor"], &["--allow-software"]);
    assert_eq!(json(&out)["error"], "status_list_rollback");
}

#[test]
fn inspect_decodes_every_object() {
    let e = Env::new();
    e.enrolled();
    e.sign("deploy", "w.cbor");
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

#[test]
fn the_authority_refuses_software_keys_unless_told_and_challenges_are_single_use() {
    let e = Env::new();
    e.enrolled();
    let g2 = e.p("g2.cbor");
    // The challenge in enroll.cbor was consumed by the grant.
    let out = e.grant("enroll.cbor", "policy.cedar", &["--allow-software", "--out", &g2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("challenge"));

    let challenge = e.ok(&["authority", "challenge", "--dir", &e.p("auth")]);
    e.enroll("bob", challenge.trim(), "e2.cbor");
    let out = e.grant("e2.cbor", "policy.cedar", &["--out", &g2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-software"));

    // A policy that does not parse is refused before anything is signed.
    std::fs::write(e.dir.join("bad.cedar"), "permit(").unwrap();
    let out = e.grant("e2.cbor", "bad.cedar", &["--allow-software", "--out", &g2]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!Path::new(&e.p("g2.cbor")).exists());
}

#[test]
fn key_rotation_keeps_old_grants_valid() {
    let e = Env::new();
    e.enrolled();
    e.ok(&["authority", "rotate-key", "--dir", &e.p("auth")]);
    e.ok(&["authority", "trust", "--dir", &e.p("auth"), "--out", &e.p("trust.json")]);
    let trust: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.p("trust.json")).unwrap()).unwrap();
    assert_eq!(trust["keys"].as_array().unwrap().len(), 2);
    e.ok(&["authority", "publish-status", "--dir", &e.p("auth"), "--out", &e.p("status2.cbor")]);
    e.sign("deploy", "w.cbor");
    assert_eq!(e.verify("w.cbor", "body.json", "status2.cbor").status.code(), Some(0));
}

#[test]
fn sealed_authority_keys_need_the_passphrase() {
    let e = Env::new();
    std::fs::write(e.dir.join("pass"), "correct horse battery staple\n").unwrap();
    e.ok(&[
        "authority",
        "init",
        "--dir",
        &e.p("auth"),
        "--issuer",
        "acme",
        "--status-uri",
        "u",
        "--passphrase-file",
        &e.p("pass"),
    ]);
    let out = e.run(&["authority", "publish-status", "--dir", &e.p("auth"), "--out", &e.p("s.cbor")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase"));
    e.ok(&[
        "authority",
        "publish-status",
        "--dir",
        &e.p("auth"),
        "--passphrase-file",
        &e.p("pass"),
        "--out",
        &e.p("s.cbor"),
    ]);
    let key = std::fs::read(e.dir.join("auth/keys/issuance-1.key")).unwrap();
    assert!(!String::from_utf8_lossy(&key).contains("correct horse"));
}

#[test]
fn usage_and_io_errors_exit_2() {
    let e = Env::new();
    assert_eq!(e.run(&["sign"]).status.code(), Some(2));
    assert_eq!(e.run(&["inspect", &e.p("missing.cbor")]).status.code(), Some(2));
    assert_eq!(e.run(&["authority", "challenge", "--dir", &e.p("nowhere")]).status.code(), Some(2));
    assert_eq!(e.run(&["keys", "create", "--store", &e.p("k"), "../escape"]).status.code(), Some(2));
}

#[test]
fn demo_walks_the_flow() {
    let e = Env::new();
    let out = e.run(&["--json", "demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.iter().filter(|s| s["as_expected"] == true).count() >= 6);
}
