use ciborium::Value;

use crate::appraisal::{EnrollmentTrust, WarrantContext};
use crate::piv::PivEvidence;
use crate::pkcs11::{self, Pkcs11Report};
use crate::tpm::{self, TpmCertifyEvidence, TpmError, TpmQuoteEvidence};
use crate::{software, AttestationError, BackendKind, DeviceFacts, P256PublicKey};

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
}

/// Device evidence as carried in an enrollment request or a warrant.
///
/// Wire form: a CBOR map whose `"kind"` entry names the evidence kind; the other entries
/// depend on the kind (software evidence has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Software key: no hardware claim, nothing to check beyond the key's own signature.
    Software,
    /// A key on a PKCS#11 token, as the token describes it (unsigned, self-reported).
    Pkcs11(Pkcs11Report),
    /// TPM enrollment evidence: the device key certified by the attestation key.
    TpmCertify(TpmCertifyEvidence),
    /// A TPM quote bound to one warrant, or (cached) to its grant and a status list.
    TpmQuote(TpmQuoteEvidence),
    /// A warrant signed by an enrolled TPM key, without a quote.
    TpmKey,
    /// YubiKey enrollment evidence: the slot attestation and the f9 certificate (DER).
    YubikeyPiv(PivEvidence),
    /// A warrant signed by an enrolled YubiKey key.
    YubikeyKey,
}

const KIND: &str = "kind";

impl Evidence {
    /// The kind of this evidence.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            Evidence::Software => EvidenceKind::Software,
            Evidence::Pkcs11(_) => EvidenceKind::Pkcs11,
            Evidence::TpmCertify(_) => EvidenceKind::TpmCertify,
            Evidence::TpmQuote(_) => EvidenceKind::TpmQuote,
            Evidence::TpmKey => EvidenceKind::TpmKey,
            Evidence::YubikeyPiv(_) => EvidenceKind::YubikeyPiv,
            Evidence::YubikeyKey => EvidenceKind::YubikeyKey,
        }
    }

    /// The backend this evidence speaks for.
    pub fn backend(&self) -> BackendKind {
        match self {
            Evidence::Software => BackendKind::Software,
            Evidence::Pkcs11(_) => BackendKind::Pkcs11,
            Evidence::TpmCertify(_) | Evidence::TpmQuote(_) | Evidence::TpmKey => BackendKind::Tpm,
            Evidence::YubikeyPiv(_) | Evidence::YubikeyKey => BackendKind::Yubikey,
        }
    }

    /// The CBOR form, its text keys in deterministic (length-first) order.
    pub fn to_cbor(&self) -> Value {
        let mut entries = vec![(Value::Text(KIND.into()), Value::Text(self.kind().as_str().into()))];
        match self {
            Evidence::Software | Evidence::TpmKey | Evidence::YubikeyKey => {}
            Evidence::Pkcs11(report) => entries.extend(report.to_entries()),
            Evidence::TpmCertify(certify) => entries.extend(certify.to_entries()),
            Evidence::TpmQuote(quote) => entries.extend(quote.to_entries()),
            Evidence::YubikeyPiv(piv) => entries.extend(piv.to_entries()),
        }
        let key = |entry: &(Value, Value)| match &entry.0 {
            Value::Text(t) => (t.len(), t.clone()),
            _ => (0, String::new()),
        };
        entries.sort_by_key(key);
        Value::Map(entries)
    }

    /// Decodes evidence strictly: a map with exactly the entries its kind defines.
    pub fn from_cbor(value: Value) -> Result<Self, AttestationError> {
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
        let bare = |evidence: Evidence| match rest.first() {
            None => Ok(evidence),
            Some((k, _)) => {
                Err(AttestationError::MalformedEvidence(format!("unexpected evidence entry {k:?}")))
            }
        };
        match kind.as_deref() {
            Some("software") => bare(Evidence::Software),
            Some("tpm-key") => bare(Evidence::TpmKey),
            Some("yubikey-key") => bare(Evidence::YubikeyKey),
            Some("yubikey-piv") => Ok(Evidence::YubikeyPiv(PivEvidence::from_entries(rest)?)),
            Some("pkcs11") => Ok(Evidence::Pkcs11(Pkcs11Report::from_entries(rest)?)),
            Some("tpm-certify") => Ok(Evidence::TpmCertify(TpmCertifyEvidence::from_entries(rest)?)),
            Some("tpm-quote") => Ok(Evidence::TpmQuote(TpmQuoteEvidence::from_entries(rest)?)),
            Some(other) => Err(AttestationError::UnknownEvidenceKind(other.to_owned())),
            None => Err(AttestationError::MalformedEvidence("missing \"kind\"".into())),
        }
    }

    /// Appraises enrollment evidence for `device_key`, bound to the authority's `challenge`.
    /// The facts it yields are what the authority records in the grant.
    pub fn appraise_enrollment(
        &self,
        device_key: &P256PublicKey,
        challenge: &[u8; 32],
        trust: &EnrollmentTrust,
    ) -> Result<DeviceFacts, AttestationError> {
        match self {
            Evidence::YubikeyPiv(piv) => piv.appraise(device_key, &trust.piv, trust.now),
            Evidence::YubikeyKey => Err(AttestationError::PivAttestationInvalid(
                "an enrollment needs yubikey-piv evidence (the slot's attestation)".into(),
            )),
            Evidence::Software => Ok(software::appraise(device_key)),
            Evidence::Pkcs11(report) => Ok(pkcs11::appraise(report)),
            Evidence::TpmCertify(certify) => certify.appraise(device_key, challenge),
            Evidence::TpmQuote(_) | Evidence::TpmKey => Err(TpmError::Misplaced(
                "an enrollment needs tpm-certify evidence; quotes and bare TPM keys belong in warrants",
            )
            .into()),
        }
    }

    /// Appraises a warrant's evidence for `device_key`, against the facts the authority recorded
    /// at enrollment and the warrant's `context`.
    pub fn appraise(
        &self,
        device_key: &P256PublicKey,
        enrolled: &DeviceFacts,
        context: &WarrantContext<'_>,
    ) -> Result<DeviceFacts, AttestationError> {
        let facts = match self {
            Evidence::Software => software::appraise(device_key),
            // Self-reported each time: it must at least be what the authority recorded, so a
            // policy on its facts pins what was appraised at enrollment.
            Evidence::Pkcs11(report) if enrolled.backend == BackendKind::Pkcs11 => {
                let facts = pkcs11::appraise(report);
                if facts.properties != enrolled.properties {
                    return Err(AttestationError::Pkcs11ReportChanged);
                }
                facts
            }
            Evidence::Pkcs11(report) => pkcs11::appraise(report),
            Evidence::TpmQuote(quote) if enrolled.backend == BackendKind::Tpm => {
                quote.appraise(enrolled, context)?
            }
            Evidence::TpmKey if enrolled.backend == BackendKind::Tpm => tpm::unquoted(enrolled),
            Evidence::YubikeyKey if enrolled.backend == BackendKind::Yubikey => enrolled.clone(),
            Evidence::YubikeyPiv(_) => {
                return Err(AttestationError::PivAttestationInvalid(
                    "yubikey-piv evidence belongs in an enrollment; warrants carry yubikey-key".into(),
                ))
            }
            Evidence::YubikeyKey => DeviceFacts { backend: BackendKind::Yubikey, ..DeviceFacts::software() },
            Evidence::TpmCertify(_) => {
                return Err(TpmError::Misplaced(
                    "tpm-certify evidence belongs in an enrollment, not a warrant",
                )
                .into())
            }
            Evidence::TpmQuote(_) | Evidence::TpmKey => {
                DeviceFacts { backend: BackendKind::Tpm, ..DeviceFacts::software() }
            }
        };
        if facts.backend != enrolled.backend {
            return Err(AttestationError::BackendMismatch {
                expected: enrolled.backend.as_str().into(),
                found: facts.backend.as_str().into(),
            });
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(binding: &[u8; 32]) -> WarrantContext<'_> {
        // Leaks one closure per call: tests only.
        let binding = *binding;
        WarrantContext {
            grant_id: [3; 16],
            now: 1_800_000_000,
            binding: Box::leak(Box::new(move || Ok(binding))),
            status_list: None,
            previous_status_list: None,
            verifier_nonce: false,
        }
    }
    use std::collections::BTreeMap;

    #[test]
    fn software_evidence_round_trips() {
        assert_eq!(Evidence::from_cbor(Evidence::Software.to_cbor()), Ok(Evidence::Software));
    }

    fn report() -> Pkcs11Report {
        Pkcs11Report {
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
            serial: "1a2b3c".into(),
            firmware: "2.6".into(),
            local: true,
            always_sensitive: true,
            never_extractable: true,
        }
    }

    #[test]
    fn pkcs11_evidence_round_trips_and_says_it_is_self_reported() {
        let evidence = Evidence::Pkcs11(report());
        assert_eq!(Evidence::from_cbor(evidence.to_cbor()), Ok(evidence.clone()));
        let key = P256PublicKey::from_sec1(&hex_point()).unwrap();
        let challenge = [0; 32];
        let trust = crate::EnrollmentTrust::new(0).unwrap();
        let enrolled = evidence.appraise_enrollment(&key, &challenge, &trust).unwrap();
        let facts = evidence.appraise(&key, &enrolled, &ctx(&[0; 32])).unwrap();
        assert_eq!(facts.backend, BackendKind::Pkcs11);
        assert_eq!(facts.properties["self_reported"], crate::AttributeValue::Bool(true));
        assert_eq!(facts.properties["serial"], crate::AttributeValue::Text("1a2b3c".into()));
        // A token that leaves a field blank: the fact is absent, never empty text.
        let blank = Evidence::Pkcs11(Pkcs11Report { serial: String::new(), ..report() });
        let blank_enrolled = blank.appraise_enrollment(&key, &challenge, &trust).unwrap();
        let facts = blank.appraise(&key, &blank_enrolled, &ctx(&[0; 32])).unwrap();
        assert!(!facts.properties.contains_key("serial"));
        assert!(facts.properties.contains_key("model"));
    }

    /// Each warrant carries the token's report again; one that differs from what the authority
    /// recorded (another token, a report edited to please a policy) is refused.
    #[test]
    fn a_pkcs11_report_must_be_the_one_recorded_at_enrollment() {
        let key = P256PublicKey::from_sec1(&hex_point()).unwrap();
        let trust = crate::EnrollmentTrust::new(0).unwrap();
        let enrolled = Evidence::Pkcs11(report()).appraise_enrollment(&key, &[0; 32], &trust).unwrap();
        let edited = Evidence::Pkcs11(Pkcs11Report { model: "Luna K7".into(), ..report() });
        assert_eq!(
            edited.appraise(&key, &enrolled, &ctx(&[0; 32])),
            Err(AttestationError::Pkcs11ReportChanged)
        );
    }

    #[test]
    fn pkcs11_evidence_is_decoded_strictly() {
        let Value::Map(good) = Evidence::Pkcs11(report()).to_cbor() else { panic!("unexpected shape") };
        let missing: Vec<_> = good.iter().filter(|(k, _)| k.as_text() != Some("local")).cloned().collect();
        let mut twice = good.clone();
        twice.push(good[1].clone());
        let mut typed = good.clone();
        typed[1].1 = Value::Text("yes".into());
        let mut extra = good.clone();
        extra.push((Value::Text("pin".into()), Value::Text("1234".into())));
        let mut long = good.clone();
        long[2].1 = Value::Text("m".repeat(65));
        for bad in [missing, twice, typed, extra, long] {
            assert!(matches!(
                Evidence::from_cbor(Value::Map(bad)),
                Err(AttestationError::MalformedEvidence(_))
            ));
        }
    }

    #[test]
    fn strict_decoding_rejects_extra_missing_and_unknown() {
        let extra = Value::Map(vec![
            (Value::Text("kind".into()), Value::Text("software".into())),
            (Value::Text("x".into()), Value::Bool(true)),
        ]);
        assert!(matches!(Evidence::from_cbor(extra), Err(AttestationError::MalformedEvidence(_))));
        let dup = Value::Map(vec![
            (Value::Text("kind".into()), Value::Text("software".into())),
            (Value::Text("kind".into()), Value::Text("software".into())),
        ]);
        assert!(matches!(Evidence::from_cbor(dup), Err(AttestationError::MalformedEvidence(_))));
        assert!(matches!(
            Evidence::from_cbor(Value::Map(vec![])),
            Err(AttestationError::MalformedEvidence(_))
        ));
        let unknown = Value::Map(vec![(Value::Text("kind".into()), Value::Text("sgx".into()))]);
        assert_eq!(Evidence::from_cbor(unknown), Err(AttestationError::UnknownEvidenceKind("sgx".into())));
        assert!(Evidence::from_cbor(Value::Array(vec![])).is_err());
    }

    #[test]
    fn evidence_from_another_backend_than_enrolled_is_refused() {
        let key = P256PublicKey::from_sec1(&hex_point()).unwrap();
        let enrolled = DeviceFacts { backend: BackendKind::Tpm, properties: BTreeMap::new() };
        let err = Evidence::Software.appraise(&key, &enrolled, &ctx(&[0; 32])).unwrap_err();
        assert!(matches!(err, AttestationError::BackendMismatch { .. }));
    }

    fn hex_point() -> Vec<u8> {
        // Generator point of P-256, compressed.
        let mut v = vec![0x03];
        v.extend_from_slice(&[
            0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
            0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
        ]);
        v
    }
}
