//! Warrant decoding (envelope/src/warrant.rs): a whole COSE_Sign1 through `inspect` (which also
//! decodes the embedded grant, and the evidence through attestation's `WarrantEvidence::from_cbor`),
//! and the same bytes as a bare claims set. Seeds: docs/vectors/warrant.hex, its payload, and
//! warrants carrying each evidence kind. A decoded claims set must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_envelope::device::WarrantClaims;
use warrant_envelope::inspect;

fuzz_target!(|data: &[u8]| {
    let _ = inspect(data);
    if let Ok(claims) = WarrantClaims::from_payload(data) {
        let _ = claims.evidence_binding();
        let mut encoded = Vec::new();
        ciborium::ser::into_writer(&claims.to_cbor(), &mut encoded).unwrap();
        assert_eq!(
            WarrantClaims::from_payload(&encoded).ok().as_ref(),
            Some(&claims),
            "re-encoded warrant differs"
        );
    }
});
