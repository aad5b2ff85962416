//! Which top-level fields of the Cedar context a policy set can read.
//!
//! Cedar spends about half a microsecond per context value on every request, so a verifier
//! builds only the fields its policies read. The read set comes from Cedar's own parse of the
//! policies (their JSON form), never from the policy text: comments, line ends and string
//! escapes are Cedar's business, and a scanner that disagrees with Cedar's lexer about them
//! would miss a field. Every use of the `context` variable is found; unless it is a plain
//! field access or `has` test (`context.f`, `context["f"]`, `context has f`), the answer is
//! "all fields". Building more than needed costs time; building less would change decisions,
//! so the walk errs only towards more.

use cedar_policy::PolicySet;
use serde_json::Value;

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
            // Not a field this verifier provides: reading it is an evaluation error (a
            // denial), and `has` is false, whatever else is built.
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

    /// The fields the policies (and templates) of `set` can read.
    pub(crate) fn read_by(set: &PolicySet) -> Self {
        let mut fields = Self::NONE;
        // A policy Cedar cannot render has an unknown shape: `None`, and everything is built.
        let jsons = set.policies().map(|p| p.to_json().ok()).chain(set.templates().map(|t| t.to_json().ok()));
        for json in jsons {
            let Some(json) = json else { return Self::ALL };
            match read_in(&json) {
                Some(found) => fields = fields.union(found),
                None => return Self::ALL,
            }
        }
        fields
    }
}

/// The fields read anywhere in `value` (a policy's JSON form, or part of it); `None` when
/// `context` is used other than by a field access or `has` test.
fn read_in(value: &Value) -> Option<ContextFields> {
    match value {
        Value::Object(map) => {
            if map.get("Var").and_then(Value::as_str) == Some("context") {
                return None;
            }
            let mut fields = ContextFields::NONE;
            for (key, child) in map {
                match field_access(key, child) {
                    Some(name) => fields = fields.with(name),
                    None => fields = fields.union(read_in(child)?),
                }
            }
            Some(fields)
        }
        Value::Array(items) => {
            items.iter().try_fold(ContextFields::NONE, |fields, item| Some(fields.union(read_in(item)?)))
        }
        _ => Some(ContextFields::NONE),
    }
}

/// The top-level field that the node `{key: body}` reads, if it is `context.f`,
/// `context["f"]` or `context has f` (also `context has f.g`, whose first step is `f`).
fn field_access<'a>(key: &str, body: &'a Value) -> Option<&'a str> {
    if key != "." && key != "has" {
        return None;
    }
    let body = body.as_object()?;
    let left = body.get("left")?.as_object()?;
    if left.len() != 1 || left.get("Var").and_then(Value::as_str) != Some("context") {
        return None;
    }
    match body.get("attr")? {
        Value::String(name) => Some(name),
        Value::Array(path) => path.first()?.as_str(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn names(text: &str) -> Vec<&'static str> {
        let set = PolicySet::from_str(text).unwrap();
        let f = ContextFields::read_by(&set);
        NAMES.iter().copied().filter(|n| f.contains(n)).collect()
    }

    #[test]
    fn field_accesses_are_found() {
        let text = r#"permit(principal, action, resource) when {
            context.request.method == "POST" && context has claims &&
            context["warrant"].lifetime < 60 && context has "device" && context . time > 0 };"#;
        assert_eq!(names(text), ["request", "claims", "device", "time", "warrant"]);
    }

    #[test]
    fn extended_has_reads_its_first_step() {
        let text = "permit(principal, action, resource) when { context has claims.approved };";
        assert_eq!(names(text), ["claims"]);
    }

    #[test]
    fn strings_comments_and_attribute_names_are_not_the_variable() {
        let text = r#"// context == {} in a comment
            permit(principal, action, resource) when { principal.context == "context" &&
            resource.x like "*context*" && context.audience == "a\"context" };"#;
        assert_eq!(names(text), ["audience"]);
    }

    /// The scanner this replaced took `context` after a comment ending in `.` for an
    /// attribute name, and ended `//` comments only at `\n` (Cedar also ends them at `\r`).
    #[test]
    fn comments_that_fooled_the_text_scanner() {
        let dot = "forbid(principal, action, resource) unless { // see the docs.\ncontext.claims.approved == true };";
        assert_eq!(names(dot), ["claims"]);
        let cr = "forbid(principal, action, resource) unless { // note\rcontext.device.hardware };";
        assert_eq!(names(cr), ["device"]);
    }

    #[test]
    fn any_other_use_means_every_field() {
        for text in [
            "permit(principal, action, resource) when { context == {} };",
            "permit(principal, action, resource) when { context has \"cla\\u{69}ms\" && context.x == context };",
            "permit(principal, action, resource) when { [context].contains({}) };",
            "permit(principal, action, resource) when { (if true then context else {}).claims == {} };",
        ] {
            assert_eq!(ContextFields::read_by(&PolicySet::from_str(text).unwrap()), ContextFields::ALL, "{text}");
        }
        assert!(names("permit(principal, action, resource);").is_empty());
    }

    #[test]
    fn escaped_field_names_are_read_as_cedar_reads_them() {
        assert_eq!(
            names(r#"permit(principal, action, resource) when { context has "cla\u{69}ms" };"#),
            ["claims"]
        );
    }

    #[test]
    fn unknown_fields_add_nothing() {
        assert!(names("permit(principal,action,resource) when { context.nope };").is_empty());
    }
}
