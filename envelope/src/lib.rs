//! The warrant wire format and its offline verifier.
//!
//! Four signed objects, each a tagged COSE_Sign1 (RFC 9052) over a CWT claims set (RFC 8392),
//! ES256 only: the [grant](issue::GrantClaims), the [warrant](device::WarrantClaims), the
//! [status list](issue::StatusListClaims) and the [enrollment request](device::EnrollmentClaims).
//! docs/FORMAT.md is the normative description.
//!
//! The crate serves three roles, each from its own module:
//!
//! - [`verify`]: a downstream service that checks warrants (the [`verify::Verifier`]);
//! - [`issue`]: an authority that enrolls devices, issues grants and publishes status lists;
//! - [`device`]: a device that signs enrollment requests and warrants.
//!
//! Each module re-exports the types its signatures use (keys, attribute values, device facts),
//! so a service depends on this crate alone. The root holds what every role shares: the
//! [`Error`] and its [`ErrorKind`], and [`inspect`] for looking at an object without verifying
//! it.
//!
//! A downstream service builds one [`Verifier`](verify::Verifier) with the authorities it
//! trusts and its own audience, keeps the latest status list installed, and calls
//! [`Verifier::verify`](verify::Verifier::verify) with each warrant, the operation the service
//! performs for the request, and the request as received. No network, no hardware library.
//!
//! ```no_run
//! use warrant_envelope::verify::{Expected, HttpRequest, P256PublicKey, TrustedAuthority, Verifier};
//! use warrant_envelope::ErrorKind;
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
//! // Per request: what this endpoint does, the warrant from the request's header, and the
//! // request as received. A warrant for another action or resource is refused.
//! let deploy = Expected { action: "deploy", resource: "prod/api" };
//! let request = HttpRequest { method: "POST", target: "https://api.example.com/v1/deploy", body: &body };
//! match verifier.verify(&warrant, &deploy, &request, None) {
//!     Ok(ok) => println!("{} may {} {}", ok.principal, ok.action, ok.resource),
//!     // The verifier could not decide (its replay store is full or down): never accept.
//!     Err(e) if e.kind() == ErrorKind::Unavailable => println!("503 {}: {e}", e.code()),
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

pub use error::{Error, ErrorKind};
pub use inspect::{inspect, Claims, Inspected};
pub use keys::{thumbprint, KeyId};
pub use object_type::ObjectType;

pub mod verify {
    //! For a service that verifies warrants: build a [`Verifier`] once, then
    //! [`Verifier::verify`] each request's warrant against the operation the service performs.

    pub use crate::request::HttpRequest;
    pub use crate::target::{check_request_target, TargetDefect};
    pub use crate::verifier::{
        Clock, Expected, ManualClock, MemoryReplayStore, ReplayKey, ReplayStore, StatusListInfo, SystemClock,
        TrustedAuthority, VerifiedWarrant, Verifier, VerifierBuilder, DEFAULT_CLOCK_SKEW_SECS,
    };
    pub use warrant_attestation::{
        Assurance, AttestationError, AttributeValue, BackendKind, DeviceFacts, EvidenceKind, EvidencePlace,
        P256PublicKey,
    };
}

pub mod issue {
    //! For an authority: verify enrollment requests, sign grants and status lists.

    pub use crate::enrollment::{
        verify_enrollment, verify_enrollment_with, EnrollmentClaims, VerifiedEnrollment, CHALLENGE_LEN,
    };
    pub use crate::grant::{EntityData, GrantClaims, StatusReference, MAX_POLICY_BYTES};
    pub use crate::ids::{new_id, random_bytes};
    pub use crate::policy::validate_policy;
    pub use crate::signer::Signer;
    pub use crate::status_list::{
        status_list_digest, StatusBits, StatusListClaims, MAX_STATUS_BYTES, MIN_STATUS_ENTRIES,
    };
    pub use crate::verifier::{Clock, SystemClock, TrustedAuthority};
    pub use warrant_attestation::{
        AttestationError, AttributeValue, BackendKind, DeviceFacts, EnrollmentEvidence, EnrollmentTrust,
        EvidenceKind, EvidencePlace, P256PublicKey,
    };
}

pub mod device {
    //! For a device: sign enrollment requests and warrants, each bound to what it answers.

    pub use crate::digest::sha256;
    pub use crate::enrollment::{EnrollmentClaims, CHALLENGE_LEN};
    pub use crate::ids::new_id;
    pub use crate::request::{HttpRequest, RequestBinding};
    pub use crate::signer::Signer;
    pub use crate::status_list::status_list_freshness;
    pub use crate::target::{check_request_target, TargetDefect};
    pub use crate::warrant::WarrantClaims;
    pub use warrant_attestation::{
        AttributeValue, EnrollmentEvidence, EvidenceKind, P256PublicKey, WarrantEvidence,
    };
}
