//! Verification speed, side by side with the baselines issue #2 names, in one run.
//!
//! Run on one core (numbers and the machine in docs/PERFORMANCE.md):
//!     taskset -c 0 cargo bench -p warrant-envelope --bench verify
//!
//! Each case is timed in 21 samples of enough operations to last ~10 ms; the table gives the
//! median per operation and its ratio to one bare ES256 verification with aws-lc-rs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use common::{request, Fixture, TestKey};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use warrant_envelope::MemoryReplayStore;

const SAMPLES: usize = 21;
const SAMPLE_TARGET: Duration = Duration::from_millis(10);

struct Row {
    name: &'static str,
    median: Duration,
}

/// Times `op` over inputs made by `make` (fresh inputs for operations that consume them).
fn bench<T>(name: &'static str, mut make: impl FnMut(usize) -> Vec<T>, mut op: impl FnMut(&T)) -> Row {
    let probe = make(64);
    let start = Instant::now();
    for input in &probe {
        op(input);
    }
    let per_op = start.elapsed() / probe.len() as u32;
    let per_sample = ((SAMPLE_TARGET.as_nanos() / per_op.as_nanos().max(1)) as usize).clamp(1, 20_000);
    let inputs = make(per_sample * SAMPLES);
    let mut samples: Vec<Duration> = inputs
        .chunks(per_sample)
        .map(|chunk| {
            let start = Instant::now();
            for input in chunk {
                op(input);
            }
            start.elapsed() / chunk.len() as u32
        })
        .collect();
    samples.sort();
    Row { name, median: samples[SAMPLES / 2] }
}

fn main() {
    let f = Fixture::new();
    let mut rows = Vec::new();

    // ---- bare signatures --------------------------------------------------------------------
    let message = f.warrant(); // ~1.1 KB, the size of what a warrant signature covers
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let sig = pair.sign(&rng, &message).unwrap();
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()).unwrap();
    rows.push(bench(
        "ES256 verify, aws-lc-rs (baseline)",
        |n| vec![(); n],
        |_| parsed.verify_sig(black_box(&message), black_box(sig.as_ref())).unwrap(),
    ));
    let p256_key = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let p256_sig: p256::ecdsa::Signature = p256_key.sign(&message);
    let p256_vk = *p256_key.verifying_key();
    rows.push(bench(
        "ES256 verify, p256 0.13",
        |n| vec![(); n],
        |_| p256_vk.verify(black_box(&message), black_box(&p256_sig)).unwrap(),
    ));

    // ---- warrants ---------------------------------------------------------------------------
    let fresh_warrants = |n: usize| (0..n).map(|_| f.warrant()).collect::<Vec<_>>();
    let hot = f.verifier();
    hot.verify(&f.warrant(), &request(), None).unwrap(); // the grant is now cached
    rows.push(bench("warrant verify, grant seen before", fresh_warrants, |w| {
        hot.verify(black_box(w), &request(), None).unwrap();
    }));
    let evaluating = f.builder().decision_cache_capacity(0).build().unwrap();
    evaluating.install_status_list(&f.status).unwrap();
    evaluating.verify(&f.warrant(), &request(), None).unwrap();
    rows.push(bench("warrant verify, grant seen, policy evaluated", fresh_warrants, |w| {
        evaluating.verify(black_box(w), &request(), None).unwrap();
    }));
    let cold = f
        .builder()
        .grant_cache_capacity(0)
        .decision_cache_capacity(0)
        .replay_store(Arc::new(MemoryReplayStore::new(1 << 20)))
        .build()
        .unwrap();
    cold.install_status_list(&f.status).unwrap();
    rows.push(bench("warrant verify, cold (nothing cached)", fresh_warrants, |w| {
        cold.verify(black_box(w), &request(), None).unwrap();
    }));

    // ---- peers ------------------------------------------------------------------------------
    rows.push(jsonwebtoken_case());
    rows.push(biscuit_case(
        "biscuit-auth 6 parse+verify+authorize, 2 blocks, Ed25519",
        biscuit_auth::Algorithm::Ed25519,
    ));
    rows.push(biscuit_case(
        "biscuit-auth 6 parse+verify+authorize, 2 blocks, P-256",
        biscuit_auth::Algorithm::Secp256r1,
    ));
    rows.extend(cedar_cases());

    // ---- signing ----------------------------------------------------------------------------
    rows.push(bench(
        "ES256 sign, aws-lc-rs",
        |n| vec![(); n],
        |_| {
            black_box(pair.sign(&rng, black_box(&message)).unwrap());
        },
    ));
    rows.push(bench(
        "ES256 sign, p256 0.13",
        |n| vec![(); n],
        |_| {
            let s: p256::ecdsa::Signature = p256_key.sign(black_box(&message));
            black_box(s);
        },
    ));
    let device = TestKey::new();
    let claims = f.warrant_claims();
    rows.push(bench(
        "warrant build + sign, aws-lc-rs key",
        |n| vec![(); n],
        |_| {
            black_box(claims.sign(&device).unwrap());
        },
    ));

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
    println!("  warrant size with its grant:        {} bytes", f.warrant().len());
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}

fn jsonwebtoken_case() -> Row {
    use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Claims {
        iss: String,
        sub: String,
        aud: String,
        exp: u64,
        iat: u64,
        jti: String,
        action: String,
        resource: String,
    }
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = Claims {
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
        encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();
    let key = DecodingKey::from_ec_der(pair.public_key().as_ref());
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://api.example.com"]);
    validation.set_issuer(&["acme-authority"]);
    decode::<Claims>(&token, &key, &validation).unwrap();
    bench(
        "jsonwebtoken 12 ES256 decode+verify+validate, aws-lc-rs",
        |n| vec![(); n],
        |_| {
            black_box(decode::<Claims>(black_box(&token), &key, &validation).unwrap());
        },
    )
}

fn biscuit_case(name: &'static str, algorithm: biscuit_auth::Algorithm) -> Row {
    use biscuit_auth::macros::{authorizer, biscuit, block};
    use biscuit_auth::{Biscuit, KeyPair};
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
    let public = root.public();
    bench(
        name,
        |n| vec![(); n],
        |_| {
            let parsed = Biscuit::from(black_box(&token), public).unwrap();
            let mut authorizer = authorizer!(
                r#"resource("prod/api"); operation("deploy"); allow if right("prod/api", "deploy");"#
            )
            .build(&parsed)
            .unwrap();
            authorizer.authorize().unwrap();
        },
    )
}

fn cedar_cases() -> Vec<Row> {
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression,
    };
    use std::str::FromStr;
    let policies = PolicySet::from_str(common::POLICY).unwrap();
    let alice = EntityUid::from_str(r#"Warrant::Principal::"alice""#).unwrap();
    let group = EntityUid::from_str(r#"Warrant::Group::"deployers""#).unwrap();
    let entities = Entities::from_entities(
        [Entity::new(alice.clone(), Default::default(), [group].into()).unwrap()],
        None,
    )
    .unwrap();
    let context = || {
        let s = |v: &str| RestrictedExpression::new_string(v.into());
        Context::from_pairs([
            (
                "request".to_owned(),
                RestrictedExpression::new_record([
                    ("method".to_owned(), s("POST")),
                    ("target".to_owned(), s(common::TARGET)),
                ])
                .unwrap(),
            ),
            (
                "claims".to_owned(),
                RestrictedExpression::new_record([("ci_job".to_owned(), s("release-42"))]).unwrap(),
            ),
        ])
        .unwrap()
    };
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
    let allowed = request(context());
    let authorizer = Authorizer::new();
    assert_eq!(authorizer.is_authorized(&allowed, &policies, &entities).decision(), Decision::Allow);
    let unknown_principal = request(Context::empty());
    vec![
        bench(
            "cedar-policy is_authorized, request that matches (allow)",
            |n| vec![(); n],
            |_| {
                black_box(authorizer.is_authorized(&allowed, &policies, &entities));
            },
        ),
        bench(
            "cedar-policy is_authorized, principal not in group (deny)",
            |n| vec![(); n],
            |_| {
                black_box(authorizer.is_authorized(&unknown_principal, &policies, &Entities::empty()));
            },
        ),
        bench(
            "cedar-policy context of 2 records, 3 values",
            |n| vec![(); n],
            |_| {
                black_box(context());
            },
        ),
        bench(
            "cedar-policy parse of the grant's policy set",
            |n| vec![(); n],
            |_| {
                black_box(PolicySet::from_str(black_box(common::POLICY)).unwrap());
            },
        ),
    ]
}
