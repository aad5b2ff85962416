//! `verify_quote` with the fixed AK (attestation/src/tpm/verify.rs), as `warrant evidence
//! tpm-quote` calls it: the input is split into a TPMS_ATTEST, a TPMT_SIGNATURE and a PCR
//! file. Unless the signature part is given (non-empty), the harness signs the attest with
//! the AK, so that mutated attests get past the signature to the type, nonce, selection and
//! PCR digest checks. The PCR file is read as the CLI reads it, with the attest's own
//! selection, in the format the input's first byte picks (serialized or values). An optional
//! fourth part is the nonce to expect. Seeds: valid quotes with both PCR file formats.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_attestation::tpm::{read_pcr_file, verify_quote, Attested, PcrFileFormat, TpmAttest};
use warrant_fuzz::split::parts;
use warrant_fuzz::tpm::FixedAk;

fuzz_target!(|data: &[u8]| {
    static AK: OnceLock<FixedAk> = OnceLock::new();
    let ak = AK.get_or_init(FixedAk::new);
    let Some((&choice, data)) = data.split_first() else { return };
    let p = parts(data, 4);
    let (attest, signature, pcrs, nonce) = match p.as_slice() {
        [a, s, f, n] => (*a, *s, *f, Some(*n)),
        [a, s, f] => (*a, *s, *f, None),
        _ => return,
    };
    let signature = if signature.is_empty() { ak.sign(attest) } else { signature.to_vec() };
    let selection = match TpmAttest::parse(attest) {
        Ok(TpmAttest { attested: Attested::Quote { selection, .. }, .. }) => selection,
        _ => Vec::new(),
    };
    let format = if choice & 1 == 0 { PcrFileFormat::Serialized } else { PcrFileFormat::Values };
    let values = read_pcr_file(pcrs, format, &selection).unwrap_or_default();
    if let Ok(quote) = verify_quote(&ak.public, attest, &signature, values, nonce) {
        assert_eq!(quote.signer, ak.public.name());
        if let Some(nonce) = nonce {
            assert_eq!(quote.nonce, nonce);
        }
    }
});
