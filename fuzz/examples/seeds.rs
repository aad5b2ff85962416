//! Writes the seed corpora, fuzz/corpus/<target>/seed-*, from the repo's vectors and test
//! data (docs/vectors/*.hex decoded, attestation/tests/data certificates, docs/agent.example.toml,
//! the README's PKCS#11 URIs) and from the fixtures (TPM structures by the fixed AK, warrants
//! with each evidence kind). Deterministic: run again, nothing changes.
//!
//!     cd fuzz && cargo run --release --example seeds
//!
//! Files a long run added to the corpus and regression inputs (`regression-*`) are kept.

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use warrant_attestation::certificate::Cert;
use warrant_attestation::tpm::{PcrValue, TpmCertifyEvidence, TpmPublic};
use warrant_attestation::{EnrollmentEvidence, Pkcs11Report};
use warrant_envelope::device::{EnrollmentClaims, Signer, CHALLENGE_LEN};
use warrant_envelope::issue::{StatusBits, StatusListClaims};
use warrant_fuzz::fixtures::{self, FixedKey, ISSUER, PRINCIPAL, STATUS_URI, T};
use warrant_fuzz::split::join;
use warrant_fuzz::structured::{grants, WarrantSpec};
use warrant_fuzz::tpm::{self, FixedAk, KEY_ATTRS};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn data(path: &str) -> Vec<u8> {
    fs::read(root().join("attestation/tests/data").join(path)).unwrap()
}

fn der(path: &str) -> Vec<u8> {
    Cert::from_pem_or_der(&data(path)).unwrap().der().to_vec()
}

struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    fn new(target: &str) -> Self {
        let dir = root().join("fuzz/corpus").join(target);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with("seed-") {
                fs::remove_file(path).unwrap();
            }
        }
        Self { dir }
    }

    fn add(&self, name: &str, bytes: &[u8]) -> &Self {
        fs::write(self.dir.join(format!("seed-{name}")), bytes).unwrap();
        self
    }
}

/// The payload (claims) of a signed object.
fn payload(object: &[u8]) -> Vec<u8> {
    let value: ciborium::Value = ciborium::de::from_reader(object).unwrap();
    let ciborium::Value::Tag(18, inner) = value else { panic!("not a COSE_Sign1") };
    let ciborium::Value::Array(items) = *inner else { panic!("not a COSE_Sign1") };
    match &items[2] {
        ciborium::Value::Bytes(b) => b.clone(),
        _ => panic!("no payload"),
    }
}

/// A warrant spec decoded from fixed bytes, with its evidence replaced.
fn warrant_with(evidence_seed: u8, grant: u8) -> Vec<u8> {
    let bytes: Vec<u8> =
        (0..512u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(evidence_seed)).collect();
    let mut spec = WarrantSpec::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
    spec.grant = grant;
    spec.generate().warrant
}

fn main() {
    let grant = fixtures::grant_vector();
    let warrant = fixtures::warrant_vector();
    let status = fixtures::status_list_vector();
    let enrollment = fixtures::enrollment_vector();
    let ak = FixedAk::new();

    let cbor = Corpus::new("cbor_differential");
    for (name, object) in
        [("grant", &grant), ("warrant", &warrant), ("status-list", &status), ("enrollment", &enrollment)]
    {
        cbor.add(name, object).add(&format!("{name}-payload"), &payload(object));
    }
    cbor.add("bignum", &[0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        .add("negative-min", &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        .add("map-order", &[0xa3, 0x01, 0xf5, 0x20, 0xf4, 0x61, 0x61, 0xf6])
        .add("nested", &[0x81, 0x81, 0x81, 0xd8, 0x18, 0x43, 0x81, 0x81, 0x00]);

    let grants_corpus = Corpus::new("grant_decode");
    grants_corpus.add("vector", &grant).add("vector-payload", &payload(&grant));
    for (i, g) in grants().iter().enumerate() {
        grants_corpus
            .add(&format!("fixed-{i}"), &g.bytes)
            .add(&format!("fixed-{i}-payload"), &payload(&g.bytes));
    }

    let warrants = Corpus::new("warrant_decode");
    warrants.add("vector", &warrant).add("vector-payload", &payload(&warrant));
    for seed in 0..12u8 {
        let w = warrant_with(seed, seed);
        warrants
            .add(&format!("generated-{seed}"), &w)
            .add(&format!("generated-{seed}-payload"), &payload(&w));
    }

    let lists = Corpus::new("status_list_decode");
    lists.add("vector", &status).add("vector-payload", &payload(&status));
    let mut bits = StatusBits::with_capacity(70_000);
    for i in (0..70_000).step_by(7) {
        bits.revoke(i).unwrap();
    }
    let big = StatusListClaims {
        issuer: ISSUER.into(),
        uri: STATUS_URI.into(),
        sequence: 9,
        previous: [7; 32],
        issued_at: T,
        expires_at: T + 60,
        time_to_live: 60,
        bits,
    }
    .sign(&FixedKey::authority())
    .unwrap();
    lists.add("large", &big).add("large-payload", &payload(&big));

    let device = FixedKey::device();
    let challenge = [0xc4; CHALLENGE_LEN];
    let key_public = tpm::ecc_public(KEY_ATTRS, &p256::PublicKey::from(device.signing().verifying_key()));
    let key_name = TpmPublic::parse(&key_public).unwrap().name();
    let attest = tpm::certify_attest(&challenge, &key_name);
    let enroll = |evidence: EnrollmentEvidence| {
        EnrollmentClaims {
            principal: PRINCIPAL.into(),
            device_key: device.public_key().clone(),
            challenge,
            issued_at: T - 120,
            evidence,
        }
        .sign(&device)
        .unwrap()
    };
    let enrollments = Corpus::new("enrollment_decode");
    enrollments.add("vector", &enrollment).add("vector-payload", &payload(&enrollment));
    let tpm_enrollment = enroll(EnrollmentEvidence::TpmCertify(TpmCertifyEvidence {
        ak_public: ak.public_bytes.clone(),
        key_public: key_public.clone(),
        signature: ak.sign(&attest),
        attest: attest.clone(),
        ek_certificate: der("ek-test/ek.pem"),
    }));
    let piv_enrollment = enroll(EnrollmentEvidence::YubikeyPiv(warrant_attestation::piv::PivEvidence {
        slot_certificate: der("yubikey-real/attestation-9a.pem"),
        f9_certificate: der("yubikey-real/f9-intermediate.pem"),
    }));
    let pkcs11_enrollment = enroll(EnrollmentEvidence::Pkcs11(Pkcs11Report {
        manufacturer: "SoftHSM project".into(),
        model: "SoftHSM v2".into(),
        serial: "1234abcd".into(),
        firmware: "2.6".into(),
        local: true,
        always_sensitive: true,
        never_extractable: true,
    }));
    for (name, e) in
        [("tpm-certify", &tpm_enrollment), ("yubikey-piv", &piv_enrollment), ("pkcs11", &pkcs11_enrollment)]
    {
        enrollments.add(name, e).add(&format!("{name}-payload"), &payload(e));
    }

    Corpus::new("verify").add("vector", &warrant);

    let structured = Corpus::new("verify_structured");
    for seed in 0..8u8 {
        let bytes: Vec<u8> = (0..512u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        structured.add(&format!("pattern-{seed}"), &bytes);
    }
    structured.add("zeros", &[0; 256]);

    let pattern: Vec<u8> = (0..300u32).map(|i| (i as u8).wrapping_mul(13)).collect();
    let spec = |first: &[u8]| [b"S".as_slice(), first, &pattern].concat();
    Corpus::new("status_list_sequence")
        .add("vector", &status)
        .add("vector-then-generated", &join(&[&status, &spec(&[0, 0, 0, 0, 0])]))
        .add("generated-chain", &join(&[&spec(&[0, 0]), &spec(&[0, 0, 0, 0]), &spec(&[0, 0, 1, 0])]))
        .add("vector-twice", &join(&[&status, &status]));

    let pcrs: Vec<PcrValue> = tpm::pcr_values();
    let quote = tpm::quote_attest(&[0x42; 32], &pcrs);
    Corpus::new("tpm_attest").add("quote", &quote).add("certify", &attest);

    let tpm2b = |b: &[u8]| [(b.len() as u16).to_be_bytes().as_slice(), b].concat();
    let rsa_ssa = tpm::rsa_public(tpm::AK_ATTRS, 0x0014, &tpm::fixed_modulus());
    let rsa_pss = tpm::rsa_public(tpm::AK_ATTRS, 0x0016, &tpm::fixed_modulus());
    Corpus::new("tpm_public")
        .add("ecc-ak", &ak.public_bytes)
        .add("ecc-ak-tpm2b", &tpm2b(&ak.public_bytes))
        .add("ecc-key", &key_public)
        .add("rsa-rsassa", &rsa_ssa)
        .add("rsa-rsapss-tpm2b", &tpm2b(&rsa_pss));

    let rsa_sig = |scheme: u16| {
        let mut out = scheme.to_be_bytes().to_vec();
        out.extend([0x00, 0x0B]);
        tpm::sized(&mut out, &[0x5a; 256]);
        out
    };
    Corpus::new("tpm_signature")
        .add("ecdsa", &ak.sign(b"a fixed TPMS_ATTEST"))
        .add("rsassa", &rsa_sig(0x0014))
        .add("rsapss", &rsa_sig(0x0016));

    let serialized = tpm::serialized_pcr_file(&pcrs);
    let values = tpm::values_pcr_file(&pcrs);
    Corpus::new("tpm_pcr_file")
        .add("serialized", &[&[0u8][..], &serialized].concat())
        .add("values", &[&[1u8][..], &values].concat())
        .add("selection-spec", b"\x00sha256:0,1,2,3,4,5,6,7+sha1:0,7");

    Corpus::new("tpm_quote")
        .add("serialized", &[&[0u8][..], &join(&[&quote, b"", &serialized, &[0x42; 32]])].concat())
        .add("values", &[&[1u8][..], &join(&[&quote, b"", &values])].concat())
        .add("signed", &[&[0u8][..], &join(&[&quote, &ak.sign(&quote), &serialized])].concat());

    Corpus::new("tpm_certify")
        .add("ecc-key", &join(&[&attest, b"", &key_public, &challenge]))
        .add("signed", &join(&[&attest, &ak.sign(&attest), &key_public, &challenge]));

    let x509 = Corpus::new("x509_chain");
    let data_dir = root().join("attestation/tests/data");
    let mut pems: Vec<PathBuf> = Vec::new();
    for entry in walk(&data_dir) {
        if entry.extension().is_some_and(|e| e == "pem") {
            pems.push(entry);
        }
    }
    pems.sort();
    for pem in &pems {
        let name = pem.strip_prefix(&data_dir).unwrap().to_string_lossy().replace('/', "-");
        let bytes = fs::read(pem).unwrap();
        x509.add(&name, &bytes);
        x509.add(&format!("{name}.der"), Cert::from_pem_or_der(&bytes).unwrap().der());
    }
    x509.add("chain-ek", &join(&[&data("test-leaf.pem"), &data("test-intermediate-rsa.pem")]))
        .add("chain-ek-test", &join(&[&der("ek-test/ek.pem"), &der("ek-test/ek-ca.pem")]));

    let piv = Corpus::new("piv");
    for (name, slot, f9) in [
        ("test-9c", "piv-test/slot-9c.pem", "piv-test/f9.pem"),
        ("test-old-firmware", "piv-test/slot-old-firmware.pem", "piv-test/f9.pem"),
        ("test-bad-policy", "piv-test/slot-bad-policy.pem", "piv-test/f9.pem"),
        ("test-other-f9", "piv-test/slot-9c.pem", "piv-test/f9-other.pem"),
        ("yubikey-543", "yubikey-real/attestation-9a.pem", "yubikey-real/f9-intermediate.pem"),
        ("yubikey4", "yubikey4-real/attestation-9a.pem", "yubikey4-real/f9-intermediate.pem"),
        ("yubikey-574", "yubikey-574-real/attestation-9a.pem", "yubikey-574-real/f9.pem"),
        ("profile-no-serial", "piv-profile/slot-no-serial.pem", "piv-profile/f9.pem"),
        ("profile-slot-ca", "piv-profile/slot-ca.pem", "piv-profile/f9.pem"),
        ("profile-f9-fido", "piv-profile/slot-under-f9-fido.pem", "piv-profile/f9-fido.pem"),
    ] {
        piv.add(name, &[&[1u8][..], &join(&[&der(slot), &der(f9)])].concat());
        piv.add(&format!("{name}-pem"), &[&[0u8][..], &join(&[&data(slot), &data(f9)])].concat());
    }

    let uris = Corpus::new("pkcs11_uri");
    for (i, uri) in [
        "pkcs11:token=warrant?module-path=/usr/lib/softhsm/libsofthsm2.so",
        "pkcs11:token=warrant-authority;object=issuer-1",
        "pkcs11:token=CI%20HSM;object=issuance-1;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so",
        "pkcs11:serial=abc",
        "pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;token=a;type=cert",
        "pkcs11:token=a?pin-value=1234",
        "pkcs11:token=a%zz",
    ]
    .iter()
    .enumerate()
    {
        uris.add(&format!("uri-{i}"), uri.as_bytes());
    }

    let example = fs::read(root().join("docs/agent.example.toml")).unwrap();
    let single =
        warrant_agent::daemon::config::single_user(Path::new("/tmp/warrant"), 1000, fixtures::AUDIENCE);
    Corpus::new("daemon_config")
        .add("agent.example.toml", &example)
        .add("single-user.toml", single.as_bytes());

    let api = Corpus::new("api_json");
    let b64 = |b: &[u8]| {
        use base64_like::encode;
        encode(b)
    };
    for (i, body) in [
        r#"{"name":"deploy-key"}"#.to_owned(),
        r#"{"uri":"pkcs11:token=warrant;object=k1"}"#.to_owned(),
        format!(r#"{{"nonce":"{}"}}"#, "ab".repeat(32)),
        format!(r#"{{"key":"deploy-key","principal":"alice@example.com","challenge":"{}","tpm_credential":{{"id_object":"AAEC","encrypted_secret":"AwQF"}}}}"#, "c4".repeat(32)),
        format!(
            r#"{{"key":"deploy-key","grant":"{}","audience":"https://api.example.com","action":"deploy","resource":"prod/api","request":{{"method":"POST","target":"https://api.example.com/v1/deploy","body_sha256":"{}"}},"context":{{"ci_job":"release-42","ci_step":3,"approved":true}},"nonce":"00112233445566778899","ttl":60,"status_list":"{}"}}"#,
            b64(&grant),
            "ab".repeat(32),
            b64(&status)
        ),
        r#"{"issuer":"acme-authority","status_uri":"https://authority.example.com/status/1","key_uri":"pkcs11:token=a"}"#.to_owned(),
        r#"{"ttl":300,"principal":"alice@example.com","tpm_identity":{"ek_certificate":"MIIB","ak_public":"ACMACw=="}}"#.to_owned(),
        format!(
            r#"{{"enrollment":"{}","principal":"alice@example.com","policy":"permit(principal, action, resource);","groups":["deployers"],"attributes":{{"team":"platform","level":3,"oncall":false}},"valid_for":86400,"max_warrant_ttl":300,"allow_software":true,"allow_self_reported":false}}"#,
            b64(&enrollment)
        ),
        format!(r#"{{"grant_id":"{}"}}"#, "6a".repeat(16)),
        r#"{"ttl":3600}"#.to_owned(),
    ]
    .iter()
    .enumerate()
    {
        api.add(&format!("body-{i}"), &[&[i as u8][..], body.as_bytes()].concat());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Standard base64 (the API's encoding), without another dependency.
mod base64_like {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
