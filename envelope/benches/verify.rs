//! Verification speed, side by side with the baselines issue #2 names, in one run.
//!
//! Run on one core (numbers and the machine in docs/PERFORMANCE.md):
//!     taskset -c 0 cargo bench -p warrant-envelope --bench verify
//!
//! Each case is timed in 31 samples of ~5 ms, taken round-robin across all cases so that the
//! machine's drift falls on every case alike; the table gives the median per operation and
//! its ratio to one bare ES256 verification with aws-lc-rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use common::{expected, request, Fixture, TestKey};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use warrant_envelope::verify::MemoryReplayStore;

const SAMPLES: usize = 31;
const SAMPLE_TARGET: Duration = Duration::from_millis(5);

struct Row {
    name: &'static str,
    median: Duration,
}

/// A case ready to be sampled: each call runs the next batch of operations and returns the
/// time per operation.
struct Case<'a> {
    name: &'static str,
    sample: Box<dyn FnMut() -> Duration + 'a>,
}

/// Prepares `op` over inputs made by `make` (fresh inputs for operations that consume them),
/// with a batch size calibrated to last about `SAMPLE_TARGET`.
fn case<'a, T: 'a>(
    name: &'static str,
    mut make: impl FnMut(usize) -> Vec<T>,
    mut op: impl FnMut(&T) + 'a,
) -> Case<'a> {
    let probe = make(64);
    let start = Instant::now();
    for input in &probe {
        op(input);
    }
    let per_op = start.elapsed() / probe.len() as u32;
    let batch = ((SAMPLE_TARGET.as_nanos() / per_op.as_nanos().max(1)) as usize).clamp(1, 20_000);
    let inputs = make(batch * SAMPLES);
    let mut next = 0;
    Case {
        name,
        sample: Box::new(move || {
            let chunk = &inputs[next..next + batch];
            next += batch;
            let start = Instant::now();
            for input in chunk {
                op(input);
            }
            start.elapsed() / batch as u32
        }),
    }
}

/// Samples all cases round-robin, so that the machine's drift affects every case alike, and
/// returns each case's median.
fn run(mut cases: Vec<Case<'_>>) -> Vec<Row> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(SAMPLES); cases.len()];
    for _ in 0..SAMPLES {
        for (case, out) in cases.iter_mut().zip(&mut samples) {
            out.push((case.sample)());
        }
    }
    cases
        .iter()
        .zip(samples)
        .map(|(case, mut s)| {
            s.sort();
            Row { name: case.name, median: s[SAMPLES / 2] }
        })
        .collect()
}

fn main() {
    let f = Fixture::new();
    let jwt = JwtSetup::new();
    let biscuit_ed = BiscuitSetup::new(biscuit_auth::Algorithm::Ed25519);
    let biscuit_p256 = BiscuitSetup::new(biscuit_auth::Algorithm::Secp256r1);
    let cedar = CedarSetup::new();
    let message = f.warrant(); // ~1.1 KB, the size of what a warrant signature covers
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let sig = pair.sign(&rng, &message).unwrap();
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()).unwrap();
    let p256_key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let p256_sig: p256::ecdsa::Signature = p256_key.sign(&message);
    let p256_vk = *p256_key.verifying_key();
    let fresh_warrants = |n: usize| (0..n).map(|_| f.warrant()).collect::<Vec<_>>();
    let hot = f.verifier();
    hot.verify(&f.warrant(), &expected(), &request(), None).unwrap(); // the grant is now cached
    let evaluating = f.builder().decision_cache_capacity(0).build().unwrap();
    evaluating.install_status_list(&f.status).unwrap();
    evaluating.verify(&f.warrant(), &expected(), &request(), None).unwrap();
    let new_grant = f.builder().grant_cache_capacity(0).decision_cache_capacity(0).build().unwrap();
    new_grant.install_status_list(&f.status).unwrap();
    new_grant.verify(&f.warrant(), &expected(), &request(), None).unwrap(); // the policy text is now parsed
    let cold = f
        .builder()
        .grant_cache_capacity(0)
        .policy_cache_capacity(0)
        .decision_cache_capacity(0)
        .replay_store(Arc::new(MemoryReplayStore::new(1 << 20)))
        .build()
        .unwrap();
    cold.install_status_list(&f.status).unwrap();
    let device = TestKey::new();
    let claims = f.warrant_claims();

    // Cases, in table order.
    let mut rows: Vec<Case<'_>> = Vec::new();
    rows.push(case(
        "ES256 verify, aws-lc-rs (baseline)",
        |n| vec![(); n],
        |_| parsed.verify_sig(black_box(&message), black_box(sig.as_ref())).unwrap(),
    ));
    rows.push(case(
        "ES256 verify, p256 0.13",
        |n| vec![(); n],
        |_| p256_vk.verify(black_box(&message), black_box(&p256_sig)).unwrap(),
    ));
    rows.push(case("warrant verify, grant seen before", fresh_warrants, |w| {
        hot.verify(black_box(w), &expected(), &request(), None).unwrap();
    }));
    rows.push(case("warrant verify, grant seen, policy evaluated", fresh_warrants, |w| {
        evaluating.verify(black_box(w), &expected(), &request(), None).unwrap();
    }));
    rows.push(case("warrant verify, new grant, policy text seen before", fresh_warrants, |w| {
        new_grant.verify(black_box(w), &expected(), &request(), None).unwrap();
    }));
    rows.push(case("warrant verify, cold (nothing cached)", fresh_warrants, |w| {
        cold.verify(black_box(w), &expected(), &request(), None).unwrap();
    }));
    rows.push(jsonwebtoken_case(&jwt));
    rows.push(biscuit_case("biscuit-auth 6 parse+verify+authorize, 2 blocks, Ed25519", &biscuit_ed));
    rows.push(biscuit_case("biscuit-auth 6 parse+verify+authorize, 2 blocks, P-256", &biscuit_p256));
    rows.extend(cedar_cases(&cedar));
    rows.push(case(
        "ES256 sign, aws-lc-rs",
        |n| vec![(); n],
        |_| {
            black_box(pair.sign(&rng, black_box(&message)).unwrap());
        },
    ));
    rows.push(case(
        "ES256 sign, p256 0.13",
        |n| vec![(); n],
        |_| {
            let s: p256::ecdsa::Signature = p256_key.sign(black_box(&message));
            black_box(s);
        },
    ));
    rows.push(case(
        "warrant build + sign, aws-lc-rs key",
        |n| vec![(); n],
        |_| {
            black_box(claims.sign(&device).unwrap());
        },
    ));

    let rows = run(rows);
    let baseline = rows[0].median.as_secs_f64();
    println!("\n{:<58} {:>12} {:>10}", "case (one core, median per operation)", "time", "ratio");
    for row in &rows {
        println!(
            "{:<58} {:>9.1} us {:>9.2}x",
            row.name,
            row.median.as_secs_f64() * 1e6,
            row.median.as_secs_f64() / baseline
        );
    }
    let get = |prefix: &str| {
        rows.iter().find(|r| r.name.starts_with(prefix)).map(|r| r.median.as_secs_f64()).unwrap()
    };
    let hot = get("warrant verify, grant seen before");
    let evaluated = get("warrant verify, grant seen, policy");
    let cold = get("warrant verify, cold");
    let known_policy = get("warrant verify, new grant");
    let jwt = get("jsonwebtoken");
    println!("\ntargets (issue #2):");
    println!(
        "  warm warrant <= 1.25x bare ES256:   {:.2}x  {}",
        hot / baseline,
        verdict(hot / baseline <= 1.25)
    );
    println!("  warm warrant <= jsonwebtoken:       {:.2}x  {}", hot / jwt, verdict(hot <= jwt));
    println!(
        "  (policy evaluated each time:        {:.2}x bare ES256, {:.2}x jsonwebtoken)",
        evaluated / baseline,
        evaluated / jwt
    );
    println!(
        "  cold warrant <= 3.5x bare ES256:    {:.2}x  {}",
        cold / baseline,
        verdict(cold / baseline <= 3.5)
    );
    println!("  (new grant, policy text known:      {:.2}x bare ES256)", known_policy / baseline);
    println!("  warrant size with its grant:        {} bytes", f.warrant().len());
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct JwtClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    action: String,
    resource: String,
}

/// A signed JWT with the same facts as a warrant, its key and validation rules.
struct JwtSetup {
    token: String,
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl JwtSetup {
    fn new() -> Self {
        use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = JwtClaims {
            iss: "acme-authority".into(),
            sub: "alice".into(),
            aud: "https://api.example.com".into(),
            exp: now + 600,
            iat: now,
            jti: "3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e".into(),
            action: "deploy".into(),
            resource: "prod/api".into(),
        };
        let token =
            encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_der(pkcs8.as_ref()))
                .unwrap();
        let key = DecodingKey::from_ec_der(pair.public_key().as_ref());
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://api.example.com"]);
        validation.set_issuer(&["acme-authority"]);
        decode::<JwtClaims>(&token, &key, &validation).unwrap();
        Self { token, key, validation }
    }
}

fn jsonwebtoken_case(j: &JwtSetup) -> Case<'_> {
    case(
        "jsonwebtoken 12 ES256 decode+verify+validate, aws-lc-rs",
        |n| vec![(); n],
        move |_| {
            black_box(jsonwebtoken::decode::<JwtClaims>(black_box(&j.token), &j.key, &j.validation).unwrap());
        },
    )
}

/// A two-block biscuit and its root key.
struct BiscuitSetup {
    token: Vec<u8>,
    root: biscuit_auth::PublicKey,
}

impl BiscuitSetup {
    fn new(algorithm: biscuit_auth::Algorithm) -> Self {
        use biscuit_auth::macros::{biscuit, block};
        use biscuit_auth::KeyPair;
        let root = KeyPair::new_with_algorithm(algorithm);
        let token = biscuit!(r#"user("alice"); right("prod/api", "deploy");"#).build(&root).unwrap();
        let token = token
            .append_with_keypair(
                &KeyPair::new_with_algorithm(algorithm),
                block!(r#"check if operation("deploy");"#),
            )
            .unwrap()
            .to_vec()
            .unwrap();
        Self { token, root: root.public() }
    }
}

fn biscuit_case<'a>(name: &'static str, b: &'a BiscuitSetup) -> Case<'a> {
    use biscuit_auth::macros::authorizer;
    use biscuit_auth::Biscuit;
    case(
        name,
        |n| vec![(); n],
        move |_| {
            let parsed = Biscuit::from(black_box(&b.token), b.root).unwrap();
            // biscuit's default 1 ms time limit fails the run on a loaded machine; time is
            // what is measured here, not what the limit allows.
            let limits = biscuit_auth::AuthorizerLimits {
                max_time: std::time::Duration::from_secs(1),
                ..Default::default()
            };
            let mut authorizer = authorizer!(
                r#"resource("prod/api"); operation("deploy"); allow if right("prod/api", "deploy");"#
            )
            .set_limits(limits)
            .build(&parsed)
            .unwrap();
            authorizer.authorize().unwrap();
        },
    )
}

/// The fixture's policy, an entity store with Alice in `deployers`, and two requests.
struct CedarSetup {
    policies: cedar_policy::PolicySet,
    entities: cedar_policy::Entities,
    allowed: cedar_policy::Request,
    unknown_principal: cedar_policy::Request,
    authorizer: cedar_policy::Authorizer,
}

fn cedar_context() -> cedar_policy::Context {
    use cedar_policy::{Context, RestrictedExpression};
    let s = |v: &str| RestrictedExpression::new_string(v.into());
    let request = RestrictedExpression::new_record([
        ("method".to_owned(), s("POST")),
        ("target".to_owned(), s(common::TARGET)),
    ]);
    let claims = RestrictedExpression::new_record([("ci_job".to_owned(), s("release-42"))]);
    Context::from_pairs([("request".to_owned(), request.unwrap()), ("claims".to_owned(), claims.unwrap())])
        .unwrap()
}

impl CedarSetup {
    fn new() -> Self {
        use cedar_policy::{Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request};
        use std::str::FromStr;
        let policies = PolicySet::from_str(common::POLICY).unwrap();
        let alice = EntityUid::from_str(r#"Warrant::Principal::"alice""#).unwrap();
        let group = EntityUid::from_str(r#"Warrant::Group::"deployers""#).unwrap();
        let entities = Entities::from_entities(
            [Entity::new(alice.clone(), Default::default(), [group].into()).unwrap()],
            None,
        )
        .unwrap();
        let request = |context| {
            Request::new(
                alice.clone(),
                EntityUid::from_str(r#"Warrant::Action::"deploy""#).unwrap(),
                EntityUid::from_str(r#"Warrant::Resource::"prod/api""#).unwrap(),
                context,
                None,
            )
            .unwrap()
        };
        let allowed = request(cedar_context());
        let authorizer = Authorizer::new();
        assert_eq!(authorizer.is_authorized(&allowed, &policies, &entities).decision(), Decision::Allow);
        Self { unknown_principal: request(Context::empty()), policies, entities, allowed, authorizer }
    }
}

fn cedar_cases(c: &CedarSetup) -> Vec<Case<'_>> {
    use cedar_policy::{Entities, PolicySet};
    use std::str::FromStr;
    vec![
        case(
            "cedar-policy is_authorized, request that matches (allow)",
            |n| vec![(); n],
            move |_| {
                black_box(c.authorizer.is_authorized(&c.allowed, &c.policies, &c.entities));
            },
        ),
        case(
            "cedar-policy is_authorized, principal not in group (deny)",
            |n| vec![(); n],
            move |_| {
                black_box(c.authorizer.is_authorized(&c.unknown_principal, &c.policies, &Entities::empty()));
            },
        ),
        case(
            "cedar-policy context of 2 records, 3 values",
            |n| vec![(); n],
            |_| {
                black_box(cedar_context());
            },
        ),
        case(
            "cedar-policy parse of the grant's policy set",
            |n| vec![(); n],
            |_| {
                black_box(PolicySet::from_str(black_box(common::POLICY)).unwrap());
            },
        ),
    ]
}
