use warrant_attestation::{BackendKind, Evidence, P256PublicKey};

use crate::{Error, KeyName};

/// How a stored key's private part is protected at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProtection {
    /// By file permissions only.
    FilePermissions,
    /// Sealed with a passphrase (Argon2id + XChaCha20-Poly1305).
    Passphrase,
    /// Held by hardware; never leaves it.
    Hardware,
}

impl KeyProtection {
    /// A short name for display.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyProtection::FilePermissions => "file-permissions",
            KeyProtection::Passphrase => "passphrase",
            KeyProtection::Hardware => "hardware",
        }
    }
}

/// What a key store says about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its name in the store.
    pub name: KeyName,
    /// The backend holding it.
    pub backend: BackendKind,
    /// Its public key.
    pub public_key: P256PublicKey,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// How the private part is protected.
    pub protection: KeyProtection,
}

/// A store of P-256 signing keys. Implemented by each backend (software, TPM, PKCS#11,
/// YubiKey); the rest of warrant uses keys only through this trait.
pub trait KeyStore: Send + Sync {
    /// The backend this store uses.
    fn backend(&self) -> BackendKind;

    /// Creates a new key (inside the hardware, for hardware backends).
    fn create(&self, name: &KeyName) -> Result<KeyInfo, Error>;

    /// All keys in the store, by name.
    fn list(&self) -> Result<Vec<KeyInfo>, Error>;

    /// The public key of `name`.
    fn public_key(&self, name: &KeyName) -> Result<P256PublicKey, Error>;

    /// Signs a SHA-256 digest with ECDSA P-256; returns raw `r || s`.
    fn sign_digest(&self, name: &KeyName, digest: &[u8; 32]) -> Result<[u8; 64], Error>;

    /// Evidence about where `name` lives, bound to `nonce` (an authority challenge, or the
    /// digest of the operation being signed) where the backend can bind it.
    fn evidence(&self, name: &KeyName, nonce: &[u8; 32]) -> Result<Evidence, Error>;

    /// Deletes `name`.
    fn delete(&self, name: &KeyName) -> Result<(), Error>;

    /// A key that already exists in the backend, named by a backend-specific reference (for
    /// PKCS#11, an RFC 7512 URI), so it can be used without being created here.
    fn existing(&self, reference: &str) -> Result<KeyInfo, Error> {
        Err(Error::Unsupported(format!(
            "the {} backend cannot use existing keys by reference ({reference:?})",
            self.backend().as_str()
        )))
    }
}
