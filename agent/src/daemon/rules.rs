//! Who may do what: the configured rules, evaluated in order, first match wins, default deny.
//! `[admin]` is one more rule, evaluated last, that allows the authority's operations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::peer::Caller;
use crate::Error;

/// The name reported when no rule matched.
pub const DEFAULT_DENY: &str = "default-deny";
/// The name of the rule made from `[admin]`.
pub const ADMIN: &str = "admin";

/// An operation a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// List keys.
    KeysList,
    /// Create a device key.
    KeysCreate,
    /// Read a key's public key or evidence.
    KeysRead,
    /// Delete a device key.
    KeysDelete,
    /// Build an enrollment request.
    Enroll,
    /// Sign a warrant.
    Sign,
    /// Create the authority.
    AuthorityInit,
    /// Read the authority's public data (trust anchor, status lists).
    AuthorityRead,
    /// Issue an enrollment challenge.
    AuthorityChallenge,
    /// Issue a grant.
    AuthorityGrant,
    /// Revoke a grant.
    AuthorityRevoke,
    /// Publish a status list.
    AuthorityPublish,
    /// Rotate the issuance key.
    AuthorityRotate,
}

impl Operation {
    /// Names usable in `[[rules]]`.
    pub const RULE_OPERATIONS: &'static [&'static str] =
        &["keys.list", "keys.create", "keys.read", "enroll", "sign"];

    /// The operation's name in rules and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::KeysList => "keys.list",
            Operation::KeysCreate => "keys.create",
            Operation::KeysRead => "keys.read",
            Operation::KeysDelete => "keys.delete",
            Operation::Enroll => "enroll",
            Operation::Sign => "sign",
            Operation::AuthorityInit => "authority.init",
            Operation::AuthorityRead => "authority.read",
            Operation::AuthorityChallenge => "authority.challenge",
            Operation::AuthorityGrant => "authority.grant",
            Operation::AuthorityRevoke => "authority.revoke",
            Operation::AuthorityPublish => "authority.publish",
            Operation::AuthorityRotate => "authority.rotate",
        }
    }

    /// Every operation.
    pub const ALL: [Operation; 13] = [
        Operation::KeysList,
        Operation::KeysCreate,
        Operation::KeysRead,
        Operation::KeysDelete,
        Operation::Enroll,
        Operation::Sign,
        Operation::AuthorityInit,
        Operation::AuthorityRead,
        Operation::AuthorityChallenge,
        Operation::AuthorityGrant,
        Operation::AuthorityRevoke,
        Operation::AuthorityPublish,
        Operation::AuthorityRotate,
    ];

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether only `[admin]` may perform it.
    pub fn is_authority(self) -> bool {
        self.as_str().starts_with("authority.")
    }
}

/// Callers a rule is about: any listed uid, or any listed group among the caller's groups; and,
/// when `exe` is set, one of those executables.
#[derive(Debug, Clone, Default)]
pub struct Subjects {
    /// User ids.
    pub uids: Vec<u32>,
    /// Group ids (primary or supplementary).
    pub gids: Vec<u32>,
    /// Executable paths.
    pub exe: Vec<std::path::PathBuf>,
}

impl Subjects {
    fn matches(&self, caller: &Caller) -> bool {
        let who = self.uids.contains(&caller.uid) || caller.gids.iter().any(|g| self.gids.contains(g));
        let exe = self.exe.is_empty() || caller.exe.as_ref().is_some_and(|e| self.exe.contains(e));
        who && exe
    }
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, reported in refusals and audit lines.
    pub name: String,
    /// Allow (else deny) when it matches.
    pub allow: bool,
    /// Who it is about.
    pub subjects: Subjects,
    /// What it covers.
    pub operations: Vec<Operation>,
    /// Key name patterns (`*` at the end: a prefix); empty: every key.
    pub keys: Vec<String>,
    /// Audience patterns for `sign`; empty: every audience.
    pub audiences: Vec<String>,
    /// Cedar action patterns for `sign`; empty: every action.
    pub actions: Vec<String>,
    /// `(requests, per_seconds)` per caller uid.
    pub rate: Option<(u32, u32)>,
}

fn pattern_matches(patterns: &[String], value: Option<&str>) -> bool {
    let Some(value) = value else { return true };
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => p == value,
        })
}

/// What a request asks, as rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The operation.
    pub operation: Operation,
    /// The key it uses, if any.
    pub key: Option<&'a str>,
    /// The warrant's audience, for `sign`.
    pub audience: Option<&'a str>,
    /// The warrant's Cedar action, for `sign`.
    pub action: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// An operation on no key.
    pub fn of(operation: Operation) -> Self {
        Self { operation, key: None, audience: None, action: None }
    }

    /// An operation on `key`.
    pub fn on_key(operation: Operation, key: &'a str) -> Self {
        Self { key: Some(key), ..Self::of(operation) }
    }
}

/// The rules and their rate-limit buckets.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    buckets: Mutex<HashMap<(usize, u32), Bucket>>,
}

impl Clone for RuleSet {
    fn clone(&self) -> Self {
        // Buckets are not carried over: a reload starts every caller afresh.
        Self::from_rules(self.rules.clone())
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Most callers tracked per rule before idle buckets are dropped.
const MAX_BUCKETS: usize = 4096;

impl RuleSet {
    /// The rules in order, then the admin rule.
    pub fn new(mut rules: Vec<Rule>, admin: Subjects) -> Self {
        if !admin.uids.is_empty() || !admin.gids.is_empty() {
            rules.push(Rule {
                name: ADMIN.into(),
                allow: true,
                subjects: admin,
                // The authority's operations, and seeing which keys exist.
                operations: Operation::ALL
                    .into_iter()
                    .filter(|op| op.is_authority() || matches!(op, Operation::KeysList | Operation::KeysRead))
                    .collect(),
                keys: Vec::new(),
                audiences: Vec::new(),
                actions: Vec::new(),
                rate: None,
            });
        }
        Self::from_rules(rules)
    }

    /// The number of rules (the admin rule included).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (nothing is allowed).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn from_rules(rules: Vec<Rule>) -> Self {
        Self { rules, buckets: Mutex::new(HashMap::new()) }
    }

    /// The name of the rule that allows `request` by `caller`, or why it is refused.
    pub fn authorize(&self, caller: &Caller, request: Request<'_>) -> Result<String, Error> {
        let matched = self.rules.iter().enumerate().find(|(_, r)| {
            r.subjects.matches(caller)
                && r.operations.contains(&request.operation)
                && pattern_matches(&r.keys, request.key)
                && pattern_matches(&r.audiences, request.audience)
                && pattern_matches(&r.actions, request.action)
        });
        let Some((index, rule)) = matched else {
            return Err(Error::Forbidden {
                rule: DEFAULT_DENY.into(),
                reason: format!(
                    "no rule allows uid {} to {}{}{}{}",
                    caller.uid,
                    request.operation.as_str(),
                    request.key.map(|k| format!(" with key {k:?}")).unwrap_or_default(),
                    request.action.map(|a| format!(" for action {a:?}")).unwrap_or_default(),
                    request.audience.map(|a| format!(" for audience {a:?}")).unwrap_or_default()
                ),
            });
        };
        if !rule.allow {
            return Err(Error::Forbidden {
                rule: rule.name.clone(),
                reason: format!("the rule denies {} to uid {}", request.operation.as_str(), caller.uid),
            });
        }
        if let Some((requests, per_seconds)) = rule.rate {
            self.take_token(index, caller.uid, requests, per_seconds)
                .then_some(())
                .ok_or_else(|| Error::RateLimited { rule: rule.name.clone() })?;
        }
        Ok(rule.name.clone())
    }

    fn take_token(&self, rule: usize, uid: u32, requests: u32, per_seconds: u32) -> bool {
        let now = Instant::now();
        let rate = f64::from(requests) / f64::from(per_seconds);
        let mut buckets = crate::locks::lock(&self.buckets);
        if buckets.len() >= MAX_BUCKETS {
            // Full buckets carry no information; dropping them bounds memory.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.last).as_secs_f64() * rate < f64::from(requests)
            });
        }
        let bucket = buckets.entry((rule, uid)).or_insert(Bucket { tokens: f64::from(requests), last: now });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(f64::from(requests));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gids: &[u32]) -> Caller {
        Caller::for_tests(uid, gids.to_vec())
    }

    fn rule(name: &str, allow: bool, uids: &[u32], ops: &[Operation]) -> Rule {
        Rule {
            name: name.into(),
            allow,
            subjects: Subjects { uids: uids.to_vec(), ..Default::default() },
            operations: ops.to_vec(),
            keys: vec!["ci-*".into()],
            audiences: vec!["https://deploy.example".into()],
            actions: vec!["deploy".into(), "read-*".into()],
            rate: None,
        }
    }

    fn sign<'a>(key: &'a str, audience: &'a str) -> Request<'a> {
        Request { audience: Some(audience), action: Some("deploy"), ..Request::on_key(Operation::Sign, key) }
    }

    #[test]
    fn nothing_is_allowed_without_a_rule() {
        let rules = RuleSet::new(Vec::new(), Subjects::default());
        let err =
            rules.authorize(&caller(1000, &[1000]), sign("ci-1", "https://deploy.example")).unwrap_err();
        assert!(matches!(&err, Error::Forbidden { rule, .. } if rule == DEFAULT_DENY), "{err}");
    }

    #[test]
    fn first_matching_rule_decides_and_is_named() {
        let rules = RuleSet::new(
            vec![
                rule("no-bob", false, &[1001], &[Operation::Sign]),
                rule("ci", true, &[1000, 1001], &[Operation::Sign]),
            ],
            Subjects::default(),
        );
        assert_eq!(
            rules.authorize(&caller(1000, &[]), sign("ci-1", "https://deploy.example")).unwrap(),
            "ci"
        );
        let err = rules.authorize(&caller(1001, &[]), sign("ci-1", "https://deploy.example")).unwrap_err();
        assert!(matches!(&err, Error::Forbidden { rule, .. } if rule == "no-bob"), "{err}");
        for req in [sign("laptop", "https://deploy.example"), sign("ci-1", "https://other.example")] {
            let err = rules.authorize(&caller(1000, &[]), req).unwrap_err();
            assert!(matches!(&err, Error::Forbidden { rule, .. } if rule == DEFAULT_DENY), "{err}");
        }
        let enroll = Request::on_key(Operation::Enroll, "ci-1");
        assert!(rules.authorize(&caller(1000, &[]), enroll).is_err());
        let read_logs = Request { action: Some("read-logs"), ..sign("ci-1", "https://deploy.example") };
        assert_eq!(rules.authorize(&caller(1000, &[]), read_logs).unwrap(), "ci");
        let destroy = Request { action: Some("destroy"), ..sign("ci-1", "https://deploy.example") };
        let err = rules.authorize(&caller(1000, &[]), destroy).unwrap_err();
        assert!(err.to_string().contains("for action \"destroy\""), "{err}");
    }

    #[test]
    fn groups_and_executables_restrict_callers() {
        let mut r = rule("ops", true, &[], &[Operation::Sign]);
        r.subjects.gids = vec![50];
        r.subjects.exe = vec!["/usr/bin/warrant".into()];
        let rules = RuleSet::new(vec![r], Subjects::default());
        let mut c = caller(1000, &[100, 50]);
        assert!(rules.authorize(&c, sign("ci-1", "https://deploy.example")).is_err(), "exe unknown");
        c.exe = Some("/usr/bin/warrant".into());
        assert!(rules.authorize(&c, sign("ci-1", "https://deploy.example")).is_ok());
        c.gids = vec![100];
        assert!(rules.authorize(&c, sign("ci-1", "https://deploy.example")).is_err(), "not in group 50");
    }

    #[test]
    fn admin_may_run_the_authority_and_nobody_else() {
        let rules = RuleSet::new(
            vec![rule("ci", true, &[1000], &[Operation::Sign])],
            Subjects { gids: vec![10], ..Default::default() },
        );
        let grant = Request::of(Operation::AuthorityGrant);
        assert_eq!(rules.authorize(&caller(5, &[10]), grant).unwrap(), ADMIN);
        assert!(rules.authorize(&caller(1000, &[1000]), grant).is_err());
    }

    #[test]
    fn a_rate_limit_refuses_beyond_its_burst_per_caller() {
        let mut r = rule("ci", true, &[1000, 1001], &[Operation::Sign]);
        r.rate = Some((3, 3600));
        let rules = RuleSet::new(vec![r], Subjects::default());
        for _ in 0..3 {
            rules.authorize(&caller(1000, &[]), sign("ci-1", "https://deploy.example")).unwrap();
        }
        let err = rules.authorize(&caller(1000, &[]), sign("ci-1", "https://deploy.example")).unwrap_err();
        assert!(matches!(&err, Error::RateLimited { rule } if rule == "ci"), "{err}");
        // Another caller has its own bucket.
        rules.authorize(&caller(1001, &[]), sign("ci-1", "https://deploy.example")).unwrap();
    }
}
