//! The software store's settings.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::SoftKeyStore;
use crate::{ConfigError, Error, KeyStore, PinSource};

/// `backend = "soft"`: key files in a directory, optionally sealed with a passphrase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftSettings {
    /// The key directory (default: `keys` in the state directory).
    pub dir: Option<PathBuf>,
    /// A file (mode 0600) holding the passphrase that seals the keys.
    pub passphrase_file: Option<PathBuf>,
}

impl SoftSettings {
    /// The directory and the passphrase file, when named, are absolute paths.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if let Some(dir) = &self.dir {
            crate::config::absolute("dir", dir)?;
        }
        if let Some(file) = &self.passphrase_file {
            crate::config::absolute("passphrase_file", file)?;
        }
        Ok(())
    }

    pub(crate) fn open(&self, state_dir: &Path) -> Result<Box<dyn KeyStore>, Error> {
        let store = SoftKeyStore::open(self.dir.clone().unwrap_or_else(|| state_dir.join("keys")))?;
        Ok(Box::new(match &self.passphrase_file {
            Some(path) => {
                // Read as a PIN file is: refused unless private to its owner, one newline dropped.
                let passphrase = PinSource::File(path.clone()).read()?;
                store.with_passphrase(Zeroizing::new(passphrase.as_bytes().to_vec()))
            }
            None => store,
        }))
    }
}
