//! The software key file: a fixed binary layout, optionally sealed with a passphrase.
//!
//! ```text
//! magic      16  "WARRANT-SOFTKEY" 0x01
//! protection  1  0 = none, 1 = Argon2id + XChaCha20-Poly1305
//! created_at  8  big-endian seconds since the epoch
//! public     65  SEC1 uncompressed P-256 point
//! -- protection 0:
//! secret     32  the private scalar, big-endian
//! -- protection 1:
//! salt       16
//! m_cost      4  Argon2id memory, KiB, big-endian
//! t_cost      4  iterations
//! p_cost      4  lanes
//! nonce      24
//! sealed     48  the private scalar encrypted, with its 16-byte tag; AAD = all bytes above
//! ```

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use warrant_attestation::P256PublicKey;
use zeroize::Zeroizing;

const MAGIC: &[u8; 16] = b"WARRANT-SOFTKEY\x01";
const HEADER_LEN: usize = 16 + 1 + 8 + 65;
const PLAIN_LEN: usize = HEADER_LEN + 32;
const SEALED_PARAMS_LEN: usize = 16 + 4 + 4 + 4 + 24;
const SEALED_LEN: usize = HEADER_LEN + SEALED_PARAMS_LEN + 48;

/// Argon2id cost: RFC 9106's second recommended option (64 MiB, 3 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KdfCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl KdfCost {
    pub(crate) const DEFAULT: KdfCost = KdfCost { memory_kib: 64 * 1024, iterations: 3, lanes: 1 };
    /// Refuse files demanding absurd work (a file from outside must not exhaust memory).
    const MAX_MEMORY_KIB: u32 = 1024 * 1024;
}

/// Why a key file could not be opened (mapped to [`crate::Error`] with the path by the store).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyFileError {
    Corrupt(&'static str),
    PassphraseRequired,
    WrongPassphrase,
    Crypto(&'static str),
}

/// The parts of a key file that are not secret.
#[derive(Debug, Clone)]
pub(crate) struct KeyFileHeader {
    pub sealed: bool,
    pub created_at: u64,
    pub public_key: P256PublicKey,
}

/// Encodes a key file; the secret is sealed when a passphrase is given.
pub(crate) fn encode(
    secret: &[u8; 32],
    public_key: &P256PublicKey,
    created_at: u64,
    passphrase: Option<(&[u8], KdfCost)>,
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let mut out = Zeroizing::new(Vec::with_capacity(SEALED_LEN));
    out.extend_from_slice(MAGIC);
    out.push(u8::from(passphrase.is_some()));
    out.extend_from_slice(&created_at.to_be_bytes());
    out.extend_from_slice(public_key.sec1());
    match passphrase {
        None => out.extend_from_slice(secret),
        Some((passphrase, cost)) => {
            let mut salt = [0u8; 16];
            let mut nonce = [0u8; 24];
            aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyFileError::Crypto("random"))?;
            aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyFileError::Crypto("random"))?;
            out.extend_from_slice(&salt);
            out.extend_from_slice(&cost.memory_kib.to_be_bytes());
            out.extend_from_slice(&cost.iterations.to_be_bytes());
            out.extend_from_slice(&cost.lanes.to_be_bytes());
            out.extend_from_slice(&nonce);
            let cipher = cipher(passphrase, &salt, cost)?;
            let sealed = cipher
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad: &out })
                .map_err(|_| KeyFileError::Crypto("seal"))?;
            out.extend_from_slice(&sealed);
        }
    }
    Ok(out)
}

/// Reads the non-secret header.
pub(crate) fn header(bytes: &[u8]) -> Result<KeyFileHeader, KeyFileError> {
    if bytes.len() < HEADER_LEN || &bytes[..16] != MAGIC {
        return Err(KeyFileError::Corrupt("not a warrant software key file"));
    }
    let sealed = match bytes[16] {
        0 if bytes.len() == PLAIN_LEN => false,
        1 if bytes.len() == SEALED_LEN => true,
        0 | 1 => return Err(KeyFileError::Corrupt("wrong length")),
        _ => return Err(KeyFileError::Corrupt("unknown protection")),
    };
    let created_at =
        u64::from_be_bytes(bytes[17..25].try_into().map_err(|_| KeyFileError::Corrupt("header"))?);
    let public_key =
        P256PublicKey::from_sec1(&bytes[25..HEADER_LEN]).map_err(|_| KeyFileError::Corrupt("public key"))?;
    Ok(KeyFileHeader { sealed, created_at, public_key })
}

/// Reads the secret scalar, unsealing it with `passphrase` if the file is sealed.
pub(crate) fn secret(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let header = header(bytes)?;
    let mut secret = Zeroizing::new([0u8; 32]);
    if !header.sealed {
        secret.copy_from_slice(&bytes[HEADER_LEN..]);
        return Ok(secret);
    }
    let passphrase = passphrase.ok_or(KeyFileError::PassphraseRequired)?;
    let params = &bytes[HEADER_LEN..HEADER_LEN + SEALED_PARAMS_LEN];
    let word = |at: usize| u32::from_be_bytes([params[at], params[at + 1], params[at + 2], params[at + 3]]);
    let cost = KdfCost { memory_kib: word(16), iterations: word(20), lanes: word(24) };
    if cost.memory_kib > KdfCost::MAX_MEMORY_KIB || cost.iterations > 64 || cost.lanes > 16 {
        return Err(KeyFileError::Corrupt("key derivation cost out of bounds"));
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&params[..16]);
    let nonce = XNonce::from_slice(&params[28..52]);
    let aad_end = HEADER_LEN + SEALED_PARAMS_LEN;
    let plain = Zeroizing::new(
        cipher(passphrase, &salt, cost)?
            .decrypt(nonce, Payload { msg: &bytes[aad_end..], aad: &bytes[..aad_end] })
            .map_err(|_| KeyFileError::WrongPassphrase)?,
    );
    if plain.len() != 32 {
        return Err(KeyFileError::Corrupt("sealed secret length"));
    }
    secret.copy_from_slice(&plain);
    Ok(secret)
}

fn cipher(passphrase: &[u8], salt: &[u8; 16], cost: KdfCost) -> Result<XChaCha20Poly1305, KeyFileError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.lanes, Some(32))
        .map_err(|_| KeyFileError::Corrupt("key derivation parameters"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|_| KeyFileError::Crypto("key derivation"))?;
    XChaCha20Poly1305::new_from_slice(key.as_ref()).map_err(|_| KeyFileError::Crypto("cipher key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfCost = KdfCost { memory_kib: 64, iterations: 1, lanes: 1 };

    fn public() -> P256PublicKey {
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
        .unwrap();
        use aws_lc_rs::signature::KeyPair;
        P256PublicKey::from_sec1(pair.public_key().as_ref()).unwrap()
    }

    #[test]
    fn plain_and_sealed_round_trip() {
        let key = public();
        let plain = encode(&[7; 32], &key, 42, None).unwrap();
        assert_eq!(*secret(&plain, None).unwrap(), [7; 32]);
        let h = header(&plain).unwrap();
        assert_eq!((h.sealed, h.created_at, h.public_key), (false, 42, key.clone()));

        let sealed = encode(&[9; 32], &key, 43, Some((b"correct horse", CHEAP))).unwrap();
        assert!(header(&sealed).unwrap().sealed);
        assert!(!sealed.windows(32).any(|w| w == [9; 32]), "the secret must not appear in a sealed file");
        assert_eq!(*secret(&sealed, Some(b"correct horse")).unwrap(), [9; 32]);
        assert_eq!(secret(&sealed, Some(b"wrong")).unwrap_err(), KeyFileError::WrongPassphrase);
        assert_eq!(secret(&sealed, None).unwrap_err(), KeyFileError::PassphraseRequired);
    }

    #[test]
    fn altered_sealed_header_is_detected() {
        let sealed = encode(&[9; 32], &public(), 43, Some((b"pw", CHEAP))).unwrap();
        let mut altered = sealed.to_vec();
        altered[20] ^= 1; // created_at is authenticated data
        assert_eq!(secret(&altered, Some(b"pw")).unwrap_err(), KeyFileError::WrongPassphrase);
    }

    #[test]
    fn corrupt_files_and_absurd_costs_are_refused() {
        assert!(matches!(header(b"short"), Err(KeyFileError::Corrupt(_))));
        let plain = encode(&[7; 32], &public(), 1, None).unwrap();
        assert!(matches!(header(&plain[..plain.len() - 1]), Err(KeyFileError::Corrupt(_))));
        let mut sealed = encode(&[9; 32], &public(), 43, Some((b"pw", CHEAP))).unwrap().to_vec();
        sealed[HEADER_LEN + 16..HEADER_LEN + 20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(secret(&sealed, Some(b"pw")), Err(KeyFileError::Corrupt(_))));
    }
}
