//! The TPM key store against swtpm (one private swtpm per test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.
#![cfg(feature = "tpm")]

use warrant_test_support::swtpm;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use swtpm::Swtpm;
use warrant_attestation::certificate::{certificates_from_pem, chain_to_anchor, Cert};
use warrant_attestation::tpm::{make_credential, TpmError, TpmHash, TpmPublic};
use warrant_attestation::{
    AttestationError, AttributeValue, BackendKind, EnrollmentEvidence, StatusListAnchor, WarrantContext,
    WarrantEvidence,
};
use warrant_hsm_backends::tpm::{TpmConfig, TpmKeyStore};
use warrant_hsm_backends::{Error, KeyName, KeyStore, PinSource, WarrantScope};

fn store(tpm: &Swtpm, dir: &std::path::Path, quote: bool) -> TpmKeyStore {
    store_with_pin(tpm, dir, quote, None).unwrap()
}

fn store_with_pin(
    tpm: &Swtpm,
    dir: &std::path::Path,
    quote: bool,
    pin: Option<&str>,
) -> Result<TpmKeyStore, Error> {
    std::env::set_var("TSS2_LOG", "all+none");
    let quote_pcrs = quote.then(|| vec![(TpmHash::Sha256, (0..8).collect())]);
    let pin = pin.map(|pin| {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(format!("pin-{pin}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, format!("{pin}\n").as_bytes()).unwrap();
        PinSource::File(path)
    });
    TpmKeyStore::open(TpmConfig {
        tcti: tpm.tcti(),
        dir: dir.join("keys"),
        quote_pcrs,
        quote_cache_seconds: None,
        pin,
    })
}

fn name(n: &str) -> KeyName {
    KeyName::new(n).unwrap()
}

fn trust() -> warrant_attestation::EnrollmentTrust {
    warrant_attestation::EnrollmentTrust::new(1_800_000_000).unwrap()
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

fn verifies(store: &TpmKeyStore, key: &KeyName, message: &[u8]) -> bool {
    let digest: [u8; 32] = Sha256::digest(message).into();
    let sig = store.sign_digest(key, &digest).unwrap();
    let public = store.public_key(key).unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.sec1()).unwrap();
    vk.verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&sig).unwrap()).is_ok()
}

#[test]
fn keys_are_created_signed_with_listed_and_deleted() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let s = store(&tpm, dir.path(), false);
    let info = s.create(&name("laptop")).unwrap();
    assert_eq!(info.backend, BackendKind::Tpm);
    s.create(&name("second")).unwrap();
    assert!(matches!(s.create(&name("laptop")), Err(Error::KeyExists(_))));
    // Alternating keys forces reloads through the one cached slot.
    for _ in 0..3 {
        assert!(verifies(&s, &name("laptop"), b"one"));
        assert!(verifies(&s, &name("second"), b"two"));
    }
    let names: Vec<_> = s.list().unwrap().into_iter().map(|k| k.name.to_string()).collect();
    assert_eq!(names, ["laptop", "second"], "the attestation key is not listed");
    assert_eq!(s.public_key(&name("laptop")).unwrap(), info.public_key);
    s.delete(&name("laptop")).unwrap();
    assert!(matches!(s.sign_digest(&name("laptop"), &[1; 32]), Err(Error::KeyNotFound(_))));
    // A second store on the same blobs (a daemon restart) signs with the same key.
    drop(s);
    let again = store(&tpm, dir.path(), false);
    assert!(verifies(&again, &name("second"), b"three"));
    // Without quote_pcrs a warrant carries no quote: the key's signature is the evidence.
    let scope = WarrantScope { grant_id: [3; 16], now: 1_800_000_000, status_list: None };
    assert_eq!(again.warrant_evidence(&name("second"), &scope, &[1; 32]).unwrap(), WarrantEvidence::TpmKey);
}

#[test]
fn ek_certificate_chains_to_the_local_ca_and_make_credential_activates() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let s = store(&tpm, dir.path(), false);
    let identity = s.tpm_identity().unwrap();
    let ek = Cert::from_der(&identity.ek_certificate).unwrap();
    let anchors = certificates_from_pem(&tpm.ek_ca_pem()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    chain_to_anchor(&ek, &[], &anchors, now).unwrap();
    // Another CA is refused.
    let strangers =
        certificates_from_pem(include_bytes!("../../attestation/tests/data/unrelated-ca.pem")).unwrap();
    assert!(matches!(
        chain_to_anchor(&ek, &[], &strangers, now),
        Err(AttestationError::CertificateInvalid(_))
    ));

    let ak = TpmPublic::parse(&identity.ak_public).unwrap();
    use rsa::pkcs8::DecodePublicKey;
    let ek_key = rsa::RsaPublicKey::from_public_key_der(&ek.public_key_der().unwrap()).unwrap();
    let credential = make_credential(&ek_key, &ak.name(), &[0x5a; 32]).unwrap();
    assert_eq!(s.activate_credential(&credential).unwrap().as_slice(), &[0x5a; 32]);
    // Made for another object's Name: the TPM's integrity check refuses it.
    let mut other = ak.name();
    other[5] ^= 1;
    let wrong = make_credential(&ek_key, &other, &[0x5a; 32]).unwrap();
    assert!(matches!(s.activate_credential(&wrong), Err(Error::Tpm { .. })));
}

#[test]
fn certify_and_quote_evidence_verify_in_pure_rust() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let s = store(&tpm, dir.path(), true);
    let key = name("laptop");
    let public = s.create(&key).unwrap().public_key;
    let challenge = [7u8; 32];
    let evidence = s.enrollment_evidence(&key, &challenge).unwrap();
    assert!(matches!(evidence, EnrollmentEvidence::TpmCertify(_)), "{evidence:?}");
    let enrolled = evidence.appraise(&public, &challenge, &trust()).unwrap();
    assert_eq!(enrolled.backend, BackendKind::Tpm);
    assert!(matches!(
        evidence.appraise(&public, &[8; 32], &trust()),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    ));
    let binding = [9u8; 32];
    let scope = WarrantScope { grant_id: [3; 16], now: 1_800_000_000, status_list: None };
    let quote = s.warrant_evidence(&key, &scope, &binding).unwrap();
    let WarrantEvidence::TpmQuote(q) = &quote else { panic!("expected a quote, got {quote:?}") };
    assert_eq!(q.pcrs.len(), 8);
    let facts = quote.appraise(&public, &enrolled, &ctx(&binding)).unwrap();
    assert_eq!(facts.properties["quoted"], warrant_attestation::AttributeValue::Bool(true));
    assert!(facts.properties.contains_key("pcr_sha256_7"));
    assert!(matches!(
        quote.appraise(&public, &enrolled, &ctx(&[0; 32])),
        Err(AttestationError::Tpm(TpmError::NonceMismatch))
    ));
}

#[test]
fn cached_quotes_are_bound_to_the_newest_status_list_and_made_again_for_a_new_one() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("TSS2_LOG", "all+none");
    let s = TpmKeyStore::open(TpmConfig {
        tcti: tpm.tcti(),
        dir: dir.path().join("keys"),
        quote_pcrs: Some(vec![(TpmHash::Sha256, (0..8).collect())]),
        quote_cache_seconds: Some(600),
        pin: None,
    })
    .unwrap();
    let key = name("laptop");
    let public = s.create(&key).unwrap().public_key;
    let enrolled = s.enrollment_evidence(&key, &[7; 32]).unwrap();
    let enrolled = enrolled.appraise(&public, &[7; 32], &trust()).unwrap();
    let now = 1_800_000_000;
    let (list_a, list_b) = ([0xa1; 32], [0xb2; 32]);
    let quote = |status_list: Option<[u8; 32]>, now: u64, binding: [u8; 32]| {
        let scope = WarrantScope { grant_id: [3; 16], now, status_list };
        s.warrant_evidence(&key, &scope, &binding).unwrap()
    };
    // A quote is told from another by its signature (ECDSA with a fresh k): two quotes over
    // the same nonce can have the same TPMS_ATTEST when the TPM's clock has not moved.
    let attest = |e: &WarrantEvidence| match e {
        WarrantEvidence::TpmQuote(q) => ([q.attest.clone(), q.signature.clone()].concat(), q.status_list),
        other => panic!("expected a quote, got {other:?}"),
    };
    // One quote per (grant, list), reused across warrants within quote_cache_seconds.
    let first = quote(Some(list_a), now, [1; 32]);
    assert_eq!(attest(&first).1, Some(list_a));
    assert_eq!(attest(&quote(Some(list_a), now + 599, [2; 32])), attest(&first));
    // Older than quote_cache_seconds, or a new list: a new quote.
    assert_ne!(attest(&quote(Some(list_a), now + 600, [2; 32])).0, attest(&first).0);
    let second = quote(Some(list_b), now + 601, [3; 32]);
    assert_eq!(attest(&second).1, Some(list_b));
    assert_ne!(attest(&second).0, attest(&first).0);

    // The verifier holding list B accepts the quote bound to it, aged from B's iat.
    let mut context = ctx(&[3; 32]);
    context.status_list = Some(StatusListAnchor { digest: list_b, issued_at: context.now - 30 });
    let facts = second.appraise(&public, &enrolled, &context).unwrap();
    assert_eq!(facts.properties["quote_cached"], AttributeValue::Bool(true));
    assert_eq!(facts.properties["quote_age"], AttributeValue::Int(30));
    // One holding only list A refuses it as not fresh.
    context.status_list = Some(StatusListAnchor { digest: list_a, issued_at: context.now - 30 });
    assert_eq!(
        second.appraise(&public, &enrolled, &context),
        Err(AttestationError::Tpm(TpmError::QuoteNotFresh))
    );

    // No list known: a quote for this warrant alone, never a reusable one.
    let alone = quote(None, now + 602, [4; 32]);
    assert_eq!(attest(&alone).1, None);
    let facts = alone.appraise(&public, &enrolled, &ctx(&[4; 32])).unwrap();
    assert_eq!(facts.properties["quote_cached"], AttributeValue::Bool(false));
    assert_ne!(attest(&quote(None, now + 602, [5; 32])).0, attest(&alone).0);
}

#[test]
fn keys_survive_a_tpm_reset_and_a_cleared_tpm_is_reported() {
    let mut tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let s = store(&tpm, dir.path(), false);
    s.create(&name("laptop")).unwrap();
    assert!(verifies(&s, &name("laptop"), b"before"));
    tpm.restart();
    assert!(verifies(&s, &name("laptop"), b"after a reset"));
    tpm.wipe();
    let err = s.sign_digest(&name("laptop"), &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::TpmCleared(_)), "{err}");
    assert!(err.to_string().contains("re-enroll"), "{err}");
}

fn lockout_counter(tpm: &Swtpm) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let out = String::from_utf8(tpm.tool(&["tpm2_getcap", "properties-variable"], dir.path())).unwrap();
    let line = out.lines().find(|l| l.contains("TPM2_PT_LOCKOUT_COUNTER")).unwrap().to_owned();
    let value = line.rsplit(':').next().unwrap().trim();
    u32::from_str_radix(value.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn a_pin_protected_key_refuses_a_wrong_pin_once_per_try_until_lockout() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let key = name("laptop");
    let right = store_with_pin(&tpm, dir.path(), false, Some("2468")).unwrap();
    right.create(&key).unwrap();
    assert!(verifies(&right, &key, b"with the right PIN"));
    drop(right);
    // Without any PIN configured, the key cannot be used, and the TPM is not even asked.
    let none = store(&tpm, dir.path(), false);
    for _ in 0..2 {
        assert!(matches!(none.sign_digest(&key, &[1; 32]), Err(Error::TpmPinRequired(_))));
    }
    drop(none);
    assert_eq!(lockout_counter(&tpm), 0);

    let wrong = store_with_pin(&tpm, dir.path(), false, Some("1357")).unwrap();
    let err = wrong.sign_digest(&key, &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::TpmPinRefused(_)), "{err}");
    assert!(err.to_string().contains("wrong PIN") && !err.to_string().contains("1357"), "{err}");
    drop(wrong);
    // One try, one count: a refused PIN is never retried behind the caller's back.
    assert_eq!(lockout_counter(&tpm), 1);
    let wrong = store_with_pin(&tpm, dir.path(), false, Some("1357")).unwrap();
    let mut locked = false;
    for _ in 0..64 {
        match wrong.sign_digest(&key, &[1; 32]) {
            Err(Error::TpmPinRefused(_)) => continue,
            Err(Error::TpmLockout) => {
                locked = true;
                break;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert!(locked, "the TPM never locked out");
    // Locked out: even the right PIN is refused until recovery.
    drop(wrong);
    let right = store_with_pin(&tpm, dir.path(), false, Some("2468")).unwrap();
    assert!(matches!(right.sign_digest(&key, &[1; 32]), Err(Error::TpmLockout)));
}
