//! A private redis-server (Debian's package redis-server) for tests: its own directory, a Unix
//! socket and a loopback port, no persistence, stopped (killed) on drop; and a private Redis
//! Cluster of such servers, made by `redis-cli --cluster create`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server, listening on a Unix socket in its own directory and on a loopback
/// TCP port.
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a primary.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a replica of `primary` (read-only, as Redis replicas are by default).
    pub fn replica_of(primary: &RedisServer) -> Self {
        Self::start_with(&["--replicaof".into(), "127.0.0.1".into(), primary.port.to_string()])
    }

    /// Starts a node for a Redis Cluster (`cluster-enabled`, its nodes.conf in its directory,
    /// its cluster bus on a free port of its own rather than the default port + 10000, a node
    /// down after 1 s without an answer), not yet part of one.
    fn cluster_node(require_full_coverage: bool) -> Self {
        let coverage = if require_full_coverage { "yes" } else { "no" };
        Self::start_with(&[
            "--cluster-port".into(),
            free_port().to_string(),
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            "nodes.conf".into(),
            "--cluster-node-timeout".into(),
            "1000".into(),
            "--cluster-require-full-coverage".into(),
            coverage.into(),
        ])
    }

    fn start_with(extra: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let mut server = Self { child: None, dir, port, extra: extra.to_vec() };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis+unix:///…/redis.sock`.
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Stops the server (SIGKILL: a crash, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Freezes the server (SIGSTOP): connections are still accepted by the kernel, and nothing
    /// is answered until [`Self::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill").arg(signal).arg(child.id().to_string()).status().expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts it again on the same port and socket (empty: nothing is persisted; a cluster
    /// node keeps its nodes.conf, so it rejoins its cluster with its slots).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no"])
            // A replica syncs at once, not after the default 5 s wait for more replicas.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.child = Some(child);
        wait_for(&self.socket());
    }

    /// Runs redis-cli against the server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("redis-cli (Debian package redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of private redis-server processes on loopback, each a primary with a share
/// of the slots (no replicas), made by `redis-cli --cluster create`.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `primaries` nodes (at least 3, as `redis-cli --cluster create` requires) and
    /// makes them a cluster that does not require full coverage: with a node down, the others
    /// still serve their slots.
    pub fn start(primaries: usize) -> Self {
        Self::start_with(primaries, false)
    }

    /// [`Self::start`], requiring full coverage (Redis's default): with a node down the whole
    /// cluster answers `CLUSTERDOWN` once the others have marked it failed.
    pub fn start_requiring_full_coverage(primaries: usize) -> Self {
        Self::start_with(primaries, true)
    }

    fn start_with(primaries: usize, require_full_coverage: bool) -> Self {
        let nodes: Vec<RedisServer> =
            (0..primaries).map(|_| RedisServer::cluster_node(require_full_coverage)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (Debian package redis-tools)");
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = Self { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every running node reports the cluster ok, with every slot served.
    pub fn wait_until_ok(&self) {
        let start = Instant::now();
        loop {
            let ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                let info = n.cli(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            if ok {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`: every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// `redis+cluster://127.0.0.1:P`: node `i` alone, from which the others are found.
    pub fn seed_url(&self, i: usize) -> String {
        format!("redis+cluster://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    /// Node `i`, to stop and restart.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node (never: it is made of at least 3).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s cluster id.
    pub fn node_id(&self, i: usize) -> String {
        self.nodes[i].cli(&["CLUSTER", "MYID"])
    }

    /// The slot of `key`, as the first running node computes it.
    pub fn slot_of(&self, key: &str) -> u16 {
        self.any_running().cli(&["CLUSTER", "KEYSLOT", key]).parse().expect("a slot number")
    }

    /// The node that owns `slot`, as the first running node sees it.
    pub fn owner_of(&self, slot: u16) -> usize {
        let table = self.any_running().cli(&["CLUSTER", "NODES"]);
        for line in table.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(port) = fields.get(1).and_then(|a| a.split(['@', ':']).nth(1)) else { continue };
            // Slot ranges follow the 8 fixed fields; "[slot->-id]" marks a migration.
            let owns = fields.iter().skip(8).filter(|r| !r.starts_with('[')).any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                (low.parse::<u16>().unwrap()..=high.parse::<u16>().unwrap()).contains(&slot)
            });
            if owns {
                return self.nodes.iter().position(|n| n.port.to_string() == port).expect("a node of ours");
            }
        }
        panic!("no node owns slot {slot}:\n{table}");
    }

    /// The node holding `key` now: the running node that lists it among its keys of the key's
    /// slot (which a node answers for its own keys even while the slot migrates, where `EXISTS`
    /// would be redirected).
    pub fn holder_of(&self, key: &str) -> Option<usize> {
        let slot = self.slot_of(key).to_string();
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].child.is_some()
                && self.nodes[i].cli(&["CLUSTER", "GETKEYSINSLOT", &slot, "100000"]).lines().any(|k| k == key)
        })
    }

    fn any_running(&self) -> &RedisServer {
        self.nodes.iter().find(|n| n.child.is_some()).expect("a running node")
    }
}

/// The cluster slot of `key` (one without a `{hash tag}`): CRC16-XMODEM of the key, modulo
/// 16384, as Redis computes it. Computed here so a test can look through many keys for one in
/// a given slot; [`RedisCluster::slot_of`] asks the server.
pub fn key_slot(key: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for byte in key {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn wait_for(socket: &Path) {
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}
