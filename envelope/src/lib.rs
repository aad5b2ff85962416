//! The warrant wire format and its offline verifier.
//!
//! Four signed objects, each a tagged COSE_Sign1 (RFC 9052) over a CWT claims set (RFC 8392),
//! ES256 only: the [grant](GrantClaims), the [warrant](WarrantClaims), the
//! [status list](StatusListClaims) and the [enrollment request](EnrollmentClaims).
//! docs/FORMAT.md is the normative description.
//!
//! A downstream service builds one [`Verifier`] with the authorities it trusts and its own
//! audience, keeps the latest status list installed, and calls [`Verifier::verify`] with each
//! warrant and the request it came with. No network, no hardware library.
//!
//! ```no_run
//! use warrant_attestation::P256PublicKey;
//! use warrant_envelope::{HttpRequest, TrustedAuthority, Verifier};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let authority_key: P256PublicKey = unimplemented!();
//! # let (status_list, warrant, body): (Vec<u8>, Vec<u8>, Vec<u8>) = unimplemented!();
//! // Once, at start: who to trust, and who we are.
//! let verifier = Verifier::builder("https://api.example.com")
//!     .trust(TrustedAuthority { issuer: "acme-authority".into(), keys: vec![authority_key] })
//!     // The grant's policy must permit, and so must this one: hardware-held keys only.
//!     .local_policy(r#"permit(principal, action, resource) when { context.device.hardware };"#)
//!     .build()?;
//!
//! // Whenever the authority publishes: older or forked lists are refused.
//! verifier.install_status_list(&status_list)?;
//!
//! // Per request: the warrant from the request's header, and the request as received.
//! let request = HttpRequest { method: "POST", target: "https://api.example.com/v1/deploy", body: &body };
//! match verifier.verify(&warrant, &request, None) {
//!     Ok(ok) => println!("{} may {} {}", ok.principal, ok.action, ok.resource),
//!     Err(rejection) => println!("403 {}: {rejection}", rejection.code()),
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod attributes;
mod cbor;
mod context_fields;
mod cose;
mod cwt;
mod digest;
mod enrollment;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod grant;
mod ids;
mod inspect;
mod keys;
mod object_type;
mod policy;
mod request;
mod signer;
mod status_list;
mod target;
mod verifier;
mod warrant;

pub use digest::sha256;
pub use enrollment::{
    verify_enrollment, verify_enrollment_with, EnrollmentClaims, VerifiedEnrollment, CHALLENGE_LEN,
};
pub use error::Error;
pub use grant::{EntityData, GrantClaims, StatusReference, MAX_POLICY_BYTES};
pub use ids::{new_id, random_bytes};
pub use inspect::{inspect, Claims, Inspected};
pub use keys::{thumbprint, KeyId, VerifyingKey};
pub use object_type::ObjectType;
pub use policy::validate_policy;
pub use request::{HttpRequest, RequestBinding};
pub use signer::Signer;
pub use status_list::{
    status_list_digest, status_list_freshness, StatusBits, StatusListClaims, MAX_STATUS_BYTES,
    MIN_STATUS_ENTRIES,
};
pub use target::{check_request_target, TargetDefect};
pub use verifier::{
    Clock, ManualClock, MemoryReplayStore, ReplayKey, ReplayStore, StatusListInfo, SystemClock,
    TrustedAuthority, VerifiedWarrant, Verifier, VerifierBuilder, DEFAULT_CLOCK_SKEW_SECS,
};
pub use warrant::WarrantClaims;
