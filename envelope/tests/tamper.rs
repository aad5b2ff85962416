//! The tamper suite: every way a warrant, its grant or a status list can be wrong, each
//! asserting the exact rejection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use ciborium::Value;
use common::*;
use coset::iana;
use warrant_envelope::{device::*, issue::*, verify::*, *};

fn verify(_f: &Fixture, v: &Verifier, warrant: &[u8]) -> Result<VerifiedWarrant, Error> {
    v.verify(warrant, &expected(), &request(), None)
}

fn rejection(f: &Fixture, warrant: &[u8]) -> Error {
    verify(f, &f.verifier(), warrant).expect_err("must be rejected")
}

/// Changes a value so that it differs but keeps its type (bytes: the last byte, so a
/// signature inside stays structurally valid).
fn mutate(v: &Value) -> Value {
    match v {
        Value::Integer(i) => Value::Integer((i128::from(*i) + 1).try_into().unwrap()),
        Value::Text(t) => Value::Text(format!("{t}x")),
        Value::Bytes(b) => {
            let mut b = b.clone();
            *b.last_mut().unwrap() ^= 0x01;
            Value::Bytes(b)
        }
        Value::Bool(b) => Value::Bool(!b),
        Value::Map(m) if m.is_empty() => Value::Map(vec![(Value::Text("x".into()), Value::Bool(true))]),
        Value::Map(m) => {
            let mut m = m.clone();
            m[0].1 = mutate(&m[0].1);
            Value::Map(m)
        }
        Value::Array(a) => {
            let mut a = a.clone();
            a[0] = mutate(&a[0]);
            Value::Array(a)
        }
        other => panic!("no mutation for {other:?}"),
    }
}

fn claims_of(payload: &[u8]) -> Vec<(Value, Value)> {
    match decode(payload) {
        Value::Map(m) => m,
        _ => panic!("claims are a map"),
    }
}

#[test]
fn the_untampered_warrant_is_accepted() {
    let f = Fixture::new();
    let v = verify(&f, &f.verifier(), &f.warrant()).unwrap();
    assert_eq!(
        (v.principal.as_str(), v.action.as_str(), v.resource.as_str()),
        ("alice", "deploy", "prod/api")
    );
    assert_eq!(v.groups, vec!["deployers".to_string()]);
    assert_eq!(v.status_sequence, 1);
}

#[test]
fn every_warrant_claim_mutated_breaks_the_signature() {
    let f = Fixture::new();
    let mut claims = f.warrant_claims();
    claims.nonce = Some(vec![7; 16]);
    let warrant = claims.sign(&f.device).unwrap();
    let original = parts(&warrant);
    let entries = claims_of(&original.payload);
    assert_eq!(entries.len(), 12, "every warrant claim is covered");
    for i in 0..entries.len() {
        let mut altered = entries.clone();
        altered[i].1 = mutate(&altered[i].1);
        let mut p = parts(&warrant);
        p.payload = encode(&Value::Map(altered));
        let err = rejection(&f, &assemble(p));
        let key = format!("{:?}", entries[i].0);
        if key.contains("grant") {
            // The last byte of the embedded grant is in the authority's signature.
            assert!(matches!(err, Error::GrantSignatureInvalid), "{key}: {err:?}");
        } else if key.contains("evidence") {
            assert!(matches!(err, Error::Evidence(_)), "{key}: {err:?}");
        } else {
            assert!(matches!(err, Error::WarrantSignatureInvalid), "{key}: {err:?}");
        }
    }
}

#[test]
fn every_grant_claim_mutated_breaks_the_authority_signature() {
    let f = Fixture::new();
    let original = parts(&f.grant);
    let entries = claims_of(&original.payload);
    assert_eq!(entries.len(), 12, "every grant claim is covered");
    for i in 0..entries.len() {
        let mut altered = entries.clone();
        altered[i].1 = mutate(&altered[i].1);
        let mut p = parts(&f.grant);
        p.payload = encode(&Value::Map(altered));
        let mut claims = f.warrant_claims();
        claims.grant = assemble(p);
        // The device signs the altered grant in: only the authority's signature can object.
        let err = rejection(&f, &claims.sign(&f.device).unwrap());
        let key = format!("{:?}", entries[i].0);
        match err {
            Error::GrantSignatureInvalid => {}
            // Strict decoding refuses some mutations before any signature is checked: a
            // key coordinate off the curve, an unknown backend name.
            Error::InvalidClaim { claim, .. } if ["cnf", "kty", "backend"].contains(&claim) => {}
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn every_status_list_claim_mutated_breaks_the_signature() {
    let f = Fixture::new();
    let original = parts(&f.status);
    let entries = claims_of(&original.payload);
    assert_eq!(entries.len(), 8, "every status list claim is covered");
    for i in 0..entries.len() {
        let mut altered = entries.clone();
        altered[i].1 = mutate(&altered[i].1);
        let mut p = parts(&f.status);
        p.payload = encode(&Value::Map(altered));
        let v = f.builder().build().unwrap();
        let err = v.install_status_list(&assemble(p)).unwrap_err();
        let key = format!("{:?}", entries[i].0);
        match err {
            Error::StatusListSignatureInvalid => {}
            // The compressed list with a flipped byte no longer inflates, or "bits" is not 1.
            Error::InvalidClaim { claim, .. } if ["lst", "bits"].contains(&claim) => {}
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn every_enrollment_claim_mutated_breaks_proof_of_possession() {
    let f = Fixture::new();
    let claims = EnrollmentClaims {
        principal: "alice".into(),
        device_key: f.device.public_key().clone(),
        challenge: [3; CHALLENGE_LEN],
        issued_at: NOW,
        evidence: warrant_attestation::EnrollmentEvidence::Software,
    };
    let request = claims.sign(&f.device).unwrap();
    assert!(verify_enrollment(&request).is_ok());
    let entries = claims_of(&parts(&request).payload);
    for i in 0..entries.len() {
        let mut altered = entries.clone();
        altered[i].1 = mutate(&altered[i].1);
        let mut p = parts(&request);
        p.payload = encode(&Value::Map(altered));
        match verify_enrollment(&assemble(p)).unwrap_err() {
            Error::EnrollmentSignatureInvalid => {}
            Error::InvalidClaim { claim: "cnf" | "kty", .. } | Error::Evidence(_) => {}
            other => panic!("{:?}: {other:?}", entries[i].0),
        }
    }
}

/// `object`'s payload with its `"evidence"` entry replaced by `evidence`, re-signed by `key`:
/// what an attacker holding a valid device key can make.
fn with_evidence_signed(object: &[u8], evidence: Value, key: &TestKey) -> Vec<u8> {
    let mut p = parts(object);
    let mut entries = claims_of(&p.payload);
    let entry = entries.iter_mut().find(|(k, _)| k.as_text() == Some("evidence")).unwrap();
    entry.1 = evidence;
    p.payload = encode(&Value::Map(entries));
    resign(p, key)
}

/// Enrollment-only evidence (a TPM certify, a YubiKey slot attestation) in a warrant that the
/// device key properly signed: refused when the warrant is decoded, as misplaced, before
/// anything reads it; `inspect` does not show it as a warrant either.
#[test]
fn enrollment_evidence_in_a_signed_warrant_is_refused_as_misplaced() {
    use warrant_attestation::{piv::PivEvidence, tpm::TpmCertifyEvidence, EvidencePlace};
    let f = Fixture::new();
    let certify = EnrollmentEvidence::TpmCertify(TpmCertifyEvidence {
        ak_public: vec![1; 8],
        key_public: vec![2; 8],
        attest: vec![3; 8],
        signature: vec![4; 8],
        ek_certificate: vec![5; 8],
    });
    let piv = EnrollmentEvidence::YubikeyPiv(PivEvidence {
        slot_certificate: vec![6; 8],
        f9_certificate: vec![7; 8],
    });
    for evidence in [certify, piv] {
        let forged = with_evidence_signed(&f.warrant(), evidence.to_cbor(), &f.device);
        let misplaced =
            AttestationError::EvidenceMisplaced { kind: evidence.kind(), place: EvidencePlace::Warrant };
        let err = rejection(&f, &forged);
        assert!(matches!(&err, Error::Evidence(e) if *e == misplaced), "{err:?}");
        assert_eq!((err.code(), err.kind()), ("evidence_rejected", ErrorKind::Evidence));
        assert!(matches!(inspect(&forged), Err(Error::Evidence(e)) if e == misplaced));
    }
    // The same forgery with warrant evidence is accepted: the kind alone made the difference.
    let fine = with_evidence_signed(&f.warrant(), WarrantEvidence::Software.to_cbor(), &f.device);
    assert!(verify(&f, &f.verifier(), &fine).is_ok());
}

/// Warrant-only evidence (a TPM quote, a bare TPM or YubiKey key) in an enrollment request
/// that its key properly signed: refused as misplaced, not appraised.
#[test]
fn warrant_evidence_in_a_signed_enrollment_is_refused_as_misplaced() {
    use warrant_attestation::{tpm::TpmQuoteEvidence, EvidencePlace};
    let f = Fixture::new();
    let claims = EnrollmentClaims {
        principal: "alice".into(),
        device_key: f.device.public_key().clone(),
        challenge: [3; CHALLENGE_LEN],
        issued_at: NOW,
        evidence: EnrollmentEvidence::Software,
    };
    let request = claims.sign(&f.device).unwrap();
    let quote = WarrantEvidence::TpmQuote(TpmQuoteEvidence {
        attest: vec![1; 8],
        signature: vec![2; 8],
        pcrs: Vec::new(),
        status_list: None,
    });
    for evidence in [quote, WarrantEvidence::TpmKey, WarrantEvidence::YubikeyKey] {
        let forged = with_evidence_signed(&request, evidence.to_cbor(), &f.device);
        let misplaced =
            AttestationError::EvidenceMisplaced { kind: evidence.kind(), place: EvidencePlace::Enrollment };
        let err = verify_enrollment(&forged).unwrap_err();
        assert!(matches!(&err, Error::Evidence(e) if *e == misplaced), "{err:?}");
        assert_eq!(err.code(), "evidence_rejected");
    }
    let fine = with_evidence_signed(&request, EnrollmentEvidence::Software.to_cbor(), &f.device);
    assert!(verify_enrollment(&fine).is_ok());
}

#[test]
fn a_flipped_signature_bit_is_rejected_for_each_object() {
    let f = Fixture::new();
    let flip = |bytes: &[u8]| {
        let mut p = parts(bytes);
        p.signature[10] ^= 0x20;
        assemble(p)
    };
    assert!(matches!(rejection(&f, &flip(&f.warrant())), Error::WarrantSignatureInvalid));
    let mut claims = f.warrant_claims();
    claims.grant = flip(&f.grant);
    assert!(matches!(rejection(&f, &claims.sign(&f.device).unwrap()), Error::GrantSignatureInvalid));
    let v = f.builder().build().unwrap();
    assert!(matches!(v.install_status_list(&flip(&f.status)), Err(Error::StatusListSignatureInvalid)));
}

#[test]
fn signatures_by_the_wrong_key_are_rejected() {
    let f = Fixture::new();
    let intruder = TestKey::new();
    // A warrant signed by another device key under Alice's grant.
    let by_intruder = f.warrant_claims().sign(&intruder).unwrap();
    assert!(matches!(rejection(&f, &by_intruder), Error::WarrantKeyMismatch));
    // The same, with the kid forged to name Alice's device key.
    let mut p = parts(&by_intruder);
    p.protected = parts(&f.warrant()).protected;
    assert!(matches!(rejection(&f, &resign(p, &intruder)), Error::WarrantSignatureInvalid));
    // A grant issued by an authority the verifier does not trust.
    let mut claims = f.warrant_claims();
    claims.grant = f.grant_claims.sign(&intruder).unwrap();
    assert!(matches!(rejection(&f, &claims.sign(&f.device).unwrap()), Error::UnknownAuthorityKey { .. }));
    // A grant whose kid names the trusted key but signed by another.
    let mut p = parts(&f.grant);
    p.protected = parts(&f.grant).protected;
    let mut claims = f.warrant_claims();
    claims.grant = resign(p, &intruder);
    assert!(matches!(rejection(&f, &claims.sign(&f.device).unwrap()), Error::GrantSignatureInvalid));
    // A status list signed by an untrusted key.
    let v = f.builder().build().unwrap();
    assert!(matches!(
        v.install_status_list(&f.status_claims.sign(&intruder).unwrap()),
        Err(Error::StatusListSignatureInvalid)
    ));
}

#[test]
fn algorithm_must_be_es256_in_the_protected_header() {
    let f = Fixture::new();
    let kid = warrant_envelope::thumbprint(f.device.public_key());
    let typ = Some(ObjectType::Warrant.media_type());
    for alg in [
        Some(iana::Algorithm::ES384),
        Some(iana::Algorithm::EdDSA),
        Some(iana::Algorithm::HMAC_256_256),
        None,
    ] {
        let mut p = parts(&f.warrant());
        p.protected = protected_header(alg, &kid, typ, vec![]);
        assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::AlgorithmNotAllowed), "{alg:?}");
    }
    // alg only in the unprotected header (pycose #140): it is not looked at.
    let mut p = parts(&f.warrant());
    p.protected = protected_header(None, &kid, typ, vec![]);
    p.unprotected.alg = Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::AlgorithmNotAllowed));
    // ... and anything in the unprotected header is refused even when the protected one is right.
    let mut p = parts(&f.warrant());
    p.unprotected.alg = Some(coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::UnexpectedHeader(_)));
}

#[test]
fn unknown_critical_headers_and_extra_headers_are_rejected() {
    let f = Fixture::new();
    let kid = warrant_envelope::thumbprint(f.device.public_key());
    let typ = Some(ObjectType::Warrant.media_type());
    let mut p = parts(&f.warrant());
    p.protected = coset::HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .add_critical(iana::HeaderParameter::CounterSignature)
        .key_id(kid.to_vec())
        .value(16, Value::Text(ObjectType::Warrant.media_type().into()))
        .build()
        .to_vec()
        .unwrap();
    use coset::CborSerializable;
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::UnknownCritical));

    let mut p = parts(&f.warrant());
    p.protected = protected_header(Some(iana::Algorithm::ES256), &kid, typ, vec![(-70000, Value::Null)]);
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::UnexpectedHeader(_)));

    let mut p = parts(&f.warrant());
    p.unprotected.key_id = kid.to_vec();
    assert!(matches!(rejection(&f, &assemble(p)), Error::UnexpectedHeader(_)));

    let mut p = parts(&f.warrant());
    p.protected = protected_header(Some(iana::Algorithm::ES256), &kid[..16], typ, vec![]);
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::UnexpectedHeader(_)));
}

#[test]
fn object_type_confusion_is_rejected() {
    let f = Fixture::new();
    // A grant, a status list, or a warrant without typ, presented as a warrant.
    assert!(matches!(rejection(&f, &f.grant), Error::WrongObjectType { .. }));
    assert!(matches!(rejection(&f, &f.status), Error::WrongObjectType { .. }));
    let kid = warrant_envelope::thumbprint(f.device.public_key());
    let mut p = parts(&f.warrant());
    p.protected = protected_header(Some(iana::Algorithm::ES256), &kid, None, vec![]);
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::WrongObjectType { .. }));
    // A warrant presented as a status list.
    let v = f.builder().build().unwrap();
    assert!(matches!(v.install_status_list(&f.warrant()), Err(Error::WrongObjectType { .. })));
}

#[test]
fn structural_damage_is_rejected() {
    let f = Fixture::new();
    let warrant = f.warrant();
    // Tag removed.
    let Value::Tag(18, inner) = decode(&warrant) else { panic!("unexpected shape") };
    assert!(matches!(rejection(&f, &encode(&inner)), Error::NotTagged { .. }));
    // Another tag.
    assert!(matches!(rejection(&f, &encode(&Value::Tag(98, inner.clone()))), Error::NotTagged { .. }));
    // Truncated at every length.
    for len in 0..warrant.len() {
        let err = rejection(&f, &warrant[..len]);
        assert!(matches!(err, Error::Malformed { .. }), "truncated to {len}: {err:?}");
    }
    // Trailing bytes.
    let mut trailing = warrant.clone();
    trailing.push(0);
    assert!(matches!(rejection(&f, &trailing), Error::TrailingBytes { .. }));
    // Oversized.
    let big = vec![0u8; ObjectType::Warrant.size_limit() + 1];
    assert!(matches!(rejection(&f, &big), Error::TooLarge { .. }));
    // Deeply nested: where the format has free structure (evidence), depth is bounded; a
    // nested structure anywhere else is a type error; and it is not a COSE_Sign1 at all.
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    let evidence = entries.iter_mut().find(|(k, _)| *k == Value::Text("evidence".into())).unwrap();
    let mut deep = Value::Integer(0.into());
    for _ in 0..100 {
        deep = Value::Array(vec![deep]);
    }
    evidence.1 = Value::Map(vec![(Value::Text("kind".into()), deep)]);
    p.payload = encode(&Value::Map(entries));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::TooDeep { .. }));
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    entries[0].1 = Value::Array(vec![Value::Array(vec![Value::Array(vec![])])]);
    p.payload = encode(&Value::Map(entries));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::InvalidClaim { claim: "iss", .. }));
    let mut nested = vec![0x81u8; 200];
    nested.push(0);
    assert!(matches!(rejection(&f, &nested), Error::NotTagged { .. }));
    // Detached payload.
    let Value::Tag(18, inner) = decode(&warrant) else { panic!("unexpected shape") };
    let Value::Array(mut items) = *inner else { panic!("unexpected shape") };
    items[2] = Value::Null;
    assert!(matches!(
        rejection(&f, &encode(&Value::Tag(18, Box::new(Value::Array(items))))),
        Error::Malformed { .. }
    ));
}

#[test]
fn duplicate_keys_are_rejected_in_payload_and_header() {
    let f = Fixture::new();
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    entries.insert(1, entries[0].clone());
    p.payload = encode(&Value::Map(entries));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::DuplicateKey { .. }));

    let mut p = parts(&f.warrant());
    let Value::Map(mut header) = decode(&p.protected) else { panic!("unexpected shape") };
    header.insert(1, header[0].clone());
    p.protected = encode(&Value::Map(header));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::DuplicateKey { .. }));
}

#[test]
fn non_canonical_and_unknown_claims_are_rejected() {
    let f = Fixture::new();
    // Claims out of deterministic order.
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    entries.swap(0, 1);
    p.payload = encode(&Value::Map(entries));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::NonCanonical { .. }));
    // An integer in long form: iat (key 6) re-encoded with a 9-byte head.
    let mut p = parts(&f.warrant());
    let needle = [&[0x06u8, 0x1a][..], &(NOW as u32).to_be_bytes()].concat();
    let at = p.payload.windows(needle.len()).position(|w| w == needle).unwrap();
    let long = [&[0x06u8, 0x1b][..], &NOW.to_be_bytes()].concat();
    p.payload.splice(at..at + needle.len(), long);
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::NonCanonical { .. }));
    // An unknown claim.
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    // A name longer than any defined claim sorts last in deterministic order.
    entries.push((Value::Text("zzzzzzzzzzzz".into()), Value::Bool(true)));
    p.payload = encode(&Value::Map(entries));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::UnknownClaim { .. }));
    // aud as an array of audiences.
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    let aud = entries.iter_mut().find(|(k, _)| *k == Value::Integer(3.into())).unwrap();
    aud.1 = Value::Array(vec![Value::Text(AUDIENCE.into())]);
    p.payload = encode(&Value::Map(entries));
    assert!(matches!(rejection(&f, &resign(p, &f.device)), Error::InvalidClaim { claim: "aud", .. }));
}

#[test]
fn time_windows_are_enforced_with_skew() {
    let f = Fixture::new();
    let at = |offset_iat: i64, lifetime: u64| {
        let mut c = f.warrant_claims();
        c.issued_at = (NOW as i64 + offset_iat) as u64;
        c.expires_at = c.issued_at + lifetime;
        c.sign(&f.device).unwrap()
    };
    // Issued 30 s in the future: within the default 60 s skew.
    assert!(verify(&f, &f.verifier(), &at(30, 60)).is_ok());
    assert!(matches!(rejection(&f, &at(61, 60)), Error::WarrantNotYetValid { .. }));
    // Expired 30 s ago: within skew; 61 s ago: rejected.
    assert!(verify(&f, &f.verifier(), &at(-90, 60)).is_ok());
    assert!(matches!(rejection(&f, &at(-121, 60)), Error::WarrantExpired { .. }));
    // Longer than the grant's max_ttl (300 s).
    assert!(matches!(rejection(&f, &at(0, 301)), Error::WarrantLifetimeExceeded { .. }));
    // Starting before the grant's nbf.
    assert!(matches!(rejection(&f, &at(-200, 150)), Error::WarrantLifetimeExceeded { .. }));

    let v = f.verifier();
    f.clock.set(NOW + 3600 + 61);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::GrantExpired { .. })));
    f.clock.set(NOW - 100 - 61);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::GrantNotYetValid { .. })));
}

#[test]
fn zero_skew_is_exact() {
    let f = Fixture::new();
    let v = f.builder().clock_skew(0).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    let mut c = f.warrant_claims();
    c.issued_at = NOW + 1;
    c.expires_at = NOW + 60;
    assert!(matches!(verify(&f, &v, &c.sign(&f.device).unwrap()), Err(Error::WarrantNotYetValid { .. })));
    f.clock.set(NOW + 60);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::WarrantExpired { .. })));
}

#[test]
fn binding_to_audience_principal_and_request() {
    let f = Fixture::new();
    let mut c = f.warrant_claims();
    c.audience = "https://other.example.com".into();
    assert!(matches!(rejection(&f, &c.sign(&f.device).unwrap()), Error::AudienceMismatch { .. }));
    let mut c = f.warrant_claims();
    c.issuer = "mallory".into();
    assert!(matches!(rejection(&f, &c.sign(&f.device).unwrap()), Error::PrincipalMismatch { .. }));

    let v = f.verifier();
    let w = f.warrant();
    let changed = |method, target, body| {
        v.verify(&w, &expected(), &HttpRequest { method, target, body }, None).unwrap_err()
    };
    assert!(matches!(changed("POST", TARGET, b"{}"), Error::RequestBodyMismatch));
    assert!(matches!(changed("PUT", TARGET, BODY), Error::RequestMethodMismatch { .. }));
    assert!(matches!(changed("post", TARGET, BODY), Error::RequestMethodMismatch { .. }));
    assert!(matches!(
        changed("POST", "https://api.example.com/v1/deploy?x=1", BODY),
        Error::RequestTargetMismatch { .. }
    ));
    // None of those consumed the warrant.
    assert!(v.verify(&w, &expected(), &request(), None).is_ok());
}

#[test]
fn nonces_must_match_when_the_verifier_issued_one() {
    let f = Fixture::new();
    let v = f.verifier();
    assert!(matches!(
        v.verify(&f.warrant(), &expected(), &request(), Some(&[9; 16])),
        Err(Error::NonceMissing)
    ));
    let mut c = f.warrant_claims();
    c.nonce = Some(vec![8; 16]);
    let w = c.sign(&f.device).unwrap();
    assert!(matches!(v.verify(&w, &expected(), &request(), Some(&[9; 16])), Err(Error::NonceMismatch)));
    assert!(matches!(v.verify(&w, &expected(), &request(), Some(&[8; 15])), Err(Error::NonceMismatch)));
    assert!(v.verify(&w, &expected(), &request(), Some(&[8; 16])).is_ok());
    // A nonce shorter than EAT allows is malformed.
    let mut c = f.warrant_claims();
    c.nonce = Some(vec![8; 4]);
    assert!(matches!(
        rejection(&f, &c.sign(&f.device).unwrap()),
        Error::InvalidClaim { claim: "eat_nonce", .. }
    ));
}

#[test]
fn replays_are_refused_and_a_full_store_fails_closed() {
    let f = Fixture::new();
    let v = f.verifier();
    let w = f.warrant();
    assert!(verify(&f, &v, &w).is_ok());
    assert!(matches!(verify(&f, &v, &w), Err(Error::Replayed { .. })));

    let v = f.builder().replay_store(std::sync::Arc::new(MemoryReplayStore::new(1))).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::ReplayStoreFull { capacity: 1 })));
    // Once the first id is past its exp + skew, there is room again.
    f.clock.advance(60 + 60 + 1);
    let mut c = f.warrant_claims();
    c.issued_at = f.clock.now();
    c.expires_at = c.issued_at + 60;
    assert!(verify(&f, &v, &c.sign(&f.device).unwrap()).is_ok());
}

/// A shared replay store that cannot be reached: whether a warrant was used is unknown.
struct UnreachableStore {
    down: std::sync::atomic::AtomicBool,
    inner: MemoryReplayStore,
}

impl ReplayStore for UnreachableStore {
    fn remember(&self, key: &ReplayKey, forget_after: u64, now: u64) -> Result<(), Error> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::ReplayStoreUnavailable { reason: "connection refused".into() });
        }
        self.inner.remember(key, forget_after, now)
    }
}

#[test]
fn a_replay_store_outage_fails_closed_as_an_outage() {
    let f = Fixture::new();
    let store = std::sync::Arc::new(UnreachableStore {
        down: std::sync::atomic::AtomicBool::new(true),
        inner: MemoryReplayStore::new(8),
    });
    let v = f.builder().replay_store(store.clone()).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    let w = f.warrant();
    let err = verify(&f, &v, &w).unwrap_err();
    assert!(
        matches!(&err, Error::ReplayStoreUnavailable { reason } if reason == "connection refused"),
        "{err:?}"
    );
    assert_eq!(err.code(), "replay_store_unavailable");
    // Not a verdict on the warrant, and not "full" either: the service answers 503.
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(Error::ReplayStoreFull { capacity: 1 }.kind(), ErrorKind::Unavailable);
    assert_ne!(err.code(), Error::ReplayStoreFull { capacity: 1 }.code());
    // Once the store answers, the warrant is accepted once: the outage consumed nothing.
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(verify(&f, &v, &w).is_ok());
    assert_eq!(verify(&f, &v, &w).unwrap_err().kind(), ErrorKind::Replay);
}

/// A grant whose policy permits `read` on `docs` as well as the fixture's `deploy`, and
/// `deploy` on `staging/api`.
fn grant_with_harmless_actions(f: &Fixture) -> Vec<u8> {
    let mut grant = f.grant_claims.clone();
    grant.policy = format!(
        "{POLICY}\npermit (principal, action == Warrant::Action::\"read\", resource == Warrant::Resource::\"docs\");\n\
         permit (principal, action == Warrant::Action::\"deploy\", resource == Warrant::Resource::\"staging/api\");"
    );
    grant.sign(&f.authority).unwrap()
}

/// The attacker's move: a device allowed only to `read docs` gets a warrant for that, bound to
/// the request of the deploy endpoint (the request binding is whatever the client asked for),
/// and sends it there first. The grant's policy permits `read docs`; only the service knows
/// the request is a deploy.
#[test]
fn a_warrant_for_a_harmless_action_is_refused_at_an_endpoint_performing_another() {
    let f = Fixture::new();
    let v = f.verifier();
    let mut c = f.warrant_claims();
    c.grant = grant_with_harmless_actions(&f);
    c.action = "read".into();
    c.resource = "docs".into();
    let w = c.sign(&f.device).unwrap();
    let err = v.verify(&w, &expected(), &request(), None).unwrap_err();
    assert!(
        matches!(&err, Error::ActionMismatch { expected, found } if expected == "deploy" && found == "read"),
        "{err:?}"
    );
    assert_eq!(err.code(), "action_mismatch");
    assert_eq!(err.kind(), ErrorKind::Binding);
    // Without the operation stated, the same warrant passes as `read docs`: the caller of
    // verify_without_operation_check must compare the action itself. The refusal consumed no id.
    let unstated = v.verify_without_operation_check(&w, &request(), None).unwrap();
    assert_eq!((unstated.action.as_str(), unstated.resource.as_str()), ("read", "docs"));
}

#[test]
fn a_warrant_for_another_resource_is_refused() {
    let f = Fixture::new();
    let v = f.verifier();
    let mut c = f.warrant_claims();
    c.grant = grant_with_harmless_actions(&f);
    c.resource = "staging/api".into();
    let w = c.sign(&f.device).unwrap();
    let err = v.verify(&w, &expected(), &request(), None).unwrap_err();
    assert!(
        matches!(&err, Error::ResourceMismatch { expected, found } if expected == "prod/api" && found == "staging/api"),
        "{err:?}"
    );
    assert_eq!(err.code(), "resource_mismatch");
    // Stated as what it is, the same warrant is accepted.
    let staging = Expected { resource: "staging/api", ..expected() };
    assert_eq!(v.verify(&w, &staging, &request(), None).unwrap().resource, "staging/api");
}

#[test]
fn revocation_and_status_list_freshness() {
    let f = Fixture::new();
    // No status list held: fail closed.
    let v = f.builder().build().unwrap();
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::StatusListMissing { .. })));

    // Revoked in list 2.
    let v = f.verifier();
    let list2 = f.next_status(2, &f.status, &[5]);
    v.install_status_list(&list2).unwrap();
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::Revoked { sequence: 2, .. })));
    // Rolling back to list 1 is refused; the grant stays revoked.
    assert!(matches!(
        v.install_status_list(&f.status),
        Err(Error::StatusListRollback { held: 2, offered: 1 })
    ));
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::Revoked { .. })));
    // Another list with sequence 2 (equivocation).
    let forked = f.next_status(2, &f.status, &[]);
    assert!(matches!(v.install_status_list(&forked), Err(Error::StatusListForked { sequence: 2 })));
    // The same list again is fine.
    assert!(v.install_status_list(&list2).is_ok());
    // List 3 that does not name list 2 as its predecessor.
    let unchained = f.next_status(3, &f.status, &[5]);
    assert!(matches!(
        v.install_status_list(&unchained),
        Err(Error::StatusListChainBroken { sequence: 3, held: 2 })
    ));

    // The held list expires: a frozen verifier fails closed.
    let v = f.builder().build().unwrap();
    let mut short = f.status_claims.clone();
    short.expires_at = NOW + 600;
    v.install_status_list(&short.sign(&f.authority).unwrap()).unwrap();
    f.clock.set(NOW + 600 + 60);
    let mut c = f.warrant_claims();
    c.issued_at = f.clock.now();
    c.expires_at = c.issued_at + 60;
    assert!(matches!(verify(&f, &v, &c.sign(&f.device).unwrap()), Err(Error::StatusListExpired { .. })));
    f.clock.set(NOW + 3600 + 60);
    // An expired list is refused at installation too.
    let v2 = f.builder().build().unwrap();
    assert!(matches!(v2.install_status_list(&f.status), Err(Error::StatusListExpired { .. })));
}

#[test]
fn a_verifier_that_missed_lists_installs_the_newest_only_along_an_unbroken_chain() {
    let f = Fixture::new();
    let list2 = f.next_status(2, &f.status, &[]);
    let list3 = f.next_status(3, &list2, &[]);
    let list4 = f.next_status(4, &list3, &[]);
    let list5 = f.next_status(5, &list4, &[5]);
    let held_sequence =
        |v: &Verifier| v.status_list(&f.status_claims.issuer, &f.status_claims.uri).unwrap().sequence;

    // The walk from the held list 1 through 2..4 to 5: installed, and the grant revoked.
    let v = f.verifier();
    let info = v.install_status_list_after(&[&list2, &list3, &list4], &list5).unwrap();
    assert_eq!(info.sequence, 5);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::Revoked { sequence: 5, .. })));

    // A link that does not name its predecessor (a fork served as history): nothing installed.
    let forked3 = f.next_status(3, &f.status, &[]);
    let v = f.verifier();
    assert!(matches!(
        v.install_status_list_after(&[&list2, &forked3, &list4], &list5),
        Err(Error::StatusListChainBroken { sequence: 3, held: 2 })
    ));
    assert_eq!(held_sequence(&v), 1, "the held list stays, not list 2");
    // The newest not chaining to the last link.
    let other5 = f.next_status(5, &list3, &[]);
    assert!(matches!(
        v.install_status_list_after(&[&list2, &list3, &list4], &other5),
        Err(Error::StatusListChainBroken { sequence: 5, held: 4 })
    ));
    // A link badly signed, older than the held list, or another URI's.
    let mut bad = list3.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        v.install_status_list_after(&[&list2, &bad, &list4], &list5),
        Err(Error::StatusListSignatureInvalid)
    ));
    v.install_status_list(&list2).unwrap();
    assert!(matches!(
        v.install_status_list_after(&[&f.status, &list3, &list4], &list5),
        Err(Error::StatusListRollback { held: 2, offered: 1 })
    ));
    let mut elsewhere = f.status_claims.clone();
    elsewhere.uri = "https://other.example/status".into();
    elsewhere.sequence = 3;
    elsewhere.previous = warrant_envelope::issue::status_list_digest(&list2).unwrap();
    let elsewhere = elsewhere.sign(&f.authority).unwrap();
    assert!(matches!(
        v.install_status_list_after(&[&elsewhere, &list4], &list5),
        Err(Error::StatusListChainBroken { sequence: 3, held: 2 })
    ));
    // A walk that skips a list, or a history entry served in another's place.
    assert!(matches!(
        v.install_status_list_after(&[&list3], &list5),
        Err(Error::StatusListChainBroken { sequence: 5, held: 3 })
    ));
    assert!(matches!(
        v.install_status_list_after(&[&list4], &list5),
        Err(Error::StatusListChainBroken { sequence: 4, held: 2 })
    ));
    assert!(matches!(
        v.install_status_list_after(&[&list3, &list3], &list5),
        Err(Error::StatusListChainBroken { sequence: 3, held: 3 })
    ));
    assert_eq!(held_sequence(&v), 2);

    // Links need not be unexpired, the newest must.
    let mut short = f.status_claims.clone();
    short.expires_at = NOW + 10;
    short.time_to_live = 5;
    short.sequence = 2;
    short.previous = warrant_envelope::issue::status_list_digest(&f.status).unwrap();
    let expired2 = short.sign(&f.authority).unwrap();
    let via_expired = f.next_status(3, &expired2, &[]);
    f.clock.set(NOW + 100);
    let v = f.verifier();
    assert_eq!(v.install_status_list_after(&[&expired2], &via_expired).unwrap().sequence, 3);
    assert!(matches!(v.install_status_list_after(&[], &expired2), Err(Error::StatusListExpired { .. })));
}

#[test]
fn status_index_outside_the_list_and_foreign_lists_are_rejected() {
    let f = Fixture::new();
    let mut grant = f.grant_claims.clone();
    grant.status.index = 4096;
    let mut c = f.warrant_claims();
    c.grant = grant.sign(&f.authority).unwrap();
    assert!(matches!(
        rejection(&f, &c.sign(&f.device).unwrap()),
        Error::StatusIndexOutOfRange { index: 4096, .. }
    ));

    // A list from a second trusted authority, for the same URI, does not speak for the first:
    // the verifier still holds no list of the grant's issuer.
    let other = TestKey::new();
    let v = f
        .builder()
        .trust(TrustedAuthority { issuer: "other-authority".into(), keys: vec![other.public_key().clone()] })
        .build()
        .unwrap();
    let mut claims = f.status_claims.clone();
    claims.issuer = "other-authority".into();
    v.install_status_list(&claims.sign(&other).unwrap()).unwrap();
    let err = verify(&f, &v, &f.warrant()).unwrap_err();
    assert!(
        matches!(&err, Error::StatusListMissing { issuer, uri } if issuer == ISSUER && uri == STATUS_URI),
        "{err:?}"
    );
    // And a list claiming the first authority's id but signed by the other is refused, with
    // the names the right way round.
    let mut claims = f.status_claims.clone();
    claims.sequence = 9;
    let err = v.install_status_list(&claims.sign(&other).unwrap()).unwrap_err();
    assert!(
        matches!(&err, Error::StatusListIssuerMismatch { key_owner, claimed }
            if key_owner == "other-authority" && claimed == ISSUER),
        "{err:?}"
    );
    assert_eq!(err.code(), "status_list_issuer_mismatch");
    assert_eq!(
        err.to_string(),
        "status list claims issuer \"acme-authority\" but is signed by a key of authority \"other-authority\": \
         a list speaks only for its signer"
    );
}

/// A second trusted authority (or its stolen key) publishes a list under the first one's URI
/// with the largest sequence. Lists are held per (issuer, URI), so the first authority's
/// grants are still checked against its own list, which keeps advancing.
#[test]
fn another_authority_cannot_take_over_a_status_uri() {
    let f = Fixture::new();
    let other = TestKey::new();
    let v = f
        .builder()
        .trust(TrustedAuthority { issuer: "other-authority".into(), keys: vec![other.public_key().clone()] })
        .build()
        .unwrap();
    let mut hijack = f.status_claims.clone();
    hijack.issuer = "other-authority".into();
    hijack.sequence = u64::MAX;
    hijack.bits.revoke(5).unwrap();
    // Before and after the first authority's own list: neither order lets it through.
    v.install_status_list(&hijack.sign(&other).unwrap()).unwrap();
    v.install_status_list(&f.status).unwrap();
    v.install_status_list(&hijack.sign(&other).unwrap()).unwrap();

    assert_eq!(verify(&f, &v, &f.warrant()).unwrap().status_sequence, 1);
    assert_eq!(v.status_list(ISSUER, STATUS_URI).unwrap().sequence, 1);
    assert_eq!(v.status_list("other-authority", STATUS_URI).unwrap().sequence, u64::MAX);
    // The first authority's next list installs (no rollback against the other's) and revokes.
    let list2 = f.next_status(2, &f.status, &[5]);
    assert_eq!(v.install_status_list(&list2).unwrap().sequence, 2);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::Revoked { sequence: 2, .. })));
}

/// A relay serves `(r, n-s)` of list N: it verifies and installs. The chain is over signed
/// content, so it is the same list as the genuine N, and the genuine N+1 naming N installs
/// and revokes instead of being refused as a broken chain.
#[test]
fn a_malleated_status_list_is_the_same_list() {
    let f = Fixture::new();
    let list2 = f.next_status(2, &f.status, &[]);
    let malleated = malleate(&list2);
    assert_ne!(malleated, list2);
    assert_eq!(status_list_digest(&malleated).unwrap(), status_list_digest(&list2).unwrap());

    let v = f.verifier();
    let held = v.install_status_list(&malleated).unwrap();
    assert_eq!(held.digest, status_list_digest(&list2).unwrap());
    assert_eq!(held.issued_at, f.status_claims.issued_at);
    // The genuine copy is the held list again: a no-op, not equivocation.
    assert_eq!(v.install_status_list(&list2).unwrap(), held);
    let list3 = f.next_status(3, &list2, &[5]);
    assert_eq!(v.install_status_list(&list3).unwrap().sequence, 3);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::Revoked { sequence: 3, .. })));
    // And a malleated copy of the held list changes nothing.
    assert_eq!(v.install_status_list(&malleate(&list3)).unwrap().sequence, 3);
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::Revoked { sequence: 3, .. })));
}

/// A second device, enrolled for another principal, with its own grant.
fn second_device(f: &Fixture) -> (TestKey, Vec<u8>) {
    let device = TestKey::new();
    let mut grant = f.grant_claims.clone();
    grant.principal = "mallory".into();
    grant.id = [0x22; 16];
    grant.status.index = 6;
    grant.device_key = device.public_key().clone();
    let grant = grant.sign(&f.authority).unwrap();
    (device, grant)
}

/// Device X learns device Y's warrant id and uses it first under its own grant. Ids are
/// remembered per (issuer, grant, warrant id, audience), so Y's warrant still verifies, and
/// X's is accepted once.
#[test]
fn a_device_cannot_burn_another_devices_warrant_id() {
    let f = Fixture::new();
    let v = f.verifier();
    let victim = f.warrant_claims();
    let (device, grant) = second_device(&f);
    let mut stolen = f.warrant_claims();
    stolen.issuer = "mallory".into();
    stolen.grant = grant;
    stolen.id = victim.id;
    let stolen = stolen.sign(&device).unwrap();

    assert_eq!(verify(&f, &v, &stolen).unwrap().principal, "mallory");
    assert_eq!(verify(&f, &v, &victim.sign(&f.device).unwrap()).unwrap().principal, "alice");
    let err = verify(&f, &v, &stolen).unwrap_err();
    // The reason names the warrant id, not the store's digest.
    assert!(matches!(&err, Error::Replayed { id } if *id == hex::encode(victim.id)), "{err:?}");
}

/// One replay store shared by two services: the same warrant id at each audience is two
/// different warrants, each accepted once.
#[test]
fn one_replay_store_shared_by_two_audiences_keeps_them_apart() {
    const OTHER: &str = "https://billing.example.com";
    let f = Fixture::new();
    let store = std::sync::Arc::new(MemoryReplayStore::new(16));
    let verifier = |audience: &str| {
        let v = Verifier::builder(audience)
            .trust(f.trusted())
            .clock(f.clock.clone())
            .allow_software_evidence(true)
            .replay_store(store.clone())
            .build()
            .unwrap();
        v.install_status_list(&f.status).unwrap();
        v
    };
    let (api, billing) = (verifier(AUDIENCE), verifier(OTHER));
    let for_api = f.warrant_claims();
    let mut for_billing = f.warrant_claims();
    for_billing.audience = OTHER.into();
    for_billing.id = for_api.id;
    let (for_api, for_billing) = (for_api.sign(&f.device).unwrap(), for_billing.sign(&f.device).unwrap());

    assert!(verify(&f, &api, &for_api).is_ok());
    assert!(verify(&f, &billing, &for_billing).is_ok());
    assert_eq!(store.len(), 2);
    assert!(matches!(verify(&f, &api, &for_api), Err(Error::Replayed { .. })));
    assert!(matches!(verify(&f, &billing, &for_billing), Err(Error::Replayed { .. })));
}

/// A key listed under two authorities would speak for whichever was listed last: refused.
#[test]
fn a_key_listed_under_two_authorities_is_refused_at_build() {
    let f = Fixture::new();
    let twice =
        TrustedAuthority { issuer: "other-authority".into(), keys: vec![f.authority.public_key().clone()] };
    let err = f.builder().trust(twice).build().err().expect("must be refused");
    assert!(
        matches!(&err, Error::TrustedKeyConflict { first, second, .. }
            if first == ISSUER && second == "other-authority"),
        "{err:?}"
    );
    assert_eq!(err.code(), "trusted_key_conflict");
    // The same key twice in one authority's entry is harmless.
    let mut repeated = f.trusted();
    repeated.keys.push(f.authority.public_key().clone());
    let v = f.builder_trusting(repeated).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
}

/// Two authorities that both call themselves "acme-authority" (each picks its id at `init`)
/// would be merged: Mallory's list could roll acme's back, and her grants would verify as
/// acme's. The verifier is not built.
#[test]
fn two_authorities_with_one_id_are_refused_at_build() {
    let f = Fixture::new();
    let mallory = TestKey::new();
    let impostor = TrustedAuthority { issuer: ISSUER.into(), keys: vec![mallory.public_key().clone()] };
    let err = f.builder().trust(impostor).build().err().expect("must be refused");
    assert!(matches!(&err, Error::TrustedIssuerRepeated { issuer } if issuer == ISSUER), "{err:?}");
    assert_eq!(err.code(), "trusted_issuer_repeated");
}

#[test]
fn grant_issuer_must_own_the_signing_key() {
    let f = Fixture::new();
    let mut grant = f.grant_claims.clone();
    grant.issuer = "someone-else".into();
    let mut c = f.warrant_claims();
    c.grant = grant.sign(&f.authority).unwrap();
    assert!(matches!(rejection(&f, &c.sign(&f.device).unwrap()), Error::GrantIssuerMismatch { .. }));
}

#[test]
fn policy_denials_name_the_policy_that_decided() {
    let f = Fixture::new();
    // Grant policy: wrong action.
    let mut c = f.warrant_claims();
    c.action = "drop".into();
    let drop = Expected { action: "drop", ..expected() };
    let err = f.verifier().verify(&c.sign(&f.device).unwrap(), &drop, &request(), None).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyDenied { which: "grant", action, .. } if action == "drop"),
        "{err:?}"
    );
    // Grant policy: missing context claim.
    let mut c = f.warrant_claims();
    c.context.clear();
    assert!(matches!(rejection(&f, &c.sign(&f.device).unwrap()), Error::PolicyDenied { which: "grant", .. }));
    // Local policy: a forbid on the verifier's side.
    let v = f
        .builder()
        .local_policy(r#"permit(principal, action, resource); @id("no-weekend") forbid(principal, action, resource) when { context.claims.ci_job == "release-42" };"#)
        .build()
        .unwrap();
    v.install_status_list(&f.status).unwrap();
    let err = verify(&f, &v, &f.warrant()).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyDenied { which: "local", reason, .. } if reason.contains("no-weekend")),
        "{err:?}"
    );
    // A local policy that does not parse is refused when the verifier is built.
    assert!(matches!(
        f.builder().local_policy("permit(").build(),
        Err(Error::PolicyInvalid { which: "local", .. })
    ));
    // A grant policy that does not parse.
    let mut grant = f.grant_claims.clone();
    grant.policy = "permit(principal, action".into();
    let mut c = f.warrant_claims();
    c.grant = grant.sign(&f.authority).unwrap();
    assert!(matches!(
        rejection(&f, &c.sign(&f.device).unwrap()),
        Error::PolicyInvalid { which: "grant", .. }
    ));
}

#[test]
fn policy_sees_device_principal_attributes_and_time() {
    let f = Fixture::new();
    let policy = r#"permit(principal, action, resource) when {
        context.device.backend == "software" && !context.device.hardware &&
        principal.team == "platform" && context.time >= 1790000000 &&
        context.audience == "https://api.example.com" && context.authority == "acme-authority" &&
        context.warrant.lifetime == 60 && context.request.target == "https://api.example.com/v1/deploy"
    };"#;
    let v = f.builder().local_policy(policy).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
    let v = f
        .builder()
        .local_policy(r#"permit(principal, action, resource) when { context.device.hardware };"#)
        .build()
        .unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::PolicyDenied { which: "local", .. })));
}

#[test]
fn software_evidence_needs_explicit_permission() {
    let f = Fixture::new();
    let v = Verifier::builder(AUDIENCE).trust(f.trusted()).clock(f.clock.clone()).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(matches!(verify(&f, &v, &f.warrant()), Err(Error::SoftwareEvidenceNotAllowed)));
}

#[test]
fn a_verifier_needs_a_trusted_authority() {
    assert!(matches!(Verifier::builder(AUDIENCE).build(), Err(Error::UnknownAuthorityKey { .. })));
}

#[test]
fn rotated_authority_keys_both_verify() {
    let f = Fixture::new();
    let newer = TestKey::new();
    let trusted = TrustedAuthority {
        issuer: ISSUER.into(),
        keys: vec![f.authority.public_key().clone(), newer.public_key().clone()],
    };
    let v = f.builder_trusting(trusted).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
    let mut c = f.warrant_claims();
    c.grant = f.grant_claims.sign(&newer).unwrap();
    assert!(verify(&f, &v, &c.sign(&f.device).unwrap()).is_ok());
}

#[test]
fn concurrent_copies_of_one_warrant_are_accepted_once() {
    let f = Fixture::new();
    let v = f.verifier();
    let w = f.warrant();
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                if v.verify(&w, &expected(), &request(), None).is_ok() {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(accepted.into_inner(), 1);
}

#[test]
fn a_remembered_allow_does_not_cover_a_different_request() {
    let f = Fixture::new();
    let v = f.verifier();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
    // Same grant, same shape, but without the claim the policy requires.
    let mut c = f.warrant_claims();
    c.context.clear();
    assert!(matches!(verify(&f, &v, &c.sign(&f.device).unwrap()), Err(Error::PolicyDenied { .. })));
    // Another method (the policy reads context.request).
    let mut c = f.warrant_claims();
    let put = HttpRequest { method: "PUT", ..request() };
    c.request = RequestBinding::of(&put);
    assert!(matches!(
        v.verify(&c.sign(&f.device).unwrap(), &expected(), &put, None),
        Err(Error::PolicyDenied { .. })
    ));
    // Another action.
    let mut c = f.warrant_claims();
    c.action = "drop".into();
    let drop = Expected { action: "drop", ..expected() };
    assert!(matches!(
        v.verify(&c.sign(&f.device).unwrap(), &drop, &request(), None),
        Err(Error::PolicyDenied { .. })
    ));
    // The same shape again is still allowed.
    assert!(verify(&f, &v, &f.warrant()).is_ok());
}

#[test]
fn a_remembered_allow_does_not_outlive_a_time_condition() {
    let f = Fixture::new();
    let policy = format!("permit(principal, action, resource) when {{ context.time < {} }};", NOW + 10);
    let v = f.builder().local_policy(policy).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
    f.clock.set(NOW + 20);
    let mut c = f.warrant_claims();
    c.issued_at = NOW + 20;
    c.expires_at = NOW + 80;
    assert!(matches!(
        verify(&f, &v, &c.sign(&f.device).unwrap()),
        Err(Error::PolicyDenied { which: "local", .. })
    ));
}

#[test]
fn grants_sharing_a_policy_text_share_nothing_else() {
    let f = Fixture::new();
    let v = f.verifier();
    assert!(verify(&f, &v, &f.warrant()).is_ok());
    // A second grant with the same policy text but another principal and group.
    let mut other = f.grant_claims.clone();
    other.id = [0x22; 16];
    other.principal = "bob".into();
    other.entity.groups = vec!["readers".into()];
    let mut c = f.warrant_claims();
    c.issuer = "bob".into();
    c.grant = other.sign(&f.authority).unwrap();
    assert!(matches!(verify(&f, &v, &c.sign(&f.device).unwrap()), Err(Error::PolicyDenied { .. })));
    // A third grant whose policy text differs by one character is parsed on its own.
    let mut third = f.grant_claims.clone();
    third.id = [0x33; 16];
    third.policy = f.grant_claims.policy.replace("\"POST\"", "\"PUT\"");
    let mut c = f.warrant_claims();
    c.grant = third.sign(&f.authority).unwrap();
    assert!(matches!(verify(&f, &v, &c.sign(&f.device).unwrap()), Err(Error::PolicyDenied { .. })));
}

/// The warrant's claims with `request.target` replaced, re-encoded as an independent encoder
/// would (the signing path refuses such targets), and re-signed by the device.
fn warrant_with_target(f: &Fixture, target: &str) -> Vec<u8> {
    let mut p = parts(&f.warrant());
    let mut entries = claims_of(&p.payload);
    let (_, Value::Map(request)) =
        entries.iter_mut().find(|(k, _)| *k == Value::Text("request".into())).unwrap()
    else {
        panic!("request is a map")
    };
    let (_, value) = request.iter_mut().find(|(k, _)| *k == Value::Text("target".into())).unwrap();
    *value = Value::Text(target.into());
    p.payload = encode(&Value::Map(entries));
    resign(p, &f.device)
}

/// A policy `like` on the target must not be dodged by a path the service normalises later:
/// dot-segments, encoded separators, fragments, userinfo and non-absolute targets are refused
/// when a warrant is made and when one made elsewhere is verified, each naming the defect.
#[test]
fn request_targets_a_service_would_rewrite_are_refused_at_signing_and_verification() {
    let f = Fixture::new();
    for (target, defect) in [
        ("/v1/deploy", TargetDefect::NotAbsolute),
        ("https://api.example.com/v1/./deploy", TargetDefect::DotSegment),
        ("https://api.example.com/v1/read/../deploy", TargetDefect::DotSegment),
        ("https://api.example.com/v1/deploy/.", TargetDefect::DotSegment),
        ("https://api.example.com/v1/deploy/..", TargetDefect::DotSegment),
        ("https://api.example.com/v1%2Fdeploy", TargetDefect::EncodedSeparator),
        ("https://api.example.com/v1%2fdeploy", TargetDefect::EncodedSeparator),
        ("https://api.example.com/v1/%2E%2E/deploy", TargetDefect::EncodedSeparator),
        ("https://api.example.com/v1/%2e/deploy", TargetDefect::EncodedSeparator),
        ("https://api.example.com/v1/deploy#x", TargetDefect::Fragment),
        ("https://ci@api.example.com/v1/deploy", TargetDefect::Userinfo),
        // Spellings a server normalises after verification: `like ".../admin*"` must see them.
        ("https://api.example.com/%61dmin", TargetDefect::EncodedUnreserved),
        ("https://api.example.com/v1/%252e%252e/admin", TargetDefect::DoubleEncoded),
        ("https://api.example.com/v1/read\\..\\admin", TargetDefect::ForbiddenCharacter),
        ("https://api.example.com/v1/read/..;/admin", TargetDefect::PathParameter),
        ("https://api.example.com//admin", TargetDefect::EmptySegment),
        ("https://API.example.com/admin", TargetDefect::AuthorityNotNormal),
        ("https://api.example.com:443/admin", TargetDefect::AuthorityNotNormal),
    ] {
        let mut claims = f.warrant_claims();
        claims.request.target = target.into();
        let err = claims.sign(&f.device).unwrap_err();
        assert!(
            matches!(&err, Error::RequestTargetUnsignable { target: t, defect: d } if t == target && *d == defect),
            "{target}: {err:?}"
        );
        assert_eq!(err.code(), "request_target_unsignable");

        let request = HttpRequest { method: "POST", target, body: BODY };
        let err =
            f.verifier().verify(&warrant_with_target(&f, target), &expected(), &request, None).unwrap_err();
        assert!(
            matches!(&err, Error::RequestTargetInvalid { target: t, defect: d } if t == target && *d == defect),
            "{target}: {err:?}"
        );
        assert_eq!(err.code(), "request_target_invalid");
    }
    // The query is not path-normalised: encoded separators there are ordinary data.
    let target = "https://api.example.com/v1/deploy?next=%2Fhome%2E";
    let request = HttpRequest { method: "POST", target, body: BODY };
    let mut claims = f.warrant_claims();
    claims.request = RequestBinding::of(&request);
    f.verifier().verify(&claims.sign(&f.device).unwrap(), &expected(), &request, None).unwrap();
}

/// The status list's claims with `lst` replaced, re-signed by the authority.
fn status_with_lst(f: &Fixture, lst: Vec<u8>) -> Vec<u8> {
    let mut p = parts(&f.status);
    let mut entries = claims_of(&p.payload);
    let (_, Value::Map(list)) = entries.iter_mut().find(|(k, _)| *k == Value::Integer(65533.into())).unwrap()
    else {
        panic!("status_list is a map")
    };
    let (_, value) = list.iter_mut().find(|(k, _)| *k == Value::Text("lst".into())).unwrap();
    *value = Value::Bytes(lst);
    p.payload = encode(&Value::Map(entries));
    resign(p, &f.authority)
}

fn lst_of(f: &Fixture) -> Vec<u8> {
    let entries = claims_of(&parts(&f.status).payload);
    let (_, Value::Map(list)) = entries.iter().find(|(k, _)| *k == Value::Integer(65533.into())).unwrap()
    else {
        panic!("status_list is a map")
    };
    let (_, Value::Bytes(lst)) = list.iter().find(|(k, _)| *k == Value::Text("lst".into())).unwrap() else {
        panic!("lst is bytes")
    };
    lst.clone()
}

#[test]
fn bytes_after_the_zlib_stream_of_a_status_list_are_refused() {
    let f = Fixture::new();
    let v = f.builder().build().unwrap();
    for extra in [vec![0u8], vec![0x78, 0x9c], lst_of(&f)] {
        let mut lst = lst_of(&f);
        lst.extend_from_slice(&extra);
        let err = v.install_status_list(&status_with_lst(&f, lst)).unwrap_err();
        assert!(matches!(err, Error::StatusListTrailingData { extra: n } if n == extra.len()), "{err:?}");
        assert_eq!(err.code(), "status_list_trailing_data");
    }
    // The same list re-signed without the extra bytes installs.
    v.install_status_list(&status_with_lst(&f, lst_of(&f))).unwrap();
}

/// zlib of `len` zero bytes, as an independent encoder would make it.
fn zlib_zeros(len: usize) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&vec![0; len]).unwrap();
    z.finish().unwrap()
}

#[test]
fn status_lists_shorter_than_the_1024_entry_padding_are_refused() {
    let f = Fixture::new();
    let v = f.builder().build().unwrap();
    // Producers pad by construction.
    assert_eq!(StatusBits::with_capacity(5).len(), MIN_STATUS_ENTRIES);
    for (bytes, entries) in [(1, 8), (127, 1016)] {
        let err = v.install_status_list(&status_with_lst(&f, zlib_zeros(bytes))).unwrap_err();
        assert!(
            matches!(err, Error::StatusListTooShort { entries: e, minimum: 1024 } if e == entries),
            "{err:?}"
        );
        assert_eq!(err.code(), "status_list_too_short");
    }
    v.install_status_list(&status_with_lst(&f, zlib_zeros(128))).unwrap();
}

/// Empty attribute names and empty text values: refused when made and when decoded, for
/// warrant context claims and for the grant's attribute maps.
#[test]
fn empty_attribute_names_and_values_are_refused() {
    use warrant_attestation::AttributeValue;
    let f = Fixture::new();
    let empty_name = ("".to_owned(), AttributeValue::Text("x".into()));
    let empty_value = ("ci_job".to_owned(), AttributeValue::Text(String::new()));
    for (name, value) in [empty_name.clone(), empty_value.clone()] {
        let mut claims = f.warrant_claims();
        claims.context = [(name.clone(), value.clone())].into();
        let err = claims.sign(&f.device).unwrap_err();
        assert!(matches!(err, Error::EmptyText { object: ObjectType::Warrant, claim: "context" }), "{err:?}");
        let mut grant = f.grant_claims.clone();
        grant.entity.attributes = [(name, value)].into();
        let err = grant.sign(&f.authority).unwrap_err();
        assert!(matches!(err, Error::EmptyText { object: ObjectType::Grant, claim: "attrs" }), "{err:?}");
    }
    let mut grant = f.grant_claims.clone();
    grant.entity.groups = vec![String::new()];
    assert!(matches!(grant.sign(&f.authority), Err(Error::EmptyText { claim: "groups", .. })));

    // Made by an independent encoder: refused on decoding, with the same reason.
    for (name, value) in [("", Value::Text("x".into())), ("ci_job", Value::Text(String::new()))] {
        let mut p = parts(&f.warrant());
        let mut entries = claims_of(&p.payload);
        let context = entries.iter_mut().find(|(k, _)| *k == Value::Text("context".into())).unwrap();
        context.1 = Value::Map(vec![(Value::Text(name.into()), value)]);
        p.payload = encode(&Value::Map(entries));
        let err = rejection(&f, &resign(p, &f.device));
        assert!(matches!(err, Error::EmptyText { object: ObjectType::Warrant, claim: "context" }), "{err:?}");
        assert_eq!(err.code(), "empty_text");
    }
}

/// `-7` with a one-byte argument (`0x38 0x06`) is an encoding error, not a foreign algorithm.
#[test]
fn a_long_form_alg_is_reported_as_non_canonical() {
    let f = Fixture::new();
    let kid = warrant_envelope::thumbprint(f.device.public_key());
    let header =
        protected_header(Some(iana::Algorithm::ES256), &kid, Some(ObjectType::Warrant.media_type()), vec![]);
    assert_eq!(header[..3], [0xa3, 0x01, 0x26], "map(3), alg: -7");
    let mut p = parts(&f.warrant());
    p.protected = [&[0xa3, 0x01, 0x38, 0x06][..], &header[3..]].concat();
    let err = rejection(&f, &resign(p, &f.device));
    assert!(matches!(err, Error::NonCanonical { object: ObjectType::Warrant }), "{err:?}");
    // A kid with an over-long length head likewise.
    let mut p = parts(&f.warrant());
    let kid_at = header.windows(3).position(|w| w == [0x04, 0x58, 0x20]).unwrap();
    p.protected = [&header[..kid_at], &[0x04, 0x59, 0x00, 0x20], &header[kid_at + 3..]].concat();
    let err = rejection(&f, &resign(p, &f.device));
    assert!(matches!(err, Error::NonCanonical { object: ObjectType::Warrant }), "{err:?}");
}

#[test]
fn an_empty_protected_header_has_its_own_reason() {
    let f = Fixture::new();
    for empty in [vec![], vec![0xa0]] {
        let mut p = parts(&f.warrant());
        p.protected = empty.clone();
        let err = rejection(&f, &resign(p, &f.device));
        assert!(
            matches!(err, Error::ProtectedHeaderEmpty { object: ObjectType::Warrant }),
            "{empty:?}: {err:?}"
        );
        assert_eq!(err.code(), "protected_header_empty");
    }
}

/// ECDSA's `(r, s)` and `(r, n - s)` both verify; verifiers accept high-S signatures (the
/// test vectors contain some) and do not normalise them.
#[test]
fn high_s_signatures_are_accepted() {
    let f = Fixture::new();
    let warrant = f.warrant();
    let other = malleate(&warrant);
    let v = f.verifier();
    verify(&f, &v, &other).unwrap();
    // The same warrant id: the second form is a replay, not a new warrant.
    assert!(matches!(verify(&f, &v, &warrant), Err(Error::Replayed { .. })));
}
