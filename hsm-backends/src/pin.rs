//! Where a PIN comes from (a PKCS#11 token's user PIN, a TPM key's authValue, a YubiKey's PIV
//! PIN): a file only its owner can read, a systemd credential (`$CREDENTIALS_DIRECTORY/NAME`,
//! from `LoadCredential=`), a program that prints it (an askpass, on a workstation), or an
//! environment variable (for tests). The PIN is held in a zeroizing buffer and never printed.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::{ConfigError, Error};

/// What to write when the `pin_*` settings name no source, or several.
const ONE_SOURCE: &str = "give exactly one of pin_file, pin_credential, pin_env, pin_askpass";

/// A PIN source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file, mode 0600 or stricter; one trailing newline is dropped.
    File(PathBuf),
    /// A systemd credential of this name.
    Credential(String),
    /// An environment variable of this name.
    Env(String),
    /// A program (an askpass, or a pinentry wrapper) that prints the PIN on its standard output.
    Askpass(PathBuf),
}

impl PinSource {
    /// The source a backend's `pin_file`, `pin_credential`, `pin_env` and `pin_askpass`
    /// settings name: none, or one (two or more are refused).
    pub(crate) fn configured(
        file: Option<&PathBuf>,
        credential: Option<&String>,
        env: Option<&String>,
        askpass: Option<&PathBuf>,
    ) -> Result<Option<Self>, ConfigError> {
        if let Some(file) = file {
            crate::config::absolute("pin_file", file)?;
        }
        if let Some(program) = askpass {
            crate::config::absolute("pin_askpass", program)?;
        }
        let mut given = [
            file.map(|f| PinSource::File(f.clone())),
            credential.map(|c| PinSource::Credential(c.clone())),
            env.map(|e| PinSource::Env(e.clone())),
            askpass.map(|a| PinSource::Askpass(a.clone())),
        ]
        .into_iter()
        .flatten();
        let first = given.next();
        match given.next() {
            Some(_) => Err(ConfigError::new("pin_file", ONE_SOURCE)),
            None => Ok(first),
        }
    }

    /// [`PinSource::configured`] for a backend that cannot work without a PIN.
    pub(crate) fn required(source: Result<Option<Self>, ConfigError>) -> Result<Self, ConfigError> {
        source?.ok_or_else(|| ConfigError::new("pin_file", ONE_SOURCE))
    }

    /// Reads the PIN.
    pub fn read(&self) -> Result<Zeroizing<String>, Error> {
        let path = match self {
            PinSource::Env(var) => {
                return std::env::var(var)
                    .map(Zeroizing::new)
                    .map_err(|_| Error::PinSource(format!("environment variable {var} is not set")))
            }
            PinSource::File(path) => path.clone(),
            PinSource::Askpass(program) => {
                let out = std::process::Command::new(program)
                    .arg("PIN for warrant:")
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| Error::PinSource(format!("{}: {e}", program.display())))?;
                let stdout = Zeroizing::new(out.stdout);
                if !out.status.success() {
                    return Err(Error::PinSource(format!(
                        "{} gave no PIN ({})",
                        program.display(),
                        out.status
                    )));
                }
                let text = std::str::from_utf8(&stdout).map_err(|_| {
                    Error::PinSource(format!("{} printed a PIN that is not UTF-8", program.display()))
                })?;
                return Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()));
            }
            PinSource::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    Error::PinSource(format!(
                        "credential {name:?}: $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)"
                    ))
                })?;
                PathBuf::from(dir).join(name)
            }
        };
        let meta =
            std::fs::metadata(&path).map_err(|e| Error::PinSource(format!("{}: {e}", path.display())))?;
        if meta.mode() & 0o077 != 0 {
            return Err(Error::PinSource(format!(
                "{} has mode {:o}: a file holding a PIN or passphrase must be readable by its owner only (chmod 600)",
                path.display(),
                meta.mode() & 0o777
            )));
        }
        let bytes = Zeroizing::new(
            std::fs::read(&path).map_err(|e| Error::PinSource(format!("{}: {e}", path.display())))?,
        );
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::PinSource(format!("{} is not UTF-8", path.display())))?;
        Ok(Zeroizing::new(text.strip_suffix('\n').unwrap_or(text).to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pin_file_must_be_private_and_loses_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "123456\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = PinSource::File(path.clone()).read().unwrap_err();
        assert!(err.to_string().contains("readable by its owner only"), "{err}");
        assert!(!err.to_string().contains("123456"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(PinSource::File(path).read().unwrap().as_str(), "123456");
        let err = PinSource::Env("WARRANT_TEST_NO_SUCH_PIN_VAR".into()).read().unwrap_err();
        assert!(err.to_string().contains("is not set"), "{err}");
    }
}
