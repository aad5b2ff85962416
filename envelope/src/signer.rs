/// Something that holds a P-256 private key and signs SHA-256 digests with it: a software key,
/// a TPM, a PKCS#11 token or a YubiKey. The envelope never sees where the key lives.
pub trait Signer {
    /// The public half of the signing key.
    fn public_key(&self) -> &warrant_attestation::P256PublicKey;

    /// Signs a SHA-256 digest with ECDSA P-256, returning the raw `r || s` signature.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>>;
}
