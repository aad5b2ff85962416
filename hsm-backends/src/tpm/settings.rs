//! The TPM store's settings; built without the `tpm` feature too, so that a configuration
//! naming this backend is refused as missing from the build, not as unknown.

use std::path::PathBuf;

use serde::Deserialize;
use warrant_attestation::tpm::{parse_pcr_selection, TpmHash};

use crate::{ConfigError, PinSource};

/// The PCRs quoted into every warrant, by bank; none: warrants without a quote.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct QuotePcrs(Option<Vec<(TpmHash, Vec<u8>)>>);

impl QuotePcrs {
    /// The banks and their PCRs; `None` for `"none"`.
    pub fn banks(&self) -> Option<&[(TpmHash, Vec<u8>)]> {
        self.0.as_deref()
    }
}

impl Default for QuotePcrs {
    /// SHA-256 PCRs 0-7: firmware, boot loader and their configuration.
    fn default() -> Self {
        Self(Some(vec![(TpmHash::Sha256, (0..8).collect())]))
    }
}

impl TryFrom<String> for QuotePcrs {
    type Error = String;

    /// `sha256:0,1,2,3,4,5,6,7` (banks joined by `+`), or `none`.
    fn try_from(spec: String) -> Result<Self, String> {
        match spec.as_str() {
            "none" => Ok(Self(None)),
            _ => parse_pcr_selection(&spec).map(|banks| Self(Some(banks))),
        }
    }
}

/// `backend = "tpm"`: a TPM 2.0 reached through a TCTI, key blobs in a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmSettings {
    /// The TCTI (default `device:/dev/tpmrm0`; also `swtpm:host=...,port=...`, `tabrmd`).
    pub tcti: Option<String>,
    /// The key blob directory (default: `tpm-keys` in the state directory).
    pub dir: Option<PathBuf>,
    /// The PCRs quoted into every warrant, as `sha256:0,1,2,3,4,5,6,7` (banks joined by `+`),
    /// or `none` for warrants without a quote. Default: SHA-256 PCRs 0-7.
    #[serde(default)]
    pub quote_pcrs: QuotePcrs,
    /// Reuse one quote per grant for at most this many seconds (1 to 3600) instead of quoting
    /// for every warrant. The quote is bound to the newest status list of the grant's
    /// authority that warrantd was given with a sign request (a new list, a new quote); with
    /// none known, every warrant gets its own quote. Verifiers see the quote's age
    /// (`quote_age`, from the list's `iat`) and their policy decides.
    pub quote_cache_seconds: Option<u64>,
    /// A file (mode 0600) holding the PIN new keys get as their authValue.
    pub pin_file: Option<PathBuf>,
    /// A systemd credential holding the PIN.
    pub pin_credential: Option<String>,
    /// An environment variable holding the PIN (for tests).
    pub pin_env: Option<String>,
    /// A program that prints the PIN (an askpass, for workstations).
    pub pin_askpass: Option<PathBuf>,
}

impl TpmSettings {
    /// The PIN source, if any: keys without a PIN are allowed.
    fn pin(&self) -> Result<Option<PinSource>, ConfigError> {
        PinSource::configured(
            self.pin_file.as_ref(),
            self.pin_credential.as_ref(),
            self.pin_env.as_ref(),
            self.pin_askpass.as_ref(),
        )
    }

    /// At most one PIN source; an absolute key directory; a quote cache only with quotes, for
    /// 1 to 3600 seconds.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.pin()?;
        if let Some(dir) = &self.dir {
            crate::config::absolute("dir", dir)?;
        }
        if let Some(seconds) = self.quote_cache_seconds {
            if !(1..=3600).contains(&seconds) {
                return Err(ConfigError::new("quote_cache_seconds", "must be 1 to 3600 seconds"));
            }
            if self.quote_pcrs.banks().is_none() {
                return Err(ConfigError::new(
                    "quote_cache_seconds",
                    "there are no quotes to cache with quote_pcrs = \"none\"",
                ));
            }
        }
        Ok(())
    }

    #[cfg(feature = "tpm")]
    pub(crate) fn open(&self, state_dir: &std::path::Path) -> Result<Box<dyn crate::KeyStore>, crate::Error> {
        use super::{TpmConfig, TpmKeyStore, DEFAULT_TCTI};
        Ok(Box::new(TpmKeyStore::open(TpmConfig {
            tcti: self.tcti.clone().unwrap_or_else(|| DEFAULT_TCTI.into()),
            dir: self.dir.clone().unwrap_or_else(|| state_dir.join("tpm-keys")),
            quote_pcrs: self.quote_pcrs.banks().map(<[_]>::to_vec),
            quote_cache_seconds: self.quote_cache_seconds,
            pin: self.pin()?,
        })?))
    }
}
