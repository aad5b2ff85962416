//! Fixed keys, the committed vectors, and a verifier with fixed trust, status list and clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use p256::ecdsa::signature::hazmat::PrehashSigner;
use warrant_attestation::{AttributeValue, P256PublicKey};
use warrant_envelope::device::Signer;
use warrant_envelope::verify::{
    Expected, HttpRequest, ManualClock, MemoryReplayStore, ReplayKey, ReplayStore, TrustedAuthority, Verifier,
};
use warrant_envelope::Error;

/// The vectors' verification time (docs/vectors/README.md).
pub const T: u64 = 1_790_000_000;
/// The vectors' audience.
pub const AUDIENCE: &str = "https://api.example.com";
/// The vectors' authority.
pub const ISSUER: &str = "acme-authority";
/// The vectors' principal.
pub const PRINCIPAL: &str = "alice@example.com";
/// The vectors' status list URI.
pub const STATUS_URI: &str = "https://authority.example.com/status/1";
/// The vector warrant's request.
pub const METHOD: &str = "POST";
/// The vector warrant's request target.
pub const TARGET: &str = "https://api.example.com/v1/deploy";
/// The vector warrant's request body.
pub const BODY: &[u8] = br#"{"version":"1.4.2"}"#;
/// The vectors' grant policy (envelope/tests/common).
pub const POLICY: &str = r#"permit (
  principal in Warrant::Group::"deployers",
  action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api"
) when { context.request.method == "POST" && context.claims has ci_job };"#;

// Test-only keys, published in docs/vectors/README.md. Never use them for anything else.
const AUTHORITY_SCALAR: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const DEVICE_SCALAR: &str = "1122334455667788990011223344556677889900112233445566778899001122";
/// A third key, for objects signed by the wrong key.
const STRANGER_SCALAR: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A P-256 key with deterministic (RFC 6979) signatures: the same input signs the same way,
/// so a crash reproduces.
pub struct FixedKey {
    key: p256::ecdsa::SigningKey,
    public: P256PublicKey,
}

impl FixedKey {
    fn from_scalar(hex_scalar: &str) -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&hex::decode(hex_scalar).unwrap()).unwrap();
        let public =
            P256PublicKey::from_sec1(key.verifying_key().to_encoded_point(false).as_bytes()).unwrap();
        Self { key, public }
    }

    /// The vectors' authority key.
    pub fn authority() -> Self {
        Self::from_scalar(AUTHORITY_SCALAR)
    }

    /// The vectors' device key.
    pub fn device() -> Self {
        Self::from_scalar(DEVICE_SCALAR)
    }

    /// A key no one trusts.
    pub fn stranger() -> Self {
        Self::from_scalar(STRANGER_SCALAR)
    }

    /// The signing key.
    pub fn signing(&self) -> &p256::ecdsa::SigningKey {
        &self.key
    }
}

impl Signer for FixedKey {
    fn public_key(&self) -> &P256PublicKey {
        &self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 64], Box<dyn std::error::Error + Send + Sync>> {
        let sig: p256::ecdsa::Signature = self.key.sign_prehash(digest)?;
        Ok(sig.to_bytes().into())
    }
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim()).unwrap()
}

/// docs/vectors/grant.hex.
pub fn grant_vector() -> Vec<u8> {
    unhex(include_str!("../../docs/vectors/grant.hex"))
}

/// docs/vectors/warrant.hex.
pub fn warrant_vector() -> Vec<u8> {
    unhex(include_str!("../../docs/vectors/warrant.hex"))
}

/// docs/vectors/status-list.hex.
pub fn status_list_vector() -> Vec<u8> {
    unhex(include_str!("../../docs/vectors/status-list.hex"))
}

/// docs/vectors/enrollment.hex.
pub fn enrollment_vector() -> Vec<u8> {
    unhex(include_str!("../../docs/vectors/enrollment.hex"))
}

/// The vector warrant's request.
pub fn vector_request() -> HttpRequest<'static> {
    HttpRequest { method: METHOD, target: TARGET, body: BODY }
}

/// The operation the vector warrant is for, as the service states it.
pub fn vector_operation() -> Expected<'static> {
    Expected { action: "deploy", resource: "prod/api" }
}

/// A replay store emptied before each input, so that a verdict depends on the input alone.
#[derive(Default)]
pub struct FreshReplayStore(Mutex<MemoryReplayStore>);

impl FreshReplayStore {
    /// Forgets every warrant.
    pub fn reset(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = MemoryReplayStore::default();
    }
}

impl ReplayStore for FreshReplayStore {
    fn remember(&self, key: &ReplayKey, forget_after: u64, now: u64) -> Result<(), Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remember(key, forget_after, now)
    }
}

/// A verifier of the vectors' audience at time [`T`], trusting the vectors' authority,
/// holding the vector status list, accepting software and self-reported evidence (so the
/// policy is reached), with every cache off (a verdict depends on the input alone).
pub struct FixedVerifier {
    /// The verifier.
    pub verifier: Verifier,
    /// Its replay store, to empty before each input.
    pub replay: Arc<FreshReplayStore>,
    /// Its clock.
    pub clock: Arc<ManualClock>,
}

impl FixedVerifier {
    /// Builds it, with `local_policy` if given; holding the vector status list if `with_status`.
    pub fn new(local_policy: Option<&str>, with_status: bool) -> Self {
        let replay = Arc::new(FreshReplayStore::default());
        let clock = Arc::new(ManualClock::new(T));
        let mut builder = Verifier::builder(AUDIENCE)
            .trust(TrustedAuthority {
                issuer: ISSUER.into(),
                keys: vec![FixedKey::authority().public_key().clone()],
            })
            .clock(clock.clone())
            .replay_store(replay.clone())
            .allow_software_evidence(true)
            .allow_self_reported_evidence(true)
            .grant_cache_capacity(0)
            .policy_cache_capacity(0)
            .decision_cache_capacity(0);
        if let Some(policy) = local_policy {
            builder = builder.local_policy(policy);
        }
        let verifier = builder.build().unwrap();
        if with_status {
            verifier.install_status_list(&status_list_vector()).unwrap();
        }
        Self { verifier, replay, clock }
    }
}

/// The vector grant's entity attributes.
pub fn entity_attributes() -> BTreeMap<String, AttributeValue> {
    BTreeMap::from([("team".into(), AttributeValue::Text("platform".into()))])
}
