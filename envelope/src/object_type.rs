/// The four signed objects of the format, each with its own `typ` media type and size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// A grant: the authority's capability for one principal's device key.
    Grant,
    /// A warrant: one operation, signed by the device key under a grant.
    Warrant,
    /// A status list: the authority's signed revocation bits.
    StatusList,
    /// An enrollment request: a device asking the authority for a grant.
    EnrollmentRequest,
}

impl ObjectType {
    /// All object types, for look-ups by media type.
    pub const ALL: [ObjectType; 4] =
        [ObjectType::Grant, ObjectType::Warrant, ObjectType::StatusList, ObjectType::EnrollmentRequest];

    /// The media type carried in the protected header's `typ` (RFC 9596).
    pub fn media_type(self) -> &'static str {
        match self {
            ObjectType::Grant => "application/warrant-grant+cwt",
            ObjectType::Warrant => "application/warrant+cwt",
            // The Token Status List's own type (draft-ietf-oauth-status-list): a generic status
            // list consumer reads warrant's lists.
            ObjectType::StatusList => "application/statuslist+cwt",
            ObjectType::EnrollmentRequest => "application/warrant-enrollment+cwt",
        }
    }

    /// The largest encoding accepted for this object.
    pub fn size_limit(self) -> usize {
        match self {
            // A grant carries a Cedar policy set; 16 KiB is several pages of policy.
            ObjectType::Grant => 16 * 1024,
            // A warrant embeds its grant and the device's evidence (TPM quotes, certificates).
            ObjectType::Warrant => 32 * 1024,
            // Compressed bits; the decompressed size is bounded separately.
            ObjectType::StatusList => 256 * 1024,
            // Evidence at enrollment may include certificate chains.
            ObjectType::EnrollmentRequest => 64 * 1024,
        }
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectType::Grant => "grant",
            ObjectType::Warrant => "warrant",
            ObjectType::StatusList => "status list",
            ObjectType::EnrollmentRequest => "enrollment request",
        })
    }
}
