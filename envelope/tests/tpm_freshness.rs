//! Cached TPM quotes through the verifier: a quote reused across warrants is fresh only if it
//! is bound to a status list of the grant's authority that the verifier holds (the newest or
//! the one before), and its age is measured from that list's `iat`. The quotes are synthetic
//! TPM structures signed in software by an AK the grant records.

mod common;

use std::collections::BTreeMap;

use common::*;
use warrant_attestation::tpm::{cached_quote_nonce, PcrValue, TpmError, TpmHash, TpmQuoteEvidence};
use warrant_attestation::{AttestationError, AttributeValue, BackendKind, DeviceFacts, Evidence};
use warrant_envelope::*;

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
fn quote(ak: &TestKey, nonce: &[u8; 32], status_list: Option<[u8; 32]>) -> Evidence {
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
    Evidence::TpmQuote(TpmQuoteEvidence { attest, signature, pcrs, status_list })
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

    /// A warrant whose cached quote is bound to `list` (its digest).
    fn cached(&self, list: &[u8]) -> Vec<u8> {
        let digest = status_list_digest(list).unwrap();
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
    let verified = v.verify(&t.cached(&t.lists[0]), &request(), None).unwrap();
    // List 1 was issued at NOW - 10.
    assert_eq!(facts(&verified), (&AttributeValue::Bool(true), &AttributeValue::Int(10)));
}

#[test]
fn a_cached_quote_bound_to_the_list_before_the_held_one_is_accepted_and_aged_from_that_list() {
    let t = Tpm::new();
    let v = t.verifier(2);
    let verified = v.verify(&t.cached(&t.lists[0]), &request(), None).unwrap();
    assert_eq!(facts(&verified), (&AttributeValue::Bool(true), &AttributeValue::Int(10)));
    let verified = v.verify(&t.cached(&t.lists[1]), &request(), None).unwrap();
    assert_eq!(facts(&verified), (&AttributeValue::Bool(true), &AttributeValue::Int(7)));
}

#[test]
fn a_cached_quote_bound_to_a_list_two_behind_is_not_fresh() {
    let t = Tpm::new();
    // The verifier moved on twice: the quote (made for list 1) may predate a change in state.
    not_fresh(t.verifier(3).verify(&t.cached(&t.lists[0]), &request(), None));
    // A verifier that took list 3 directly never held list 2 either.
    let v = t.f.builder().allow_software_evidence(false).build().unwrap();
    v.install_status_list(&t.lists[2]).unwrap();
    not_fresh(v.verify(&t.cached(&t.lists[1]), &request(), None));
    assert!(v.verify(&t.cached(&t.lists[2]), &request(), None).is_ok());
}

#[test]
fn a_cached_quote_bound_to_a_list_the_verifier_never_saw_is_not_fresh() {
    let t = Tpm::new();
    // A list the authority has not published yet (or a made-up one) proves nothing.
    not_fresh(t.verifier(1).verify(&t.cached(&t.lists[2]), &request(), None));
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
    not_fresh(v.verify(&t.cached(&foreign), &request(), None));
}

#[test]
fn a_quote_for_one_warrant_stays_bound_to_that_warrant_and_has_age_zero() {
    let t = Tpm::new();
    let v = t.verifier(3);
    let mut claims = t.f.warrant_claims();
    claims.evidence = quote(&t.ak, &claims.evidence_binding(), None);
    let verified = v.verify(&claims.sign(&t.f.device).unwrap(), &request(), None).unwrap();
    assert_eq!(facts(&verified), (&AttributeValue::Bool(false), &AttributeValue::Int(0)));
    // Made for another warrant: refused.
    let mut other = t.f.warrant_claims();
    other.evidence = quote(&t.ak, &claims.evidence_binding(), None);
    let err = v.verify(&other.sign(&t.f.device).unwrap(), &request(), None).unwrap_err();
    assert!(matches!(err, Error::Evidence(AttestationError::Tpm(TpmError::NonceMismatch))), "{err:?}");
}
