//! Which key store works on this machine: each candidate probed through the same backends the
//! daemon opens, strongest first (a TPM with an EK certificate, a YubiKey behind pcscd, a
//! PKCS#11 module the user names, the software store).

use std::path::PathBuf;

use super::config_text::{KeyStoreChoice, PinLine};
#[cfg(feature = "yubikey")]
use crate::daemon::config::Mode;

/// The key-store backends `warrantd setup --backend` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The strongest that works here.
    Auto,
    /// A TPM 2.0 (`--tcti`, default the kernel's resource manager).
    Tpm,
    /// A YubiKey behind pcscd.
    Yubikey,
    /// A PKCS#11 token (`--pkcs11-module`, `--token`, `--pin-file`).
    Pkcs11,
    /// Software key files sealed with a generated passphrase.
    Soft,
}

impl BackendArg {
    /// How strong a store `backend` (a configuration's name) is: keys born in hardware that
    /// attests them (tpm, yubikey), keys on a token (pkcs11), key files (soft); `None` for a
    /// name this build does not know.
    pub fn strength(backend: &str) -> Option<u8> {
        match backend {
            "tpm" | "yubikey" => Some(3),
            "pkcs11" => Some(2),
            "soft" => Some(1),
            _ => None,
        }
    }
}

/// What the probes are given.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The mode the configuration is for (a system daemon has no one to ask for a PIN).
    #[cfg(feature = "yubikey")]
    pub mode: Mode,
    /// The TCTI a TPM is looked for on.
    pub tcti: String,
    /// The YubiKey, when several are present.
    pub serial: Option<u32>,
    /// A PKCS#11 module, and the token's label.
    pub pkcs11: Option<(PathBuf, String)>,
    /// A PIN file for the YubiKey or the token.
    pub pin_file: Option<PathBuf>,
    /// The software store's passphrase file.
    pub passphrase_file: PathBuf,
    /// The state directory the written configuration will have.
    pub state_dir: PathBuf,
}

/// A key store that works here, what was found, and the warnings about it.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The `[keystore]` to write.
    pub keystore: KeyStoreChoice,
    /// What the probe found (one line).
    pub found: String,
    /// Warnings, written into the configuration and printed.
    pub warnings: Vec<String>,
}

/// Probes `backend` (each candidate in turn for `auto`); `considered` gets a line per
/// candidate passed over, with why. An explicit backend that does not work is an error, and so
/// is, for `auto`, one whose parameters were named (`--pkcs11-module`, `--serial`): a wrong PIN
/// must not quietly become software keys.
pub fn choose(backend: BackendArg, wanted: &Wanted, considered: &mut Vec<String>) -> Result<Choice, String> {
    let candidates: &[BackendArg] = match backend {
        BackendArg::Auto => &[BackendArg::Tpm, BackendArg::Yubikey, BackendArg::Pkcs11, BackendArg::Soft],
        other => &[other][..],
    };
    for candidate in candidates {
        let result = match candidate {
            BackendArg::Tpm => tpm(wanted, backend == BackendArg::Auto),
            BackendArg::Yubikey => yubikey(wanted),
            BackendArg::Pkcs11 => pkcs11(wanted),
            BackendArg::Soft | BackendArg::Auto => Ok(soft(wanted)),
        };
        let named = match candidate {
            BackendArg::Pkcs11 => wanted.pkcs11.is_some(),
            BackendArg::Yubikey => wanted.serial.is_some(),
            _ => false,
        };
        match result {
            Ok(choice) => return Ok(choice),
            Err(why) if backend == BackendArg::Auto && named => {
                return Err(format!(
                    "{why} (it was named on the command line, so auto does not fall back to a weaker key store: fix it, or leave its options out)"
                ))
            }
            Err(why) if backend == BackendArg::Auto => considered.push(why),
            Err(why) => return Err(why),
        }
    }
    Err("no key store works here".into())
}

fn soft(wanted: &Wanted) -> Choice {
    Choice {
        keystore: KeyStoreChoice::Soft { passphrase_file: wanted.passphrase_file.clone() },
        found: format!("software key files sealed with the passphrase in {}", wanted.passphrase_file.display()),
        warnings: vec![
            "software keys are files: authorities refuse to grant them and verifiers to accept their warrants unless told to (--allow-software)"
                .into(),
        ],
    }
}

#[cfg(feature = "tpm")]
fn tpm(wanted: &Wanted, auto: bool) -> Result<Choice, String> {
    let tcti = &wanted.tcti;
    if let Some(device) = tcti.strip_prefix("device:") {
        let node = std::path::Path::new(device.split(',').next().unwrap_or(device));
        if !node.exists() {
            return Err(format!(
                "TPM: {} does not exist (no TPM 2.0, or no kernel resource manager)",
                node.display()
            ));
        }
    }
    let facts = warrant_hsm_backends::tpm::probe(tcti).map_err(|e| format!("TPM on {tcti}: {e}"))?;
    let found =
        format!("TPM 2.0 on {tcti}: manufacturer {}, firmware {}", facts.manufacturer, facts.firmware);
    let mut warnings = Vec::new();
    if facts.ek_certificate.is_none() {
        let why = "this TPM has no EK certificate in NV: an authority cannot tell it is a real TPM, so it cannot enroll its keys";
        if auto {
            return Err(format!("{found}: {why} (use --backend tpm to choose it anyway)"));
        }
        warnings.push(why.into());
    }
    if facts.in_lockout {
        warnings.push(
            "the TPM is in dictionary-attack lockout: keys with a PIN cannot be used until it recovers"
                .into(),
        );
    }
    Ok(Choice { keystore: KeyStoreChoice::Tpm { tcti: tcti.clone() }, found, warnings })
}

#[cfg(not(feature = "tpm"))]
fn tpm(wanted: &Wanted, _: bool) -> Result<Choice, String> {
    Err(format!(
        "TPM on {}: this build of warrantd has no TPM backend (built without the `tpm` feature)",
        wanted.tcti
    ))
}

#[cfg(feature = "yubikey")]
fn yubikey(wanted: &Wanted) -> Result<Choice, String> {
    use warrant_hsm_backends::yubikey::probe;
    let cards = probe().map_err(|e| format!("YubiKey: {e}"))?;
    let card = match (wanted.serial, cards.as_slice()) {
        (_, []) => return Err("YubiKey: none present (pcscd answers, but no PIV card is in a reader)".into()),
        (Some(serial), cards) => cards
            .iter()
            .find(|c| c.serial == Some(serial))
            .ok_or_else(|| format!("YubiKey: none with serial {serial} is present"))?,
        (None, [card]) => card,
        (None, cards) => {
            let serials: Vec<String> = cards
                .iter()
                .map(|c| c.serial.map_or_else(|| "serial unknown".into(), |s| s.to_string()))
                .collect();
            return Err(format!(
                "YubiKey: several are present ({}): name one with --serial",
                serials.join(", ")
            ));
        }
    };
    let (major, minor, patch) = card.firmware;
    let Some(serial) = card.serial else {
        return Err(format!(
            "YubiKey in reader {:?} (firmware {major}.{minor}.{patch}): its serial cannot be read without leaving the PIV application (firmware before 5), so setup cannot name it",
            card.reader
        ));
    };
    let found = format!("YubiKey {serial} (firmware {major}.{minor}.{patch}) in reader {:?}", card.reader);
    let mut warnings = Vec::new();
    if card.ysa_2024_03() {
        warnings.push(format!(
            "firmware {major}.{minor}.{patch} is below 5.7.0: its ECDSA keys are exposed to YSA-2024-03, and authorities refuse them unless they set allow_ysa_2024_03"
        ));
    }
    match card.default_management_key {
        Some(true) => warnings.push(
            "the card still has the factory management key: run `warrant yubikey setup` (with warrantd stopped) before creating keys".into(),
        ),
        Some(false) => {}
        None => warnings.push(
            "the card does not say whether the factory management key is set (firmware before 5.3): unless `warrant yubikey setup` has been run on it, run it (with warrantd stopped) before creating keys".into(),
        ),
    }
    let pin = yubikey_pin(wanted, &mut warnings).map_err(|why| format!("YubiKey {serial}: {why}"))?;
    Ok(Choice { keystore: KeyStoreChoice::Yubikey { serial, pin }, found, warnings })
}

/// Where the YubiKey's PIN comes from: the file named, else (user mode) an askpass that asks
/// the person at the desktop. A system daemon has no one to ask: it needs the file.
#[cfg(feature = "yubikey")]
fn yubikey_pin(wanted: &Wanted, warnings: &mut Vec<String>) -> Result<PinLine, String> {
    const ASKPASS: &str = "/usr/bin/ssh-askpass";
    match (&wanted.pin_file, wanted.mode) {
        (Some(file), _) => Ok(PinLine::File(file.clone())),
        (None, Mode::System) => Err(format!(
            "a system daemon has no one to ask for the PIN: give --pin-file FILE (mode 0600, owned by user {}), or set pin_credential by hand for a LoadCredential= drop-in",
            crate::system_unit::USER
        )),
        (None, Mode::User) => {
            if !std::path::Path::new(ASKPASS).exists() {
                warnings.push(format!(
                    "{ASKPASS} is missing: install ssh-askpass, or name a PIN file (--pin-file) and run setup again"
                ));
            }
            Ok(PinLine::Askpass(ASKPASS.into()))
        }
    }
}

#[cfg(not(feature = "yubikey"))]
fn yubikey(wanted: &Wanted) -> Result<Choice, String> {
    let which = wanted.serial.map(|s| format!(" {s}")).unwrap_or_default();
    Err(format!(
        "YubiKey{which}: this build of warrantd has no YubiKey backend (built without the `yubikey` feature)"
    ))
}

fn pkcs11(wanted: &Wanted) -> Result<Choice, String> {
    let Some((module, token)) = &wanted.pkcs11 else {
        return Err("PKCS#11: no module named (--pkcs11-module and --token)".into());
    };
    let Some(pin_file) = &wanted.pin_file else {
        return Err("PKCS#11: the token's PIN is needed in a file (--pin-file, mode 0600)".into());
    };
    let keystore = KeyStoreChoice::Pkcs11 {
        module: module.clone(),
        token: token.clone(),
        pin: PinLine::File(pin_file.clone()),
    };
    let settings = warrant_hsm_backends::pkcs11::Pkcs11Settings {
        module: Some(module.clone()),
        token: Some(token.clone()),
        pin_file: Some(pin_file.clone()),
        ..Default::default()
    };
    let config = warrant_hsm_backends::KeyStoreConfig::Pkcs11(settings);
    let store = warrant_hsm_backends::open(&config, &wanted.state_dir)
        .map_err(|e| format!("PKCS#11 token {token:?} in {}: {e}", module.display()))?;
    let keys = store.list().map_err(|e| format!("PKCS#11 token {token:?}: {e}"))?;
    Ok(Choice {
        keystore,
        found: format!("PKCS#11 token {token:?} in {} ({} key(s); login works)", module.display(), keys.len()),
        warnings: vec![
            "a PKCS#11 token's evidence is self-reported: authorities grant it only with --allow-self-reported".into(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            #[cfg(feature = "yubikey")]
            mode: Mode::User,
            tcti: "device:/nonexistent/tpmrm0".into(),
            serial: None,
            pkcs11: None,
            pin_file: None,
            passphrase_file: "/nonexistent/passphrase".into(),
            state_dir: "/nonexistent/state".into(),
        }
    }

    #[test]
    fn auto_falls_back_past_stores_not_named_but_not_past_a_named_one() {
        let mut considered = Vec::new();
        let choice = choose(BackendArg::Auto, &wanted(), &mut considered).unwrap();
        assert_eq!(choice.keystore.backend(), "soft");
        assert!(!considered.is_empty());

        let token = Wanted {
            pkcs11: Some(("/nonexistent/libtoken.so".into(), "warrant".into())),
            pin_file: Some("/nonexistent/pin".into()),
            ..wanted()
        };
        let e = choose(BackendArg::Auto, &token, &mut Vec::new()).unwrap_err();
        assert!(e.contains("PKCS#11 token \"warrant\"") && e.contains("does not fall back"), "{e}");

        let card = Wanted { serial: Some(u32::MAX), ..wanted() };
        let e = choose(BackendArg::Auto, &card, &mut Vec::new()).unwrap_err();
        assert!(e.contains("YubiKey") && e.contains("does not fall back"), "{e}");
    }

    #[cfg(feature = "yubikey")]
    #[test]
    fn a_system_daemon_gets_a_pin_file_never_an_askpass() {
        let mut warnings = Vec::new();
        let user = yubikey_pin(&wanted(), &mut warnings).unwrap();
        assert!(matches!(user, PinLine::Askpass(_)), "a user's daemon asks at the desktop");
        let system = Wanted { mode: Mode::System, ..wanted() };
        let e = yubikey_pin(&system, &mut warnings).unwrap_err();
        assert!(e.contains("no one to ask") && e.contains("--pin-file"), "{e}");
        let with_file = Wanted { pin_file: Some("/etc/warrant/pin".into()), ..system };
        assert_eq!(yubikey_pin(&with_file, &mut warnings).unwrap(), PinLine::File("/etc/warrant/pin".into()));
    }
}
