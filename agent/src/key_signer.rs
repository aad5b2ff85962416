//! A key in a key store, used as an envelope [`Signer`].

use warrant_attestation::P256PublicKey;
use warrant_envelope::device::Signer;
use warrant_hsm_backends::{KeyName, KeyStore};

/// One key of a [`KeyStore`], ready to sign envelopes.
pub struct KeySigner<'a> {
    store: &'a dyn KeyStore,
    name: KeyName,
    public: P256PublicKey,
}

impl<'a> KeySigner<'a> {
    /// The key `name` of `store`.
    pub fn new(store: &'a dyn KeyStore, name: KeyName) -> Result<Self, warrant_hsm_backends::Error> {
        let public = store.public_key(&name)?;
        Ok(Self { store, name, public })
    }

    /// The key's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The store holding it.
    pub fn store(&self) -> &'a dyn KeyStore {
        self.store
    }
}

impl Signer for KeySigner<'_> {
    fn public_key(&self) -> &P256PublicKey {
        &self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.store.sign_digest(&self.name, digest)?)
    }
}
