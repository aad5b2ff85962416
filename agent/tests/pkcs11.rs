//! warrantd with its keys on a SoftHSM2 token: the authority's issuance key and the device
//! key both live on the token, grants and warrants verify offline, concurrent clients all get
//! valid signatures, and a grant's signature checks out with openssl.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::path::Path;
use std::process::Command;

use ciborium::Value;
use warrant_api as api;
use warrant_client::Client;
use warrant_envelope::verify::{Expected, HttpRequest, Verifier};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "246810";

fn start_on_token(dir: &Path) -> common::Daemon {
    let conf = common::softhsm(dir, "warrant", PIN);
    let config = common::base_config(dir).replacen(
        "[audit]",
        &format!("[keystore]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken = \"warrant\"\npin_env = \"WARRANT_TEST_PIN\"\n\n[audit]"),
        1,
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
    command.env("SOFTHSM2_CONF", conf).env("WARRANT_TEST_PIN", PIN);
    common::start_command(dir, &path, command).unwrap_or_else(|e| panic!("warrantd did not start: {e}"))
}

#[test]
fn authority_and_device_keys_on_softhsm_sign_what_verifies_offline() {
    let tmp = common::workdir();
    let d = start_on_token(tmp.path());
    let mut client = d.client();
    let version: api::Version = client.get("/version").unwrap();
    assert!(version.backends.iter().any(|b| b.name == "pkcs11" && b.active));
    // The issuance key: made on the token with pkcs11-tool, named to warrantd by its URI.
    let out = Command::new("pkcs11-tool")
        .args(["--module", MODULE, "--token-label", "warrant", "--login", "--pin", PIN])
        .args(["--keypairgen", "--key-type", "EC:prime256v1", "--label", "issuer-hsm", "--id", "a1"])
        .env("SOFTHSM2_CONF", tmp.path().join("softhsm2.conf"))
        .output()
        .expect("pkcs11-tool (scripts/test installs opensc)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let init = |uri: &str| api::InitAuthority {
        issuer: "hsm-authority".into(),
        status_uri: "https://a/s/1".into(),
        key_uri: Some(uri.into()),
    };
    let wrong = client.post::<_, api::AuthoritySettings>(
        "/authority",
        &init("pkcs11:token=warrant;object=issuer-hsm;slot-id=0"),
    );
    assert!(wrong.unwrap_err().to_string().contains("slot ids change"));
    let settings: api::AuthoritySettings =
        client.post("/authority", &init("pkcs11:token=warrant;object=issuer-hsm;id=%a1")).unwrap();
    assert_eq!(settings.active_key, "issuer-hsm");
    let key: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    assert_eq!((key.backend.as_str(), key.protection.as_str()), ("pkcs11", "hardware"));
    let keys: api::KeyList = client.get("/keys").unwrap();
    assert!(keys.keys.iter().any(|k| k.name == settings.active_key && k.backend == "pkcs11"));

    // The token's evidence is its own unsigned report (a software key can forge it): the
    // authority refuses it unless told to accept self-reported evidence.
    let challenge = api::ChallengeRequest { ttl: 60, principal: Some("alice".into()), tpm_identity: None };
    let challenge: api::ChallengeResponse = client.post("/authority/challenges", &challenge).unwrap();
    let enroll = api::EnrollRequest {
        key: "laptop".into(),
        principal: "alice".into(),
        challenge: challenge.challenge,
        tpm_credential: None,
    };
    let enrollment: api::EnrollResponse = client.post("/enroll", &enroll).unwrap();
    let refused = client
        .post::<_, api::GrantResponse>("/authority/grants", &common::grant_request(enrollment.enrollment))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("self-reported"), "{refused}");
    let grant = common::grant_for(&mut client, "laptop", "alice", true);
    let list: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None }).unwrap();
    let trust: serde_json::Value = client.get("/authority/trust").unwrap();
    std::fs::write(tmp.path().join("trust.json"), trust.to_string()).unwrap();
    let trusted =
        warrant_api::trust::TrustFile::parse(&std::fs::read(tmp.path().join("trust.json")).unwrap()).unwrap();

    // A verifier refuses self-reported evidence unless it opts in; one that does sees the
    // token's facts, and never `hardware`.
    let signed: api::SignResponse =
        client.post("/sign", &common::sign_request(&grant, common::AUDIENCE)).unwrap();
    let request = HttpRequest { method: "POST", target: common::TARGET, body: b"{}" };
    let deploy = Expected { action: "deploy", resource: "prod/api" };
    let strict = Verifier::builder(common::AUDIENCE).trust(trusted.clone()).build().unwrap();
    strict.install_status_list(&list.list).unwrap();
    assert!(matches!(
        strict.verify(&signed.warrant, &deploy, &request, None),
        Err(warrant_envelope::Error::SelfReportedEvidenceNotAllowed)
    ));
    let verifier = Verifier::builder(common::AUDIENCE)
        .trust(trusted)
        .allow_self_reported_evidence(true)
        .local_policy(
            r#"permit(principal, action, resource) when {
                context.device.assurance == "self-reported" && !context.device.hardware };"#,
        )
        .build()
        .unwrap();
    verifier.install_status_list(&list.list).unwrap();
    let verified = verifier.verify(&signed.warrant, &deploy, &request, None).unwrap();
    assert_eq!(verified.device.backend.as_str(), "pkcs11");
    assert_eq!(verified.device.properties["self_reported"], warrant_attestation::AttributeValue::Bool(true));
    assert_eq!(
        verified.device.properties["never_extractable"],
        warrant_attestation::AttributeValue::Bool(true)
    );

    // Eight clients at once, each signature valid.
    let socket = d.socket.clone();
    let warrants: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (socket, grant) = (socket.clone(), grant.clone());
                scope.spawn(move || {
                    let mut client = Client::new(&socket).unwrap();
                    (0..5)
                        .map(|_| {
                            client
                                .post::<_, api::SignResponse>(
                                    "/sign",
                                    &common::sign_request(&grant, common::AUDIENCE),
                                )
                                .unwrap()
                                .warrant
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    for warrant in &warrants {
        verifier.verify(warrant, &deploy, &request, None).unwrap();
    }

    openssl_checks_the_grant(tmp.path(), &trust, &grant);
}

/// The issuance public key as PEM and the grant's Sig_structure and DER signature, checked by
/// `openssl dgst -verify`: an implementation that shares no code with warrant.
fn openssl_checks_the_grant(dir: &Path, trust: &serde_json::Value, grant: &[u8]) {
    let key = &trust["keys"][0];
    let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    spki.push(0x04);
    spki.extend(hex::decode(key["x"].as_str().unwrap()).unwrap());
    spki.extend(hex::decode(key["y"].as_str().unwrap()).unwrap());
    let pem = Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-outform", "PEM"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&spki)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(pem.status.success());
    std::fs::write(dir.join("issuance.pem"), &pem.stdout).unwrap();

    let Value::Tag(18, sign1) = ciborium::from_reader::<Value, _>(grant).unwrap() else {
        panic!("not COSE_Sign1")
    };
    let Value::Array(parts) = *sign1 else { panic!("not an array") };
    let (Value::Bytes(protected), Value::Bytes(payload), Value::Bytes(signature)) =
        (&parts[0], &parts[2], &parts[3])
    else {
        panic!("unexpected COSE_Sign1 layout")
    };
    let tbs = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.clone()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.clone()),
    ]);
    let mut tbs_bytes = Vec::new();
    ciborium::into_writer(&tbs, &mut tbs_bytes).unwrap();
    std::fs::write(dir.join("tbs.bin"), &tbs_bytes).unwrap();
    std::fs::write(dir.join("sig.der"), der_signature(signature)).unwrap();
    let openssl_verifies = || {
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(dir.join("issuance.pem"))
            .arg("-signature")
            .arg(dir.join("sig.der"))
            .arg(dir.join("tbs.bin"))
            .output()
            .unwrap();
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), said)
    };
    let (ok, said) = openssl_verifies();
    assert!(ok, "openssl: {said}");
    // And a changed byte fails.
    tbs_bytes[20] ^= 1;
    std::fs::write(dir.join("tbs.bin"), &tbs_bytes).unwrap();
    assert!(!openssl_verifies().0);
}

/// r || s as a DER SEQUENCE of two INTEGERs.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        let mut value = if trimmed.first().is_some_and(|b| b & 0x80 != 0) { vec![0] } else { vec![] };
        value.extend(if trimmed.is_empty() { vec![0] } else { trimmed });
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    };
    let body: Vec<u8> = [integer(&raw[..32]), integer(&raw[32..])].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn a_wrong_pin_or_a_missing_token_stops_warrantd_with_a_clear_error() {
    let tmp = common::workdir();
    let conf = common::softhsm(tmp.path(), "warrant", PIN);
    let by_uri = |token: &str| {
        common::base_config(tmp.path()).replacen(
            "[audit]",
            &format!(
                "[keystore]\nbackend = \"pkcs11\"\nuri = \"pkcs11:token={token}?module-path={MODULE}\"\npin_env = \"WARRANT_TEST_PIN\"\n\n[audit]"
            ),
            1,
        )
    };
    let start = |config: String, pin: &str| {
        let path = tmp.path().join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
        command.env("SOFTHSM2_CONF", &conf).env("WARRANT_TEST_PIN", pin);
        common::start_command(tmp.path(), &path, command)
    };
    let stderr = start(by_uri("warrant"), "999999").err().expect("a wrong PIN must stop warrantd");
    assert!(stderr.contains("refused the PIN"), "{stderr}");
    assert!(!stderr.contains("999999"), "the PIN was printed");
    let stderr = start(by_uri("absent"), PIN).err().expect("a missing token must stop warrantd");
    assert!(stderr.contains("no PKCS#11 token labelled \"absent\""), "{stderr}");
    // The socket of a daemon that failed to start is not left behind.
    assert!(!tmp.path().join("run/agent.sock").exists());
    let d = start(by_uri("warrant"), PIN).unwrap();
    let _: api::Health = d.client().get("/health").unwrap();
}
