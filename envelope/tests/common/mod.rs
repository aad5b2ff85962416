//! Shared fixtures for the envelope's integration tests: keys, a grant, a status list, a
//! warrant, and helpers to re-sign arbitrary COSE_Sign1 structures.
#![allow(dead_code)] // each test file uses a different part of the fixture

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use ciborium::Value;
use coset::{iana, CborSerializable, CoseSign1, Header, HeaderBuilder};
use warrant_attestation::{AttributeValue, DeviceFacts, P256PublicKey, WarrantEvidence};
use warrant_envelope::{device::*, issue::*, verify::*};

/// A software test key.
pub struct TestKey {
    pair: EcdsaKeyPair,
    public: P256PublicKey,
}

impl TestKey {
    pub fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let public = P256PublicKey::from_sec1(pair.public_key().as_ref()).unwrap();
        Self { pair, public }
    }

    pub fn sign_message(&self, message: &[u8]) -> Vec<u8> {
        let digest = sha256(message);
        self.sign_digest(&digest).unwrap().to_vec()
    }
}

impl Signer for TestKey {
    fn public_key(&self) -> &P256PublicKey {
        &self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>> {
        let digest = Digest::import_less_safe(digest, &SHA256).unwrap();
        Ok(self.pair.sign_digest(&digest).unwrap().as_ref().try_into().unwrap())
    }
}

pub const NOW: u64 = 1_790_000_000;
pub const AUDIENCE: &str = "https://api.example.com";
pub const ISSUER: &str = "acme-authority";
pub const STATUS_URI: &str = "https://authority.example.com/status/1";
pub const TARGET: &str = "https://api.example.com/v1/deploy";
pub const BODY: &[u8] = br#"{"version":"1.4.2"}"#;

pub const POLICY: &str = r#"permit (
  principal in Warrant::Group::"deployers",
  action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api"
) when { context.request.method == "POST" && context.claims has ci_job };"#;

pub fn request() -> HttpRequest<'static> {
    HttpRequest { method: "POST", target: TARGET, body: BODY }
}

/// The operation the service performs for [`request`]: the fixture's warrants are for it.
pub fn expected() -> Expected<'static> {
    Expected { action: "deploy", resource: "prod/api" }
}

/// An authority, a device, a grant and a first status list, at a fixed time.
pub struct Fixture {
    pub authority: TestKey,
    pub device: TestKey,
    pub clock: Arc<ManualClock>,
    pub grant_claims: GrantClaims,
    pub grant: Vec<u8>,
    pub status_claims: StatusListClaims,
    pub status: Vec<u8>,
}

impl Fixture {
    pub fn new() -> Self {
        let authority = TestKey::new();
        let device = TestKey::new();
        let grant_claims = GrantClaims {
            issuer: ISSUER.into(),
            principal: "alice".into(),
            id: [0x11; 16],
            issued_at: NOW - 100,
            not_before: NOW - 100,
            expires_at: NOW + 3600,
            device_key: device.public_key().clone(),
            device: DeviceFacts::software(),
            entity: EntityData {
                groups: vec!["deployers".into()],
                attributes: BTreeMap::from([("team".into(), AttributeValue::Text("platform".into()))]),
            },
            policy: POLICY.into(),
            max_warrant_lifetime: 300,
            status: StatusReference { uri: STATUS_URI.into(), index: 5 },
        };
        let grant = grant_claims.sign(&authority).unwrap();
        let status_claims = StatusListClaims {
            issuer: ISSUER.into(),
            uri: STATUS_URI.into(),
            sequence: 1,
            previous: [0; 32],
            issued_at: NOW - 10,
            expires_at: NOW + 3600,
            time_to_live: 300,
            bits: StatusBits::with_capacity(1024),
        };
        let status = status_claims.sign(&authority).unwrap();
        Self {
            authority,
            device,
            clock: Arc::new(ManualClock::new(NOW)),
            grant_claims,
            grant,
            status_claims,
            status,
        }
    }

    pub fn trusted(&self) -> TrustedAuthority {
        TrustedAuthority { issuer: ISSUER.into(), keys: vec![self.authority.public_key().clone()] }
    }

    pub fn builder(&self) -> VerifierBuilder {
        self.builder_trusting(self.trusted())
    }

    /// A builder like [`Self::builder`] that trusts `authority` instead.
    pub fn builder_trusting(&self, authority: TrustedAuthority) -> VerifierBuilder {
        Verifier::builder(AUDIENCE).trust(authority).clock(self.clock.clone()).allow_software_evidence(true)
    }

    /// A verifier holding the first status list.
    pub fn verifier(&self) -> Verifier {
        let v = self.builder().build().unwrap();
        v.install_status_list(&self.status).unwrap();
        v
    }

    pub fn warrant_claims(&self) -> WarrantClaims {
        WarrantClaims {
            issuer: "alice".into(),
            audience: AUDIENCE.into(),
            issued_at: NOW,
            expires_at: NOW + 60,
            id: new_id().unwrap(),
            nonce: None,
            action: "deploy".into(),
            resource: "prod/api".into(),
            request: RequestBinding::of(&request()),
            context: BTreeMap::from([("ci_job".into(), AttributeValue::Text("release-42".into()))]),
            grant: self.grant.clone(),
            evidence: WarrantEvidence::Software,
        }
    }

    pub fn warrant(&self) -> Vec<u8> {
        self.warrant_claims().sign(&self.device).unwrap()
    }

    /// A status list following `previous_bytes`, with `revoked` indexes set.
    pub fn next_status(&self, sequence: u64, previous_bytes: &[u8], revoked: &[u64]) -> Vec<u8> {
        let mut claims = self.status_claims.clone();
        claims.sequence = sequence;
        claims.previous = status_list_digest(previous_bytes).unwrap();
        for i in revoked {
            claims.bits.revoke(*i).unwrap();
        }
        claims.sign(&self.authority).unwrap()
    }
}

/// The parts of a COSE_Sign1, for building malformed ones.
pub struct Parts {
    pub protected: Vec<u8>,
    pub unprotected: Header,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Splits a tagged COSE_Sign1.
pub fn parts(bytes: &[u8]) -> Parts {
    let Value::Tag(18, inner) = ciborium::de::from_reader::<Value, _>(bytes).unwrap() else {
        panic!("not tagged")
    };
    let sign1 = CoseSign1::from_cbor_value(*inner).unwrap();
    Parts {
        protected: sign1.protected.original_data.clone().unwrap(),
        unprotected: sign1.unprotected,
        payload: sign1.payload.unwrap(),
        signature: sign1.signature,
    }
}

use coset::AsCborValue;

/// Encodes parts as a tagged COSE_Sign1 (no re-signing).
pub fn assemble(p: Parts) -> Vec<u8> {
    // Built by hand so that malformed protected headers can be assembled too.
    let value = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(p.protected),
            p.unprotected.to_cbor_value().unwrap(),
            Value::Bytes(p.payload),
            Value::Bytes(p.signature),
        ])),
    );
    encode(&value)
}

/// The Sig_structure for `protected` and `payload`, as RFC 9052 defines it.
pub fn tbs(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let v = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.to_vec()),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&v, &mut out).unwrap();
    out
}

/// Re-signs parts with `key` over their (possibly altered) protected header and payload.
pub fn resign(mut p: Parts, key: &TestKey) -> Vec<u8> {
    p.signature = key.sign_message(&tbs(&p.protected, &p.payload));
    assemble(p)
}

/// A protected header with the given alg, kid, typ and extra entries, encoded.
pub fn protected_header(
    alg: Option<iana::Algorithm>,
    kid: &[u8],
    typ: Option<&str>,
    extra: Vec<(i64, Value)>,
) -> Vec<u8> {
    let mut b = HeaderBuilder::new().key_id(kid.to_vec());
    if let Some(alg) = alg {
        b = b.algorithm(alg);
    }
    if let Some(typ) = typ {
        b = b.value(16, Value::Text(typ.into()));
    }
    for (label, value) in extra {
        b = b.value(label, value);
    }
    b.build().to_vec().unwrap()
}

/// Encodes a CBOR value.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

/// Decodes a CBOR value.
pub fn decode(bytes: &[u8]) -> Value {
    ciborium::de::from_reader(bytes).unwrap()
}

/// `s` -> `n - s`: the other valid ECDSA signature over the same content.
pub fn malleate(list: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
        0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let mut p = parts(list);
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(p.signature[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        p.signature[32 + i] = d.rem_euclid(256) as u8;
    }
    assert_eq!(borrow, 0, "s < n");
    assemble(p)
}
