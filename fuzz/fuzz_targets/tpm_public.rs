//! TPMT_PUBLIC and TPM2B_PUBLIC parsing (attestation/src/tpm/public.rs): the AK file of
//! `tpm2_createak -u` and the keys in TPM evidence; then the Name and key type computed from
//! a parsed key, and the attestation-key check. Seeds: ECC and RSA keys (fuzz/src/tpm.rs),
//! bare and TPM2B-wrapped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_attestation::tpm::{check_attestation_key, TpmPublic};

fuzz_target!(|data: &[u8]| {
    for parsed in [TpmPublic::parse(data), TpmPublic::from_tpm2b(data)] {
        if let Ok(public) = parsed {
            let _ = public.name();
            let _ = public.key_type();
            let _ = check_attestation_key(&public);
        }
    }
});
