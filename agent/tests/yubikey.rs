//! warrantd on a YubiKey (the virtual PIV card behind a real pcscd): setup, keys in several
//! slots, enrollment whose attestation the authority checks, warrants verified offline, a
//! wrong PIN, a card pulled mid-run and re-inserted, and an f9 certificate that does not chain
//! to a trusted root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.
#![cfg(feature = "yubikey")]

mod common;
use warrant_test_support::virtual_piv;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Output};

use virtual_piv::{lock, VirtualCard, SERIAL};

const PIN: &str = "24681357";

fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).unwrap();
    std::io::Write::write_all(&mut f, value.as_bytes()).unwrap();
    path.to_string_lossy().into_owned()
}

use common::{warrant, warrant_ok as ok};

fn set_up_card(dir: &Path) {
    let new_pin = secret_file(dir, "new-pin", PIN);
    let new_puk = secret_file(dir, "new-puk", "97531864");
    // The factory PIN and PUK are not left in place unless allowed.
    let out = warrant(dir, None, &["yubikey", "setup", "--serial", &SERIAL.to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("default PIN"), "{out:?}");
    ok(dir, None, &["yubikey", "setup", "--new-pin-file", &new_pin, "--new-puk-file", &new_puk]);
}

fn config(dir: &Path, card: &VirtualCard, pin: &str) -> String {
    let pin_file = secret_file(dir, &format!("pin-{pin}"), pin);
    common::base_config(dir).replacen(
        "[audit]",
        &format!(
            "[keystore]\nbackend = \"yubikey\"\nserial_number = {SERIAL}\nslots = [\"9c\", \"82\", \"83\"]\npin_file = \"{pin_file}\"\n\n[authority]\nyubikey_roots = [\"{}\"]\n\n[audit]",
            card.ca_pem().display()
        ),
        1,
    )
}

fn start(dir: &Path, config: &str) -> Result<common::Daemon, String> {
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    common::start_command(dir, &path, Command::new(env!("CARGO_BIN_EXE_warrantd")))
}

/// init, keys, challenge, enroll, grant, trust, status: returns the grant command's output.
fn enroll(dir: &Path, socket: &Path) -> Output {
    let s = Some(socket);
    ok(dir, s, &["authority", "init", "--issuer", "yubikey-authority", "--status-uri", "https://a/s/1"]);
    ok(dir, s, &["keys", "create", "laptop"]);
    let challenge = ok(dir, s, &["authority", "challenge", "--principal", "alice"]);
    ok(
        dir,
        s,
        &[
            "enroll",
            "--key",
            "laptop",
            "--principal",
            "alice",
            "--challenge",
            challenge.trim(),
            "--out",
            "enroll.cbor",
        ],
    );
    std::fs::write(
        dir.join("policy.cedar"),
        r#"permit (principal, action, resource) when { context.device.backend == "yubikey"
  && context.device.properties.pin_policy == "once" && context.device.properties.firmware == "5.7.1" };"#,
    )
    .unwrap();
    warrant(
        dir,
        s,
        &[
            "authority",
            "grant",
            "--enrollment",
            "enroll.cbor",
            "--policy",
            "policy.cedar",
            "--out",
            "grant.cbor",
        ],
    )
}

fn sign_and_verify(dir: &Path, socket: &Path) -> Output {
    common::sign_and_verify(dir, socket, "grant.cbor")
}

#[test]
fn a_yubikey_device_enrolls_with_its_attestation_and_signs_warrants_verified_offline() {
    let _turn = lock();
    let tmp = common::workdir();
    let dir = tmp.path();
    let mut card = VirtualCard::insert(&dir.join("card"), &[]);
    set_up_card(dir);
    let d = start(dir, &config(dir, &card, PIN)).unwrap();
    let socket = d.socket.clone();
    let granted = enroll(dir, &socket);
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    ok(dir, Some(&socket), &["keys", "create", "ci"]);
    let keys = ok(dir, Some(&socket), &["--json", "keys", "list"]);
    assert_eq!(keys.matches("\"yubikey\"").count(), 3, "issuance key, laptop and ci on the card: {keys}");
    ok(dir, Some(&socket), &["authority", "trust", "--out", "trust.json"]);
    ok(dir, Some(&socket), &["authority", "publish-status", "--out", "status.cbor"]);

    let out = sign_and_verify(dir, &socket);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let device = &verified["device"];
    assert_eq!(device["backend"], "yubikey", "{verified}");
    assert_eq!(device["properties"]["slot"], "82", "{verified}");
    assert_eq!(device["properties"]["serial"], SERIAL, "{verified}");

    // The card pulled mid-run: a clear error; put back: signing resumes.
    card.remove();
    let out = sign_and_verify(dir, &socket);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("YubiKey"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    card.reinsert();
    let out = sign_and_verify(dir, &socket);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(d);

    // warrantd with a wrong PIN does not start, and says how many tries are left.
    let err = start(dir, &config(dir, &card, "11112222")).err().unwrap();
    assert!(err.contains("tries left"), "{err}");
}

#[test]
fn an_attestation_whose_f9_certificate_does_not_chain_to_a_trusted_root_is_refused() {
    let _turn = lock();
    let tmp = common::workdir();
    let dir = tmp.path();
    let card = VirtualCard::insert(&dir.join("card"), &["--f9-from-unknown-ca"]);
    set_up_card(dir);
    let d = start(dir, &config(dir, &card, PIN)).unwrap();
    let granted = enroll(dir, &d.socket);
    assert_eq!(granted.status.code(), Some(1), "{}", String::from_utf8_lossy(&granted.stderr));
    assert!(
        String::from_utf8_lossy(&granted.stderr).contains("pinned Yubico root"),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
}
