//! The EK certificate profile (TCG EK Credential Profile §3.2): without it, any RSA certificate
//! under a configured EK root, a CA's or a TLS server's say, would pass for a TPM's endorsement
//! key, and a credential challenge made for it would not prove that the AK sits in a TPM.

use der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::name::GeneralName;

use super::TpmError;
use crate::certificate::Cert;
use crate::AttestationError;

/// tcg-kp-EKCertificate.
const EK_CERTIFICATE_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.8.1");
/// tcg-at-tpmManufacturer, tcg-at-tpmModel, tcg-at-tpmVersion.
const TPM_ATTRIBUTES: [ObjectIdentifier; 3] = [
    ObjectIdentifier::new_unwrap("2.23.133.2.1"),
    ObjectIdentifier::new_unwrap("2.23.133.2.2"),
    ObjectIdentifier::new_unwrap("2.23.133.2.3"),
];

/// Fails unless `cert` is an RSA EK certificate's profile: not a CA, keyUsage with
/// keyEncipherment, and the TCG EK certificate EKU or the TPM manufacturer, model and version
/// attributes in a subjectAltName directoryName.
pub fn check_ek_certificate(cert: &Cert) -> Result<(), AttestationError> {
    if cert.is_ca()? {
        return Err(TpmError::EkCertificateIsCa.into());
    }
    match cert.key_usage()? {
        None => return Err(TpmError::EkKeyUsage("is missing").into()),
        Some(ku) if !ku.key_encipherment() => {
            return Err(TpmError::EkKeyUsage("does not include keyEncipherment").into())
        }
        Some(_) => {}
    }
    let eku = cert.extended_key_usage()?.is_some_and(|eku| eku.0.contains(&EK_CERTIFICATE_EKU));
    if !eku && !has_tpm_attributes(cert)? {
        return Err(TpmError::NotEkCertificate.into());
    }
    Ok(())
}

/// Whether one directoryName in subjectAltName holds all three TPM attributes.
fn has_tpm_attributes(cert: &Cert) -> Result<bool, AttestationError> {
    let Some(san) = cert.subject_alt_name()? else { return Ok(false) };
    Ok(san.0.iter().any(|name| match name {
        GeneralName::DirectoryName(dn) => TPM_ATTRIBUTES
            .iter()
            .all(|oid| dn.0.iter().flat_map(|rdn| rdn.0.iter()).any(|atv| atv.oid == *oid)),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> Cert {
        Cert::from_pem_or_der(&std::fs::read(format!("tests/data/ek-test/{name}.pem")).unwrap()).unwrap()
    }

    fn refusal(name: &str) -> TpmError {
        match check_ek_certificate(&cert(name)) {
            Err(AttestationError::Tpm(e)) => e,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn ek_certificates_with_the_eku_or_the_tpm_attributes_pass() {
        for name in ["ek", "ek-eku-only", "ek-san-only", "swtpm-ek"] {
            check_ek_certificate(&cert(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Each certificate here chains to the test root: the profile, not the chain, decides.
        let root = cert("root");
        cert("ek-ca").check_issued_by(&root).unwrap();
        cert("tls-server").check_issued_by(&root).unwrap();
    }

    #[test]
    fn a_ca_certificate_under_an_ek_root_is_not_an_ek() {
        assert_eq!(refusal("ek-ca"), TpmError::EkCertificateIsCa);
        // The root itself (self-issued, so it "chains" to itself) is refused the same way.
        assert_eq!(refusal("root"), TpmError::EkCertificateIsCa);
    }

    #[test]
    fn an_ek_certificate_must_allow_key_encipherment() {
        assert_eq!(refusal("ek-no-key-usage"), TpmError::EkKeyUsage("is missing"));
        assert_eq!(refusal("ek-sign-only"), TpmError::EkKeyUsage("does not include keyEncipherment"));
    }

    #[test]
    fn a_certificate_without_the_eku_or_all_tpm_attributes_is_not_an_ek() {
        assert_eq!(refusal("tls-server"), TpmError::NotEkCertificate);
        assert_eq!(refusal("ek-partial-san"), TpmError::NotEkCertificate);
    }

    #[test]
    fn a_repeated_profile_extension_is_refused() {
        // ek.pem with its keyUsage extension's OID rewritten to basicConstraints': two of them.
        let der = cert("ek").der().to_vec();
        let ku = [0x06, 0x03, 0x55, 0x1d, 0x0f];
        let at = der.windows(ku.len()).position(|w| w == ku).unwrap();
        let mut twice = der.clone();
        twice[at + 4] = 0x13;
        let err = check_ek_certificate(&Cert::from_der(&twice).unwrap()).unwrap_err();
        assert!(matches!(err, AttestationError::CertificateInvalid(ref m) if m.contains("twice")), "{err}");
    }
}
