//! X.509 parsing and chain checking (attestation/src/certificate*.rs), as TPM EK and PIV
//! checks use them: the input is split into a leaf and up to three intermediates, each read as
//! PEM or DER (`Cert::from_pem_or_der`), chained with `chain_to_anchor` to fixed anchors (the
//! test roots of attestation/tests/data) at a fixed time; every extension accessor and the EK
//! profile check run on the leaf; the whole input is also read as a PEM bundle.
//! Seeds: the certificates of attestation/tests/data, and leaf + intermediate chains.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_attestation::certificate::{certificates_from_pem, chain_to_anchor, Cert};
use warrant_attestation::tpm::check_ek_certificate;
use warrant_fuzz::split::parts;

const NOW: u64 = 1_800_000_000;

fn anchors() -> &'static [Cert] {
    static ANCHORS: OnceLock<Vec<Cert>> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        [
            &include_bytes!("../../attestation/tests/data/test-root-p256.pem")[..],
            include_bytes!("../../attestation/tests/data/ek-test/root.pem"),
            include_bytes!("../../attestation/tests/data/unrelated-ca.pem"),
            include_bytes!("../../attestation/tests/data/piv-test/test-root.pem"),
        ]
        .into_iter()
        .map(|pem| Cert::from_pem_or_der(pem).unwrap())
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = certificates_from_pem(data);
    let mut certs = parts(data, 4).into_iter().filter_map(|p| Cert::from_pem_or_der(p).ok());
    let Some(leaf) = certs.next() else { return };
    let intermediates: Vec<Cert> = certs.collect();
    let _ = leaf.subject();
    let _ = leaf.fingerprint();
    let _ = leaf.public_key_der();
    let _ = leaf.check_validity(NOW);
    let _ = leaf.basic_constraints();
    let _ = leaf.key_usage();
    let _ = leaf.extended_key_usage();
    let _ = leaf.subject_alt_name();
    let _ = leaf.is_ca();
    let _ = leaf.sole_common_name();
    let _ = check_ek_certificate(&leaf);
    for issuer in intermediates.iter().chain(anchors()) {
        let _ = leaf.check_issued_by(issuer);
    }
    let _ = chain_to_anchor(&leaf, &intermediates, anchors(), NOW);
});
