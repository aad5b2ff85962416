//! Random identifiers: grant and warrant ids (`cti`) and authority challenges.

use crate::Error;

/// Fresh random bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|_| Error::Signing("the system random generator failed".into()))?;
    Ok(out)
}

/// A new 16-byte object id (`cti`).
pub fn new_id() -> Result<[u8; 16], Error> {
    random_bytes::<16>()
}
