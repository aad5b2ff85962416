//! PIV attestation against a real YubiKey 5 attestation (tests/data/yubikey-real) and a test
//! CA made with openssl (tests/data/piv-test: a root, two "Yubico PIV Attestation" f9
//! certificates, and slot certificates with Yubico's extensions).

use super::*;

fn cert(path: &str) -> Cert {
    Cert::from_pem_or_der(&std::fs::read(format!("tests/data/{path}")).unwrap()).unwrap()
}

const NOW: u64 = 1_800_000_000;

fn test_verifier() -> PivVerifier {
    PivVerifier::yubico().unwrap().with_root(cert("piv-test/test-root.pem"))
}

#[test]
fn compiled_in_roots_have_their_pinned_fingerprints() {
    assert_eq!(pinned(&YUBICO_ROOTS).unwrap().len(), 3);
    assert_eq!(pinned(&YUBICO_INTERMEDIATES).unwrap().len(), 2);
    let wrong = [(YUBICO_ROOTS[0].0, YUBICO_ROOTS[1].1)];
    assert!(
        matches!(pinned(&wrong), Err(AttestationError::CertificateInvalid(m)) if m.contains("fingerprint"))
    );
}

#[test]
fn a_real_yubikey_attestation_verifies_against_the_compiled_in_roots() {
    let (slot, f9) = (cert("yubikey-real/attestation-9a.pem"), cert("yubikey-real/f9-intermediate.pem"));
    // Firmware 5.4.3 predates the YSA-2024-03 fix: refused by default ...
    let err = PivVerifier::yubico().unwrap().verify(&slot, &f9, NOW).unwrap_err();
    assert_eq!(err, AttestationError::PivVulnerableFirmware("5.4.3".into()));
    // ... and accepted when the verifier allows it, with every fact read.
    let facts = PivVerifier::yubico().unwrap().allow_ysa_2024_03(true).verify(&slot, &f9, NOW).unwrap();
    assert_eq!(facts.slot, "9a");
    assert_eq!(facts.firmware, (5, 4, 3));
    assert_eq!(facts.serial, 28_557_046);
    assert_eq!((facts.pin_policy, facts.touch_policy), (PinPolicy::Once, TouchPolicy::Never));
    assert_eq!((facts.form_factor.kind(), facts.form_factor.fips()), ("usb-a-keychain", true));
    assert_eq!(facts.root, "CN=Yubico PIV Root CA Serial 263751");
    let device = facts.to_device_facts();
    assert_eq!(device.backend, BackendKind::Yubikey);
    assert_eq!(device.properties["serial"], AttributeValue::Int(28_557_046));
    assert_eq!(device.properties["pin_policy"], AttributeValue::Text("once".into()));
}

#[test]
fn a_slot_certificate_with_another_devices_f9_is_refused() {
    let slot = cert("yubikey-real/attestation-9a.pem");
    let err =
        test_verifier().allow_ysa_2024_03(true).verify(&slot, &cert("piv-test/f9.pem"), NOW).unwrap_err();
    assert!(
        matches!(err, AttestationError::PivAttestationInvalid(ref m) if m.contains("not from this device's f9 key")),
        "{err}"
    );
    let err = test_verifier()
        .verify(&cert("piv-test/slot-9c.pem"), &cert("piv-test/f9-other.pem"), NOW)
        .unwrap_err();
    assert!(
        matches!(err, AttestationError::PivAttestationInvalid(ref m) if m.contains("not from this device's f9 key")),
        "{err}"
    );
}

#[test]
fn an_overwritten_f9_certificate_not_chaining_to_a_pinned_root_is_refused() {
    let (slot, f9) = (cert("piv-test/slot-9c.pem"), cert("piv-test/f9.pem"));
    // Only Yubico's roots: the owner-made f9 certificate leads nowhere.
    let err = PivVerifier::yubico().unwrap().verify(&slot, &f9, NOW).unwrap_err();
    assert!(
        matches!(err, AttestationError::PivAttestationInvalid(ref m) if m.contains("pinned Yubico root")),
        "{err}"
    );
    // With the test root added (a virtual card's CA), the same chain verifies.
    let facts = test_verifier().verify(&slot, &f9, NOW).unwrap();
    assert_eq!((facts.slot.as_str(), facts.firmware, facts.serial), ("9c", (5, 7, 1), 12_345_678));
    assert_eq!((facts.pin_policy, facts.touch_policy), (PinPolicy::Always, TouchPolicy::Always));
    assert_eq!(facts.root, "CN=warrant test PIV root");
}

#[test]
fn tampered_or_unknown_extensions_are_refused() {
    // A changed byte in the real certificate's firmware extension breaks the device's signature.
    let real = cert("yubikey-real/attestation-9a.pem");
    let mut der = real.der().to_vec();
    let at = der.windows(5).position(|w| w == [0x04, 0x03, 0x05, 0x04, 0x03]).unwrap();
    der[at + 3] = 0x07; // claim firmware 5.7.3
    let forged = Cert::from_der(&der).unwrap();
    let f9 = cert("yubikey-real/f9-intermediate.pem");
    let err = PivVerifier::yubico().unwrap().verify(&forged, &f9, NOW).unwrap_err();
    assert!(
        matches!(err, AttestationError::PivAttestationInvalid(ref m) if m.contains("does not verify")),
        "{err}"
    );
    // Correctly signed, but a PIN policy byte that means nothing.
    let err = test_verifier()
        .verify(&cert("piv-test/slot-bad-policy.pem"), &cert("piv-test/f9.pem"), NOW)
        .unwrap_err();
    assert_eq!(err, AttestationError::PivAttestationInvalid("unknown PIN policy 9".into()));
    // Old firmware from the test CA too.
    let err = test_verifier()
        .verify(&cert("piv-test/slot-old-firmware.pem"), &cert("piv-test/f9.pem"), NOW)
        .unwrap_err();
    assert_eq!(err, AttestationError::PivVulnerableFirmware("5.4.3".into()));
}

#[test]
fn certificates_that_are_not_slot_attestations_are_refused() {
    // The f9 certificate presented as a slot certificate: its subject names no slot.
    let f9 = cert("piv-test/f9.pem");
    let root = cert("piv-test/test-root.pem");
    let err = test_verifier().verify(&f9, &root, NOW).unwrap_err();
    assert!(matches!(err, AttestationError::PivAttestationInvalid(_)), "{err}");
}
