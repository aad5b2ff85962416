use ciborium::Value;

use super::{encode, Decoded, EvidenceKind, EvidencePlace};
use crate::appraisal::EnrollmentTrust;
use crate::piv::PivEvidence;
use crate::pkcs11::{self, Pkcs11Report};
use crate::tpm::TpmCertifyEvidence;
use crate::{software, AttestationError, BackendKind, DeviceFacts, P256PublicKey};

/// Device evidence as carried in an enrollment request: what the authority appraises once and
/// records in the grant.
///
/// Wire form: a CBOR map whose `"kind"` entry names the evidence kind; the other entries
/// depend on the kind (software evidence has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentEvidence {
    /// Software key: no hardware claim, nothing to check beyond the key's own signature.
    Software,
    /// A key on a PKCS#11 token, as the token describes it (unsigned, self-reported).
    Pkcs11(Pkcs11Report),
    /// The device key certified by the TPM's attestation key, over the challenge.
    TpmCertify(TpmCertifyEvidence),
    /// The YubiKey slot attestation and the f9 certificate (DER).
    YubikeyPiv(PivEvidence),
}

impl EnrollmentEvidence {
    /// The kinds an enrollment request carries.
    pub const KINDS: [EvidenceKind; 4] =
        [EvidenceKind::Software, EvidenceKind::Pkcs11, EvidenceKind::TpmCertify, EvidenceKind::YubikeyPiv];

    /// The kind of this evidence.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            EnrollmentEvidence::Software => EvidenceKind::Software,
            EnrollmentEvidence::Pkcs11(_) => EvidenceKind::Pkcs11,
            EnrollmentEvidence::TpmCertify(_) => EvidenceKind::TpmCertify,
            EnrollmentEvidence::YubikeyPiv(_) => EvidenceKind::YubikeyPiv,
        }
    }

    /// The backend this evidence speaks for.
    pub fn backend(&self) -> BackendKind {
        self.kind().backend()
    }

    /// The CBOR form, its text keys in deterministic (length-first) order.
    pub fn to_cbor(&self) -> Value {
        let entries = match self {
            EnrollmentEvidence::Software => Vec::new(),
            EnrollmentEvidence::Pkcs11(report) => report.to_entries(),
            EnrollmentEvidence::TpmCertify(certify) => certify.to_entries(),
            EnrollmentEvidence::YubikeyPiv(piv) => piv.to_entries(),
        };
        encode(self.kind(), entries)
    }

    /// Decodes evidence strictly: a map with exactly the entries its kind defines, of a kind an
    /// enrollment request carries (a kind that belongs in warrants is
    /// [`AttestationError::EvidenceMisplaced`]).
    pub fn from_cbor(value: Value) -> Result<Self, AttestationError> {
        let decoded = Decoded::read(value)?;
        match decoded.kind {
            EvidenceKind::Software => decoded.bare(EnrollmentEvidence::Software),
            EvidenceKind::Pkcs11 => Ok(EnrollmentEvidence::Pkcs11(Pkcs11Report::from_entries(decoded.rest)?)),
            EvidenceKind::TpmCertify => {
                Ok(EnrollmentEvidence::TpmCertify(TpmCertifyEvidence::from_entries(decoded.rest)?))
            }
            EvidenceKind::YubikeyPiv => {
                Ok(EnrollmentEvidence::YubikeyPiv(PivEvidence::from_entries(decoded.rest)?))
            }
            EvidenceKind::TpmQuote | EvidenceKind::TpmKey | EvidenceKind::YubikeyKey => {
                Err(decoded.misplaced(EvidencePlace::Enrollment))
            }
        }
    }

    /// Appraises the evidence for `device_key`, bound to the authority's `challenge`. The facts
    /// it yields are what the authority records in the grant.
    pub fn appraise(
        &self,
        device_key: &P256PublicKey,
        challenge: &[u8; 32],
        trust: &EnrollmentTrust,
    ) -> Result<DeviceFacts, AttestationError> {
        match self {
            EnrollmentEvidence::Software => Ok(software::appraise(device_key)),
            EnrollmentEvidence::Pkcs11(report) => Ok(pkcs11::appraise(report)),
            EnrollmentEvidence::TpmCertify(certify) => certify.appraise(device_key, challenge),
            EnrollmentEvidence::YubikeyPiv(piv) => piv.appraise(device_key, &trust.piv, trust.now),
        }
    }
}
