//! TPM-backed warrants through warrantd against the bare tss-esapi sign on the same swtpm, in
//! one run. One client (a TPM executes one command at a time). swtpm serves one connection at a
//! time, so the phases take turns on it, interleaved over 5 rounds of 2 s each:
//! - bare tss-esapi: ECDSA P-256 TPM2_Sign of a digest with a loaded key, password session;
//! - warrantd, no quote (`quote_pcrs = "none"`), audit `fsync = "batch"` and `"line"`;
//! - warrantd, a TPM2_Quote of SHA-256 PCRs 0-7 in every warrant;
//! - warrantd, a cached quote (`quote_cache_seconds = 3600`), bound to the status list each
//!   sign request carries.
//!
//! Run: `cargo bench -p warrant-agent --features tpm --bench tpm` (needs swtpm, swtpm-tools).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;
mod support;
use warrant_test_support::swtpm;

use common::AUDIENCE;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Digest, EccScheme, HashScheme, HashcheckTicket, SignatureScheme, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::utils::{create_restricted_decryption_rsa_public, create_unrestricted_signing_ecc_public};
use tss_esapi::Context;
use warrant_api as api;
use warrant_hsm_backends::tpm::tss_esapi;

const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_secs(2);

/// The bare tss-esapi signer: its own context, SRK and loaded key; one sign per call.
fn bare(tcti: &str) -> impl FnMut() {
    let mut ctx = Context::new(TctiNameConf::from_str(tcti).unwrap()).unwrap();
    ctx.set_sessions((Some(AuthSession::Password), None, None));
    let srk_template = create_restricted_decryption_rsa_public(
        SymmetricDefinitionObject::AES_128_CFB,
        tss_esapi::interface_types::key_bits::RsaKeyBits::Rsa2048,
        tss_esapi::structures::RsaExponent::default(),
    )
    .unwrap();
    let srk = ctx.create_primary(Hierarchy::Owner, srk_template, None, None, None, None).unwrap().key_handle;
    let template = create_unrestricted_signing_ecc_public(
        EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
        EccCurve::NistP256,
    )
    .unwrap();
    let key = ctx.create(srk, template, None, None, None, None).unwrap();
    let key = ctx.load(srk, key.out_private, key.out_public).unwrap();
    let digest = Digest::try_from(vec![7u8; 32]).unwrap();
    move || {
        let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
            tag: TPM2_ST_HASHCHECK,
            hierarchy: TPM2_RH_NULL,
            digest: Default::default(),
        })
        .unwrap();
        std::hint::black_box(ctx.sign(key, digest.clone(), SignatureScheme::Null, ticket).unwrap());
    }
}

fn config(dir: &Path, tpm: &swtpm::Swtpm, keystore: &str, fsync: &str) -> std::path::PathBuf {
    let uid = nix::unistd::getuid().as_raw();
    let text = warrant_agent::daemon::config::single_user(dir, uid, AUDIENCE).replacen(
        "[audit]\n",
        &format!(
            "[keystore]\nbackend = \"tpm\"\ntcti = \"{}\"\n{keystore}\n[authority]\ntpm_ek_roots = [\"{}\"]\n\n[audit]\nfsync = \"{fsync}\"\n",
            tpm.tcti(),
            dir.join("ek-ca.pem").display()
        ),
        1,
    );
    let path = dir.join(format!("agent-{}.toml", text.len()));
    std::fs::write(&path, text).unwrap();
    path
}

fn start(dir: &Path, config: &Path) -> common::Daemon {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warrantd"));
    command.env("TSS2_LOG", "all+none");
    common::start_command(dir, config, command).unwrap()
}

/// Enrolls key `laptop` by credential activation and returns its grant and the authority's
/// status list.
fn enroll(client: &mut warrant_client::Client) -> (Vec<u8>, Vec<u8>) {
    common::init_authority(client, "bench");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    let identity: api::TpmIdentity = client.get("/tpm/identity").unwrap();
    let challenge: api::ChallengeResponse = client
        .post(
            "/authority/challenges",
            &api::ChallengeRequest { ttl: 60, principal: Some("alice".into()), tpm_identity: Some(identity) },
        )
        .unwrap();
    let request = api::EnrollRequest {
        key: "laptop".into(),
        principal: "alice".into(),
        challenge: None,
        tpm_credential: challenge.tpm_credential,
    };
    let enrollment: api::EnrollResponse = client.post("/enroll", &request).unwrap();
    let request = api::GrantRequest {
        enrollment: enrollment.enrollment,
        principal: None,
        policy: common::POLICY.into(),
        groups: vec!["deployers".into()],
        attributes: Default::default(),
        valid_for: 3600,
        max_warrant_ttl: 300,
        allow_software: false,
        allow_self_reported: false,
    };
    let grant = client.post::<_, api::GrantResponse>("/authority/grants", &request).unwrap().grant;
    let list: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None }).unwrap();
    (grant, list.list)
}

fn main() {
    std::env::set_var("TSS2_LOG", "all+none");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tpm = swtpm::Swtpm::start();
    std::fs::write(dir.join("ek-ca.pem"), tpm.ek_ca_pem()).unwrap();
    let daemons = [
        ("warrantd, no quote, audit fsync batch", config(dir, &tpm, "quote_pcrs = \"none\"", "batch")),
        (
            "warrantd, no quote, audit fsync line (default)",
            config(dir, &tpm, "quote_pcrs = \"none\"", "line"),
        ),
        ("warrantd, quote per warrant (sha256:0-7), batch", config(dir, &tpm, "", "batch")),
        ("warrantd, cached quote (3600 s), batch", config(dir, &tpm, "quote_cache_seconds = 3600", "batch")),
    ];
    let (grant, list) = {
        let d = start(dir, &daemons[0].1);
        let enrolled = enroll(&mut d.client());
        d.stop();
        enrolled
    };
    // Every request carries the list, as a device told of each new list would (without one, a
    // cached-quote daemon quotes for each warrant).
    let request = api::SignRequest { status_list: Some(list), ..common::sign_request(&grant, AUDIENCE) };

    let mut bare_lat = Vec::new();
    let mut daemon_lat: Vec<Vec<u64>> = vec![Vec::new(); daemons.len()];
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        bare_lat.extend(support::run_clients(1, SLICE, &|| bare(&tpm.tcti())));
        for (i, (_, config)) in daemons.iter().enumerate() {
            let d = start(dir, config);
            let socket = d.socket.clone();
            let through = || {
                let mut client = warrant_client::Client::new(&socket).unwrap();
                let request = request.clone();
                move || {
                    let answer: api::SignResponse = client.post("/sign", &request).unwrap();
                    std::hint::black_box(answer);
                }
            };
            daemon_lat[i].extend(support::run_clients(1, SLICE, &through));
            d.stop();
        }
    }

    println!("| system (1 client, swtpm) | p50 (us) | p99 (us) | ops/s | p50 / bare |");
    println!("|---|---:|---:|---:|---:|");
    bare_lat.sort_unstable();
    let base = support::percentile_us(&bare_lat, 0.5);
    let seconds = ROUNDS as f64 * SLICE.as_secs_f64();
    let row = |name: &str, lat: &[u64]| {
        let p50 = support::percentile_us(lat, 0.5);
        println!(
            "| {name} | {p50:.0} | {:.0} | {:.0} | {:.2}x |",
            support::percentile_us(lat, 0.99),
            lat.len() as f64 / seconds,
            p50 / base
        );
    };
    row("bare tss-esapi TPM2_Sign", &bare_lat);
    for ((name, _), lat) in daemons.iter().zip(daemon_lat.iter_mut()) {
        lat.sort_unstable();
        row(name, lat);
    }
}
