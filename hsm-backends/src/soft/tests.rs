use std::os::unix::fs::PermissionsExt;

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use super::*;

/// A temporary directory and a key directory inside it (tempdir itself follows the umask).
fn key_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    (dir, keys)
}

fn name(n: &str) -> KeyName {
    KeyName::new(n).unwrap()
}

fn verifies(public: &P256PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public.sec1()).verify(message, signature).is_ok()
}

fn digest(message: &[u8]) -> [u8; 32] {
    aws_lc_rs::digest::digest(&SHA256, message).as_ref().try_into().unwrap()
}

#[test]
fn create_sign_list_delete() {
    let (_tmp, dir) = key_dir();
    let store = SoftKeyStore::open(&dir).unwrap();
    let info = store.create(&name("laptop")).unwrap();
    assert_eq!(info.protection, KeyProtection::FilePermissions);
    let mode = fs::metadata(dir.join("laptop.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    let sig = store.sign_digest(&name("laptop"), &digest(b"hello")).unwrap();
    assert!(verifies(&info.public_key, b"hello", &sig));
    assert!(!verifies(&info.public_key, b"hellO", &sig));

    // A fresh store (no cache) loads the same key from disk.
    let reopened = SoftKeyStore::open(&dir).unwrap();
    let sig = reopened.sign_digest(&name("laptop"), &digest(b"again")).unwrap();
    assert!(verifies(&info.public_key, b"again", &sig));
    assert_eq!(reopened.list().unwrap(), vec![info.clone()]);
    let scope = WarrantScope { grant_id: [3; 16], now: 1_800_000_000, status_list: None };
    assert_eq!(
        reopened.warrant_evidence(&name("laptop"), &scope, &[0; 32]).unwrap(),
        WarrantEvidence::Software
    );
    assert_eq!(
        reopened.enrollment_evidence(&name("laptop"), &[0; 32]).unwrap(),
        EnrollmentEvidence::Software
    );

    assert!(matches!(store.create(&name("laptop")), Err(Error::KeyExists(_))));
    store.delete(&name("laptop")).unwrap();
    assert!(matches!(store.sign_digest(&name("laptop"), &[0; 32]), Err(Error::KeyNotFound(_))));
    assert!(matches!(store.delete(&name("laptop")), Err(Error::KeyNotFound(_))));
    // No evidence for a key that is not there, in either place.
    assert!(matches!(store.enrollment_evidence(&name("laptop"), &[0; 32]), Err(Error::KeyNotFound(_))));
    assert!(matches!(store.warrant_evidence(&name("laptop"), &scope, &[0; 32]), Err(Error::KeyNotFound(_))));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn sealed_keys_need_the_right_passphrase() {
    let (_tmp, dir) = key_dir();
    let pass = || Zeroizing::new(b"hunter2 but longer".to_vec());
    let store = SoftKeyStore::open(&dir).unwrap().with_passphrase(pass()).with_cheap_kdf();
    let info = store.create(&name("ci")).unwrap();
    assert_eq!(info.protection, KeyProtection::Passphrase);

    let without = SoftKeyStore::open(&dir).unwrap();
    assert!(matches!(without.sign_digest(&name("ci"), &[1; 32]), Err(Error::PassphraseRequired(_))));
    // Listing and public keys need no passphrase.
    assert_eq!(without.public_key(&name("ci")).unwrap(), info.public_key);

    let wrong = SoftKeyStore::open(&dir).unwrap().with_passphrase(Zeroizing::new(b"nope".to_vec()));
    let err = wrong.sign_digest(&name("ci"), &[1; 32]).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase(_)));
    assert!(!err.to_string().contains("nope"), "the passphrase never appears in errors");

    let right = SoftKeyStore::open(&dir).unwrap().with_passphrase(pass());
    let sig = right.sign_digest(&name("ci"), &digest(b"m")).unwrap();
    assert!(verifies(&info.public_key, b"m", &sig));
}

#[test]
fn files_others_can_read_are_refused() {
    let (_tmp, dir) = key_dir();
    let store = SoftKeyStore::open(&dir).unwrap();
    store.create(&name("k")).unwrap();
    let path = dir.join("k.key");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let fresh = SoftKeyStore::open(&dir).unwrap();
    assert!(matches!(
        fresh.sign_digest(&name("k"), &[0; 32]),
        Err(Error::InsecurePermissions { mode: 0o644, .. })
    ));

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(SoftKeyStore::open(&dir), Err(Error::InsecurePermissions { .. })));
}

#[test]
fn corrupt_key_file_is_reported() {
    let (_tmp, dir) = key_dir();
    let store = SoftKeyStore::open(&dir).unwrap();
    store.create(&name("k")).unwrap();
    let path = dir.join("k.key");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // the secret no longer matches the public key
    fs::write(&path, &bytes).unwrap();
    let fresh = SoftKeyStore::open(&dir).unwrap();
    assert!(matches!(fresh.sign_digest(&name("k"), &[0; 32]), Err(Error::CorruptKeyFile { .. })));
}

#[test]
fn debug_output_holds_no_secret() {
    let (_tmp, dir) = key_dir();
    let store = SoftKeyStore::open(&dir).unwrap().with_passphrase(Zeroizing::new(b"s3cret".to_vec()));
    assert!(!format!("{store:?}").contains("s3cret"));
}
