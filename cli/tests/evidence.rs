//! `warrant evidence piv`: a real YubiKey 5 attestation and test-CA chains, offline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::process::{Command, Output};

fn evidence(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warrant"))
        .args(["--json", "evidence", "piv"])
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../attestation/tests/data"))
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const REAL: [&str; 4] =
    ["--slot-cert", "yubikey-real/attestation-9a.pem", "--f9-cert", "yubikey-real/f9-intermediate.pem"];

#[test]
fn a_real_yubikey_attestation_is_verified_and_its_facts_printed() {
    let out = evidence(&REAL);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("YSA-2024-03"), "{}", stdout(&out));
    let out = evidence(&[&REAL[..], &["--allow-ysa-2024-03"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["serial"], 28_557_046);
    assert_eq!(facts["firmware"], "5.4.3");
    assert_eq!((&facts["pin_policy"], &facts["touch_policy"]), (&"once".into(), &"never".into()));
    assert_eq!(facts["root"], "CN=Yubico PIV Root CA Serial 263751");
}

#[test]
fn chains_to_unpinned_roots_or_other_devices_are_refused() {
    let test = ["--slot-cert", "piv-test/slot-9c.pem", "--f9-cert", "piv-test/f9.pem"];
    let out = evidence(&test);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("pinned Yubico root"), "{}", stdout(&out));
    let out = evidence(&[&test[..], &["--root", "piv-test/test-root.pem"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let other = [
        "--slot-cert",
        "piv-test/slot-9c.pem",
        "--f9-cert",
        "piv-test/f9-other.pem",
        "--root",
        "piv-test/test-root.pem",
    ];
    let out = evidence(&other);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not from this device's f9 key"), "{}", stdout(&out));
    let out = evidence(&["--slot-cert", "missing.pem", "--f9-cert", "piv-test/f9.pem"]);
    assert_eq!(out.status.code(), Some(2));
}
