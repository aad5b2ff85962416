//! Property tests: encoding round trips, and no single-byte change of a warrant is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use warrant_attestation::{AttributeValue, DeviceFacts, WarrantEvidence};
use warrant_envelope::{device::*, issue::*, *};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _./:é-]{1,40}"
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        text().prop_map(AttributeValue::Text),
        any::<i64>().prop_map(AttributeValue::Int),
        any::<bool>().prop_map(AttributeValue::Bool),
    ]
}

fn attributes() -> impl Strategy<Value = BTreeMap<String, AttributeValue>> {
    prop::collection::btree_map(text(), attribute_value(), 0..6)
}

fn payload_round_trip<T>(value: ciborium::Value, from: impl Fn(&[u8]) -> Result<T, Error>) -> T {
    from(&encode(&value)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn grant_claims_round_trip(
        issuer in text(), principal in text(), id in any::<[u8; 16]>(),
        iat in 0u64..u32::MAX as u64, life in 1u64..1_000_000,
        groups in prop::collection::vec(text(), 0..5), attrs in attributes(), props in attributes(),
        policy in text(), max_ttl in any::<u64>(), uri in text(), index in any::<u64>(),
    ) {
        let key = TestKey::new();
        let claims = GrantClaims {
            issuer, principal, id, issued_at: iat, not_before: iat, expires_at: iat + life,
            device_key: key.public_key().clone(),
            device: DeviceFacts { properties: props, ..DeviceFacts::software() },
            entity: EntityData { groups, attributes: attrs },
            policy, max_warrant_lifetime: max_ttl,
            status: StatusReference { uri, index },
        };
        prop_assert_eq!(payload_round_trip(claims.to_cbor(), GrantClaims::from_payload), claims);
    }

    #[test]
    fn warrant_claims_round_trip(
        issuer in text(), audience in text(), iat in 0u64..u32::MAX as u64, life in 1u64..100_000,
        id in any::<[u8; 16]>(), nonce in prop::option::of(prop::collection::vec(any::<u8>(), 8..=64)),
        action in text(), resource in text(), method in "[A-Z]{3,7}", target in text(),
        body in prop::collection::vec(any::<u8>(), 0..64), context in attributes(),
        grant in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let claims = WarrantClaims {
            issuer, audience, issued_at: iat, expires_at: iat + life, id, nonce, action, resource,
            request: RequestBinding::of(&HttpRequest { method: &method, target: &target, body: &body }),
            context, grant, evidence: WarrantEvidence::Software,
        };
        prop_assert_eq!(payload_round_trip(claims.to_cbor(), WarrantClaims::from_payload), claims);
    }

    #[test]
    fn status_list_claims_round_trip(
        sequence in any::<u64>(), previous in any::<[u8; 32]>(), iat in 0u64..u32::MAX as u64,
        revoked in prop::collection::btree_set(0u64..100_000, 0..20),
    ) {
        let mut bits = StatusBits::with_capacity(1024);
        for i in &revoked { bits.revoke(*i).unwrap(); }
        let claims = StatusListClaims {
            issuer: ISSUER.into(), uri: STATUS_URI.into(), sequence, previous,
            issued_at: iat, expires_at: iat + 1, time_to_live: 1, bits,
        };
        let decoded = payload_round_trip(claims.to_cbor().unwrap(), StatusListClaims::from_payload);
        for i in &revoked { prop_assert!(decoded.bits.is_revoked(*i).unwrap()); }
        prop_assert_eq!(decoded, claims);
    }

    #[test]
    fn no_single_byte_change_of_a_warrant_is_accepted(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let f = fixture();
        let mut warrant = f.warrant();
        let i = at.index(warrant.len());
        warrant[i] ^= xor;
        let v = f.verifier();
        prop_assert!(v.verify(&warrant, &expected(), &request(), None).is_err(), "byte {} ^ {:#x} accepted", i, xor);
    }

    #[test]
    fn no_single_byte_change_of_a_grant_is_accepted(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let f = fixture();
        let mut claims = f.warrant_claims();
        let i = at.index(claims.grant.len());
        claims.grant[i] ^= xor;
        // The device signs the altered grant in; the authority's signature must still refuse it.
        let warrant = claims.sign(&f.device).unwrap();
        prop_assert!(f.verifier().verify(&warrant, &expected(), &request(), None).is_err(), "grant byte {} ^ {:#x} accepted", i, xor);
    }
}

/// One fixture for all cases: key generation per case would dominate the run time.
fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(Fixture::new)
}

#[test]
fn the_fixture_warrant_is_accepted() {
    let f = fixture();
    assert!(f.verifier().verify(&f.warrant(), &expected(), &request(), None).is_ok());
}

/// Arbitrary CBOR-ish bytes: random, or a real warrant with a random slice replaced (with the
/// warrant it came from, since replacing bytes by the same bytes leaves it valid).
fn hostile_bytes() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(|b| (Vec::new(), b)),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(at, junk)| {
            let original = fixture().warrant();
            let mut w = original.clone();
            let i = at.index(w.len());
            let end = (i + junk.len()).min(w.len());
            w.splice(i..end, junk);
            (original, w)
        }),
        // A valid tag-18 prefix followed by noise, so decoding gets past the first bytes.
        prop::collection::vec(any::<u8>(), 0..512)
            .prop_map(|tail| (Vec::new(), [&[0xd2u8, 0x84][..], &tail].concat())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hostile_input_is_refused_without_panicking((original, bytes) in hostile_bytes()) {
        let v = fixture().verifier();
        let _ = inspect(&bytes);
        let _ = verify_enrollment(&bytes);
        let _ = v.install_status_list(&bytes);
        prop_assert!(v.verify(&bytes, &expected(), &request(), None).is_err() || bytes == original);
    }

    #[test]
    fn hostile_payloads_are_refused_without_panicking(payload in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = GrantClaims::from_payload(&payload);
        let _ = WarrantClaims::from_payload(&payload);
        let _ = StatusListClaims::from_payload(&payload);
        let _ = EnrollmentClaims::from_payload(&payload);
    }
}
