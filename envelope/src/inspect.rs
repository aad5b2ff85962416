//! Decoding any of the four objects for display, without verifying it.

use crate::cose;
use crate::enrollment::EnrollmentClaims;
use crate::grant::{DecodedGrant, GrantClaims};
use crate::keys::KeyId;
use crate::status_list::{DecodedStatusList, StatusListClaims};
use crate::warrant::{DecodedWarrant, WarrantClaims};
use crate::{Error, ObjectType};

/// The claims of an inspected object.
#[derive(Debug, Clone)]
pub enum Claims {
    /// A grant.
    Grant(GrantClaims),
    /// A warrant and the grant embedded in it.
    Warrant(Box<WarrantClaims>, Box<GrantClaims>),
    /// A status list.
    StatusList(StatusListClaims),
    /// An enrollment request.
    EnrollmentRequest(EnrollmentClaims),
}

/// A decoded, **unverified** object.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inspected {
    /// Its type, from the protected header.
    pub object: ObjectType,
    /// The signing key's id.
    pub kid: KeyId,
    /// Its encoded size.
    pub size: usize,
    /// Its claims.
    pub claims: Claims,
}

/// Decodes `bytes` as whichever object its `typ` says, with the same strictness as
/// verification but without checking any signature.
pub fn inspect(bytes: &[u8]) -> Result<Inspected, Error> {
    let object = cose::peek_type(bytes).ok_or_else(|| Error::Malformed {
        object: ObjectType::Warrant,
        reason: "not a warrant object (a tagged COSE_Sign1 with a known typ)".into(),
    })?;
    let (kid, claims) = match object {
        ObjectType::Grant => {
            let g = DecodedGrant::decode(bytes)?;
            (g.signed.kid, Claims::Grant(g.claims))
        }
        ObjectType::Warrant => {
            let w = DecodedWarrant::decode(bytes)?;
            let g = DecodedGrant::decode(&w.claims.grant)?;
            (w.signed.kid, Claims::Warrant(Box::new(w.claims), Box::new(g.claims)))
        }
        ObjectType::StatusList => {
            let s = DecodedStatusList::decode(bytes)?;
            (s.signed.kid, Claims::StatusList(s.claims))
        }
        ObjectType::EnrollmentRequest => {
            let signed = cose::decode(object, bytes)?;
            (signed.kid, Claims::EnrollmentRequest(EnrollmentClaims::from_payload(&signed.payload)?))
        }
    };
    Ok(Inspected { object, kid, size: bytes.len(), claims })
}
