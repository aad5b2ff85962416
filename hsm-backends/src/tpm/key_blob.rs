//! A TPM key as the store keeps it: the TPM-wrapped private part and the public area, both as
//! TPM2_Create returned them, plus the Name of the storage root key they were made under.
//! (Never `context_save` blobs: those die with a TPM Reset.)

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// One key file, JSON, 0600.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyBlob {
    /// Format version: 1.
    pub version: u32,
    /// TPM2B_PRIVATE contents (encrypted by the storage root key; useless outside that TPM).
    pub private: String,
    /// TPMT_PUBLIC, hex.
    pub public: String,
    /// Name of the storage root key (hex) the key was created under.
    pub srk_name: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Whether the key's authValue is the configured PIN.
    pub pin: bool,
}

impl KeyBlob {
    pub(crate) fn read(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let corrupt = |reason| Error::CorruptKeyFile { path: PathBuf::from(path), reason };
        let blob: KeyBlob = serde_json::from_slice(&bytes).map_err(|_| corrupt("not a TPM key file"))?;
        if blob.version != 1 {
            return Err(corrupt("unknown TPM key file version"));
        }
        Ok(blob)
    }

    pub(crate) fn bytes(&self, path: &Path, field: &'static str) -> Result<Vec<u8>, Error> {
        let value = if field == "private" { &self.private } else { &self.public };
        hex::decode(value)
            .map_err(|_| Error::CorruptKeyFile { path: path.into(), reason: field_reason(field) })
    }
}

fn field_reason(field: &str) -> &'static str {
    if field == "private" {
        "the private blob is not hex"
    } else {
        "the public area is not hex"
    }
}
