//! The daemon's TOML configuration (agent/src/daemon/config.rs): `Config::parse` as
//! `warrantd --config` runs it, the TOML reader and then the validator (key store settings
//! per backend, PKCS#11 URI, PIV slots and policies, PCR selections, limits, rules, admin and
//! socket groups, error locations in the text). Seeds: docs/agent.example.toml and the
//! single-user configuration the demo and tests use.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use warrant_agent::daemon::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Config::parse(Path::new("/etc/warrant/agent.toml"), text);
});
