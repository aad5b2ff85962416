//! Software evidence: the device key is a file on disk and the evidence says exactly that.
//! There is nothing to verify beyond the key's own signature on the enclosing object, which
//! the envelope checks; whether such a device is acceptable at all is for policy to decide.

use crate::{DeviceFacts, P256PublicKey};

pub(crate) fn appraise(_device_key: &P256PublicKey) -> DeviceFacts {
    DeviceFacts::software()
}
