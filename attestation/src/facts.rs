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

    /// Whether keys of this backend are protected by hardware.
    pub fn is_hardware(self) -> bool {
        !matches!(self, BackendKind::Software)
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
