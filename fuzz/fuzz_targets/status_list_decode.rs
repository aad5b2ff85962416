//! Status list decoding (envelope/src/status_list.rs), including the zlib inflation of the
//! bits (bounded by MAX_STATUS_BYTES: a decompression bomb must be refused, not inflated):
//! `inspect`, `status_list_digest`, and `StatusListClaims::from_payload` on the bare claims.
//! Seeds: docs/vectors/status-list.hex, its payload, and lists with other bit patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_envelope::inspect;
use warrant_envelope::issue::{status_list_digest, StatusListClaims};

fuzz_target!(|data: &[u8]| {
    let _ = inspect(data);
    let _ = status_list_digest(data);
    if let Ok(claims) = StatusListClaims::from_payload(data) {
        for index in [0, 1, 7, claims.bits.len().saturating_sub(1), claims.bits.len(), u64::MAX] {
            let _ = claims.bits.is_revoked(index);
        }
        // The bits re-compress (differently, perhaps) and decode to the same claims.
        let value = claims.to_cbor().unwrap();
        let mut encoded = Vec::new();
        ciborium::ser::into_writer(&value, &mut encoded).unwrap();
        assert_eq!(
            StatusListClaims::from_payload(&encoded).ok().as_ref(),
            Some(&claims),
            "re-encoded list differs"
        );
    }
});
