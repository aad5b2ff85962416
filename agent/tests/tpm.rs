//! warrantd on a TPM (swtpm, one per test): enrollment by credential activation, a quote in
//! every warrant checked offline by a verifier whose Cedar policy reads PCR values, a TPM reset
//! under the running daemon, and `warrant evidence tpm-quote` on quotes made by tpm2-tools.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.
#![cfg(feature = "tpm")]

mod common;
use warrant_test_support::swtpm;

use std::path::Path;
use std::process::{Command, Output};

use swtpm::Swtpm;
use warrant_api as api;

const ZERO_PCR: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn start_on_tpm(dir: &Path, tpm: &Swtpm, keystore_extra: &str) -> common::Daemon {
    let roots = dir.join("ek-ca.pem");
    std::fs::write(&roots, tpm.ek_ca_pem()).unwrap();
    let config = common::base_config(dir).replacen(
        "[audit]",
        &format!(
            "[keystore]\nbackend = \"tpm\"\ntcti = \"{}\"\n{keystore_extra}\n[authority]\ntpm_ek_roots = [\"{}\"]\n\n[audit]",
            tpm.tcti(),
            roots.display()
        ),
        1,
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
    command.env("TSS2_LOG", "all+none");
    common::start_command(dir, &path, command).unwrap_or_else(|e| panic!("warrantd did not start: {e}"))
}

fn cli(dir: &Path, d: &common::Daemon, args: &[&str]) -> Output {
    common::warrant(dir, Some(&d.socket), args)
}

fn ok(dir: &Path, d: &common::Daemon, args: &[&str]) -> String {
    common::warrant_ok(dir, Some(&d.socket), args)
}

fn policy(pcr7: &str) -> String {
    format!(
        r#"permit (principal in Warrant::Group::"deployers", action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api")
when {{ context.device.backend == "tpm" && context.device.properties.ek_verified
  && context.device.properties.quoted && context.device.properties.pcr_sha256_7 == "{pcr7}" }};"#
    )
}

/// keys tpm-identity -> authority challenge --tpm-identity -> enroll --tpm-credential -> grant.
fn enroll_by_credential(dir: &Path, d: &common::Daemon, policy_text: &str, grant: &str) -> Output {
    ok(dir, d, &["keys", "tpm-identity", "--out", "identity.json"]);
    let challenge = ["authority", "challenge", "--principal", "alice", "--tpm-identity", "identity.json"];
    ok(dir, d, &[&challenge[..], &["--out", "credential.json"]].concat());
    let credential = std::fs::read_to_string(dir.join("credential.json")).unwrap();
    assert!(!credential.contains("challenge"), "the challenge must not travel in clear: {credential}");
    ok(
        dir,
        d,
        &[
            "enroll",
            "--key",
            "laptop",
            "--principal",
            "alice",
            "--tpm-credential",
            "credential.json",
            "--out",
            "enrollment.cbor",
        ],
    );
    std::fs::write(dir.join("policy.cedar"), policy_text).unwrap();
    cli(
        dir,
        d,
        &[
            "authority",
            "grant",
            "--enrollment",
            "enrollment.cbor",
            "--policy",
            "policy.cedar",
            "--group",
            "deployers",
            "--out",
            grant,
        ],
    )
}

fn sign_and_verify(dir: &Path, d: &common::Daemon, grant: &str) -> Output {
    common::sign_and_verify(dir, &d.socket, grant)
}

#[test]
fn a_tpm_device_enrolls_by_credential_and_every_warrant_carries_a_quote() {
    let tmp = common::workdir();
    let dir = tmp.path();
    let tpm = Swtpm::start();
    let d = start_on_tpm(dir, &tpm, "");
    let version: api::Version = d.client().get("/version").unwrap();
    assert!(version.backends.iter().any(|b| b.name == "tpm" && b.active && b.compiled));
    ok(dir, &d, &["authority", "init", "--issuer", "tpm-authority", "--status-uri", "https://a/s/1"]);
    ok(dir, &d, &["keys", "create", "laptop"]);

    // A TPM device answering a plain challenge is refused: nothing proved its AK.
    let challenge = ok(dir, &d, &["authority", "challenge", "--principal", "alice"]);
    ok(
        dir,
        &d,
        &[
            "enroll",
            "--key",
            "laptop",
            "--principal",
            "alice",
            "--challenge",
            challenge.trim(),
            "--out",
            "plain.cbor",
        ],
    );
    std::fs::write(dir.join("policy.cedar"), policy(ZERO_PCR)).unwrap();
    let out = cli(
        dir,
        &d,
        &["authority", "grant", "--enrollment", "plain.cbor", "--policy", "policy.cedar", "--out", "g"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must answer a credential challenge"), "{out:?}");

    let granted = enroll_by_credential(dir, &d, &policy(ZERO_PCR), "grant.cbor");
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    // The credential's challenge is consumed with the grant.
    let again = cli(
        dir,
        &d,
        &["authority", "grant", "--enrollment", "enrollment.cbor", "--policy", "policy.cedar", "--out", "g2"],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("used already"), "{again:?}");

    ok(dir, &d, &["authority", "trust", "--out", "trust.json"]);
    ok(dir, &d, &["authority", "publish-status", "--out", "status.cbor"]);
    let out = sign_and_verify(dir, &d, "grant.cbor");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let device = &verified["device"];
    assert_eq!(device["backend"], "tpm", "{verified}");
    let properties = &device["properties"];
    assert_eq!(properties["pcr_sha256_7"], ZERO_PCR, "{verified}");
    assert_eq!(
        (&properties["quoted"], &properties["ek_verified"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );
    assert!(properties["ak_name"].as_str().is_some_and(|n| n.starts_with("000b")), "{verified}");
    let inspected = ok(dir, &d, &["--json", "inspect", "warrant.cbor"]);
    assert!(inspected.contains("tpm-quote"), "{inspected}");

    // A grant whose policy wants another PCR 7 (another Secure Boot state) denies the warrant.
    let mut other = String::from("ab");
    other.push_str(&ZERO_PCR[2..]);
    let granted = enroll_by_credential(dir, &d, &policy(&other), "grant-other.cbor");
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    ok(dir, &d, &["authority", "publish-status", "--out", "status.cbor"]);
    let out = sign_and_verify(dir, &d, "grant-other.cbor");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("policy"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn without_quotes_warrants_say_so_and_a_tpm_reset_under_the_daemon_is_survived() {
    let tmp = common::workdir();
    let dir = tmp.path();
    let mut tpm = Swtpm::start();
    let d = start_on_tpm(dir, &tpm, "quote_pcrs = \"none\"");
    ok(dir, &d, &["authority", "init", "--issuer", "tpm-authority", "--status-uri", "https://a/s/1"]);
    ok(dir, &d, &["keys", "create", "laptop"]);
    let unquoted =
        r#"permit (principal, action, resource) when { context.device.properties.quoted == false };"#;
    let granted = enroll_by_credential(dir, &d, unquoted, "grant.cbor");
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    ok(dir, &d, &["authority", "trust", "--out", "trust.json"]);
    ok(dir, &d, &["authority", "publish-status", "--out", "status.cbor"]);
    assert_eq!(sign_and_verify(dir, &d, "grant.cbor").status.code(), Some(0));
    assert!(ok(dir, &d, &["--json", "inspect", "warrant.cbor"]).contains("tpm-key"));
    // swtpm restarted: the connection and every loaded object are gone; the daemon reconnects,
    // re-derives the SRK and reloads the keys from their blobs.
    tpm.restart();
    let out = sign_and_verify(dir, &d, "grant.cbor");
    assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), d.stderr());
    // A wiped TPM (new seeds): signing fails and says to re-enroll.
    tpm.wipe();
    let mut sign = vec!["sign", "--key", "laptop", "--grant", "grant.cbor", "--audience", common::AUDIENCE];
    sign.extend(["--action", "deploy", "--resource", "prod/api", "--out", "w2.cbor", "--method", "POST"]);
    sign.extend(["--target", common::TARGET]);
    let out = cli(dir, &d, &sign);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("re-enroll"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs `warrant.cbor` under `grant.cbor` with `extra` arguments (e.g. `--status-list`).
fn sign_with(dir: &Path, d: &common::Daemon, extra: &[&str]) -> Output {
    std::fs::write(dir.join("body.json"), "{}").unwrap();
    let mut sign = vec!["sign", "--key", "laptop", "--grant", "grant.cbor", "--audience", common::AUDIENCE];
    sign.extend(["--action", "deploy", "--resource", "prod/api", "--out", "warrant.cbor"]);
    sign.extend(["--method", "POST", "--target", common::TARGET, "--body", "body.json"]);
    sign.extend(extra);
    cli(dir, d, &sign)
}

/// Verifies `warrant.cbor` by a verifier that installed `lists` in order; returns the device
/// properties, or the refusal's message.
fn verify_holding(dir: &Path, d: &common::Daemon, lists: &[&str]) -> Result<serde_json::Value, String> {
    let mut verify = vec!["--json", "verify", "warrant.cbor", "--trust", "trust.json"];
    verify.extend(["--audience", common::AUDIENCE, "--method", "POST", "--target", common::TARGET]);
    verify.extend(["--body", "body.json", "--action", "deploy", "--resource", "prod/api"]);
    for list in lists {
        verify.extend(["--status", list]);
    }
    let out = cli(dir, d, &verify);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    match out.status.code() {
        Some(0) => Ok(answer["device"]["properties"].clone()),
        _ => Err(format!("{answer} {}", String::from_utf8_lossy(&out.stderr))),
    }
}

#[test]
fn a_cached_quote_is_bound_to_the_newest_status_list_and_fresh_only_while_verifiers_hold_it() {
    let tmp = common::workdir();
    let dir = tmp.path();
    let tpm = Swtpm::start();
    let d = start_on_tpm(dir, &tpm, "quote_cache_seconds = 3600");
    ok(dir, &d, &["authority", "init", "--issuer", "tpm-authority", "--status-uri", "https://a/s/1"]);
    ok(dir, &d, &["keys", "create", "laptop"]);
    let fresh_enough = r#"permit (principal, action, resource)
when { context.device.properties.quoted && context.device.properties.quote_age < 3600 };"#;
    let granted = enroll_by_credential(dir, &d, fresh_enough, "grant.cbor");
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    ok(dir, &d, &["authority", "trust", "--out", "trust.json"]);
    ok(dir, &d, &["authority", "publish-status", "--out", "s1.cbor"]);

    // Signed with the newest list: a cached quote, reused by the next warrant (same TPM clock),
    // accepted by a verifier holding that list.
    let mut clocks = Vec::new();
    for _ in 0..2 {
        let out = sign_with(dir, &d, &["--status-list", "s1.cbor"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let properties = verify_holding(dir, &d, &["s1.cbor"]).unwrap();
        assert_eq!(properties["quote_cached"], true, "{properties}");
        assert!(properties["quote_age"].as_i64().is_some_and(|age| (0..60).contains(&age)), "{properties}");
        clocks.push(properties["clock"].clone());
    }
    assert_eq!(clocks[0], clocks[1]);

    // The authority publishes two lists. A verifier holding the next one still accepts the
    // quote (bound to the list before its newest); one holding the list after refuses it.
    ok(dir, &d, &["authority", "publish-status", "--out", "s2.cbor"]);
    ok(dir, &d, &["authority", "publish-status", "--out", "s3.cbor"]);
    let properties = verify_holding(dir, &d, &["s1.cbor", "s2.cbor"]).unwrap();
    assert_eq!(properties["quote_cached"], true, "{properties}");
    let refused = verify_holding(dir, &d, &["s1.cbor", "s2.cbor", "s3.cbor"]).unwrap_err();
    assert!(refused.contains("does not hold") && refused.contains("newest status list"), "{refused}");

    // Given the newest list, warrantd quotes again; it remembers that list and never goes back
    // to an older one it is offered.
    for extra in [&["--status-list", "s3.cbor"][..], &[], &["--status-list", "s1.cbor"]] {
        let out = sign_with(dir, &d, extra);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let properties = verify_holding(dir, &d, &["s1.cbor", "s2.cbor", "s3.cbor"]).unwrap();
        assert_eq!(properties["quote_cached"], true, "{extra:?}: {properties}");
        assert_ne!(properties["clock"], clocks[0], "{extra:?}: {properties}");
    }

    // What is not a status list is refused, saying so.
    let out = sign_with(dir, &d, &["--status-list", "grant.cbor"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not usable"), "{out:?}");

    // A warrantd that knows no list for the grant quotes for each warrant, and says why.
    d.stop();
    let d = start_on_tpm(dir, &tpm, "quote_cache_seconds = 3600");
    let out = sign_with(dir, &d, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Bound to the warrant alone, the quote proves no age (the device could have foreseen the
    // request): this grant's policy bounds `quote_age`, so it denies, saying why.
    let refused = verify_holding(dir, &d, &["s1.cbor", "s2.cbor", "s3.cbor"]).unwrap_err();
    assert!(refused.contains("policy_evaluation_failed") && refused.contains("quote_age"), "{refused}");
    assert!(d.stderr().contains("no status list known for the grant"), "{}", d.stderr());
}

/// Signs and verifies (holding `lists`) until the warrant carries a cached quote the verifier
/// accepts, for at most 30 s; its device properties.
fn eventually_cached(dir: &Path, d: &common::Daemon, lists: &[&str]) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = sign_with(dir, d, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        match verify_holding(dir, d, lists) {
            Ok(properties) if properties["quote_cached"] == true => return properties,
            outcome => assert!(
                std::time::Instant::now() < deadline,
                "no cached quote bound to a list of {lists:?} within 30 s: {outcome:?}\n{}",
                d.stderr()
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn warrantd_fetches_its_authoritys_status_list_and_binds_cached_quotes_to_it() {
    let tmp = common::workdir();
    let dir = tmp.path();
    let tpm = Swtpm::start();
    let nginx = warrant_test_support::nginx::Nginx::start();
    let url = format!("{}/status/1", nginx.url());
    let root = nginx.root();
    let publish = |d: &common::Daemon, out: &str| {
        let args = ["authority", "publish-status", "--ttl", "1", "--out", out, "--out-dir"];
        ok(dir, d, &[&args[..], &[root.to_str().unwrap()]].concat());
    };
    let d = start_on_tpm(dir, &tpm, "quote_cache_seconds = 3600");
    ok(dir, &d, &["authority", "init", "--issuer", "tpm-authority", "--status-uri", &url]);
    ok(dir, &d, &["keys", "create", "laptop"]);
    let fresh_enough = r#"permit (principal, action, resource)
when { context.device.properties.quoted && context.device.properties.quote_age < 3600 };"#;
    let granted = enroll_by_credential(dir, &d, fresh_enough, "grant.cbor");
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    ok(dir, &d, &["authority", "trust", "--out", "trust.json"]);
    publish(&d, "s1.cbor");
    // The same daemon told to fetch the list: no sign request carries it.
    d.stop();
    let device = format!("quote_cache_seconds = 3600\n\n[device]\nstatus_urls = [\"{url}\"]\n");
    let d = start_on_tpm(dir, &tpm, &device);
    let properties = eventually_cached(dir, &d, &["s1.cbor"]);
    assert!(properties["quote_age"].as_i64().is_some_and(|age| age >= 0), "{properties}");

    // Two lists later, a verifier holding the newest refuses a quote bound to the first; warrantd
    // fetches the new lists on the first one's ttl and binds its quotes to them.
    publish(&d, "s2.cbor");
    publish(&d, "s3.cbor");
    eventually_cached(dir, &d, &["s1.cbor", "s2.cbor", "s3.cbor"]);
    assert!(
        nginx.access_log().iter().filter(|l| l.starts_with("200 GET /status/1 ")).count() >= 2,
        "{:?}",
        nginx.access_log()
    );
}

#[test]
fn quotes_made_by_tpm2_tools_are_verified_by_warrant_evidence_tpm_quote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tpm = Swtpm::start();
    tpm.tool(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"], dir);
    tpm.tool(
        &[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "ecc",
            "-g",
            "sha256",
            "-s",
            "ecdsa",
            "-u",
            "ak.pub",
        ],
        dir,
    );
    tpm.tool(
        &[
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            "sha256:0,1,2,3,4,5,6,7",
            "-q",
            "c0ffee",
            "-m",
            "q.msg",
            "-s",
            "q.sig",
            "-o",
            "q.pcrs",
            "-g",
            "sha256",
        ],
        dir,
    );
    let warrant = |args: &[&str]| {
        Command::new(common::warrant_bin())
            .args(["--json", "evidence", "tpm-quote"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    let files = ["--ak", "ak.pub", "--message", "q.msg", "--signature", "q.sig", "--pcrs", "q.pcrs"];
    let out = warrant(&[&files[..], &["--nonce", "c0ffee"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["pcrs"]["sha256"]["7"], ZERO_PCR);
    assert_eq!(facts["signature"]["scheme"], "ecdsa");

    let reason = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let out = warrant(&[&files[..], &["--nonce", "c0ffef"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(reason(&out).contains("another nonce"), "{}", reason(&out));

    // An RSA attestation key (RSASSA), as many real AKs are, over two banks.
    tpm.tool(
        &[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "rsa.ctx",
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-u",
            "rsa.pub",
        ],
        dir,
    );
    tpm.tool(
        &[
            "tpm2_quote",
            "-c",
            "rsa.ctx",
            "-l",
            "sha1:0,7+sha256:7",
            "-q",
            "beef",
            "-m",
            "r.msg",
            "-s",
            "r.sig",
            "-o",
            "r.pcrs",
            "-g",
            "sha256",
        ],
        dir,
    );
    let out = warrant(&[
        "--ak",
        "rsa.pub",
        "--message",
        "r.msg",
        "--signature",
        "r.sig",
        "--pcrs",
        "r.pcrs",
        "--nonce",
        "beef",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", reason(&out));
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&facts["signer"]["key"], &facts["signature"]["scheme"]),
        (&"rsa-2048".into(), &"rsassa".into())
    );
    assert_eq!(facts["pcr_banks"], serde_json::json!(["sha1", "sha256"]));

    // The same quote as `-F values`.
    tpm.tool(
        &[
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            "sha256:0,7",
            "-m",
            "v.msg",
            "-s",
            "v.sig",
            "-o",
            "v.pcrs",
            "-F",
            "values",
            "-g",
            "sha256",
        ],
        dir,
    );
    let out = warrant(&[
        "--ak",
        "ak.pub",
        "--message",
        "v.msg",
        "--signature",
        "v.sig",
        "--pcrs",
        "v.pcrs",
        "--pcrs-format",
        "values",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", reason(&out));

    // A changed message byte, and PCR values that are not what was quoted.
    let mut msg = std::fs::read(dir.join("q.msg")).unwrap();
    msg[20] ^= 1;
    std::fs::write(dir.join("bad.msg"), &msg).unwrap();
    let out =
        warrant(&["--ak", "ak.pub", "--message", "bad.msg", "--signature", "q.sig", "--pcrs", "q.pcrs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(reason(&out).contains("does not verify"), "{}", reason(&out));
    let mut pcrs = std::fs::read(dir.join("q.pcrs")).unwrap();
    pcrs[142] ^= 1; // the first value (after selection, list count, digest count and size)
    std::fs::write(dir.join("bad.pcrs"), &pcrs).unwrap();
    let out =
        warrant(&["--ak", "ak.pub", "--message", "q.msg", "--signature", "q.sig", "--pcrs", "bad.pcrs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(reason(&out).contains("do not match the quote's PCR digest"), "{}", reason(&out));

    // A quote signed by an unrestricted key: the TPM makes it, the verifier refuses it.
    tpm.tool(&["tpm2_createprimary", "-C", "o", "-c", "primary.ctx"], dir);
    tpm.tool(
        &[
            "tpm2_create",
            "-C",
            "primary.ctx",
            "-G",
            "ecc256:ecdsa-sha256",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
            "-u",
            "key.pub",
            "-r",
            "key.priv",
        ],
        dir,
    );
    tpm.tool(&["tpm2_load", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv", "-c", "key.ctx"], dir);
    tpm.tool(
        &[
            "tpm2_quote",
            "-c",
            "key.ctx",
            "-l",
            "sha256:0",
            "-m",
            "u.msg",
            "-s",
            "u.sig",
            "-o",
            "u.pcrs",
            "-g",
            "sha256",
        ],
        dir,
    );
    // tpm2_create -u writes TPM2B_PUBLIC, like tpm2_createak.
    let out = warrant(&["--ak", "key.pub", "--message", "u.msg", "--signature", "u.sig", "--pcrs", "u.pcrs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(reason(&out).contains("not a restricted"), "{}", reason(&out));
}
