//! The committed test vectors in docs/vectors: regenerated from fixed inputs with
//! deterministic ECDSA (RFC 6979) and compared byte for byte, then verified.
//!
//! To rewrite them after a deliberate format change:
//! `WARRANT_REGENERATE_VECTORS=1 cargo test -p warrant-envelope --test vectors`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ciborium::Value;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use warrant_attestation::{AttributeValue, DeviceFacts, EnrollmentEvidence, P256PublicKey, WarrantEvidence};
use warrant_envelope::{device::*, issue::*, verify::*};

/// A test key with deterministic (RFC 6979) signatures, so vectors regenerate identically.
struct DeterministicKey {
    key: p256::ecdsa::SigningKey,
    public: P256PublicKey,
}

impl DeterministicKey {
    fn from_scalar(hex_scalar: &str) -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&hex::decode(hex_scalar).unwrap()).unwrap();
        let public =
            P256PublicKey::from_sec1(key.verifying_key().to_encoded_point(false).as_bytes()).unwrap();
        Self { key, public }
    }
}

impl Signer for DeterministicKey {
    fn public_key(&self) -> &P256PublicKey {
        &self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>> {
        let sig: p256::ecdsa::Signature = self.key.sign_prehash(digest)?;
        Ok(sig.to_bytes().into())
    }
}

// Test-only keys, published in docs/vectors/README.md. Never use them for anything else.
const AUTHORITY_SCALAR: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const DEVICE_SCALAR: &str = "1122334455667788990011223344556677889900112233445566778899001122";
const T: u64 = 1_790_000_000;

struct Vectors {
    authority: DeterministicKey,
    grant: Vec<u8>,
    warrant: Vec<u8>,
    status: Vec<u8>,
    enrollment: Vec<u8>,
}

fn build() -> Vectors {
    let authority = DeterministicKey::from_scalar(AUTHORITY_SCALAR);
    let device = DeterministicKey::from_scalar(DEVICE_SCALAR);
    let enrollment = EnrollmentClaims {
        principal: "alice@example.com".into(),
        device_key: device.public.clone(),
        challenge: [0xc4; CHALLENGE_LEN],
        issued_at: T - 120,
        evidence: EnrollmentEvidence::Software,
    }
    .sign(&device)
    .unwrap();
    let grant = GrantClaims {
        issuer: "acme-authority".into(),
        principal: "alice@example.com".into(),
        id: [0x6a; 16],
        issued_at: T - 60,
        not_before: T - 60,
        expires_at: T + 7 * 86400,
        device_key: device.public.clone(),
        device: DeviceFacts::software(),
        entity: EntityData {
            groups: vec!["deployers".into()],
            attributes: BTreeMap::from([("team".into(), AttributeValue::Text("platform".into()))]),
        },
        policy: common::POLICY.into(),
        max_warrant_lifetime: 300,
        status: StatusReference { uri: "https://authority.example.com/status/1".into(), index: 7 },
    }
    .sign(&authority)
    .unwrap();
    let warrant = WarrantClaims {
        issuer: "alice@example.com".into(),
        audience: common::AUDIENCE.into(),
        issued_at: T,
        expires_at: T + 60,
        id: [0x3e; 16],
        nonce: None,
        action: "deploy".into(),
        resource: "prod/api".into(),
        request: RequestBinding::of(&common::request()),
        context: BTreeMap::from([
            ("ci_job".into(), AttributeValue::Text("release-42".into())),
            ("ci_step".into(), AttributeValue::Int(3)),
        ]),
        grant: grant.clone(),
        evidence: WarrantEvidence::Software,
    }
    .sign(&device)
    .unwrap();
    let mut bits = StatusBits::with_capacity(1024);
    bits.revoke(3).unwrap();
    let status = StatusListClaims {
        issuer: "acme-authority".into(),
        uri: "https://authority.example.com/status/1".into(),
        sequence: 1,
        previous: [0; 32],
        issued_at: T - 30,
        expires_at: T + 3600,
        time_to_live: 300,
        bits,
    }
    .sign(&authority)
    .unwrap();
    Vectors { authority, grant, warrant, status, enrollment }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

#[test]
fn committed_vectors_regenerate_identically_and_verify() {
    let v = build();
    let files = [
        ("grant", &v.grant),
        ("warrant", &v.warrant),
        ("status-list", &v.status),
        ("enrollment", &v.enrollment),
    ];
    let regenerate = std::env::var_os("WARRANT_REGENERATE_VECTORS").is_some();
    for (name, bytes) in files {
        let hex_path = dir().join(format!("{name}.hex"));
        let diag_path = dir().join(format!("{name}.diag"));
        let hex_text = hex::encode(bytes) + "\n";
        let diag_text = diagnostic(&common::decode(bytes), 0) + "\n";
        if regenerate {
            std::fs::write(&hex_path, &hex_text).unwrap();
            std::fs::write(&diag_path, &diag_text).unwrap();
        }
        let committed = std::fs::read_to_string(&hex_path).unwrap_or_default();
        assert_eq!(committed, hex_text, "{} differs from what the code produces; if the format changed on purpose, regenerate (see this file's header)", hex_path.display());
        assert_eq!(
            std::fs::read_to_string(&diag_path).unwrap_or_default(),
            diag_text,
            "{}",
            diag_path.display()
        );
    }

    // The vectors verify as a verifier at time T would see them.
    let verifier = Verifier::builder(common::AUDIENCE)
        .trust(TrustedAuthority { issuer: "acme-authority".into(), keys: vec![v.authority.public.clone()] })
        .clock(Arc::new(ManualClock::new(T)))
        .allow_software_evidence(true)
        .build()
        .unwrap();
    verifier.install_status_list(&v.status).unwrap();
    let ok = verifier.verify(&v.warrant, &common::expected(), &common::request(), None).unwrap();
    assert_eq!(ok.principal, "alice@example.com");
    assert!(verify_enrollment(&v.enrollment).is_ok());
    assert!(
        v.warrant.len() < 2048,
        "a software-evidence warrant with its grant stays under 2 KiB: {}",
        v.warrant.len()
    );
}

/// CBOR diagnostic notation (RFC 8949 §8), with embedded CBOR byte strings shown decoded as
/// `<< ... >>` where they are the protected header, payload or an embedded object.
fn diagnostic(value: &Value, depth: usize) -> String {
    let pad = |d: usize| "  ".repeat(d);
    match value {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Bytes(b) => match ciborium::de::from_reader::<Value, _>(b.as_slice()) {
            Ok(inner @ (Value::Map(_) | Value::Tag(..))) if b.len() > 2 => {
                format!("<< {} >>", diagnostic(&inner, depth))
            }
            _ => format!("h'{}'", hex::encode(b)),
        },
        Value::Tag(tag, inner) => format!("{tag}({})", diagnostic(inner, depth)),
        Value::Array(items) => {
            let inner: Vec<String> =
                items.iter().map(|i| format!("{}{}", pad(depth + 1), diagnostic(i, depth + 1))).collect();
            format!("[\n{}\n{}]", inner.join(",\n"), pad(depth))
        }
        Value::Map(entries) if entries.is_empty() => "{}".into(),
        Value::Map(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    format!("{}{}: {}", pad(depth + 1), diagnostic(k, depth + 1), diagnostic(v, depth + 1))
                })
                .collect();
            format!("{{\n{}\n{}}}", inner.join(",\n"), pad(depth))
        }
        other => format!("{other:?}"),
    }
}
