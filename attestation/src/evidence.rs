//! Device evidence, one type per place it is carried: [`EnrollmentEvidence`] in enrollment
//! requests, [`WarrantEvidence`] in warrants. Both share one wire form, a CBOR map whose
//! `"kind"` entry names the kind; a kind that belongs in the other place is refused when it is
//! decoded, so evidence in the wrong place cannot be built.

use std::fmt;

use ciborium::Value;

use crate::{AttestationError, BackendKind};

mod enrollment;
mod warrant;

pub use enrollment::EnrollmentEvidence;
pub use warrant::WarrantEvidence;

/// The kinds of evidence a device can attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    /// A software key: the evidence claims no hardware.
    Software,
    /// A PKCS#11 token's self-reported description of itself and the key.
    Pkcs11,
    /// A TPM2_Certify of the device key by the TPM's attestation key (enrollment).
    TpmCertify,
    /// A TPM2_Quote over the operation (warrants).
    TpmQuote,
    /// A TPM key signing without a quote (warrants).
    TpmKey,
    /// A YubiKey PIV slot attestation and the device's f9 certificate (enrollment).
    YubikeyPiv,
    /// A YubiKey PIV key signing (warrants): the grant holds the appraised attestation.
    YubikeyKey,
}

impl EvidenceKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Software => "software",
            EvidenceKind::Pkcs11 => "pkcs11",
            EvidenceKind::TpmCertify => "tpm-certify",
            EvidenceKind::TpmQuote => "tpm-quote",
            EvidenceKind::TpmKey => "tpm-key",
            EvidenceKind::YubikeyPiv => "yubikey-piv",
            EvidenceKind::YubikeyKey => "yubikey-key",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "software" => Some(EvidenceKind::Software),
            "pkcs11" => Some(EvidenceKind::Pkcs11),
            "tpm-certify" => Some(EvidenceKind::TpmCertify),
            "tpm-quote" => Some(EvidenceKind::TpmQuote),
            "tpm-key" => Some(EvidenceKind::TpmKey),
            "yubikey-piv" => Some(EvidenceKind::YubikeyPiv),
            "yubikey-key" => Some(EvidenceKind::YubikeyKey),
            _ => None,
        }
    }

    /// The backend evidence of this kind speaks for.
    pub fn backend(self) -> BackendKind {
        match self {
            EvidenceKind::Software => BackendKind::Software,
            EvidenceKind::Pkcs11 => BackendKind::Pkcs11,
            EvidenceKind::TpmCertify | EvidenceKind::TpmQuote | EvidenceKind::TpmKey => BackendKind::Tpm,
            EvidenceKind::YubikeyPiv | EvidenceKind::YubikeyKey => BackendKind::Yubikey,
        }
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where evidence is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidencePlace {
    /// An enrollment request, answering the authority's challenge.
    Enrollment,
    /// A warrant, for one operation.
    Warrant,
}

impl EvidencePlace {
    /// The kinds this place carries.
    pub fn kinds(self) -> &'static [EvidenceKind] {
        match self {
            EvidencePlace::Enrollment => &EnrollmentEvidence::KINDS,
            EvidencePlace::Warrant => &WarrantEvidence::KINDS,
        }
    }

    /// The kinds this place carries, as a sentence fragment ("a, b or c").
    pub(crate) fn kinds_text(self) -> String {
        let names: Vec<&str> = self.kinds().iter().map(|k| k.as_str()).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// The other place.
    pub(crate) fn other(self) -> Self {
        match self {
            EvidencePlace::Enrollment => EvidencePlace::Warrant,
            EvidencePlace::Warrant => EvidencePlace::Enrollment,
        }
    }
}

impl fmt::Display for EvidencePlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvidencePlace::Enrollment => "an enrollment request",
            EvidencePlace::Warrant => "a warrant",
        })
    }
}

const KIND: &str = "kind";

/// The CBOR form of evidence of `kind` with its other `entries`, text keys in deterministic
/// (length-first) order.
fn encode(kind: EvidenceKind, mut entries: Vec<(Value, Value)>) -> Value {
    entries.push((Value::Text(KIND.into()), Value::Text(kind.as_str().into())));
    let key = |entry: &(Value, Value)| match &entry.0 {
        Value::Text(t) => (t.len(), t.clone()),
        _ => (0, String::new()),
    };
    entries.sort_by_key(key);
    Value::Map(entries)
}

/// Evidence read as far as its kind: the kind, and the entries other than `"kind"`, which the
/// kind's own decoder reads strictly.
struct Decoded {
    kind: EvidenceKind,
    rest: Vec<(Value, Value)>,
}

impl Decoded {
    /// Reads the map and its one `"kind"` entry, a kind this verifier knows.
    fn read(value: Value) -> Result<Self, AttestationError> {
        let Value::Map(entries) = value else {
            return Err(AttestationError::MalformedEvidence("evidence must be a CBOR map".into()));
        };
        let mut kind = None;
        let mut rest = Vec::new();
        for (key, value) in entries {
            match (key, value) {
                (Value::Text(k), Value::Text(v)) if k == KIND && kind.is_none() => kind = Some(v),
                (Value::Text(k), _) if k == KIND => {
                    return Err(AttestationError::MalformedEvidence(
                        "\"kind\" must appear once, as text".into(),
                    ))
                }
                entry => rest.push(entry),
            }
        }
        let Some(name) = kind else {
            return Err(AttestationError::MalformedEvidence("missing \"kind\"".into()));
        };
        let kind = EvidenceKind::parse(&name).ok_or(AttestationError::UnknownEvidenceKind(name))?;
        Ok(Self { kind, rest })
    }

    /// For kinds with no entries besides `"kind"`: `evidence`, if there are none.
    fn bare<T>(self, evidence: T) -> Result<T, AttestationError> {
        match self.rest.first() {
            None => Ok(evidence),
            Some((k, _)) => {
                Err(AttestationError::MalformedEvidence(format!("unexpected evidence entry {k:?}")))
            }
        }
    }

    /// The refusal of this kind in `place`, where it does not belong.
    fn misplaced(&self, place: EvidencePlace) -> AttestationError {
        AttestationError::EvidenceMisplaced { kind: self.kind, place }
    }
}

#[cfg(test)]
mod tests;
