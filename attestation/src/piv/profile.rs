//! What the two certificates of a PIV attestation must look like, so that no other certificate
//! under a pinned Yubico root can stand in for them. The U2F root, for one, also issues FIDO U2F
//! attestation certificates directly, and their batch keys sit on cards with the YSA-2024-03
//! side channel: taken for an f9 certificate, such a key could attest any key it likes.

use der::asn1::ObjectIdentifier;

use crate::certificate::Cert;
use crate::AttestationError;

/// The f9 certificate's subject CN: "Yubico ..." up to firmware 5.7.3, "YubiKey ..." from 5.7.4.
const F9_NAMES: [&str; 2] = ["Yubico PIV Attestation", "YubiKey PIV Attestation"];
/// Extension arcs of FIDO and U2F attestation certificates: the FIDO Alliance's, and Yubico's
/// U2F device identifier.
const FIDO_ARCS: [ObjectIdentifier; 2] =
    [ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724"), ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.2")];
const SLOT_PREFIX: &str = "YubiKey PIV Attestation ";

/// Fails unless `cert` is a PIV attestation intermediate: subject exactly
/// `CN=Yubico PIV Attestation` (or `CN=YubiKey PIV Attestation`), no FIDO/U2F extension, a CA
/// with path length 0 when it carries basicConstraints (YubiKey 4 and some YubiKey 5 f9
/// certificates carry none), and keyCertSign when it carries keyUsage (Yubico's carry none).
pub(super) fn check_f9(cert: &Cert) -> Result<(), AttestationError> {
    if let Some(arc) = FIDO_ARCS.iter().find(|arc| cert.has_extension_under(**arc)) {
        return Err(AttestationError::PivF9IsFidoCertificate(arc.to_string()));
    }
    if !cert.sole_common_name().is_some_and(|cn| F9_NAMES.contains(&cn.as_str())) {
        return Err(AttestationError::PivF9Subject(cert.subject()));
    }
    match cert.basic_constraints()? {
        Some(b) if !b.ca => return Err(AttestationError::PivF9NotCa("cA is false".into())),
        Some(b) if b.path_len_constraint.is_some_and(|n| n > 0) => {
            return Err(AttestationError::PivF9NotCa("pathLenConstraint is above 0".into()))
        }
        _ => {}
    }
    if cert.key_usage()?.is_some_and(|ku| !ku.key_cert_sign()) {
        return Err(AttestationError::PivF9KeyUsage);
    }
    Ok(())
}

/// The slot a slot attestation certificate is for, from its subject, which must be exactly
/// `CN=YubiKey PIV Attestation <slot>` for a PIV slot; a slot certificate is never a CA.
pub(super) fn check_slot(cert: &Cert) -> Result<String, AttestationError> {
    let slot = cert
        .sole_common_name()
        .and_then(|cn| cn.strip_prefix(SLOT_PREFIX).map(str::to_ascii_lowercase))
        .filter(|slot| is_piv_slot(slot))
        .ok_or_else(|| AttestationError::PivSlotSubject(cert.subject()))?;
    if cert.is_ca()? {
        return Err(AttestationError::PivSlotIsCa);
    }
    Ok(slot)
}

/// `9a`, `9c`, `9d`, `9e` or a retired slot `82`-`95`, as two hex digits.
fn is_piv_slot(slot: &str) -> bool {
    slot.len() == 2
        && (matches!(slot, "9a" | "9c" | "9d" | "9e")
            || u8::from_str_radix(slot, 16).is_ok_and(|s| (0x82..=0x95).contains(&s)))
}
