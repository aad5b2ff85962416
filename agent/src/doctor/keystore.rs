//! The key store's checks, per backend, made through the backends compiled into this warrantd
//! (what they find is what the daemon will find): the software store's files and the PKCS#11
//! token here, the TPM's and the YubiKey's in their own modules, and every backend's PIN
//! source.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use warrant_attestation::certificate::Cert;
use warrant_hsm_backends::KeyStoreConfig;

use super::report::Check;
use crate::daemon::config::Mode;

/// Every check of the configured key store. `state_dir` is where its files go by default;
/// `defaults`: the configuration is warrantd's built-in one, which makes a missing passphrase
/// file while there are no keys; `ek_roots`: the CAs a TPM's EK certificate is checked
/// against (none: not checked).
pub fn checks(
    config: &KeyStoreConfig,
    state_dir: &Path,
    defaults: bool,
    mode: Mode,
    ek_roots: &[Cert],
) -> Vec<Check> {
    match config {
        KeyStoreConfig::Soft(s) => {
            let key_dir = s.dir.clone().unwrap_or_else(|| state_dir.join("keys"));
            soft(s.passphrase_file.as_deref(), &key_dir, defaults)
        }
        KeyStoreConfig::Pkcs11(s) => {
            let mut checks = pin_source(s.pin_file.as_deref(), s.pin_askpass.as_deref(), mode);
            checks.extend(pkcs11(config, state_dir));
            checks
        }
        KeyStoreConfig::Tpm(s) => {
            let mut checks = pin_source(s.pin_file.as_deref(), s.pin_askpass.as_deref(), mode);
            checks.extend(super::tpm::checks(s, mode, ek_roots));
            checks
        }
        KeyStoreConfig::Yubikey(s) => {
            let mut checks = pin_source(s.pin_file.as_deref(), s.pin_askpass.as_deref(), mode);
            checks.extend(super::yubikey::checks(s));
            checks
        }
    }
}

/// The PIN source, where the daemon must read it: a `pin_file` it can open and nobody else
/// can read; a `pin_askpass` only in user mode (a system daemon has no one to ask). Credentials
/// and environment variables exist only in the daemon's own environment: not checked.
fn pin_source(file: Option<&Path>, askpass: Option<&Path>, mode: Mode) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(path) = file {
        checks.push(private_readable("pin-file", path, "the PIN file"));
    }
    if let (Some(program), Mode::System) = (askpass, mode) {
        checks.push(Check::fail(
            "pin-askpass",
            format!("pin_askpass = {}: a system daemon has no one to ask for the PIN", program.display()),
            "give the PIN in a file the daemon's user reads (pin_file, mode 0600), or as a systemd credential (pin_credential)",
        ));
    }
    checks
}

/// A secret file the daemon reads: it opens for reading, and its mode keeps group and others
/// out.
fn private_readable(name: &str, path: &Path, what: &str) -> Check {
    let owner_fix = format!(
        "make it the daemon's and private: chown {} {} (system mode; in user mode, yours), chmod 600",
        crate::system_unit::USER,
        path.display()
    );
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.mode() & 0o077 == 0 => {
            Check::ok(name, format!("{what} {} is readable and private to its owner", path.display()))
        }
        Ok(meta) => Check::fail(
            name,
            format!("{what} {} has mode {:o}: others may read it", path.display(), meta.mode() & 0o777),
            format!("chmod 600 {}", path.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Check::fail(name, format!("{what} {}: {e}", path.display()), owner_fix)
        }
        Err(e) => Check::fail(
            name,
            format!("{what} {}: {e}", path.display()),
            format!("restore {what}, or name the right one in agent.toml"),
        ),
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
        Some(path) => match std::fs::symlink_metadata(path) {
            Err(e) if defaults && e.kind() == std::io::ErrorKind::NotFound && !has_key_files(key_dir) => Check::ok(
                "soft.passphrase",
                format!("{} is not made yet: with no keys in {}, warrantd makes it on its first start", path.display(), key_dir.display()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Check::fail(
                "soft.passphrase",
                format!("{}: {e}", path.display()),
                "restore the passphrase file the keys were sealed with (without keys, `warrant setup --backend soft --force` makes one)",
            ),
            _ => private_readable("soft.passphrase", path, "the passphrase file"),
        },
    });
    checks.extend(key_files(key_dir));
    checks
}

/// The key files in `dir` open for reading (the daemon unseals them); none is fine.
fn key_files(dir: &Path) -> Option<Check> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut count = 0;
    for entry in entries.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".key")) {
        count += 1;
        if let Err(e) = std::fs::File::open(entry.path()) {
            return Some(Check::fail(
                "soft.keys",
                format!("{}: {e}", entry.path().display()),
                format!(
                    "the key files are the daemon's: chown -R {} {} (system mode; in user mode, yours)",
                    crate::system_unit::USER,
                    dir.display()
                ),
            ));
        }
    }
    (count > 0)
        .then(|| Check::ok("soft.keys", format!("{count} key file(s) in {}, each readable", dir.display())))
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
