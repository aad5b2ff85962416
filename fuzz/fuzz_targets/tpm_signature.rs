//! TPMT_SIGNATURE parsing and verification (attestation/src/tpm/signature.rs), as
//! `tpm2_quote -s` writes it (ECDSA, RSASSA, RSAPSS with their hash): parsed, then checked
//! against the fixed ECC AK and a fixed RSA key of each scheme over a fixed message.
//! Seeds: signatures of each scheme.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_attestation::tpm::{TpmPublic, TpmSignature};
use warrant_fuzz::tpm::{fixed_modulus, rsa_public, FixedAk, AK_ATTRS};

fuzz_target!(|data: &[u8]| {
    static KEYS: OnceLock<Vec<TpmPublic>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        vec![
            FixedAk::new().public,
            TpmPublic::parse(&rsa_public(AK_ATTRS, 0x0014, &fixed_modulus())).unwrap(),
            TpmPublic::parse(&rsa_public(AK_ATTRS, 0x0016, &fixed_modulus())).unwrap(),
        ]
    });
    if let Ok(signature) = TpmSignature::parse(data) {
        let _ = signature.alg.as_str();
        for key in keys {
            let _ = signature.verify(key, b"a fixed TPMS_ATTEST");
        }
    }
});
