//! Who a grant is for: the authority decides, never the enrollee. The enrollment request
//! names a principal only so the authority can check that the device asked for the one it
//! intends; a grant is signed for the decided principal or not at all.

use crate::Error;

/// Longest principal accepted (the grant's `sub` is text of at most 1024 bytes).
const MAX_PRINCIPAL: usize = 1024;

/// Checks a principal the authority is given (on a challenge or a grant request).
pub(super) fn check_name(principal: &str) -> Result<(), Error> {
    if principal.is_empty() || principal.len() > MAX_PRINCIPAL {
        return Err(Error::Usage(format!("a principal is 1 to {MAX_PRINCIPAL} bytes of text")));
    }
    Ok(())
}

/// The principal to grant: the one recorded with the challenge, else the one the grant
/// request names; the enrollment's must equal it. Refuses when neither names one, when they
/// disagree, and when the enrollment asks for another.
pub(super) fn decide(
    on_challenge: Option<&str>,
    on_grant: Option<&str>,
    requested: &str,
) -> Result<String, Error> {
    let (intended, decided_by) = match (on_challenge, on_grant) {
        (Some(challenge), Some(grant)) if challenge != grant => {
            return Err(Error::GrantPrincipalConflict { challenge: challenge.into(), grant: grant.into() })
        }
        (Some(challenge), _) => (challenge, "recorded with the challenge"),
        (None, Some(grant)) => (grant, "named by the grant request"),
        (None, None) => return Err(Error::PrincipalUndecided),
    };
    if requested != intended {
        return Err(Error::EnrollmentPrincipalMismatch {
            intended: intended.into(),
            requested: requested.into(),
            decided_by,
        });
    }
    Ok(intended.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_or_the_grant_decides_and_the_enrollment_must_agree() {
        assert_eq!(decide(Some("alice"), None, "alice").unwrap(), "alice");
        assert_eq!(decide(None, Some("alice"), "alice").unwrap(), "alice");
        assert_eq!(decide(Some("alice"), Some("alice"), "alice").unwrap(), "alice");
        assert!(matches!(
            decide(Some("alice"), None, "mallory"),
            Err(Error::EnrollmentPrincipalMismatch { intended, requested, .. })
                if intended == "alice" && requested == "mallory"
        ));
        assert!(matches!(
            decide(None, Some("alice"), "mallory"),
            Err(Error::EnrollmentPrincipalMismatch { .. })
        ));
        assert!(matches!(
            decide(Some("alice"), Some("bob"), "alice"),
            Err(Error::GrantPrincipalConflict { challenge, grant }) if challenge == "alice" && grant == "bob"
        ));
        assert!(matches!(decide(None, None, "alice"), Err(Error::PrincipalUndecided)));
    }

    #[test]
    fn names_are_non_empty_and_bounded() {
        assert!(check_name("alice").is_ok());
        assert!(matches!(check_name(""), Err(Error::Usage(_))));
        assert!(matches!(check_name(&"a".repeat(MAX_PRINCIPAL + 1)), Err(Error::Usage(_))));
    }
}
