//! Structure-aware inputs: warrants generated from `arbitrary` choices and signed with the
//! fixed device key under one of a few fixed grants (signed once by the vectors' authority),
//! so that the fuzzer spends its time behind the signatures, in the claim, time, request,
//! evidence and policy checks, instead of on the first byte of a COSE header.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ciborium::Value;
use warrant_attestation::tpm::{cached_quote_nonce, PcrValue, TpmCertifyEvidence, TpmQuoteEvidence};
use warrant_attestation::{
    piv::PivEvidence, AttributeValue, BackendKind, DeviceFacts, EnrollmentEvidence, Pkcs11Report,
    WarrantEvidence,
};
use warrant_envelope::device::{RequestBinding, Signer, WarrantClaims};
use warrant_envelope::issue::{status_list_digest, EntityData, GrantClaims, StatusReference};

use crate::fixtures::{self, FixedKey, AUDIENCE, ISSUER, PRINCIPAL, STATUS_URI, T};
use crate::tpm::{self as tpm_fixture, FixedAk};

/// A text chosen from a list of meaningful values, or anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Pick {
    /// The known value at this index (modulo the list's length).
    Known(u8),
    /// Any text.
    Raw(String),
}

impl Pick {
    /// The text, from `known` or raw.
    pub fn resolve(&self, known: &[&str]) -> String {
        match self {
            Pick::Known(i) if !known.is_empty() => known[usize::from(*i) % known.len()].to_owned(),
            Pick::Known(_) => String::new(),
            Pick::Raw(s) => s.clone(),
        }
    }
}

/// A context claim or attribute value.
#[derive(Arbitrary, Debug, Clone)]
pub enum Attr {
    /// Text.
    Text(Pick),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

const CLAIM_VALUES: &[&str] = &["release-42", "OPS-1234", "yes", "true", "prod", "\u{0}", "a\"b"];

impl Attr {
    fn resolve(&self) -> AttributeValue {
        match self {
            Attr::Text(p) => AttributeValue::Text(p.resolve(CLAIM_VALUES)),
            Attr::Int(i) => AttributeValue::Int(*i),
            Attr::Bool(b) => AttributeValue::Bool(*b),
        }
    }
}

/// The nonce a TPM quote carries.
#[derive(Arbitrary, Debug, Clone)]
pub enum QuoteNonce {
    /// The warrant's evidence binding (a fresh quote).
    Binding,
    /// Bound to the grant and the status list the verifier holds (a cached quote).
    CachedHeld,
    /// Bound to the grant and a list digest the verifier may not hold.
    CachedOther([u8; 32]),
    /// Anything.
    Raw(Vec<u8>),
}

/// The device's evidence.
#[derive(Arbitrary, Debug, Clone)]
pub enum EvidenceSpec {
    /// A software key.
    Software,
    /// A PKCS#11 token's self-report.
    Pkcs11 {
        /// CK_TOKEN_INFO manufacturerID.
        manufacturer: Pick,
        /// Model.
        model: Pick,
        /// Serial.
        serial: String,
        /// Firmware.
        firmware: Pick,
        /// CKA_LOCAL.
        local: bool,
        /// CKA_ALWAYS_SENSITIVE.
        always_sensitive: bool,
        /// CKA_NEVER_EXTRACTABLE.
        never_extractable: bool,
    },
    /// A TPM key without a quote.
    TpmKey,
    /// A YubiKey key.
    YubikeyKey,
    /// A TPM quote by the fixed AK.
    TpmQuote {
        /// Its nonce.
        nonce: QuoteNonce,
        /// PCR values changed (index, new first byte) after the quote digested them.
        pcr_edit: Option<(u8, u8)>,
        /// PCR values dropped from the end.
        pcr_drop: u8,
        /// An attest byte changed (offset, xor), before signing if `.2`, after if not.
        attest_edit: Option<(u16, u8, bool)>,
        /// Signed by the AK (else by nobody: the signature bytes are `raw_signature`).
        signed: bool,
        /// The signature when not signed.
        raw_signature: Vec<u8>,
    },
    /// Enrollment evidence in a warrant (refused), with any bytes.
    TpmCertify {
        /// attest.
        attest: Vec<u8>,
        /// signature.
        signature: Vec<u8>,
    },
    /// Enrollment evidence in a warrant (refused), with any bytes.
    YubikeyPiv {
        /// The slot certificate.
        slot: Vec<u8>,
        /// The f9 certificate.
        f9: Vec<u8>,
    },
}

/// Who signs the warrant.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SignerPick {
    /// The grant's device key.
    Device,
    /// The authority (a valid signature by the wrong key).
    Authority,
    /// An unknown key.
    Stranger,
}

/// The nonce the verifier expects.
#[derive(Arbitrary, Debug, Clone)]
pub enum ExpectNonce {
    /// None.
    None,
    /// The warrant's own.
    Same,
    /// Another.
    Other(Vec<u8>),
}

/// How the warrant's request binding relates to the request the verifier sees.
#[derive(Arbitrary, Debug, Clone)]
pub enum BindingSpec {
    /// The binding of the request itself.
    Matching,
    /// Another method.
    Method(Pick),
    /// Another target.
    Target(Pick),
    /// Another body digest.
    Body([u8; 32]),
}

impl SignerPick {
    fn index(self) -> usize {
        match self {
            SignerPick::Device => 0,
            SignerPick::Authority => 1,
            SignerPick::Stranger => 2,
        }
    }

    fn key(self) -> &'static FixedKey {
        static KEYS: OnceLock<[FixedKey; 3]> = OnceLock::new();
        &KEYS.get_or_init(|| [FixedKey::device(), FixedKey::authority(), FixedKey::stranger()])[self.index()]
    }

    /// The protected header this key puts on warrants (taken from the vector warrant's claims
    /// re-signed by it).
    fn protected_header(self) -> &'static [u8] {
        static HEADERS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        &HEADERS.get_or_init(|| {
            [SignerPick::Device, SignerPick::Authority, SignerPick::Stranger]
                .into_iter()
                .map(|pick| protected_header_of(pick.key()))
                .collect()
        })[self.index()]
    }
}

/// Everything a generated warrant and its request are made of.
#[derive(Arbitrary, Debug, Clone)]
pub struct WarrantSpec {
    /// Which fixed grant (modulo their number).
    pub grant: u8,
    /// `iss`.
    pub issuer: Pick,
    /// `aud`.
    pub audience: Pick,
    /// `iat`, seconds from [`T`].
    pub issued_at: i32,
    /// `exp - iat`.
    pub lifetime: u32,
    /// The clock, seconds from [`T`].
    pub now: i32,
    /// `cti`.
    pub id: [u8; 16],
    /// `eat_nonce`.
    pub nonce: Option<Vec<u8>>,
    /// What the verifier expects.
    pub expect_nonce: ExpectNonce,
    /// The action.
    pub action: Pick,
    /// The resource.
    pub resource: Pick,
    /// The request's method.
    pub method: Pick,
    /// The request's target.
    pub target: Pick,
    /// The request's body.
    pub body: Vec<u8>,
    /// The warrant's binding of it.
    pub binding: BindingSpec,
    /// Context claims.
    pub context: Vec<(Pick, Attr)>,
    /// Evidence.
    pub evidence: EvidenceSpec,
    /// The signer.
    pub signer: SignerPick,
}

/// Known values for the picks.
pub const ISSUERS: &[&str] = &[PRINCIPAL, "bob@example.com", "alice@example.com "];
/// Audiences.
pub const AUDIENCES: &[&str] = &[AUDIENCE, "https://api.example.com/", "https://other.example.com"];
/// Actions.
pub const ACTIONS: &[&str] = &["deploy", "read", "write", "delete", "Deploy", "deploy\""];
/// Resources.
pub const RESOURCES: &[&str] = &["prod/api", "staging/api", "prod/db", "*", "prod/api\" || true"];
/// Methods.
pub const METHODS: &[&str] = &["POST", "GET", "PUT", "DELETE", "post", "POST "];
/// Request targets, accepted and refused forms.
pub const TARGETS: &[&str] = &[
    fixtures::TARGET,
    "https://api.example.com/v1/deploy?env=prod",
    "https://api.example.com/v1/deploy?env=prod&x=%2F",
    "https://api.example.com/",
    "https://API.example.com/v1/deploy",
    "http://api.example.com/v1/deploy",
    "https://api.example.com:443/v1/deploy",
    "https://api.example.com:8443/v1/deploy",
    "https://api.example.com/v1/../deploy",
    "https://api.example.com/v1/%2e%2e/deploy",
    "https://api.example.com/v1/deploy#fragment",
    "https://user@api.example.com/v1/deploy",
    "https://[::1]/v1/deploy",
    "/v1/deploy",
    "https://api.example.com//v1/deploy",
    "https://api.example.com/v1/de%7Eploy",
];
/// Context claim names.
pub const CLAIM_NAMES: &[&str] = &["ci_job", "ci_step", "approved", "ticket", "env", "a b", "ci-job"];
const FIRMWARE: &[&str] = &["5.7", "1.0", "0.0"];
const MANUFACTURERS: &[&str] = &["SoftHSM project", "Nitrokey", "Yubico"];
const MODELS: &[&str] = &["SoftHSM v2", "NK HSM 2", "YubiHSM"];

/// The grant policies: each reads a different part of the context.
const TPM_POLICY: &str = r#"permit(principal in Warrant::Group::"deployers", action, resource)
  when { context.device.backend == "tpm" && context.device.properties.quoted };
@id("fresh-quote") forbid(principal, action, resource)
  when { context.device.properties.quote_age > 300 };
@id("measured") forbid(principal, action, resource)
  unless { context.device.properties.pcr_sha256_0 == "0000000000000000000000000000000000000000000000000000000000000000" };"#;
const PKCS11_POLICY: &str = r#"permit(principal, action == Warrant::Action::"read", resource)
  when { context.device.assurance == "self-reported" && context.device.properties.never_extractable
         && context.claims.ticket like "OPS-*" };"#;
const YUBIKEY_POLICY: &str = r#"permit(principal, action, resource)
  when { context.device.hardware && context.time < 1800000000 && context.warrant.lifetime <= 60
         && principal.team == "platform" };"#;
const WIDE_POLICY: &str = r#"permit(principal, action in [Warrant::Action::"deploy", Warrant::Action::"read"], resource)
  when { context.audience == "https://api.example.com" && context.authority == "acme-authority"
         && context.request.target like "https://api.example.com/*" && context.request.method != "DELETE" };
@id("approval") forbid(principal, action, resource)
  unless { context.claims has approved && context.claims.approved == true };
@id("step") forbid(principal, action, resource)
  when { context.claims has ci_step && context.claims.ci_step > 10 };"#;

/// A fixed grant: its bytes and claims.
pub struct FixedGrant {
    /// Signed by the vectors' authority (or, for one, by a stranger).
    pub bytes: Vec<u8>,
    /// Its claims.
    pub claims: GrantClaims,
}

fn tpm_facts(ak: &FixedAk) -> DeviceFacts {
    let text = |v: String| AttributeValue::Text(v);
    DeviceFacts {
        backend: BackendKind::Tpm,
        properties: BTreeMap::from([
            ("ak_public".to_owned(), text(hex::encode(&ak.public_bytes))),
            ("ak_name".to_owned(), text(hex::encode(ak.public.name()))),
            ("ak_type".to_owned(), text(ak.public.key_type())),
            ("key_user_with_auth".to_owned(), AttributeValue::Bool(true)),
        ]),
    }
}

fn yubikey_facts() -> DeviceFacts {
    let text = |v: &str| AttributeValue::Text(v.to_owned());
    DeviceFacts {
        backend: BackendKind::Yubikey,
        properties: BTreeMap::from([
            ("slot".to_owned(), text("9c")),
            ("firmware".to_owned(), text("5.7.1")),
            ("serial".to_owned(), AttributeValue::Int(12345678)),
            ("pin_policy".to_owned(), text("once")),
            ("touch_policy".to_owned(), text("always")),
        ]),
    }
}

fn pkcs11_facts() -> DeviceFacts {
    DeviceFacts { backend: BackendKind::Pkcs11, properties: BTreeMap::new() }
}

/// The fixed grants: software (the vector grant), TPM, PKCS#11, YubiKey, software with a wide
/// policy, revoked (index 3 of the vector list), expired, and one by an unknown authority.
pub fn grants() -> &'static [FixedGrant] {
    static GRANTS: OnceLock<Vec<FixedGrant>> = OnceLock::new();
    GRANTS.get_or_init(|| {
        let authority = FixedKey::authority();
        let device = FixedKey::device();
        let ak = FixedAk::new();
        let base = GrantClaims {
            issuer: ISSUER.into(),
            principal: PRINCIPAL.into(),
            id: [0x6a; 16],
            issued_at: T - 60,
            not_before: T - 60,
            expires_at: T + 7 * 86400,
            device_key: device.public_key().clone(),
            device: DeviceFacts::software(),
            entity: EntityData {
                groups: vec!["deployers".into()],
                attributes: fixtures::entity_attributes(),
            },
            policy: fixtures::POLICY.into(),
            max_warrant_lifetime: 300,
            status: StatusReference { uri: STATUS_URI.into(), index: 7 },
        };
        let variant = |id: u8, device: DeviceFacts, policy: &str| GrantClaims {
            id: [id; 16],
            device,
            policy: policy.into(),
            ..base.clone()
        };
        let mut claims = vec![
            base.clone(),
            variant(1, tpm_facts(&ak), TPM_POLICY),
            variant(2, pkcs11_facts(), PKCS11_POLICY),
            variant(3, yubikey_facts(), YUBIKEY_POLICY),
            variant(4, DeviceFacts::software(), WIDE_POLICY),
            GrantClaims {
                status: StatusReference { uri: STATUS_URI.into(), index: 3 },
                ..variant(5, DeviceFacts::software(), WIDE_POLICY)
            },
            GrantClaims {
                issued_at: T - 9000,
                not_before: T - 9000,
                expires_at: T - 100,
                ..variant(6, DeviceFacts::software(), WIDE_POLICY)
            },
            GrantClaims {
                status: StatusReference { uri: "https://authority.example.com/status/2".into(), index: 7 },
                ..variant(7, DeviceFacts::software(), WIDE_POLICY)
            },
        ];
        let mut out: Vec<FixedGrant> =
            claims.drain(..).map(|c| FixedGrant { bytes: c.sign(&authority).unwrap(), claims: c }).collect();
        let stranger = variant(8, DeviceFacts::software(), WIDE_POLICY);
        out.push(FixedGrant { bytes: stranger.sign(&FixedKey::stranger()).unwrap(), claims: stranger });
        out
    })
}

/// A warrant generated from `spec`, the request it is presented with, the verifier's time
/// and the nonce it expects.
pub struct Generated {
    /// The signed warrant.
    pub warrant: Vec<u8>,
    /// Its claims. For a warrant carrying enrollment evidence (which no `WarrantClaims` can
    /// hold), the claims it was made from with software evidence in its place.
    pub claims: WarrantClaims,
    /// Whether the warrant carries enrollment evidence: a verifier must refuse it.
    pub misplaced: bool,
    /// The request's method.
    pub method: String,
    /// The request's target.
    pub target: String,
    /// The request's body.
    pub body: Vec<u8>,
    /// The verifier's time.
    pub now: u64,
    /// The nonce the verifier expects.
    pub nonce: Option<Vec<u8>>,
}

fn offset(base: u64, by: i32) -> u64 {
    base.saturating_add_signed(i64::from(by))
}

impl WarrantSpec {
    /// Builds and signs the warrant.
    pub fn generate(&self) -> Generated {
        let grant = &grants()[usize::from(self.grant) % grants().len()];
        let method = self.method.resolve(METHODS);
        let target = self.target.resolve(TARGETS);
        let mut request = RequestBinding {
            method: method.clone(),
            target: target.clone(),
            body_sha256: warrant_envelope::device::sha256(&self.body),
        };
        match &self.binding {
            BindingSpec::Matching => {}
            BindingSpec::Method(m) => request.method = m.resolve(METHODS),
            BindingSpec::Target(t) => request.target = t.resolve(TARGETS),
            BindingSpec::Body(b) => request.body_sha256 = *b,
        }
        let issued_at = offset(T, self.issued_at);
        let mut claims = WarrantClaims {
            issuer: self.issuer.resolve(ISSUERS),
            audience: self.audience.resolve(AUDIENCES),
            issued_at,
            expires_at: issued_at.saturating_add(u64::from(self.lifetime)),
            id: self.id,
            nonce: self.nonce.clone(),
            action: self.action.resolve(ACTIONS),
            resource: self.resource.resolve(RESOURCES),
            request,
            context: self.context.iter().map(|(k, v)| (k.resolve(CLAIM_NAMES), v.resolve())).collect(),
            grant: grant.bytes.clone(),
            evidence: WarrantEvidence::Software,
        };
        let misplaced = match self.evidence.build(&claims, &grant.claims) {
            Built::Warrant(evidence) => {
                claims.evidence = evidence;
                None
            }
            Built::Misplaced(evidence) => Some(evidence),
        };
        let signer = self.signer.key();
        // `sign` refuses claims a verifier refuses for their form (an unsignable target, empty
        // claim names): those are signed by hand, so that the verifier's own checks see them;
        // so is enrollment evidence, which only its encoding can put in a warrant.
        let warrant = match &misplaced {
            None => claims.sign(signer).unwrap_or_else(|_| sign_by_hand(claims.to_cbor(), self.signer)),
            Some(evidence) => sign_by_hand(with_evidence(claims.to_cbor(), evidence.to_cbor()), self.signer),
        };
        let nonce = match &self.expect_nonce {
            ExpectNonce::None => None,
            ExpectNonce::Same => Some(self.nonce.clone().unwrap_or_default()),
            ExpectNonce::Other(n) => Some(n.clone()),
        };
        Generated {
            warrant,
            claims,
            misplaced: misplaced.is_some(),
            method,
            target,
            body: self.body.clone(),
            now: offset(T, self.now),
            nonce,
        }
    }
}

/// Evidence built from a spec: of a kind warrants carry, or of an enrollment kind.
enum Built {
    Warrant(WarrantEvidence),
    Misplaced(EnrollmentEvidence),
}

impl EvidenceSpec {
    fn build(&self, claims: &WarrantClaims, grant: &GrantClaims) -> Built {
        let evidence = match self {
            EvidenceSpec::Software => WarrantEvidence::Software,
            EvidenceSpec::Pkcs11 {
                manufacturer,
                model,
                serial,
                firmware,
                local,
                always_sensitive,
                never_extractable,
            } => WarrantEvidence::Pkcs11(Pkcs11Report {
                manufacturer: manufacturer.resolve(MANUFACTURERS),
                model: model.resolve(MODELS),
                serial: serial.clone(),
                firmware: firmware.resolve(FIRMWARE),
                local: *local,
                always_sensitive: *always_sensitive,
                never_extractable: *never_extractable,
            }),
            EvidenceSpec::TpmKey => WarrantEvidence::TpmKey,
            EvidenceSpec::YubikeyKey => WarrantEvidence::YubikeyKey,
            EvidenceSpec::TpmQuote { nonce, pcr_edit, pcr_drop, attest_edit, signed, raw_signature } => {
                let held = status_list_digest(&fixtures::status_list_vector()).unwrap();
                let (nonce, status_list) = match nonce {
                    QuoteNonce::Binding => (claims.evidence_binding().expect("claims encode").to_vec(), None),
                    QuoteNonce::CachedHeld => (cached_quote_nonce(&grant.id, &held).to_vec(), Some(held)),
                    QuoteNonce::CachedOther(d) => (cached_quote_nonce(&grant.id, d).to_vec(), Some(*d)),
                    QuoteNonce::Raw(n) => (n.clone(), None),
                };
                let mut pcrs: Vec<PcrValue> = tpm_fixture::pcr_values();
                let mut attest = tpm_fixture::quote_attest(&nonce, &pcrs);
                if let Some((i, b)) = pcr_edit {
                    let at = usize::from(*i) % pcrs.len();
                    pcrs[at].value[0] = *b;
                }
                pcrs.truncate(pcrs.len().saturating_sub(usize::from(*pcr_drop)));
                let edit = |attest: &mut Vec<u8>, (at, x): (u16, u8)| {
                    let len = attest.len();
                    attest[usize::from(at) % len] ^= x;
                };
                if let Some((at, x, true)) = attest_edit {
                    edit(&mut attest, (*at, *x));
                }
                let signature = if *signed { FixedAk::new().sign(&attest) } else { raw_signature.clone() };
                if let Some((at, x, false)) = attest_edit {
                    edit(&mut attest, (*at, *x));
                }
                WarrantEvidence::TpmQuote(TpmQuoteEvidence { attest, signature, pcrs, status_list })
            }
            EvidenceSpec::TpmCertify { attest, signature } => {
                return Built::Misplaced(EnrollmentEvidence::TpmCertify(TpmCertifyEvidence {
                    ak_public: FixedAk::new().public_bytes,
                    key_public: Vec::new(),
                    attest: attest.clone(),
                    signature: signature.clone(),
                    ek_certificate: Vec::new(),
                }))
            }
            EvidenceSpec::YubikeyPiv { slot, f9 } => {
                return Built::Misplaced(EnrollmentEvidence::YubikeyPiv(PivEvidence {
                    slot_certificate: slot.clone(),
                    f9_certificate: f9.clone(),
                }))
            }
        };
        Built::Warrant(evidence)
    }
}

/// `claims` (a warrant's, encoded) with `evidence` as its `"evidence"` entry.
fn with_evidence(claims: Value, evidence: Value) -> Value {
    let Value::Map(mut entries) = claims else { unreachable!("warrant claims are a map") };
    for (key, value) in &mut entries {
        if key.as_text() == Some("evidence") {
            *value = evidence.clone();
        }
    }
    Value::Map(entries)
}

/// A tagged COSE_Sign1 of `claims` (encoded) by `signer`, assembled without
/// `WarrantClaims::sign`'s checks: the protected header of a properly signed warrant by the
/// same key, the claims as given.
fn sign_by_hand(claims: Value, pick: SignerPick) -> Vec<u8> {
    let signer = pick.key();
    let template = pick.protected_header().to_vec();
    let mut payload = Vec::new();
    ciborium::ser::into_writer(&claims, &mut payload).unwrap();
    let tbs = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(template.clone()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]);
    let mut to_sign = Vec::new();
    ciborium::ser::into_writer(&tbs, &mut to_sign).unwrap();
    let signature = signer.sign_digest(&warrant_envelope::device::sha256(&to_sign)).unwrap();
    let object = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(template),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.to_vec()),
        ])),
    );
    let mut out = Vec::new();
    ciborium::ser::into_writer(&object, &mut out).unwrap();
    out
}

fn protected_header_of(signer: &FixedKey) -> Vec<u8> {
    let claims = match warrant_envelope::inspect(&fixtures::warrant_vector()).unwrap().claims {
        warrant_envelope::Claims::Warrant(w, _) => *w,
        _ => unreachable!("the vector warrant is a warrant"),
    };
    let signed = claims.sign(signer).unwrap();
    let value: Value = ciborium::de::from_reader(signed.as_slice()).unwrap();
    match value {
        Value::Tag(18, inner) => match *inner {
            Value::Array(items) => match items.into_iter().next() {
                Some(Value::Bytes(protected)) => protected,
                _ => unreachable!("a COSE_Sign1 starts with its protected header"),
            },
            _ => unreachable!("a COSE_Sign1 is an array"),
        },
        _ => unreachable!("a warrant is a tagged COSE_Sign1"),
    }
}
