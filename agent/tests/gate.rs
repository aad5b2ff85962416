//! `warrant gate` end to end, real processes on loopback: a warrantd (software keys) signs
//! through `warrant sign --header`, curl sends, the gate verifies and forwards to an upstream
//! in Python (stdlib http.server) that echoes what it received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, AUDIENCE, POLICY};
use serde_json::Value;

const DEPLOY: &str = "https://api.example.com/v1/deploy/prod";
const BODY: &str = r#"{"version":"1.4.2"}"#;

const ROUTES: &str = r#"
[[route]]
method = "POST"
path = "/v1/deploy/{env}"
action = "deploy"
resource = "{env}/api"

[[route]]
method = "GET"
path = "/v1/docs/{doc}"
action = "read"
resource = "docs/{doc}"
"#;

/// Echoes each request as JSON: method, path, headers (in order, repeated ones too), body.
const UPSTREAM: &str = r#"
import http.server, json, sys
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        out = json.dumps({"method": self.command, "path": self.path,
                          "headers": [[k.lower(), v] for k, v in self.headers.items()], "body": body}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = answer
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A child process killed when the test ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// warrantd with an authority, a device key `laptop` enrolled as alice (group deployers) and
/// its grant under POLICY, the trust file and a first status list; the echo upstream.
struct Stack {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    daemon: Daemon,
    upstream: String,
    _upstream: Process,
}

/// A running gate and the audit lines it wrote.
struct Gate {
    url: String,
    /// The CA of an https gate's certificate.
    ca: Option<PathBuf>,
    audit: Arc<Mutex<Vec<String>>>,
    /// What it wrote on standard error (status list installs and refusals).
    log: Arc<Mutex<Vec<String>>>,
    /// The audit pipe, held open and never read (see `spawn_gate_reading`).
    _unread: Option<std::process::ChildStdout>,
    _process: Process,
}

/// What curl received.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The echoed request's values of header `name`.
    fn echoed(&self, name: &str) -> Vec<String> {
        let echo = self.json();
        echo["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Stack {
    fn new() -> Self {
        Self::with_status_uri("https://a.example/status/1")
    }

    /// A stack whose authority publishes its status list as `status_uri`.
    fn with_status_uri(status_uri: &str) -> Self {
        Self::with_authority("acme", status_uri)
    }

    /// A stack whose authority is `issuer`, publishing its status list as `status_uri`.
    fn with_authority(issuer: &str, status_uri: &str) -> Self {
        let tmp = common::workdir();
        let dir = tmp.path().to_owned();
        std::fs::write(dir.join("policy.cedar"), POLICY).unwrap();
        std::fs::write(dir.join("body.json"), BODY).unwrap();
        std::fs::write(dir.join("routes.toml"), ROUTES).unwrap();
        let daemon = common::start(&dir, &common::base_config(&dir));
        let stack_upstream = start_upstream(&dir);
        let stack = Self { dir, daemon, upstream: stack_upstream.1, _upstream: stack_upstream.0, _tmp: tmp };
        stack.ok(&["authority", "init", "--issuer", issuer, "--status-uri", status_uri]);
        stack.ok(&["keys", "create", "laptop"]);
        let challenge = stack.ok(&["authority", "challenge", "--principal", "alice"]);
        stack.ok(&[
            "enroll",
            "--key",
            "laptop",
            "--principal",
            "alice",
            "--challenge",
            challenge.trim(),
            "--out",
            "enroll.cbor",
        ]);
        stack.ok(&[
            "authority",
            "grant",
            "--enrollment",
            "enroll.cbor",
            "--policy",
            "policy.cedar",
            "--group",
            "deployers",
            "--allow-software",
            "--out",
            "grant.cbor",
        ]);
        stack.ok(&["authority", "trust", "--out", "trust.json"]);
        stack.ok(&["authority", "publish-status", "--out", "status.cbor"]);
        stack
    }

    fn ok(&self, args: &[&str]) -> String {
        common::warrant_ok(&self.dir, Some(&self.daemon.socket), args)
    }

    /// The `Authorization` value of a warrant for `method` `target` with `body_file`, as
    /// `action` on `resource`.
    fn authorization(
        &self,
        method: &str,
        target: &str,
        body_file: Option<&str>,
        action: &str,
        resource: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec!["sign", "--key", "laptop", "--grant", "grant.cbor", "--audience", AUDIENCE];
        args.extend([
            "--action",
            action,
            "--resource",
            resource,
            "--method",
            method,
            "--target",
            target,
            "--header",
        ]);
        if let Some(body) = body_file {
            args.extend(["--body", body]);
        }
        args.extend(extra);
        let line = self.ok(&args);
        line.trim()
            .strip_prefix("Authorization: ")
            .unwrap_or_else(|| panic!("not a header line: {line}"))
            .to_owned()
    }

    /// A warrant for POST DEPLOY with body.json, deploy on prod/api.
    fn deploy_authorization(&self) -> String {
        self.authorization("POST", DEPLOY, Some("body.json"), "deploy", "prod/api", &[])
    }

    fn gate(&self, extra: &[&str]) -> Gate {
        self.gate_to(&self.upstream, extra)
    }

    fn gate_to(&self, upstream: &str, extra: &[&str]) -> Gate {
        let mut args = vec!["--listen", "127.0.0.1:0", "--upstream", upstream, "--origin", AUDIENCE];
        args.extend(["--trust", "trust.json", "--status-file", "status.cbor", "--status-interval", "1"]);
        args.extend(["--routes", "routes.toml", "--allow-software"]);
        args.extend(extra);
        self.spawn_gate(&args)
    }

    /// Starts `warrant gate ARGS` and waits until it listens.
    fn spawn_gate(&self, args: &[&str]) -> Gate {
        self.spawn_gate_reading(args, true)
    }

    /// [`Self::spawn_gate`]; with `read_audit` false, nobody reads the audit lines (the pipe
    /// stays open and fills up).
    fn spawn_gate_reading(&self, args: &[&str], read_audit: bool) -> Gate {
        let mut child = Command::new(common::warrant_bin())
            .arg("gate")
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the gate exited before listening");
            if let Some(rest) = line.strip_prefix("warrant gate: listening on ") {
                let scheme = if rest.contains("(https)") { "https" } else { "http" };
                break format!("{scheme}://{}", rest.split(' ').next().unwrap());
            }
        };
        // Keep draining both streams: the audit lines, and the logs (so the gate never blocks).
        let log = Arc::new(Mutex::new(vec![line.clone()]));
        let logged = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                logged.lock().unwrap().push(line);
            }
        });
        let audit = Arc::new(Mutex::new(Vec::new()));
        let lines = audit.clone();
        let stdout = child.stdout.take().unwrap();
        let unread = if read_audit {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
            None
        } else {
            Some(stdout)
        };
        Gate { url: addr, ca: None, audit, log, _unread: unread, _process: Process(child) }
    }
}

fn start_upstream(dir: &Path) -> (Process, String) {
    std::fs::write(dir.join("upstream.py"), UPSTREAM).unwrap();
    let mut child = Command::new("python3")
        .arg(dir.join("upstream.py"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
    (Process(child), format!("http://127.0.0.1:{}", port.trim()))
}

/// curl `method` on `base` + `path` with `headers` and `body`.
fn curl(base: &str, method: &str, path: &str, headers: &[String], body: Option<&str>) -> Answer {
    curl_trusting(None, base, method, path, headers, body)
}

/// [`curl`], checking an https server's certificate against `ca` when given.
fn curl_trusting(
    ca: Option<&Path>,
    base: &str,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> Answer {
    let mut command = Command::new("curl");
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    command.args(["-sS", "-i", "--max-time", "20", "-H", "Expect:", "-X", method]);
    for h in headers {
        command.args(["-H", h]);
    }
    if let Some(body) = body {
        command.args(["--data-binary", body, "-H", "content-type: application/json"]);
    }
    let out = command.arg(format!("{base}{path}")).output().expect("curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer { status, headers: head.to_owned(), body: body.to_owned() }
}

impl Gate {
    /// curl `method` on the gate's `path` with `headers` and `body`.
    fn curl(&self, method: &str, path: &str, headers: &[String], body: Option<&str>) -> Answer {
        curl_trusting(self.ca.as_deref(), &self.url, method, path, headers, body)
    }

    /// The audit lines so far, parsed (waiting up to 10 s for at least `count`).
    fn audit(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.audit.lock().unwrap().clone();
            if lines.len() >= count || Instant::now() > deadline {
                return lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn auth(value: &str) -> String {
    format!("authorization: {value}")
}

#[test]
fn an_accepted_request_is_forwarded_with_the_verified_identity_and_a_replay_is_refused() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let warrant = stack.deploy_authorization();
    // The client tries to pass for someone else: its Warrant-* headers are dropped.
    let forged = [
        "warrant-principal: root",
        "Warrant-Groups: admins",
        "Warrant_Principal: root",
        "x-forwarded-for: 10.0.0.1",
        "forwarded: for=10.0.0.1",
        "x-real-ip: 10.0.0.1",
    ];
    let mut headers = vec![auth(&warrant), "x-request: 7".to_owned()];
    headers.extend(forged.map(str::to_owned));
    let answer = gate.curl("POST", "/v1/deploy/prod", &headers, Some(BODY));
    assert_eq!(answer.status, 200, "{answer:?}");
    let echo = answer.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/deploy/prod");
    assert_eq!(echo["body"], BODY);
    assert_eq!(answer.echoed("warrant-principal"), ["alice"]);
    assert_eq!(answer.echoed("warrant-groups"), ["deployers"]);
    assert_eq!(answer.echoed("warrant-action"), ["deploy"]);
    assert_eq!(answer.echoed("warrant-resource"), ["prod/api"]);
    assert_eq!(answer.echoed("warrant-assurance"), ["software"]);
    assert_eq!(answer.echoed("warrant-id")[0].len(), 32);
    assert!(answer.echoed("authorization").is_empty(), "{echo}");
    assert!(answer.echoed("warrant_principal").is_empty(), "{echo}");
    assert_eq!(answer.echoed("x-request"), ["7"]);
    assert_eq!(answer.echoed("x-forwarded-for"), ["127.0.0.1"], "the client's own is replaced");
    assert!(answer.echoed("forwarded").is_empty() && answer.echoed("x-real-ip").is_empty());

    let again = gate.curl("POST", "/v1/deploy/prod", &[auth(&warrant)], Some(BODY));
    assert_eq!(again.status, 401);
    assert!(again.header("www-authenticate").unwrap().starts_with("Warrant error=\"replayed\""), "{again:?}");
    assert_eq!(again.json()["code"], "replayed");

    let audit = gate.audit(2);
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["decision"], "forwarded");
    assert_eq!(audit[0]["principal"], "alice");
    assert_eq!(audit[0]["status"], 200);
    assert_eq!(audit[0]["warrant_id"], answer.echoed("warrant-id")[0].as_str());
    assert_eq!(audit[1]["decision"], "refused");
    assert_eq!(audit[1]["code"], "replayed");
}

#[test]
fn a_changed_body_or_no_warrant_is_a_401() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let warrant = stack.deploy_authorization();
    let changed = gate.curl("POST", "/v1/deploy/prod", &[auth(&warrant)], Some(r#"{"version":"6.6.6"}"#));
    assert_eq!(changed.status, 401);
    assert!(changed.header("www-authenticate").unwrap().starts_with("Warrant error=\"invalid_warrant\""));
    assert_eq!(changed.json()["code"], "request_body_mismatch");

    let none = gate.curl("POST", "/v1/deploy/prod", &[], Some(BODY));
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Warrant"));
    assert_eq!(none.json()["code"], "missing_warrant");
    let audit = gate.audit(2);
    assert!(audit.iter().all(|l| l["decision"] == "refused"), "{audit:?}");

    let small = stack.gate(&["--body-limit", "8"]);
    let over = small.curl("POST", "/v1/deploy/prod", &[auth(&warrant)], Some(BODY));
    assert_eq!(over.status, 413);
    assert_eq!(over.json()["code"], "body_too_large");
}

#[test]
fn a_warrant_for_another_operation_or_an_unrouted_request_is_refused() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    // Signed for `read` on the deploy request: the route says this request is `deploy`.
    let read = stack.authorization("POST", DEPLOY, Some("body.json"), "read", "prod/api", &[]);
    let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&read)], Some(BODY));
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.header("www-authenticate").unwrap().starts_with("Warrant error=\"insufficient_policy\""));
    assert_eq!(answer.json()["code"], "action_mismatch");

    let admin = "https://api.example.com/v1/admin";
    let warrant = stack.authorization("POST", admin, Some("body.json"), "POST", "/v1/admin", &[]);
    let answer = gate.curl("POST", "/v1/admin", &[auth(&warrant)], Some(BODY));
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["code"], "no_route");
}

#[test]
fn a_local_policy_that_denies_is_a_403() {
    let stack = Stack::new();
    std::fs::write(
        stack.dir.join("local.cedar"),
        "permit (principal, action, resource) when { context.claims has ticket };",
    )
    .unwrap();
    let gate = stack.gate(&["--local-policy", "local.cedar"]);
    let without = stack.deploy_authorization();
    let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&without)], Some(BODY));
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.header("www-authenticate").unwrap().starts_with("Warrant error=\"insufficient_policy\""));
    assert_eq!(answer.json()["code"], "policy_denied");
    let with = stack.authorization(
        "POST",
        DEPLOY,
        Some("body.json"),
        "deploy",
        "prod/api",
        &["--claim", "ticket=OPS-1"],
    );
    assert_eq!(gate.curl("POST", "/v1/deploy/prod", &[auth(&with)], Some(BODY)).status, 200);
}

#[test]
fn a_revocation_takes_effect_when_the_status_file_is_replaced_without_a_restart() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let before = stack.deploy_authorization();
    assert_eq!(gate.curl("POST", "/v1/deploy/prod", &[auth(&before)], Some(BODY)).status, 200);

    stack.ok(&["authority", "revoke", "--grant", "grant.cbor"]);
    // Published next to it, then renamed over it: the gate never reads half a file.
    stack.ok(&["authority", "publish-status", "--out", "status.new"]);
    std::fs::rename(stack.dir.join("status.new"), stack.dir.join("status.cbor")).unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let warrant = stack.deploy_authorization();
        let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&warrant)], Some(BODY));
        if answer.status != 200 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(answer.header("www-authenticate").unwrap().starts_with("Warrant error=\"revoked\""));
    assert_eq!(answer.json()["code"], "revoked");
}

#[test]
fn an_upstream_that_is_down_is_a_502_not_a_hang() {
    let stack = Stack::new();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gate = stack.gate_to(&upstream, &[]);
    let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.json()["code"], "upstream_unreachable");
    let audit = gate.audit(1);
    assert_eq!(audit[0]["decision"], "upstream_failed");
    assert_eq!(audit[0]["principal"], "alice");
}

#[test]
fn the_gate_refuses_to_start_without_a_usable_status_list_or_origin() {
    let stack = Stack::new();
    let run = |extra: &[&str]| {
        Command::new(common::warrant_bin())
            .args(["gate", "--listen", "127.0.0.1:0", "--upstream", &stack.upstream, "--trust", "trust.json"])
            .args(extra)
            .current_dir(&stack.dir)
            .output()
            .unwrap()
    };
    let out = run(&["--origin", AUDIENCE, "--status-file", "absent.cbor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.cbor"), "{out:?}");
    let out = run(&["--origin", "https://api.example.com/v1", "--status-file", "status.cbor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("it has a path or query"), "{out:?}");
}

/// Starts `warrant proxy` in front of `gate`; returns its URL.
fn start_proxy(stack: &Stack, gate: &Gate, extra: &[&str]) -> (Process, String) {
    let mut child = Command::new(common::warrant_bin())
        .args(["proxy", "--listen", "127.0.0.1:0", "--upstream", &gate.url, "--origin", AUDIENCE])
        .args(extra)
        .args(["--key", "laptop", "--grant", "grant.cbor", "--routes", "routes.toml"])
        .current_dir(&stack.dir)
        .env("WARRANT_SOCKET", &stack.daemon.socket)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    assert!(stderr.read_line(&mut line).unwrap() > 0, "the proxy exited before listening");
    let addr =
        line.strip_prefix("warrant proxy: listening on ").unwrap().split(',').next().unwrap().to_owned();
    (Process(child), format!("http://{addr}"))
}

#[test]
fn curl_through_warrant_proxy_and_the_gate_gets_a_fresh_warrant_for_each_request() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let (_proxy, url) = start_proxy(&stack, &gate, &[]);
    // The client sends no warrant and even an Authorization of its own: the proxy replaces it.
    let bearer = "authorization: Bearer not-a-warrant".to_owned();
    for _ in 0..2 {
        let answer = curl(&url, "POST", "/v1/deploy/prod", std::slice::from_ref(&bearer), Some(BODY));
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.echoed("warrant-principal"), ["alice"]);
        assert_eq!(answer.json()["body"], BODY);
    }
    // The policy does not permit `read`: the gate's 403 comes back through the proxy.
    let denied = curl(&url, "GET", "/v1/docs/readme", &[], None);
    assert_eq!(denied.status, 403, "{denied:?}");
    assert_eq!(denied.json()["code"], "policy_denied");
    // An unrouted request is not signed at all.
    let unrouted = curl(&url, "POST", "/v1/admin", &[], Some(BODY));
    assert_eq!((unrouted.status, unrouted.json()["code"].as_str()), (403, Some("no_route")));
    let audit = gate.audit(3);
    assert_eq!(audit.len(), 3, "the unrouted request never reached the gate: {audit:?}");
    assert!(audit[..2].iter().all(|l| l["decision"] == "forwarded"));
    assert_ne!(audit[0]["warrant_id"], audit[1]["warrant_id"]);
}

#[test]
fn the_proxy_signs_nothing_for_a_web_page_or_another_user() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let (_proxy, url) = start_proxy(&stack, &gate, &[]);
    let port = url.rsplit(':').next().unwrap().to_owned();
    // A page's cross-site POST (no preflight for text/plain), a fetch() with its Sec-Fetch-*
    // headers, and a DNS-rebinding page whose Host is its own name.
    for (header, says) in [
        ("origin: https://attacker.example", "Origin header"),
        ("sec-fetch-site: cross-site", "sec-fetch-site"),
        ("sec-fetch-mode: no-cors", "sec-fetch-mode"),
        ("host: attacker.example:80", "is not this proxy's address"),
    ] {
        let answer = curl(&url, "POST", "/v1/deploy/prod", &[header.to_owned()], Some(BODY));
        assert_eq!(
            (answer.status, answer.json()["code"].as_str()),
            (403, Some("browser_refused")),
            "{header}"
        );
        assert!(answer.json()["message"].as_str().unwrap().contains(says), "{answer:?}");
    }
    // localhost names the proxy too.
    let host = format!("host: localhost:{port}");
    assert_eq!(curl(&url, "POST", "/v1/deploy/prod", &[host], Some(BODY)).status, 200);

    // Another local user reaches loopback too: its requests are not signed with this user's key.
    if let Some((uid, _)) = common::test_user() {
        let out = Command::new("setpriv")
            .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups"])
            .args([
                "curl",
                "-sS",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "--data-binary",
                BODY,
            ])
            .arg(format!("{url}/v1/deploy/prod"))
            .output()
            .unwrap();
        let body: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(body["code"], "caller_refused", "{out:?}");
        assert!(body["message"].as_str().unwrap().contains(&format!("uid {uid}")), "{body}");
    }
    // Only the one accepted request reached the gate.
    let audit = gate.audit(1);
    assert_eq!(audit.len(), 1, "{audit:?}");
}

#[test]
fn a_request_naming_another_method_is_refused_before_it_reaches_the_upstream() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    // Signed as what it is, a deploy (POST); a framework upstream would run it as DELETE.
    for header in ["x-http-method-override: DELETE", "x-http-method: DELETE", "x-original-url: /v1/admin"] {
        let warrant = stack.deploy_authorization();
        let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&warrant), header.to_owned()], Some(BODY));
        assert_eq!(
            (answer.status, answer.json()["code"].as_str()),
            (400, Some("ambiguous_method")),
            "{header}"
        );
    }
    let warrant = stack.deploy_authorization();
    let answer = gate.curl("POST", "/v1/deploy/prod?_method=DELETE", &[auth(&warrant)], Some(BODY));
    assert_eq!((answer.status, answer.json()["code"].as_str()), (400, Some("ambiguous_method")));
    let audit = gate.audit(4);
    assert!(audit.iter().all(|l| l["decision"] != "forwarded"), "{audit:?}");
}

#[test]
fn gates_sharing_a_redis_replay_store_accept_a_warrant_once_and_refuse_while_redis_is_down() {
    let stack = Stack::new();
    let mut redis = warrant_test_support::redis::RedisServer::start();
    let url = redis.url();
    let gates = [stack.gate(&["--replay", &url]), stack.gate(&["--replay", &url])];
    // One warrant, presented 10 times to each gate at once: one acceptance in all.
    let warrant = stack.deploy_authorization();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..20)
            .map(|i| {
                let (gate, warrant) = (&gates[i % 2], &warrant);
                scope.spawn(move || gate.curl("POST", "/v1/deploy/prod", &[auth(warrant)], Some(BODY)).status)
            })
            .collect();
        sent.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 19, "{statuses:?}");

    // Redis down: every gate refuses (503), none accepts.
    redis.stop();
    for gate in &gates {
        let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
        assert_eq!(
            (answer.status, answer.json()["code"].as_str()),
            (503, Some("replay_store_unavailable")),
            "{answer:?}"
        );
    }
    // Back (empty): accepted again.
    redis.restart();
    let answer = gates[1].curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn gates_sharing_a_redis_cluster_accept_a_warrant_once_and_refuse_while_it_is_down() {
    let stack = Stack::new();
    let mut cluster = warrant_test_support::redis::RedisCluster::start(3);
    // One gate given every node, one given a single node to find the others from.
    let gates = [stack.gate(&["--replay", &cluster.url()]), stack.gate(&["--replay", &cluster.seed_url(1)])];
    let warrant = stack.deploy_authorization();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = (0..20)
            .map(|i| {
                let (gate, warrant) = (&gates[i % 2], &warrant);
                scope.spawn(move || gate.curl("POST", "/v1/deploy/prod", &[auth(warrant)], Some(BODY)).status)
            })
            .collect();
        sent.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 19, "{statuses:?}");
    // Fresh warrants are accepted by either gate, their keys wherever their slots are.
    for i in 0..4 {
        let answer =
            gates[i % 2].curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    // Every node down: refused (503), never accepted.
    for node in 0..cluster.len() {
        cluster.node_mut(node).stop();
    }
    for gate in &gates {
        let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
        assert_eq!(
            (answer.status, answer.json()["code"].as_str()),
            (503, Some("replay_store_unavailable")),
            "{answer:?}"
        );
    }
}

#[test]
fn one_client_holding_idle_connections_cannot_take_the_gate_from_others() {
    let stack = Stack::new();
    let gate = stack.gate(&["--max-connections-per-client", "3"]);
    let addr = gate.url.strip_prefix("http://").unwrap().to_owned();
    // Three connections that never send a byte: this client's share.
    let idle: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    let send = |interface: &str| {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"])
            .args(["--interface", interface])
            .args(["-X", "POST", "-H", &auth(&stack.deploy_authorization()), "--data-binary", BODY])
            .args(["-H", "content-type: application/json", "-H", "Expect:"])
            .arg(format!("{}/v1/deploy/prod", gate.url))
            .output()
            .unwrap()
    };
    // Its fourth is closed at once, not queued.
    let out = send("127.0.0.1");
    assert!(!out.status.success(), "{out:?}");
    // Another client (another loopback address) is served.
    let out = send("127.0.0.2");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    let out = send("127.0.0.1");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
}

#[test]
fn an_audit_reader_that_stops_reading_does_not_stop_the_gate() {
    let stack = Stack::new();
    let mut args = vec!["--listen", "127.0.0.1:0", "--upstream", &stack.upstream, "--origin", AUDIENCE];
    args.extend(["--trust", "trust.json", "--status-file", "status.cbor", "--routes", "routes.toml"]);
    args.push("--allow-software");
    let gate = stack.spawn_gate_reading(&args, false);
    // 2,000 refusals, each an audit line of ~200 bytes: far more than a pipe holds (64 KiB).
    let url = format!("{}/v1/deploy/prod", gate.url);
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60"])
        .args(std::iter::repeat_n(url.as_str(), 2000))
        .output()
        .unwrap();
    // Every answer's body is the refusal (curl prints them one after another).
    let bodies = String::from_utf8_lossy(&out.stdout);
    assert_eq!(bodies.matches("\"code\":\"missing_warrant\"").count(), 2000, "{out:?}");
    // And it still verifies and forwards.
    let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn warrant_exec_gives_the_command_a_proxy_and_its_exit_status() {
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let exec = |script: &str| {
        Command::new(common::warrant_bin())
            .args(["exec", "--upstream", &gate.url, "--origin", AUDIENCE, "--key", "laptop"])
            .args([
                "--grant",
                "grant.cbor",
                "--routes",
                "routes.toml",
                "--env",
                "API_URL",
                "--",
                "sh",
                "-c",
                script,
            ])
            .current_dir(&stack.dir)
            .env("WARRANT_SOCKET", &stack.daemon.socket)
            .output()
            .unwrap()
    };
    let out = exec(
        r#"curl -sS -X POST --data-binary @body.json -H 'content-type: application/json' "$WARRANT_PROXY_URL/v1/deploy/prod" && echo && echo "$API_URL""#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (echo, url) = stdout.trim().split_once('\n').unwrap();
    let echo: Value = serde_json::from_str(echo).unwrap();
    assert!(
        echo["headers"].as_array().unwrap().iter().any(|h| h[0] == "warrant-principal" && h[1] == "alice"),
        "{echo}"
    );
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    assert_eq!(exec("exit 7").status.code(), Some(7));
}

#[test]
fn the_proxy_listens_on_loopback_only() {
    let stack = Stack::new();
    let out = Command::new(common::warrant_bin())
        .args([
            "proxy",
            "--listen",
            "0.0.0.0:0",
            "--upstream",
            &stack.upstream,
            "--key",
            "laptop",
            "--grant",
            "grant.cbor",
        ])
        .current_dir(&stack.dir)
        .env("WARRANT_SOCKET", &stack.daemon.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"), "{out:?}");
}

/// A CA and a certificate it issued for 127.0.0.1 and localhost (openssl): `ca.pem`,
/// `cert.pem`, `key.pem` in `dir`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(
        &[
            &[
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=gate test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ][..],
            &ec,
        ]
        .concat(),
    );
    run(&[&["req", "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr"][..], &ec].concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}

#[test]
fn the_gate_serves_https_and_the_proxy_forwards_over_https_trusting_its_ca() {
    let stack = Stack::new();
    certificates(&stack.dir);
    let mut gate = stack.gate(&["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    assert!(gate.url.starts_with("https://127.0.0.1:"), "{}", gate.url);
    // curl checks the gate's certificate against the test CA.
    gate.ca = Some(stack.dir.join("ca.pem"));
    let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
    assert_eq!(answer.status, 200, "{answer:?}");

    let (_proxy, url) = start_proxy(&stack, &gate, &["--ca", "ca.pem"]);
    let answer = curl(&url, "POST", "/v1/deploy/prod", &[], Some(BODY));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.echoed("warrant-principal"), ["alice"]);

    // Without the CA the proxy does not trust the gate: no request leaves unverified.
    let (_untrusting, url) = start_proxy(&stack, &gate, &[]);
    let answer = curl(&url, "POST", "/v1/deploy/prod", &[], Some(BODY));
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.json()["code"], "upstream_unreachable");
}

#[test]
fn warrant_exec_passes_sigterm_on_to_its_command_and_returns_its_status() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let stack = Stack::new();
    let gate = stack.gate(&[]);
    let mut exec = Process(
        Command::new(common::warrant_bin())
            .args([
                "exec",
                "--upstream",
                &gate.url,
                "--origin",
                AUDIENCE,
                "--key",
                "laptop",
                "--grant",
                "grant.cbor",
            ])
            .args(["--", "sh", "-c", r#"trap 'exit 42' TERM; echo ready; sleep 60 & wait"#])
            .current_dir(&stack.dir)
            .env("WARRANT_SOCKET", &stack.daemon.socket)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(exec.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    kill(Pid::from_raw(exec.0.id() as i32), Signal::SIGTERM).unwrap();
    let status = exec.0.wait().unwrap();
    assert_eq!(status.code(), Some(42), "{status:?}");
}

#[test]
fn the_gate_takes_its_settings_from_a_toml_file_and_flags_win() {
    let stack = Stack::new();
    let config = format!(
        "listen = \"127.0.0.1:1\"\nupstream = \"{}\"\norigin = \"{AUDIENCE}\"\ntrust = [\"trust.json\"]\n\
         status_file = \"status.cbor\"\nroutes = \"routes.toml\"\nallow_software = true\n",
        stack.upstream
    );
    std::fs::write(stack.dir.join("gate.toml"), config).unwrap();
    // The file's port 1 is overridden by the flag.
    let gate = stack.spawn_gate(&["--config", "gate.toml", "--listen", "127.0.0.1:0"]);
    let answer = gate.curl("POST", "/v1/deploy/prod", &[auth(&stack.deploy_authorization())], Some(BODY));
    assert_eq!(answer.status, 200, "{answer:?}");

    std::fs::write(stack.dir.join("bad.toml"), "listen = \"127.0.0.1:0\"\nlisten_on = 1\n").unwrap();
    let out = Command::new(common::warrant_bin())
        .args(["gate", "--config", "bad.toml"])
        .current_dir(&stack.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `listen_on`"), "{out:?}");
}

#[test]
fn warrant_sign_header_prints_the_authorization_line_and_needs_out_otherwise() {
    let stack = Stack::new();
    let mut args = vec!["--json", "sign", "--key", "laptop", "--grant", "grant.cbor", "--audience", AUDIENCE];
    args.extend(["--action", "deploy", "--resource", "prod/api", "--method", "POST", "--target", DEPLOY]);
    let mut header = args.clone();
    header.push("--header");
    let json: Value = serde_json::from_str(&stack.ok(&header)).unwrap();
    let value = json["authorization"].as_str().unwrap();
    assert!(value.starts_with("Warrant ") && !value.contains('='), "{json}");
    assert_eq!(json["warrant_id"].as_str().unwrap().len(), 32);

    let out = common::warrant(&stack.dir, Some(&stack.daemon.socket), &args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"), "{out:?}");
}

// ---- status lists from a static status host (nginx) -----------------------------------------

use warrant_test_support::nginx::Nginx;

/// Polls `check` every 200 ms until it gives a value, for at most 30 s (then fails, saying
/// `what`).
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Puts `bytes` at `path` in the served tree as a publisher does: atomically, its modification
/// time past the replaced file's (nginx's ETag is the time in seconds and the size).
fn serve_file(path: &Path, bytes: &[u8]) {
    let old = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let now = std::time::SystemTime::now();
    let modified = old.map_or(now, |old| now.max(old + Duration::from_secs(1)));
    let tmp = path.with_extension("serving");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::File::options().write(true).open(&tmp).unwrap().set_modified(modified).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Copies the tree `from` to `to` (files and directories with their modes).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

impl Stack {
    /// A stack whose status list is served by `nginx` at /status/1.
    fn served_by(nginx: &Nginx) -> Self {
        Self::with_status_uri(&format!("{}/status/1", nginx.url()))
    }

    /// `warrant authority publish-status` with `extra` arguments; its JSON answer.
    fn publish(&self, extra: &[&str]) -> Value {
        let mut args = vec!["--json", "authority", "publish-status"];
        args.extend(extra);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Publishes the next list into `nginx`'s root, valid an hour, `ttl` seconds.
    fn publish_to(&self, nginx: &Nginx, ttl: &str) -> Value {
        let root = nginx.root();
        self.publish(&["--out-dir", root.to_str().unwrap(), "--ttl", ttl])
    }

    /// Stops warrantd, runs `meanwhile` (on its state), and starts it again.
    fn restart_daemon(&mut self, meanwhile: impl FnOnce(&Path)) {
        self.daemon.signal(nix::sys::signal::Signal::SIGTERM);
        self.daemon.wait_exit(Duration::from_secs(30));
        meanwhile(&self.dir.join("state"));
        self.daemon = common::start(&self.dir, &common::base_config(&self.dir));
    }

    /// A gate taking its status list from `url`, tolerating no clock skew, retrying a failed
    /// fetch at least every second.
    fn gate_fetching(&self, url: &str) -> Gate {
        let mut args = vec!["--listen", "127.0.0.1:0", "--upstream", &self.upstream, "--origin", AUDIENCE];
        args.extend(["--trust", "trust.json", "--status-url", url, "--skew", "0"]);
        args.extend(["--status-retry-max", "1", "--routes", "routes.toml", "--allow-software"]);
        self.spawn_gate(&args)
    }

    /// The answer to a fresh deploy warrant.
    fn deploy_through(&self, gate: &Gate) -> Answer {
        gate.curl("POST", "/v1/deploy/prod", &[auth(&self.deploy_authorization())], Some(BODY))
    }
}

impl Gate {
    /// Waits until a line of the gate's log contains every one of `needles`.
    fn wait_log(&self, needles: &[&str]) -> String {
        eventually(&format!("the gate logs {needles:?}: {:?}", self.log.lock().unwrap()), || {
            self.log.lock().unwrap().iter().find(|l| needles.iter().all(|n| l.contains(n))).cloned()
        })
    }
}

#[test]
fn a_revocation_published_to_the_status_host_is_enforced_by_a_running_gate_without_a_restart() {
    let nginx = Nginx::start();
    let stack = Stack::served_by(&nginx);
    let published = stack.publish_to(&nginx, "2");
    assert_eq!(published["published"], nginx.root().join("status/1").to_str().unwrap());
    let gate = stack.gate_fetching(&format!("{}/status/1", nginx.url()));
    assert_eq!(stack.deploy_through(&gate).status, 200);

    stack.ok(&["authority", "revoke", "--grant", "grant.cbor"]);
    stack.publish_to(&nginx, "2");
    // Within the held list's ttl plus one refresh (and jitter): no timing asserted, a deadline.
    let answer = eventually("the revocation is enforced", || {
        let answer = stack.deploy_through(&gate);
        (answer.status != 200).then_some(answer)
    });
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.json()["code"], "revoked");
    gate.wait_log(&["status list installed", "sequence=3"]);
}

#[test]
fn the_gate_fetches_the_status_list_conditionally() {
    let nginx = Nginx::start();
    let stack = Stack::served_by(&nginx);
    stack.publish_to(&nginx, "1");
    let gate = stack.gate_fetching(&format!("{}/status/1", nginx.url()));
    // After the list's ttl the gate asks again with the ETag it was given, and nginx answers
    // 304 (the list has not changed).
    let not_modified = eventually("nginx answers the gate 304", || {
        nginx.access_log().into_iter().find(|l| l.starts_with("304 GET /status/1 "))
    });
    assert!(!not_modified.ends_with("\"-\""), "sent with If-None-Match: {not_modified}");
    let log = nginx.access_log();
    assert!(log[0].starts_with("200 GET /status/1 \"-\""), "the first fetch is unconditional: {log:?}");
    assert_eq!(stack.deploy_through(&gate).status, 200);
}

#[test]
fn lists_the_gate_must_refuse_are_refused_and_it_keeps_the_one_it_holds() {
    let nginx = Nginx::start();
    let mut stack = Stack::served_by(&nginx);
    stack.publish_to(&nginx, "1");
    // The authority's state at list 2, to fork the chain from later.
    let snapshot = stack.dir.join("state-at-2");
    stack.restart_daemon(|state| copy_tree(state, &snapshot));
    let gate = stack.gate_fetching(&format!("{}/status/1", nginx.url()));
    stack.ok(&["authority", "revoke", "--grant", "grant.cbor"]);
    stack.publish_to(&nginx, "1");
    eventually("list 3 (revoking) is installed", || {
        (stack.deploy_through(&gate).status == 401).then_some(())
    });
    let served = nginx.root().join("status/1");
    let still_revoked = |stack: &Stack| {
        let answer = stack.deploy_through(&gate);
        assert_eq!((answer.status, answer.json()["code"].as_str()), (401, Some("revoked")), "{answer:?}");
    };

    // An older list (2, which does not revoke) served again: a rollback, refused.
    let older = std::fs::read(nginx.root().join("status/1.history/2")).unwrap();
    serve_file(&served, &older);
    gate.wait_log(&["status list not installed", "status_list_rollback"]);
    still_revoked(&stack);

    // A newer list past its exp: refused.
    stack.publish(&["--out", "stale.cbor", "--valid-for", "1", "--ttl", "1"]);
    std::thread::sleep(Duration::from_millis(2100));
    serve_file(&served, &std::fs::read(stack.dir.join("stale.cbor")).unwrap());
    gate.wait_log(&["status list not installed", "status_list_expired"]);
    still_revoked(&stack);

    // The authority's state put back to list 2 (a fork): its list 3' is another list 3
    // (equivocation), its list 4' does not chain to the held list 3.
    stack.restart_daemon(|state| {
        std::fs::remove_dir_all(state).unwrap();
        copy_tree(&snapshot, state);
    });
    let fork3 = stack.publish(&["--out", "fork3.cbor"]);
    let fork4 = stack.publish(&["--out", "fork4.cbor"]);
    assert_eq!((&fork3["sequence"], &fork4["sequence"]), (&serde_json::json!(3), &serde_json::json!(4)));
    serve_file(&served, &std::fs::read(stack.dir.join("fork3.cbor")).unwrap());
    gate.wait_log(&["status list not installed", "status_list_forked"]);
    serve_file(&served, &std::fs::read(stack.dir.join("fork4.cbor")).unwrap());
    gate.wait_log(&["status list not installed", "status_list_chain_broken"]);
    still_revoked(&stack);
}

#[test]
fn with_the_status_host_down_past_the_lists_exp_the_gate_fails_closed_and_recovers() {
    let mut nginx = Nginx::start();
    let stack = Stack::served_by(&nginx);
    let root = nginx.root();
    stack.publish(&["--out-dir", root.to_str().unwrap(), "--valid-for", "4", "--ttl", "1"]);
    let gate = stack.gate_fetching(&format!("{}/status/1", nginx.url()));
    assert_eq!(stack.deploy_through(&gate).status, 200);

    nginx.stop();
    let answer = eventually("the gate refuses once its list expired", || {
        let answer = stack.deploy_through(&gate);
        (answer.status != 200).then_some(answer)
    });
    assert_eq!(
        (answer.status, answer.json()["code"].as_str()),
        (503, Some("status_list_expired")),
        "{answer:?}"
    );
    gate.wait_log(&["status list not installed", "status_fetch_failed"]);

    // A fresh list, the host back: accepted again, without a restart.
    stack.publish_to(&nginx, "1");
    nginx.restart();
    eventually("the gate accepts again", || (stack.deploy_through(&gate).status == 200).then_some(()));
}

#[test]
fn a_gate_that_missed_lists_walks_the_published_history_and_refuses_a_broken_one() {
    let nginx = Nginx::start();
    let stack = Stack::served_by(&nginx);
    stack.publish_to(&nginx, "1");
    let gate = stack.gate_fetching(&format!("{}/status/1", nginx.url()));
    assert_eq!(stack.deploy_through(&gate).status, 200);
    // Lists 3 to 5 are published where the gate does not look; 6 revokes.
    for n in 3..=5 {
        stack.publish(&["--out", &format!("s{n}.cbor")]);
    }
    stack.ok(&["authority", "revoke", "--grant", "grant.cbor"]);
    let staging = stack.dir.join("staging");
    std::fs::create_dir(&staging).unwrap();
    let published = stack.publish(&["--out-dir", staging.to_str().unwrap(), "--ttl", "1"]);
    assert_eq!(published["sequence"], 6);
    assert_eq!(published["history_written"], serde_json::json!([1, 2, 3, 4, 5]));

    // Served with history entry 4 replaced by list 3: the walk breaks, list 6 is refused.
    let history = nginx.root().join("status/1.history");
    for n in 3..=5 {
        let from = if n == 4 { 3 } else { n };
        serve_file(
            &history.join(n.to_string()),
            &std::fs::read(staging.join(format!("status/1.history/{from}"))).unwrap(),
        );
    }
    serve_file(&nginx.root().join("status/1"), &std::fs::read(staging.join("status/1")).unwrap());
    gate.wait_log(&["status list not installed", "status_list_chain_broken"]);
    assert_eq!(stack.deploy_through(&gate).status, 200, "list 6 (revoking) was not installed");

    // The history repaired: the gate asks again, walks 3, 4, 5 and installs list 6.
    serve_file(&history.join("4"), &std::fs::read(staging.join("status/1.history/4")).unwrap());
    let answer = eventually("list 6 is installed", || {
        let answer = stack.deploy_through(&gate);
        (answer.status != 200).then_some(answer)
    });
    assert_eq!(answer.json()["code"], "revoked", "{answer:?}");
    let log = nginx.access_log();
    for n in 3..=5 {
        let line = format!("200 GET /status/1.history/{n} ");
        assert!(log.iter().any(|l| l.starts_with(&line)), "{line} in {log:?}");
    }
    assert!(
        !log.iter().any(|l| l.contains("/status/1.history/2")),
        "the walk starts after the held list: {log:?}"
    );
}

#[test]
fn a_gate_takes_one_status_list_per_authority_from_files_and_urls() {
    let nginx = Nginx::start();
    let stack = Stack::served_by(&nginx);
    stack.publish_to(&nginx, "60");
    // A second authority, whose list the gate reads from a file.
    let other = Stack::with_authority("globex", "https://globex.example/status/1");
    for (from, to) in [("trust.json", "trust-globex.json"), ("status.cbor", "status-globex.cbor")] {
        std::fs::copy(other.dir.join(from), stack.dir.join(to)).unwrap();
    }
    let url = format!("{}/status/1", nginx.url());
    let gate_with = |status: &[&str]| {
        let mut args = vec!["--listen", "127.0.0.1:0", "--upstream", &stack.upstream, "--origin", AUDIENCE];
        args.extend(["--trust", "trust.json", "--trust", "trust-globex.json", "--routes", "routes.toml"]);
        args.push("--allow-software");
        args.extend(status);
        stack.spawn_gate(&args)
    };
    let both = gate_with(&["--status-url", &url, "--status-file", "status-globex.cbor"]);
    assert_eq!(stack.deploy_through(&both).status, 200);
    assert_eq!(other.deploy_through(&both).status, 200);
    // With only the first authority's list, the second's grants cannot be decided.
    let one = gate_with(&["--status-url", &url]);
    let answer = other.deploy_through(&one);
    assert_eq!(
        (answer.status, answer.json()["code"].as_str()),
        (503, Some("status_list_missing")),
        "{answer:?}"
    );
    // Two files work too.
    std::fs::copy(stack.dir.join("status.cbor"), stack.dir.join("status-acme.cbor")).unwrap();
    let files = gate_with(&["--status-file", "status-acme.cbor", "--status-file", "status-globex.cbor"]);
    assert_eq!(stack.deploy_through(&files).status, 200);
    assert_eq!(other.deploy_through(&files).status, 200);

    // The same from a settings file: one URL, a list of files.
    let config =
        format!("status_url = \"{url}\"\nstatus_file = [\"status-acme.cbor\", \"status-globex.cbor\"]\n");
    std::fs::write(stack.dir.join("gate.toml"), config).unwrap();
    let configured = gate_with(&["--config", "gate.toml"]);
    assert_eq!(other.deploy_through(&configured).status, 200);
    assert_eq!(stack.deploy_through(&configured).status, 200);

    let refused = |status: &[&str]| {
        Command::new(common::warrant_bin())
            .args(["gate", "--listen", "127.0.0.1:0", "--upstream", &stack.upstream, "--origin", AUDIENCE])
            .args(["--trust", "trust.json"])
            .args(status)
            .current_dir(&stack.dir)
            .output()
            .unwrap()
    };
    // Without any status source the gate does not start.
    let out = refused(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--status-url or --status-file"), "{out:?}");
    // Plain http to another host is refused at start, naming the URL.
    let out = refused(&["--status-url", "http://status.example.com/status/1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http://status.example.com/status/1") && stderr.contains("plain http"),
        "{out:?}"
    );
}

#[test]
fn publish_status_out_dir_writes_the_list_and_a_bounded_history_that_chains() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::with_status_uri("https://status.example.com/lists/acme");
    let www = stack.dir.join("www");
    std::fs::create_dir(&www).unwrap();
    let out_dir = ["--out-dir", www.to_str().unwrap(), "--keep", "2"];
    let mut answers = Vec::new();
    for _ in 2..=5 {
        answers.push(stack.publish(&out_dir));
    }
    let list = www.join("lists/acme");
    let history = www.join("lists/acme.history");
    let entries = || {
        let mut names: Vec<u64> = std::fs::read_dir(&history)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        names.sort_unstable();
        names
    };
    // Lists 3 and 4 beside list 5; 1 and 2 were removed as the history moved on.
    assert_eq!(entries(), [3, 4]);
    assert_eq!(answers[0]["history_written"], serde_json::json!([1]), "{}", answers[0]);
    assert_eq!(answers[3]["history_written"], serde_json::json!([4]), "{}", answers[3]);
    assert_eq!(answers[2]["history_removed"], serde_json::json!([1]), "{}", answers[2]);
    stack.ok(&["authority", "status-list", "--out", "latest.cbor"]);
    assert_eq!(std::fs::read(&list).unwrap(), std::fs::read(stack.dir.join("latest.cbor")).unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&list), mode(&history.join("4")), mode(&history)), (0o644, 0o644, 0o755));
    assert_eq!(mode(&www.join("lists")), 0o755);

    // Lost and damaged copies: status-list --out-dir writes the list again, and exactly the
    // history entries that are missing or not the chain's.
    std::fs::remove_file(&list).unwrap();
    std::fs::remove_file(history.join("4")).unwrap();
    std::fs::write(history.join("3"), b"not a list").unwrap();
    let mut args = vec!["--json", "authority", "status-list"];
    args.extend(out_dir);
    let answer: Value = serde_json::from_str(&stack.ok(&args)).unwrap();
    assert_eq!(answer["history_written"], serde_json::json!([3, 4]), "{answer}");
    assert_eq!(std::fs::read(&list).unwrap(), std::fs::read(stack.dir.join("latest.cbor")).unwrap());
    let answer: Value = serde_json::from_str(&stack.ok(&args)).unwrap();
    assert_eq!(answer["history_written"], serde_json::json!([]), "{answer}");

    // A symbolic link on the way could lead out of the directory: refused, nothing written.
    let elsewhere = stack.dir.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir_all(www.join("lists")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, www.join("lists")).unwrap();
    let mut args = vec!["authority", "publish-status"];
    args.extend(out_dir);
    let out = common::warrant(&stack.dir, Some(&stack.daemon.socket), &args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a symbolic link"), "{out:?}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn warrant_verify_takes_the_status_list_from_its_url() {
    let nginx = Nginx::start();
    let stack = Stack::served_by(&nginx);
    stack.publish_to(&nginx, "60");
    let url = format!("{}/status/1", nginx.url());
    let mut sign = vec!["sign", "--key", "laptop", "--grant", "grant.cbor", "--audience", AUDIENCE];
    sign.extend(["--action", "deploy", "--resource", "prod/api", "--method", "POST", "--target", DEPLOY]);
    sign.extend(["--body", "body.json", "--out", "w.cbor"]);
    let verify = |extra: &[&str]| {
        let mut args = vec!["--json", "verify", "w.cbor", "--trust", "trust.json", "--audience", AUDIENCE];
        args.extend(["--method", "POST", "--target", DEPLOY, "--body", "body.json", "--allow-software"]);
        args.extend(["--action", "deploy", "--resource", "prod/api"]);
        args.extend(extra);
        common::warrant(&stack.dir, Some(&stack.daemon.socket), &args)
    };
    stack.ok(&sign);
    let out = verify(&["--status-url", &url]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    stack.ok(&["authority", "revoke", "--grant", "grant.cbor"]);
    stack.publish_to(&nginx, "60");
    let out = verify(&["--status-url", &url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"), "{out:?}");
    // A URL that serves no list: an error naming it, not a verdict.
    let missing = format!("{}/status/2", nginx.url());
    let out = verify(&["--status-url", &missing]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&missing), "{out:?}");
}
