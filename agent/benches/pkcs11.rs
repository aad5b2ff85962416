//! Warrants signed with a SoftHSM2 key through warrantd against raw cryptoki signing, in one
//! run: 8 clients (threads). warrantd: `POST /v1/sign` with the device key on the token, each
//! client one persistent connection. Raw cryptoki: each thread its own logged-in session,
//! CKM_ECDSA over a SHA-256 digest. Both interleaved over 5 rounds of 1 s each.
//!
//! Run: `cargo bench -p warrant-agent --bench pkcs11` (needs softhsm2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::process::Command;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::AUDIENCE;
use warrant_api as api;
use warrant_client::Client;
use warrant_envelope::device::sha256;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "246810";
const CLIENTS: usize = 8;
const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_secs(1);

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let conf = common::softhsm(dir, "bench", PIN);
    std::env::set_var("SOFTHSM2_CONF", &conf);

    let uid = nix::unistd::getuid().as_raw();
    let config = warrant_agent::daemon::config::single_user(dir, uid, AUDIENCE).replacen(
        "[audit]\n",
        &format!(
            "[keystore]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken = \"bench\"\npin_env = \"BENCH_PIN\"\n\n[audit]\nfsync = \"batch\"\n"
        ),
        1,
    );
    std::fs::write(dir.join("agent.toml"), config).unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_warrantd"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("BENCH_PIN", PIN)
        .env("WARRANTD_LOG", "warn")
        .spawn()
        .unwrap();
    let socket = dir.join("run/agent.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "warrantd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = Client::new(&socket).unwrap();
    common::init_authority(&mut client, "bench");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    let grant = common::grant_for(&mut client, "laptop", "alice", true);
    let request = common::sign_request(&grant, AUDIENCE);

    // Raw cryptoki in this process: one session per thread, on the same token and key.
    let ctx = Pkcs11::new(MODULE).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "bench")
        .unwrap();
    let raw = || {
        let session = ctx.open_rw_session(slot).unwrap();
        let _ = session.login(UserType::User, Some(&AuthPin::from(PIN.to_owned())));
        let key = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"laptop".to_vec())])
            .unwrap()[0];
        let digest = sha256(b"bench");
        move || {
            std::hint::black_box(session.sign(&Mechanism::Ecdsa, key, &digest).unwrap());
        }
    };
    let through = || {
        let mut client = Client::new(&socket).unwrap();
        let request = request.clone();
        move || {
            let answer: api::SignResponse = client.post("/sign", &request).unwrap();
            std::hint::black_box(answer);
        }
    };

    let (mut raw_lat, mut daemon_lat) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        raw_lat.extend(support::run_clients(CLIENTS, SLICE, &raw));
        daemon_lat.extend(support::run_clients(CLIENTS, SLICE, &through));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();

    println!("| system ({CLIENTS} clients) | p50 (us) | p99 (us) | throughput (ops/s) |");
    println!("|---|---:|---:|---:|");
    let seconds = ROUNDS as f64 * SLICE.as_secs_f64();
    let mut rows = Vec::new();
    for (name, latencies) in [
        ("raw cryptoki, session per thread", &mut raw_lat),
        ("warrantd sign, key on SoftHSM", &mut daemon_lat),
    ] {
        latencies.sort_unstable();
        let throughput = latencies.len() as f64 / seconds;
        println!(
            "| {name} | {:.0} | {:.0} | {throughput:.0} |",
            support::percentile_us(latencies, 0.5),
            support::percentile_us(latencies, 0.99)
        );
        rows.push(throughput);
    }
    println!("\nwarrantd / raw cryptoki throughput: {:.0}% (target >= 80%)", 100.0 * rows[1] / rows[0]);
}
