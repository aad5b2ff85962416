//! Software evidence: the device key is a file on disk and the evidence says exactly that.
//! There is nothing to verify beyond the key's own signature on the enclosing object, which
//! the envelope checks; whether such a device is acceptable at all is for policy to decide.

use crate::{AttestationError, DeviceFacts, P256PublicKey};

pub(crate) fn appraise(
    _device_key: &P256PublicKey,
    _binding: impl FnOnce() -> [u8; 32],
) -> Result<DeviceFacts, AttestationError> {
    Ok(DeviceFacts::software())
}
