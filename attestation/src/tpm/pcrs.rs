//! PCR values supplied with a quote, and the files tpm2-tools writes them to.

use super::attest::{selected_indexes, PcrBank};
use super::hash::TpmHash;
use super::TpmError;

/// Most PCR values accepted with one quote (three full banks of 24).
pub const MAX_PCR_VALUES: usize = 72;

/// One PCR's value in one bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrValue {
    /// The bank.
    pub hash: TpmHash,
    /// The PCR index.
    pub index: u8,
    /// Its value.
    pub value: Vec<u8>,
}

/// How `tpm2_quote -o` / `tpm2_pcrread -o` wrote the values (`-F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcrFileFormat {
    /// The default: the C structures in host (little-endian) order — a TPML_PCR_SELECTION,
    /// a u32 count, then that many TPML_DIGEST.
    Serialized,
    /// The digests concatenated in selection order.
    Values,
}

const SELECTION_ENTRIES: usize = 16;
const SELECTION_ENTRY: usize = 8; // u16 hash, u8 sizeofSelect, 4 select bytes, 1 pad
const SELECTION_SIZE: usize = 4 + SELECTION_ENTRIES * SELECTION_ENTRY;
const DIGESTS_PER_LIST: usize = 8;
const DIGEST_SLOT: usize = 2 + 64; // u16 size + 64-byte buffer
const DIGEST_LIST_SIZE: usize = 4 + DIGESTS_PER_LIST * DIGEST_SLOT;

/// Reads a PCR file. `selection` is the quote's own selection: with `Values` it says what the
/// digests are; with `Serialized` the file's selection must equal it.
pub fn read_pcr_file(
    bytes: &[u8],
    format: PcrFileFormat,
    selection: &[PcrBank],
) -> Result<Vec<PcrValue>, TpmError> {
    let slots: Vec<(TpmHash, u8)> =
        selection.iter().flat_map(|b| b.pcrs.iter().map(move |&i| (b.hash, i))).collect();
    if slots.len() > MAX_PCR_VALUES {
        return Err(bad(format!("more than {MAX_PCR_VALUES} PCRs selected")));
    }
    let digests = match format {
        PcrFileFormat::Values => split_values(bytes, &slots)?,
        PcrFileFormat::Serialized => {
            let (file_selection, digests) = read_serialized(bytes)?;
            if file_selection != selection {
                return Err(bad("the file's PCR selection differs from the quote's".into()));
            }
            digests
        }
    };
    if digests.len() != slots.len() {
        return Err(bad(format!("{} PCR values for {} selected PCRs", digests.len(), slots.len())));
    }
    slots
        .into_iter()
        .zip(digests)
        .map(|((hash, index), value)| {
            if value.len() != hash.digest_len() {
                return Err(bad(format!("PCR {index} ({}) value has {} bytes", hash.as_str(), value.len())));
            }
            Ok(PcrValue { hash, index, value })
        })
        .collect()
}

fn bad(reason: String) -> TpmError {
    TpmError::Malformed(format!("PCR file: {reason}"))
}

fn split_values(bytes: &[u8], slots: &[(TpmHash, u8)]) -> Result<Vec<Vec<u8>>, TpmError> {
    let total: usize = slots.iter().map(|(h, _)| h.digest_len()).sum();
    if bytes.len() != total {
        return Err(bad(format!("{} bytes, but the selection needs {total}", bytes.len())));
    }
    let mut rest = bytes;
    Ok(slots
        .iter()
        .map(|(h, _)| {
            let (value, tail) = rest.split_at(h.digest_len());
            rest = tail;
            value.to_vec()
        })
        .collect())
}

fn le_u32(bytes: &[u8], at: usize) -> Result<u32, TpmError> {
    let b = bytes.get(at..at + 4).ok_or_else(|| bad("truncated".into()))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_serialized(bytes: &[u8]) -> Result<(Vec<PcrBank>, Vec<Vec<u8>>), TpmError> {
    let count = le_u32(bytes, 0)? as usize;
    if count > SELECTION_ENTRIES {
        return Err(bad(format!("{count} banks in the selection")));
    }
    let mut selection = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4 + i * SELECTION_ENTRY;
        let entry = bytes.get(at..at + SELECTION_ENTRY).ok_or_else(|| bad("truncated selection".into()))?;
        let hash = TpmHash::from_id(u16::from_le_bytes([entry[0], entry[1]]))?;
        let size = usize::from(entry[2]);
        if size > 4 {
            return Err(bad("sizeofSelect above 4".into()));
        }
        selection.push(PcrBank { hash, pcrs: selected_indexes(&entry[3..3 + size]) });
    }
    let lists = le_u32(bytes, SELECTION_SIZE)? as usize;
    if lists > MAX_PCR_VALUES.div_ceil(DIGESTS_PER_LIST) {
        return Err(bad(format!("{lists} digest lists")));
    }
    if bytes.len() != SELECTION_SIZE + 4 + lists * DIGEST_LIST_SIZE {
        return Err(bad(format!("{} bytes do not hold {lists} digest lists", bytes.len())));
    }
    let mut digests = Vec::new();
    for l in 0..lists {
        let base = SELECTION_SIZE + 4 + l * DIGEST_LIST_SIZE;
        let n = le_u32(bytes, base)? as usize;
        if n > DIGESTS_PER_LIST {
            return Err(bad(format!("a digest list of {n}")));
        }
        for d in 0..n {
            let at = base + 4 + d * DIGEST_SLOT;
            let size = usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
            if size > 64 {
                return Err(bad(format!("a digest of {size} bytes")));
            }
            digests.push(bytes[at + 2..at + 2 + size].to_vec());
        }
    }
    Ok((selection, digests))
}

/// Parses a PCR selection as tpm2-tools writes it: `sha256:0,1,2+sha1:7` (banks joined by `+`,
/// indexes 0 to 23, each at most once per bank).
pub fn parse_pcr_selection(spec: &str) -> Result<Vec<(TpmHash, Vec<u8>)>, String> {
    let mut banks: Vec<(TpmHash, Vec<u8>)> = Vec::new();
    for bank in spec.split('+') {
        let (name, list) =
            bank.split_once(':').ok_or_else(|| format!("{bank:?} is not BANK:INDEX,INDEX,..."))?;
        let hash = TpmHash::parse(name)
            .ok_or_else(|| format!("unknown PCR bank {name:?} (sha1, sha256, sha384, sha512)"))?;
        if banks.iter().any(|(h, _)| *h == hash) {
            return Err(format!("bank {name} appears twice"));
        }
        let mut pcrs = Vec::new();
        for index in list.split(',') {
            let i: u8 = index
                .trim()
                .parse()
                .ok()
                .filter(|i| *i < 24)
                .ok_or_else(|| format!("PCR index {index:?} is not 0 to 23"))?;
            if pcrs.contains(&i) {
                return Err(format!("PCR {i} appears twice in bank {name}"));
            }
            pcrs.push(i);
        }
        pcrs.sort_unstable();
        banks.push((hash, pcrs));
    }
    Ok(banks)
}

/// The digest a quote covers: the values in selection order, hashed with `hash`.
pub fn pcr_digest(hash: TpmHash, values: &[PcrValue]) -> Vec<u8> {
    let parts: Vec<&[u8]> = values.iter().map(|v| v.value.as_slice()).collect();
    hash.digest(&parts)
}

/// Fails unless `values` cover exactly the PCRs of `selection`, in selection order.
pub fn check_coverage(selection: &[PcrBank], values: &[PcrValue]) -> Result<(), TpmError> {
    let selected = selection.iter().flat_map(|b| b.pcrs.iter().map(move |&i| (b.hash, i)));
    let supplied = values.iter().map(|v| (v.hash, v.index));
    if selected.eq(supplied) {
        Ok(())
    } else {
        Err(TpmError::PcrCoverage)
    }
}
