//! PIV attestation against real YubiKey attestations (tests/data/yubikey-real: 5.4.3,
//! yubikey4-real: 4.3.7, yubikey-574-real: 5.7.4), a real U2F attestation certificate
//! (yubico-u2f-real), and test CAs made with openssl (tests/data/piv-test: a root, two
//! "Yubico PIV Attestation" f9 certificates, and slot certificates with Yubico's extensions;
//! piv-profile: certificates outside the f9 and slot profiles).

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
    assert_eq!(facts.serial, Some(28_557_046));
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
    assert_eq!((facts.slot.as_str(), facts.firmware, facts.serial), ("9c", (5, 7, 1), Some(12_345_678)));
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
    assert_eq!(err, AttestationError::PivSlotSubject("CN=Yubico PIV Attestation".into()));
    // Nor is any other certificate whose subject is not exactly the slot attestation's.
    let err = test_verifier().verify(&cert("yubico-u2f-real/u2f-ee.pem"), &f9, NOW).unwrap_err();
    assert_eq!(err, AttestationError::PivSlotSubject("CN=Yubico U2F EE Serial 1432534688".into()));
}

fn profile_verifier() -> PivVerifier {
    PivVerifier::yubico().unwrap().with_root(cert("piv-profile/root.pem"))
}

#[test]
fn a_fido_u2f_attestation_certificate_under_a_pinned_root_is_not_an_f9_certificate() {
    // A genuine U2F attestation certificate, issued directly by the pinned U2F root ...
    let u2f = cert("yubico-u2f-real/u2f-ee.pem");
    let roots = pinned(&YUBICO_ROOTS).unwrap();
    let root = chain_to_anchor(&u2f, &[], &roots, NOW).unwrap();
    assert_eq!(root.subject(), "CN=Yubico U2F Root CA Serial 457200631");
    // ... whose batch key could sign a slot certificate: refused as f9 whatever it signed.
    let slot = cert("yubikey4-real/attestation-9a.pem");
    let err = PivVerifier::yubico().unwrap().allow_ysa_2024_03(true).verify(&slot, &u2f, NOW).unwrap_err();
    assert_eq!(err, AttestationError::PivF9IsFidoCertificate("1.3.6.1.4.1.45724".into()));
}

#[test]
fn certificates_outside_the_f9_profile_are_refused_in_f9_position() {
    for (f9, expected) in [
        ("f9-not-ca", AttestationError::PivF9NotCa("cA is false".into())),
        ("f9-key-usage", AttestationError::PivF9KeyUsage),
        ("f9-wrong-cn", AttestationError::PivF9Subject("CN=Yubico U2F EE Serial 1432534688".into())),
        ("f9-fido", AttestationError::PivF9IsFidoCertificate("1.3.6.1.4.1.45724".into())),
    ] {
        let f9_cert = cert(&format!("piv-profile/{f9}.pem"));
        let slot = cert(&format!("piv-profile/slot-under-{f9}.pem"));
        // Every link verifies: only the profile refuses.
        slot.check_issued_by(&f9_cert).unwrap();
        f9_cert.check_issued_by(&cert("piv-profile/root.pem")).unwrap();
        assert_eq!(profile_verifier().verify(&slot, &f9_cert, NOW), Err(expected), "{f9}");
    }
}

#[test]
fn genuine_f9_certificates_fit_the_profile_with_or_without_basic_constraints() {
    // 5.4.3 (CA:TRUE, pathlen 0), 4.3.7 (no basicConstraints, under the U2F root), 5.7.4
    // ("CN=YubiKey PIV Attestation"), and the test CAs' f9 certificates.
    for f9 in [
        "yubikey-real/f9-intermediate.pem",
        "yubikey4-real/f9-intermediate.pem",
        "yubikey-574-real/f9.pem",
        "piv-test/f9.pem",
        "piv-profile/f9.pem",
    ] {
        profile::check_f9(&cert(f9)).unwrap_or_else(|e| panic!("{f9}: {e}"));
    }
}

#[test]
fn a_yubikey_4_attestation_without_a_serial_verifies_with_the_serial_absent() {
    let (slot, f9) = (cert("yubikey4-real/attestation-9a.pem"), cert("yubikey4-real/f9-intermediate.pem"));
    let err = PivVerifier::yubico().unwrap().verify(&slot, &f9, NOW).unwrap_err();
    assert_eq!(err, AttestationError::PivVulnerableFirmware("4.3.7".into()));
    let facts = PivVerifier::yubico().unwrap().allow_ysa_2024_03(true).verify(&slot, &f9, NOW).unwrap();
    assert_eq!((facts.slot.as_str(), facts.firmware, facts.serial), ("9a", (4, 3, 7), None));
    assert_eq!((facts.pin_policy, facts.touch_policy), (PinPolicy::Once, TouchPolicy::Never));
    assert_eq!(facts.root, "CN=Yubico U2F Root CA Serial 457200631");
    let device = facts.to_device_facts();
    assert!(!device.properties.contains_key("serial"));
    assert_eq!(device.properties["firmware"], AttributeValue::Text("4.3.7".into()));
    // The same from the test CA, on firmware without the side channel.
    let facts = profile_verifier()
        .verify(&cert("piv-profile/slot-no-serial.pem"), &cert("piv-profile/f9.pem"), NOW)
        .unwrap();
    assert_eq!((facts.slot.as_str(), facts.firmware, facts.serial), ("9c", (5, 7, 1), None));
    assert!(!facts.to_device_facts().properties.contains_key("serial"));
}

#[test]
fn a_5_7_4_attestation_passes_the_profiles_and_the_four_link_chain() {
    // Its key is P-384, which warrant does not use: refused only there, after every other check.
    let (slot, f9) = (cert("yubikey-574-real/attestation-9a.pem"), cert("yubikey-574-real/f9.pem"));
    let err = PivVerifier::yubico().unwrap().verify(&slot, &f9, NOW).unwrap_err();
    assert_eq!(err, AttestationError::PivAttestationInvalid("the attested key is not a P-256 key".into()));
}

#[test]
fn a_slot_certificate_that_is_a_ca_is_refused() {
    let err = profile_verifier()
        .verify(&cert("piv-profile/slot-ca.pem"), &cert("piv-profile/f9.pem"), NOW)
        .unwrap_err();
    assert_eq!(err, AttestationError::PivSlotIsCa);
}
