//! An authority, a device, a grant and status lists made in-process, and a client for a
//! service on loopback: what the layer's tests need without warrantd.
#![allow(dead_code)] // Each test file uses its own part.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use warrant_attestation::{DeviceFacts, P256PublicKey, WarrantEvidence};
use warrant_envelope::{device::*, issue::*, verify::*};
use warrant_http::{Origin, RequestVerifier, RouteTable};

pub const ORIGIN: &str = "https://api.example.com";
pub const ISSUER: &str = "acme-authority";
pub const STATUS_URI: &str = "https://authority.example.com/status/1";
pub const POLICY: &str = r#"permit (principal in Warrant::Group::"deployers", action == Warrant::Action::"deploy",
  resource == Warrant::Resource::"prod/api");
permit (principal, action == Warrant::Action::"read", resource);"#;

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

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// What a warrant is signed for.
pub struct Signed<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub body: &'a [u8],
    pub action: &'a str,
    pub resource: &'a str,
}

pub struct Fixture {
    pub authority: TestKey,
    pub device: TestKey,
    pub clock: Arc<ManualClock>,
    pub grant: Vec<u8>,
    pub status_claims: StatusListClaims,
    pub status: Vec<u8>,
}

impl Fixture {
    pub fn new() -> Self {
        let authority = TestKey::new();
        let device = TestKey::new();
        let now = now();
        let grant = GrantClaims {
            issuer: ISSUER.into(),
            principal: "alice".into(),
            id: [0x11; 16],
            issued_at: now - 100,
            not_before: now - 100,
            expires_at: now + 3600,
            device_key: device.public_key().clone(),
            device: DeviceFacts::software(),
            entity: EntityData { groups: vec!["deployers".into()], attributes: BTreeMap::new() },
            policy: POLICY.into(),
            max_warrant_lifetime: 300,
            status: StatusReference { uri: STATUS_URI.into(), index: 5 },
        }
        .sign(&authority)
        .unwrap();
        let status_claims = StatusListClaims {
            issuer: ISSUER.into(),
            uri: STATUS_URI.into(),
            sequence: 1,
            previous: [0; 32],
            issued_at: now - 10,
            expires_at: now + 3600,
            time_to_live: 300,
            bits: StatusBits::with_capacity(1024),
        };
        let status = status_claims.sign(&authority).unwrap();
        Self { authority, device, clock: Arc::new(ManualClock::new(now)), grant, status_claims, status }
    }

    /// The list after `previous`, with the fixture's grant revoked.
    pub fn revoking_status(&self, previous: &[u8]) -> Vec<u8> {
        let mut claims = self.status_claims.clone();
        claims.sequence += 1;
        claims.previous = status_list_digest(previous).unwrap();
        claims.bits.revoke(5).unwrap();
        claims.sign(&self.authority).unwrap()
    }

    /// A verifier on the fixture's clock trusting the authority, holding no status list.
    pub fn bare_verifier(&self) -> Arc<Verifier> {
        let trusted =
            TrustedAuthority { issuer: ISSUER.into(), keys: vec![self.authority.public_key().clone()] };
        Arc::new(
            Verifier::builder(ORIGIN)
                .trust(trusted)
                .clock(self.clock.clone())
                .allow_software_evidence(true)
                .build()
                .unwrap(),
        )
    }

    /// A request verifier holding the first status list, with `routes`.
    pub fn requests(&self, routes: &str) -> RequestVerifier {
        let verifier = self.bare_verifier();
        verifier.install_status_list(&self.status).unwrap();
        RequestVerifier::new(verifier, Origin::parse(ORIGIN).unwrap())
            .with_routes(RouteTable::from_toml(routes).unwrap())
    }

    pub fn warrant(&self, s: &Signed<'_>) -> Vec<u8> {
        let now = self.clock.now();
        WarrantClaims {
            issuer: "alice".into(),
            audience: ORIGIN.into(),
            issued_at: now,
            expires_at: now + 60,
            id: new_id().unwrap(),
            nonce: None,
            action: s.action.into(),
            resource: s.resource.into(),
            request: RequestBinding::of(&HttpRequest { method: s.method, target: s.target, body: s.body }),
            context: BTreeMap::new(),
            grant: self.grant.clone(),
            evidence: WarrantEvidence::Software,
        }
        .sign(&self.device)
        .unwrap()
    }
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn challenge(&self) -> Option<&str> {
        self.headers.get(http::header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap())
    }
}

/// Sends one request over a new connection to `addr`.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder().method(method).uri(path).header("host", "api.example.com");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8(body.to_vec()).unwrap() }
}
