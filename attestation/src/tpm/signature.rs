//! TPMT_SIGNATURE and its verification with a public area's key.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::traits::SignatureScheme;

use super::hash::TpmHash;
use super::public::{TpmPublic, TpmPublicKey};
use super::wire::WireReader;
use super::TpmError;

const ALG_RSASSA: u16 = 0x0014;
const ALG_RSAPSS: u16 = 0x0016;
const ALG_ECDSA: u16 = 0x0018;

/// The signature schemes verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlg {
    /// ECDSA.
    Ecdsa,
    /// RSASSA-PKCS1-v1_5.
    RsaSsa,
    /// RSASSA-PSS.
    RsaPss,
}

impl SignatureAlg {
    /// Name for facts.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlg::Ecdsa => "ecdsa",
            SignatureAlg::RsaSsa => "rsassa",
            SignatureAlg::RsaPss => "rsapss",
        }
    }
}

/// A parsed TPMT_SIGNATURE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmSignature {
    /// The scheme.
    pub alg: SignatureAlg,
    /// The hash the scheme signed with.
    pub hash: TpmHash,
    /// ECDSA `r || s` (each left-padded to 32 bytes) or the RSA signature.
    pub value: Vec<u8>,
}

impl TpmSignature {
    /// Parses a TPMT_SIGNATURE (`tpm2_quote -s` in its default `tss` format).
    pub fn parse(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = WireReader::new("TPMT_SIGNATURE", bytes);
        let alg = r.u16("sigAlg")?;
        let hash = TpmHash::from_id(r.u16("hash")?)?;
        let (alg, value) = match alg {
            ALG_ECDSA => {
                let (rr, s) = (r.sized("signatureR", 32)?, r.sized("signatureS", 32)?);
                let mut value = vec![0u8; 64];
                value[32 - rr.len()..32].copy_from_slice(rr);
                value[64 - s.len()..].copy_from_slice(s);
                (SignatureAlg::Ecdsa, value)
            }
            ALG_RSASSA | ALG_RSAPSS => {
                let sig = r.sized("sig", 512)?.to_vec();
                (if alg == ALG_RSASSA { SignatureAlg::RsaSsa } else { SignatureAlg::RsaPss }, sig)
            }
            other => return Err(TpmError::UnsupportedAlgorithm(format!("signature scheme 0x{other:04x}"))),
        };
        r.finish()?;
        Ok(Self { alg, hash, value })
    }

    /// Verifies this signature over `message` with `signer`'s key.
    pub fn verify(&self, signer: &TpmPublic, message: &[u8]) -> Result<(), TpmError> {
        let digest = self.hash.digest(&[message]);
        let bad = || TpmError::SignatureInvalid;
        match (&signer.key, self.alg) {
            (TpmPublicKey::P256(key), SignatureAlg::Ecdsa) => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key.sec1()).map_err(|_| bad())?;
                let sig = p256::ecdsa::Signature::from_slice(&self.value).map_err(|_| bad())?;
                key.verify_prehash(&digest, &sig).map_err(|_| bad())
            }
            (TpmPublicKey::Rsa { modulus, exponent }, SignatureAlg::RsaSsa | SignatureAlg::RsaPss) => {
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(modulus),
                    rsa::BigUint::from(*exponent),
                )
                .map_err(|e| TpmError::UnsupportedAlgorithm(format!("unusable RSA key: {e}")))?;
                let pss = self.alg == SignatureAlg::RsaPss;
                let result = match (self.hash, pss) {
                    (TpmHash::Sha1, false) => {
                        rsa::Pkcs1v15Sign::new::<sha1::Sha1>().verify(&key, &digest, &self.value)
                    }
                    (TpmHash::Sha256, false) => {
                        rsa::Pkcs1v15Sign::new::<sha2::Sha256>().verify(&key, &digest, &self.value)
                    }
                    (TpmHash::Sha384, false) => {
                        rsa::Pkcs1v15Sign::new::<sha2::Sha384>().verify(&key, &digest, &self.value)
                    }
                    (TpmHash::Sha512, false) => {
                        rsa::Pkcs1v15Sign::new::<sha2::Sha512>().verify(&key, &digest, &self.value)
                    }
                    (TpmHash::Sha1, true) => rsa::Pss::new::<sha1::Sha1>().verify(&key, &digest, &self.value),
                    (TpmHash::Sha256, true) => {
                        rsa::Pss::new::<sha2::Sha256>().verify(&key, &digest, &self.value)
                    }
                    (TpmHash::Sha384, true) => {
                        rsa::Pss::new::<sha2::Sha384>().verify(&key, &digest, &self.value)
                    }
                    (TpmHash::Sha512, true) => {
                        rsa::Pss::new::<sha2::Sha512>().verify(&key, &digest, &self.value)
                    }
                };
                result.map_err(|_| bad())
            }
            _ => Err(TpmError::SignatureKeyMismatch { signature: self.alg.as_str(), key: signer.key_type() }),
        }
    }
}
