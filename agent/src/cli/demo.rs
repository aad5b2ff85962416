//! `warrant demo`: the whole flow, in-process, in a temporary directory, on software keys.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{json, Value};
use warrant_attestation::AttributeValue;
use warrant_envelope::{HttpRequest, Verifier};
use warrant_hsm_backends::soft::SoftKeyStore;
use warrant_hsm_backends::{KeyName, KeyStore};

use super::args::Output;
use crate::authority::{Authority, GrantOptions};
use crate::device::{self, WarrantRequest};
use crate::key_signer::KeySigner;
use crate::Error;

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

struct Steps {
    out: Output,
    log: Vec<Value>,
    failed: bool,
}

impl Steps {
    fn note(&mut self, step: &str, detail: String) {
        if !self.out.json {
            println!("  {step:<34} {detail}");
        }
        self.log.push(json!({"step": step, "detail": detail}));
    }

    /// Records a verification that should be accepted (`expect` = None) or rejected with
    /// the error code `expect`.
    fn outcome(&mut self, step: &str, expect: Option<&str>, result: Result<String, warrant_envelope::Error>) {
        let (ok, detail) = match (&result, expect) {
            (Ok(summary), None) => (true, format!("ACCEPTED  {summary}")),
            (Err(e), Some(code)) if e.code() == code => (true, format!("REJECTED  {}: {e}", e.code())),
            (Ok(_), Some(code)) => (false, format!("ACCEPTED, but expected rejection {code}")),
            (Err(e), _) => (false, format!("REJECTED ({}: {e}), unexpectedly", e.code())),
        };
        self.failed |= !ok;
        if !self.out.json {
            println!("{} {step:<34} {detail}", if ok { "✓" } else { "✗" });
        }
        self.log.push(json!({"step": step, "as_expected": ok, "detail": detail}));
    }
}

/// Runs the demo; exit 0 when every step behaved as it should.
pub(super) fn run(out: Output) -> Result<ExitCode, Error> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Io { path: std::env::temp_dir(), source: e })?;
    let mut s = Steps { out, log: Vec::new(), failed: false };
    if !out.json {
        println!("warrant demo (working in {})\n", tmp.path().display());
    }

    // The authority, offline.
    let mut authority = Authority::init(
        &tmp.path().join("authority"),
        "demo-authority",
        "https://authority.example.com/status/1",
        None,
    )?;
    let trusted = authority.trusted()?;
    s.note("authority init", format!("id {:?}, issuance key kid {}", trusted.issuer, short_kid(&trusted)));

    // The device: a laptop or CI runner with a software key.
    let store = SoftKeyStore::open(tmp.path().join("device-keys"))?;
    let key_name = KeyName::new("ci-runner")?;
    store.create(&key_name)?;
    let key = KeySigner::new(&store, key_name)?;
    s.note("device key created", "P-256 \"ci-runner\" in the software key store".into());

    // Enrollment: challenge, proof of possession, grant.
    let challenge = authority.challenge(600)?;
    let enrollment = device::enroll(&key, "alice", challenge)?;
    s.note(
        "enrollment request",
        format!("{} bytes, answers challenge {}…", enrollment.len(), &hex::encode(challenge)[..12]),
    );
    let options = GrantOptions {
        policy: POLICY.into(),
        groups: vec!["deployers".into()],
        attributes: BTreeMap::from([("team".into(), AttributeValue::Text("platform".into()))]),
        valid_for: 3600,
        max_warrant_lifetime: 120,
        allow_software: true,
    };
    let (grant, claims) = authority.grant(&enrollment, &options)?;
    s.note(
        "grant issued",
        format!(
            "{} bytes, id {}, groups [deployers], policy: deploy prod/api",
            grant.len(),
            &hex::encode(claims.id)[..12]
        ),
    );
    let (status1, _) = authority.publish_status(3600)?;
    s.note("status list published", format!("sequence 1, {} bytes", status1.len()));

    // The verifier, offline: trusts the authority, holds the status list.
    let verifier = Verifier::builder(AUDIENCE)
        .trust(trusted)
        .allow_software_evidence(true) // the demo device has no TPM; real verifiers refuse this
        .build()?;
    verifier.install_status_list(&status1)?;
    s.note("verifier ready", format!("audience {AUDIENCE}, accepts software keys (demo only)"));

    let body = br#"{"version":"1.4.2"}"#;
    let sign = |action: &str, resource: &str| {
        device::sign_warrant(
            &key,
            &WarrantRequest {
                grant: &grant,
                audience: AUDIENCE,
                action,
                resource,
                request: HttpRequest { method: "POST", target: TARGET, body },
                context: BTreeMap::from([("ci_job".into(), AttributeValue::Text("release-42".into()))]),
                nonce: None,
                lifetime: 60,
            },
        )
    };
    let request = HttpRequest { method: "POST", target: TARGET, body };
    let check = |warrant: &[u8], request: &HttpRequest<'_>| {
        verifier
            .verify(warrant, request, None)
            .map(|v| format!("{} may {} {}", v.principal, v.action, v.resource))
    };

    let warrant = sign("deploy", "prod/api")?;
    s.note("warrant signed", format!("{} bytes: POST {TARGET}, 60 s", warrant.len()));
    s.outcome("verify", None, check(&warrant, &request));
    s.outcome("same warrant again", Some("replayed"), check(&warrant, &request));

    let fresh = sign("deploy", "prod/api")?;
    let tampered = HttpRequest { body: br#"{"version":"6.6.6"}"#, ..request };
    s.outcome("new warrant, body changed", Some("request_body_mismatch"), check(&fresh, &tampered));

    let forbidden = sign("drop", "prod/db")?;
    s.outcome("action the policy does not allow", Some("policy_denied"), check(&forbidden, &request));

    let revoked = authority.revoke(&hex::encode(claims.id))?;
    let (status2, _) = authority.publish_status(3600)?;
    verifier.install_status_list(&status2)?;
    s.note(
        "grant revoked",
        format!("status index {}, status list sequence 2 installed", revoked.status_index),
    );
    let after = sign("deploy", "prod/api")?;
    s.outcome("warrant after revocation", Some("revoked"), check(&after, &request));
    s.outcome(
        "old status list offered again",
        Some("status_list_rollback"),
        verifier.install_status_list(&status1).map(|_| String::new()),
    );

    if out.json {
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

fn short_kid(trusted: &warrant_envelope::TrustedAuthority) -> String {
    trusted
        .keys
        .first()
        .map(|k| hex::encode(warrant_envelope::thumbprint(k))[..12].to_owned())
        .unwrap_or_default()
}
