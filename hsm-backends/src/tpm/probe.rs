//! What a TPM says about itself, for `warrantd setup` and `warrantd doctor`: who made it, its
//! firmware, its EK certificate, its dictionary-attack lockout and its PCR banks. Read-only:
//! nothing is created in the TPM and no authorisation is tried.

use std::str::FromStr;

use tss_esapi::abstraction::ek;
use tss_esapi::abstraction::AsymmetricAlgorithmSelection;
use tss_esapi::constants::{CapabilityType, PropertyTag};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::CapabilityData;
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::Context;

use crate::Error;

/// TPMA_PERMANENT's inLockout bit.
const IN_LOCKOUT: u32 = 1 << 9;

/// What the TPM reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmFacts {
    /// TPM_PT_MANUFACTURER as its four ASCII letters (`IBM`, `INTC`, `STM`, ...).
    pub manufacturer: String,
    /// TPM_PT_FIRMWARE_VERSION_1 and _2, as the vendor's dotted version.
    pub firmware: String,
    /// The EK certificate (DER) from NV, RSA-2048 index first, then ECC P-256; `None`: none.
    pub ek_certificate: Option<Vec<u8>>,
    /// The dictionary-attack lockout is in force.
    pub in_lockout: bool,
    /// Authorisation failures counted, and the most allowed before lockout.
    pub lockout_counter: (u32, u32),
    /// The PCR banks with PCRs allocated (`sha1`, `sha256`, ...).
    pub pcr_banks: Vec<String>,
}

/// Connects on `tcti` and reads the TPM's facts.
pub fn probe(tcti: &str) -> Result<TpmFacts, Error> {
    let conf =
        TctiNameConf::from_str(tcti).map_err(|source| Error::TpmTcti { tcti: tcti.to_owned(), source })?;
    let mut ctx =
        Context::new(conf).map_err(|source| Error::Tpm { operation: "connect to the TPM", source })?;
    let mut property = |tag: PropertyTag, operation: &'static str| {
        ctx.get_tpm_property(tag)
            .map(Option::unwrap_or_default)
            .map_err(|source| Error::Tpm { operation, source })
    };
    let manufacturer = property(PropertyTag::Manufacturer, "read the manufacturer")?;
    let firmware_1 = property(PropertyTag::FirmwareVersion1, "read the firmware version")?;
    let firmware_2 = property(PropertyTag::FirmwareVersion2, "read the firmware version")?;
    let permanent = property(PropertyTag::Permanent, "read the permanent attributes")?;
    let counter = property(PropertyTag::LockoutCounter, "read the lockout counter")?;
    let max_tries = property(PropertyTag::MaxAuthFail, "read the lockout threshold")?;
    let (banks, _) = ctx
        .get_capability(CapabilityType::AssignedPcr, 0, 16)
        .map_err(|source| Error::Tpm { operation: "read the PCR banks", source })?;
    let pcr_banks = match banks {
        CapabilityData::AssignedPcr(list) => list
            .get_selections()
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| bank_name(s.hashing_algorithm()))
            .collect(),
        _ => Vec::new(),
    };
    let ek_certificate = [
        AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
    ]
    .into_iter()
    .find_map(|alg| ek::retrieve_ek_pubcert(&mut ctx, alg).ok());
    Ok(TpmFacts {
        manufacturer: manufacturer
            .to_be_bytes()
            .iter()
            .filter(|b| b.is_ascii_graphic())
            .map(|&b| char::from(b))
            .collect(),
        firmware: format!(
            "{}.{}.{}.{}",
            firmware_1 >> 16,
            firmware_1 & 0xffff,
            firmware_2 >> 16,
            firmware_2 & 0xffff
        ),
        ek_certificate,
        in_lockout: permanent & IN_LOCKOUT != 0,
        lockout_counter: (counter, max_tries),
        pcr_banks,
    })
}

fn bank_name(hash: HashingAlgorithm) -> String {
    match hash {
        HashingAlgorithm::Sha1 => "sha1".into(),
        HashingAlgorithm::Sha256 => "sha256".into(),
        HashingAlgorithm::Sha384 => "sha384".into(),
        HashingAlgorithm::Sha512 => "sha512".into(),
        HashingAlgorithm::Sm3_256 => "sm3_256".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}
