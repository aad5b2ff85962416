//! Decoding and installing a status list of 1,000,000 entries (`bits` = 1), issue 17: the
//! work a verifier does for each new list it fetches.
//!
//! Run (numbers and the machine in docs/PERFORMANCE.md):
//!     cargo bench -p warrant-envelope --bench status_list
//!
//! Two lists: 0.1% of the entries revoked (a list as it usually is: it compresses to a few
//! KB), and half of them revoked at random (nothing to compress: ~125 KB of zlib, the most
//! inflating there can be). For each, a chain of `SAMPLES` + 1 signed lists (sequence 1, 2, …,
//! each naming the previous) is made beforehand; the first is installed, then each next one
//! is timed as it replaces its predecessor (COSE and claims decoded strictly, the bits
//! inflated, the signature checked, the chain checked, the list swapped in). Decoding alone
//! (no signature check) and zlib inflation alone are timed too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Fixture;
use warrant_envelope::issue::{status_list_digest, StatusBits};

const ENTRIES: u64 = 1_000_000;
const SAMPLES: usize = 31;
const TARGET: Duration = Duration::from_millis(5);

/// A deterministic generator of indexes (xorshift64*): the same lists in every run.
struct Indexes(u64);

impl Indexes {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// `SAMPLES` + 1 chained lists of `ENTRIES` entries with `revoked` of them set.
fn chain(f: &Fixture, revoked: u64) -> Vec<Vec<u8>> {
    let mut claims = f.status_claims.clone();
    claims.bits = StatusBits::with_capacity(ENTRIES);
    let mut indexes = Indexes(0x9e37_79b9_7f4a_7c15 ^ revoked);
    for _ in 0..revoked {
        claims.bits.revoke(indexes.next_below(ENTRIES)).unwrap();
    }
    assert_eq!(claims.bits.len(), ENTRIES.div_ceil(8) * 8);
    let mut lists: Vec<Vec<u8>> = Vec::with_capacity(SAMPLES + 1);
    for sequence in 1..=SAMPLES as u64 + 1 {
        claims.sequence = sequence;
        claims.previous = match lists.last() {
            Some(previous) => status_list_digest(previous).unwrap(),
            None => [0; 32],
        };
        lists.push(claims.sign(&f.authority).unwrap());
    }
    lists
}

fn median_and_max(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    let f = Fixture::new();
    println!("| list of {ENTRIES} entries | signed size | inflate alone | decode (no signature check) | install (median) | install (max) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut worst = Duration::ZERO;
    for (name, revoked) in [("0.1% revoked", ENTRIES / 1000), ("half revoked at random", ENTRIES / 2)] {
        let lists = chain(&f, revoked);

        // The same bits, compressed as the list compresses them, to time zlib alone.
        let mut bits = StatusBits::with_capacity(ENTRIES);
        let mut indexes = Indexes(0x9e37_79b9_7f4a_7c15 ^ revoked);
        for _ in 0..revoked {
            bits.revoke(indexes.next_below(ENTRIES)).unwrap();
        }
        let bytes: Vec<u8> = (0..bits.len() / 8)
            .map(|byte| {
                (0..8).fold(0u8, |b, bit| b | (u8::from(bits.is_revoked(byte * 8 + bit).unwrap()) << bit))
            })
            .collect();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&bytes).unwrap();
        let compressed = z.finish().unwrap();
        let inflate: Vec<Duration> = (0..SAMPLES)
            .map(|_| {
                let start = Instant::now();
                let mut out = Vec::new();
                flate2::bufread::ZlibDecoder::new(compressed.as_slice()).read_to_end(&mut out).unwrap();
                std::hint::black_box(out);
                start.elapsed()
            })
            .collect();

        let decode: Vec<Duration> = lists
            .iter()
            .take(SAMPLES)
            .map(|list| {
                let start = Instant::now();
                std::hint::black_box(status_list_digest(list).unwrap());
                start.elapsed()
            })
            .collect();

        let verifier = f.builder().build().unwrap();
        verifier.install_status_list(&lists[0]).unwrap();
        let install: Vec<Duration> = lists[1..]
            .iter()
            .map(|list| {
                let start = Instant::now();
                let info = verifier.install_status_list(list).unwrap();
                let elapsed = start.elapsed();
                assert_eq!(verifier.status_list(&info.issuer, &info.uri).unwrap().sequence, info.sequence);
                elapsed
            })
            .collect();

        let (install_median, install_max) = median_and_max(install);
        worst = worst.max(install_median);
        println!(
            "| {name} | {} bytes | {} ms | {} ms | {} ms | {} ms |",
            lists[0].len(),
            ms(median_and_max(inflate).0),
            ms(median_and_max(decode).0),
            ms(install_median),
            ms(install_max)
        );
    }
    println!(
        "\ntarget (issue 17): decoding and installing a 1,000,000-entry list < {} ms: {} ms at the median, {}",
        TARGET.as_millis(),
        ms(worst),
        if worst < TARGET { "met" } else { "NOT MET" }
    );
}
