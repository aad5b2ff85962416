//! `warrantd demo` (and `warrant demo`, which runs it): the whole flow through a warrantd
//! started in this process on a temporary socket, with the software key store, in a temporary
//! directory. The daemon is only started here; everything else goes through
//! [`warrant_client`], as any other program's calls would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};
use thiserror::Error;
use tokio::sync::mpsc;
use warrant_api as api;
use warrant_api::trust::TrustFile;
use warrant_client::Client;
use warrant_envelope::device::sha256;
use warrant_envelope::verify::{Expected, HttpRequest, Verifier};

use crate::daemon::config::single_user;
use crate::daemon::{Config, Control, Server};

const POLICY: &str = r#"// Deployers may deploy the API, by POST, from a CI job, with short-lived warrants.
permit (
  principal in Warrant::Group::"deployers",
  action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api"
) when {
  context.request.method == "POST" &&
  context.warrant.lifetime <= 120 &&
  context.claims has ci_job
};
"#;

const AUDIENCE: &str = "https://api.example.com";
const TARGET: &str = "https://api.example.com/v1/deploy";

/// Why the demo could not go on (a step that merely behaves unexpectedly is reported, not this).
#[derive(Debug, Error)]
pub enum DemoError {
    /// The demo's warrantd could not be started or stopped cleanly.
    #[error(transparent)]
    Daemon(#[from] crate::Error),
    /// A call to it failed.
    #[error(transparent)]
    Client(#[from] warrant_client::Error),
    /// The verifier refused an object it should take (a trust file, a status list).
    #[error(transparent)]
    Rejected(#[from] warrant_envelope::Error),
    /// The trust file warrantd gave is not valid.
    #[error("the trust file: {0}")]
    Trust(#[from] warrant_api::Error),
    /// A file of the demo's temporary directory could not be made or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl DemoError {
    /// The error's stable code (the daemon's, the client's or the verifier's).
    pub fn code(&self) -> &str {
        match self {
            DemoError::Daemon(e) => e.code(),
            DemoError::Client(e) => e.code(),
            DemoError::Rejected(e) => e.code(),
            DemoError::Trust(_) => "bad_file",
            DemoError::Io { .. } => "io",
        }
    }
}

struct Steps {
    json: bool,
    log: Vec<Value>,
    failed: bool,
}

impl Steps {
    fn note(&mut self, step: &str, detail: String) {
        if !self.json {
            println!("  {step:<36} {detail}");
        }
        self.log.push(json!({"step": step, "detail": detail}));
    }

    /// Records a verification that should be accepted (`expect` = None) or rejected with
    /// the error code `expect`.
    fn outcome(&mut self, step: &str, expect: Option<&str>, result: Result<String, DemoError>) {
        let (ok, detail) = match (&result, expect) {
            (Ok(summary), None) => (true, format!("ACCEPTED  {summary}")),
            (Err(e), Some(code)) if e.code() == code => (true, format!("REJECTED  {}: {e}", e.code())),
            (Ok(_), Some(code)) => (false, format!("ACCEPTED, but expected rejection {code}")),
            (Err(e), _) => (false, format!("REJECTED ({}: {e}), unexpectedly", e.code())),
        };
        self.failed |= !ok;
        if !self.json {
            println!("{} {step:<36} {detail}", if ok { "✓" } else { "✗" });
        }
        self.log.push(json!({"step": step, "as_expected": ok, "detail": detail}));
    }
}

/// A warrantd serving on a thread of this process until dropped.
struct DemoDaemon {
    control: mpsc::Sender<Control>,
    thread: Option<std::thread::JoinHandle<Result<(), crate::Error>>>,
}

impl DemoDaemon {
    fn start(dir: &Path) -> Result<(Self, PathBuf), crate::Error> {
        let socket = dir.join("run/agent.sock");
        let text = single_user(dir, nix::unistd::getuid().as_raw(), AUDIENCE);
        let config = Config::parse(&dir.join("agent.toml"), &text)?;
        // Bound before the thread starts, so the socket answers as soon as this returns. The
        // demo opens a handful of connections: the configured cap is the only one needed.
        let capacity = config.limits.max_connections;
        let server = Server::open(config, capacity)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| crate::Error::Start { what: "the async runtime", source })?;
        let (control, rx) = mpsc::channel(1);
        let thread = std::thread::spawn(move || runtime.block_on(server.run(rx)));
        Ok((Self { control, thread: Some(thread) }, socket))
    }
}

impl Drop for DemoDaemon {
    fn drop(&mut self) {
        let _ = self.control.blocking_send(Control::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the demo; exit 0 when every step behaved as it should.
pub fn run(json: bool) -> Result<ExitCode, DemoError> {
    let tmp = tempfile::tempdir().map_err(|source| DemoError::Io { path: std::env::temp_dir(), source })?;
    let mut s = Steps { json, log: Vec::new(), failed: false };
    if !json {
        println!("warrant demo (working in {})\n", tmp.path().display());
    }
    let (daemon, socket) = DemoDaemon::start(tmp.path())?;
    let mut client = Client::new(&socket)?;
    s.note("warrantd started", format!("socket {}", socket.display()));

    // The authority (its issuance key held by the daemon).
    let settings: api::AuthoritySettings = client.post(
        "/authority",
        &api::InitAuthority {
            issuer: "demo-authority".into(),
            status_uri: "https://authority.example.com/status/1".into(),
            key_uri: None,
        },
    )?;
    let trust: TrustFile = client.get("/authority/trust")?;
    let trusted = trust.to_authority()?;
    s.note("authority init", format!("id {:?}, issuance key {}", trusted.issuer, settings.active_key));

    // The device: a CI runner with a software key in the daemon.
    let key: api::Key = client.post("/keys", &api::CreateKey { name: "ci-runner".into() })?;
    s.note("device key created", format!("P-256 {:?}, kid {}…", key.name, &key.kid[..12]));

    // Enrollment: a challenge for the principal the authority decides on, proof of
    // possession, grant (refused if the enrollment asked for anyone else).
    let challenge: api::ChallengeResponse = client.post(
        "/authority/challenges",
        &api::ChallengeRequest { ttl: 600, principal: Some("alice".into()), tpm_identity: None },
    )?;
    let challenge = challenge.challenge.unwrap_or_default();
    let enrollment: api::EnrollResponse = client.post(
        "/enroll",
        &api::EnrollRequest {
            key: "ci-runner".into(),
            principal: "alice".into(),
            challenge: Some(challenge.clone()),
            tpm_credential: None,
        },
    )?;
    s.note(
        "enrollment request",
        format!(
            "{} bytes, answers challenge {}…",
            enrollment.enrollment.len(),
            challenge.get(..12).unwrap_or_default()
        ),
    );
    let granted: api::GrantResponse = client.post(
        "/authority/grants",
        &api::GrantRequest {
            enrollment: enrollment.enrollment,
            principal: None,
            policy: POLICY.into(),
            groups: vec!["deployers".into()],
            attributes: BTreeMap::from([("team".into(), Value::from("platform"))]),
            valid_for: 3600,
            max_warrant_ttl: 120,
            allow_software: true,
            allow_self_reported: false,
        },
    )?;
    s.note(
        "grant issued",
        format!(
            "{} bytes, id {}…, for {:?} (the challenge's principal), groups [deployers], policy: deploy prod/api",
            granted.grant.len(),
            &granted.grant_id[..12],
            granted.principal
        ),
    );
    let status1: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None })?;
    s.note("status list published", format!("sequence {}, {} bytes", status1.sequence, status1.list.len()));

    // The verifier, offline: trusts the authority, holds the status list.
    let verifier = Verifier::builder(AUDIENCE)
        .trust(trusted)
        .allow_software_evidence(true) // the demo device has no TPM; real verifiers refuse this
        .build()?;
    verifier.install_status_list(&status1.list)?;
    s.note("verifier ready", format!("audience {AUDIENCE}, accepts software keys (demo only)"));

    let body = br#"{"version":"1.4.2"}"#;
    let sign =
        |client: &mut Client, action: &str, resource: &str, audience: &str| -> Result<Vec<u8>, DemoError> {
            let answer: api::SignResponse = client.post(
                "/sign",
                &api::SignRequest {
                    key: "ci-runner".into(),
                    grant: granted.grant.clone(),
                    audience: audience.into(),
                    action: action.into(),
                    resource: resource.into(),
                    request: api::BoundRequest {
                        method: "POST".into(),
                        target: TARGET.into(),
                        body_sha256: hex::encode(sha256(body)),
                    },
                    context: BTreeMap::from([("ci_job".into(), Value::from("release-42"))]),
                    nonce: None,
                    ttl: 60,
                    status_list: None,
                },
            )?;
            Ok(answer.warrant)
        };
    // The verifier is the deploy endpoint: it states the operation its requests perform.
    let request = HttpRequest { method: "POST", target: TARGET, body };
    let deploy = Expected { action: "deploy", resource: "prod/api" };
    let check = |warrant: &[u8], expected: &Expected<'_>, request: &HttpRequest<'_>| {
        verifier
            .verify(warrant, expected, request, None)
            .map(|v| format!("{} may {} {}", v.principal, v.action, v.resource))
            .map_err(DemoError::from)
    };

    let warrant = sign(&mut client, "deploy", "prod/api", AUDIENCE)?;
    s.note("warrant signed by warrantd", format!("{} bytes: POST {TARGET}, 60 s", warrant.len()));
    s.outcome("verify", None, check(&warrant, &deploy, &request));
    s.outcome("same warrant again", Some("replayed"), check(&warrant, &deploy, &request));

    let fresh = sign(&mut client, "deploy", "prod/api", AUDIENCE)?;
    let tampered = HttpRequest { body: br#"{"version":"6.6.6"}"#, ..request };
    s.outcome("new warrant, body changed", Some("request_body_mismatch"), check(&fresh, &deploy, &tampered));

    let forbidden = sign(&mut client, "drop", "prod/db", AUDIENCE)?;
    let drop_db = Expected { action: "drop", resource: "prod/db" };
    s.outcome(
        "action the policy does not allow",
        Some("policy_denied"),
        check(&forbidden, &drop_db, &request),
    );
    s.outcome(
        "that warrant at the deploy endpoint",
        Some("action_mismatch"),
        check(&forbidden, &deploy, &request),
    );

    s.outcome(
        "warrantd asked for another audience",
        Some("forbidden"),
        sign(&mut client, "deploy", "prod/api", "https://elsewhere.example.com").map(|_| String::new()),
    );

    let revoked: api::RevokeResponse =
        client.post("/authority/revocations", &api::RevokeRequest { grant_id: granted.grant_id.clone() })?;
    let status2: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None })?;
    verifier.install_status_list(&status2.list)?;
    s.note(
        "grant revoked",
        format!("status index {}, status list sequence {} installed", revoked.status_index, status2.sequence),
    );
    let after = sign(&mut client, "deploy", "prod/api", AUDIENCE)?;
    s.outcome("warrant after revocation", Some("revoked"), check(&after, &deploy, &request));
    s.outcome(
        "old status list offered again",
        Some("status_list_rollback"),
        verifier.install_status_list(&status1.list).map(|_| String::new()).map_err(DemoError::from),
    );

    drop(client);
    drop(daemon);
    let audit_path = tmp.path().join("audit.jsonl");
    let audit =
        std::fs::read_to_string(&audit_path).map_err(|source| DemoError::Io { path: audit_path, source })?;
    s.note("warrantd stopped", format!("its audit log holds {} decisions", audit.lines().count()));

    if json {
        println!("{}", json!({"ok": !s.failed, "steps": s.log}));
    } else {
        println!(
            "\n{}",
            if s.failed {
                "demo FAILED: a step did not behave as expected"
            } else {
                "demo complete: every step behaved as expected"
            }
        );
    }
    Ok(if s.failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
