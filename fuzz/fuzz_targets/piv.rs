//! YubiKey PIV attestation (attestation/src/piv/), the path of `warrant evidence piv`
//! (cli/src/evidence.rs): the input is split into the slot certificate and the f9
//! certificate, each read as PEM or DER like the CLI reads its files, and verified by
//! `PivVerifier` (Yubico's pinned roots plus the repo's test PIV roots, as `--root` adds them)
//! at a fixed time: the slot and f9 profiles, the links, and the Yubico extensions (firmware,
//! serial, PIN and touch policies, form factor). The first byte picks `--allow-ysa-2024-03`.
//! Seeds: the slot/f9 pairs of attestation/tests/data (test cards and real YubiKeys).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_attestation::certificate::Cert;
use warrant_attestation::piv::PivVerifier;
use warrant_fuzz::split::parts;

const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    static VERIFIERS: OnceLock<[PivVerifier; 2]> = OnceLock::new();
    let verifiers = VERIFIERS.get_or_init(|| {
        let root = |pem: &[u8]| Cert::from_pem_or_der(pem).unwrap();
        let make = |allow| {
            PivVerifier::yubico()
                .unwrap()
                .with_root(root(include_bytes!("../../attestation/tests/data/piv-test/test-root.pem")))
                .with_root(root(include_bytes!("../../attestation/tests/data/piv-profile/root.pem")))
                .allow_ysa_2024_03(allow)
        };
        [make(false), make(true)]
    });
    let Some((&choice, rest)) = data.split_first() else { return };
    let [slot, f9] = parts(rest, 2)[..] else { return };
    let (Ok(slot), Ok(f9)) = (Cert::from_pem_or_der(slot), Cert::from_pem_or_der(f9)) else { return };
    if let Ok(facts) = verifiers[usize::from(choice & 1)].verify(&slot, &f9, NOW) {
        let _ = facts.to_device_facts();
        let _ = (facts.pin_policy.as_str(), facts.touch_policy.as_str(), facts.form_factor.kind());
    }
});
