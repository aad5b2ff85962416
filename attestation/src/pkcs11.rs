//! PKCS#11 evidence. PKCS#11 has no standard key attestation, so this is a *self-reported*
//! description: the token (manufacturer, model, serial, firmware) and the key's CKA_LOCAL,
//! CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE, as the token answered the device. Nothing
//! signs it but the device key itself; the facts say so (`self_reported = true`), and policy
//! decides whether that is enough.

use std::collections::BTreeMap;

use ciborium::Value;

use crate::{AttestationError, AttributeValue, BackendKind, DeviceFacts};

/// What a PKCS#11 token reports about itself and one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Report {
    /// CK_TOKEN_INFO manufacturerID.
    pub manufacturer: String,
    /// CK_TOKEN_INFO model.
    pub model: String,
    /// CK_TOKEN_INFO serialNumber.
    pub serial: String,
    /// Firmware version, `major.minor`.
    pub firmware: String,
    /// CKA_LOCAL: the key was generated on the token.
    pub local: bool,
    /// CKA_ALWAYS_SENSITIVE: the key was never readable in clear.
    pub always_sensitive: bool,
    /// CKA_NEVER_EXTRACTABLE: the key was never exportable.
    pub never_extractable: bool,
}

/// Longest text field accepted.
const MAX_TEXT: usize = 64;

impl Pkcs11Report {
    /// The map entries after `"kind"`, in deterministic (length-first) key order.
    pub(crate) fn to_entries(&self) -> Vec<(Value, Value)> {
        let text = |k: &str, v: &str| (Value::Text(k.into()), Value::Text(v.into()));
        let flag = |k: &str, v: bool| (Value::Text(k.into()), Value::Bool(v));
        vec![
            flag("local", self.local),
            text("model", &self.model),
            text("serial", &self.serial),
            text("firmware", &self.firmware),
            text("manufacturer", &self.manufacturer),
            flag("always_sensitive", self.always_sensitive),
            flag("never_extractable", self.never_extractable),
        ]
    }

    /// Reads the entries other than `"kind"`: exactly the seven fields, each once.
    pub(crate) fn from_entries(entries: Vec<(Value, Value)>) -> Result<Self, AttestationError> {
        let bad = |m: String| AttestationError::MalformedEvidence(format!("pkcs11 evidence: {m}"));
        let mut texts: BTreeMap<String, String> = BTreeMap::new();
        let mut flags: BTreeMap<String, bool> = BTreeMap::new();
        for (key, value) in entries {
            let Value::Text(key) = key else { return Err(bad("keys must be text".into())) };
            let fresh = !texts.contains_key(&key) && !flags.contains_key(&key);
            match (key.as_str(), value) {
                (_, _) if !fresh => return Err(bad(format!("{key:?} appears twice"))),
                ("manufacturer" | "model" | "serial" | "firmware", Value::Text(v)) if v.len() <= MAX_TEXT => {
                    texts.insert(key, v);
                }
                ("local" | "always_sensitive" | "never_extractable", Value::Bool(b)) => {
                    flags.insert(key, b);
                }
                (k, _) => return Err(bad(format!("unexpected or ill-typed entry {k:?}"))),
            }
        }
        let mut text = |k: &str| texts.remove(k).ok_or_else(|| bad(format!("missing {k:?}")));
        let (manufacturer, model, serial, firmware) =
            (text("manufacturer")?, text("model")?, text("serial")?, text("firmware")?);
        let flag = |k: &str| flags.get(k).copied().ok_or_else(|| bad(format!("missing {k:?}")));
        Ok(Self {
            manufacturer,
            model,
            serial,
            firmware,
            local: flag("local")?,
            always_sensitive: flag("always_sensitive")?,
            never_extractable: flag("never_extractable")?,
        })
    }
}

/// The facts: the report's fields, marked self-reported. A token may leave a text field
/// blank; a blank field is left out of the facts (a policy tests it with `has`), since facts
/// become attributes, whose text is never empty.
pub(crate) fn appraise(report: &Pkcs11Report) -> DeviceFacts {
    let mut properties = BTreeMap::from([
        ("self_reported".to_owned(), AttributeValue::Bool(true)),
        ("local".to_owned(), AttributeValue::Bool(report.local)),
        ("always_sensitive".to_owned(), AttributeValue::Bool(report.always_sensitive)),
        ("never_extractable".to_owned(), AttributeValue::Bool(report.never_extractable)),
    ]);
    let texts = [
        ("manufacturer", &report.manufacturer),
        ("model", &report.model),
        ("serial", &report.serial),
        ("firmware", &report.firmware),
    ];
    for (name, value) in texts {
        if !value.is_empty() {
            properties.insert(name.to_owned(), AttributeValue::Text(value.clone()));
        }
    }
    DeviceFacts { backend: BackendKind::Pkcs11, properties }
}
