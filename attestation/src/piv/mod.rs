//! YubiKey PIV attestation, verified in pure Rust.
//!
//! A key generated in a PIV slot can be attested: the YubiKey signs a certificate for it (the
//! *slot certificate*, "YubiKey PIV Attestation 9a") with its device attestation key, whose
//! certificate sits in slot f9 ("Yubico PIV Attestation") and chains to a Yubico root. The
//! chain is checked link by link to pinned roots (compiled in, fingerprints checked), not by
//! generic RFC 5280 path validation: some genuine f9 certificates lack basicConstraints, and
//! the f9 certificate can be overwritten by the card's owner, so only the pinned end counts.
//! Both certificates must also fit their profile (see `profile`), so that no other certificate
//! under a pinned root stands in for them. The attestation carries no nonce: freshness comes
//! from the attested key's own signature.

mod extensions;
mod profile;

use std::collections::BTreeMap;

use crate::certificate::{chain_to_anchor, Cert};
use crate::{AttestationError, AttributeValue, BackendKind, DeviceFacts, P256PublicKey};

pub use extensions::{FormFactor, PinPolicy, TouchPolicy};

/// The Yubico roots and intermediates warrant trusts by default, with their SHA-256
/// fingerprints (checked when loaded).
const YUBICO_ROOTS: [(&str, &str); 3] = [
    (
        include_str!("roots/yubico-piv-root-ca-263751.pem"),
        "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546",
    ),
    (
        include_str!("roots/yubico-u2f-root-ca-457200631.pem"),
        "0fa1386f80eb8713263ae5c1d84deb455bdf08aea50ab05503cefee82b092d42",
    ),
    (
        include_str!("roots/yubico-attestation-root-1.pem"),
        "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8",
    ),
];
const YUBICO_INTERMEDIATES: [(&str, &str); 2] = [
    (
        include_str!("roots/yubico-attestation-intermediate-b-1.pem"),
        "d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754",
    ),
    (
        include_str!("roots/yubico-piv-attestation-b-1.pem"),
        "2d55b7998f4e42569d6d8fa382b6dc77d1dacf07358b19701163892922b17052",
    ),
];

/// Firmware below this has the ECDSA side channel of YSA-2024-03 (EUCLEAK).
pub const YSA_2024_03_FIXED: (u8, u8, u8) = (5, 7, 0);

fn pinned(list: &[(&str, &str)]) -> Result<Vec<Cert>, AttestationError> {
    list.iter()
        .map(|(pem, fingerprint)| {
            let cert = Cert::from_pem_or_der(pem.as_bytes())?;
            if hex::encode(cert.fingerprint()) != *fingerprint {
                return Err(AttestationError::CertificateInvalid(format!(
                    "the compiled-in {} does not have its pinned fingerprint",
                    cert.subject()
                )));
            }
            Ok(cert)
        })
        .collect()
}

/// Verifies PIV attestations against the pinned Yubico roots (and any roots added, e.g. a test
/// CA for a virtual card).
#[derive(Debug, Clone)]
pub struct PivVerifier {
    roots: Vec<Cert>,
    intermediates: Vec<Cert>,
    allow_ysa_2024_03: bool,
}

/// What a verified PIV attestation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PivFacts {
    /// The attested public key.
    pub key: P256PublicKey,
    /// The PIV slot (`9a`, `9c`, `9d`, `9e`, `82`-`95`).
    pub slot: String,
    /// Firmware version.
    pub firmware: (u8, u8, u8),
    /// The YubiKey's serial number; YubiKey 4 firmware does not write it.
    pub serial: Option<u64>,
    /// When the key needs the PIN.
    pub pin_policy: PinPolicy,
    /// When the key needs a touch.
    pub touch_policy: TouchPolicy,
    /// Form factor (and FIPS / CSPN flags).
    pub form_factor: FormFactor,
    /// Subject of the pinned root the chain ends at.
    pub root: String,
}

impl PivVerifier {
    /// A verifier trusting Yubico's roots only; ECDSA keys on firmware below 5.7.0 refused.
    pub fn yubico() -> Result<Self, AttestationError> {
        Ok(Self {
            roots: pinned(&YUBICO_ROOTS)?,
            intermediates: pinned(&YUBICO_INTERMEDIATES)?,
            allow_ysa_2024_03: false,
        })
    }

    /// Also trusts `root` (for a virtual card's test CA; never in production).
    pub fn with_root(mut self, root: Cert) -> Self {
        self.roots.push(root);
        self
    }

    /// Accepts ECDSA keys on firmware affected by YSA-2024-03 (refused by default).
    pub fn allow_ysa_2024_03(mut self, allow: bool) -> Self {
        self.allow_ysa_2024_03 = allow;
        self
    }

    /// Verifies a slot certificate and the device's f9 certificate at `now`.
    pub fn verify(&self, slot_cert: &Cert, f9_cert: &Cert, now: u64) -> Result<PivFacts, AttestationError> {
        let refuse = |reason: String| AttestationError::PivAttestationInvalid(reason);
        // Profiles first: whatever else verifies, these must be a slot and an f9 certificate.
        let slot = profile::check_slot(slot_cert)?;
        profile::check_f9(f9_cert)?;
        // Link 1: the device's attestation key signed the slot certificate.
        slot_cert
            .check_issued_by(f9_cert)
            .map_err(|e| refuse(format!("the slot certificate is not from this device's f9 key: {e}")))?;
        slot_cert.check_validity(now)?;
        // Then f9 up to a pinned root, through Yubico's intermediates where the chain has them.
        let root = chain_to_anchor(f9_cert, &self.intermediates, &self.roots, now)
            .map_err(|e| refuse(format!("the f9 certificate does not chain to a pinned Yubico root: {e}")))?;
        let ext = extensions::read(slot_cert)?;
        let key = slot_key(slot_cert)?;
        if ext.firmware < YSA_2024_03_FIXED && !self.allow_ysa_2024_03 {
            let (a, b, c) = ext.firmware;
            return Err(AttestationError::PivVulnerableFirmware(format!("{a}.{b}.{c}")));
        }
        Ok(PivFacts {
            key,
            slot,
            firmware: ext.firmware,
            serial: ext.serial,
            pin_policy: ext.pin_policy,
            touch_policy: ext.touch_policy,
            form_factor: ext.form_factor,
            root: root.subject(),
        })
    }
}

impl PivFacts {
    /// The facts as policy sees them (`context.device.properties`).
    pub fn to_device_facts(&self) -> DeviceFacts {
        let text = |s: &str| AttributeValue::Text(s.to_owned());
        let (a, b, c) = self.firmware;
        let mut properties = BTreeMap::from([
            ("slot".to_owned(), text(&self.slot)),
            ("firmware".to_owned(), text(&format!("{a}.{b}.{c}"))),
            ("pin_policy".to_owned(), text(self.pin_policy.as_str())),
            ("touch_policy".to_owned(), text(self.touch_policy.as_str())),
            ("form_factor".to_owned(), text(self.form_factor.kind())),
            ("fips".to_owned(), AttributeValue::Bool(self.form_factor.fips())),
            ("attestation_root".to_owned(), text(&self.root)),
        ]);
        // Absent rather than made up when the firmware does not say: a policy can require it
        // with `has`.
        if let Some(serial) = self.serial {
            properties
                .insert("serial".to_owned(), AttributeValue::Int(i64::try_from(serial).unwrap_or(i64::MAX)));
        }
        DeviceFacts { backend: BackendKind::Yubikey, properties }
    }
}

/// The attested key: P-256 only (the keys warrant uses).
fn slot_key(cert: &Cert) -> Result<P256PublicKey, AttestationError> {
    use p256::pkcs8::DecodePublicKey;
    let spki = cert.public_key_der()?;
    let key = p256::PublicKey::from_public_key_der(&spki)
        .map_err(|_| AttestationError::PivAttestationInvalid("the attested key is not a P-256 key".into()))?;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    P256PublicKey::from_sec1(key.to_encoded_point(false).as_bytes())
}

/// Enrollment evidence from a YubiKey: the slot's attestation certificate and the device's f9
/// certificate, DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PivEvidence {
    /// The slot attestation certificate (INS F9).
    pub slot_certificate: Vec<u8>,
    /// The f9 certificate.
    pub f9_certificate: Vec<u8>,
}

impl PivEvidence {
    pub(crate) fn to_entries(&self) -> Vec<(ciborium::Value, ciborium::Value)> {
        use ciborium::Value;
        vec![
            (Value::Text("f9_certificate".into()), Value::Bytes(self.f9_certificate.clone())),
            (Value::Text("slot_certificate".into()), Value::Bytes(self.slot_certificate.clone())),
        ]
    }

    pub(crate) fn from_entries(
        entries: Vec<(ciborium::Value, ciborium::Value)>,
    ) -> Result<Self, AttestationError> {
        use ciborium::Value;
        let bad = |m: String| AttestationError::MalformedEvidence(format!("yubikey-piv evidence: {m}"));
        let (mut slot, mut f9) = (None, None);
        for (key, value) in entries {
            let target = match key.as_text() {
                Some("slot_certificate") => &mut slot,
                Some("f9_certificate") => &mut f9,
                _ => return Err(bad(format!("unexpected entry {key:?}"))),
            };
            match value {
                Value::Bytes(b) if b.len() <= crate::certificate::MAX_CERTIFICATE && target.is_none() => {
                    *target = Some(b)
                }
                _ => {
                    return Err(bad("certificates must appear once, as byte strings of at most 8 KiB".into()))
                }
            }
        }
        Ok(Self {
            slot_certificate: slot.ok_or_else(|| bad("missing \"slot_certificate\"".into()))?,
            f9_certificate: f9.ok_or_else(|| bad("missing \"f9_certificate\"".into()))?,
        })
    }

    /// Verifies the attestation with `verifier` at `now` (seconds since the epoch), and that
    /// the attested key is `device_key`.
    pub fn appraise(
        &self,
        device_key: &P256PublicKey,
        verifier: &PivVerifier,
        now: u64,
    ) -> Result<DeviceFacts, AttestationError> {
        let slot = Cert::from_der(&self.slot_certificate)?;
        let f9 = Cert::from_der(&self.f9_certificate)?;
        let facts = verifier.verify(&slot, &f9, now)?;
        if &facts.key != device_key {
            return Err(AttestationError::PivAttestationInvalid(
                "the attested key is not the device key presented".into(),
            ));
        }
        Ok(facts.to_device_facts())
    }
}

#[cfg(test)]
mod tests;
