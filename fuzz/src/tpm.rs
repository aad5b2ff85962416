//! A fixed TPM attestation key, and TPM structures built the way attestation/src/tpm/tests.rs
//! builds them (TPMT_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE, tpm2-tools PCR files).

use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use warrant_attestation::tpm::{attributes as attr, PcrValue, TpmHash, TpmPublic};

/// A restricted signing key fixed to its TPM: an AK.
pub const AK_ATTRS: u32 = attr::FIXED_TPM
    | attr::FIXED_PARENT
    | attr::SENSITIVE_DATA_ORIGIN
    | attr::USER_WITH_AUTH
    | attr::RESTRICTED
    | attr::SIGN;
/// An unrestricted signing key fixed to its TPM: a device key a certify vouches for.
pub const KEY_ATTRS: u32 =
    attr::FIXED_TPM | attr::FIXED_PARENT | attr::SENSITIVE_DATA_ORIGIN | attr::USER_WITH_AUTH | attr::SIGN;

// Test-only scalar of the fixed AK. Never use it for anything else.
const AK_SCALAR: &str = "7e57a77e57a77e57a77e57a77e57a77e57a77e57a77e57a77e57a77e57a77e51";

/// The fixed attestation key.
pub struct FixedAk {
    /// Its private key (deterministic ECDSA).
    pub signing: SigningKey,
    /// Its TPMT_PUBLIC.
    pub public_bytes: Vec<u8>,
    /// Parsed.
    pub public: TpmPublic,
}

impl FixedAk {
    /// The AK, with the AK attributes.
    pub fn new() -> Self {
        Self::with_attributes(AK_ATTRS)
    }

    /// The same key with other attributes (an unrestricted key, say).
    pub fn with_attributes(attributes: u32) -> Self {
        let signing = SigningKey::from_slice(&hex::decode(AK_SCALAR).unwrap()).unwrap();
        let public_bytes = ecc_public(attributes, &p256::PublicKey::from(signing.verifying_key()));
        let public = TpmPublic::parse(&public_bytes).unwrap();
        Self { signing, public_bytes, public }
    }

    /// Its TPMT_SIGNATURE (ECDSA, SHA-256) over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = self.signing.sign_prehash(&Sha256::digest(message)).unwrap();
        let (r, s) = sig.split_bytes();
        let mut out = vec![0x00, 0x18, 0x00, 0x0B];
        sized(&mut out, &r);
        sized(&mut out, &s);
        out
    }
}

impl Default for FixedAk {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends a TPM2B: u16 big-endian size, then the bytes.
pub fn sized(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as u16).to_be_bytes());
    out.extend(b);
}

/// A TPMT_PUBLIC of an ECC P-256 signing key (ECDSA/SHA-256), Name algorithm SHA-256.
pub fn ecc_public(attributes: u32, key: &p256::PublicKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = key.to_encoded_point(false);
    let mut out = vec![0x00, 0x23, 0x00, 0x0B];
    out.extend(attributes.to_be_bytes());
    out.extend([0, 0, 0x00, 0x10, 0x00, 0x18, 0x00, 0x0B, 0x00, 0x03, 0x00, 0x10]);
    sized(&mut out, point.x().unwrap());
    sized(&mut out, point.y().unwrap());
    out
}

/// A TPMT_PUBLIC of an RSA-2048 key with `scheme` (0x0014 RSASSA, 0x0016 RSAPSS) and the
/// given modulus (for parsing and failing verifications; no private key exists).
pub fn rsa_public(attributes: u32, scheme: u16, modulus: &[u8]) -> Vec<u8> {
    let mut out = vec![0x00, 0x01, 0x00, 0x0B];
    out.extend(attributes.to_be_bytes());
    out.extend([0, 0, 0x00, 0x10]);
    out.extend(scheme.to_be_bytes());
    out.extend([0x00, 0x0B, 0x08, 0x00, 0, 0, 0, 0]);
    sized(&mut out, modulus);
    out
}

/// A fixed 2048-bit odd modulus (not a product of known primes: verifications fail).
pub fn fixed_modulus() -> Vec<u8> {
    let mut n: Vec<u8> = (0..256u32).map(|i| (i.wrapping_mul(151).wrapping_add(0x9d)) as u8).collect();
    n[0] |= 0xc0;
    n[255] |= 1;
    n
}

fn attest_head(kind: u16, nonce: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff, 0x54, 0x43, 0x47];
    out.extend(kind.to_be_bytes());
    sized(&mut out, &[0x40, 0x00, 0x00, 0x07]);
    sized(&mut out, nonce);
    out.extend(1234u64.to_be_bytes());
    out.extend(3u32.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.push(1);
    out.extend(0x2019_1023_0016_3636u64.to_be_bytes());
    out
}

/// The fixed PCR values: SHA-256 PCRs 0-7, PCR i all bytes i.
pub fn pcr_values() -> Vec<PcrValue> {
    (0..8u8).map(|i| PcrValue { hash: TpmHash::Sha256, index: i, value: vec![i; 32] }).collect()
}

/// A TPMS_ATTEST of a quote of SHA-256 PCRs 0-7 holding `values`, over `nonce`.
pub fn quote_attest(nonce: &[u8], values: &[PcrValue]) -> Vec<u8> {
    let mut out = attest_head(0x8018, nonce);
    out.extend([0, 0, 0, 1, 0x00, 0x0B, 3, 0xff, 0, 0]);
    let concatenated: Vec<u8> = values.iter().flat_map(|v| v.value.iter().copied()).collect();
    sized(&mut out, &Sha256::digest(concatenated));
    out
}

/// A TPMS_ATTEST of a certify of the object named `name`, over `nonce`.
pub fn certify_attest(nonce: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = attest_head(0x8017, nonce);
    sized(&mut out, name);
    sized(&mut out, name);
    out
}

/// `values` as `tpm2_quote -o -F serialized` writes them (one SHA-256 bank, PCRs 0-7).
pub fn serialized_pcr_file(values: &[PcrValue]) -> Vec<u8> {
    let mut file = 1u32.to_le_bytes().to_vec();
    file.extend([0x0B, 0x00, 3, 0xff, 0, 0, 0, 0]);
    file.extend([0u8; 15 * 8]);
    file.extend(1u32.to_le_bytes());
    file.extend((values.len() as u32).to_le_bytes());
    for v in values {
        file.extend((v.value.len() as u16).to_le_bytes());
        file.extend(&v.value);
        file.extend(vec![0u8; 64 - v.value.len()]);
    }
    file
}

/// `values` as `tpm2_quote -o -F values` writes them.
pub fn values_pcr_file(values: &[PcrValue]) -> Vec<u8> {
    values.iter().flat_map(|v| v.value.iter().copied()).collect()
}
