//! Structure-aware `Verifier::verify`: each input is an `arbitrary` WarrantSpec (issuer,
//! audience, times, nonce, action, resource, the request and its binding, context claims,
//! evidence of every kind, TPM quotes signed by the fixed AK over the right or a wrong nonce,
//! the signer), made into a warrant signed with the fixed device key under one of the fixed
//! grants (software, TPM, PKCS#11, YubiKey, wide policy, revoked, expired, other list, unknown
//! authority; fuzz/src/structured.rs), and verified at the spec's time with a local policy.
//! Properties: an accepted warrant is what was signed (never one carrying enrollment evidence),
//! and is refused the second time.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warrant_envelope::verify::{Expected, HttpRequest};
use warrant_envelope::Error;
use warrant_fuzz::fixtures::FixedVerifier;
use warrant_fuzz::structured::WarrantSpec;

/// The verifier's own policy: it must also permit (and it reads claims the grants do not).
const LOCAL_POLICY: &str = r#"permit(principal, action, resource);
@id("no-friday-deploys") forbid(principal, action == Warrant::Action::"deploy", resource)
  when { context.claims has env && context.claims.env == "frozen" };"#;

fuzz_target!(|spec: WarrantSpec| {
    static FIXED: OnceLock<FixedVerifier> = OnceLock::new();
    let fixed = FIXED.get_or_init(|| FixedVerifier::new(Some(LOCAL_POLICY), true));
    fixed.replay.reset();
    let g = spec.generate();
    fixed.clock.set(g.now);
    let request = HttpRequest { method: &g.method, target: &g.target, body: &g.body };
    // The service states the operation the warrant was signed for: the rest of the verdict
    // is what is fuzzed (envelope/tests/tamper.rs covers a stated operation that differs).
    let operation = Expected { action: &g.claims.action, resource: &g.claims.resource };
    if let Ok(verified) = fixed.verifier.verify(&g.warrant, &operation, &request, g.nonce.as_deref()) {
        assert!(!g.misplaced, "a warrant carrying enrollment evidence was accepted");
        assert_eq!(verified.action, g.claims.action);
        assert_eq!(verified.resource, g.claims.resource);
        assert_eq!(verified.context, g.claims.context);
        assert_eq!(verified.warrant_id, g.claims.id);
        assert!(matches!(
            fixed.verifier.verify(&g.warrant, &operation, &request, g.nonce.as_deref()),
            Err(Error::Replayed { .. })
        ));
    }
});
