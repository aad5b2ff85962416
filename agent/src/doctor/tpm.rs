//! The TPM's checks: device node access, the TPM's maker and firmware, its EK certificate
//! checked as an authority checks it (the same code, `tpm_credential::check_ek`), its dictionary-attack
//! lockout and its PCR banks.

#[cfg(feature = "tpm")]
use std::path::Path;

use warrant_attestation::certificate::Cert;
use warrant_hsm_backends::tpm::TpmSettings;

use super::report::Check;
#[cfg(feature = "tpm")]
use crate::authority::tpm_credential::{check_ek, EkRefusal};
use crate::daemon::config::Mode;

/// The TPM's checks: its device node, the TPM itself, its EK certificate (against
/// `ek_roots`), its lockout and PCR banks.
#[cfg(feature = "tpm")]
pub fn checks(settings: &TpmSettings, mode: Mode, ek_roots: &[Cert]) -> Vec<Check> {
    use warrant_hsm_backends::tpm::{probe, DEFAULT_TCTI};
    let tcti = settings.tcti.clone().unwrap_or_else(|| DEFAULT_TCTI.into());
    let mut checks = Vec::new();
    if let Some(device) = tcti.strip_prefix("device:") {
        let node = Path::new(device.split(',').next().unwrap_or(device));
        match nix::unistd::access(node, nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK) {
            Ok(()) => {
                checks.push(Check::ok("tpm.device", format!("{} is readable and writable", node.display())))
            }
            Err(nix::errno::Errno::ENOENT) => {
                checks.push(Check::fail(
                    "tpm.device",
                    format!("{} does not exist", node.display()),
                    "enable the TPM in the firmware set-up (Linux 4.12+ makes /dev/tpmrm0), or choose another key store with `warrant setup --force`",
                ));
                return checks;
            }
            Err(e) => {
                let fix = match mode {
                    Mode::User => "join group tss (the udev rules 70-warrant.rules give it /dev/tpmrm0): `sudo usermod -aG tss $USER`, then log in again",
                    Mode::System => "the unit runs warrantd in group tss (SupplementaryGroups=tss): give group tss read and write on the node (the udev rules 70-warrant.rules do)",
                };
                checks.push(Check::fail("tpm.device", format!("{}: {e}", node.display()), fix));
                return checks;
            }
        }
    }
    let facts = match probe(&tcti) {
        Ok(facts) => facts,
        Err(e) => {
            checks.push(Check::fail(
                "tpm",
                format!("the TPM on {tcti} is unreachable: {e}"),
                "check [keystore] tcti and that the TPM (or tpm2-abrmd, or swtpm) is running",
            ));
            return checks;
        }
    };
    checks.push(Check::ok(
        "tpm",
        format!("on {tcti}: manufacturer {}, firmware {}", facts.manufacturer, facts.firmware),
    ));
    checks.push(match &facts.ek_certificate {
        Some(der) => ek_certificate(der, ek_roots),
        None => Check::fail(
            "tpm.ek-certificate",
            "none in NV (indices 0x01c00002, 0x01c0000a): authorities cannot tell this is a real TPM, so its keys cannot be enrolled",
            "provision the vendor's EK certificate (some firmware set-ups have an option; tpm2_nvdefine/tpm2_nvwrite for a certificate you have), or use another key store",
        ),
    });
    let (counter, max) = facts.lockout_counter;
    checks.push(if facts.in_lockout {
        Check::fail(
            "tpm.lockout",
            format!("in dictionary-attack lockout ({counter} of {max} failures)"),
            "wait for the recovery time, or have the TPM's owner reset it (tpm2_dictionarylockout -c)",
        )
    } else if counter > 0 {
        Check::warn(
            "tpm.lockout",
            format!("{counter} of {max} authorisation failures counted"),
            "check which program used a wrong PIN",
        )
    } else {
        Check::ok("tpm.lockout", format!("not locked out (0 of {max} failures)"))
    });
    let wanted: Vec<String> = settings
        .quote_pcrs
        .banks()
        .unwrap_or_default()
        .iter()
        .map(|(hash, _)| hash.as_str().to_owned())
        .collect();
    let missing: Vec<&String> = wanted.iter().filter(|b| !facts.pcr_banks.contains(b)).collect();
    checks.push(if missing.is_empty() {
        Check::ok("tpm.pcr-banks", format!("allocated: {}", facts.pcr_banks.join(", ")))
    } else {
        Check::fail(
            "tpm.pcr-banks",
            format!("quote_pcrs needs bank(s) {missing:?}; allocated: {}", facts.pcr_banks.join(", ")),
            "quote an allocated bank ([keystore] quote_pcrs), or allocate it (tpm2_pcrallocate)",
        )
    });
    checks
}

#[cfg(not(feature = "tpm"))]
pub fn checks(_: &TpmSettings, _: Mode, _: &[Cert]) -> Vec<Check> {
    vec![Check::fail(
        "tpm",
        "this warrantd has no TPM backend",
        "install a build with the `tpm` feature (the Debian package)",
    )]
}

/// The EK certificate's verdict: whether it chains to `ek_roots` and has the EK profile, as
/// an authority with those roots decides before it makes a challenge; with no roots, what it
/// says about its issuer.
#[cfg(feature = "tpm")]
fn ek_certificate(der: &[u8], ek_roots: &[Cert]) -> Check {
    const NAME: &str = "tpm.ek-certificate";
    let cert = match Cert::from_der(der) {
        Ok(cert) => cert,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("present but unreadable: {e}"),
                "ask the TPM's vendor; until then authorities cannot attest this TPM",
            )
        }
    };
    let issuer = cert.parsed().tbs_certificate.issuer.to_string();
    if ek_roots.is_empty() {
        let aia = match cert.ca_issuers() {
            Ok(urls) if !urls.is_empty() => format!(" (AIA: {})", urls.join(", ")),
            _ => String::new(),
        };
        return Check::warn(
            NAME,
            format!("present, chain not checked: no roots given; its issuer is {issuer}{aia}"),
            "give the EK CAs the authority trusts with --tpm-ek-roots FILE (its [authority] tpm_ek_roots) to check it as the authority will",
        );
    }
    match check_ek(der, ek_roots, warrant_hsm_backends::unix_seconds()) {
        Ok(checked) => Check::ok(NAME, format!("present, chains to {}", checked.anchor.subject())),
        Err(EkRefusal::Unchained(reason)) => Check::fail(
            NAME,
            format!("does not chain to the roots given (issuer {issuer}): {reason}"),
            "an authority with these roots refuses this TPM: give it (and doctor) the TPM vendor's EK CA, found through the certificate's issuer",
        ),
        Err(refusal @ EkRefusal::NotRsa(_)) => Check::fail(
            NAME,
            format!("an authority refuses it: {refusal}"),
            "the authority's credential challenge needs the RSA 2048 EK's certificate (NV index 0x01c00002): provision it (some firmware set-ups have an option), or use another key store",
        ),
        Err(refusal) => Check::fail(
            NAME,
            format!("an authority refuses it: {refusal}"),
            "ask the TPM's vendor; until then authorities cannot attest this TPM",
        ),
    }
}
