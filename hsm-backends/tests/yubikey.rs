//! The YubiKey store against a virtual PIV card behind a real pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.
#![cfg(feature = "yubikey")]

use warrant_test_support::virtual_piv;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use virtual_piv::{lock, VirtualCard, SERIAL};
use warrant_attestation::certificate::Cert;
use warrant_attestation::{
    AttributeValue, BackendKind, EnrollmentEvidence, EnrollmentTrust, WarrantEvidence,
};
use warrant_hsm_backends::yubikey::{
    setup, PinPolicy, PivSlot, SetupOptions, TouchPolicy, YubikeyConfig, YubikeyStore,
};
use warrant_hsm_backends::{Error, KeyName, KeyStore, PinSource, WarrantScope};
use zeroize::Zeroizing;

const PIN: &str = "24681357";
const PUK: &str = "97531864";

fn secret(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

fn pin_file(dir: &Path, pin: &str) -> PathBuf {
    let path = dir.join(format!("pin-{pin}"));
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path).unwrap();
    std::io::Write::write_all(&mut f, pin.as_bytes()).unwrap();
    path
}

fn set_up(card_serial: Option<u32>) {
    let options = SetupOptions {
        serial: card_serial,
        pin: secret("123456"),
        new_pin: Some(secret(PIN)),
        puk: secret("12345678"),
        new_puk: Some(secret(PUK)),
        allow_default_pin_puk: false,
    };
    let report = setup(&options).unwrap();
    assert!(report.management_key_replaced && report.pin_changed && report.puk_changed);
}

fn store(dir: &Path, pin: &str, slots: &[&str]) -> Result<YubikeyStore, Error> {
    YubikeyStore::open(YubikeyConfig {
        serial: Some(SERIAL),
        dir: dir.join("keys"),
        slots: slots.iter().map(|s| PivSlot::parse(s).unwrap()).collect(),
        pin: PinSource::File(pin_file(dir, pin)),
        pin_policy: PinPolicy::Once,
        touch_policy: TouchPolicy::Never,
    })
}

fn verifies(s: &YubikeyStore, key: &KeyName) -> bool {
    let digest = [0x5au8; 32];
    let sig = s.sign_digest(key, &digest).unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(s.public_key(key).unwrap().sec1()).unwrap();
    vk.verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&sig).unwrap()).is_ok()
}

#[test]
fn setup_keys_in_several_slots_signatures_and_attestation() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let card = VirtualCard::insert(&tmp.path().join("card"), &[]);
    // Defaults are refused unless allowed.
    let defaults = SetupOptions {
        serial: None,
        pin: secret("123456"),
        new_pin: None,
        puk: secret("12345678"),
        new_puk: None,
        allow_default_pin_puk: false,
    };
    assert!(matches!(setup(&defaults), Err(Error::Unsupported(m)) if m.contains("default PIN")));
    set_up(None);

    let s = store(tmp.path(), PIN, &["9c", "82"]).unwrap();
    let (a, b) = (KeyName::new("laptop").unwrap(), KeyName::new("ci").unwrap());
    s.create(&a).unwrap();
    s.create(&b).unwrap();
    assert!(
        matches!(s.create(&KeyName::new("third").unwrap()), Err(Error::Unsupported(m)) if m.contains("slot"))
    );
    assert!(verifies(&s, &a) && verifies(&s, &b));
    assert_eq!(s.list().unwrap().len(), 2);

    // yubico-piv-tool, an independent client, sees the same public key in slot 9c.
    let pem = card.piv_tool(&["-a", "attest", "-s", "9c"]);
    let attested = Cert::from_pem_or_der(pem.as_bytes()).unwrap();
    let spki = attested.public_key_der().unwrap();
    assert!(spki.ends_with(s.public_key(&a).unwrap().sec1()), "yubico-piv-tool's 9c key differs");

    // Enrollment evidence verifies against the card's CA, for this key and no other.
    let EnrollmentEvidence::YubikeyPiv(evidence) = s.enrollment_evidence(&a, &[0; 32]).unwrap() else {
        panic!("expected yubikey-piv evidence")
    };
    let root = Cert::from_pem_or_der(&std::fs::read(card.ca_pem()).unwrap()).unwrap();
    let mut trust = EnrollmentTrust::new(1_800_000_000).unwrap();
    trust.piv = trust.piv.with_root(root);
    let facts = evidence.appraise(&s.public_key(&a).unwrap(), &trust.piv, trust.now).unwrap();
    assert_eq!(facts.backend, BackendKind::Yubikey);
    assert_eq!(facts.properties["slot"], AttributeValue::Text("9c".into()));
    assert_eq!(facts.properties["serial"], AttributeValue::Int(i64::from(SERIAL)));
    assert_eq!(facts.properties["pin_policy"], AttributeValue::Text("once".into()));
    assert!(evidence.appraise(&s.public_key(&b).unwrap(), &trust.piv, trust.now).is_err());
    // Against Yubico's roots only, the test card's attestation is refused.
    let yubico_only = EnrollmentTrust::new(1_800_000_000).unwrap();
    assert!(evidence.appraise(&s.public_key(&a).unwrap(), &yubico_only.piv, yubico_only.now).is_err());
    // A warrant carries no attestation: the grant holds what was appraised here.
    let scope = WarrantScope { grant_id: [3; 16], now: 1_800_000_000, status_list: None };
    assert_eq!(s.warrant_evidence(&a, &scope, &[1; 32]).unwrap(), WarrantEvidence::YubikeyKey);
}

#[test]
fn a_wrong_pin_reports_tries_left_then_blocks() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let _card = VirtualCard::insert(&tmp.path().join("card"), &[]);
    set_up(Some(SERIAL));
    for tries in [2u8, 1] {
        match store(tmp.path(), "00000000", &["82"]) {
            Err(Error::YubikeyPinRefused { tries: left }) => assert_eq!(left, tries),
            Err(other) => panic!("expected a refused PIN, got {other}"),
            Ok(_) => panic!("a wrong PIN was accepted"),
        }
    }
    let err = store(tmp.path(), "00000000", &["82"]).err().unwrap();
    assert!(matches!(err, Error::YubikeyPinBlocked | Error::YubikeyPinRefused { tries: 0 }), "{err}");
    let err = store(tmp.path(), PIN, &["82"]).err().unwrap();
    assert!(matches!(err, Error::YubikeyPinBlocked | Error::YubikeyPinRefused { tries: 0 }), "{err}");
    assert!(err.to_string().contains("PUK") || err.to_string().contains("tries"), "{err}");
}

#[test]
fn a_card_pulled_and_reinserted_is_reopened() {
    let _turn = lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut card = VirtualCard::insert(&tmp.path().join("card"), &[]);
    set_up(Some(SERIAL));
    let s = store(tmp.path(), PIN, &["82"]).unwrap();
    let key = KeyName::new("laptop").unwrap();
    s.create(&key).unwrap();
    assert!(verifies(&s, &key));
    card.remove();
    let err = s.sign_digest(&key, &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::YubikeyNotFound(_) | Error::Yubikey { .. }), "{err}");
    card.reinsert();
    assert!(verifies(&s, &key), "the store did not reopen the re-inserted card");
    // Another process uses the card and resets it when done (yubico-piv-tool does): the
    // store's PIN status is gone, and it verifies again by itself.
    card.piv_tool(&["-a", "verify-pin", "-P", PIN]);
    assert!(verifies(&s, &key), "the store did not recover from another process's reset");
}
