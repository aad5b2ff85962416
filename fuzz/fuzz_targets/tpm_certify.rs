//! `verify_certify` with the fixed AK (attestation/src/tpm/verify.rs), the check behind TPM
//! enrollment evidence: the input is split into a TPMS_ATTEST, a TPMT_SIGNATURE, the
//! certified key's TPMT_PUBLIC and the nonce. Unless the signature part is given, the harness
//! signs the attest with the AK, so mutations reach the Name and attribute checks of the
//! certified key. Seed: a valid certify of an ECC key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_attestation::tpm::{verify_certify, TpmPublic};
use warrant_fuzz::split::parts;
use warrant_fuzz::tpm::FixedAk;

fuzz_target!(|data: &[u8]| {
    static AK: OnceLock<FixedAk> = OnceLock::new();
    let ak = AK.get_or_init(FixedAk::new);
    let [attest, signature, key, nonce] = parts(data, 4)[..] else { return };
    let Ok(certified) = TpmPublic::parse(key) else { return };
    let signature = if signature.is_empty() { ak.sign(attest) } else { signature.to_vec() };
    if verify_certify(&ak.public, attest, &signature, &certified, nonce).is_ok() {
        assert!(!certified.has(warrant_attestation::tpm::attributes::RESTRICTED));
    }
});
