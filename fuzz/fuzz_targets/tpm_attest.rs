//! TPMS_ATTEST parsing (attestation/src/tpm/attest.rs), as `tpm2_quote -m` and a certify
//! write it: magic, type, qualified signer, extraData, clock info, firmware version, then a
//! quote's PCR selection and digest or a certify's names. Seeds: a quote and a certify built
//! like attestation's tests build them (fuzz/src/tpm.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_attestation::tpm::{Attested, TpmAttest};

fuzz_target!(|data: &[u8]| {
    if let Ok(attest) = TpmAttest::parse(data) {
        if let Attested::Quote { selection, .. } = &attest.attested {
            for bank in selection {
                let _ = bank.hash.digest_len();
            }
        }
    }
});
