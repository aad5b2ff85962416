//! `Verifier::install_status_list` sequences: one input is split (fuzz/src/split.rs) into up
//! to 8 lists, installed in order into a fresh verifier (the vectors' trust and time, no list
//! held). A part starting with `S` is an `arbitrary` ListSpec (fuzz/src/status.rs), signed, and
//! relative to the list generated before it (next, same, older or skipped sequence; a right,
//! zero or wrong `prev`); any other part is installed as raw bytes (seed: the vector list).
//! Then the vector warrant (status index 7 of the vector list's URI) is verified against
//! whatever is held. Property: per (issuer, URI), the held sequence never goes back.
#![no_main]

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use warrant_fuzz::fixtures::{vector_operation, vector_request, warrant_vector, FixedVerifier};
use warrant_fuzz::split::parts;
use warrant_fuzz::status::{Last, ListSpec};

fuzz_target!(|data: &[u8]| {
    let fixed = FixedVerifier::new(None, false);
    let mut last = Last::default();
    let mut held: HashMap<(String, String), u64> = HashMap::new();
    for part in parts(data, 8) {
        let bytes = match part.split_first() {
            Some((b'S', rest)) => {
                let Ok(spec) = ListSpec::arbitrary_take_rest(Unstructured::new(rest)) else { continue };
                let (bytes, next) = spec.generate(last);
                last = next;
                bytes
            }
            _ => part.to_vec(),
        };
        if let Ok(info) = fixed.verifier.install_status_list(&bytes) {
            let key = (info.issuer.clone(), info.uri.clone());
            let before = held.get(&key).copied().unwrap_or(0);
            assert!(info.sequence >= before, "status list rolled back from {before} to {}", info.sequence);
            held.insert(key, info.sequence);
            let now = fixed.verifier.status_list(&info.issuer, &info.uri).map(|i| i.sequence);
            assert_eq!(now, Some(info.sequence), "the installed list is not the one held");
        }
    }
    let _ = fixed.verifier.verify(&warrant_vector(), &vector_operation(), &vector_request(), None);
});
