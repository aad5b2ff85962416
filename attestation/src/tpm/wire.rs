//! A bounds-checked reader for TPM 2.0 wire structures (big-endian, `TPM2B` = u16 length +
//! bytes). Every read fails with the name of the field instead of panicking on short input.

use super::TpmError;

/// Reads TPM structures from a byte slice.
pub(crate) struct WireReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> WireReader<'a> {
    /// A reader over `bytes`, which hold a `what` (named in errors).
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0, what }
    }

    pub(crate) fn error(&self, field: &str, reason: &str) -> TpmError {
        TpmError::Malformed(format!("{} {field}: {reason}", self.what))
    }

    pub(crate) fn take(&mut self, field: &str, len: usize) -> Result<&'a [u8], TpmError> {
        let end = self.pos.checked_add(len).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.error(field, "truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, TpmError> {
        Ok(self.take(field, 1)?[0])
    }

    pub(crate) fn u16(&mut self, field: &str) -> Result<u16, TpmError> {
        let b = self.take(field, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, field: &str) -> Result<u32, TpmError> {
        let b = self.take(field, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, field: &str) -> Result<u64, TpmError> {
        let b = self.take(field, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A `TPM2B_*`: u16 size then that many bytes, at most `max`.
    pub(crate) fn sized(&mut self, field: &str, max: usize) -> Result<&'a [u8], TpmError> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(self.error(field, &format!("{len} bytes, more than the {max} allowed")));
        }
        self.take(field, len)
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(self) -> Result<(), TpmError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("end", &format!("{} trailing bytes", self.bytes.len() - self.pos)))
        }
    }
}

/// Appends a `TPM2B_*` (u16 size + bytes).
pub(crate) fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) {
    // Callers pass digests, names and credentials: all far below 64 KiB.
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}
