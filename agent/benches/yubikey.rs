//! Warrants signed with a YubiKey key through warrantd against the bare `yubikey` crate sign
//! on the same card (the virtual PIV card behind pcscd), in one run: one client, 5 rounds of
//! 3 s per phase, interleaved. The daemon holds the card; the bare signer opens it alongside
//! (PC/SC shared mode) and leaves it unreset.
//!
//! Run: `WARRANT_VIRTUAL_PIV=target/debug/virtual-piv cargo bench -p warrant-agent --features
//! yubikey --bench yubikey` (pcscd with vsmartcard-vpcd running; `scripts/test` sets both up).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;
mod support;
use warrant_test_support::virtual_piv;

use common::AUDIENCE;
use warrant_api as api;
use warrant_hsm_backends::yubikey::yubikey::piv::{self, AlgorithmId, SlotId};
use warrant_hsm_backends::yubikey::yubikey::{Serial, YubiKey};
use warrant_hsm_backends::yubikey::{setup, SetupOptions};
use zeroize::Zeroizing;

const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_secs(3);
const PIN: &str = "24681357";

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _card = virtual_piv::VirtualCard::insert(&dir.join("card"), &[]);
    setup(&SetupOptions {
        serial: Some(virtual_piv::SERIAL),
        pin: Zeroizing::new("123456".into()),
        new_pin: Some(Zeroizing::new(PIN.into())),
        puk: Zeroizing::new("12345678".into()),
        new_puk: Some(Zeroizing::new("97531864".into())),
        allow_default_pin_puk: false,
    })
    .unwrap();
    let pin_file = dir.join("pin");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&pin_file)
        .unwrap();
    std::io::Write::write_all(&mut f, PIN.as_bytes()).unwrap();
    let uid = nix::unistd::getuid().as_raw();
    let config = warrant_agent::daemon::config::single_user(dir, uid, AUDIENCE).replacen(
        "[audit]\n",
        &format!(
            "[keystore]\nbackend = \"yubikey\"\nserial_number = {}\nslots = [\"82\", \"83\"]\npin_file = \"{}\"\n\n[authority]\nyubikey_roots = [\"{}\"]\n\n[audit]\nfsync = \"batch\"\n",
            virtual_piv::SERIAL,
            pin_file.display(),
            dir.join("card/ca.pem").display()
        ),
        1,
    );
    std::fs::write(dir.join("agent.toml"), config).unwrap();
    let d = common::start_command(dir, &dir.join("agent.toml"), Command::new(env!("CARGO_BIN_EXE_warrantd")))
        .unwrap();
    let mut client = d.client();
    common::init_authority(&mut client, "bench"); // issuance key in slot 82
    let key: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap(); // slot 83
    let grant = common::grant_for(&mut client, "laptop", "alice", false);
    let request = common::sign_request(&grant, AUDIENCE);
    drop(key);

    let bare = || {
        let mut yk = YubiKey::open_by_serial(Serial(virtual_piv::SERIAL)).unwrap();
        yk.verify_pin(PIN.as_bytes()).unwrap();
        let digest = [7u8; 32];
        let mut yk = Some(yk);
        move || {
            let card = yk.as_mut().unwrap();
            std::hint::black_box(
                piv::sign_data(card, &digest, AlgorithmId::EccP256, SlotId::Retired(piv::RetiredSlotId::R2))
                    .unwrap(),
            );
        }
    };
    let socket = d.socket.clone();
    let through = || {
        let mut client = warrant_client::Client::new(&socket).unwrap();
        let request = request.clone();
        move || {
            let answer: api::SignResponse = client.post("/sign", &request).unwrap();
            std::hint::black_box(answer);
        }
    };
    let (mut bare_lat, mut daemon_lat) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        bare_lat.extend(support::run_clients(1, SLICE, &bare));
        daemon_lat.extend(support::run_clients(1, SLICE, &through));
    }
    bare_lat.sort_unstable();
    daemon_lat.sort_unstable();
    println!("| 1 client, virtual PIV card | p50 (us) | p99 (us) | ops/s |");
    println!("|---|---:|---:|---:|");
    let seconds = ROUNDS as f64 * SLICE.as_secs_f64();
    for (name, lat) in
        [("bare yubikey crate sign_data", &bare_lat), ("warrantd, warrant signed on the card", &daemon_lat)]
    {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            support::percentile_us(lat, 0.5),
            support::percentile_us(lat, 0.99),
            lat.len() as f64 / seconds
        );
    }
    let (b, w) = (support::percentile_us(&bare_lat, 0.5), support::percentile_us(&daemon_lat, 0.5));
    println!("\ndaemon's share of a warrant at the median: {:.1}% (target < 10%)", 100.0 * (w - b) / w);
    let (b, w) = (support::percentile_us(&bare_lat, 0.99), support::percentile_us(&daemon_lat, 0.99));
    println!("daemon's share at p99: {:.1}%", 100.0 * (w - b) / w);
}
