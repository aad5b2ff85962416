//! Cached TPM quotes through the verifier: a quote reused across warrants is fresh only if it
//! is bound to a status list of the grant's authority that the verifier holds (the newest or
//! the one before), and its age is measured from that list's `iat`. The quotes are synthetic
//! TPM structures signed in software by an AK the grant records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::collections::BTreeMap;

use common::*;
use warrant_attestation::tpm::{cached_quote_nonce, PcrValue, TpmError, TpmHash, TpmQuoteEvidence};
use warrant_attestation::{AttestationError, AttributeValue, BackendKind, DeviceFacts, WarrantEvidence};
use warrant_envelope::{device::*, issue::*, verify::*, *};

fn sized(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as u16).to_be_bytes());
    out.extend(b);
}

/// TPMT_PUBLIC of a restricted ECDSA P-256 signing key (an AK).
fn ak_public(ak: &TestKey) -> Vec<u8> {
    // fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign
    let attributes: u32 = 0x0000_0002 | 0x0000_0010 | 0x0000_0020 | 0x0000_0040 | 0x0001_0000 | 0x0004_0000;
    let mut out = vec![0x00, 0x23, 0x00, 0x0B];
    out.extend(attributes.to_be_bytes());
    out.extend([0, 0, 0x00, 0x10, 0x00, 0x18, 0x00, 0x0B, 0x00, 0x03, 0x00, 0x10]);
    sized(&mut out, ak.public_key().x());
    sized(&mut out, ak.public_key().y());
    out
}

const PCRS: [[u8; 32]; 8] = [[0; 32]; 8];

/// A TPMS_ATTEST quote of SHA-256 PCRs 0-7 over `nonce`.
fn quote_attest(nonce: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0xff, 0x54, 0x43, 0x47, 0x80, 0x18];
    sized(&mut out, &[0x40, 0x00, 0x00, 0x07]);
    sized(&mut out, nonce);
    out.extend(1234u64.to_be_bytes());
    out.extend(3u32.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.push(1);
    out.extend(0x2019_1023_0016_3636u64.to_be_bytes());
    out.extend([0, 0, 0, 1, 0x00, 0x0B, 3, 0xff, 0, 0]);
    sized(&mut out, &sha256(&PCRS.concat()));
    out
}

/// The evidence a TPM device attaches: a quote over `nonce`, cached (bound to `status_list`)
/// or not.
fn quote(ak: &TestKey, nonce: &[u8; 32], status_list: Option<[u8; 32]>) -> WarrantEvidence {
    let attest = quote_attest(nonce);
    let sig = ak.sign_message(&attest);
    let mut signature = vec![0x00, 0x18, 0x00, 0x0B];
    sized(&mut signature, &sig[..32]);
    sized(&mut signature, &sig[32..]);
    let pcrs = PCRS
        .iter()
        .enumerate()
        .map(|(i, v)| PcrValue { hash: TpmHash::Sha256, index: i as u8, value: v.to_vec() })
        .collect();
    WarrantEvidence::TpmQuote(TpmQuoteEvidence { attest, signature, pcrs, status_list })
}

/// The fixture with a TPM grant (recording the AK), and two status lists after the first: list
/// n has sequence n and `iat` NOW - 10 + 3 (n - 1).
struct Tpm {
    f: Fixture,
    ak: TestKey,
    lists: Vec<Vec<u8>>,
}

impl Tpm {
    fn new() -> Self {
        let mut f = Fixture::new();
        let ak = TestKey::new();
        f.grant_claims.device = DeviceFacts {
            backend: BackendKind::Tpm,
            properties: BTreeMap::from([(
                "ak_public".to_owned(),
                AttributeValue::Text(hex::encode(ak_public(&ak))),
            )]),
        };
        f.grant = f.grant_claims.sign(&f.authority).unwrap();
        let mut lists = vec![f.status.clone()];
        for sequence in 2..=3 {
            let mut claims = f.status_claims.clone();
            claims.sequence = sequence;
            claims.previous = status_list_digest(lists.last().unwrap()).unwrap();
            claims.issued_at = NOW - 10 + 3 * (sequence - 1);
            lists.push(claims.sign(&f.authority).unwrap());
        }
        Self { f, ak, lists }
    }

    /// A verifier holding lists 1 to `upto`, installed in order.
    fn verifier(&self, upto: usize) -> Verifier {
        let v = self.f.builder().allow_software_evidence(false).build().unwrap();
        for list in &self.lists[..upto] {
            v.install_status_list(list).unwrap();
        }
        v
    }

    /// A warrant whose cached quote is bound to `list` (its freshness digest).
    fn cached(&self, list: &[u8]) -> Vec<u8> {
        self.cached_to(status_list_freshness(list).unwrap())
    }

    /// A warrant whose cached quote is bound to `digest`.
    fn cached_to(&self, digest: [u8; 32]) -> Vec<u8> {
        let nonce = cached_quote_nonce(&self.f.grant_claims.id, &digest);
        let mut claims = self.f.warrant_claims();
        claims.evidence = quote(&self.ak, &nonce, Some(digest));
        claims.sign(&self.f.device).unwrap()
    }
}

fn facts(v: &VerifiedWarrant) -> (&AttributeValue, &AttributeValue) {
    (&v.device.properties["quote_cached"], &v.device.properties["quote_age"])
}

fn not_fresh(result: Result<VerifiedWarrant, Error>) {
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Evidence(AttestationError::Tpm(TpmError::QuoteNotFresh))), "{err:?}");
    let reason = err.to_string();
    assert!(reason.contains("does not hold") && reason.contains("newest status list"), "{reason}");
}

#[test]
fn a_cached_quote_bound_to_the_held_list_is_accepted_and_aged_from_its_iat() {
    let t = Tpm::new();
    let v = t.verifier(1);
    let verified = v.verify(&t.cached(&t.lists[0]), &expected(), &request(), None).unwrap();
    // List 1 was issued at NOW - 10.
    assert_eq!(facts(&verified), (&AttributeValue::Bool(true), &AttributeValue::Int(10)));
}

#[test]
fn a_cached_quote_bound_to_the_list_before_the_held_one_is_accepted_and_aged_from_that_list() {
    let t = Tpm::new();
    let v = t.verifier(2);
    let verified = v.verify(&t.cached(&t.lists[0]), &expected(), &request(), None).unwrap();
    assert_eq!(facts(&verified), (&AttributeValue::Bool(true), &AttributeValue::Int(10)));
    let verified = v.verify(&t.cached(&t.lists[1]), &expected(), &request(), None).unwrap();
    assert_eq!(facts(&verified), (&AttributeValue::Bool(true), &AttributeValue::Int(7)));
}

#[test]
fn a_cached_quote_bound_to_a_list_two_behind_is_not_fresh() {
    let t = Tpm::new();
    // The verifier moved on twice: the quote (made for list 1) may predate a change in state.
    not_fresh(t.verifier(3).verify(&t.cached(&t.lists[0]), &expected(), &request(), None));
    // A verifier that took list 3 directly never held list 2 either.
    let v = t.f.builder().allow_software_evidence(false).build().unwrap();
    v.install_status_list(&t.lists[2]).unwrap();
    not_fresh(v.verify(&t.cached(&t.lists[1]), &expected(), &request(), None));
    assert!(v.verify(&t.cached(&t.lists[2]), &expected(), &request(), None).is_ok());
}

#[test]
fn a_cached_quote_bound_to_a_list_the_verifier_never_saw_is_not_fresh() {
    let t = Tpm::new();
    // A list the authority has not published yet (or a made-up one) proves nothing.
    not_fresh(t.verifier(1).verify(&t.cached(&t.lists[2]), &expected(), &request(), None));
}

#[test]
fn a_cached_quote_bound_to_another_authoritys_list_for_the_same_uri_is_not_fresh() {
    let t = Tpm::new();
    let other = TestKey::new();
    let v = t
        .f
        .builder()
        .allow_software_evidence(false)
        .trust(TrustedAuthority { issuer: "other-authority".into(), keys: vec![other.public_key().clone()] })
        .build()
        .unwrap();
    v.install_status_list(&t.lists[0]).unwrap();
    // Another trusted authority publishes a list with the grant's status URI: the verifier
    // holds it, but for that authority only.
    let mut claims = t.f.status_claims.clone();
    claims.issuer = "other-authority".into();
    claims.issued_at = NOW - 1;
    let foreign = claims.sign(&other).unwrap();
    v.install_status_list(&foreign).unwrap();
    not_fresh(v.verify(&t.cached(&foreign), &expected(), &request(), None));
}

#[test]
fn a_quote_for_one_warrant_stays_bound_to_that_warrant_and_claims_no_age() {
    let t = Tpm::new();
    let v = t.verifier(3);
    let mut claims = t.f.warrant_claims();
    claims.evidence = quote(&t.ak, &claims.evidence_binding().unwrap(), None);
    let verified = v.verify(&claims.sign(&t.f.device).unwrap(), &expected(), &request(), None).unwrap();
    let properties = &verified.device.properties;
    assert_eq!(properties["quote_binding"], AttributeValue::Text("warrant".into()));
    assert!(!properties.contains_key("quote_age"), "a foreseeable warrant's quote has no provable age");
    // Made for another warrant: refused.
    let mut other = t.f.warrant_claims();
    other.evidence = quote(&t.ak, &claims.evidence_binding().unwrap(), None);
    let err = v.verify(&other.sign(&t.f.device).unwrap(), &expected(), &request(), None).unwrap_err();
    assert!(matches!(err, Error::Evidence(AttestationError::Tpm(TpmError::NonceMismatch))), "{err:?}");
}

/// Everything in the next list's signed content is known or guessable in advance (`seq`,
/// `prev`, the bits, an `iat` on the authority's schedule): a device can build it exactly.
/// Its quote is still refused, because the binding covers the authority's signature, which the
/// device cannot know before the authority makes it.
#[test]
fn a_quote_for_a_predicted_next_list_is_not_fresh() {
    let t = Tpm::new();
    let mut predicted = t.f.status_claims.clone();
    predicted.sequence = 2;
    predicted.previous = status_list_digest(&t.lists[0]).unwrap();
    predicted.issued_at = NOW - 10 + 3;
    let throwaway = TestKey::new();
    let mut guess = parts(&predicted.sign(&throwaway).unwrap());
    guess.protected = parts(&t.lists[1]).protected;
    let guess = resign(guess, &throwaway);
    assert_eq!(
        status_list_digest(&guess).unwrap(),
        status_list_digest(&t.lists[1]).unwrap(),
        "the prediction of the signed content is exact"
    );
    let v = t.verifier(2);
    not_fresh(v.verify(&t.cached(&guess), &expected(), &request(), None));
    // Bound to the signed content alone (the predictable value), it is refused too.
    not_fresh(v.verify(
        &t.cached_to(status_list_digest(&t.lists[1]).unwrap()),
        &expected(),
        &request(),
        None,
    ));
}

/// A relay's `(r, n-s)` copy of a list binds quotes exactly as the original does.
#[test]
fn a_malleated_copy_of_a_list_binds_as_the_list() {
    let t = Tpm::new();
    let flipped = malleate(&t.lists[1]);
    assert_ne!(flipped, t.lists[1]);
    assert_eq!(status_list_freshness(&flipped).unwrap(), status_list_freshness(&t.lists[1]).unwrap());
    let v = t.verifier(2);
    assert!(v.verify(&t.cached(&flipped), &expected(), &request(), None).is_ok());
}

/// A device can make a warrant for a request it foresees, with a later `iat`, and quote it
/// now: bound to the warrant alone, the quote proves nothing about when it was made. A policy
/// that bounds `quote_age` therefore denies it (the fact is absent), and accepts the same kind
/// of quote only when a nonce this verifier chose is in the binding.
#[test]
fn a_precomputed_per_warrant_quote_cannot_pass_a_quote_age_policy() {
    let t = Tpm::new();
    let policy = "permit(principal, action, resource) when { context.device.properties.quote_age < 60 };";
    let v = t.f.builder().allow_software_evidence(false).local_policy(policy).build().unwrap();
    v.install_status_list(&t.lists[0]).unwrap();
    let mut claims = t.f.warrant_claims();
    claims.issued_at = NOW + 1000;
    claims.expires_at = NOW + 1060;
    claims.evidence = quote(&t.ak, &claims.evidence_binding().unwrap(), None);
    let warrant = claims.sign(&t.f.device).unwrap();
    t.f.clock.set(NOW + 1000);
    let err = v.verify(&warrant, &expected(), &request(), None).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyEvaluationFailed { which: "local", errors, .. } if errors.contains("quote_age")),
        "{err:?}"
    );
    // With the verifier's nonce in the binding, the quote was made at request time.
    let nonce = [7u8; 16];
    let mut claims = t.f.warrant_claims();
    claims.issued_at = NOW + 1000;
    claims.expires_at = NOW + 1060;
    claims.nonce = Some(nonce.to_vec());
    claims.evidence = quote(&t.ak, &claims.evidence_binding().unwrap(), None);
    let verified =
        v.verify(&claims.sign(&t.f.device).unwrap(), &expected(), &request(), Some(&nonce)).unwrap();
    assert_eq!(verified.device.properties["quote_binding"], AttributeValue::Text("verifier-nonce".into()));
}
