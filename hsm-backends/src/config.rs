//! Which key store warrant uses and how it is set up: the `[keystore]` table of a daemon's
//! configuration, one variant per backend, each with its own settings type (in its module),
//! which refuses keys it does not know and checks its own values.
//!
//! Adding a backend means its module (store and settings) and a variant here.

use std::path::Path;

use serde::{Deserialize, Deserializer};
use warrant_attestation::BackendKind;

use crate::pkcs11::Pkcs11Settings;
use crate::soft::SoftSettings;
use crate::tpm::TpmSettings;
use crate::yubikey::YubikeySettings;
use crate::{Error, KeyStore};

/// A key store's configuration: `backend = "..."` and that backend's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum KeyStoreConfig {
    /// Key files, optionally sealed with a passphrase.
    Soft(SoftSettings),
    /// A PKCS#11 token or HSM.
    Pkcs11(Pkcs11Settings),
    /// A TPM 2.0 (feature `tpm`).
    Tpm(TpmSettings),
    /// A YubiKey's PIV applet (feature `yubikey`).
    Yubikey(YubikeySettings),
}

impl Default for KeyStoreConfig {
    /// The software store, in its default directory.
    fn default() -> Self {
        KeyStoreConfig::Soft(SoftSettings::default())
    }
}

/// A backend warrant knows, and whether this build has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Its name in the configuration (`backend = "..."`).
    pub name: &'static str,
    /// What it is (its wire name is in evidence and in the daemon's version answer).
    pub kind: BackendKind,
    /// Whether this build has it (tpm and yubikey are cargo features).
    pub compiled: bool,
}

const SOFT: Backend = Backend { name: "soft", kind: BackendKind::Software, compiled: true };
const TPM: Backend = Backend { name: "tpm", kind: BackendKind::Tpm, compiled: cfg!(feature = "tpm") };
const PKCS11: Backend = Backend { name: "pkcs11", kind: BackendKind::Pkcs11, compiled: true };
const YUBIKEY: Backend =
    Backend { name: "yubikey", kind: BackendKind::Yubikey, compiled: cfg!(feature = "yubikey") };

/// Every backend, in the order the daemon lists them.
pub const BACKENDS: [Backend; 4] = [SOFT, TPM, PKCS11, YUBIKEY];

/// A setting that is wrong: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key store setting `{key}`: {reason}")]
pub struct ConfigError {
    /// The key in the `[keystore]` table.
    pub key: &'static str,
    /// What is wrong, and what to do.
    pub reason: String,
}

impl ConfigError {
    /// `key` is wrong because `reason`.
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self { key, reason: reason.into() }
    }
}

/// Refuses a relative `path` for `key`: it would be resolved against whatever directory the
/// daemon (or `warrant doctor`, as root) happens to run in, so another file (another module to
/// load, another PIN) could be picked up.
pub(crate) fn absolute(key: &'static str, path: &std::path::Path) -> Result<(), ConfigError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("{} is a relative path: give it from / (a relative one depends on the directory warrantd runs in)", path.display()),
        ))
    }
}

/// The backend named `name`, if this build has it; otherwise why not.
pub fn backend(name: &str) -> Result<Backend, ConfigError> {
    let built = || BACKENDS.iter().filter(|b| b.compiled).map(|b| b.name).collect::<Vec<_>>().join(", ");
    match BACKENDS.iter().find(|b| b.name == name) {
        Some(b) if b.compiled => Ok(*b),
        Some(b) => Err(ConfigError::new(
            "backend",
            format!("this build has no {} backend; built with: {}", b.name, built()),
        )),
        None => {
            Err(ConfigError::new("backend", format!("unknown backend {name:?}; this build has: {}", built())))
        }
    }
}

impl KeyStoreConfig {
    /// The settings of backend `name` from `settings`, a table without the `backend` key. For
    /// readers that keep positions (a TOML table's spans): errors about a key then point at
    /// it, where the tagged form buffers the table first and loses them.
    pub fn from_settings<'de, D: Deserializer<'de>>(name: &str, settings: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        Ok(match name {
            "soft" => KeyStoreConfig::Soft(SoftSettings::deserialize(settings)?),
            "pkcs11" => KeyStoreConfig::Pkcs11(Pkcs11Settings::deserialize(settings)?),
            "tpm" => KeyStoreConfig::Tpm(TpmSettings::deserialize(settings)?),
            "yubikey" => KeyStoreConfig::Yubikey(YubikeySettings::deserialize(settings)?),
            other => return Err(D::Error::unknown_variant(other, &["soft", "pkcs11", "tpm", "yubikey"])),
        })
    }

    /// The backend configured.
    pub fn backend(&self) -> Backend {
        match self {
            KeyStoreConfig::Soft(_) => SOFT,
            KeyStoreConfig::Pkcs11(_) => PKCS11,
            KeyStoreConfig::Tpm(_) => TPM,
            KeyStoreConfig::Yubikey(_) => YUBIKEY,
        }
    }

    /// Checks the configuration as a whole: the backend is in this build, and its settings
    /// make sense together.
    pub fn check(&self) -> Result<(), ConfigError> {
        backend(self.backend().name)?;
        match self {
            KeyStoreConfig::Soft(s) => s.check(),
            KeyStoreConfig::Pkcs11(s) => s.check(),
            KeyStoreConfig::Tpm(s) => s.check(),
            KeyStoreConfig::Yubikey(s) => s.check(),
        }
    }
}

/// Opens the key store `config` describes, after [`KeyStoreConfig::check`]; directories that
/// are not configured go under `state_dir`.
pub fn open(config: &KeyStoreConfig, state_dir: &Path) -> Result<Box<dyn KeyStore>, Error> {
    config.check()?;
    match config {
        KeyStoreConfig::Soft(s) => s.open(state_dir),
        KeyStoreConfig::Pkcs11(s) => s.open(),
        #[cfg(feature = "tpm")]
        KeyStoreConfig::Tpm(s) => s.open(state_dir),
        #[cfg(feature = "yubikey")]
        KeyStoreConfig::Yubikey(s) => s.open(state_dir),
        // Refused by `check` above.
        #[cfg(not(all(feature = "tpm", feature = "yubikey")))]
        other => Err(Error::Unsupported(format!("this build has no {} backend", other.backend().name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(json: &str) -> Result<KeyStoreConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn each_backend_takes_its_own_keys_only() {
        let soft = tagged(r#"{"backend": "soft", "dir": "/k", "passphrase_file": "/p"}"#).unwrap();
        assert_eq!(soft.backend().kind, BackendKind::Software);
        for foreign in [r#""slots": ["9c"]"#, r#""tcti": "x""#, r#""module": "/m.so""#, r#""pin_env": "P""#] {
            let e = tagged(&format!(r#"{{"backend": "soft", {foreign}}}"#)).unwrap_err();
            assert!(e.to_string().contains("unknown field"), "{foreign}: {e}");
        }
        let e = tagged(r#"{"backend": "pkcs11", "dir": "/k"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `dir`"), "{e}");
        let e = tagged(r#"{"backend": "tpm", "passphrase_file": "/p"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `passphrase_file`"), "{e}");
        let e = tagged(r#"{"backend": "yubikey", "quote_pcrs": "none"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `quote_pcrs`"), "{e}");
        let e = tagged(r#"{"backend": "sgx"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `sgx`"), "{e}");
    }

    #[test]
    fn policies_slots_and_pcrs_are_typed_when_read() {
        let yk = r#""backend": "yubikey", "pin_env": "P""#;
        let e = tagged(&format!(r#"{{{yk}, "touch_policy": "often"}}"#)).unwrap_err();
        assert!(
            e.to_string().contains("unknown variant `often`, expected one of `never`, `always`, `cached`"),
            "{e}"
        );
        let e = tagged(&format!(r#"{{{yk}, "pin_policy": "sometimes"}}"#)).unwrap_err();
        assert!(e.to_string().contains("unknown variant `sometimes`"), "{e}");
        let e = tagged(&format!(r#"{{{yk}, "slots": ["9b"]}}"#)).unwrap_err();
        assert!(e.to_string().contains("\"9b\" is not a key slot"), "{e}");
        let KeyStoreConfig::Yubikey(s) =
            tagged(&format!(r#"{{{yk}, "slots": ["9c", "82"], "pin_policy": "always"}}"#)).unwrap()
        else {
            panic!("not a yubikey configuration")
        };
        assert_eq!(s.slots.unwrap().iter().map(|s| s.number()).collect::<Vec<_>>(), [0x9c, 0x82]);
        assert_eq!((s.pin_policy, s.touch_policy), (crate::yubikey::PinPolicy::Always, Default::default()));
        let e = tagged(r#"{"backend": "tpm", "quote_pcrs": "sha256:0,99"}"#).unwrap_err();
        assert!(e.to_string().contains("PCR index \"99\""), "{e}");
        let KeyStoreConfig::Tpm(t) = tagged(r#"{"backend": "tpm", "quote_pcrs": "none"}"#).unwrap() else {
            panic!("not a tpm configuration")
        };
        assert_eq!(t.quote_pcrs.banks(), None);
        assert_eq!(crate::tpm::TpmSettings::default().quote_pcrs.banks().map(<[_]>::len), Some(1));
    }

    #[test]
    fn settings_read_apart_from_the_tag_mean_the_same() {
        let settings = r#"{"slots": ["9c"], "pin_file": "/p", "touch_policy": "cached"}"#;
        let mut de = serde_json::Deserializer::from_str(settings);
        let apart = KeyStoreConfig::from_settings("yubikey", &mut de).unwrap();
        let together =
            tagged(r#"{"backend": "yubikey", "slots": ["9c"], "pin_file": "/p", "touch_policy": "cached"}"#);
        assert_eq!(apart, together.unwrap());
        let mut de = serde_json::Deserializer::from_str("{}");
        assert!(KeyStoreConfig::from_settings("sgx", &mut de).is_err());
    }

    #[test]
    fn a_backend_missing_from_the_build_is_refused_by_name() {
        let built: Vec<_> = BACKENDS.iter().filter(|b| b.compiled).map(|b| b.name).collect();
        for b in BACKENDS {
            let config = KeyStoreConfig::from_settings(b.name, &mut serde_json::Deserializer::from_str("{}"));
            let check = config.unwrap().check();
            match backend(b.name) {
                Ok(found) => assert_eq!(found, b),
                Err(e) => {
                    assert!(!b.compiled);
                    let text = e.to_string();
                    let want =
                        format!("this build has no {} backend; built with: {}", b.name, built.join(", "));
                    assert!(text.contains(&want), "{text}");
                    assert_eq!(check, Err(e), "check refuses it first");
                    let dir = tempfile::tempdir().unwrap();
                    let default =
                        KeyStoreConfig::from_settings(b.name, &mut serde_json::Deserializer::from_str("{}"));
                    assert!(open(&default.unwrap(), dir.path()).is_err());
                }
            }
        }
        let e = backend("sgx").unwrap_err();
        assert_eq!(e.key, "backend");
        assert!(e.to_string().contains("unknown backend \"sgx\""), "{e}");
    }

    #[test]
    fn relative_paths_are_refused_with_their_key() {
        let check = |json: &str| tagged(json).unwrap().check().map_err(|e| (e.key, e.reason));
        let pkcs11 = |module: &str, pin: &str| {
            check(&format!(
                r#"{{"backend": "pkcs11", "module": "{module}", "token": "t", "pin_file": "{pin}"}}"#
            ))
        };
        assert_eq!(pkcs11("/m.so", "/pin"), Ok(()));
        let e = pkcs11("./libsofthsm2.so", "/pin").unwrap_err();
        assert!(e.0 == "module" && e.1.contains("relative path"), "{e:?}");
        assert_eq!(pkcs11("/m.so", "pin").unwrap_err().0, "pin_file");
        let e = check(r#"{"backend": "pkcs11", "pin_env": "P", "uri": "pkcs11:token=t?module-path=m.so"}"#);
        assert_eq!(e.unwrap_err().0, "uri");
        let e = check(r#"{"backend": "pkcs11", "module": "/m.so", "token": "t", "pin_askpass": "askpass"}"#);
        assert_eq!(e.unwrap_err().0, "pin_askpass");
        assert_eq!(check(r#"{"backend": "soft", "passphrase_file": "/p"}"#), Ok(()));
        assert_eq!(check(r#"{"backend": "soft", "passphrase_file": "p"}"#).unwrap_err().0, "passphrase_file");
        assert_eq!(check(r#"{"backend": "soft", "dir": "keys"}"#).unwrap_err().0, "dir");
        if cfg!(feature = "tpm") {
            assert_eq!(check(r#"{"backend": "tpm", "pin_file": "../pin"}"#).unwrap_err().0, "pin_file");
        }
        if cfg!(feature = "yubikey") {
            assert_eq!(check(r#"{"backend": "yubikey", "pin_env": "P", "dir": "k"}"#).unwrap_err().0, "dir");
        }
    }

    #[test]
    fn settings_that_do_not_fit_together_are_refused_with_their_key() {
        let check = |json: &str| tagged(json).unwrap().check().map_err(|e| (e.key, e.reason));
        assert_eq!(check(r#"{"backend": "soft"}"#), Ok(()));
        let pkcs11 = r#""backend": "pkcs11", "module": "/m.so", "token": "t""#;
        assert_eq!(check(&format!("{{{pkcs11}}}")).unwrap_err().0, "pin_file");
        assert_eq!(
            check(&format!(r#"{{{pkcs11}, "pin_env": "P", "pin_file": "/p"}}"#)).unwrap_err().0,
            "pin_file"
        );
        assert_eq!(check(&format!(r#"{{{pkcs11}, "pin_env": "P"}}"#)), Ok(()));
        assert_eq!(
            check(r#"{"backend": "pkcs11", "module": "/m.so", "pin_env": "P"}"#).unwrap_err().0,
            "token"
        );
        assert_eq!(check(r#"{"backend": "pkcs11", "token": "t", "pin_env": "P"}"#).unwrap_err().0, "module");
        let uri = r#""backend": "pkcs11", "pin_env": "P", "uri":"#;
        let e = check(&format!(r#"{{{uri} "pkcs11:token=t"}}"#)).unwrap_err();
        assert!(e.0 == "uri" && e.1.contains("module-path"), "{e:?}");
        let e = check(&format!(r#"{{{uri} "pkcs11:token=t?module-path=/m.so", "module": "/m.so"}}"#))
            .unwrap_err();
        assert_eq!(e.0, "module");
        assert_eq!(check(&format!(r#"{{{uri} "pkcs11:token=t?module-path=/m.so"}}"#)), Ok(()));
        let tpm = |extra: &str| check(&format!(r#"{{"backend": "tpm", {extra}}}"#));
        if cfg!(feature = "tpm") {
            assert_eq!(tpm(r#""quote_cache_seconds": 0"#).unwrap_err().0, "quote_cache_seconds");
            let e = tpm(r#""quote_cache_seconds": 60, "quote_pcrs": "none""#).unwrap_err();
            assert!(e.1.contains("no quotes to cache"), "{e:?}");
            assert_eq!(tpm(r#""quote_cache_seconds": 60, "pin_env": "P""#), Ok(()));
        }
        if cfg!(feature = "yubikey") {
            let e = check(r#"{"backend": "yubikey", "pin_env": "P", "slots": []}"#).unwrap_err();
            assert_eq!(e.0, "slots");
            assert_eq!(check(r#"{"backend": "yubikey", "serial_number": 7}"#).unwrap_err().0, "pin_file");
        }
    }
}
