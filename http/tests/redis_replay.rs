//! The Redis replay store against a real redis-server on loopback: exactly-once acceptance
//! across verifiers, and refusal (never acceptance) whenever Redis cannot answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warrant_envelope::verify::{ReplayKey, ReplayStore};
use warrant_envelope::{Error, ErrorKind};
use warrant_http::RedisReplayStore;
use warrant_test_support::redis::RedisServer;

const NOW: u64 = 1_800_000_000;

fn key(warrant: u8, audience: &str) -> ReplayKey {
    ReplayKey::new("https://authority.example", &[7; 16], &[warrant; 16], audience)
}

fn assert_unavailable(result: Result<(), Error>, needle: &str) {
    match result {
        Err(e @ Error::ReplayStoreUnavailable { .. }) => {
            assert_eq!(e.kind(), ErrorKind::Unavailable);
            assert_eq!(e.code(), "replay_store_unavailable");
            assert!(e.to_string().contains(needle), "{e} should mention {needle:?}");
        }
        other => panic!("expected replay_store_unavailable ({needle}), got {other:?}"),
    }
}

#[test]
fn a_warrant_is_accepted_once_across_verifiers_racing_for_it() {
    let redis = RedisServer::start();
    // Two verifiers (two stores, two pools) on the same server, one over TCP, one over the
    // Unix socket.
    let stores = [
        Arc::new(RedisReplayStore::new(&redis.url()).unwrap()),
        Arc::new(RedisReplayStore::new(&redis.unix_url()).unwrap()),
    ];
    let accepted = Arc::new(AtomicUsize::new(0));
    let replayed = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&stores[t % 2]);
            let (accepted, replayed) = (Arc::clone(&accepted), Arc::clone(&replayed));
            std::thread::spawn(move || {
                for _ in 0..125 {
                    match store.remember(&key(1, "https://api.example"), NOW + 120, NOW) {
                        Ok(()) => accepted.fetch_add(1, Ordering::SeqCst),
                        Err(Error::Replayed { .. }) => replayed.fetch_add(1, Ordering::SeqCst),
                        Err(e) => panic!("unexpected {e}"),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "1,000 presentations, one acceptance");
    assert_eq!(replayed.load(Ordering::SeqCst), 999);
}

#[test]
fn the_key_lives_for_the_warrants_remaining_life_and_is_scoped_by_audience() {
    let redis = RedisServer::start();
    let store = RedisReplayStore::new(&redis.url()).unwrap();
    store.remember(&key(2, "https://api.example"), NOW + 90, NOW).unwrap();
    // The same warrant id for another audience is another key.
    store.remember(&key(2, "https://other.example"), NOW + 90, NOW).unwrap();
    let name = format!("warrant:replay:{}", hex::encode(key(2, "https://api.example").digest()));
    let pttl: u64 = redis.cli(&["PTTL", &name]).parse().unwrap();
    assert!(pttl > 85_000 && pttl <= 90_000, "PTTL {pttl}");
    assert_eq!(redis.cli(&["DBSIZE"]), "2");
    // A warrant already past its life still occupies its key for a second.
    store.remember(&key(3, "https://api.example"), NOW - 5, NOW).unwrap();
    assert!(matches!(
        store.remember(&key(3, "https://api.example"), NOW - 5, NOW),
        Err(Error::Replayed { .. })
    ));
}

#[test]
fn an_outage_refuses_every_warrant_and_recovery_accepts_again() {
    let mut redis = RedisServer::start();
    let store = RedisReplayStore::new(&redis.url()).unwrap();
    store.remember(&key(4, "a"), NOW + 60, NOW).unwrap();

    redis.stop();
    // The pooled connection is dead and a new one is refused: both paths fail closed.
    for warrant in 5..9 {
        assert_unavailable(store.remember(&key(warrant, "a"), NOW + 60, NOW), "Redis at redis://127.0.0.1:");
    }

    redis.restart();
    store.remember(&key(9, "a"), NOW + 60, NOW).unwrap();
    // What Redis lost in the crash it no longer refuses: the failover window (docs).
    store.remember(&key(4, "a"), NOW + 60, NOW).unwrap();
}

#[test]
fn a_read_only_replica_refuses() {
    let primary = RedisServer::start();
    let replica = RedisServer::replica_of(&primary);
    let store = RedisReplayStore::new(&replica.url()).unwrap();
    assert_unavailable(store.remember(&key(10, "a"), NOW + 60, NOW), "read only replica");
}

#[test]
fn a_server_that_never_answers_is_refused_within_the_timeouts() {
    // Accepts connections (the kernel's backlog) and never reads or writes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let store = RedisReplayStore::new(&url)
        .unwrap()
        .connect_timeout(Duration::from_millis(200))
        .unwrap()
        .command_timeout(Duration::from_millis(200))
        .unwrap();
    let start = Instant::now();
    assert_unavailable(store.remember(&key(11, "a"), NOW + 60, NOW), "no answer in time");
    // Bounded by the timeouts (generous slack for a loaded machine), not hanging.
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn nothing_listening_is_refused() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = RedisReplayStore::new(&format!("redis://127.0.0.1:{port}")).unwrap();
    assert_unavailable(store.remember(&key(12, "a"), NOW + 60, NOW), "connection refused");
}

#[test]
fn a_write_the_required_replicas_do_not_acknowledge_refuses_and_burns_the_id() {
    let redis = RedisServer::start();
    let store =
        RedisReplayStore::new(&redis.url()).unwrap().min_replicas(1, Duration::from_millis(100)).unwrap();
    assert_unavailable(store.remember(&key(13, "a"), NOW + 60, NOW), "reached 0 of 1 required replicas");
    // The id stays recorded on the primary: a retry is a replay, not an acceptance.
    assert!(matches!(store.remember(&key(13, "a"), NOW + 60, NOW), Err(Error::Replayed { .. })));
}

#[test]
fn a_write_a_replica_acknowledges_is_accepted() {
    let primary = RedisServer::start();
    let replica = RedisServer::replica_of(&primary);
    // The replica needs a moment to sync; until then WAIT reports 0 and the warrant is refused.
    let start = Instant::now();
    while !primary.cli(&["INFO", "replication"]).contains("state=online") {
        assert!(start.elapsed() < Duration::from_secs(20), "replica did not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    let store =
        RedisReplayStore::new(&primary.url()).unwrap().min_replicas(1, Duration::from_secs(5)).unwrap();
    store.remember(&key(14, "a"), NOW + 60, NOW).unwrap();
    let name = format!("warrant:replay:{}", hex::encode(key(14, "a").digest()));
    assert_eq!(replica.cli(&["EXISTS", &name]), "1");
}

#[test]
fn a_wrong_password_is_refused_without_showing_it() {
    let redis = RedisServer::start();
    redis.cli(&["CONFIG", "SET", "requirepass", "right-password"]);
    let url = redis.url().replace("redis://", "redis://:wrong-password@");
    let store = RedisReplayStore::new(&url).unwrap();
    let err = store.remember(&key(15, "a"), NOW + 60, NOW).unwrap_err();
    assert_eq!(err.code(), "replay_store_unavailable");
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    assert!(!format!("{err:?}").contains("wrong-password"), "{err:?}");
}
