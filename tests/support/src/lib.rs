//! Simulators for warrant's tests and benchmarks (a dev-dependency only, never published):
//! a private swtpm per test, the virtual PIV card behind pcscd, a private pcscd to stop, a
//! private redis-server, a private nginx.

#![forbid(unsafe_code)]
// Test code: a simulator that cannot start fails the test that needs it, loudly (the rule
// against panics is for outside input; clippy.toml allows them in tests, and this is one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod nginx;
pub mod pcscd;
pub mod redis;
pub mod swtpm;
pub mod virtual_piv;
