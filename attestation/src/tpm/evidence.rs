//! TPM evidence as carried in enrollment requests and warrants, and its appraisal.
//!
//! - `tpm-certify` (enrollment): the attestation key's public area, the device key's public
//!   area, a TPM2_Certify of the device key by the AK over the authority's challenge, and the
//!   EK certificate. That the AK shares a TPM with the EK is proved separately, by credential
//!   activation, before the challenge is known (the authority's part).
//! - `tpm-quote` (warrant): a TPM2_Quote by the enrolled AK whose qualifying data is the
//!   warrant's evidence binding, or for a cached quote the grant and a status list of the
//!   grant's authority that the verifier holds, with the PCR values it covers.
//! - `tpm-key` (warrant): no quote; the enrolled key's signature is the only proof.

use std::collections::BTreeMap;

use ciborium::Value;

use super::hash::TpmHash;
use super::pcrs::{PcrValue, MAX_PCR_VALUES};
use super::public::{TpmPublic, TpmPublicKey};
use super::verify::{verify_certify, verify_quote, VerifiedQuote};
use super::TpmError;
use crate::appraisal::WarrantContext;
use crate::certificate::MAX_CERTIFICATE;
use crate::{AttestationError, AttributeValue, BackendKind, DeviceFacts, P256PublicKey};

/// Enrollment evidence: a certify of the device key by the attestation key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmCertifyEvidence {
    /// The AK's TPMT_PUBLIC.
    pub ak_public: Vec<u8>,
    /// The device key's TPMT_PUBLIC.
    pub key_public: Vec<u8>,
    /// The TPMS_ATTEST the AK signed.
    pub attest: Vec<u8>,
    /// The AK's TPMT_SIGNATURE over `attest`.
    pub signature: Vec<u8>,
    /// The EK certificate (DER), as read from the TPM's NV.
    pub ek_certificate: Vec<u8>,
}

/// Warrant evidence: a quote by the enrolled AK over the warrant's binding, or (cached) over
/// the grant and a status list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmQuoteEvidence {
    /// The TPMS_ATTEST.
    pub attest: Vec<u8>,
    /// The AK's TPMT_SIGNATURE.
    pub signature: Vec<u8>,
    /// The PCR values the quote covers, in selection order.
    pub pcrs: Vec<PcrValue>,
    /// For a cached quote: the digest of the grant authority's status list it is bound to (its
    /// signed-content digest). Its nonce is then [`cached_quote_nonce`] of the grant and the
    /// list instead of the warrant's binding.
    pub status_list: Option<[u8; 32]>,
}

/// The qualifying data of a cached quote: it belongs to one grant and one status list of the
/// grant's authority, so it serves the warrants under that grant while verifiers hold the
/// list, and none elsewhere. The device cannot know a list before the authority issues it, so
/// the quote was made after the list's `iat`: that is what makes its age provable.
pub fn cached_quote_nonce(grant_id: &[u8; 16], status_list: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"warrant tpm cached quote v2\0");
    h.update(grant_id);
    h.update(status_list);
    h.finalize().into()
}

/// Largest TPM structure accepted in evidence.
const MAX_STRUCTURE: usize = 1024;

fn bad(kind: &str, reason: String) -> AttestationError {
    AttestationError::MalformedEvidence(format!("{kind} evidence: {reason}"))
}

fn bytes(k: &str, v: &[u8]) -> (Value, Value) {
    (Value::Text(k.into()), Value::Bytes(v.to_vec()))
}

/// Reads a map's entries into named byte strings, each at most its limit, each exactly once.
fn read_bytes_entries(
    kind: &str,
    entries: Vec<(Value, Value)>,
    fields: &[(&str, usize)],
) -> Result<BTreeMap<String, Value>, AttestationError> {
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let Value::Text(key) = key else { return Err(bad(kind, "keys must be text".into())) };
        let Some(&(_, limit)) = fields.iter().find(|(name, _)| *name == key) else {
            return Err(bad(kind, format!("unexpected entry {key:?}")));
        };
        match &value {
            Value::Bytes(b) if b.len() <= limit => {}
            Value::Array(a) if a.len() <= limit => {}
            _ => return Err(bad(kind, format!("{key:?} has the wrong type or is too large"))),
        }
        if out.insert(key.clone(), value).is_some() {
            return Err(bad(kind, format!("{key:?} appears twice")));
        }
    }
    for (name, _) in fields {
        if !out.contains_key(*name) {
            return Err(bad(kind, format!("missing {name:?}")));
        }
    }
    Ok(out)
}

fn take_bytes(map: &mut BTreeMap<String, Value>, key: &str) -> Vec<u8> {
    match map.remove(key) {
        Some(Value::Bytes(b)) => b,
        _ => Vec::new(),
    }
}

impl TpmCertifyEvidence {
    pub(crate) fn to_entries(&self) -> Vec<(Value, Value)> {
        vec![
            bytes("attest", &self.attest),
            bytes("ak_public", &self.ak_public),
            bytes("signature", &self.signature),
            bytes("key_public", &self.key_public),
            bytes("ek_certificate", &self.ek_certificate),
        ]
    }

    pub(crate) fn from_entries(entries: Vec<(Value, Value)>) -> Result<Self, AttestationError> {
        let fields = [
            ("attest", MAX_STRUCTURE),
            ("ak_public", MAX_STRUCTURE),
            ("signature", MAX_STRUCTURE),
            ("key_public", MAX_STRUCTURE),
            ("ek_certificate", MAX_CERTIFICATE),
        ];
        let mut m = read_bytes_entries("tpm-certify", entries, &fields)?;
        Ok(Self {
            attest: take_bytes(&mut m, "attest"),
            ak_public: take_bytes(&mut m, "ak_public"),
            signature: take_bytes(&mut m, "signature"),
            key_public: take_bytes(&mut m, "key_public"),
            ek_certificate: take_bytes(&mut m, "ek_certificate"),
        })
    }

    /// Appraises the certify for `device_key` over `challenge`. The EK certificate's chain and
    /// the credential activation are the authority's checks, not made here.
    pub fn appraise(
        &self,
        device_key: &P256PublicKey,
        challenge: &[u8],
    ) -> Result<DeviceFacts, AttestationError> {
        let ak = TpmPublic::parse(&self.ak_public)?;
        let key = TpmPublic::parse(&self.key_public)?;
        if key.key != TpmPublicKey::P256(device_key.clone()) {
            return Err(TpmError::CertifiedKeyNotDeviceKey.into());
        }
        verify_certify(&ak, &self.attest, &self.signature, &key, challenge)?;
        let ek_fingerprint = crate::certificate::Cert::from_der(&self.ek_certificate)?.fingerprint();
        let text = |v: String| AttributeValue::Text(v);
        let properties = BTreeMap::from([
            ("ak_public".to_owned(), text(hex::encode(&self.ak_public))),
            ("ak_name".to_owned(), text(hex::encode(ak.name()))),
            ("ak_type".to_owned(), text(ak.key_type())),
            ("ek_certificate_sha256".to_owned(), text(hex::encode(ek_fingerprint))),
            ("key_name".to_owned(), text(hex::encode(key.name()))),
            (
                "key_user_with_auth".to_owned(),
                AttributeValue::Bool(key.has(super::public::attributes::USER_WITH_AUTH)),
            ),
        ]);
        Ok(DeviceFacts { backend: BackendKind::Tpm, properties })
    }
}

impl TpmQuoteEvidence {
    pub(crate) fn to_entries(&self) -> Vec<(Value, Value)> {
        let pcrs = self
            .pcrs
            .iter()
            .map(|p| {
                Value::Array(vec![
                    Value::Text(p.hash.as_str().into()),
                    Value::Integer(p.index.into()),
                    Value::Bytes(p.value.clone()),
                ])
            })
            .collect();
        let mut entries = vec![
            (Value::Text("pcrs".into()), Value::Array(pcrs)),
            bytes("attest", &self.attest),
            bytes("signature", &self.signature),
        ];
        if let Some(digest) = &self.status_list {
            entries.push(bytes("status_list", digest));
        }
        entries
    }

    pub(crate) fn from_entries(entries: Vec<(Value, Value)>) -> Result<Self, AttestationError> {
        const KIND: &str = "tpm-quote";
        let fields = [("pcrs", MAX_PCR_VALUES), ("attest", MAX_STRUCTURE), ("signature", MAX_STRUCTURE)];
        let mut status_list = None;
        let mut rest = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match (key.as_text(), value) {
                (Some("status_list"), Value::Bytes(b)) if status_list.is_none() => {
                    status_list = Some(<[u8; 32]>::try_from(b).map_err(|_| {
                        bad(KIND, "\"status_list\" must be a 32-byte status list digest".into())
                    })?)
                }
                (Some("status_list"), _) => {
                    return Err(bad(KIND, "\"status_list\" must appear once, as a 32-byte digest".into()))
                }
                (_, value) => rest.push((key, value)),
            }
        }
        let mut m = read_bytes_entries(KIND, rest, &fields)?;
        let Some(Value::Array(items)) = m.remove("pcrs") else {
            return Err(bad(KIND, "\"pcrs\" must be an array".into()));
        };
        let pcrs = items
            .into_iter()
            .map(|item| match item {
                Value::Array(parts) => match <[Value; 3]>::try_from(parts) {
                    Ok([Value::Text(bank), Value::Integer(index), Value::Bytes(value)]) => {
                        let hash = TpmHash::parse(&bank)
                            .ok_or_else(|| bad(KIND, format!("unknown PCR bank {bank:?}")))?;
                        let index = u8::try_from(index).ok().filter(|i| *i < 32);
                        let index = index.ok_or_else(|| bad(KIND, "PCR index must be 0 to 31".into()))?;
                        if value.len() != hash.digest_len() {
                            return Err(bad(KIND, format!("PCR {index} value is not a {bank} digest")));
                        }
                        Ok(PcrValue { hash, index, value })
                    }
                    _ => Err(bad(KIND, "each PCR is [bank, index, value]".into())),
                },
                _ => Err(bad(KIND, "each PCR is [bank, index, value]".into())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            attest: take_bytes(&mut m, "attest"),
            signature: take_bytes(&mut m, "signature"),
            pcrs,
            status_list,
        })
    }

    /// Verifies the quote with the AK recorded at enrollment, over the warrant's binding (or,
    /// for a cached quote, over the grant and a status list the verifier holds: its age, from
    /// the list's `iat`, is then a fact for policy).
    pub fn appraise(
        &self,
        enrolled: &DeviceFacts,
        context: &WarrantContext<'_>,
    ) -> Result<DeviceFacts, AttestationError> {
        let ak = enrolled_attestation_key(enrolled)?;
        // What the quote is bound to, and how old that proves it is at most. A quote bound to
        // the warrant alone has no provable age: the device may have foreseen the request and
        // quoted it at any earlier time, so `quote_age` is then absent (a policy reading it
        // fails, which denies), unless a nonce this verifier chose is in the binding.
        let (nonce, binding, age) = match &self.status_list {
            None if context.verifier_nonce => ((context.binding)()?, "verifier-nonce", Some(0)),
            None => ((context.binding)()?, "warrant", None),
            Some(digest) => {
                // A list the verifier does not hold proves nothing about when the quote was
                // made (it may be invented, or long replaced): refused before any signature work.
                let anchor = context.status_list_anchor(digest).ok_or(TpmError::QuoteNotFresh)?;
                let age = context.now.saturating_sub(anchor.issued_at);
                (cached_quote_nonce(&context.grant_id, digest), "status-list", Some(age))
            }
        };
        let quote = verify_quote(&ak, &self.attest, &self.signature, self.pcrs.clone(), Some(&nonce))?;
        let mut facts = enrolled.clone();
        facts.properties.extend(quote_properties(&quote));
        facts.properties.insert("quoted".into(), AttributeValue::Bool(true));
        facts.properties.insert("quote_cached".into(), AttributeValue::Bool(self.status_list.is_some()));
        facts.properties.insert("quote_binding".into(), AttributeValue::Text(binding.into()));
        if let Some(age) = age {
            facts
                .properties
                .insert("quote_age".into(), AttributeValue::Int(i64::try_from(age).unwrap_or(i64::MAX)));
        }
        Ok(facts)
    }
}

/// The AK the authority recorded in the grant.
fn enrolled_attestation_key(enrolled: &DeviceFacts) -> Result<TpmPublic, AttestationError> {
    let Some(AttributeValue::Text(ak)) = enrolled.properties.get("ak_public") else {
        return Err(TpmError::NoEnrolledAttestationKey.into());
    };
    let bytes = hex::decode(ak).map_err(|_| TpmError::NoEnrolledAttestationKey)?;
    TpmPublic::parse(&bytes).map_err(|_| TpmError::NoEnrolledAttestationKey.into())
}

/// A verified quote as policy sees it: `pcr_<bank>_<index>` (hex), the clock and the hash.
pub fn quote_properties(quote: &VerifiedQuote) -> BTreeMap<String, AttributeValue> {
    let mut out = BTreeMap::new();
    for pcr in &quote.pcrs {
        out.insert(
            format!("pcr_{}_{}", pcr.hash.as_str(), pcr.index),
            AttributeValue::Text(hex::encode(&pcr.value)),
        );
    }
    let int = |v: u64| AttributeValue::Int(i64::try_from(v).unwrap_or(i64::MAX));
    out.insert("quote_hash".into(), AttributeValue::Text(quote.signature.hash.as_str().into()));
    out.insert("clock".into(), int(quote.clock.clock));
    out.insert("clock_safe".into(), AttributeValue::Bool(quote.clock.safe));
    out.insert("reset_count".into(), int(quote.clock.reset_count.into()));
    out.insert("restart_count".into(), int(quote.clock.restart_count.into()));
    out.insert(
        "firmware_version".into(),
        AttributeValue::Text(format!("{:016x}", quote.clock.firmware_version)),
    );
    out
}

/// Facts for a warrant without a quote: the enrolled facts, marked unquoted.
pub fn unquoted(enrolled: &DeviceFacts) -> DeviceFacts {
    let mut facts = enrolled.clone();
    facts.properties.insert("quoted".into(), AttributeValue::Bool(false));
    facts
}
