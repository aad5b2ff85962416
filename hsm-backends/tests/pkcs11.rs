//! The PKCS#11 key store against a real SoftHSM2 token (scripts/test installs softhsm2 and
//! opensc). One SoftHSM configuration per test process (the module reads SOFTHSM2_CONF and
//! its tokens once, at C_Initialize), so every test's token is made before any test opens one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use warrant_attestation::{EnrollmentEvidence, WarrantEvidence};
use warrant_hsm_backends::pkcs11::{PinSource, Pkcs11KeyStore, Pkcs11Uri, TokenSelector};
use warrant_hsm_backends::{Error, KeyName, KeyStore, WarrantScope};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "123456";

/// The tokens the tests use, one each.
const TOKENS: [&str; 5] = ["keys-test", "tool-test", "pin-test", "concurrency-test", "recovery-test"];

/// The process's SoftHSM directory, configured once, with every test's token.
fn softhsm() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("softhsm-").tempdir().unwrap().keep();
        std::fs::create_dir(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\n", dir.join("tokens").display()),
        )
        .unwrap();
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let pin = dir.join("pin");
        std::fs::write(&pin, format!("{PIN}\n")).unwrap();
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        for label in TOKENS {
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "12345678"])
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .expect("softhsm2-util (scripts/test installs softhsm2)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        dir
    })
}

/// The token labelled `label` (one of TOKENS).
fn token(label: &str) -> TokenSelector {
    assert!(TOKENS.contains(&label));
    softhsm();
    TokenSelector { label: Some(label.into()), serial: None }
}

fn pin() -> PinSource {
    PinSource::File(softhsm().join("pin"))
}

fn open(label: &str) -> Pkcs11KeyStore {
    Pkcs11KeyStore::open(Path::new(MODULE), token(label), &pin()).unwrap()
}

fn verify(store: &Pkcs11KeyStore, name: &KeyName, digest: &[u8; 32], signature: &[u8; 64]) {
    let public = store.public_key(name).unwrap();
    // The signature over a digest: verify with aws-lc-rs's digest-taking API through p256.
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.sec1()).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(signature).unwrap();
    key.verify_prehash(digest, &sig).unwrap();
}

#[test]
fn keys_are_generated_on_the_token_sign_and_report_their_attributes() {
    let store = open("keys-test");
    let name = KeyName::new("device-1").unwrap();
    let info = store.create(&name).unwrap();
    assert_eq!(info.backend.as_str(), "pkcs11");
    assert!(matches!(store.create(&name), Err(Error::KeyExists(_))));
    let digest = [0x42; 32];
    let signature = store.sign_digest(&name, &digest).unwrap();
    verify(&store, &name, &digest, &signature);
    let listed = store.list().unwrap();
    assert_eq!(listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["device-1"]);
    let EnrollmentEvidence::Pkcs11(report) = store.enrollment_evidence(&name, &[0; 32]).unwrap() else {
        panic!("expected pkcs11 evidence")
    };
    assert!(report.local && report.always_sensitive && report.never_extractable, "{report:?}");
    assert_eq!(report.model, "SoftHSM v2");
    // Each warrant carries the same report again: the verifier compares it with the grant's.
    let scope = WarrantScope { grant_id: [3; 16], now: 1_800_000_000, status_list: None };
    assert_eq!(store.warrant_evidence(&name, &scope, &[1; 32]).unwrap(), WarrantEvidence::Pkcs11(report));
    store.delete(&name).unwrap();
    assert!(matches!(store.sign_digest(&name, &digest), Err(Error::KeyNotFound(_))));
    assert!(matches!(store.public_key(&name), Err(Error::KeyNotFound(_))));
}

#[test]
fn a_key_made_by_pkcs11_tool_is_used_by_its_label() {
    let selector = token("tool-test");
    let out = Command::new("pkcs11-tool")
        .args(["--module", MODULE, "--token-label", "tool-test", "--login", "--pin", PIN])
        .args(["--keypairgen", "--key-type", "EC:prime256v1", "--label", "from-tool", "--id", "0102"])
        .env("SOFTHSM2_CONF", softhsm().join("softhsm2.conf"))
        .output()
        .expect("pkcs11-tool (scripts/test installs opensc)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let uri =
        Pkcs11Uri::parse(&format!("pkcs11:token=tool-test;object=from-tool?module-path={MODULE}")).unwrap();
    let store = Pkcs11KeyStore::open_uri(&uri, None, &pin()).unwrap();
    assert_eq!(store_label(&selector), "tool-test");
    let name = KeyName::new(uri.object.as_deref().unwrap()).unwrap();
    let signature = store.sign_digest(&name, &[7; 32]).unwrap();
    verify(&store, &name, &[7; 32], &signature);

    // `existing` checks the URI against this store's token and the key's label and id.
    let info = store.existing("pkcs11:token=tool-test;object=from-tool;id=%01%02").unwrap();
    assert_eq!(info.name.as_str(), "from-tool");
    for (uri, reason) in [
        ("pkcs11:token=keys-test;object=from-tool", "another token"),
        ("pkcs11:token=tool-test", "object="),
        ("pkcs11:token=tool-test;object=from-tool;id=%09", "no key named"),
        ("pkcs11:token=tool-test;object=missing", "no key named"),
        ("pkcs11:token=tool-test;object=../x", "invalid key name"),
    ] {
        let err = store.existing(uri).unwrap_err().to_string();
        assert!(err.contains(reason), "{uri}: {err}");
    }
}

fn store_label(selector: &TokenSelector) -> &str {
    selector.label.as_deref().unwrap()
}

#[test]
fn wrong_pin_missing_token_and_unknown_object_are_clear_errors() {
    token("pin-test");
    let wrong = softhsm().join("wrong-pin");
    std::fs::write(&wrong, "000000").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let selector = TokenSelector { label: Some("pin-test".into()), serial: None };
    let err = Pkcs11KeyStore::open(Path::new(MODULE), selector.clone(), &PinSource::File(wrong)).unwrap_err();
    assert!(matches!(err, Error::PinIncorrect(_)), "{err}");
    assert!(err.to_string().contains("refused the PIN"), "{err}");
    assert!(!err.to_string().contains("000000"));

    let missing = TokenSelector { label: Some("no-such-token".into()), serial: None };
    let err = Pkcs11KeyStore::open(Path::new(MODULE), missing, &pin()).unwrap_err();
    assert!(matches!(err, Error::TokenNotFound(_)), "{err}");
    assert!(err.to_string().contains("no-such-token"), "{err}");

    let err =
        Pkcs11KeyStore::open(Path::new("/nonexistent/module.so"), selector.clone(), &pin()).unwrap_err();
    assert!(err.to_string().contains("loading the module"), "{err}");

    let store = Pkcs11KeyStore::open(Path::new(MODULE), selector, &pin()).unwrap();
    let nobody = KeyName::new("nobody").unwrap();
    assert!(matches!(store.sign_digest(&nobody, &[0; 32]), Err(Error::KeyNotFound(_))));
    assert!(matches!(store.enrollment_evidence(&nobody, &[0; 32]), Err(Error::KeyNotFound(_))));
    let scope = WarrantScope { grant_id: [3; 16], now: 1_800_000_000, status_list: None };
    assert!(matches!(store.warrant_evidence(&nobody, &scope, &[0; 32]), Err(Error::KeyNotFound(_))));
}

#[test]
fn concurrent_signers_each_get_valid_signatures() {
    let store = open("concurrency-test");
    let name = KeyName::new("shared").unwrap();
    store.create(&name).unwrap();
    std::thread::scope(|scope| {
        for t in 0..8u8 {
            let (store, name) = (&store, &name);
            scope.spawn(move || {
                for i in 0..20u8 {
                    let digest = [t ^ i; 32];
                    let signature = store.sign_digest(name, &digest).unwrap();
                    verify(store, name, &digest, &signature);
                }
            });
        }
    });
}

/// Another handle on the module, as a second component of this process would have.
fn raw_module() -> cryptoki::context::Pkcs11 {
    softhsm();
    let ctx = cryptoki::context::Pkcs11::new(MODULE).unwrap();
    // Initialised already by the store (one initialisation per process): that answer is fine.
    let _ = ctx.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    ctx
}

fn slot_of(ctx: &cryptoki::context::Pkcs11, label: &str) -> cryptoki::slot::Slot {
    ctx.get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .unwrap()
}

#[test]
fn the_store_recovers_when_the_token_drops_its_sessions_and_never_reveals_the_private_key() {
    let store = open("recovery-test");
    let name = KeyName::new("survivor").unwrap();
    store.create(&name).unwrap();
    store.sign_digest(&name, &[1; 32]).unwrap();

    let ctx = raw_module();
    let slot = slot_of(&ctx, "recovery-test");
    // Another part of the process logs out of the token: the login, shared by every session
    // of the process, is gone under the store's pooled sessions and cached key handles.
    let session = ctx.open_ro_session(slot).unwrap();
    session.logout().unwrap();
    let signature = store.sign_digest(&name, &[2; 32]).unwrap();
    verify(&store, &name, &[2; 32], &signature);

    // The private key's value cannot be read, even logged in.
    let _ = session
        .login(cryptoki::session::UserType::User, Some(&cryptoki::types::AuthPin::from(PIN.to_owned())));
    let key = session
        .find_objects(&[
            cryptoki::object::Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
            cryptoki::object::Attribute::Label(b"survivor".to_vec()),
        ])
        .unwrap()[0];
    let read = session.get_attributes(key, &[cryptoki::object::AttributeType::Value]);
    let leaked =
        read.map(|attrs| attrs.into_iter().any(|a| matches!(a, cryptoki::object::Attribute::Value(_))));
    assert!(!matches!(leaked, Ok(true)), "the token revealed CKA_VALUE");
}
