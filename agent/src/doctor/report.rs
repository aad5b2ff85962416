//! A check's result: `ok`, `warn` or `fail`, what was found, and the fix.

use serde::{Deserialize, Serialize};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but worth attention.
    Warn,
    /// Does not work: warrantd, or warrants from it, will fail.
    Fail,
}

/// One check (read back strictly from the daemon-side child's answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// What was checked (`config`, `socket`, `tpm.ek-certificate`, ...).
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (warn and fail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { name: name.into(), status: Status::Ok, detail: detail.into(), fix: None }
    }

    /// A warning, with its fix.
    pub fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    /// A failure, with its fix.
    pub fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name: name.into(), status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }

    /// The line printed for it: `ok   name: detail`, and `fix: ...` for the others. Control
    /// characters are escaped: details quote what others wrote (a grant's principal, an EK
    /// certificate's issuer from the TPM, file names in the daemon's directories, the child's
    /// standard error), which must not move the cursor or rewrite root's terminal.
    pub fn line(&self) -> String {
        let status = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "fail",
        };
        let line = match &self.fix {
            Some(fix) => format!("{status} {}: {} -- fix: {fix}", self.name, self.detail),
            None => format!("{status} {}: {}", self.name, self.detail),
        };
        escaped(&line)
    }
}

/// `text` with its control characters (C0, DEL, C1) and the bidirectional overrides and
/// isolates (which reorder what a terminal shows) written as Rust escapes.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_escapes_the_control_characters_others_wrote() {
        let check = Check::fail(
            "grant g.cbor",
            "key k from \u{1b}]0;owned\u{7}\u{1b}[2J for alice\r\u{9b}31m\u{202E}gpj.exe",
            "ré-enroll\nok   socket: fine",
        );
        let line = check.line();
        assert!(line.chars().all(|c| !c.is_control()), "{line:?}");
        assert_eq!(
            line,
            "fail grant g.cbor: key k from \\u{1b}]0;owned\\u{7}\\u{1b}[2J for alice\\u{d}\\u{9b}31m\\u{202e}gpj.exe -- fix: ré-enroll\\u{a}ok   socket: fine"
        );
        assert_eq!(
            Check::ok("config", "/etc/warrant/agent.toml is valid").line(),
            "ok   config: /etc/warrant/agent.toml is valid"
        );
    }

    #[test]
    fn a_check_is_read_back_strictly() {
        let check = Check::warn("clock", "unknown", "enable NTP");
        let json = serde_json::to_string(&check).unwrap();
        assert_eq!(serde_json::from_str::<Check>(&json).unwrap(), check);
        for bad in [
            r#"{"name":"a","status":"ok","detail":"d","verdict":"ok"}"#,
            r#"{"name":"a","status":"fine","detail":"d"}"#,
            r#"{"name":"a","status":"ok"}"#,
        ] {
            assert!(serde_json::from_str::<Check>(bad).is_err(), "{bad}");
        }
    }
}
