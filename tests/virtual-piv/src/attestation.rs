//! What the applet lacks: YubiKey-style attestation. A test CA (made on first start, kept in
//! the card's directory) certifies a device attestation key ("Yubico PIV Attestation", the f9
//! certificate), which certifies each generated key with Yubico's extensions.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
};

use crate::card::SlotKey;

/// The card's attestation identity.
pub struct Attestor {
    f9_key: KeyPair,
    f9_der: Vec<u8>,
    form_factor: u8,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name("warrant virtual PIV test root");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    p
}

fn f9_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name("Yubico PIV Attestation");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.not_before = rcgen::date_time_ymd(2016, 3, 14);
    p.not_after = rcgen::date_time_ymd(2052, 4, 17);
    p
}

fn load_key(path: &Path) -> Result<KeyPair, String> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        return KeyPair::from_pem(&pem).map_err(|e| e.to_string());
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    std::fs::write(path, key.serialize_pem()).map_err(|e| e.to_string())?;
    Ok(key)
}

impl Attestor {
    /// Loads (or makes, on first start) the CA and the device attestation key in `dir`; writes
    /// the CA certificate to `dir/ca.pem` for verifiers in tests.
    pub fn open(dir: &Path, form_factor: u8) -> Result<Self, String> {
        let ca_key = load_key(&dir.join("ca-key.pem"))?;
        let f9_key = load_key(&dir.join("f9-key.pem"))?;
        let ca = ca_params().self_signed(&ca_key).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("ca.pem"), ca.pem()).map_err(|e| e.to_string())?;
        let issuer = Issuer::new(ca_params(), &ca_key);
        let f9 = f9_params().signed_by(&f9_key, &issuer).map_err(|e| e.to_string())?;
        Ok(Self { f9_key, f9_der: f9.der().to_vec(), form_factor })
    }

    /// Replaces the f9 certificate with one from another CA (as an owner can): attestations
    /// then no longer chain to the test root.
    pub fn overwrite_f9(&mut self) -> Result<(), String> {
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let issuer = Issuer::new(ca_params(), &other);
        self.f9_der = f9_params().signed_by(&self.f9_key, &issuer).map_err(|e| e.to_string())?.der().to_vec();
        Ok(())
    }

    /// The slot attestation certificate (DER) for `key` in `slot`.
    pub fn attest(&self, slot: u8, key: &SlotKey, version: [u8; 3], serial: u32) -> Result<Vec<u8>, String> {
        let point = hex::decode(&key.point).map_err(|e| e.to_string())?;
        let mut p = CertificateParams::default();
        p.distinguished_name = name(&format!("YubiKey PIV Attestation {slot:02x}"));
        p.not_before = rcgen::date_time_ymd(2016, 3, 14);
        p.not_after = rcgen::date_time_ymd(2052, 4, 17);
        let oid = |last: u64| [1, 3, 6, 1, 4, 1, 41482, 3, last];
        // A minimal DER INTEGER, as a YubiKey writes it.
        let bytes = serial.to_be_bytes();
        let mut magnitude: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
            magnitude.insert(0, 0);
        }
        let mut serial_der = vec![0x02, magnitude.len() as u8];
        serial_der.extend_from_slice(&magnitude);
        p.custom_extensions = vec![
            CustomExtension::from_oid_content(&oid(3), version.to_vec()),
            CustomExtension::from_oid_content(&oid(7), serial_der),
            CustomExtension::from_oid_content(&oid(8), vec![key.pin_policy, key.touch_policy]),
            CustomExtension::from_oid_content(&oid(9), vec![self.form_factor]),
        ];
        let issuer = Issuer::new(f9_params(), &self.f9_key);
        let cert = p.signed_by(&RawP256(point), &issuer).map_err(|e| e.to_string())?;
        Ok(cert.der().to_vec())
    }

    /// The f9 certificate as the PIV data object 5FFF01 holds it.
    pub fn f9_object(&self) -> Vec<u8> {
        let mut inner = tlv(0x70, &self.f9_der);
        inner.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
        tlv(0x53, &inner)
    }
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// A P-256 public key known only by its point (the card keeps the private part).
struct RawP256(Vec<u8>);

impl PublicKeyData for RawP256 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}
