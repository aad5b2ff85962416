//! TPM2_MakeCredential done in software, so an authority without a TPM (an HSM host, say) can
//! prove that an attestation key lives in the same TPM as an endorsement key: only that TPM can
//! run TPM2_ActivateCredential on the result and learn the secret inside.
//!
//! TPM 2.0 Part 1 §24 (credential protection) with the TCG EK Credential Profile's default
//! template L-1 (RSA 2048, SHA-256, AES-128-CFB) for the endorsement key.

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::wire::put_sized;
use super::TpmError;

/// The two TPM2B buffers TPM2_ActivateCredential takes (their contents, without the size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// TPM2B_ID_OBJECT contents: the integrity HMAC and the encrypted credential.
    pub id_object: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET contents: the seed, encrypted to the endorsement key.
    pub encrypted_secret: Vec<u8>,
}

/// Longest credential a TPM accepts (a TPM2B_DIGEST of the largest hash).
pub const MAX_CREDENTIAL: usize = 64;

/// Protects `secret` so that only the TPM holding the RSA endorsement key `ek` (from its EK
/// certificate) can recover it, and only for the object whose Name is `ak_name`.
pub fn make_credential(
    ek: &rsa::RsaPublicKey,
    ak_name: &[u8],
    secret: &[u8],
) -> Result<Credential, TpmError> {
    if secret.is_empty() || secret.len() > MAX_CREDENTIAL {
        return Err(TpmError::Malformed("a credential must be 1 to 64 bytes".into()));
    }
    // The seed is as long as the EK's nameAlg digest (SHA-256).
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(seed.as_mut());
    let padding = rsa::Oaep::new_with_label::<Sha256, _>("IDENTITY\0");
    let encrypted_secret = ek.encrypt(&mut OsRng, padding, seed.as_ref()).map_err(|e| {
        TpmError::UnsupportedAlgorithm(format!("endorsement key unusable for MakeCredential: {e}"))
    })?;

    let sym_key = kdf_a(seed.as_ref(), b"STORAGE", ak_name, 128)?;
    let mut enc_identity = Vec::with_capacity(2 + secret.len());
    put_sized(&mut enc_identity, secret);
    let key: [u8; 16] = sym_key[..16].try_into().map_err(|_| TpmError::Malformed("KDFa".into()))?;
    cfb_mode::Encryptor::<aes::Aes128>::new(&key.into(), &[0u8; 16].into()).encrypt(&mut enc_identity);

    let hmac_key = kdf_a(seed.as_ref(), b"INTEGRITY", &[], 256)?;
    let outer_hmac = hmac(&hmac_key, &[&enc_identity, ak_name])?;
    let mut id_object = Vec::with_capacity(2 + outer_hmac.len() + enc_identity.len());
    put_sized(&mut id_object, &outer_hmac);
    id_object.extend_from_slice(&enc_identity);
    Ok(Credential { id_object, encrypted_secret })
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, TpmError> {
    // HMAC takes keys of any length; the trait's constructor is fallible all the same.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| TpmError::Malformed("HMAC key".into()))?;
    for p in parts {
        mac.update(p);
    }
    Ok(mac.finalize().into_bytes().to_vec())
}

/// KDFa with HMAC-SHA-256 (Part 1 §11.4.10.2), with an empty contextV.
fn kdf_a(key: &[u8], label: &[u8], context_u: &[u8], bits: u32) -> Result<Zeroizing<Vec<u8>>, TpmError> {
    let mut out = Zeroizing::new(Vec::new());
    let mut counter = 1u32;
    while out.len() * 8 < bits as usize {
        out.extend(hmac(key, &[&counter.to_be_bytes(), label, &[0], context_u, &bits.to_be_bytes()])?);
        counter += 1;
    }
    out.truncate(bits as usize / 8);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdf_a_matches_the_reference_construction_and_length() {
        // One block: HMAC(key, 00000001 || "STORAGE" || 00 || ctx || 00000080), truncated to 16.
        let expected = hmac(b"k", &[&[0, 0, 0, 1], b"STORAGE", &[0], b"ctx", &[0, 0, 0, 0x80]]).unwrap();
        assert_eq!(kdf_a(b"k", b"STORAGE", b"ctx", 128).unwrap().as_slice(), &expected[..16]);
        assert_eq!(kdf_a(b"k", b"INTEGRITY", &[], 512).unwrap().len(), 64);
    }
}
