//! A legitimate caller's latency (`GET /v1/keys` on a kept-alive connection) while another
//! uid attacks warrantd, against the same caller without an attack, in one run:
//! - baseline: no attack;
//! - 1,000 idle connections, reopened as the daemon closes them;
//! - 16 clients that pipeline requests and never read an answer, reopened as they are closed;
//! - a refusal flood: two connections sending refused requests as fast as answers come.
//!
//! The attacks run in a separate process: this binary again, as the `warrant-test` user when
//! run as root (a real second uid; created like the tests do), else as this uid. The daemon
//! runs with its default limits. Cases are interleaved in rounds so drift affects all alike.
//! Prints p50 and p99 and their ratios to the baseline, for docs/PERFORMANCE.md.
//!
//! Run: `cargo bench -p warrant-agent --bench hostile`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use warrant_api as api;
use warrant_client::Client;

const ROUNDS: usize = 3;
const SLICE: Duration = Duration::from_secs(3);
const ATTACKS: [(&str, usize); 4] = [("baseline", 0), ("idle", 1000), ("nonread", 16), ("flood", 2)];

fn main() {
    if let Ok(mode) = std::env::var("WARRANT_HOSTILE") {
        let socket = PathBuf::from(std::env::var("WARRANT_HOSTILE_SOCKET").unwrap());
        let count = std::env::var("WARRANT_HOSTILE_COUNT").unwrap().parse().unwrap();
        return attack(&mode, &socket, count);
    }
    let tmp = tempfile::Builder::new().prefix("warrant-hostile-bench-").tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let attacker = common::test_user();
    let me = nix::unistd::getuid().as_raw();
    let group = attacker.as_ref().map(|(_, name)| format!("socket_group = \"{name}\"\n")).unwrap_or_default();
    // This uid may list keys; the attacker (or this uid's keys.delete) is refused by default.
    let config = format!(
        "socket = \"{}\"\n{group}state_dir = \"{}\"\n[audit]\nfile = \"{}\"\n[[rules]]\nname = \"lister\"\nuids = [{me}]\noperations = [\"keys.list\"]\n",
        tmp.path().join("run/agent.sock").display(),
        tmp.path().join("state").display(),
        tmp.path().join("audit.jsonl").display(),
    );
    let d = common::start(tmp.path(), &config);
    let helper = std::env::current_exe().unwrap();
    let helper = common::reachable_copy(tmp.path(), helper.to_str().unwrap());
    let who = match &attacker {
        Some((uid, name)) => format!("uid {uid} ({name})"),
        None => format!("this uid ({me}; run as root for a second uid)"),
    };
    eprintln!("attacker: {who}");

    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); ATTACKS.len()];
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        for (i, (mode, count)) in ATTACKS.iter().enumerate() {
            let attack =
                (*count > 0).then(|| start_attack(&helper, attacker.as_ref(), mode, &d.socket, *count));
            if attack.is_some() {
                // Let the attack reach its steady state.
                std::thread::sleep(Duration::from_secs(2));
            }
            let socket = d.socket.clone();
            latencies[i].extend(support::run_clients(1, SLICE, &|| {
                let mut client = Client::new(&socket).unwrap();
                move || {
                    let keys: api::KeyList = client.get("/keys").unwrap();
                    std::hint::black_box(keys);
                }
            }));
            if let Some(mut attack) = attack {
                let _ = attack.kill();
                let _ = attack.wait();
            }
        }
    }
    println!("| legitimate caller, GET /v1/keys | p50 (us) | p99 (us) | p50 ratio | p99 ratio | requests |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut base = (0.0, 0.0);
    for (i, (mode, count)) in ATTACKS.iter().enumerate() {
        let l = &mut latencies[i];
        l.sort_unstable();
        let (p50, p99) = (support::percentile_us(l, 0.50), support::percentile_us(l, 0.99));
        if i == 0 {
            base = (p50, p99);
        }
        let name = match *mode {
            "baseline" => "no attack (**baseline**)".to_owned(),
            "idle" => format!("{count} idle connections"),
            "nonread" => format!("{count} clients not reading their answers"),
            _ => format!("refusal flood ({count} connections)"),
        };
        println!(
            "| {name} | {p50:.0} | {p99:.0} | {:.2}x | {:.2}x | {} |",
            p50 / base.0,
            p99 / base.1,
            l.len()
        );
    }
    let size = std::fs::metadata(tmp.path().join("audit.jsonl")).map(|m| m.len()).unwrap_or(0);
    println!("\naudit log after the run: {size} bytes");
}

fn start_attack(
    helper: &Path,
    attacker: Option<&(u32, String)>,
    mode: &str,
    socket: &Path,
    count: usize,
) -> Child {
    let mut command = Command::new(helper);
    command
        .env("WARRANT_HOSTILE", mode)
        .env("WARRANT_HOSTILE_SOCKET", socket)
        .env("WARRANT_HOSTILE_COUNT", count.to_string())
        .stdout(Stdio::null());
    if let Some((uid, _)) = attacker {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(*uid)).unwrap().unwrap();
        command.uid(*uid).gid(user.gid.as_raw());
    }
    command.spawn().unwrap()
}

/// The attacker's side: runs until killed.
fn attack(mode: &str, socket: &Path, count: usize) {
    // A thousand connections need more than the default 1024 descriptors' soft limit allows.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    match mode {
        "idle" => hold(socket, count, b""),
        "nonread" => hold(socket, count, &b"GET /v1/health HTTP/1.1\r\nhost: w\r\n\r\n".repeat(64)),
        _ => {
            let threads: Vec<_> = (0..count)
                .map(|_| {
                    let socket = socket.to_owned();
                    std::thread::spawn(move || loop {
                        let Ok(mut stream) = UnixStream::connect(&socket) else { continue };
                        loop {
                            let request =
                                b"DELETE /v1/keys/x HTTP/1.1\r\nhost: w\r\ncontent-length: 0\r\n\r\n";
                            if stream.write_all(request).is_err() || !read_answer(&mut stream) {
                                break;
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// `count` connections, each sent `request` until the daemon stops taking it; any the daemon
/// closes (or refuses) is opened again.
fn hold(socket: &Path, count: usize, request: &[u8]) {
    let mut streams: Vec<Option<UnixStream>> = (0..count).map(|_| None).collect();
    let mut buf = [0u8; 4096];
    loop {
        for slot in &mut streams {
            let alive = match slot {
                None => false,
                // Idle: open while a read would block.
                Some(s) if request.is_empty() => match s.read(&mut buf) {
                    Ok(n) => n > 0,
                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                },
                // Not reading: open while writes are taken or would block.
                Some(s) => match s.write(request) {
                    Ok(_) => true,
                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                },
            };
            if !alive {
                *slot = UnixStream::connect(socket).ok().inspect(|s| {
                    let _ = s.set_nonblocking(true);
                });
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads one answer (head and content-length body); false once the connection is closed.
fn read_answer(stream: &mut UnixStream) -> bool {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 256];
    loop {
        let n = match stream.read(&mut byte) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        buf.extend_from_slice(&byte[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return !head.contains("connection: close");
            }
        }
    }
}
