use std::collections::BTreeMap;

use ciborium::Value;

use super::*;
use crate::appraisal::WarrantContext;
use crate::{AttestationError, DeviceFacts, EnrollmentTrust, P256PublicKey, Pkcs11Report};

const ALL_KINDS: [EvidenceKind; 7] = [
    EvidenceKind::Software,
    EvidenceKind::Pkcs11,
    EvidenceKind::TpmCertify,
    EvidenceKind::TpmQuote,
    EvidenceKind::TpmKey,
    EvidenceKind::YubikeyPiv,
    EvidenceKind::YubikeyKey,
];

fn ctx(binding: &[u8; 32]) -> WarrantContext<'_> {
    // Leaks one closure per call: tests only.
    let binding = *binding;
    WarrantContext {
        grant_id: [3; 16],
        now: 1_800_000_000,
        binding: Box::leak(Box::new(move || Ok(binding))),
        status_list: None,
        previous_status_list: None,
        verifier_nonce: false,
    }
}

#[test]
fn software_evidence_round_trips() {
    assert_eq!(
        EnrollmentEvidence::from_cbor(EnrollmentEvidence::Software.to_cbor()),
        Ok(EnrollmentEvidence::Software)
    );
    assert_eq!(
        WarrantEvidence::from_cbor(WarrantEvidence::Software.to_cbor()),
        Ok(WarrantEvidence::Software)
    );
    // One wire form for both places.
    assert_eq!(EnrollmentEvidence::Software.to_cbor(), WarrantEvidence::Software.to_cbor());
}

fn report() -> Pkcs11Report {
    Pkcs11Report {
        manufacturer: "SoftHSM project".into(),
        model: "SoftHSM v2".into(),
        serial: "1a2b3c".into(),
        firmware: "2.6".into(),
        local: true,
        always_sensitive: true,
        never_extractable: true,
    }
}

#[test]
fn pkcs11_evidence_round_trips_and_says_it_is_self_reported() {
    let enrollment = EnrollmentEvidence::Pkcs11(report());
    let warrant = WarrantEvidence::Pkcs11(report());
    assert_eq!(EnrollmentEvidence::from_cbor(enrollment.to_cbor()), Ok(enrollment.clone()));
    assert_eq!(WarrantEvidence::from_cbor(warrant.to_cbor()), Ok(warrant.clone()));
    assert_eq!(enrollment.to_cbor(), warrant.to_cbor());
    let key = P256PublicKey::from_sec1(&hex_point()).unwrap();
    let challenge = [0; 32];
    let trust = EnrollmentTrust::new(0).unwrap();
    let enrolled = enrollment.appraise(&key, &challenge, &trust).unwrap();
    let facts = warrant.appraise(&key, &enrolled, &ctx(&[0; 32])).unwrap();
    assert_eq!(facts.backend, BackendKind::Pkcs11);
    assert_eq!(facts.properties["self_reported"], crate::AttributeValue::Bool(true));
    assert_eq!(facts.properties["serial"], crate::AttributeValue::Text("1a2b3c".into()));
    // A token that leaves a field blank: the fact is absent, never empty text.
    let blank = Pkcs11Report { serial: String::new(), ..report() };
    let blank_enrolled =
        EnrollmentEvidence::Pkcs11(blank.clone()).appraise(&key, &challenge, &trust).unwrap();
    let facts = WarrantEvidence::Pkcs11(blank).appraise(&key, &blank_enrolled, &ctx(&[0; 32])).unwrap();
    assert!(!facts.properties.contains_key("serial"));
    assert!(facts.properties.contains_key("model"));
}

/// Each warrant carries the token's report again; one that differs from what the authority
/// recorded (another token, a report edited to please a policy) is refused.
#[test]
fn a_pkcs11_report_must_be_the_one_recorded_at_enrollment() {
    let key = P256PublicKey::from_sec1(&hex_point()).unwrap();
    let trust = EnrollmentTrust::new(0).unwrap();
    let enrolled = EnrollmentEvidence::Pkcs11(report()).appraise(&key, &[0; 32], &trust).unwrap();
    let edited = WarrantEvidence::Pkcs11(Pkcs11Report { model: "Luna K7".into(), ..report() });
    assert_eq!(edited.appraise(&key, &enrolled, &ctx(&[0; 32])), Err(AttestationError::Pkcs11ReportChanged));
}

#[test]
fn pkcs11_evidence_is_decoded_strictly() {
    let Value::Map(good) = WarrantEvidence::Pkcs11(report()).to_cbor() else { panic!("unexpected shape") };
    let missing: Vec<_> = good.iter().filter(|(k, _)| k.as_text() != Some("local")).cloned().collect();
    let mut twice = good.clone();
    twice.push(good[1].clone());
    let mut typed = good.clone();
    typed[1].1 = Value::Text("yes".into());
    let mut extra = good.clone();
    extra.push((Value::Text("pin".into()), Value::Text("1234".into())));
    let mut long = good.clone();
    long[2].1 = Value::Text("m".repeat(65));
    for bad in [missing, twice, typed, extra, long] {
        assert!(matches!(
            WarrantEvidence::from_cbor(Value::Map(bad.clone())),
            Err(AttestationError::MalformedEvidence(_))
        ));
        assert!(matches!(
            EnrollmentEvidence::from_cbor(Value::Map(bad)),
            Err(AttestationError::MalformedEvidence(_))
        ));
    }
}

#[test]
fn strict_decoding_rejects_extra_missing_and_unknown() {
    let extra = Value::Map(vec![
        (Value::Text("kind".into()), Value::Text("software".into())),
        (Value::Text("x".into()), Value::Bool(true)),
    ]);
    let dup = Value::Map(vec![
        (Value::Text("kind".into()), Value::Text("software".into())),
        (Value::Text("kind".into()), Value::Text("software".into())),
    ]);
    let unknown = Value::Map(vec![(Value::Text("kind".into()), Value::Text("sgx".into()))]);
    for (name, decode) in decoders() {
        for bad in [extra.clone(), dup.clone(), Value::Map(vec![])] {
            assert!(matches!(decode(bad), Err(AttestationError::MalformedEvidence(_))), "{name}");
        }
        assert_eq!(
            decode(unknown.clone()),
            Err(AttestationError::UnknownEvidenceKind("sgx".into())),
            "{name}"
        );
        assert!(
            matches!(decode(Value::Array(vec![])), Err(AttestationError::MalformedEvidence(_))),
            "{name}"
        );
    }
}

/// A decoder as "decodes to this kind, or says why not".
type Decoder = fn(Value) -> Result<EvidenceKind, AttestationError>;

/// Both places' decoders, so one test runs over both.
fn decoders() -> [(EvidencePlace, Decoder); 2] {
    [
        (EvidencePlace::Enrollment, |v| EnrollmentEvidence::from_cbor(v).map(|e| e.kind())),
        (EvidencePlace::Warrant, |v| WarrantEvidence::from_cbor(v).map(|e| e.kind())),
    ]
}

/// The kind alone decides the place: each kind is read where its place lists it and refused,
/// as misplaced, where it does not, whatever its other entries (here none, which is the
/// whole of a bare kind and too little for the others).
#[test]
fn a_kind_from_the_other_place_is_refused_as_misplaced() {
    for (place, decode) in decoders() {
        for kind in ALL_KINDS {
            let bare = Value::Map(vec![(Value::Text("kind".into()), Value::Text(kind.as_str().into()))]);
            let result = decode(bare);
            if place.kinds().contains(&kind) {
                assert!(
                    matches!(result, Ok(k) if k == kind)
                        || matches!(result, Err(AttestationError::MalformedEvidence(_))),
                    "{kind} in {place}: {result:?}"
                );
            } else {
                assert_eq!(
                    result,
                    Err(AttestationError::EvidenceMisplaced { kind, place }),
                    "{kind} in {place}"
                );
            }
        }
    }
    // Every kind belongs somewhere; only software and PKCS#11 evidence in both places.
    for kind in ALL_KINDS {
        let enrollment = EnrollmentEvidence::KINDS.contains(&kind);
        let warrant = WarrantEvidence::KINDS.contains(&kind);
        assert!(enrollment || warrant, "{kind}");
        assert_eq!(enrollment && warrant, matches!(kind, EvidenceKind::Software | EvidenceKind::Pkcs11));
        assert_eq!(EvidenceKind::parse(kind.as_str()), Some(kind));
    }
}

#[test]
fn the_misplaced_refusal_says_where_the_kind_belongs() {
    let quote = AttestationError::EvidenceMisplaced {
        kind: EvidenceKind::TpmQuote,
        place: EvidencePlace::Enrollment,
    };
    assert_eq!(
        quote.to_string(),
        "tpm-quote evidence belongs in a warrant, not in an enrollment request, which carries \
         software, pkcs11, tpm-certify or yubikey-piv evidence"
    );
    let piv =
        AttestationError::EvidenceMisplaced { kind: EvidenceKind::YubikeyPiv, place: EvidencePlace::Warrant };
    assert_eq!(
        piv.to_string(),
        "yubikey-piv evidence belongs in an enrollment request, not in a warrant, which carries \
         software, pkcs11, tpm-quote, tpm-key or yubikey-key evidence"
    );
}

#[test]
fn evidence_from_another_backend_than_enrolled_is_refused() {
    let key = P256PublicKey::from_sec1(&hex_point()).unwrap();
    let enrolled = DeviceFacts { backend: BackendKind::Tpm, properties: BTreeMap::new() };
    let err = WarrantEvidence::Software.appraise(&key, &enrolled, &ctx(&[0; 32])).unwrap_err();
    assert_eq!(err, AttestationError::BackendMismatch { expected: "tpm".into(), found: "software".into() });
    // A key of another backend claimed without its attestation: refused, not the grant's facts.
    let yubikey = DeviceFacts { backend: BackendKind::Yubikey, properties: BTreeMap::new() };
    assert!(matches!(
        WarrantEvidence::TpmKey.appraise(&key, &yubikey, &ctx(&[0; 32])),
        Err(AttestationError::BackendMismatch { .. })
    ));
    assert!(matches!(
        WarrantEvidence::YubikeyKey.appraise(&key, &enrolled, &ctx(&[0; 32])),
        Err(AttestationError::BackendMismatch { .. })
    ));
}

fn hex_point() -> Vec<u8> {
    // Generator point of P-256, compressed.
    let mut v = vec![0x03];
    v.extend_from_slice(&[
        0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77,
        0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    ]);
    v
}
