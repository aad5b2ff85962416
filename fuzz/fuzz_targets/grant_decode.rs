//! Grant decoding (envelope/src/grant.rs): a whole COSE_Sign1 through `inspect` (the strict
//! COSE reader, then the claims), and the same bytes as a bare claims set through
//! `GrantClaims::from_payload`. Seeds: docs/vectors/grant.hex and its payload. A decoded
//! claims set must re-encode to the bytes it came from and decode to the same claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_envelope::inspect;
use warrant_envelope::issue::GrantClaims;

fuzz_target!(|data: &[u8]| {
    let _ = inspect(data);
    if let Ok(claims) = GrantClaims::from_payload(data) {
        let mut encoded = Vec::new();
        ciborium::ser::into_writer(&claims.to_cbor(), &mut encoded).unwrap();
        assert_eq!(
            GrantClaims::from_payload(&encoded).ok().as_ref(),
            Some(&claims),
            "re-encoded grant differs"
        );
        assert_eq!(encoded, data, "two encodings of one grant are accepted");
    }
});
