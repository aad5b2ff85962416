use std::collections::BTreeMap;

use crate::AttributeValue;

/// Where a device key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// A key file on disk: no hardware protection at all.
    Software,
    /// A TPM 2.0.
    Tpm,
    /// A PKCS#11 token or HSM.
    Pkcs11,
    /// A YubiKey PIV applet.
    Yubikey,
}

impl BackendKind {
    /// The wire name of the backend.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Software => "software",
            BackendKind::Tpm => "tpm",
            BackendKind::Pkcs11 => "pkcs11",
            BackendKind::Yubikey => "yubikey",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "software" => Some(BackendKind::Software),
            "tpm" => Some(BackendKind::Tpm),
            "pkcs11" => Some(BackendKind::Pkcs11),
            "yubikey" => Some(BackendKind::Yubikey),
            _ => None,
        }
    }

    /// Whether keys of this backend live in a separate device (whose operations can take
    /// milliseconds). This says nothing about who vouches for that: see [`Self::assurance`].
    pub fn is_hardware(self) -> bool {
        !matches!(self, BackendKind::Software)
    }

    /// Who vouches for the protection of this backend's keys. A TPM key is certified by an
    /// attestation key bound to an EK certificate the authority verified, and a YubiKey's by
    /// a chain to Yubico's roots; a PKCS#11 token only describes itself.
    pub fn assurance(self) -> Assurance {
        match self {
            BackendKind::Tpm | BackendKind::Yubikey => Assurance::Attested,
            BackendKind::Pkcs11 => Assurance::SelfReported,
            BackendKind::Software => Assurance::Software,
        }
    }
}

/// How far a device key's protection is established, as policies see it in
/// `context.device.assurance` (and `context.device.hardware`, true only for `Attested`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assurance {
    /// A third party (the TPM's manufacturer through its EK, Yubico) vouches that the key
    /// was made in, and cannot leave, the hardware.
    Attested,
    /// The key store says so itself, unsigned (PKCS#11 attributes): a software key can
    /// claim the same.
    SelfReported,
    /// A key file: no hardware protection is claimed.
    Software,
}

impl Assurance {
    /// The name policies compare with.
    pub fn as_str(self) -> &'static str {
        match self {
            Assurance::Attested => "attested",
            Assurance::SelfReported => "self-reported",
            Assurance::Software => "software",
        }
    }
}

/// What an appraisal established about a device: its backend and backend-specific properties
/// (firmware version, PCR values, PIN policy, ...). These are what Cedar policies see as
/// `context.device`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The key store holding the device key.
    pub backend: BackendKind,
    /// Backend-specific properties, by name.
    pub properties: BTreeMap<String, AttributeValue>,
}

impl DeviceFacts {
    /// Facts for a software key: nothing is claimed beyond the backend.
    pub fn software() -> Self {
        Self { backend: BackendKind::Software, properties: BTreeMap::new() }
    }
}
