//! The standard extensions and the subject name that the attestation profiles (YubiKey f9 and
//! slot certificates, TPM EK certificates) check. Each is decoded strictly, and an extension
//! that appears twice is refused (RFC 5280 §4.2): two basicConstraints could say two things.

use der::asn1::{ObjectIdentifier, PrintableStringRef, Utf8StringRef};
use der::oid::AssociatedOid;
use der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
};

use super::{invalid, Cert};
use crate::AttestationError;

const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// id-ad-caIssuers (RFC 5280 §4.2.2.1): where the issuer's certificate can be fetched.
const CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

impl Cert {
    /// The DER value of the extension `oid`, if present; refused if it appears more than once.
    pub fn extension(&self, oid: ObjectIdentifier) -> Result<Option<&[u8]>, AttestationError> {
        let mut found = None;
        for ext in self.parsed.tbs_certificate.extensions.iter().flatten().filter(|e| e.extn_id == oid) {
            if found.replace(ext.extn_value.as_bytes()).is_some() {
                return Err(invalid(format!("{} carries extension {oid} twice", self.subject())));
            }
        }
        Ok(found)
    }

    /// Whether any extension's OID is `arc` or lies under it.
    pub fn has_extension_under(&self, arc: ObjectIdentifier) -> bool {
        // An OID's encoding ends each arc on a byte below 0x80, so a byte prefix that is a
        // whole OID is an arc prefix.
        self.parsed
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .any(|e| e.extn_id.as_bytes().starts_with(arc.as_bytes()))
    }

    fn decoded<T: AssociatedOid + for<'a> Decode<'a>>(
        &self,
        what: &str,
    ) -> Result<Option<T>, AttestationError> {
        self.extension(T::OID)?
            .map(|der| {
                T::from_der(der).map_err(|e| invalid(format!("{}: malformed {what}: {e}", self.subject())))
            })
            .transpose()
    }

    /// basicConstraints, if present.
    pub fn basic_constraints(&self) -> Result<Option<BasicConstraints>, AttestationError> {
        self.decoded("basicConstraints")
    }

    /// keyUsage, if present.
    pub fn key_usage(&self) -> Result<Option<KeyUsage>, AttestationError> {
        self.decoded("keyUsage")
    }

    /// extendedKeyUsage, if present.
    pub fn extended_key_usage(&self) -> Result<Option<ExtendedKeyUsage>, AttestationError> {
        self.decoded("extendedKeyUsage")
    }

    /// subjectAltName, if present.
    pub fn subject_alt_name(&self) -> Result<Option<SubjectAltName>, AttestationError> {
        self.decoded("subjectAltName")
    }

    /// The URIs authorityInfoAccess names for the issuer's certificate (caIssuers), in order;
    /// none when the extension is absent. Vendors' EK certificates name their CA this way.
    pub fn ca_issuers(&self) -> Result<Vec<String>, AttestationError> {
        let Some(aia) = self.decoded::<AuthorityInfoAccessSyntax>("authorityInfoAccess")? else {
            return Ok(Vec::new());
        };
        Ok(aia
            .0
            .iter()
            .filter(|access| access.access_method == CA_ISSUERS)
            .filter_map(|access| match &access.access_location {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_owned()),
                _ => None,
            })
            .collect())
    }

    /// Whether basicConstraints is present and asserts cA.
    pub fn is_ca(&self) -> Result<bool, AttestationError> {
        Ok(self.basic_constraints()?.is_some_and(|b| b.ca))
    }

    /// The subject's common name, when the subject is exactly one CN (a UTF8String or a
    /// PrintableString) and nothing else.
    pub fn sole_common_name(&self) -> Option<String> {
        let [rdn] = self.parsed.tbs_certificate.subject.0.as_slice() else { return None };
        let [atv] = rdn.0.as_slice() else { return None };
        if atv.oid != COMMON_NAME {
            return None;
        }
        let text = match atv.value.tag() {
            Tag::Utf8String => Utf8StringRef::try_from(&atv.value).ok()?.as_str().to_owned(),
            Tag::PrintableString => PrintableStringRef::try_from(&atv.value).ok()?.as_str().to_owned(),
            _ => return None,
        };
        Some(text)
    }
}
