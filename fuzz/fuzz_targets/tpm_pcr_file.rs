//! Both tpm2-tools PCR file formats (attestation/src/tpm/pcrs.rs: `tpm2_quote -o -F
//! serialized`, the default, and `-F values`) and `parse_pcr_selection` (the `quote_pcrs`
//! setting). The first byte chooses the format and one of a few quote selections; the rest is
//! the file, and also, as text, a selection spec. Seeds: both formats of PCRs 0-7.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_attestation::tpm::{parse_pcr_selection, read_pcr_file, PcrBank, PcrFileFormat, TpmHash};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, file)) = data.split_first() else { return };
    let format = if choice & 1 == 0 { PcrFileFormat::Serialized } else { PcrFileFormat::Values };
    let selection = match (choice >> 1) % 4 {
        0 => vec![PcrBank { hash: TpmHash::Sha256, pcrs: (0..8).collect() }],
        1 => vec![PcrBank { hash: TpmHash::Sha1, pcrs: vec![0, 7] }],
        2 => vec![
            PcrBank { hash: TpmHash::Sha256, pcrs: (0..24).collect() },
            PcrBank { hash: TpmHash::Sha384, pcrs: (0..24).collect() },
            PcrBank { hash: TpmHash::Sha1, pcrs: (0..24).collect() },
        ],
        _ => vec![],
    };
    if let Ok(values) = read_pcr_file(file, format, &selection) {
        assert!(values.len() <= warrant_attestation::tpm::MAX_PCR_VALUES);
    }
    if let Ok(spec) = std::str::from_utf8(file) {
        let _ = parse_pcr_selection(spec);
    }
});
