use crate::Error;

/// A validated key name: safe as a file name and in logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Validates `name`: 1-64 characters from `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
    pub fn new(name: &str) -> Result<Self, Error> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let ok = (1..=64).contains(&name.len())
            && name.chars().all(ok_char)
            && !name.starts_with('.')
            && !name.starts_with('-');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::InvalidKeyName(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "-rf", "x y", &"a".repeat(65), "é"] {
            assert!(matches!(KeyName::new(bad), Err(Error::InvalidKeyName(_))), "{bad:?}");
        }
        for good in ["laptop", "ci-runner_1.key", "A"] {
            assert_eq!(KeyName::new(good).unwrap().as_str(), good);
        }
    }
}
