//! The whole offline check, `Verifier::verify`, on raw bytes: a verifier of the vectors'
//! audience trusting the vectors' authority, holding the vector status list, at the vectors'
//! time (ManualClock), every cache off and the replay store emptied per input, with the vector
//! warrant's request. Seed: docs/vectors/warrant.hex (which verifies). Mutations rarely keep
//! a valid signature; verify_structured reaches what lies behind it.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_fuzz::fixtures::{vector_operation, vector_request, FixedVerifier};

fuzz_target!(|data: &[u8]| {
    static FIXED: OnceLock<FixedVerifier> = OnceLock::new();
    let fixed = FIXED.get_or_init(|| FixedVerifier::new(None, true));
    fixed.replay.reset();
    let _ = fixed.verifier.verify(data, &vector_operation(), &vector_request(), None);
});
