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

mod attributes;
mod cbor;
mod context_fields;
mod cose;
mod cwt;
mod digest;
mod enrollment;
mod error;
mod grant;
mod ids;
mod inspect;
mod keys;
mod object_type;
mod policy;
mod request;
mod signer;
mod status_list;
mod verifier;
mod warrant;

pub use digest::sha256;
pub use enrollment::{verify_enrollment, EnrollmentClaims, VerifiedEnrollment, CHALLENGE_LEN};
pub use error::Error;
pub use grant::{EntityData, GrantClaims, StatusReference, MAX_POLICY_BYTES};
pub use ids::{new_id, random_bytes};
pub use inspect::{inspect, Claims, Inspected};
pub use keys::{thumbprint, KeyId, VerifyingKey};
pub use object_type::ObjectType;
pub use policy::validate_policy;
pub use request::{HttpRequest, RequestBinding};
pub use signer::Signer;
pub use status_list::{StatusBits, StatusListClaims, MAX_STATUS_BYTES};
pub use verifier::{
    Clock, ManualClock, MemoryReplayStore, ReplayStore, StatusListInfo, SystemClock, TrustedAuthority,
    VerifiedWarrant, Verifier, VerifierBuilder, DEFAULT_CLOCK_SKEW_SECS,
};
pub use warrant::WarrantClaims;
