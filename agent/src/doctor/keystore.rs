//! The key store's checks, per backend, made through the backends compiled into this warrantd
//! (what they find is what the daemon will find).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use warrant_hsm_backends::KeyStoreConfig;

use super::report::Check;

/// Every check of the configured key store. `state_dir` is where its files go by default;
/// `defaults`: the configuration is warrantd's built-in one, which makes a missing passphrase
/// file while there are no keys.
pub fn checks(config: &KeyStoreConfig, state_dir: &Path, defaults: bool) -> Vec<Check> {
    match config {
        KeyStoreConfig::Soft(s) => {
            let key_dir = s.dir.clone().unwrap_or_else(|| state_dir.join("keys"));
            soft(s.passphrase_file.as_deref(), &key_dir, defaults)
        }
        KeyStoreConfig::Pkcs11(_) => pkcs11(config, state_dir),
        KeyStoreConfig::Tpm(s) => tpm(s),
        KeyStoreConfig::Yubikey(s) => yubikey(s),
    }
}

fn soft(passphrase_file: Option<&Path>, key_dir: &Path, defaults: bool) -> Vec<Check> {
    let mut checks = vec![Check::warn(
        "keystore",
        "software key files: authorities and verifiers refuse them unless told to (--allow-software)",
        "use a TPM, a YubiKey or a PKCS#11 token where the machine has one (`warrant setup --force`)",
    )];
    checks.push(match passphrase_file {
        None => Check::warn(
            "soft.passphrase",
            "keys are not sealed: their files alone protect them",
            "set [keystore] passphrase_file (`warrant setup --backend soft --force` makes one)",
        ),
        Some(path) => match std::fs::metadata(path) {
            Ok(meta) if meta.mode() & 0o077 == 0 => {
                Check::ok("soft.passphrase", format!("{} is private to its owner", path.display()))
            }
            Ok(meta) => Check::fail(
                "soft.passphrase",
                format!("{} has mode {:o}", path.display(), meta.mode() & 0o777),
                format!("chmod 600 {}", path.display()),
            ),
            Err(e) if defaults && e.kind() == std::io::ErrorKind::NotFound && !has_key_files(key_dir) => Check::ok(
                "soft.passphrase",
                format!("{} is not made yet: with no keys in {}, warrantd makes it on its first start", path.display(), key_dir.display()),
            ),
            Err(e) => Check::fail(
                "soft.passphrase",
                format!("{}: {e}", path.display()),
                "restore the passphrase file the keys were sealed with (without keys, `warrant setup --backend soft --force` makes one)",
            ),
        },
    });
    checks
}

fn has_key_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".key")))
        .unwrap_or(false)
}

fn pkcs11(config: &KeyStoreConfig, state_dir: &Path) -> Vec<Check> {
    if let KeyStoreConfig::Pkcs11(settings) = config {
        if let Some(skip) = pkcs11_pin_tries(settings) {
            return vec![skip];
        }
    }
    match warrant_hsm_backends::open(config, state_dir).and_then(|store| store.list().map(|k| k.len())) {
        Ok(keys) => vec![Check::ok("pkcs11", format!("the module loads, the token is present and login works ({keys} key(s))"))],
        Err(e) => vec![Check::fail(
            "pkcs11",
            e.to_string(),
            "check the module path, the token's label or serial (pkcs11-tool --list-slots) and the PIN source",
        )],
    }
}

/// Why the login is not tried (each try of a wrong PIN counts against the token's limit), when
/// the token says its PIN tries are low, final or spent; `None` to go on.
fn pkcs11_pin_tries(settings: &warrant_hsm_backends::pkcs11::Pkcs11Settings) -> Option<Check> {
    let fix = "check the PIN source's content, then log in once by hand (pkcs11-tool --login --test) or start warrantd: a successful login resets the count";
    let tries = match settings.pin_tries() {
        Ok(tries) => tries,
        Err(e) => {
            return Some(Check::fail(
                "pkcs11",
                e.to_string(),
                "check the module path and the token's label or serial (pkcs11-tool --list-slots)",
            ))
        }
    };
    if tries.locked {
        Some(Check::fail(
            "pkcs11",
            "the token's user PIN is locked: login not tried",
            "unblock it with the SO PIN (pkcs11-tool --login --login-type so --init-pin), then set the PIN source",
        ))
    } else if tries.final_try {
        Some(Check::fail(
            "pkcs11",
            "one PIN try is left before the token locks: login not tried (doctor does not spend it)",
            fix,
        ))
    } else if tries.count_low {
        Some(Check::warn(
            "pkcs11",
            "a wrong PIN was given since the last successful login (PIN count low): login not tried, so as not to spend a try",
            fix,
        ))
    } else {
        None
    }
}

#[cfg(feature = "tpm")]
fn tpm(settings: &warrant_hsm_backends::tpm::TpmSettings) -> Vec<Check> {
    use warrant_attestation::certificate::Cert;
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
                checks.push(Check::fail(
                    "tpm.device",
                    format!("{}: {e}", node.display()),
                    "join group tss (the udev rules 70-warrant.rules give it /dev/tpmrm0): `sudo usermod -aG tss $USER`, then log in again",
                ));
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
        Some(der) => match Cert::from_der(der) {
            Ok(cert) => Check::ok(
                "tpm.ek-certificate",
                format!("present, issued by {}", cert.parsed().tbs_certificate.issuer),
            ),
            Err(e) => Check::fail(
                "tpm.ek-certificate",
                format!("present but unreadable: {e}"),
                "ask the TPM's vendor; until then authorities cannot attest this TPM",
            ),
        },
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
fn tpm(_: &warrant_hsm_backends::tpm::TpmSettings) -> Vec<Check> {
    vec![Check::fail(
        "tpm",
        "this warrantd has no TPM backend",
        "install a build with the `tpm` feature (the Debian package)",
    )]
}

#[cfg(feature = "yubikey")]
fn yubikey(settings: &warrant_hsm_backends::yubikey::YubikeySettings) -> Vec<Check> {
    use warrant_hsm_backends::yubikey::probe;
    let cards = match probe() {
        Ok(cards) => cards,
        Err(e) => {
            return vec![Check::fail(
                "yubikey.pcscd",
                e.to_string(),
                "start pcscd (sudo systemctl enable --now pcscd.socket); system mode also needs the polkit rule 50-warrant-pcscd.rules",
            )]
        }
    };
    let mut checks = vec![Check::ok("yubikey.pcscd", "pcscd answers")];
    let card = match (settings.serial_number, cards.as_slice()) {
        (_, []) => {
            checks.push(Check::fail(
                "yubikey.card",
                "no YubiKey is present",
                "insert it; the udev rules 70-warrant.rules give the seat's user access",
            ));
            return checks;
        }
        (Some(serial), cards) => match cards.iter().find(|c| c.serial == serial) {
            Some(card) => card,
            None => {
                let present: Vec<String> = cards.iter().map(|c| c.serial.to_string()).collect();
                checks.push(Check::fail(
                    "yubikey.card",
                    format!("the YubiKey {serial} is not present (present: {})", present.join(", ")),
                    "insert it, or set [keystore] serial_number to a card that is",
                ));
                return checks;
            }
        },
        (None, [card]) => card,
        (None, cards) => {
            let present: Vec<String> = cards.iter().map(|c| c.serial.to_string()).collect();
            checks.push(Check::fail(
                "yubikey.card",
                format!("several YubiKeys are present ({})", present.join(", ")),
                "set [keystore] serial_number",
            ));
            return checks;
        }
    };
    let (major, minor, patch) = card.firmware;
    checks.push(Check::ok(
        "yubikey.card",
        format!("serial {}, firmware {major}.{minor}.{patch}, in reader {:?}", card.serial, card.reader),
    ));
    checks.push(if card.ysa_2024_03() {
        Check::warn(
            "yubikey.ysa-2024-03",
            format!("firmware {major}.{minor}.{patch} is below 5.7.0: its ECDSA keys are exposed to YSA-2024-03, and authorities refuse them unless allow_ysa_2024_03"),
            "use a YubiKey with firmware 5.7.0 or later",
        )
    } else {
        Check::ok("yubikey.ysa-2024-03", "firmware 5.7.0 or later: not affected")
    });
    checks.push(if card.default_management_key {
        Check::fail(
            "yubikey.management-key",
            "the factory default management key is still set: anyone with the card can replace its keys, and warrantd cannot create keys",
            "stop warrantd and run `warrant yubikey setup --new-pin-file FILE --new-puk-file FILE`",
        )
    } else {
        Check::ok("yubikey.management-key", "not the factory default")
    });
    checks.push(match card.pin_tries {
        Some(0) => Check::fail(
            "yubikey.pin",
            "the PIN is blocked",
            "unblock it with the PUK (ykman piv access unblock-pin)",
        ),
        Some(tries) if tries < 3 => Check::warn(
            "yubikey.pin",
            format!("{tries} PIN tries left"),
            "check the configured PIN source before the PIN blocks",
        ),
        Some(tries) => Check::ok("yubikey.pin", format!("{tries} PIN tries left")),
        None => {
            Check::warn("yubikey.pin", "the card did not say how many PIN tries are left", "ykman piv info")
        }
    });
    checks
}

#[cfg(not(feature = "yubikey"))]
fn yubikey(_: &warrant_hsm_backends::yubikey::YubikeySettings) -> Vec<Check> {
    vec![Check::fail(
        "yubikey",
        "this warrantd has no YubiKey backend",
        "install a build with the `yubikey` feature (the Debian package)",
    )]
}
