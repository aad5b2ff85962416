//! Enrollment request decoding and self-verification (envelope/src/enrollment.rs):
//! `inspect`, `verify_enrollment` (signature by the key in its own `cnf`, then the evidence:
//! software, PKCS#11, TPM certify with its EK certificate, YubiKey PIV with its chain, at the
//! vectors' time), and `EnrollmentClaims::from_payload`. Seeds: docs/vectors/enrollment.hex,
//! its payload, and requests carrying each evidence kind.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_attestation::EnrollmentTrust;
use warrant_envelope::inspect;
use warrant_envelope::issue::{verify_enrollment_with, EnrollmentClaims};
use warrant_fuzz::fixtures::T;

fuzz_target!(|data: &[u8]| {
    static TRUST: OnceLock<EnrollmentTrust> = OnceLock::new();
    let trust = TRUST.get_or_init(|| EnrollmentTrust::new(T).unwrap());
    let _ = inspect(data);
    let _ = verify_enrollment_with(data, trust);
    if let Ok(claims) = EnrollmentClaims::from_payload(data) {
        let mut encoded = Vec::new();
        ciborium::ser::into_writer(&claims.to_cbor(), &mut encoded).unwrap();
        assert_eq!(
            EnrollmentClaims::from_payload(&encoded).ok().as_ref(),
            Some(&claims),
            "re-encoded request differs"
        );
    }
});
