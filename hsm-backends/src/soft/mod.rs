//! The software key store: P-256 keys in files readable only by their owner, optionally
//! sealed with a passphrase. For development and for machines without hardware; its
//! evidence says exactly that, and verifiers refuse it unless their policy allows it.

mod key_file;
mod settings;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use warrant_attestation::{BackendKind, EnrollmentEvidence, P256PublicKey, WarrantEvidence};
use zeroize::Zeroizing;

use crate::clock::unix_seconds;
use crate::key_cache::KeyCache;
use crate::private_files::{check_private, io, open_private_dir, write_new_private_file};
use crate::reconcile::reconcile_dir;
use crate::{Error, KeyInfo, KeyName, KeyProtection, KeyStore, Reconciled, WarrantScope};
use key_file::{KdfCost, KeyFileError};
pub use settings::SoftSettings;

const EXTENSION: &str = "key";

/// A directory of software keys.
pub struct SoftKeyStore {
    dir: PathBuf,
    passphrase: Option<Zeroizing<Vec<u8>>>,
    kdf_cost: KdfCost,
    /// Unsealed keys, so a passphrase costs one key derivation per key, not per signature.
    loaded: KeyCache<Arc<EcdsaKeyPair>>,
    /// Public keys read so far: a signing daemon asks for them on every request.
    public_keys: KeyCache<P256PublicKey>,
}

impl std::fmt::Debug for SoftKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftKeyStore")
            .field("dir", &self.dir)
            .field("sealed", &self.passphrase.is_some())
            .finish()
    }
}

impl SoftKeyStore {
    /// Opens (creating it, mode 0700, if missing) the key directory `dir`. A directory that
    /// others can access is refused.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        open_private_dir(&dir)?;
        Ok(Self {
            dir,
            passphrase: None,
            kdf_cost: KdfCost::DEFAULT,
            loaded: KeyCache::new("unsealed key cache"),
            public_keys: KeyCache::new("public key cache"),
        })
    }

    /// Seals new keys with `passphrase`, and uses it to unseal sealed keys.
    pub fn with_passphrase(mut self, passphrase: Zeroizing<Vec<u8>>) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    /// Cheap key derivation, so tests of sealing do not spend 64 MiB and a second each.
    #[cfg(test)]
    fn with_cheap_kdf(mut self) -> Self {
        self.kdf_cost = KdfCost { memory_kib: 64, iterations: 1, lanes: 1 };
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &KeyName) -> PathBuf {
        self.dir.join(format!("{name}.{EXTENSION}"))
    }

    fn read(&self, name: &KeyName) -> Result<(PathBuf, Zeroizing<Vec<u8>>), Error> {
        let path = self.path(name);
        if !path.exists() {
            return Err(Error::KeyNotFound(name.to_string()));
        }
        check_private(&path)?;
        let bytes = Zeroizing::new(fs::read(&path).map_err(io(&path))?);
        Ok((path, bytes))
    }

    fn info(&self, name: KeyName, path: &Path, bytes: &[u8]) -> Result<KeyInfo, Error> {
        let header = key_file::header(bytes).map_err(|e| file_error(&name, path, e))?;
        Ok(KeyInfo {
            name,
            backend: BackendKind::Software,
            public_key: header.public_key,
            created_at: header.created_at,
            protection: if header.sealed {
                KeyProtection::Passphrase
            } else {
                KeyProtection::FilePermissions
            },
        })
    }

    fn key_pair(&self, name: &KeyName) -> Result<Arc<EcdsaKeyPair>, Error> {
        self.loaded.get_or_load(name, || self.unseal(name))
    }

    fn unseal(&self, name: &KeyName) -> Result<Arc<EcdsaKeyPair>, Error> {
        let (path, bytes) = self.read(name)?;
        let header = key_file::header(&bytes).map_err(|e| file_error(name, &path, e))?;
        let secret = key_file::secret(&bytes, self.passphrase.as_ref().map(|p| p.as_slice()))
            .map_err(|e| file_error(name, &path, e))?;
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            secret.as_ref(),
            header.public_key.sec1(),
        )
        .map_err(|_| Error::CorruptKeyFile {
            path: path.clone(),
            reason: "private and public key do not match",
        })?;
        Ok(Arc::new(pair))
    }
}

impl KeyStore for SoftKeyStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Software
    }

    fn create(&self, name: &KeyName) -> Result<KeyInfo, Error> {
        let path = self.path(name);
        if path.exists() {
            return Err(Error::KeyExists(name.to_string()));
        }
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| Error::Crypto("key generation"))?;
        let public_key =
            P256PublicKey::from_sec1(pair.public_key().as_ref()).map_err(|_| Error::Crypto("public key"))?;
        let secret = {
            use aws_lc_rs::encoding::AsBigEndian;
            let bin = pair.private_key().as_be_bytes().map_err(|_| Error::Crypto("private key export"))?;
            let mut secret = Zeroizing::new([0u8; 32]);
            secret.copy_from_slice(bin.as_ref());
            secret
        };
        let created_at = unix_seconds();
        let passphrase = self.passphrase.as_ref().map(|p| (p.as_slice(), self.kdf_cost));
        let bytes = key_file::encode(&secret, &public_key, created_at, passphrase)
            .map_err(|e| file_error(name, &path, e))?;
        write_new_private_file(&path, &bytes).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Error::KeyExists(name.to_string())
            }
            other => other,
        })?;
        self.loaded.insert(name, Arc::new(pair))?;
        self.info(name.clone(), &path, &bytes)
    }

    fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            let Ok(name) = KeyName::new(stem) else { continue };
            let (path, bytes) = self.read(&name)?;
            keys.push(self.info(name, &path, &bytes)?);
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    fn public_key(&self, name: &KeyName) -> Result<P256PublicKey, Error> {
        self.public_keys.get_or_load(name, || {
            let (path, bytes) = self.read(name)?;
            Ok(self.info(name.clone(), &path, &bytes)?.public_key)
        })
    }

    fn sign_digest(&self, name: &KeyName, digest: &[u8; 32]) -> Result<[u8; 64], Error> {
        let pair = self.key_pair(name)?;
        let digest = Digest::import_less_safe(digest, &SHA256).map_err(|_| Error::Crypto("digest"))?;
        let signature = pair.sign_digest(&digest).map_err(|_| Error::Crypto("signing"))?;
        signature.as_ref().try_into().map_err(|_| Error::Crypto("signature length"))
    }

    // In both places the key must exist; there is nothing a file can attest about itself.
    fn enrollment_evidence(
        &self,
        name: &KeyName,
        _challenge: &[u8; 32],
    ) -> Result<EnrollmentEvidence, Error> {
        self.public_key(name)?;
        Ok(EnrollmentEvidence::Software)
    }

    fn warrant_evidence(
        &self,
        name: &KeyName,
        _scope: &WarrantScope,
        _binding: &[u8; 32],
    ) -> Result<WarrantEvidence, Error> {
        self.public_key(name)?;
        Ok(WarrantEvidence::Software)
    }

    fn delete(&self, name: &KeyName) -> Result<(), Error> {
        let path = self.path(name);
        if !path.exists() {
            return Err(Error::KeyNotFound(name.to_string()));
        }
        self.loaded.remove(name)?;
        self.public_keys.remove(name)?;
        fs::remove_file(&path).map_err(io(&path))
    }

    /// Every file here is a key warrant made: orphans are quarantined, `.tmp-` files removed.
    fn reconcile(&self, recorded: &dyn Fn(&KeyName) -> bool) -> Result<Vec<Reconciled>, Error> {
        reconcile_dir(&self.dir, &format!(".{EXTENSION}"), recorded)
    }
}

fn file_error(name: &KeyName, path: &Path, e: KeyFileError) -> Error {
    match e {
        KeyFileError::Corrupt(reason) => Error::CorruptKeyFile { path: path.to_owned(), reason },
        KeyFileError::PassphraseRequired => Error::PassphraseRequired(name.to_string()),
        KeyFileError::WrongPassphrase => Error::WrongPassphrase(name.to_string()),
        KeyFileError::Crypto(what) => Error::Crypto(what),
    }
}

#[cfg(test)]
mod tests;
