use thiserror::Error;

/// A field of a request body, or a trust file, that does not hold what the API allows.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A hex field is not hex, or not the right length.
    #[error("{field} must be {bytes} bytes in hex ({} hex digits)", 2 * bytes)]
    HexField {
        /// The field's name.
        field: String,
        /// The length it must have.
        bytes: usize,
    },
    /// A context or attribute value is neither a string, a 64-bit integer nor a boolean.
    #[error("{name}: values must be strings, integers (64-bit) or booleans")]
    AttributeType {
        /// The value's name.
        name: String,
    },
    /// A trust file is not valid (not the format, no keys, a key that is not on P-256, a kid
    /// that is not its key's thumbprint).
    #[error("{0}")]
    TrustFile(String),
}
