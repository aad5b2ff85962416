//! Device attestation evidence for warrant, and its verification in pure Rust.
//!
//! A device proves where its signing key lives by attaching *evidence* to what it signs.
//! This crate defines the evidence kinds, the device facts an appraisal yields, and the
//! P-256 public key type shared by every other warrant crate. It links no hardware
//! library: a verifier that only checks warrants depends on it alone.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod appraisal;
mod attribute;
pub mod certificate;
mod error;
mod evidence;
mod facts;
pub mod piv;
mod pkcs11;
mod public_key;
mod software;
pub mod tpm;

pub use appraisal::{EnrollmentTrust, StatusListAnchor, WarrantContext};
pub use attribute::AttributeValue;
pub use error::AttestationError;
pub use evidence::{EnrollmentEvidence, EvidenceKind, EvidencePlace, WarrantEvidence};
pub use facts::{Assurance, BackendKind, DeviceFacts};
pub use pkcs11::Pkcs11Report;
pub use public_key::P256PublicKey;
