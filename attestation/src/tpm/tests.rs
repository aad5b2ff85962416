//! Verifier tests on synthetic TPM structures, signed in software: every rejection path with
//! its reason. (Structures from a real TPM are tested against swtpm in hsm-backends and agent.)

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::SigningKey;
use rand_core::OsRng;
use sha2::{Digest, Sha256};

use super::attributes as attr;
use super::*;
use crate::{
    AttestationError, AttributeValue, BackendKind, DeviceFacts, EnrollmentEvidence, EvidenceKind,
    EvidencePlace, P256PublicKey, StatusListAnchor, WarrantContext, WarrantEvidence,
};

const AK_ATTRS: u32 = attr::FIXED_TPM
    | attr::FIXED_PARENT
    | attr::SENSITIVE_DATA_ORIGIN
    | attr::USER_WITH_AUTH
    | attr::RESTRICTED
    | attr::SIGN;
const KEY_ATTRS: u32 =
    attr::FIXED_TPM | attr::FIXED_PARENT | attr::SENSITIVE_DATA_ORIGIN | attr::USER_WITH_AUTH | attr::SIGN;

fn sized(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as u16).to_be_bytes());
    out.extend(b);
}

fn ecc_public(attributes: u32, key: &p256::PublicKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = key.to_encoded_point(false);
    let mut out = vec![0x00, 0x23, 0x00, 0x0B];
    out.extend(attributes.to_be_bytes());
    out.extend([0, 0, 0x00, 0x10, 0x00, 0x18, 0x00, 0x0B, 0x00, 0x03, 0x00, 0x10]);
    sized(&mut out, point.x().unwrap());
    sized(&mut out, point.y().unwrap());
    out
}

fn rsa_public(attributes: u32, scheme: u16, key: &rsa::RsaPublicKey) -> Vec<u8> {
    use rsa::traits::PublicKeyParts;
    let mut out = vec![0x00, 0x01, 0x00, 0x0B];
    out.extend(attributes.to_be_bytes());
    out.extend([0, 0, 0x00, 0x10]);
    out.extend(scheme.to_be_bytes());
    out.extend([0x00, 0x0B, 0x08, 0x00, 0, 0, 0, 0]);
    sized(&mut out, &key.n().to_bytes_be());
    out
}

fn attest_head(kind: u16, nonce: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff, 0x54, 0x43, 0x47];
    out.extend(kind.to_be_bytes());
    sized(&mut out, &[0x40, 0x00, 0x00, 0x07]);
    sized(&mut out, nonce);
    out.extend(1234u64.to_be_bytes());
    out.extend(3u32.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.push(1);
    out.extend(0x2019_1023_0016_3636u64.to_be_bytes());
    out
}

/// A quote of SHA-256 PCRs 0-7 with the given values.
fn quote_attest(nonce: &[u8], values: &[[u8; 32]; 8]) -> Vec<u8> {
    let mut out = attest_head(0x8018, nonce);
    out.extend([0, 0, 0, 1, 0x00, 0x0B, 3, 0xff, 0, 0]);
    let digest = Sha256::digest(values.concat());
    sized(&mut out, &digest);
    out
}

fn certify_attest(nonce: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = attest_head(0x8017, nonce);
    sized(&mut out, name);
    sized(&mut out, name);
    out
}

fn ecdsa_sig(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = key.sign_prehash(&Sha256::digest(message)).unwrap();
    let (r, s) = sig.split_bytes();
    let mut out = vec![0x00, 0x18, 0x00, 0x0B];
    sized(&mut out, &r);
    sized(&mut out, &s);
    out
}

fn pcr_values() -> [[u8; 32]; 8] {
    std::array::from_fn(|i| [i as u8; 32])
}

fn pcrs(values: &[[u8; 32]; 8]) -> Vec<PcrValue> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| PcrValue { hash: TpmHash::Sha256, index: i as u8, value: v.to_vec() })
        .collect()
}

struct Ak {
    signing: SigningKey,
    public: TpmPublic,
}

fn ak_with(attributes: u32) -> Ak {
    let signing = SigningKey::random(&mut OsRng);
    let public =
        TpmPublic::parse(&ecc_public(attributes, &p256::PublicKey::from(signing.verifying_key()))).unwrap();
    Ak { signing, public }
}

const NONCE: [u8; 32] = [0x42; 32];

fn trust() -> crate::EnrollmentTrust {
    crate::EnrollmentTrust::new(1_800_000_000).unwrap()
}

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
fn a_valid_quote_verifies_and_yields_its_facts() {
    let ak = ak_with(AK_ATTRS);
    let attest = quote_attest(&NONCE, &pcr_values());
    let quote = verify_quote(
        &ak.public,
        &attest,
        &ecdsa_sig(&ak.signing, &attest),
        pcrs(&pcr_values()),
        Some(&NONCE),
    )
    .unwrap();
    assert_eq!(quote.signer, ak.public.name());
    assert_eq!(quote.clock.clock, 1234);
    let facts = quote_properties(&quote);
    assert_eq!(facts["pcr_sha256_7"], AttributeValue::Text(hex::encode([7u8; 32])));
    assert_eq!(facts["clock_safe"], AttributeValue::Bool(true));
}

#[test]
fn tampered_attest_fields_are_rejected_each_with_its_reason() {
    let ak = ak_with(AK_ATTRS);
    let good = quote_attest(&NONCE, &pcr_values());
    let check = |attest: &[u8]| {
        verify_quote(&ak.public, attest, &ecdsa_sig(&ak.signing, attest), pcrs(&pcr_values()), Some(&NONCE))
    };
    // Re-signed by the AK after the change, so only the field's own check can catch it.
    let mut magic = good.clone();
    magic[0] = 0;
    assert_eq!(check(&magic), Err(TpmError::NotTpmGenerated));
    let mut kind = good.clone();
    kind[5] = 0x17;
    assert!(matches!(check(&kind), Err(TpmError::Malformed(_) | TpmError::WrongAttestType { .. })));
    let mut nonce = good.clone();
    nonce[4 + 2 + 2 + 4 + 2] ^= 1;
    assert_eq!(check(&nonce), Err(TpmError::NonceMismatch));
    let mut digest = good.clone();
    let last = digest.len() - 1;
    digest[last] ^= 1;
    assert_eq!(check(&digest), Err(TpmError::PcrDigestMismatch));
    let mut unknown_type = good.clone();
    unknown_type[5] = 0x14;
    assert!(matches!(check(&unknown_type), Err(TpmError::WrongAttestType { .. })));
    // Not re-signed: any change breaks the signature.
    let sig = ecdsa_sig(&ak.signing, &good);
    let mut clock = good.clone();
    clock[20] ^= 1;
    assert_eq!(
        verify_quote(&ak.public, &clock, &sig, pcrs(&pcr_values()), Some(&NONCE)),
        Err(TpmError::SignatureInvalid)
    );
    // Every truncation is an error, never a panic.
    for len in 0..good.len() {
        assert!(verify_quote(&ak.public, &good[..len], &sig, pcrs(&pcr_values()), None).is_err());
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(TpmAttest::parse(&trailing), Err(TpmError::Malformed(_))));
}

#[test]
fn a_quote_for_another_nonce_or_by_another_key_is_rejected() {
    let ak = ak_with(AK_ATTRS);
    let attest = quote_attest(&[1; 32], &pcr_values());
    let sig = ecdsa_sig(&ak.signing, &attest);
    assert_eq!(
        verify_quote(&ak.public, &attest, &sig, pcrs(&pcr_values()), Some(&NONCE)),
        Err(TpmError::NonceMismatch)
    );
    let other = ak_with(AK_ATTRS);
    assert_eq!(
        verify_quote(&other.public, &attest, &sig, pcrs(&pcr_values()), None),
        Err(TpmError::SignatureInvalid)
    );
}

#[test]
fn a_quote_by_an_unrestricted_key_is_rejected() {
    let key = ak_with(KEY_ATTRS);
    let attest = quote_attest(&NONCE, &pcr_values());
    let sig = ecdsa_sig(&key.signing, &attest);
    assert_eq!(
        verify_quote(&key.public, &attest, &sig, pcrs(&pcr_values()), Some(&NONCE)),
        Err(TpmError::AttestationKeyNotRestricted(KEY_ATTRS))
    );
    // A restricted key that can also decrypt, or is not fixed to its TPM, is no AK either.
    for attrs in [AK_ATTRS | attr::DECRYPT, AK_ATTRS & !attr::FIXED_TPM] {
        assert!(matches!(
            check_attestation_key(&ak_with(attrs).public),
            Err(TpmError::AttestationKeyNotRestricted(_))
        ));
    }
}

#[test]
fn pcr_values_must_match_the_digest_and_the_selection() {
    let ak = ak_with(AK_ATTRS);
    let attest = quote_attest(&NONCE, &pcr_values());
    let sig = ecdsa_sig(&ak.signing, &attest);
    let mut changed = pcrs(&pcr_values());
    changed[7].value[0] ^= 1;
    assert_eq!(
        verify_quote(&ak.public, &attest, &sig, changed, Some(&NONCE)),
        Err(TpmError::PcrDigestMismatch)
    );
    let mut missing = pcrs(&pcr_values());
    missing.pop();
    assert_eq!(verify_quote(&ak.public, &attest, &sig, missing, Some(&NONCE)), Err(TpmError::PcrCoverage));
    let mut reordered = pcrs(&pcr_values());
    reordered.swap(0, 1);
    assert_eq!(verify_quote(&ak.public, &attest, &sig, reordered, Some(&NONCE)), Err(TpmError::PcrCoverage));
}

fn certified_key(attributes: u32) -> (P256PublicKey, TpmPublic) {
    let key = SigningKey::random(&mut OsRng);
    let public =
        TpmPublic::parse(&ecc_public(attributes, &p256::PublicKey::from(key.verifying_key()))).unwrap();
    let TpmPublicKey::P256(p) = &public.key else { panic!("unexpected shape") };
    (p.clone(), public)
}

#[test]
fn certify_checks_name_and_the_certified_key_attributes() {
    let ak = ak_with(AK_ATTRS);
    let (_, key) = certified_key(KEY_ATTRS);
    let attest = certify_attest(&NONCE, &key.name());
    let sig = ecdsa_sig(&ak.signing, &attest);
    verify_certify(&ak.public, &attest, &sig, &key, &NONCE).unwrap();
    assert_eq!(verify_certify(&ak.public, &attest, &sig, &key, &[0; 32]), Err(TpmError::NonceMismatch));
    let (_, other) = certified_key(KEY_ATTRS);
    assert_eq!(
        verify_certify(&ak.public, &attest, &sig, &other, &NONCE),
        Err(TpmError::CertifiedNameMismatch)
    );
    for (attrs, missing) in [
        (KEY_ATTRS & !attr::FIXED_TPM & !attr::FIXED_PARENT, "fixedTPM"),
        (KEY_ATTRS & !attr::SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
        (KEY_ATTRS | attr::RESTRICTED, "restricted and decrypt cleared"),
    ] {
        let (_, weak) = certified_key(attrs);
        let attest = certify_attest(&NONCE, &weak.name());
        let sig = ecdsa_sig(&ak.signing, &attest);
        assert_eq!(
            verify_certify(&ak.public, &attest, &sig, &weak, &NONCE),
            Err(TpmError::CertifiedKeyAttributes(missing))
        );
    }
    // A quote is not a certify.
    let quote = quote_attest(&NONCE, &pcr_values());
    let sig = ecdsa_sig(&ak.signing, &quote);
    assert!(matches!(
        verify_certify(&ak.public, &quote, &sig, &key, &NONCE),
        Err(TpmError::WrongAttestType { .. })
    ));
}

#[test]
fn enrollment_and_warrant_evidence_round_trip_and_appraise() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, key) = certified_key(KEY_ATTRS);
    let attest = certify_attest(&NONCE, &key.name());
    let ek = std::fs::read("tests/data/unrelated-ca.pem").unwrap();
    let ek = crate::certificate::Cert::from_pem_or_der(&ek).unwrap().der().to_vec();
    let certify = EnrollmentEvidence::TpmCertify(TpmCertifyEvidence {
        ak_public: ak.public.bytes.clone(),
        key_public: key.bytes.clone(),
        signature: ecdsa_sig(&ak.signing, &attest),
        attest,
        ek_certificate: ek,
    });
    assert_eq!(EnrollmentEvidence::from_cbor(certify.to_cbor()).unwrap(), certify);
    let enrolled = certify.appraise(&device_key, &NONCE, &trust()).unwrap();
    assert_eq!(enrolled.backend, BackendKind::Tpm);
    assert_eq!(enrolled.properties["ak_name"], AttributeValue::Text(hex::encode(ak.public.name())));
    let (stranger, _) = certified_key(KEY_ATTRS);
    assert_eq!(
        certify.appraise(&stranger, &NONCE, &trust()),
        Err(AttestationError::Tpm(TpmError::CertifiedKeyNotDeviceKey))
    );
    // A valid certify in a warrant is not read as warrant evidence at all.
    assert_eq!(
        WarrantEvidence::from_cbor(certify.to_cbor()),
        Err(AttestationError::EvidenceMisplaced {
            kind: EvidenceKind::TpmCertify,
            place: EvidencePlace::Warrant
        })
    );

    let attest = quote_attest(&NONCE, &pcr_values());
    let quote = WarrantEvidence::TpmQuote(TpmQuoteEvidence {
        signature: ecdsa_sig(&ak.signing, &attest),
        attest,
        pcrs: pcrs(&pcr_values()),
        status_list: None,
    });
    assert_eq!(WarrantEvidence::from_cbor(quote.to_cbor()).unwrap(), quote);
    let facts = quote.appraise(&device_key, &enrolled, &ctx(&NONCE)).unwrap();
    assert_eq!(facts.properties["quoted"], AttributeValue::Bool(true));
    assert_eq!(facts.properties["ak_name"], enrolled.properties["ak_name"]);
    // A valid quote over the challenge in an enrollment request: refused as misplaced, and so
    // is a bare TPM key.
    for misplaced in [&quote, &WarrantEvidence::TpmKey] {
        assert_eq!(
            EnrollmentEvidence::from_cbor(misplaced.to_cbor()),
            Err(AttestationError::EvidenceMisplaced {
                kind: misplaced.kind(),
                place: EvidencePlace::Enrollment
            })
        );
    }
    // The grant must record an AK; a grant for another backend is refused.
    let no_ak = DeviceFacts { backend: BackendKind::Tpm, properties: Default::default() };
    assert_eq!(
        quote.appraise(&device_key, &no_ak, &ctx(&NONCE)),
        Err(AttestationError::Tpm(TpmError::NoEnrolledAttestationKey))
    );
    assert!(matches!(
        quote.appraise(&device_key, &DeviceFacts::software(), &ctx(&NONCE)),
        Err(AttestationError::BackendMismatch { .. })
    ));
    let unquoted = WarrantEvidence::TpmKey.appraise(&device_key, &enrolled, &ctx(&NONCE)).unwrap();
    assert_eq!(unquoted.properties["quoted"], AttributeValue::Bool(false));
}

#[test]
fn tpm_evidence_is_decoded_strictly() {
    use ciborium::Value;
    let quote = TpmQuoteEvidence {
        attest: vec![1],
        signature: vec![2],
        pcrs: pcrs(&pcr_values()),
        status_list: Some([7; 32]),
    };
    let Value::Map(good) = WarrantEvidence::TpmQuote(quote.clone()).to_cbor() else {
        panic!("unexpected shape")
    };
    assert_eq!(WarrantEvidence::from_cbor(Value::Map(good.clone())), Ok(WarrantEvidence::TpmQuote(quote)));
    let bad_pcr = |item: Value| {
        let mut m = good.clone();
        let at = m.iter().position(|(k, _)| k.as_text() == Some("pcrs")).unwrap();
        m[at].1 = Value::Array(vec![item]);
        WarrantEvidence::from_cbor(Value::Map(m))
    };
    for item in [
        Value::Array(vec![Value::Text("md5".into()), Value::Integer(0.into()), Value::Bytes(vec![0; 16])]),
        Value::Array(vec![
            Value::Text("sha256".into()),
            Value::Integer(32.into()),
            Value::Bytes(vec![0; 32]),
        ]),
        Value::Array(vec![Value::Text("sha256".into()), Value::Integer(1.into()), Value::Bytes(vec![0; 20])]),
        Value::Array(vec![Value::Text("sha256".into()), Value::Integer(1.into())]),
        Value::Text("sha256:1".into()),
    ] {
        assert!(matches!(bad_pcr(item), Err(AttestationError::MalformedEvidence(_))));
    }
    let mut extra = good.clone();
    extra.push((Value::Text("pin".into()), Value::Bytes(vec![])));
    assert!(matches!(
        WarrantEvidence::from_cbor(Value::Map(extra)),
        Err(AttestationError::MalformedEvidence(_))
    ));
    let missing: Vec<_> = good.iter().filter(|(k, _)| k.as_text() != Some("attest")).cloned().collect();
    assert!(matches!(
        WarrantEvidence::from_cbor(Value::Map(missing)),
        Err(AttestationError::MalformedEvidence(_))
    ));
    // The v1 cached quote's predictable time bucket is no longer an entry; a status list digest
    // must be exactly 32 bytes, once.
    let without_list: Vec<_> =
        good.iter().filter(|(k, _)| k.as_text() != Some("status_list")).cloned().collect();
    let mut bucket = without_list.clone();
    bucket.push((Value::Text("bucket".into()), Value::Integer(1_800_000_000.into())));
    let mut short = without_list.clone();
    short.push((Value::Text("status_list".into()), Value::Bytes(vec![7; 31])));
    let mut typed = without_list.clone();
    typed.push((Value::Text("status_list".into()), Value::Integer(7.into())));
    let mut twice = good.clone();
    twice.push((Value::Text("status_list".into()), Value::Bytes(vec![7; 32])));
    for (case, bad) in [("bucket", bucket), ("short", short), ("typed", typed), ("twice", twice)] {
        let err = WarrantEvidence::from_cbor(Value::Map(bad)).unwrap_err();
        let AttestationError::MalformedEvidence(reason) = &err else { panic!("{case}: {err:?}") };
        let expected = if case == "bucket" { "unexpected entry \"bucket\"" } else { "\"status_list\" must" };
        assert!(reason.contains(expected), "{case}: {reason}");
    }
    let mut huge = good.clone();
    let at = huge.iter().position(|(k, _)| k.as_text() == Some("attest")).unwrap();
    huge[at].1 = Value::Bytes(vec![0; 2000]);
    assert!(matches!(
        WarrantEvidence::from_cbor(Value::Map(huge)),
        Err(AttestationError::MalformedEvidence(_))
    ));
}

#[test]
fn rsa_attestation_keys_verify_with_pkcs1_and_pss() {
    use rsa::traits::SignatureScheme;
    let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let attest = quote_attest(&NONCE, &pcr_values());
    let digest = Sha256::digest(&attest);
    for (scheme, sig) in [
        (0x0014u16, rsa::Pkcs1v15Sign::new::<Sha256>().sign(None::<&mut OsRng>, &private, &digest).unwrap()),
        (0x0016u16, rsa::Pss::new::<Sha256>().sign(Some(&mut OsRng), &private, &digest).unwrap()),
    ] {
        let ak = TpmPublic::parse(&rsa_public(AK_ATTRS, scheme, &public)).unwrap();
        assert_eq!(ak.key_type(), "rsa-2048");
        let mut signature = scheme.to_be_bytes().to_vec();
        signature.extend([0x00, 0x0B]);
        sized(&mut signature, &sig);
        verify_quote(&ak, &attest, &signature, pcrs(&pcr_values()), Some(&NONCE)).unwrap();
        let mut flipped = signature.clone();
        flipped[10] ^= 1;
        assert_eq!(
            verify_quote(&ak, &attest, &flipped, pcrs(&pcr_values()), Some(&NONCE)),
            Err(TpmError::SignatureInvalid)
        );
        // An ECDSA signature cannot come from an RSA key.
        let ecdsa = ecdsa_sig(&SigningKey::random(&mut OsRng), &attest);
        assert!(matches!(
            verify_quote(&ak, &attest, &ecdsa, pcrs(&pcr_values()), None),
            Err(TpmError::SignatureKeyMismatch { .. })
        ));
    }
}

#[test]
fn pcr_files_in_both_tpm2_tools_formats() {
    let values = pcr_values();
    let selection = vec![PcrBank { hash: TpmHash::Sha256, pcrs: (0..8).collect() }];
    let concatenated = values.concat();
    assert_eq!(read_pcr_file(&concatenated, PcrFileFormat::Values, &selection).unwrap(), pcrs(&values));
    assert!(read_pcr_file(&concatenated[1..], PcrFileFormat::Values, &selection).is_err());
    // serialized: TPML_PCR_SELECTION (LE, 16 slots of 8 bytes), u32 1, one TPML_DIGEST of 8.
    let mut file = 1u32.to_le_bytes().to_vec();
    file.extend([0x0B, 0x00, 3, 0xff, 0, 0, 0, 0]);
    file.extend([0u8; 15 * 8]);
    file.extend(1u32.to_le_bytes());
    file.extend(8u32.to_le_bytes());
    for v in &values {
        file.extend(32u16.to_le_bytes());
        file.extend(v);
        file.extend([0u8; 32]);
    }
    assert_eq!(read_pcr_file(&file, PcrFileFormat::Serialized, &selection).unwrap(), pcrs(&values));
    let other = vec![PcrBank { hash: TpmHash::Sha256, pcrs: (0..7).collect() }];
    assert!(matches!(read_pcr_file(&file, PcrFileFormat::Serialized, &other), Err(TpmError::Malformed(_))));
    for len in 0..file.len() {
        assert!(read_pcr_file(&file[..len], PcrFileFormat::Serialized, &selection).is_err());
    }
    let mut lying = file.clone();
    lying[132..136].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(read_pcr_file(&lying, PcrFileFormat::Serialized, &selection).is_err());
}

#[test]
fn pcr_selections_parse_as_tpm2_tools_writes_them() {
    assert_eq!(
        parse_pcr_selection("sha256:7,0+sha1:1").unwrap(),
        vec![(TpmHash::Sha256, vec![0, 7]), (TpmHash::Sha1, vec![1])]
    );
    for bad in ["", "sha256", "md5:1", "sha256:24", "sha256:1,1", "sha256:1+sha256:2", "sha256:x"] {
        assert!(parse_pcr_selection(bad).is_err(), "{bad}");
    }
}

/// A TPM-enrolled device: its key, and the facts its grant records (with the AK).
fn enrolled_device(ak: &Ak) -> (P256PublicKey, DeviceFacts) {
    let (device_key, key) = certified_key(KEY_ATTRS);
    let attest = certify_attest(&NONCE, &key.name());
    let ek = std::fs::read("tests/data/unrelated-ca.pem").unwrap();
    let certify = EnrollmentEvidence::TpmCertify(TpmCertifyEvidence {
        ak_public: ak.public.bytes.clone(),
        key_public: key.bytes.clone(),
        signature: ecdsa_sig(&ak.signing, &attest),
        attest,
        ek_certificate: crate::certificate::Cert::from_pem_or_der(&ek).unwrap().der().to_vec(),
    });
    let enrolled = certify.appraise(&device_key, &NONCE, &trust()).unwrap();
    (device_key, enrolled)
}

/// A quote over `nonce`, cached (bound to `status_list`) or not.
fn quote_over(ak: &Ak, nonce: &[u8; 32], status_list: Option<[u8; 32]>) -> WarrantEvidence {
    let attest = quote_attest(nonce, &pcr_values());
    WarrantEvidence::TpmQuote(TpmQuoteEvidence {
        signature: ecdsa_sig(&ak.signing, &attest),
        attest,
        pcrs: pcrs(&pcr_values()),
        status_list,
    })
}

/// What the verifier holds: list B (iat now - 100), which replaced list A (iat now - 4000).
const LIST_A: [u8; 32] = [0xa1; 32];
const LIST_B: [u8; 32] = [0xb2; 32];

fn holding_b_after_a() -> WarrantContext<'static> {
    let mut context = ctx(&NONCE); // grant [3; 16], now 1_800_000_000
    context.status_list = Some(StatusListAnchor { digest: LIST_B, issued_at: context.now - 100 });
    context.previous_status_list = Some(StatusListAnchor { digest: LIST_A, issued_at: context.now - 4000 });
    context
}

fn cached(ak: &Ak, grant: [u8; 16], list: [u8; 32]) -> WarrantEvidence {
    quote_over(ak, &cached_quote_nonce(&grant, &list), Some(list))
}

#[test]
fn a_cached_quote_bound_to_the_held_list_reports_its_age_from_the_lists_iat() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, enrolled) = enrolled_device(&ak);
    let context = holding_b_after_a();
    let quote = cached(&ak, [3; 16], LIST_B);
    assert_eq!(WarrantEvidence::from_cbor(quote.to_cbor()).unwrap(), quote);
    let facts = quote.appraise(&device_key, &enrolled, &context).unwrap();
    assert_eq!(facts.properties["quote_cached"], AttributeValue::Bool(true));
    assert_eq!(facts.properties["quote_age"], AttributeValue::Int(100));
}

#[test]
fn a_cached_quote_bound_to_the_previous_list_is_accepted_and_aged_from_that_list() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, enrolled) = enrolled_device(&ak);
    let facts = cached(&ak, [3; 16], LIST_A).appraise(&device_key, &enrolled, &holding_b_after_a()).unwrap();
    assert_eq!(facts.properties["quote_cached"], AttributeValue::Bool(true));
    assert_eq!(facts.properties["quote_age"], AttributeValue::Int(4000));
}

#[test]
fn a_cached_quote_bound_to_a_list_the_verifier_does_not_hold_is_not_fresh() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, enrolled) = enrolled_device(&ak);
    let refused = Err(AttestationError::Tpm(TpmError::QuoteNotFresh));
    // A list older than the previous one (replaced twice), or one the device made up.
    for list in [[0x90; 32], [0xff; 32]] {
        assert_eq!(
            cached(&ak, [3; 16], list).appraise(&device_key, &enrolled, &holding_b_after_a()),
            refused
        );
    }
    // A verifier holding no list for the grant holds nothing a cached quote can be bound to.
    assert_eq!(cached(&ak, [3; 16], LIST_B).appraise(&device_key, &enrolled, &ctx(&NONCE)), refused);
    let reason = TpmError::QuoteNotFresh.to_string();
    assert!(reason.contains("does not hold") && reason.contains("newest status list"), "{reason}");
}

#[test]
fn a_cached_quote_is_bound_to_its_grant_and_its_list() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, enrolled) = enrolled_device(&ak);
    let context = holding_b_after_a();
    // Another grant's cached quote does not verify.
    assert_eq!(
        cached(&ak, [4; 16], LIST_B).appraise(&device_key, &enrolled, &context),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    );
    // A quote made for list A cannot be relabelled as one for list B.
    let WarrantEvidence::TpmQuote(mut moved) = cached(&ak, [3; 16], LIST_A) else {
        panic!("unexpected shape")
    };
    moved.status_list = Some(LIST_B);
    assert_eq!(
        WarrantEvidence::TpmQuote(moved).appraise(&device_key, &enrolled, &context),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    );
    // The v1 nonce (grant and a predictable time bucket) is not accepted for any list.
    let predictable = {
        let mut h = Sha256::new();
        h.update(b"warrant tpm cached quote v1\0");
        h.update([3u8; 16]);
        h.update(context.now.to_be_bytes());
        <[u8; 32]>::from(h.finalize())
    };
    assert_eq!(
        quote_over(&ak, &predictable, Some(LIST_B)).appraise(&device_key, &enrolled, &context),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    );
}

#[test]
fn a_per_warrant_quote_has_an_age_only_with_a_verifier_nonce() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, enrolled) = enrolled_device(&ak);
    let mut context = holding_b_after_a();
    let facts = quote_over(&ak, &NONCE, None).appraise(&device_key, &enrolled, &context).unwrap();
    assert_eq!(facts.properties["quote_cached"], AttributeValue::Bool(false));
    assert_eq!(facts.properties["quote_binding"], AttributeValue::Text("warrant".into()));
    // The device may have foreseen the request and quoted it long before: no age is claimed.
    assert!(!facts.properties.contains_key("quote_age"));
    context.verifier_nonce = true;
    let facts = quote_over(&ak, &NONCE, None).appraise(&device_key, &enrolled, &context).unwrap();
    assert_eq!(facts.properties["quote_binding"], AttributeValue::Text("verifier-nonce".into()));
    assert_eq!(facts.properties["quote_age"], AttributeValue::Int(0));
    context.verifier_nonce = false;
    // A cached quote's nonce is not a warrant binding, and a quote for the warrant cannot claim
    // a list.
    assert_eq!(
        quote_over(&ak, &cached_quote_nonce(&[3; 16], &LIST_B), None).appraise(
            &device_key,
            &enrolled,
            &context
        ),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    );
    assert_eq!(
        quote_over(&ak, &NONCE, Some(LIST_B)).appraise(&device_key, &enrolled, &context),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    );
}

/// `public` with its nameAlg replaced by SHA-1.
fn named_with_sha1(public: &TpmPublic) -> TpmPublic {
    let mut bytes = public.bytes.clone();
    bytes[2..4].copy_from_slice(&TpmHash::Sha1.id().to_be_bytes());
    TpmPublic::parse(&bytes).unwrap()
}

#[test]
fn sha1_names_are_refused_for_the_attestation_key_and_the_certified_key() {
    let ak = ak_with(AK_ATTRS);
    let (device_key, key) = certified_key(KEY_ATTRS);
    // An AK Named with SHA-1: refused on its own (as at the credential challenge) and in a certify.
    let weak_ak = named_with_sha1(&ak.public);
    assert_eq!(check_attestation_key(&weak_ak), Err(TpmError::WeakNameAlgorithm("attestation key")));
    let attest = certify_attest(&NONCE, &key.name());
    let sig = ecdsa_sig(&ak.signing, &attest);
    assert_eq!(
        verify_certify(&weak_ak, &attest, &sig, &key, &NONCE),
        Err(TpmError::WeakNameAlgorithm("attestation key"))
    );
    // A key Named with SHA-1, certified by a good AK: refused, at enrollment too.
    let weak_key = named_with_sha1(&key);
    let attest = certify_attest(&NONCE, &weak_key.name());
    let sig = ecdsa_sig(&ak.signing, &attest);
    assert_eq!(
        verify_certify(&ak.public, &attest, &sig, &weak_key, &NONCE),
        Err(TpmError::WeakNameAlgorithm("certified key"))
    );
    let enrollment = EnrollmentEvidence::TpmCertify(TpmCertifyEvidence {
        ak_public: ak.public.bytes.clone(),
        key_public: weak_key.bytes.clone(),
        signature: sig,
        attest,
        ek_certificate: crate::certificate::Cert::from_pem_or_der(
            &std::fs::read("tests/data/ek-test/ek.pem").unwrap(),
        )
        .unwrap()
        .der()
        .to_vec(),
    });
    assert_eq!(
        enrollment.appraise(&device_key, &NONCE, &trust()),
        Err(AttestationError::Tpm(TpmError::WeakNameAlgorithm("certified key")))
    );
}
