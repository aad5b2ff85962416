//! RFC 7512 PKCS#11 URIs (hsm-backends/src/pkcs11/uri.rs): the `uri` setting of the pkcs11
//! key store and `warrant keys existing URI`. Any text (valid UTF-8 only: the callers hold
//! `&str`). Seeds: the URIs of the README, docs/agent.example.toml and uri.rs's tests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warrant_hsm_backends::pkcs11::Pkcs11Uri;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(uri) = Pkcs11Uri::parse(text) {
        // Something named the token: the parser's own rule.
        assert!(
            uri.token.is_some() || uri.serial.is_some() || uri.manufacturer.is_some() || uri.model.is_some()
        );
    }
});
