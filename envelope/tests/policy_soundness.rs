//! A device must not be able to step around its grant's policy: a policy that errors denies
//! (Cedar alone would skip it), and the context fields a policy reads are found from Cedar's
//! parse, so no comment or line end hides a read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // In tests a failed assumption is a failed test.

mod common;

use common::*;
use proptest::prelude::*;
use warrant_attestation::AttributeValue;
use warrant_envelope::{device::*, issue::*, verify::*, *};

/// A grant carrying `policy`, and a warrant under it with `claims`, verified by `v`.
fn verify_under(
    f: &Fixture,
    v: &Verifier,
    policy: &str,
    claims: &[(&str, AttributeValue)],
) -> Result<(), Error> {
    let mut grant = f.grant_claims.clone();
    grant.policy = policy.into();
    let mut c = f.warrant_claims();
    c.grant = grant.sign(&f.authority).unwrap();
    c.context = claims.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    v.verify(&c.sign(&f.device).unwrap(), &expected(), &request(), None).map(|_| ())
}

fn evaluation_failure(result: Result<(), Error>) -> (&'static str, String) {
    match result {
        Err(Error::PolicyEvaluationFailed { which, errors, .. }) => (which, errors),
        other => panic!("expected an evaluation failure, got {other:?}"),
    }
}

const APPROVAL: &str = r#"permit(principal, action, resource);
@id("needs-approval") forbid(principal, action, resource) unless { context.claims.approved == true };"#;

#[test]
fn leaving_out_a_claim_a_forbid_reads_is_a_denial() {
    let f = Fixture::new();
    let v = f.verifier();
    let yes = AttributeValue::Bool(true);
    assert!(verify_under(&f, &v, APPROVAL, &[("approved", yes)]).is_ok());
    let no = verify_under(&f, &v, APPROVAL, &[("approved", AttributeValue::Bool(false))]);
    assert!(
        matches!(&no, Err(Error::PolicyDenied { reason, .. }) if reason.contains("needs-approval")),
        "{no:?}"
    );
    // The attack: omit the claim. Cedar skips the erroring forbid; the permit would decide.
    let (which, errors) = evaluation_failure(verify_under(&f, &v, APPROVAL, &[]));
    assert_eq!(which, "grant");
    assert!(errors.contains("needs-approval") && errors.contains("approved"), "{errors}");
    assert_eq!(
        verify_under(&f, &v, APPROVAL, &[]).unwrap_err().code(),
        "policy_evaluation_failed",
        "a stable code for the wire"
    );
}

#[test]
fn evidence_without_the_property_a_forbid_reads_is_a_denial() {
    // tpm-key evidence, or a quote whose selection omits PCR 7, yields no pcr_sha256_7: the
    // software evidence of this fixture has none either.
    let f = Fixture::new();
    let v = f.verifier();
    let policy = r#"permit(principal, action, resource);
        @id("measured-boot") forbid(principal, action, resource)
        unless { context.device.properties.pcr_sha256_7 == "00" };"#;
    let (_, errors) = evaluation_failure(verify_under(&f, &v, policy, &[]));
    assert!(errors.contains("measured-boot") && errors.contains("pcr_sha256_7"), "{errors}");
}

#[test]
fn every_kind_of_evaluation_error_denies() {
    let f = Fixture::new();
    let v = f.verifier();
    let text = ("ci_job", AttributeValue::Text("release-42".into()));
    for (kind, condition) in [
        ("missing record attribute", "context.claims.nope == 1"),
        ("missing entity attribute", "principal.nope == 1"),
        ("wrong type", "context.claims.ci_job > 1"),
        ("wrong type in a boolean position", "context.claims.ci_job"),
        ("extension function error", "ip(context.claims.ci_job).isLoopback()"),
        ("extension function error (decimal)", "decimal(context.claims.ci_job) > decimal(\"1.0\")"),
        ("integer overflow", "context.time * 9223372036854775807 > 0"),
        ("unknown context field", "context.nope == 1"),
    ] {
        let policy = format!(
            "permit(principal, action, resource);\n@id(\"rule\") forbid(principal, action, resource) when {{ {condition} }};"
        );
        let result = verify_under(&f, &v, &policy, std::slice::from_ref(&text));
        let (_, errors) = evaluation_failure(result);
        assert!(errors.contains("rule"), "{kind}: {errors}");
        // An erroring permit denies too, even when another permit allows.
        let policy = format!(
            "permit(principal, action, resource);\npermit(principal, action, resource) when {{ {condition} }};"
        );
        evaluation_failure(verify_under(&f, &v, &policy, std::slice::from_ref(&text)));
    }
}

#[test]
fn an_erroring_local_policy_denies() {
    let f = Fixture::new();
    let v = f
        .builder()
        .local_policy(
            r#"permit(principal, action, resource);
            @id("local-approval") forbid(principal, action, resource) unless { context.claims.approved };"#,
        )
        .build()
        .unwrap();
    v.install_status_list(&f.status).unwrap();
    let err = v.verify(&f.warrant(), &expected(), &request(), None).unwrap_err();
    assert!(
        matches!(&err, Error::PolicyEvaluationFailed { which: "local", errors, .. } if errors.contains("local-approval")),
        "{err:?}"
    );
}

/// The text scanner this replaced was fooled by a comment ending in `.` before `context`
/// and by a comment ended by `\r`: the field was never built, the forbid errored and was
/// skipped. Both now deny for the right reason, and allow when the claim is there.
#[test]
fn comments_do_not_hide_a_read_field() {
    let f = Fixture::new();
    let v = f.verifier();
    for policy in [
        "permit(principal, action, resource);\nforbid(principal, action, resource) unless { // approvals, see the docs.\ncontext.claims.approved == true };",
        "permit(principal, action, resource);\nforbid(principal, action, resource) unless { // approvals\rcontext.claims.approved == true };",
        "permit(principal, action, resource);\r\nforbid(principal, action, resource) unless { context // x.\r\n . claims . approved == true };",
    ] {
        let (_, errors) = evaluation_failure(verify_under(&f, &v, policy, &[]));
        assert!(errors.contains("approved"), "{policy:?}: {errors}");
        assert!(verify_under(&f, &v, policy, &[("approved", AttributeValue::Bool(true))]).is_ok(), "{policy:?}");
        let denied = verify_under(&f, &v, policy, &[("approved", AttributeValue::Bool(false))]);
        assert!(matches!(denied, Err(Error::PolicyDenied { .. })), "{policy:?}: {denied:?}");
    }
}

/// A software key can describe itself as a PKCS#11 token: such evidence is refused unless the
/// verifier opts in, and is then `self-reported`, never `hardware`.
#[test]
fn made_up_pkcs11_evidence_is_not_hardware() {
    let f = Fixture::new();
    let report = warrant_attestation::Pkcs11Report {
        manufacturer: "Thales".into(),
        model: "Luna K7".into(),
        serial: "1234".into(),
        firmware: "7.8".into(),
        local: true,
        always_sensitive: true,
        never_extractable: true,
    };
    let mut grant = f.grant_claims.clone();
    // What an authority that accepted the enrollment recorded: the same report.
    grant.device = warrant_attestation::EnrollmentEvidence::Pkcs11(report.clone())
        .appraise(f.device.public_key(), &[0; 32], &warrant_attestation::EnrollmentTrust::new(NOW).unwrap())
        .unwrap();
    grant.policy = "permit(principal, action, resource);".into();
    let mut c = f.warrant_claims();
    c.grant = grant.sign(&f.authority).unwrap();
    c.evidence = warrant_attestation::WarrantEvidence::Pkcs11(report);
    let warrant = c.sign(&f.device).unwrap();

    // Even a verifier that accepts software keys does not take a self-description for more.
    let v = f.verifier();
    let err = v.verify(&warrant, &expected(), &request(), None).unwrap_err();
    assert!(matches!(err, Error::SelfReportedEvidenceNotAllowed), "{err:?}");
    assert_eq!(err.code(), "self_reported_evidence_not_allowed");

    let local = r#"permit(principal, action, resource) when { context.device.hardware };"#;
    let v = f.builder().allow_self_reported_evidence(true).local_policy(local).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    let denied = v.verify(&warrant, &expected(), &request(), None);
    assert!(matches!(denied, Err(Error::PolicyDenied { which: "local", .. })), "{denied:?}");

    let local =
        r#"permit(principal, action, resource) when { context.device.assurance == "self-reported" };"#;
    let v = f.builder().allow_self_reported_evidence(true).local_policy(local).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(v.verify(&warrant, &expected(), &request(), None).is_ok());
}

/// Software evidence is `software` to policies, and not `hardware`.
#[test]
fn software_evidence_says_so_to_policies() {
    let f = Fixture::new();
    let local = r#"permit(principal, action, resource) when {
        context.device.assurance == "software" && !context.device.hardware };"#;
    let v = f.builder().local_policy(local).build().unwrap();
    v.install_status_list(&f.status).unwrap();
    assert!(v.verify(&f.warrant(), &expected(), &request(), None).is_ok());
}

// ---- property: the read set gives the decisions the full context gives ------------------

/// Conditions, each a token list, reading different parts of the context (some of them
/// erroring on some inputs).
const CONDITIONS: &[&[&str]] = &[
    &["context", ".", "claims", ".", "approved", "==", "true"],
    &["context", ".", "claims", "has", "approved"],
    &["context", "has", "claims"],
    &["context", "[", "\"claims\"", "]", ".", "level", ">", "2"],
    &["context", ".", "device", ".", "properties", ".", "pcr_sha256_7", "==", "\"00\""],
    &["context", ".", "device", ".", "hardware"],
    &["context", ".", "device", ".", "backend", "==", "\"software\""],
    &["context", ".", "request", ".", "method", "==", "\"POST\""],
    &["context", "[", "\"time\"", "]", ">", "0"],
    &["context", ".", "warrant", ".", "lifetime", "<=", "60"],
    &["context", "has", "audience"],
    &["context", ".", "authority", "==", "\"acme-authority\""],
    &["principal", ".", "team", "==", "\"platform\""],
    &["\"context.claims\"", "like", "\"*context*\""],
];

/// What may stand between two tokens: white space of every kind, and comments ended by
/// each line end Cedar knows, some ending in `.` or naming `context`.
const SEPARATORS: &[&str] = &[
    " ",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " // see the docs.\n",
    " // see the docs.\r",
    " // context.claims\r\n",
    "// .\n",
    " // \"unterminated\r",
];

#[derive(Debug, Clone)]
struct Statement {
    forbid: bool,
    /// 0: no condition, 1: when, 2: unless.
    clause: u8,
    conditions: Vec<usize>,
}

fn statement() -> impl Strategy<Value = Statement> {
    (any::<bool>(), 0u8..3, prop::collection::vec(0..CONDITIONS.len(), 1..3))
        .prop_map(|(forbid, clause, conditions)| Statement { forbid, clause, conditions })
}

fn render(statements: &[Statement], separators: &[usize]) -> String {
    let mut seps = separators.iter().cycle().map(|i| SEPARATORS[*i]);
    let mut out = String::new();
    for s in statements {
        out.push_str(if s.forbid { "forbid" } else { "permit" });
        out.push_str("(principal, action, resource)");
        if s.clause > 0 {
            out.push_str(if s.clause == 1 { " when {" } else { " unless {" });
            for (n, c) in s.conditions.iter().enumerate() {
                if n > 0 {
                    out.push_str(seps.next().unwrap_or(" "));
                    out.push_str("&&");
                }
                for token in CONDITIONS[*c] {
                    out.push_str(seps.next().unwrap_or(" "));
                    out.push_str(token);
                }
            }
            out.push_str(seps.next().unwrap_or(" "));
            out.push('}');
        }
        out.push(';');
        out.push_str(seps.next().unwrap_or(" "));
    }
    out
}

fn claims_for(approved: u8, level: Option<i64>) -> Vec<(&'static str, AttributeValue)> {
    let mut claims = Vec::new();
    match approved {
        0 => {}
        1 => claims.push(("approved", AttributeValue::Bool(true))),
        2 => claims.push(("approved", AttributeValue::Bool(false))),
        _ => claims.push(("approved", AttributeValue::Text("yes".into()))),
    }
    if let Some(level) = level {
        claims.push(("level", AttributeValue::Int(level)));
    }
    claims
}

fn outcome(result: Result<(), Error>) -> &'static str {
    match result {
        Ok(()) => "allow",
        Err(e) => e.code(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn decisions_equal_those_of_the_full_context(
        statements in prop::collection::vec(statement(), 1..4),
        separators in prop::collection::vec(0..SEPARATORS.len(), 1..24),
        inputs in prop::collection::vec((0u8..4, prop::option::of(0i64..5)), 1..4),
    ) {
        let f = Fixture::new();
        let policy = render(&statements, &separators);
        prop_assume!(validate_policy(&policy).is_ok());
        // The reference builds every field: its local policy uses `context` whole, and
        // permits everything without error, so the grant policy alone decides.
        let reference = f.builder().local_policy("permit(principal, action, resource) when { context == context };")
            .decision_cache_capacity(0).build().unwrap();
        reference.install_status_list(&f.status).unwrap();
        // The subject builds the read set and remembers allows.
        let subject = f.verifier();
        for (approved, level) in inputs {
            let claims = claims_for(approved, level);
            let mut grant = f.grant_claims.clone();
            grant.policy = policy.clone();
            let mut c = f.warrant_claims();
            c.grant = grant.sign(&f.authority).unwrap();
            c.context = claims.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            let warrant = c.sign(&f.device).unwrap();
            let wanted = outcome(reference.verify(&warrant, &expected(), &request(), None).map(|_| ()));
            let found = outcome(subject.verify(&warrant, &expected(), &request(), None).map(|_| ()));
            prop_assert_eq!(found, wanted, "policy {:?} claims {:?}", policy, claims);
        }
    }
}
