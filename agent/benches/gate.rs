//! `warrant gate` against nginx's `proxy_pass` and against the upstream alone, and the gate's
//! Redis replay store against its in-memory one, in one run.
//!
//! The upstream is nginx answering `return 200`; in front of it, nginx `proxy_pass` (keep-alive
//! to the upstream) and two `warrant gate`s (each request verified: one warrant each, signed
//! beforehand by warrantd), one remembering warrants in its memory, one in a private
//! redis-server on loopback (`--replay redis://127.0.0.1:PORT`). For 1 and 64 clients
//! (threads, each with one keep-alive connection) sending `POST /v1/deploy` with a 2-byte body,
//! it times every request; systems and client counts are interleaved in rounds, and each round
//! also runs `redis-benchmark` (`SET key 1 NX PX 360000`, keys shaped like the gate's, the same
//! client counts) against the same redis-server: the floor Redis itself sets. Prints p50, p99
//! and requests/s.
//!
//! Run: `cargo build --release -p warrant-cli && cargo bench -p warrant-agent --bench gate`
//! (needs nginx, redis-server and redis-tools).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::AUDIENCE;
use warrant_api as api;
use warrant_client::Client;

const ROUNDS: usize = 3;
const SLICE: Duration = Duration::from_millis(1000);
const CLIENTS: [usize; 2] = [1, 64];
/// Warrants signed beforehand: more than the gate serves in its slices.
const WARRANTS: usize = 60_000;
const ROUTES: &str =
    "[[route]]\nmethod = \"POST\"\npath = \"/v1/deploy\"\naction = \"deploy\"\nresource = \"prod/api\"\n";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx's master: stopped with SIGTERM, so that it stops its workers too (SIGKILL would
/// orphan them).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let _ = kill(nix::unistd::Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

fn start_nginx(dir: &Path, upstream: u16, proxy: u16) -> Nginx {
    let d = dir.display();
    let config = format!(
        "worker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/nginx.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 10000000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         upstream app {{ server 127.0.0.1:{upstream}; keepalive 128; }}\n\
         server {{ listen 127.0.0.1:{upstream}; location / {{ return 200 \"ok\\n\"; }} }}\n\
         server {{ listen 127.0.0.1:{proxy}; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let nginx = Nginx(child);
    wait_for_port(upstream);
    wait_for_port(proxy);
    nginx
}

fn start_warrantd(dir: &Path) -> (Process, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let uid = nix::unistd::getuid().as_raw();
    let config = warrant_agent::daemon::config::single_user(dir, uid, AUDIENCE);
    std::fs::write(dir.join("agent.toml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_warrantd"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("WARRANTD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.join("run/agent.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "warrantd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Process(child), socket)
}

/// `Authorization` header lines of `count` warrants for POST /v1/deploy with body `{}`.
fn sign_warrants(socket: &Path, grant: &[u8], count: usize) -> Vec<String> {
    let threads = 8;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut client = Client::new(socket).unwrap();
                    let mut request = common::sign_request(grant, AUDIENCE);
                    request.ttl = 300;
                    (0..count / threads)
                        .map(|_| {
                            let signed: api::SignResponse = client.post("/sign", &request).unwrap();
                            format!(
                                "authorization: {}\r\n",
                                warrant_http::authorization_value(&signed.warrant)
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// One keep-alive connection sending POST /v1/deploy; `auth` gives each request's
/// Authorization line (or nothing).
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    fn new(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream, buffer: Vec::with_capacity(4096) }
    }

    fn post(&mut self, authorization: &str) {
        let request = format!(
            "POST /v1/deploy HTTP/1.1\r\nhost: api.example.com\r\ncontent-type: application/json\r\n{authorization}content-length: 2\r\n\r\n{{}}"
        );
        self.stream.write_all(request.as_bytes()).unwrap();
        self.buffer.clear();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            self.buffer.extend_from_slice(&chunk[..n]);
            if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .expect("content-length");
        while self.buffer.len() < head_end + length {
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed in the body");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

#[derive(Default)]
struct Samples {
    latencies_ns: Vec<u64>,
    elapsed: Duration,
}

/// `clients` connections to `port` send requests for `SLICE` (or until the warrants run out).
fn run_slice(port: u16, clients: usize, warrants: Option<(&[String], &AtomicUsize)>, into: &mut Samples) {
    let barrier = Arc::new(Barrier::new(clients));
    let start = Instant::now();
    let latencies: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let mut connection = Connection::new(port);
                    let mut latencies = Vec::with_capacity(20_000);
                    barrier.wait();
                    let end = Instant::now() + SLICE;
                    while Instant::now() < end {
                        let authorization = match warrants {
                            Some((list, next)) => match list.get(next.fetch_add(1, Ordering::Relaxed)) {
                                Some(line) => line.as_str(),
                                None => break,
                            },
                            None => "",
                        };
                        let t = Instant::now();
                        connection.post(authorization);
                        latencies.push(t.elapsed().as_nanos() as u64);
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    into.elapsed += start.elapsed();
    into.latencies_ns.extend(latencies);
}

/// What `redis-benchmark --csv` reports for one run: requests/s, p50 and p99 in microseconds.
struct RedisBenchmark {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

/// `redis-benchmark` with `clients` connections sending `SET key 1 NX PX 360000` to `port`,
/// keys as long as the gate's (`warrant:replay:` and 64 characters, random ones).
fn redis_benchmark(port: u16, clients: usize) -> RedisBenchmark {
    let requests = if clients == 1 { 20_000 } else { 200_000 };
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-n", &requests.to_string(), "-r", "100000000", "--csv"])
        .args(["SET", "warrant:replay:0123456789abcdef0123456789abcdef0123456789abcdef0123__rand_int__"])
        .args(["1", "NX", "PX", "360000"])
        .output()
        .expect("redis-benchmark (Debian package redis-tools)");
    assert!(out.status.success(), "redis-benchmark: {}", String::from_utf8_lossy(&out.stderr));
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("\"SET")).unwrap_or_else(|| panic!("{text}"));
    let fields: Vec<f64> =
        line.rsplit("\",\"").take(7).map(|f| f.trim_matches('"').parse().unwrap()).collect::<Vec<_>>();
    // Taken from the end: max, p99, p95, p50, min, avg, rps.
    RedisBenchmark { rps: fields[6], p50_us: fields[3] * 1000.0, p99_us: fields[1] * 1000.0 }
}

/// The `p` quantile of sorted nanosecond latencies, in microseconds.
fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (upstream, proxy, gate, redis_gate) = (free_port(), free_port(), free_port(), free_port());
    let _nginx = start_nginx(dir, upstream, proxy);

    let (_warrantd, socket) = start_warrantd(&dir.join("warrantd"));
    let mut client = Client::new(&socket).unwrap();
    common::init_authority(&mut client, "bench");
    let _: api::Key = client.post("/keys", &api::CreateKey { name: "laptop".into() }).unwrap();
    let grant = common::grant_for(&mut client, "laptop", "alice", true);
    let trust: warrant_api::trust::TrustFile = client.get("/authority/trust").unwrap();
    std::fs::write(dir.join("trust.json"), trust.to_text().unwrap()).unwrap();
    let list: api::StatusListResponse =
        client.post("/authority/status-lists", &api::PublishRequest { valid_for: 3600, ttl: None }).unwrap();
    std::fs::write(dir.join("status.cbor"), &list.list).unwrap();
    std::fs::write(dir.join("routes.toml"), ROUTES).unwrap();

    let redis = warrant_test_support::redis::RedisServer::start();
    let _gate = start_gate(dir, gate, upstream, &[]);
    let _redis_gate = start_gate(dir, redis_gate, upstream, &["--replay", &redis.url()]);

    eprintln!("signing {WARRANTS} warrants");
    let signing = Instant::now();
    let warrants = sign_warrants(&socket, &grant, WARRANTS);
    eprintln!("signed in {:.1} s", signing.elapsed().as_secs_f64());
    // Each gate has its own replay store: each may see every warrant once.
    let (next, next_redis) = (AtomicUsize::new(0), AtomicUsize::new(0));

    let systems = [
        "upstream alone (nginx return 200)",
        "nginx proxy_pass",
        "warrant gate, in-memory replay store",
        "warrant gate, Redis replay store",
    ];
    let mut samples: BTreeMap<(usize, usize), Samples> = BTreeMap::new();
    let mut floors: BTreeMap<usize, Vec<RedisBenchmark>> = BTreeMap::new();
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        for &clients in &CLIENTS {
            run_slice(upstream, clients, None, samples.entry((clients, 0)).or_default());
            run_slice(proxy, clients, None, samples.entry((clients, 1)).or_default());
            run_slice(gate, clients, Some((&warrants, &next)), samples.entry((clients, 2)).or_default());
            run_slice(
                redis_gate,
                clients,
                Some((&warrants, &next_redis)),
                samples.entry((clients, 3)).or_default(),
            );
            floors.entry(clients).or_default().push(redis_benchmark(redis.port(), clients));
        }
    }
    for next in [&next, &next_redis] {
        assert!(next.load(Ordering::Relaxed) < warrants.len(), "a gate ran out of warrants: raise WARRANTS");
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.split(' ').take(3).collect::<Vec<_>>().join(" "));
    println!("| clients | system | p50 (us) | p99 (us) | requests/s |");
    println!("|---:|---|---:|---:|---:|");
    let mut table = BTreeMap::new();
    for ((clients, i), s) in &mut samples {
        s.latencies_ns.sort_unstable();
        let (p50, p99) = (percentile_us(&s.latencies_ns, 0.50), percentile_us(&s.latencies_ns, 0.99));
        let throughput = s.latencies_ns.len() as f64 / s.elapsed.as_secs_f64();
        println!("| {clients} | {} | {p50:.0} | {p99:.0} | {throughput:.0} |", systems[*i]);
        table.insert((*clients, *i), (p50, throughput));
    }
    for (clients, runs) in &mut floors {
        // The round with the median rate, whole (its percentiles are of its own requests).
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let floor = &runs[runs.len() / 2];
        println!(
            "| {clients} | redis-benchmark SET NX PX (floor, median of {ROUNDS} runs) | {:.0} | {:.0} | {:.0} |",
            floor.p50_us, floor.p99_us, floor.rps
        );
    }
    println!();
    for clients in CLIENTS {
        let (nginx, memory, redis) = (table[&(clients, 1)], table[&(clients, 2)], table[&(clients, 3)]);
        println!(
            "{clients} client(s): gate/nginx p50 {:.2}x, gate/nginx throughput {:.0}%; \
             Redis store adds {:+.0} us at p50 ({:.2}x), throughput {:.0}% of the in-memory store",
            memory.0 / nginx.0,
            100.0 * memory.1 / nginx.1,
            redis.0 - memory.0,
            redis.0 / memory.0,
            100.0 * redis.1 / memory.1
        );
    }
    let added = table[&(1, 3)].0 - table[&(1, 2)].0;
    println!(
        "target (issue 17): the Redis store adds <= 150 us at p50 on loopback (1 client): {added:+.0} us, {}",
        if added <= 150.0 { "met" } else { "NOT MET" }
    );
}

/// Starts `warrant gate` on `port` in front of the upstream, with `extra` flags, and waits
/// until it listens.
fn start_gate(dir: &Path, port: u16, upstream: u16, extra: &[&str]) -> Process {
    let gate = Process(
        Command::new(common::warrant_bin())
            .args(["gate", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--upstream", &format!("http://127.0.0.1:{upstream}"), "--origin", AUDIENCE])
            .args(["--trust", "trust.json", "--status-file", "status.cbor", "--routes", "routes.toml"])
            .arg("--allow-software")
            .args(extra)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    gate
}
