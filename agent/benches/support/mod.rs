//! What the benches share: clients timed together, and percentiles.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Runs `clients` threads, each with its own operation from `make`: one warm-up call each
/// (connecting, logging in), then all start together and call it for `duration`. Returns every
/// call's latency in nanoseconds.
pub fn run_clients<F: FnMut() + Send>(
    clients: usize,
    duration: Duration,
    make: &(dyn Fn() -> F + Sync),
) -> Vec<u64> {
    let barrier = Arc::new(Barrier::new(clients));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let mut op = make();
                    op();
                    let mut latencies = Vec::with_capacity(20_000);
                    barrier.wait();
                    let end = Instant::now() + duration;
                    while Instant::now() < end {
                        let start = Instant::now();
                        op();
                        latencies.push(start.elapsed().as_nanos() as u64);
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// The `p` quantile of sorted nanosecond latencies, in microseconds.
pub fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}
