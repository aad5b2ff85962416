//! Yubico's extensions on a slot attestation certificate (OID arc 1.3.6.1.4.1.41482.3).

use der::asn1::ObjectIdentifier;
use der::Decode;

use crate::certificate::Cert;
use crate::AttestationError;

const FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");

/// When a key needs the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    /// Never.
    Never,
    /// Once per session.
    Once,
    /// For every operation.
    Always,
    /// Match-on-card biometrics (YubiKey Bio), once or always.
    MatchOnce,
    /// Biometrics for every operation.
    MatchAlways,
}

/// When a key needs a touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchPolicy {
    /// Never.
    Never,
    /// For every operation.
    Always,
    /// Once, then cached for 15 seconds.
    Cached,
}

/// Form factor byte: low bits the shape, 0x80 FIPS, 0x40 CSPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormFactor(pub u8);

impl PinPolicy {
    /// Name for facts.
    pub fn as_str(self) -> &'static str {
        match self {
            PinPolicy::Never => "never",
            PinPolicy::Once => "once",
            PinPolicy::Always => "always",
            PinPolicy::MatchOnce => "match-once",
            PinPolicy::MatchAlways => "match-always",
        }
    }
}

impl TouchPolicy {
    /// Name for facts.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchPolicy::Never => "never",
            TouchPolicy::Always => "always",
            TouchPolicy::Cached => "cached",
        }
    }
}

impl FormFactor {
    /// The shape: `usb-a-keychain`, `usb-c-nano`, ...
    pub fn kind(self) -> &'static str {
        match self.0 & 0x3f {
            1 => "usb-a-keychain",
            2 => "usb-a-nano",
            3 => "usb-c-keychain",
            4 => "usb-c-nano",
            5 => "usb-c-lightning",
            6 => "usb-a-bio",
            7 => "usb-c-bio",
            _ => "unknown",
        }
    }

    /// A FIPS-validated model.
    pub fn fips(self) -> bool {
        self.0 & 0x80 != 0
    }
}

pub(super) struct Extensions {
    pub firmware: (u8, u8, u8),
    pub serial: Option<u64>,
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
    pub form_factor: FormFactor,
}

fn bad(reason: String) -> AttestationError {
    AttestationError::PivAttestationInvalid(reason)
}

/// Reads the four extensions, each at most once; firmware and policy are required. The serial
/// is optional: YubiKey 4 firmware (4.3.x) does not write it.
pub(super) fn read(cert: &Cert) -> Result<Extensions, AttestationError> {
    let mut found: [Option<Vec<u8>>; 4] = Default::default();
    for ext in cert.parsed().tbs_certificate.extensions.iter().flatten() {
        let slot = [FIRMWARE, SERIAL, POLICY, FORM_FACTOR].iter().position(|oid| *oid == ext.extn_id);
        if let Some(i) = slot {
            if found[i].replace(ext.extn_value.as_bytes().to_vec()).is_some() {
                return Err(bad(format!("extension {} appears twice", ext.extn_id)));
            }
        }
    }
    let [firmware, serial, policy, form_factor] = found;
    let firmware = match firmware.as_deref() {
        Some([a, b, c]) => (*a, *b, *c),
        _ => return Err(bad("the firmware extension (41482.3.3) is missing or not 3 bytes".into())),
    };
    let serial = serial
        .map(|serial| {
            der::asn1::Uint::from_der(&serial)
                .ok()
                .and_then(|u| {
                    let b = u.as_bytes();
                    (b.len() <= 8).then(|| b.iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x)))
                })
                .ok_or_else(|| bad("the serial extension is not a DER INTEGER of at most 64 bits".into()))
        })
        .transpose()?;
    let (pin_policy, touch_policy) = match policy.as_deref() {
        Some([pin, touch]) => (
            match pin {
                1 => PinPolicy::Never,
                2 => PinPolicy::Once,
                3 => PinPolicy::Always,
                4 => PinPolicy::MatchOnce,
                5 => PinPolicy::MatchAlways,
                other => return Err(bad(format!("unknown PIN policy {other}"))),
            },
            match touch {
                1 => TouchPolicy::Never,
                2 => TouchPolicy::Always,
                3 => TouchPolicy::Cached,
                other => return Err(bad(format!("unknown touch policy {other}"))),
            },
        ),
        _ => return Err(bad("the policy extension (41482.3.8) is missing or not 2 bytes".into())),
    };
    let form_factor = match form_factor.as_deref() {
        Some([f]) => FormFactor(*f),
        None => FormFactor(0),
        _ => return Err(bad("the form factor extension (41482.3.9) is not 1 byte".into())),
    };
    Ok(Extensions { firmware, serial, pin_policy, touch_policy, form_factor })
}
