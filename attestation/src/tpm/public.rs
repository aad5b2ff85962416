//! TPMT_PUBLIC: the public area of a TPM object, its attributes and its Name.

use super::hash::TpmHash;
use super::wire::WireReader;
use super::TpmError;
use crate::P256PublicKey;

/// TPMA_OBJECT bits that matter to an appraisal.
pub mod attributes {
    /// The object cannot be duplicated: it lives in this TPM only.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// The object's parent cannot change.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// The TPM generated the sensitive part (it was never imported).
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// The key's authValue (a password or PIN) authorises use.
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// Not subject to dictionary-attack lockout.
    pub const NO_DA: u32 = 1 << 10;
    /// Signs only TPM-generated structures (an attestation key) or decrypts only parents.
    pub const RESTRICTED: u32 = 1 << 16;
    /// A decryption key.
    pub const DECRYPT: u32 = 1 << 17;
    /// A signing key.
    pub const SIGN: u32 = 1 << 18;
}

/// The public key inside a public area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmPublicKey {
    /// ECC on NIST P-256.
    P256(P256PublicKey),
    /// RSA: modulus and public exponent.
    Rsa {
        /// Modulus, big-endian.
        modulus: Vec<u8>,
        /// Public exponent.
        exponent: u32,
    },
}

/// A parsed TPMT_PUBLIC, with the exact bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    /// The marshalled TPMT_PUBLIC.
    pub bytes: Vec<u8>,
    /// nameAlg.
    pub name_alg: TpmHash,
    /// objectAttributes (TPMA_OBJECT).
    pub attributes: u32,
    /// The key.
    pub key: TpmPublicKey,
    /// The signing scheme's hash when the key fixes one (restricted signing keys must).
    pub scheme_hash: Option<TpmHash>,
}

const ALG_RSA: u16 = 0x0001;
const ALG_ECC: u16 = 0x0023;
const ALG_NULL: u16 = 0x0010;
const ECC_NIST_P256: u16 = 0x0003;
/// Largest key parameter accepted (RSA-4096 modulus).
const MAX_KEY_BYTES: usize = 512;

impl TpmPublic {
    /// Parses a TPM2B_PUBLIC (u16 size, then TPMT_PUBLIC), as `tpm2_createak -u` writes it.
    pub fn from_tpm2b(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = WireReader::new("TPM2B_PUBLIC", bytes);
        let inner = r.sized("size", 1024)?;
        r.finish()?;
        Self::parse(inner)
    }

    /// Parses a TPMT_PUBLIC; every byte must belong to it.
    pub fn parse(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = WireReader::new("TPMT_PUBLIC", bytes);
        let kind = r.u16("type")?;
        let name_alg = TpmHash::from_id(r.u16("nameAlg")?)?;
        let attributes = r.u32("objectAttributes")?;
        r.sized("authPolicy", 64)?;
        // symmetric: TPMT_SYM_DEF_OBJECT
        if r.u16("symmetric.algorithm")? != ALG_NULL {
            r.u16("symmetric.keyBits")?;
            r.u16("symmetric.mode")?;
        }
        let scheme = r.u16("scheme")?;
        let scheme_hash = if scheme == ALG_NULL {
            None
        } else {
            let hash = TpmHash::from_id(r.u16("scheme.hashAlg")?)?;
            if scheme == 0x001A {
                r.u16("scheme.count")?; // ECDAA
            }
            Some(hash)
        };
        let key = match kind {
            ALG_RSA => {
                let _bits = r.u16("keyBits")?;
                let exponent = match r.u32("exponent")? {
                    0 => 65537,
                    e => e,
                };
                let modulus = r.sized("unique.rsa", MAX_KEY_BYTES)?.to_vec();
                TpmPublicKey::Rsa { modulus, exponent }
            }
            ALG_ECC => {
                let curve = r.u16("curveID")?;
                if r.u16("kdf.scheme")? != ALG_NULL {
                    r.u16("kdf.hashAlg")?;
                }
                let x = r.sized("unique.ecc.x", 66)?;
                let y = r.sized("unique.ecc.y", 66)?;
                if curve != ECC_NIST_P256 {
                    return Err(TpmError::UnsupportedAlgorithm(format!("ECC curve 0x{curve:04x}")));
                }
                TpmPublicKey::P256(
                    P256PublicKey::from_coordinates(x, y)
                        .map_err(|e| TpmError::Malformed(format!("TPMT_PUBLIC unique.ecc: {e}")))?,
                )
            }
            other => return Err(TpmError::UnsupportedAlgorithm(format!("object type 0x{other:04x}"))),
        };
        r.finish()?;
        Ok(Self { bytes: bytes.to_vec(), name_alg, attributes, key, scheme_hash })
    }

    /// The object's Name: nameAlg (big-endian u16) followed by H_nameAlg(TPMT_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let mut name = self.name_alg.id().to_be_bytes().to_vec();
        name.extend(self.name_alg.digest(&[&self.bytes]));
        name
    }

    /// Whether every bit of `mask` is set.
    pub fn has(&self, mask: u32) -> bool {
        self.attributes & mask == mask
    }

    /// A short description of the key type: `ecc-p256` or `rsa-<bits>`.
    pub fn key_type(&self) -> String {
        match &self.key {
            TpmPublicKey::P256(_) => "ecc-p256".into(),
            TpmPublicKey::Rsa { modulus, .. } => format!("rsa-{}", modulus.len() * 8),
        }
    }
}
