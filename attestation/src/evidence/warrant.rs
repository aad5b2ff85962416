use ciborium::Value;

use super::{encode, Decoded, EvidenceKind, EvidencePlace};
use crate::appraisal::WarrantContext;
use crate::pkcs11::{self, Pkcs11Report};
use crate::tpm::{self, TpmQuoteEvidence};
use crate::{software, AttestationError, BackendKind, DeviceFacts, P256PublicKey};

/// Device evidence as carried in a warrant: appraised against the facts the authority recorded
/// at enrollment, for one operation.
///
/// Wire form: a CBOR map whose `"kind"` entry names the evidence kind; the other entries
/// depend on the kind (software evidence has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarrantEvidence {
    /// Software key: no hardware claim, nothing to check beyond the key's own signature.
    Software,
    /// A key on a PKCS#11 token, as the token describes it (unsigned, self-reported).
    Pkcs11(Pkcs11Report),
    /// A TPM quote bound to this warrant, or (cached) to its grant and a status list.
    TpmQuote(TpmQuoteEvidence),
    /// A warrant signed by an enrolled TPM key, without a quote.
    TpmKey,
    /// A warrant signed by an enrolled YubiKey key.
    YubikeyKey,
}

impl WarrantEvidence {
    /// The kinds a warrant carries.
    pub const KINDS: [EvidenceKind; 5] = [
        EvidenceKind::Software,
        EvidenceKind::Pkcs11,
        EvidenceKind::TpmQuote,
        EvidenceKind::TpmKey,
        EvidenceKind::YubikeyKey,
    ];

    /// The kind of this evidence.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            WarrantEvidence::Software => EvidenceKind::Software,
            WarrantEvidence::Pkcs11(_) => EvidenceKind::Pkcs11,
            WarrantEvidence::TpmQuote(_) => EvidenceKind::TpmQuote,
            WarrantEvidence::TpmKey => EvidenceKind::TpmKey,
            WarrantEvidence::YubikeyKey => EvidenceKind::YubikeyKey,
        }
    }

    /// The backend this evidence speaks for.
    pub fn backend(&self) -> BackendKind {
        self.kind().backend()
    }

    /// The CBOR form, its text keys in deterministic (length-first) order.
    pub fn to_cbor(&self) -> Value {
        let entries = match self {
            WarrantEvidence::Software | WarrantEvidence::TpmKey | WarrantEvidence::YubikeyKey => Vec::new(),
            WarrantEvidence::Pkcs11(report) => report.to_entries(),
            WarrantEvidence::TpmQuote(quote) => quote.to_entries(),
        };
        encode(self.kind(), entries)
    }

    /// Decodes evidence strictly: a map with exactly the entries its kind defines, of a kind a
    /// warrant carries (a kind that belongs in enrollment requests is
    /// [`AttestationError::EvidenceMisplaced`]).
    pub fn from_cbor(value: Value) -> Result<Self, AttestationError> {
        let decoded = Decoded::read(value)?;
        match decoded.kind {
            EvidenceKind::Software => decoded.bare(WarrantEvidence::Software),
            EvidenceKind::TpmKey => decoded.bare(WarrantEvidence::TpmKey),
            EvidenceKind::YubikeyKey => decoded.bare(WarrantEvidence::YubikeyKey),
            EvidenceKind::Pkcs11 => Ok(WarrantEvidence::Pkcs11(Pkcs11Report::from_entries(decoded.rest)?)),
            EvidenceKind::TpmQuote => {
                Ok(WarrantEvidence::TpmQuote(TpmQuoteEvidence::from_entries(decoded.rest)?))
            }
            EvidenceKind::TpmCertify | EvidenceKind::YubikeyPiv => {
                Err(decoded.misplaced(EvidencePlace::Warrant))
            }
        }
    }

    /// Appraises the evidence for `device_key`, against the facts the authority recorded at
    /// enrollment and the warrant's `context`. Evidence of another backend than the enrolled
    /// one is refused before anything else is looked at.
    pub fn appraise(
        &self,
        device_key: &P256PublicKey,
        enrolled: &DeviceFacts,
        context: &WarrantContext<'_>,
    ) -> Result<DeviceFacts, AttestationError> {
        if self.backend() != enrolled.backend {
            return Err(AttestationError::BackendMismatch {
                expected: enrolled.backend.as_str().into(),
                found: self.backend().as_str().into(),
            });
        }
        match self {
            WarrantEvidence::Software => Ok(software::appraise(device_key)),
            // Self-reported each time: it must at least be what the authority recorded, so a
            // policy on its facts pins what was appraised at enrollment.
            WarrantEvidence::Pkcs11(report) => {
                let facts = pkcs11::appraise(report);
                if facts.properties != enrolled.properties {
                    return Err(AttestationError::Pkcs11ReportChanged);
                }
                Ok(facts)
            }
            WarrantEvidence::TpmQuote(quote) => quote.appraise(enrolled, context),
            WarrantEvidence::TpmKey => Ok(tpm::unquoted(enrolled)),
            WarrantEvidence::YubikeyKey => Ok(enrolled.clone()),
        }
    }
}
