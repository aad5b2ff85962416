//! YubiKey PIV key store (feature `yubikey`), through the `yubikey` crate 0.8 over PC/SC.
//!
//! Keys are P-256 pairs generated in a PIV slot (from the configured list: 9a, 9c, 9d, 9e,
//! retired 82-95) with a PIN and touch policy; a key's name maps to its card and slot in
//! `<dir>/<name>.yubikey`. The card is found by serial when several are present; readers whose
//! card has no PIV applet are skipped. The management key is the PIN-protected one that
//! `warrant yubikey setup` stores on the card. Enrollment evidence is the slot's attestation
//! certificate and the device's f9 certificate; warrants are vouched for by the key's own
//! signature (the grant holds the appraised attestation).
//!
//! The probe setup and doctor use ([`probe`]) speaks PC/SC directly instead, so as to leave the
//! card as it found it.
//!
//! The settings ([`YubikeySettings`]) are built without the feature too, so a configuration
//! that names this backend is refused as missing from the build.

#[cfg(feature = "yubikey")]
mod probe;
mod settings;
#[cfg(feature = "yubikey")]
mod setup;
#[cfg(feature = "yubikey")]
mod store;

/// The yubikey crate this store is built on (for benchmarks against the bare library).
#[cfg(feature = "yubikey")]
pub use ::yubikey;

#[cfg(feature = "yubikey")]
pub use probe::{probe, CardFacts, YSA_2024_03_FIXED};
pub use settings::{PinPolicy, PivSlot, TouchPolicy, YubikeySettings};
#[cfg(feature = "yubikey")]
pub use setup::{setup, SetupOptions, SetupReport};
#[cfg(feature = "yubikey")]
pub use store::{YubikeyConfig, YubikeyStore};
