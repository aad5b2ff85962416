use std::path::PathBuf;

use thiserror::Error;

/// Why a key-store operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key name is not acceptable.
    #[error(
        "invalid key name {0:?}: use 1-64 characters from A-Z a-z 0-9 . _ - , not starting with '.' or '-'"
    )]
    InvalidKeyName(String),
    /// A key of that name already exists.
    #[error("key {0:?} already exists")]
    KeyExists(String),
    /// No key of that name.
    #[error("no key named {0:?}")]
    KeyNotFound(String),
    /// A key file or the store directory is readable by others than its owner.
    #[error("{path} has mode {mode:o}: it must be accessible by its owner only (chmod go-rwx)")]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key is sealed with a passphrase and none was given.
    #[error("key {0:?} is sealed with a passphrase: supply it")]
    PassphraseRequired(String),
    /// The passphrase does not open the key (or the sealed file was altered).
    #[error("the passphrase does not unseal key {0:?} (wrong passphrase or altered key file)")]
    WrongPassphrase(String),
    /// The key file is not in the expected format.
    #[error("key file {path} is corrupt: {reason}")]
    CorruptKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A cryptographic primitive failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
    /// A PKCS#11 URI is malformed or asks for something warrant refuses.
    #[error("PKCS#11 URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI (cut to 80 characters).
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// No token matches.
    #[error("no PKCS#11 token {0} is present (is the token inserted and initialised?)")]
    TokenNotFound(String),
    /// The token refused the PIN.
    #[error("the PKCS#11 token refused the PIN{0}")]
    PinIncorrect(String),
    /// The PIN could not be read from its source.
    #[error("PIN source: {0}")]
    PinSource(String),
    /// A PKCS#11 module could not be loaded.
    #[error("PKCS#11 loading the module {path}: {source}")]
    Pkcs11Module {
        /// The module's path.
        path: PathBuf,
        /// cryptoki's answer.
        source: cryptoki::error::Error,
    },
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {operation}: {source}")]
    Pkcs11 {
        /// What was attempted.
        operation: &'static str,
        /// The module's answer.
        source: cryptoki::error::Error,
    },
    /// A PKCS#11 token answered, but not as warrant needs.
    #[error("PKCS#11 {operation}: {reason}")]
    Pkcs11Unexpected {
        /// What was attempted.
        operation: &'static str,
        /// What was wrong with the answer.
        reason: String,
    },
    /// A TPM command failed.
    #[cfg(feature = "tpm")]
    #[error("TPM {operation}: {source}")]
    Tpm {
        /// What was attempted.
        operation: &'static str,
        /// The TPM's or the TSS's answer.
        source: tss_esapi::Error,
    },
    /// The TCTI does not name a way to reach a TPM.
    #[cfg(feature = "tpm")]
    #[error("TPM TCTI {tcti:?}: {source}")]
    TpmTcti {
        /// The TCTI as configured.
        tcti: String,
        /// The TSS's answer.
        source: tss_esapi::Error,
    },
    /// The TPM answered, but not as warrant needs.
    #[error("TPM {operation}: {reason}")]
    TpmUnexpected {
        /// What was attempted.
        operation: &'static str,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The TPM refused a key's PIN (its authValue).
    #[error("the TPM refused the PIN ({0}): wrong PIN; each failure counts towards the TPM's dictionary-attack lockout")]
    TpmPinRefused(String),
    /// The TPM key has a PIN and no PIN source is configured.
    #[error("TPM key {0:?} has a PIN: configure a PIN source (pin_file, pin_credential or pin_env)")]
    TpmPinRequired(String),
    /// The TPM is locked out after too many wrong PINs.
    #[error("the TPM is in dictionary-attack lockout after too many wrong PINs: wait for its recovery time, or have the TPM's owner reset it (tpm2_dictionarylockout -c)")]
    TpmLockout,
    /// The key was made under a storage root key this TPM no longer has.
    #[error("TPM key {0:?} was created under another storage root key: the TPM was cleared or replaced, so the key is gone; create a new key and re-enroll the device")]
    TpmCleared(String),
    /// The YubiKey refused the PIN.
    #[error("the YubiKey refused the PIN: {tries} tries left before it blocks")]
    YubikeyPinRefused {
        /// Tries left.
        tries: u8,
    },
    /// The YubiKey's PIN is blocked.
    #[error("the YubiKey's PIN is blocked: unblock it with the PUK (ykman piv access unblock-pin)")]
    YubikeyPinBlocked,
    /// pcscd, which every smart card is reached through, does not answer.
    #[error("pcscd is not reachable ({0}): start it (systemctl enable --now pcscd.socket)")]
    PcscUnavailable(String),
    /// No (matching) YubiKey is present.
    #[error("YubiKey not found: {0}")]
    YubikeyNotFound(String),
    /// A YubiKey operation failed.
    #[cfg(feature = "yubikey")]
    #[error("YubiKey {operation}: {source}")]
    Yubikey {
        /// What was attempted.
        operation: &'static str,
        /// The card's or PC/SC's answer.
        source: yubikey::Error,
    },
    /// A lock was poisoned: a thread panicked while holding it, so what it guards may be
    /// half-changed. Nothing guarded by it is used again; restart the process.
    #[error("the {0} is unusable after a failure in another thread: restart the process")]
    LockPoisoned(&'static str),
    /// A key-store setting is wrong.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The backend cannot do this.
    #[error("{0}")]
    Unsupported(String),
}
