//! CWT claim keys registered with IANA (RFC 8392, RFC 8747, RFC 9711, Token Status List)
//! that this format uses. Claims of warrant's own are text keys, defined beside their object.

use crate::cbor::Key;

/// Issuer.
pub(crate) const ISS: Key = Key::Int(1, "iss");
/// Subject.
pub(crate) const SUB: Key = Key::Int(2, "sub");
/// Audience.
pub(crate) const AUD: Key = Key::Int(3, "aud");
/// Expiration time.
pub(crate) const EXP: Key = Key::Int(4, "exp");
/// Not before.
pub(crate) const NBF: Key = Key::Int(5, "nbf");
/// Issued at.
pub(crate) const IAT: Key = Key::Int(6, "iat");
/// CWT id.
pub(crate) const CTI: Key = Key::Int(7, "cti");
/// Confirmation (proof-of-possession key), RFC 8747.
pub(crate) const CNF: Key = Key::Int(8, "cnf");
/// The COSE_Key member of `cnf`.
pub(crate) const CNF_COSE_KEY: Key = Key::Int(1, "cnf.COSE_Key");
/// EAT nonce, RFC 9711.
pub(crate) const EAT_NONCE: Key = Key::Int(10, "eat_nonce");
/// Token Status List: the status list itself.
pub(crate) const STATUS_LIST: Key = Key::Int(65533, "status_list");
/// Token Status List: how long a consumer may cache a status list, in seconds.
pub(crate) const TTL: Key = Key::Int(65534, "ttl");
/// Token Status List: a token's reference into a status list.
pub(crate) const STATUS: Key = Key::Int(65535, "status");

/// Longest text claim accepted (identifiers, URIs, actions).
pub(crate) const MAX_TEXT: usize = 1024;
/// Most entries in any attribute map or list from outside.
pub(crate) const MAX_ENTRIES: usize = 64;
