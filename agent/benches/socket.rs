//! warrantd against in-process signing and against OpenSSH's ssh-agent, in one run.
//!
//! For 1, 4 and 16 clients (threads, each with one persistent connection), it times:
//! - in-process: building and signing the same warrant with the software key store directly
//!   (what warrantd itself does per request), no socket;
//! - warrantd (audit fsync=batch) and warrantd (audit fsync=line): `POST /v1/sign` round trips;
//! - ssh-agent: `ssh-agent -D -a SOCKET` with an ECDSA P-256 key, SSH_AGENTC_SIGN_REQUEST round
//!   trips over 1 KiB of data;
//! - warrantd with a minimal blocking HTTP client instead of the client library.
//!
//! Systems and client counts are interleaved in rounds so drift affects all alike. Prints p50,
//! p99 and throughput, and the ratios docs/PERFORMANCE.md reports.
//!
//! Run: `cargo bench -p warrant-agent --bench socket` (needs ssh-agent, ssh-keygen, ssh-add).
//! `-- FILTER` keeps only the systems whose name contains FILTER (for profiling one of them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::AUDIENCE;
use warrant_agent::device::{self, WarrantRequest};
use warrant_agent::key_signer::KeySigner;
use warrant_api as api;
use warrant_client::Client;
use warrant_envelope::device::{sha256, RequestBinding};
use warrant_hsm_backends::soft::SoftKeyStore;
use warrant_hsm_backends::KeyName;

const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_millis(1000);
const CLIENTS: [usize; 3] = [1, 4, 16];

/// A system under test: makes one client's worth of state, then one operation per call.
trait System: Sync {
    fn name(&self) -> &str;
    fn client(&self) -> Box<dyn FnMut() + Send + '_>;
}

struct InProcess {
    store: SoftKeyStore,
    grant: Vec<u8>,
}

impl System for InProcess {
    fn name(&self) -> &str {
        "in-process"
    }
    fn client(&self) -> Box<dyn FnMut() + Send + '_> {
        let key = KeySigner::new(&self.store, KeyName::new("laptop").unwrap()).unwrap();
        let binding = RequestBinding {
            method: "POST".into(),
            target: "https://api.example.com/v1/deploy".into(),
            body_sha256: sha256(b"{}"),
        };
        Box::new(move || {
            let request = WarrantRequest {
                grant: &self.grant,
                audience: AUDIENCE,
                action: "deploy",
                resource: "prod/api",
                request: binding.clone(),
                context: BTreeMap::new(),
                nonce: None,
                lifetime: 60,
                status_lists: None,
            };
            std::hint::black_box(device::sign_warrant(&key, &request).unwrap());
        })
    }
}

struct Warrantd {
    name: String,
    socket: PathBuf,
    grant: Vec<u8>,
}

impl System for Warrantd {
    fn name(&self) -> &str {
        &self.name
    }
    fn client(&self) -> Box<dyn FnMut() + Send + '_> {
        let mut client = Client::new(&self.socket).unwrap();
        let request = common::sign_request(&self.grant, AUDIENCE);
        Box::new(move || {
            let answer: api::SignResponse = client.post("/sign", &request).unwrap();
            std::hint::black_box(answer);
        })
    }
}

/// warrantd with a minimal blocking HTTP/1.1 client, to show what the client library costs.
struct WarrantdRaw {
    socket: PathBuf,
    grant: Vec<u8>,
}

impl System for WarrantdRaw {
    fn name(&self) -> &str {
        "warrantd, raw client (fsync=batch)"
    }
    fn client(&self) -> Box<dyn FnMut() + Send + '_> {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        let body = serde_json::to_string(&common::sign_request(&self.grant, AUDIENCE)).unwrap();
        let request = format!(
            "POST /v1/sign HTTP/1.1\r\nhost: w\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut buf = vec![0u8; 64 * 1024];
        Box::new(move || {
            stream.write_all(request.as_bytes()).unwrap();
            let mut have = 0;
            loop {
                have += stream.read(&mut buf[have..]).unwrap();
                let text = &buf[..have];
                if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = std::str::from_utf8(&text[..end]).unwrap().to_ascii_lowercase();
                    assert!(head.starts_with("http/1.1 200"), "{head}");
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    if have >= end + 4 + length {
                        break;
                    }
                }
            }
        })
    }
}

struct SshAgent {
    socket: PathBuf,
    key_blob: Vec<u8>,
}

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn ssh_round_trip(stream: &mut UnixStream, message: &[u8]) -> Vec<u8> {
    let mut framed = (message.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut answer = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer).unwrap();
    answer
}

impl SshAgent {
    /// The first identity's public key blob (SSH2_AGENTC_REQUEST_IDENTITIES = 11).
    fn first_key(socket: &Path) -> Vec<u8> {
        let mut stream = UnixStream::connect(socket).unwrap();
        let answer = ssh_round_trip(&mut stream, &[11]);
        assert_eq!(answer[0], 12, "SSH2_AGENT_IDENTITIES_ANSWER");
        assert!(u32::from_be_bytes(answer[1..5].try_into().unwrap()) >= 1, "ssh-agent holds no key");
        let len = u32::from_be_bytes(answer[5..9].try_into().unwrap()) as usize;
        answer[9..9 + len].to_vec()
    }
}

impl System for SshAgent {
    fn name(&self) -> &str {
        "ssh-agent"
    }
    fn client(&self) -> Box<dyn FnMut() + Send + '_> {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        // SSH2_AGENTC_SIGN_REQUEST = 13: key blob, data, flags.
        let mut message = vec![13];
        ssh_string(&mut message, &self.key_blob);
        ssh_string(&mut message, &[0x5a; 1024]);
        message.extend_from_slice(&0u32.to_be_bytes());
        Box::new(move || {
            let answer = ssh_round_trip(&mut stream, &message);
            assert_eq!(answer[0], 14, "SSH2_AGENT_SIGN_RESPONSE");
        })
    }
}

#[derive(Default)]
struct Samples {
    latencies_ns: Vec<u64>,
    ops: u64,
    elapsed: Duration,
}

/// `clients` threads call `system` as fast as they can for `SLICE`.
fn run_slice(system: &dyn System, clients: usize, into: &mut Samples) {
    let latencies = support::run_clients(clients, SLICE, &|| system.client());
    into.ops += latencies.len() as u64;
    into.latencies_ns.extend(latencies);
    into.elapsed += SLICE;
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_warrantd(dir: &Path, fsync: &str) -> (Process, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let uid = nix::unistd::getuid().as_raw();
    let config = warrant_agent::daemon::config::single_user(dir, uid, AUDIENCE)
        .replace("[audit]\n", &format!("[audit]\nfsync = \"{fsync}\"\n"));
    std::fs::write(dir.join("agent.toml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_warrantd"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("WARRANTD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.join("run/agent.sock");
    wait_for(&socket);
    (Process(child), socket)
}

/// A device key and a grant for it, made through `socket`.
fn enroll(socket: &Path) -> Vec<u8> {
    let mut client = Client::new(socket).unwrap();
    common::init_authority(&mut client, "bench");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    common::grant_for(&mut client, "laptop", "alice", true)
}

fn start_ssh_agent(dir: &Path) -> (Process, PathBuf) {
    let socket = dir.join("ssh-agent.sock");
    let child =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&socket).stdout(Stdio::null()).spawn().unwrap();
    wait_for(&socket);
    let key = dir.join("id_ecdsa");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("ssh-add").arg("-q").arg(&key).env("SSH_AUTH_SOCK", &socket).status().unwrap();
    assert!(status.success());
    (Process(child), socket)
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters systems by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--")).unwrap_or_default();
    let tmp = tempfile::tempdir().unwrap();
    let (_batch_daemon, batch_socket) = start_warrantd(&tmp.path().join("batch"), "batch");
    let (_line_daemon, line_socket) = start_warrantd(&tmp.path().join("line"), "line");
    let grant = enroll(&batch_socket);
    let line_grant = enroll(&line_socket);
    let (_agent, agent_socket) = start_ssh_agent(tmp.path());

    let systems: Vec<Box<dyn System>> = vec![
        Box::new(InProcess {
            store: SoftKeyStore::open(tmp.path().join("batch/state/keys")).unwrap(),
            grant: grant.clone(),
        }),
        Box::new(Warrantd {
            name: "warrantd (audit fsync=batch)".into(),
            socket: batch_socket.clone(),
            grant: grant.clone(),
        }),
        Box::new(Warrantd {
            name: "warrantd (audit fsync=line)".into(),
            socket: line_socket,
            grant: line_grant,
        }),
        Box::new(SshAgent { key_blob: SshAgent::first_key(&agent_socket), socket: agent_socket }),
        Box::new(WarrantdRaw { socket: batch_socket, grant }),
    ];
    if !filter.is_empty() {
        for (i, system) in systems.iter().enumerate().filter(|(_, s)| s.name().contains(&filter)) {
            eprintln!("{} only", system.name());
            let mut s = Samples::default();
            for &clients in &CLIENTS {
                for _ in 0..ROUNDS {
                    run_slice(system.as_ref(), clients, &mut s);
                }
            }
            println!("{i}: {} ops", s.ops);
        }
        return;
    }
    let mut samples: BTreeMap<(usize, usize), Samples> = BTreeMap::new();
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        for &clients in &CLIENTS {
            for (i, system) in systems.iter().enumerate() {
                run_slice(system.as_ref(), clients, samples.entry((clients, i)).or_default());
            }
        }
    }

    println!("| clients | system | p50 (us) | p99 (us) | throughput (ops/s) |");
    println!("|---:|---|---:|---:|---:|");
    let mut table = BTreeMap::new();
    for ((clients, i), s) in &mut samples {
        s.latencies_ns.sort_unstable();
        let (p50, p99) =
            (support::percentile_us(&s.latencies_ns, 0.50), support::percentile_us(&s.latencies_ns, 0.99));
        let throughput = s.ops as f64 / s.elapsed.as_secs_f64();
        println!("| {clients} | {} | {p50:.0} | {p99:.0} | {throughput:.0} |", systems[*i].name());
        table.insert((*clients, *i), (p50, p99, throughput));
    }
    println!();
    let best_in_process = CLIENTS.iter().map(|c| table[&(*c, 0)].2).fold(0.0, f64::max);
    println!(
        "median added by the socket (1 client, fsync=batch): {:.0} us (target <= 100)",
        table[&(1, 1)].0 - table[&(1, 0)].0
    );
    println!(
        "16-client throughput vs best in-process: {:.0}% (fsync=batch), {:.0}% (fsync=line) (target >= 80%)",
        100.0 * table[&(16, 1)].2 / best_in_process,
        100.0 * table[&(16, 2)].2 / best_in_process
    );
    for clients in CLIENTS {
        let (w, s) = (table[&(clients, 1)], table[&(clients, 3)]);
        println!(
            "{clients} client(s): ssh-agent/warrantd p50 {:.2}x, warrantd/ssh-agent throughput {:.2}x",
            s.0 / w.0,
            w.2 / s.2
        );
    }
}
