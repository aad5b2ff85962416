//! The text of the configuration `warrantd setup` writes, commented, for one mode and one key
//! store; in user mode with the software store it is also what warrantd runs on when no
//! configuration file exists.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::daemon::config::Mode;

/// The `[keystore]` a generated configuration gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStoreChoice {
    /// Key files sealed with the passphrase in `passphrase_file`.
    Soft {
        /// The passphrase file (mode 0600).
        passphrase_file: PathBuf,
    },
    /// A TPM 2.0 on `tcti`.
    #[cfg(feature = "tpm")]
    Tpm {
        /// The TCTI.
        tcti: String,
    },
    /// The YubiKey with this serial, its PIN from `pin`.
    #[cfg(feature = "yubikey")]
    Yubikey {
        /// The card's serial.
        serial: u32,
        /// Where the PIN comes from.
        pin: PinLine,
    },
    /// A PKCS#11 token.
    Pkcs11 {
        /// The module.
        module: PathBuf,
        /// The token's label.
        token: String,
        /// Where the PIN comes from.
        pin: PinLine,
    },
}

/// A PIN source, as a `[keystore]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinLine {
    /// `pin_file = "..."`.
    File(PathBuf),
    /// `pin_askpass = "..."`.
    #[cfg(feature = "yubikey")]
    Askpass(PathBuf),
}

impl KeyStoreChoice {
    /// The backend's name in the configuration.
    pub fn backend(&self) -> &'static str {
        match self {
            KeyStoreChoice::Soft { .. } => "soft",
            #[cfg(feature = "tpm")]
            KeyStoreChoice::Tpm { .. } => "tpm",
            #[cfg(feature = "yubikey")]
            KeyStoreChoice::Yubikey { .. } => "yubikey",
            KeyStoreChoice::Pkcs11 { .. } => "pkcs11",
        }
    }
}

/// Where the user-mode files go: `$XDG_CONFIG_HOME/warrant` and `$XDG_STATE_HOME/warrant`.
pub fn user_config_dir() -> PathBuf {
    Mode::User.default_config().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The passphrase file the software store gets in `mode`.
pub fn default_passphrase_file(mode: Mode) -> PathBuf {
    match mode {
        Mode::User => user_config_dir().join("passphrase"),
        Mode::System => PathBuf::from("/etc/warrant/passphrase"),
    }
}

/// The configuration for `mode`: `uid` (user mode) is admin and may use every device key;
/// in system mode root is admin and, when `device_group` is given, its members may.
/// `notes` become comments at the top (warnings setup gave).
pub fn render(
    mode: Mode,
    uid: u32,
    device_group: Option<&str>,
    keystore: &KeyStoreChoice,
    notes: &[String],
) -> String {
    let mut t = String::new();
    t.push_str("# warrantd configuration, written by `warrant setup` for this machine.\n");
    t.push_str(
        "# Check it with `warrantd --check-config --config FILE` or `warrant doctor`; every setting\n",
    );
    t.push_str("# is described in warrantd.toml(5), whose example is docs/agent.example.toml.\n");
    for note in notes {
        let _ = writeln!(t, "# NOTE: {}", comment(note));
    }
    t.push('\n');
    let state = mode.default_state_dir();
    match mode {
        Mode::User => {
            t.push_str("# User mode: socket $XDG_RUNTIME_DIR/warrant/agent.sock (0600: only you connect),\n");
            let _ = writeln!(t, "# state {}.", quoted(&state));
            t.push_str("mode = \"user\"\n\n");
        }
        Mode::System => {
            t.push_str(
                "# System mode: socket /run/warrant/agent.sock (group warrant), state /var/lib/warrant.\n",
            );
            t.push_str("mode = \"system\"\n\n");
        }
    }
    t.push_str("[keystore]\n");
    let _ = writeln!(t, "backend = \"{}\"", keystore.backend());
    match keystore {
        KeyStoreChoice::Soft { passphrase_file } => {
            t.push_str(
                "# Software keys: files sealed with this passphrase (Argon2id + XChaCha20-Poly1305).\n",
            );
            t.push_str(
                "# Authorities and verifiers refuse software keys unless told to (--allow-software).\n",
            );
            let _ = writeln!(t, "passphrase_file = {}", quoted(passphrase_file));
        }
        #[cfg(feature = "tpm")]
        KeyStoreChoice::Tpm { tcti } => {
            t.push_str("# Keys born in the TPM; every warrant carries a quote of SHA-256 PCRs 0-7.\n");
            let _ = writeln!(t, "tcti = {}", quoted_str(tcti));
            t.push_str("# quote_pcrs = \"sha256:0,1,2,3,4,5,6,7\"\n");
        }
        #[cfg(feature = "yubikey")]
        KeyStoreChoice::Yubikey { serial, pin } => {
            t.push_str("# Keys in the YubiKey's PIV slots, reached through pcscd.\n");
            let _ = writeln!(t, "serial_number = {serial}");
            t.push_str(&pin_line(pin));
            t.push_str("# slots = [\"82\", \"83\"]    # default: the retired slots 82-95\n");
            t.push_str("# pin_policy = \"once\"\n# touch_policy = \"never\"\n");
        }
        KeyStoreChoice::Pkcs11 { module, token, pin } => {
            t.push_str("# Keys on this PKCS#11 token; their evidence is self-reported.\n");
            let _ = writeln!(t, "module = {}", quoted(module));
            let _ = writeln!(t, "token = {}", quoted_str(token));
            t.push_str(&pin_line(pin));
        }
    }
    t.push_str("\n[audit]\n# One JSON line per decision, never secrets.\n");
    let audit = match mode {
        Mode::User => state.join("audit.jsonl"),
        Mode::System => PathBuf::from("/var/log/warrant/audit.jsonl"),
    };
    let _ = writeln!(t, "file = {}", quoted(&audit));
    t.push_str(
        "\n# Who may run the authority (init, challenges, grants, revocation, status lists).\n[admin]\n",
    );
    match mode {
        Mode::User => {
            t.push_str("# You: a user-mode daemon answers only you anyway.\n");
            let _ = writeln!(t, "uids = [{uid}]");
        }
        Mode::System => t.push_str("uids = [0]\n"),
    }
    t.push_str("\n# Rules, in order, the first match deciding; no match: refused.\n");
    let operations = "operations = [\"keys.list\", \"keys.create\", \"keys.read\", \"keys.delete\", \"enroll\", \"sign\"]\n";
    match (mode, device_group) {
        (Mode::User, _) => {
            t.push_str("[[rules]]\nname = \"owner\"\n");
            let _ = writeln!(t, "uids = [{uid}]");
            t.push_str(operations);
            t.push_str("# audiences = [\"https://api.example.com\"]   # limit the services warrants go to\n");
        }
        (Mode::System, Some(group)) => {
            t.push_str("[[rules]]\nname = \"members\"\n");
            let _ = writeln!(t, "groups = [{}]", quoted_str(group));
            t.push_str(&operations.replace(" \"keys.delete\",", ""));
            t.push_str("# keys = [\"laptop-*\"]\n# audiences = [\"https://api.example.com\"]\n");
        }
        (Mode::System, None) => {
            t.push_str("# [[rules]]\n# name = \"members\"\n# groups = [\"warrant\"]\n# ");
            t.push_str(operations);
        }
    }
    t
}

fn pin_line(pin: &PinLine) -> String {
    match pin {
        PinLine::File(path) => format!("pin_file = {}              # mode 0600\n", quoted(path)),
        #[cfg(feature = "yubikey")]
        PinLine::Askpass(path) => format!("pin_askpass = {}\n", quoted(path)),
    }
}

fn quoted(path: &Path) -> String {
    quoted_str(&path.to_string_lossy())
}

/// A TOML basic string.
fn quoted_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_visible(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// `s` for a comment: control characters (a newline would end the comment) escaped.
fn comment(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        push_visible(&mut out, c);
    }
    out
}

fn push_visible(out: &mut String, c: char) {
    if c.is_control() {
        let _ = write!(out, "\\u{:04X}", c as u32);
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Config;

    /// Parsed with a socket named: user mode's default needs $XDG_RUNTIME_DIR, which a test
    /// process may not have.
    fn parse(text: &str) -> Config {
        let text = format!("socket = \"/run/test/agent.sock\"\n{text}");
        Config::parse(Path::new("/written/agent.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn every_choice_renders_a_valid_configuration() {
        let choices = [
            KeyStoreChoice::Soft { passphrase_file: "/home/a b/\"p\"".into() },
            KeyStoreChoice::Pkcs11 {
                module: "/usr/lib/softhsm/libsofthsm2.so".into(),
                token: "warrant".into(),
                pin: PinLine::File("/p".into()),
            },
        ];
        for choice in &choices {
            for mode in [Mode::User, Mode::System] {
                let text = render(mode, 1234, Some("root"), choice, &["a warning".into()]);
                let config = parse(&text);
                assert_eq!(config.mode, mode);
                assert_eq!(config.keystore.backend().name, choice.backend());
                assert!(text.contains("# NOTE: a warning"), "{text}");
                assert_eq!(config.rules.len(), 2, "a device rule and [admin]: {text}");
            }
        }
        let text = render(Mode::System, 0, None, &choices[0], &[]);
        assert_eq!(parse(&text).rules.len(), 1, "[admin] only without a device group");
    }

    #[cfg(feature = "tpm")]
    #[test]
    fn a_tpm_choice_renders_a_valid_configuration() {
        let tpm = KeyStoreChoice::Tpm { tcti: "swtpm:host=127.0.0.1,port=2321".into() };
        assert_eq!(parse(&render(Mode::User, 1, None, &tpm, &[])).keystore.backend().name, "tpm");
    }

    #[cfg(feature = "yubikey")]
    #[test]
    fn a_yubikey_choice_renders_a_valid_configuration() {
        let yk = KeyStoreChoice::Yubikey { serial: 7, pin: PinLine::Askpass("/usr/bin/ssh-askpass".into()) };
        assert_eq!(parse(&render(Mode::User, 1, None, &yk, &[])).keystore.backend().name, "yubikey");
    }

    #[test]
    fn notes_cannot_end_their_comment() {
        let note = "x\nsocket = \"/tmp/evil.sock\"\r\n[admin]\nuids = [0]".to_string();
        let text =
            render(Mode::User, 1000, None, &KeyStoreChoice::Soft { passphrase_file: "/p".into() }, &[note]);
        assert!(text.contains("# NOTE: x\\u000Asocket = \"/tmp/evil.sock\"\\u000D\\u000A[admin]"), "{text}");
        let config = parse(&text);
        assert_eq!(config.socket, PathBuf::from("/run/test/agent.sock"));
        assert_eq!(config.rules.len(), 2, "the owner rule and [admin], nothing injected");
    }

    #[test]
    fn strings_are_escaped_not_injected() {
        let evil = KeyStoreChoice::Soft { passphrase_file: "/x\"\n[admin]\nuids = [0]\n#".into() };
        let config = parse(&render(Mode::User, 1000, None, &evil, &[]));
        let warrant_hsm_backends::KeyStoreConfig::Soft(s) = config.keystore else { panic!("not soft") };
        assert_eq!(s.passphrase_file.unwrap(), PathBuf::from("/x\"\n[admin]\nuids = [0]\n#"));
    }
}
