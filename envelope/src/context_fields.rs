//! Which top-level fields of the Cedar context a policy set can read.
//!
//! Cedar spends about half a microsecond per context value on every request, so a verifier
//! builds only the fields its policies read. The scan below is conservative: it finds every
//! use of the `context` variable in the policy text (outside string literals and comments)
//! and, unless that use is a plain field access (`context.f`, `context has f`,
//! `context["f"]`), answers "all fields". A field it misses would make a policy fail
//! evaluation and deny, so the scan errs only towards building more.

/// A set of top-level context fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextFields(u8);

/// The top-level context fields, in bit order.
const NAMES: [&str; 7] = ["request", "audience", "authority", "claims", "device", "time", "warrant"];

impl ContextFields {
    /// Every field.
    pub(crate) const ALL: Self = Self((1 << NAMES.len()) - 1);
    /// No field.
    pub(crate) const NONE: Self = Self(0);

    fn with(self, name: &str) -> Self {
        match NAMES.iter().position(|n| *n == name) {
            Some(bit) => Self(self.0 | 1 << bit),
            // Not a field this verifier provides: reading it fails evaluation (a denial)
            // whether or not anything else is built.
            None => self,
        }
    }

    /// Both sets.
    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `name` is in the set.
    pub(crate) fn contains(self, name: &str) -> bool {
        NAMES.iter().position(|n| *n == name).is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    /// The fields the policy text can read.
    pub(crate) fn read_by(text: &str) -> Self {
        let b = text.as_bytes();
        let mut fields = Self::NONE;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'"' => i = skip_string(b, i),
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                c if is_ident_start(c) => {
                    let start = i;
                    i = ident_end(b, i);
                    if &text[start..i] != "context" || preceded_by_dot(b, start) {
                        continue;
                    }
                    match field_after(text, i) {
                        Some(name) => fields = fields.with(name),
                        None => return Self::ALL,
                    }
                }
                _ => i += 1,
            }
        }
        fields
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the string literal starting at `i` (an opening quote).
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Whether the identifier at `start` is an attribute name (`x.context`), not the variable.
fn preceded_by_dot(b: &[u8], start: usize) -> bool {
    b[..start].iter().rev().find(|c| !c.is_ascii_whitespace()) == Some(&b'.')
}

/// The field named right after the `context` variable ending at `i`, if the use is a plain
/// field access; `None` for any other use.
fn field_after(text: &str, i: usize) -> Option<&str> {
    let b = text.as_bytes();
    let j = skip_ws(b, i);
    let name_at = |k: usize| -> Option<&str> {
        let k = skip_ws(b, k);
        if b.get(k).copied().is_some_and(is_ident_start) {
            return Some(&text[k..ident_end(b, k)]);
        }
        plain_string_at(text, k)
    };
    match b.get(j) {
        Some(b'.') => {
            let k = skip_ws(b, j + 1);
            b.get(k).copied().filter(|c| is_ident_start(*c)).map(|_| &text[k..ident_end(b, k)])
        }
        Some(b'[') => plain_string_at(text, skip_ws(b, j + 1)),
        Some(b'h')
            if text[j..].starts_with("has")
                && !b.get(j + 3).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
        {
            name_at(j + 3)
        }
        _ => None,
    }
}

/// The content of a string literal at `k` without escapes; `None` otherwise.
fn plain_string_at(text: &str, k: usize) -> Option<&str> {
    let b = text.as_bytes();
    if b.get(k) != Some(&b'"') {
        return None;
    }
    let end = skip_string(b, k);
    let content = text.get(k + 1..end.checked_sub(1)?)?;
    (!content.contains('\\')).then_some(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: ContextFields) -> Vec<&'static str> {
        NAMES.iter().copied().filter(|n| f.contains(n)).collect()
    }

    #[test]
    fn field_accesses_are_found() {
        let text = r#"permit(principal, action, resource) when {
            context.request.method == "POST" && context has claims &&
            context["warrant"].lifetime < 60 && context has "device" && context . time > 0 };"#;
        assert_eq!(names(ContextFields::read_by(text)), ["request", "claims", "device", "time", "warrant"]);
    }

    #[test]
    fn strings_comments_and_attribute_names_are_not_the_variable() {
        let text = r#"// context == {} in a comment
            permit(principal, action, resource) when { principal.context == "context" &&
            resource.x like "*context*" && context.audience == "a\"context" };"#;
        assert_eq!(names(ContextFields::read_by(text)), ["audience"]);
    }

    #[test]
    fn any_other_use_means_every_field() {
        for text in [
            "permit(principal, action, resource) when { context == {} };",
            "permit(principal, action, resource) when { context has \"cla\\u{69}ms\" };",
            "permit(principal, action, resource) when { context };",
            "permit(principal, action, resource) when { context. };",
            "permit(principal, action, resource) when { context hasclaims };",
        ] {
            assert_eq!(ContextFields::read_by(text), ContextFields::ALL, "{text}");
        }
        assert_eq!(ContextFields::read_by("permit(principal, action, resource);"), ContextFields::NONE);
    }

    #[test]
    fn unknown_fields_add_nothing() {
        assert_eq!(
            ContextFields::read_by("permit(principal,action,resource) when { context.nope };"),
            ContextFields::NONE
        );
    }
}
