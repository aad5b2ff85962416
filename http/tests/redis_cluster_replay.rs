//! The Redis replay store on a real Redis Cluster (three redis-server primaries on loopback,
//! made by `redis-cli --cluster create`): exactly-once acceptance across verifiers, keys spread
//! over the nodes, a node down or hung refusing only the warrants whose keys it owns, a
//! cluster that is down refusing all, and a slot migrated under load (`ASK`, then `MOVED`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.
#![cfg(feature = "redis")]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use warrant_envelope::verify::{ReplayKey, ReplayStore};
use warrant_envelope::{Error, ErrorKind};
use warrant_http::RedisReplayStore;
use warrant_test_support::redis::{key_slot, RedisCluster};

const NOW: u64 = 1_800_000_000;

/// Warrant `n`'s replay key (its id is `n` in the first 8 bytes).
fn key(n: u64) -> ReplayKey {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    ReplayKey::new("https://authority.example", &[7; 16], &id, "https://api.example")
}

/// The Redis key the store writes for `key`.
fn name(key: &ReplayKey) -> String {
    format!("warrant:replay:{}", hex::encode(key.digest()))
}

/// The first warrant from `from` on whose key lands in `slot`.
fn warrant_in_slot(slot: u16, from: u64) -> u64 {
    (from..).find(|&n| key_slot(name(&key(n)).as_bytes()) == slot).unwrap()
}

fn store(url: &str) -> RedisReplayStore {
    RedisReplayStore::new(url)
        .unwrap()
        .connect_timeout(Duration::from_millis(300))
        .unwrap()
        .command_timeout(Duration::from_millis(300))
        .unwrap()
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

/// Presents warrant `n` `times` times from 8 threads, taking turns over `stores`; returns how
/// many were accepted. Anything but an acceptance or a replay fails the test.
fn present(stores: &[&RedisReplayStore], n: u64, times: usize) -> usize {
    let (accepted, replayed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let threads = 8;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (store, accepted, replayed) = (stores[t % stores.len()], &accepted, &replayed);
            scope.spawn(move || {
                for _ in 0..times / threads {
                    match store.remember(&key(n), NOW + 120, NOW) {
                        Ok(()) => accepted.fetch_add(1, Ordering::SeqCst),
                        Err(Error::Replayed { .. }) => replayed.fetch_add(1, Ordering::SeqCst),
                        Err(e) => panic!("warrant {n}: unexpected {e}"),
                    };
                }
            });
        }
    });
    assert_eq!(accepted.load(Ordering::SeqCst) + replayed.load(Ordering::SeqCst), times / threads * threads);
    accepted.load(Ordering::SeqCst)
}

#[test]
fn a_warrant_is_accepted_once_across_verifiers_and_keys_spread_over_the_nodes() {
    let cluster = RedisCluster::start(3);
    // Two verifiers: one given every node, one given a single node to find the others from.
    let (every_node, one_node) = (store(&cluster.url()), store(&cluster.seed_url(1)));
    assert_eq!(present(&[&every_node, &one_node], 1, 1000), 1, "1,000 presentations, one acceptance");

    // Keys need no hash tags: each lands in its own slot, on the node that owns the slot.
    let mut holders = BTreeSet::new();
    for n in 100..130 {
        let store = if n % 2 == 0 { &every_node } else { &one_node };
        store.remember(&key(n), NOW + 60, NOW).unwrap();
        let name = name(&key(n));
        let slot = cluster.slot_of(&name);
        assert_eq!(key_slot(name.as_bytes()), slot, "the test's slot function agrees with Redis");
        let holder = cluster.holder_of(&name).expect("the key is on a node");
        assert_eq!(holder, cluster.owner_of(slot));
        holders.insert(holder);
    }
    assert!(holders.len() >= 2, "30 keys all on node {holders:?}");
}

#[test]
fn a_node_down_refuses_the_warrants_it_owns_and_the_others_are_served_until_it_is_back() {
    let mut cluster = RedisCluster::start(3);
    let store = store(&cluster.url());
    store.remember(&key(1), NOW + 60, NOW).unwrap();

    cluster.node_mut(2).stop();
    let (mut refused, mut served) = (Vec::new(), 0);
    for n in 200.. {
        if refused.len() >= 4 && served >= 4 {
            break;
        }
        let owner = cluster.owner_of(key_slot(name(&key(n)).as_bytes()));
        if owner == 2 {
            assert_unavailable(store.remember(&key(n), NOW + 60, NOW), "Redis at redis+cluster://127.0.0.1:");
            refused.push(n);
        } else {
            store.remember(&key(n), NOW + 60, NOW).unwrap();
            served += 1;
        }
    }

    // Back (empty, its slots kept in its nodes.conf): what it owns is accepted again, once.
    cluster.node_mut(2).restart();
    cluster.wait_until_ok();
    for n in refused {
        store.remember(&key(n), NOW + 60, NOW).unwrap();
        assert!(matches!(store.remember(&key(n), NOW + 60, NOW), Err(Error::Replayed { .. })));
    }
}

#[test]
fn a_node_that_never_answers_is_refused_within_the_timeouts() {
    let cluster = RedisCluster::start(3);
    let warm = store(&cluster.url());
    warm.remember(&key(1), NOW + 60, NOW).unwrap();
    let on = |node: usize, from: u64| {
        (from..).find(|&n| cluster.owner_of(key_slot(name(&key(n)).as_bytes())) == node).unwrap()
    };
    let (hung_key, live_key) = (on(2, 300), on(0, 300));

    // Frozen: its connections are accepted by the kernel and never answered.
    cluster.node(2).pause();
    // A store connected before, and one that connects now (the cluster client's first PING
    // to the frozen node must be bounded too).
    let fresh = store(&cluster.url());
    for store in [&warm, &fresh] {
        let start = Instant::now();
        assert_unavailable(store.remember(&key(hung_key), NOW + 60, NOW), "no answer in time");
        // Bounded by the timeouts and the few retries (generous slack for a loaded machine).
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }
    let start = Instant::now();
    store(&cluster.url()).remember(&key(live_key), NOW + 60, NOW).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());

    cluster.node(2).resume();
    cluster.wait_until_ok();
    // The frozen node ran the SETs it had queued: the refused warrant is now recorded (a
    // refusal may burn an id; it never lets one through twice).
    let result = warm.remember(&key(hung_key), NOW + 60, NOW);
    assert!(matches!(result, Ok(()) | Err(Error::Replayed { .. })), "{result:?}");
    assert!(matches!(warm.remember(&key(hung_key), NOW + 60, NOW), Err(Error::Replayed { .. })));
    fresh.remember(&key(on(2, hung_key + 1)), NOW + 60, NOW).unwrap();
}

#[test]
fn a_cluster_that_is_down_refuses_every_warrant() {
    let mut cluster = RedisCluster::start_requiring_full_coverage(3);
    let store = store(&cluster.url());
    store.remember(&key(1), NOW + 60, NOW).unwrap();
    cluster.node_mut(2).stop();
    // The others mark it failed after the node timeout (1 s); with full coverage required
    // they then refuse every key.
    let start = Instant::now();
    while !cluster.node(0).cli(&["CLUSTER", "INFO"]).contains("cluster_state:fail") {
        assert!(start.elapsed() < Duration::from_secs(30), "the cluster was not marked down");
        std::thread::sleep(Duration::from_millis(50));
    }
    let live_key = (400..).find(|&n| cluster.owner_of(key_slot(name(&key(n)).as_bytes())) == 0).unwrap();
    assert_unavailable(store.remember(&key(live_key), NOW + 60, NOW), "The cluster is down");
}

#[test]
fn a_slot_migrating_between_nodes_still_accepts_each_warrant_once() {
    let cluster = RedisCluster::start(3);
    let (every_node, one_node) = (store(&cluster.url()), store(&cluster.seed_url(2)));
    let stores = [&every_node, &one_node];

    let first = 1;
    assert_eq!(present(&stores, first, 200), 1);
    let slot = cluster.slot_of(&name(&key(first)));
    let source = cluster.owner_of(slot);
    let target = (source + 1) % cluster.len();
    let (source_id, target_id) = (cluster.node_id(source), cluster.node_id(target));
    let slot_arg = slot.to_string();

    // The migration begins: keys of the slot still on the source are answered there; a key
    // the source does not have is sent to the target (ASK).
    assert_eq!(cluster.node(target).cli(&["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &source_id]), "OK");
    assert_eq!(cluster.node(source).cli(&["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &target_id]), "OK");
    assert_eq!(present(&stores, first, 200), 0, "the source still has the key");
    let second = warrant_in_slot(slot, 1000);
    assert_eq!(present(&stores, second, 200), 1, "a new key of the slot, through ASK");
    assert_eq!(cluster.holder_of(&name(&key(second))), Some(target));

    // The source's key moves: it is now answered by the target (ASK).
    let target_port = cluster.node(target).port().to_string();
    let moved = cluster.node(source).cli(&[
        "MIGRATE",
        "127.0.0.1",
        &target_port,
        "",
        "0",
        "5000",
        "KEYS",
        &name(&key(first)),
    ]);
    assert_eq!(moved, "OK");
    assert_eq!(cluster.holder_of(&name(&key(first))), Some(target));
    assert_eq!(present(&stores, first, 200), 0, "the key is on the target now");
    let third = warrant_in_slot(slot, second + 1);
    assert_eq!(present(&stores, third, 200), 1);

    // The migration ends: the slot is the target's, on every node (MOVED for stale maps).
    for node in [target, source, 3 - source - target] {
        assert_eq!(cluster.node(node).cli(&["CLUSTER", "SETSLOT", &slot_arg, "NODE", &target_id]), "OK");
    }
    assert_eq!(cluster.owner_of(slot), target);
    for warrant in [first, second, third] {
        assert_eq!(present(&stores, warrant, 96), 0, "warrant {warrant} after the migration");
    }
    let fourth = warrant_in_slot(slot, third + 1);
    assert_eq!(present(&stores, fourth, 200), 1);
    assert_eq!(cluster.holder_of(&name(&key(fourth))), Some(target));
}

#[test]
fn a_node_that_stops_answering_after_the_handshake_is_refused_within_the_timeouts() {
    // Answers the client's handshake (its two CLIENT SETINFO) and then nothing: the cluster
    // client's PING that follows is read with the connect timeout too.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis+cluster://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut buffer = [0u8; 4096];
            let mut seen = Vec::new();
            while seen.windows(7).filter(|w| w == b"SETINFO").count() < 2 {
                let n = std::io::Read::read(&mut stream, &mut buffer).unwrap();
                assert!(n > 0, "the client left during its handshake");
                seen.extend_from_slice(&buffer[..n]);
            }
            std::io::Write::write_all(&mut stream, b"+OK\r\n+OK\r\n").unwrap();
            held.push(stream);
        }
    });
    let store = store(&url);
    let start = Instant::now();
    assert_unavailable(store.remember(&key(1), NOW + 60, NOW), "connecting");
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
}
