//! Fixtures shared by the fuzz targets in `fuzz_targets/`: fixed keys (the test-only keys of
//! docs/vectors), the committed vectors, a verifier with fixed trust, status list and clock,
//! a fixed TPM attestation key, and the structure-aware generators. Nothing here reads the
//! fuzz input except [`split`], [`status`] and [`structured`]; fixtures may panic (they are fixed), the
//! input's parsing results never do.

pub mod fixtures;
pub mod split;
pub mod status;
pub mod structured;
pub mod tpm;
