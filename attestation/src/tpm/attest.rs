//! TPMS_ATTEST: what a TPM signs for TPM2_Certify and TPM2_Quote.

use super::hash::TpmHash;
use super::wire::WireReader;
use super::TpmError;

/// TPM_GENERATED_VALUE: only the TPM puts this in front of data it signs with a restricted key.
const TPM_GENERATED: u32 = 0xff54_4347;
const ST_ATTEST_CERTIFY: u16 = 0x8017;
const ST_ATTEST_QUOTE: u16 = 0x8018;
/// Most PCR banks in one selection.
const MAX_BANKS: u32 = 8;

/// TPMS_CLOCK_INFO plus the firmware version: the TPM's clock at signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared.
    pub clock: u64,
    /// TPM Resets since the last clear (obfuscated outside the endorsement/platform hierarchy).
    pub reset_count: u32,
    /// TPM Restarts since the last Reset (obfuscated likewise).
    pub restart_count: u32,
    /// No clock value was lost since it was last saved (no power loss during the interval).
    pub safe: bool,
    /// Firmware version (obfuscated likewise).
    pub firmware_version: u64,
}

/// One bank of a PCR selection: the hash and the selected PCR indexes, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrBank {
    /// The bank's hash.
    pub hash: TpmHash,
    /// Selected PCR indexes, ascending.
    pub pcrs: Vec<u8>,
}

/// What a TPMS_ATTEST attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attested {
    /// TPM2_Certify: the certified object's Name and qualified Name.
    Certify {
        /// Name of the certified object.
        name: Vec<u8>,
    },
    /// TPM2_Quote: the PCR selection and the digest of their values.
    Quote {
        /// The selection, in the order the digest covers it.
        selection: Vec<PcrBank>,
        /// Hash of the selected PCR values, concatenated in selection order.
        pcr_digest: Vec<u8>,
    },
}

/// A parsed TPMS_ATTEST with the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmAttest {
    /// The marshalled TPMS_ATTEST.
    pub bytes: Vec<u8>,
    /// qualifiedSigner.
    pub qualified_signer: Vec<u8>,
    /// extraData: the nonce the caller gave.
    pub extra_data: Vec<u8>,
    /// Clock and firmware.
    pub clock: ClockInfo,
    /// The attested part.
    pub attested: Attested,
}

impl TpmAttest {
    /// Parses a TPMS_ATTEST (as `tpm2_quote -m` writes it). Only certify and quote are accepted;
    /// anything else, or a missing TPM_GENERATED_VALUE, is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = WireReader::new("TPMS_ATTEST", bytes);
        if r.u32("magic")? != TPM_GENERATED {
            return Err(TpmError::NotTpmGenerated);
        }
        let kind = r.u16("type")?;
        let qualified_signer = r.sized("qualifiedSigner", 66)?.to_vec();
        let extra_data = r.sized("extraData", 64)?.to_vec();
        let clock = ClockInfo {
            clock: r.u64("clockInfo.clock")?,
            reset_count: r.u32("clockInfo.resetCount")?,
            restart_count: r.u32("clockInfo.restartCount")?,
            safe: match r.u8("clockInfo.safe")? {
                0 => false,
                1 => true,
                _ => return Err(r.error("clockInfo.safe", "must be 0 or 1")),
            },
            firmware_version: r.u64("firmwareVersion")?,
        };
        let attested = match kind {
            ST_ATTEST_CERTIFY => {
                let name = r.sized("certify.name", 66)?.to_vec();
                r.sized("certify.qualifiedName", 66)?;
                Attested::Certify { name }
            }
            ST_ATTEST_QUOTE => {
                let selection = read_selection(&mut r)?;
                let pcr_digest = r.sized("quote.pcrDigest", 64)?.to_vec();
                Attested::Quote { selection, pcr_digest }
            }
            other => {
                return Err(TpmError::WrongAttestType {
                    expected: "certify or quote",
                    found: format!("type 0x{other:04x}"),
                })
            }
        };
        r.finish()?;
        Ok(Self { bytes: bytes.to_vec(), qualified_signer, extra_data, clock, attested })
    }
}

/// Reads a big-endian TPML_PCR_SELECTION.
fn read_selection(r: &mut WireReader<'_>) -> Result<Vec<PcrBank>, TpmError> {
    let count = r.u32("pcrSelect.count")?;
    if count > MAX_BANKS {
        return Err(r.error("pcrSelect.count", "too many banks"));
    }
    (0..count)
        .map(|_| {
            let hash = TpmHash::from_id(r.u16("pcrSelect.hash")?)?;
            let size = r.u8("pcrSelect.sizeofSelect")?;
            if size > 4 {
                return Err(r.error("pcrSelect.sizeofSelect", "more than 4 bytes (32 PCRs)"));
            }
            let select = r.take("pcrSelect.pcrSelect", usize::from(size))?;
            Ok(PcrBank { hash, pcrs: selected_indexes(select) })
        })
        .collect()
}

/// The PCR indexes set in a pcrSelect bitmap (bit i of byte j is PCR 8j+i).
pub(crate) fn selected_indexes(select: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (byte_index, byte) in select.iter().enumerate() {
        for bit in 0..8u8 {
            if byte & (1 << bit) != 0 {
                out.push(byte_index as u8 * 8 + bit);
            }
        }
    }
    out
}
