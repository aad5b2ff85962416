//! TPM hash algorithm identifiers (TPM_ALG_ID) and hashing with them.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::TpmError;

/// A hash algorithm a TPM uses for names, PCR banks and signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TpmHash {
    /// TPM_ALG_SHA1 (0x0004). Verified because old quotes exist; refusing it is policy.
    Sha1,
    /// TPM_ALG_SHA256 (0x000B).
    Sha256,
    /// TPM_ALG_SHA384 (0x000C).
    Sha384,
    /// TPM_ALG_SHA512 (0x000D).
    Sha512,
}

impl TpmHash {
    /// Reads a TPM_ALG_ID naming a hash.
    pub fn from_id(id: u16) -> Result<Self, TpmError> {
        match id {
            0x0004 => Ok(TpmHash::Sha1),
            0x000B => Ok(TpmHash::Sha256),
            0x000C => Ok(TpmHash::Sha384),
            0x000D => Ok(TpmHash::Sha512),
            other => Err(TpmError::UnsupportedAlgorithm(format!("hash algorithm 0x{other:04x}"))),
        }
    }

    /// The TPM_ALG_ID.
    pub fn id(self) -> u16 {
        match self {
            TpmHash::Sha1 => 0x0004,
            TpmHash::Sha256 => 0x000B,
            TpmHash::Sha384 => 0x000C,
            TpmHash::Sha512 => 0x000D,
        }
    }

    /// The name used in facts and PCR property names: `sha1`, `sha256`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            TpmHash::Sha1 => "sha1",
            TpmHash::Sha256 => "sha256",
            TpmHash::Sha384 => "sha384",
            TpmHash::Sha512 => "sha512",
        }
    }

    /// Parses [`TpmHash::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [TpmHash::Sha1, TpmHash::Sha256, TpmHash::Sha384, TpmHash::Sha512]
            .into_iter()
            .find(|h| h.as_str() == name)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            TpmHash::Sha1 => 20,
            TpmHash::Sha256 => 32,
            TpmHash::Sha384 => 48,
            TpmHash::Sha512 => 64,
        }
    }

    /// Hashes the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            TpmHash::Sha1 => run::<Sha1>(parts),
            TpmHash::Sha256 => run::<Sha256>(parts),
            TpmHash::Sha384 => run::<Sha384>(parts),
            TpmHash::Sha512 => run::<Sha512>(parts),
        }
    }
}
