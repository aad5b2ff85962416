//! Redis memory per live warrant id (issue 17): what one accepted warrant costs the shared
//! replay store until its key expires.
//!
//! Run (numbers in docs/PERFORMANCE.md):
//!     cargo bench -p warrant-http --features redis --bench redis_memory
//!
//! Starts a private redis-server (Debian's package, no persistence), reads `INFO memory`,
//! records 1,000,000 distinct warrants through `RedisReplayStore` itself (8 threads; each key
//! `warrant:replay:` and 64 hex characters, value 1, `PX` 360,000 ms: a 5-minute warrant plus
//! the 60 s skew, so every key is still live at the end), and reads `INFO memory` again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use warrant_envelope::verify::{ReplayKey, ReplayStore};
use warrant_http::RedisReplayStore;
use warrant_test_support::redis::RedisServer;

const WARRANTS: u64 = 1_000_000;
const THREADS: u64 = 8;
/// Seconds each key lives: a 5-minute warrant plus the verifier's 60 s skew.
const LIFE: u64 = 360;

/// `field` of `INFO memory`, in bytes.
fn memory(redis: &RedisServer, field: &str) -> u64 {
    let info = redis.cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .parse()
        .unwrap()
}

fn main() {
    let redis = RedisServer::start();
    let store = RedisReplayStore::new(&redis.url()).unwrap().max_connections(THREADS as usize).unwrap();
    let (used, rss) = (memory(&redis, "used_memory"), memory(&redis, "used_memory_rss"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();

    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let store = &store;
            scope.spawn(move || {
                for n in (t..WARRANTS).step_by(THREADS as usize) {
                    let mut id = [0u8; 16];
                    id[..8].copy_from_slice(&n.to_be_bytes());
                    let key = ReplayKey::new(
                        "https://authority.example.com",
                        &[7; 16],
                        &id,
                        "https://api.example.com",
                    );
                    store.remember(&key, now + LIFE, now).unwrap();
                }
            });
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(redis.cli(&["DBSIZE"]), WARRANTS.to_string(), "every key live");
    let (used_after, rss_after) = (memory(&redis, "used_memory"), memory(&redis, "used_memory_rss"));

    let version = redis.cli(&["INFO", "server"]);
    let version = version.lines().find(|l| l.starts_with("redis_version:")).unwrap_or("?").trim();
    println!(
        "{version}; {WARRANTS} warrants recorded in {:.1} s ({:.0}/s from {THREADS} threads)",
        elapsed.as_secs_f64(),
        WARRANTS as f64 / elapsed.as_secs_f64()
    );
    println!("| | before | after | per warrant | per million warrants |");
    println!("|---|---:|---:|---:|---:|");
    for (name, before, after) in [("used_memory", used, used_after), ("used_memory_rss", rss, rss_after)] {
        let per = (after - before) as f64 / WARRANTS as f64;
        println!(
            "| {name} | {:.1} MiB | {:.1} MiB | {per:.0} bytes | {:.0} MiB |",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            per * 1e6 / 1048576.0
        );
    }
}
