//! warrant's status lists are Token Status List tokens (draft-ietf-oauth-status-list, CWT
//! form). A generic reader that knows only the draft, written here from its text, decodes the
//! draft's own example tokens and warrant's lists alike; warrant's strict verifier refuses the
//! draft's examples, which are of another profile (a `kid` in the unprotected header, no
//! `seq`/`prev`, 16 entries).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use ciborium::Value;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use warrant_envelope::verify::{TrustedAuthority, Verifier};
use warrant_envelope::{Error, ObjectType};

/// The draft's Status List Token in CWT format (examples/status_list_cwt.md of
/// github.com/oauth-wg/draft-ietf-oauth-status-list, commit 2fb61cd), signed by its example key.
const DRAFT_STATUS_LIST_TOKEN: &str = "d2845820a2012610781a6170706c69636174696f6e2f7374617475736c6973742b63\
7774a1044231325850a502782168747470733a2f2f6578616d706c652e636f6d2f73\
74617475736c697374732f31061a648c5bea041a8898dfea19fffe19a8c019fffda2\
646269747301636c73744a78dadbb918000217015d584093fa4d01032b18c35e2fe1\
101b77fd6cc9440022caa4694450c4e4e9feab4e99d1fa6d9772ce2bf3a12e0323de\
d7c982c5e101a5e67f0cbc1e2b6f57ce99c279";

/// The draft's Referenced Token in CWT format (examples/referenced_token_cwt.md).
const DRAFT_REFERENCED_TOKEN: &str = "d28443a10126a1044231325866a502653132333435017368747470733a2f2f657861\
6d706c652e636f6d061a648c5bea041a8898dfea19ffffa16b7374617475735f6c69\
7374a2636964780063757269782168747470733a2f2f6578616d706c652e636f6d2f\
7374617475736c697374732f315840340f7efea10f1a36dc4797636a17b4dd4848b6\
8997d1d10e8cceb3a38ff33b3dda72964a83989f6cf98560c2fc97a08bc8977cc6b0\
f84cfedab93d3e4481e938";

/// The draft's example key (src/util.py), public part, as SEC1 uncompressed coordinates.
const DRAFT_KEY_X: &str = "2371d69bfd03b3574f308f885a67f8981987f9869e0156cf56eeef076ec2c57a";
const DRAFT_KEY_Y: &str = "e8dfdde44963f5bb3586d815de890928875b1c4a6481398096e60a25e9b39f53";

/// A Token Status List read the way the draft describes it, and nothing more.
struct GenericStatusList {
    typ: String,
    subject: String,
    issued_at: u64,
    expires_at: Option<u64>,
    time_to_live: Option<u64>,
    bits: u64,
    statuses: Vec<u8>,
}

impl GenericStatusList {
    fn status(&self, index: usize) -> u8 {
        // Bit i of the list is bit i % 8 (least significant first) of byte i / 8 (bits = 1).
        (self.statuses[index / 8] >> (index % 8)) & 1
    }
}

fn map_get<'a>(map: &'a [(Value, Value)], key: &Value) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int(v: u64) -> Value {
    Value::Integer(v.into())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn as_u64(v: &Value) -> u64 {
    u64::try_from(v.as_integer().expect("an integer")).expect("unsigned")
}

/// A COSE_Sign1's protected header bytes, the header decoded, its payload and signature.
type Sign1Parts = (Vec<u8>, Vec<(Value, Value)>, Vec<u8>, Vec<u8>);

fn cose_sign1(bytes: &[u8]) -> Sign1Parts {
    let value: Value = ciborium::from_reader(bytes).expect("CBOR");
    let Value::Tag(18, inner) = value else { panic!("not a COSE_Sign1_Tagged") };
    let Value::Array(parts) = *inner else { panic!("not an array") };
    let protected = parts[0].as_bytes().expect("protected bstr").clone();
    let header: Value = ciborium::from_reader(protected.as_slice()).expect("protected header");
    let payload = parts[2].as_bytes().expect("payload").clone();
    let signature = parts[3].as_bytes().expect("signature").clone();
    (protected, header.into_map().expect("header map"), payload, signature)
}

fn read_generic(bytes: &[u8]) -> GenericStatusList {
    let (_, header, payload, _) = cose_sign1(bytes);
    let claims: Value = ciborium::from_reader(payload.as_slice()).expect("claims");
    let claims = claims.into_map().expect("claims map");
    let list = map_get(&claims, &int(65533)).expect("status_list claim").as_map().expect("a map");
    let compressed = map_get(list, &text("lst")).expect("lst").as_bytes().expect("bytes");
    let mut statuses = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(compressed.as_slice()), &mut statuses)
        .expect("zlib");
    GenericStatusList {
        typ: map_get(&header, &int(16)).and_then(Value::as_text).expect("typ").into(),
        subject: map_get(&claims, &int(2)).and_then(Value::as_text).expect("sub").into(),
        issued_at: as_u64(map_get(&claims, &int(6)).expect("iat")),
        expires_at: map_get(&claims, &int(4)).map(as_u64),
        time_to_live: map_get(&claims, &int(65534)).map(as_u64),
        bits: as_u64(map_get(list, &text("bits")).expect("bits")),
        statuses,
    }
}

/// The grant or token's reference into a status list (claim 65535): (uri, idx).
fn read_reference(bytes: &[u8]) -> (String, u64) {
    let (_, _, payload, _) = cose_sign1(bytes);
    let claims: Value = ciborium::from_reader(payload.as_slice()).expect("claims");
    let claims = claims.into_map().expect("claims map");
    let status = map_get(&claims, &int(65535)).expect("status claim").as_map().expect("map");
    let reference = map_get(status, &text("status_list")).expect("status_list").as_map().expect("map");
    let uri = map_get(reference, &text("uri")).and_then(Value::as_text).expect("uri").to_owned();
    (uri, as_u64(map_get(reference, &text("idx")).expect("idx")))
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("hex")
}

fn vector(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors").join(name);
    unhex(&std::fs::read_to_string(path).expect("vector"))
}

#[test]
fn the_drafts_example_token_reads_as_the_draft_says_and_its_signature_verifies() {
    let token = unhex(DRAFT_STATUS_LIST_TOKEN);
    let list = read_generic(&token);
    assert_eq!(list.typ, "application/statuslist+cwt");
    assert_eq!(list.typ, ObjectType::StatusList.media_type(), "warrant's lists carry the draft's type");
    assert_eq!(list.subject, "https://example.com/statuslists/1");
    assert_eq!(
        (list.issued_at, list.expires_at, list.time_to_live),
        (1_686_920_170, Some(2_291_720_170), Some(43_200))
    );
    assert_eq!(list.bits, 1);
    // The draft's example list: byte_array = [0xb9, 0xa3], statuses 1,0,0,1,1,1,0,1 | 1,1,0,0,0,1,0,1.
    assert_eq!(list.statuses, [0xb9, 0xa3]);
    let statuses: Vec<u8> = (0..16).map(|i| list.status(i)).collect();
    assert_eq!(statuses, [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]);

    // ES256 over Sig_structure ["Signature1", protected, h'', payload] (RFC 9052), with the
    // draft's example key: the example is what the draft's authors signed.
    let (protected, _, payload, signature) = cose_sign1(&token);
    let mut to_be_signed = Vec::new();
    let sig_structure = Value::Array(vec![
        text("Signature1"),
        Value::Bytes(protected),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload),
    ]);
    ciborium::into_writer(&sig_structure, &mut to_be_signed).unwrap();
    let point = [vec![0x04], unhex(DRAFT_KEY_X), unhex(DRAFT_KEY_Y)].concat();
    let key = VerifyingKey::from_sec1_bytes(&point).expect("the draft's key");
    key.verify(&to_be_signed, &Signature::from_slice(&signature).unwrap()).expect("the draft's signature");
}

#[test]
fn the_drafts_referenced_token_names_its_list_as_warrants_grants_do() {
    assert_eq!(
        read_reference(&unhex(DRAFT_REFERENCED_TOKEN)),
        ("https://example.com/statuslists/1".into(), 0)
    );
    // warrant's grant carries the same claim, and its list's sub is that URI.
    let (uri, index) = read_reference(&vector("grant.hex"));
    let list = read_generic(&vector("status-list.hex"));
    assert_eq!(list.subject, uri);
    assert_eq!(index, 7);
}

#[test]
fn warrants_list_reads_as_a_token_status_list() {
    let list = read_generic(&vector("status-list.hex"));
    assert_eq!(list.typ, "application/statuslist+cwt");
    assert_eq!(list.bits, 1);
    let (expires_at, time_to_live) = (list.expires_at.unwrap(), list.time_to_live.unwrap());
    assert!(list.issued_at < expires_at);
    assert!(time_to_live > 0 && time_to_live <= expires_at - list.issued_at);
    // The vector revokes index 3, not 7 (docs/vectors/README.md).
    assert_eq!((list.status(3), list.status(7)), (1, 0));
    assert_eq!(list.statuses.len() * 8, 1024, "padded to the minimum");
}

#[test]
fn warrants_verifier_refuses_the_drafts_example_a_foreign_profile() {
    let point = [vec![0x04], unhex(DRAFT_KEY_X), unhex(DRAFT_KEY_Y)].concat();
    let key = warrant_envelope::verify::P256PublicKey::from_sec1(&point).expect("key");
    let verifier = Verifier::builder("https://api.example")
        .trust(TrustedAuthority { issuer: "https://example.com".into(), keys: vec![key] })
        .build()
        .unwrap();
    // Its kid is in the unprotected header, which warrant's format leaves empty (FORMAT.md §2).
    let err = verifier.install_status_list(&unhex(DRAFT_STATUS_LIST_TOKEN)).unwrap_err();
    assert!(matches!(err, Error::UnexpectedHeader(_)), "{err:?}");
}
