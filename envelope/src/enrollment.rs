//! The enrollment request: a device asks the authority for a grant, presenting its public
//! key, evidence bound to the authority's challenge, and a signature by the key itself
//! (proof of possession).

use ciborium::Value;
use warrant_attestation::{DeviceFacts, EnrollmentEvidence, EnrollmentTrust, P256PublicKey};

use crate::verifier::{Clock, SystemClock};

use crate::cbor::{self, Key, Reader};
use crate::cwt::{self, MAX_TEXT};
use crate::keys::VerifyingKey;
use crate::signer::Signer;
use crate::warrant::read_evidence;
use crate::{cose, keys, Error, ObjectType};

const EVIDENCE: Key = Key::Text("evidence");

/// Length of an authority challenge.
pub const CHALLENGE_LEN: usize = 32;

/// The claims of an enrollment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentClaims {
    /// The principal the device asks a grant for (`sub`).
    pub principal: String,
    /// The device's public key (`cnf`); it also signs the request.
    pub device_key: P256PublicKey,
    /// The authority's challenge (`eat_nonce`).
    pub challenge: [u8; CHALLENGE_LEN],
    /// `iat`.
    pub issued_at: u64,
    /// Evidence about the device key, bound to the challenge.
    pub evidence: EnrollmentEvidence,
}

impl EnrollmentClaims {
    /// Encodes the claims as a CWT claims set.
    pub fn to_cbor(&self) -> Value {
        cbor::map_of([
            (cwt::SUB, Value::Text(self.principal.clone())),
            (cwt::IAT, Value::Integer(self.issued_at.into())),
            (cwt::CNF, cbor::map_of([(cwt::CNF_COSE_KEY, keys::cose_key(&self.device_key))])),
            (cwt::EAT_NONCE, Value::Bytes(self.challenge.to_vec())),
            (EVIDENCE, self.evidence.to_cbor()),
        ])
    }

    /// Decodes a claims set from its encoding, strictly.
    pub fn from_payload(payload: &[u8]) -> Result<Self, Error> {
        const O: ObjectType = ObjectType::EnrollmentRequest;
        let mut r = Reader::new(O, payload, O.size_limit())?;
        let mut keys = r.map("claims")?;
        let (mut principal, mut issued_at, mut device_key, mut challenge, mut evidence) =
            (None, None, None, None, None);
        while let Some(key) = keys.next(&mut r)? {
            match key {
                k if cwt::SUB.is(k) => principal = Some(r.text(cwt::SUB.name(), MAX_TEXT)?.to_owned()),
                k if cwt::IAT.is(k) => issued_at = Some(r.uint(cwt::IAT.name())?),
                k if cwt::CNF.is(k) => device_key = Some(keys::read_cnf(&mut r)?),
                k if cwt::EAT_NONCE.is(k) => {
                    challenge = Some(r.fixed_bytes::<CHALLENGE_LEN>(cwt::EAT_NONCE.name())?)
                }
                k if EVIDENCE.is(k) => evidence = Some(read_evidence(&mut r, EnrollmentEvidence::from_cbor)?),
                other => return Err(cbor::unknown(O, other)),
            }
        }
        r.finish()?;
        Ok(Self {
            principal: cbor::required(O, cwt::SUB.name(), principal)?,
            device_key: cbor::required(O, cwt::CNF.name(), device_key)?,
            challenge: cbor::required(O, cwt::EAT_NONCE.name(), challenge)?,
            issued_at: cbor::required(O, cwt::IAT.name(), issued_at)?,
            evidence: cbor::required(O, EVIDENCE.name(), evidence)?,
        })
    }

    /// Signs the request with the device key it presents.
    pub fn sign(&self, device: &dyn Signer) -> Result<Vec<u8>, Error> {
        if device.public_key() != &self.device_key {
            return Err(Error::Signing("the enrollment must be signed by the key it presents".into()));
        }
        let payload = cbor::encode(ObjectType::EnrollmentRequest, &self.to_cbor())?;
        cose::sign(ObjectType::EnrollmentRequest, device, payload)
    }
}

/// An enrollment request whose proof of possession and evidence checked out.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedEnrollment {
    /// The request's claims.
    pub claims: EnrollmentClaims,
    /// What the evidence established about the device.
    pub device: DeviceFacts,
}

/// Verifies an enrollment request: strict decoding, the signature by the presented key, and
/// the evidence for that key bound to the challenge. Whether the challenge is one the
/// authority issued, and still open, is the authority's check.
pub fn verify_enrollment(bytes: &[u8]) -> Result<VerifiedEnrollment, Error> {
    let now = SystemClock.now();
    verify_enrollment_with(bytes, &EnrollmentTrust::new(now)?)
}

/// [`verify_enrollment`] with the authority's own attestation trust (extra roots, options).
pub fn verify_enrollment_with(bytes: &[u8], trust: &EnrollmentTrust) -> Result<VerifiedEnrollment, Error> {
    const O: ObjectType = ObjectType::EnrollmentRequest;
    let signed = cose::decode(O, bytes)?;
    let claims = EnrollmentClaims::from_payload(&signed.payload)?;
    let key = VerifyingKey::new(claims.device_key.clone())?;
    if key.kid() != &signed.kid || !signed.verifies_with(&key) {
        return Err(Error::EnrollmentSignatureInvalid);
    }
    let device = claims.evidence.appraise(&claims.device_key, &claims.challenge, trust)?;
    Ok(VerifiedEnrollment { claims, device })
}
