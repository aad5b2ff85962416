//! The PKCS#11 store's settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::{PinTries, Pkcs11KeyStore, Pkcs11Uri, TokenSelector};
use crate::{ConfigError, Error, KeyStore, PinSource};

/// `backend = "pkcs11"`: a token, as an RFC 7512 URI or as module and label/serial, and the
/// source of its user PIN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Settings {
    /// The token as a URI (`pkcs11:token=...?module-path=...`), instead of `module` and
    /// `token`/`serial`.
    pub uri: Option<String>,
    /// The module (shared library) to load.
    pub module: Option<PathBuf>,
    /// The token's label.
    pub token: Option<String>,
    /// The token's serial number.
    pub serial: Option<String>,
    /// A file (mode 0600) holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// A systemd credential holding the user PIN.
    pub pin_credential: Option<String>,
    /// An environment variable holding the user PIN (for tests).
    pub pin_env: Option<String>,
    /// A program that prints the user PIN (an askpass, for workstations).
    pub pin_askpass: Option<PathBuf>,
}

/// Where the token is, once checked.
enum Token {
    Uri(Pkcs11Uri),
    Module(PathBuf, TokenSelector),
}

impl Pkcs11Settings {
    fn token(&self) -> Result<Token, ConfigError> {
        if let Some(uri) = &self.uri {
            let others = [
                ("module", self.module.is_some()),
                ("token", self.token.is_some()),
                ("serial", self.serial.is_some()),
            ];
            if let Some((key, _)) = others.iter().find(|(_, set)| *set) {
                return Err(ConfigError::new(
                    key,
                    "give the token either as `uri` or as module and token/serial",
                ));
            }
            let parsed = Pkcs11Uri::parse(uri).map_err(|e| ConfigError::new("uri", e.to_string()))?;
            match &parsed.module_path {
                None => {
                    return Err(ConfigError::new(
                        "uri",
                        "the URI needs ?module-path=... (the module to load)",
                    ))
                }
                Some(module) => crate::config::absolute("uri", module)?,
            }
            return Ok(Token::Uri(parsed));
        }
        let module = self.module.clone().ok_or_else(|| {
            ConfigError::new("module", "the pkcs11 backend needs the module's path (or a `uri`)")
        })?;
        crate::config::absolute("module", &module)?;
        if self.token.is_none() && self.serial.is_none() {
            return Err(ConfigError::new("token", "name the token by label (token) or serial"));
        }
        Ok(Token::Module(module, TokenSelector { label: self.token.clone(), serial: self.serial.clone() }))
    }

    fn pin(&self) -> Result<PinSource, ConfigError> {
        PinSource::required(PinSource::configured(
            self.pin_file.as_ref(),
            self.pin_credential.as_ref(),
            self.pin_env.as_ref(),
            self.pin_askpass.as_ref(),
        ))
    }

    /// The token is named one way, completely, and there is exactly one PIN source.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.token()?;
        self.pin().map(drop)
    }

    /// The configured token's PIN tries, read without logging in (see [`super::pin_tries`]).
    pub fn pin_tries(&self) -> Result<PinTries, Error> {
        self.check()?;
        match self.token()? {
            Token::Uri(uri) => {
                let module = uri.module_path.clone().ok_or_else(|| Error::InvalidUri {
                    uri: "(token)".into(),
                    reason: "no module: add ?module-path=...".into(),
                })?;
                super::pin_tries(
                    &module,
                    &TokenSelector { label: uri.token.clone(), serial: uri.serial.clone() },
                )
            }
            Token::Module(module, token) => super::pin_tries(&module, &token),
        }
    }

    pub(crate) fn open(&self) -> Result<Box<dyn KeyStore>, Error> {
        let pin = self.pin()?;
        Ok(Box::new(match self.token()? {
            Token::Uri(uri) => Pkcs11KeyStore::open_uri(&uri, None, &pin)?,
            Token::Module(module, token) => Pkcs11KeyStore::open(&module, token, &pin)?,
        }))
    }
}
