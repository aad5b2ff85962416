//! The YubiKey store's settings; built without the `yubikey` feature too, so that a
//! configuration naming this backend is refused as missing from the build, not as unknown.

use std::path::PathBuf;

use serde::Deserialize;

use crate::{ConfigError, PinSource};

/// A PIV key slot: 9a, 9c, 9d, 9e or a retired slot 82-95.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PivSlot(u8);

impl PivSlot {
    /// Parses a slot name: `9a`, `9c`, `9d`, `9e`, `82`-`95`.
    pub fn parse(name: &str) -> Result<Self, String> {
        let slot = u8::from_str_radix(name, 16).ok().filter(|_| name.len() == 2);
        match slot {
            Some(s @ (0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95)) => Ok(Self(s)),
            _ => Err(format!("{name:?} is not a key slot (9a, 9c, 9d, 9e, 82-95)")),
        }
    }

    /// The slot's number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The retired key-management slots 82-95, which nothing else uses: new keys' default.
    pub fn retired() -> Vec<Self> {
        (0x82..=0x95).map(Self).collect()
    }
}

impl TryFrom<String> for PivSlot {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::parse(&name)
    }
}

/// When a new key wants the PIN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinPolicy {
    /// Never.
    Never,
    /// Once per session with the card.
    #[default]
    Once,
    /// Before every signature.
    Always,
}

/// When a new key wants a touch of the card.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TouchPolicy {
    /// Never.
    #[default]
    Never,
    /// For every signature.
    Always,
    /// Once, then for 15 seconds not again.
    Cached,
}

/// `backend = "yubikey"`: a YubiKey's PIV applet through pcscd, key records in a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YubikeySettings {
    /// The key record directory (default: `yubikey-keys` in the state directory).
    pub dir: Option<PathBuf>,
    /// The card's serial (needed when several are present).
    pub serial_number: Option<u32>,
    /// Slots new keys may take, in order (default: the retired slots 82-95).
    pub slots: Option<Vec<PivSlot>>,
    /// PIN policy of new keys (default `once`).
    #[serde(default)]
    pub pin_policy: PinPolicy,
    /// Touch policy of new keys (default `never`).
    #[serde(default)]
    pub touch_policy: TouchPolicy,
    /// A file (mode 0600) holding the PIV PIN.
    pub pin_file: Option<PathBuf>,
    /// A systemd credential holding the PIN.
    pub pin_credential: Option<String>,
    /// An environment variable holding the PIN (for tests).
    pub pin_env: Option<String>,
    /// A program that prints the PIN (an askpass, for workstations).
    pub pin_askpass: Option<PathBuf>,
}

impl YubikeySettings {
    fn pin(&self) -> Result<PinSource, ConfigError> {
        PinSource::required(PinSource::configured(
            self.pin_file.as_ref(),
            self.pin_credential.as_ref(),
            self.pin_env.as_ref(),
            self.pin_askpass.as_ref(),
        ))
    }

    /// Exactly one PIN source, at least one slot, and an absolute record directory.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.pin()?;
        if let Some(dir) = &self.dir {
            crate::config::absolute("dir", dir)?;
        }
        if self.slots.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new("slots", "list at least one slot for new keys"));
        }
        Ok(())
    }

    #[cfg(feature = "yubikey")]
    pub(crate) fn open(&self, state_dir: &std::path::Path) -> Result<Box<dyn crate::KeyStore>, crate::Error> {
        use super::{YubikeyConfig, YubikeyStore};
        Ok(Box::new(YubikeyStore::open(YubikeyConfig {
            serial: self.serial_number,
            dir: self.dir.clone().unwrap_or_else(|| state_dir.join("yubikey-keys")),
            slots: self.slots.clone().unwrap_or_else(PivSlot::retired),
            pin: self.pin()?,
            pin_policy: self.pin_policy,
            touch_policy: self.touch_policy,
        })?))
    }
}
