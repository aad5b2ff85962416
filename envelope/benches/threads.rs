//! Whether one verifier scales across cores (issue 17): verifications per second from one
//! thread against two threads sharing the same `Verifier` (its grant, policy and decision
//! caches, its in-memory replay store and its held status list), and, as the control, two
//! threads each with a verifier of its own (nothing shared: what the machine itself allows).
//!
//! Run (numbers and the machine in docs/PERFORMANCE.md):
//!     cargo bench -p warrant-envelope --bench threads
//!
//! Every verification takes a fresh warrant (signed beforehand), so the replay store records
//! each one; the grant is cached and the decision remembered, as in a service's steady state.
//! The three systems run in turn for `SLICE`, `ROUNDS` times, so that the machine's drift
//! falls on all alike; each is reported as its median round.
//!
//! On a machine busy with other work two threads may get no more CPU than one, which no
//! verifier can help. So each thread also reads its scheduler statistics
//! (`/proc/thread-self/schedstat`: time on a CPU, time waiting for one): verifications per
//! CPU-second, and the time threads spent neither running nor waiting to run (blocked, as on
//! a contended lock). Two threads that each keep one thread's rate per CPU-second and do not
//! block would reach twice one thread's rate on two free cores: the "on free cores" column.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{expected, request, Fixture};
use warrant_envelope::verify::Verifier;

const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_millis(500);
/// Warrants signed beforehand, per thread and round: more than a thread verifies in a slice.
const PER_SLICE: usize = 12_000;

/// What one slice measured.
#[derive(Clone, Copy)]
struct Slice {
    /// Verifications per second of wall time, all threads.
    rate: f64,
    /// Verifications per second of CPU time, all threads.
    per_cpu_second: f64,
    /// Share of the threads' wall time spent blocked (neither on a CPU nor waiting for one).
    blocked: f64,
}

/// This thread's time on a CPU and time waiting for one, in nanoseconds.
fn schedstat() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

/// Verifies on `verifiers.len()` threads (thread `i` on `verifiers[i]`) for `SLICE`, each
/// taking warrants from `warrants`.
fn run_slice(verifiers: &[&Verifier], warrants: &[Vec<u8>]) -> Slice {
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(verifiers.len());
    let start = Instant::now();
    let per_thread: Vec<(usize, u64, u64, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = verifiers
            .iter()
            .map(|verifier| {
                let (next, barrier) = (&next, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let (cpu, queued) = schedstat();
                    let began = Instant::now();
                    let end = began + SLICE;
                    let mut count = 0;
                    while Instant::now() < end {
                        let warrant =
                            warrants.get(next.fetch_add(1, Ordering::Relaxed)).expect("raise PER_SLICE");
                        black_box(verifier.verify(warrant, &expected(), &request(), None).unwrap());
                        count += 1;
                    }
                    let wall = began.elapsed();
                    let (cpu_end, queued_end) = schedstat();
                    (count, cpu_end - cpu, queued_end - queued, wall)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let count: usize = per_thread.iter().map(|t| t.0).sum();
    let cpu: u64 = per_thread.iter().map(|t| t.1).sum();
    let queued: u64 = per_thread.iter().map(|t| t.2).sum();
    let wall: u64 = per_thread.iter().map(|t| t.3.as_nanos() as u64).sum();
    Slice {
        rate: count as f64 / elapsed,
        per_cpu_second: count as f64 / (cpu as f64 / 1e9),
        blocked: wall.saturating_sub(cpu + queued) as f64 / wall as f64,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let f = Fixture::new();
    let shared = f.verifier();
    let (own_a, own_b) = (f.verifier(), f.verifier());
    for verifier in [&shared, &own_a, &own_b] {
        verifier.verify(&f.warrant(), &expected(), &request(), None).unwrap(); // grant and decision cached
    }
    let systems: [(&str, Vec<&Verifier>); 3] = [
        ("1 thread", vec![&shared]),
        ("2 threads, one shared verifier", vec![&shared, &shared]),
        ("2 threads, a verifier each (control)", vec![&own_a, &own_b]),
    ];
    let mut slices: Vec<Vec<Slice>> = vec![Vec::new(); systems.len()];
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        for ((_, verifiers), slices) in systems.iter().zip(&mut slices) {
            // Signed on both cores, outside the timed slice.
            let count = PER_SLICE * verifiers.len();
            let warrants: Vec<Vec<u8>> = std::thread::scope(|scope| {
                let half = scope.spawn(|| (0..count / 2).map(|_| f.warrant()).collect::<Vec<_>>());
                let mut rest: Vec<Vec<u8>> = (count / 2..count).map(|_| f.warrant()).collect();
                let mut all = half.join().unwrap();
                all.append(&mut rest);
                all
            });
            slices.push(run_slice(verifiers, &warrants));
        }
    }

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nload average at the end: {}", load.split(' ').take(3).collect::<Vec<_>>().join(" "));
    println!(
        "| system | verifications/s (median of {ROUNDS}) | vs 1 thread | per CPU-second | blocked | on free cores |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let medians: Vec<(f64, f64, f64)> = slices
        .iter()
        .map(|s| {
            (
                median(s.iter().map(|s| s.rate).collect()),
                median(s.iter().map(|s| s.per_cpu_second).collect()),
                median(s.iter().map(|s| s.blocked).collect()),
            )
        })
        .collect();
    let (one, one_per_cpu, _) = medians[0];
    let mut projected = Vec::new();
    for ((name, verifiers), (rate, per_cpu, blocked)) in systems.iter().zip(&medians) {
        // Each thread at this rate per CPU-second, less the time it blocks, on a core of its own.
        let free_cores = verifiers.len() as f64 * per_cpu * (1.0 - blocked) / one_per_cpu;
        projected.push(free_cores);
        println!(
            "| {name} | {rate:.0} | {:.2}x | {per_cpu:.0} | {:.1}% | {free_cores:.2}x |",
            rate / one,
            blocked * 100.0
        );
    }
    let measured = medians[1].0 / one;
    let control = medians[2].0 / one;
    println!(
        "\ntarget (issue 17): 2 threads >= 1.8x one thread: measured {measured:.2}x ({}), the machine allowed \
         {control:.2}x with nothing shared; on free cores {:.2}x ({})",
        if measured >= 1.8 { "met" } else { "NOT MET" },
        projected[1],
        if projected[1] >= 1.8 { "met" } else { "NOT MET" }
    );
}
