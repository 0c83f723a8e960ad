//! Register-security-info: strengths of policies naming the user action take precedence over
//! strengths reached through "All resources" (reference §2.4); other controls still apply.

use portcullis_policy::{
    AppliedPolicyResult, Control, DeviceFacts, Outcome, PHISHING_RESISTANT_STRENGTH_ID, Target,
    UserAction, evaluate,
};
use serde_json::json;

use crate::support::*;

fn all_resources_phishing_resistant(
    extra_controls: &[&str],
) -> portcullis_policy::ConditionalAccessPolicy {
    policy(
        "all-resources",
        json!({"grantControls": {"operator": "AND", "builtInControls": extra_controls,
            "authenticationStrength": {"id": PHISHING_RESISTANT_STRENGTH_ID}}}),
    )
}

fn registration_policy() -> portcullis_policy::ConditionalAccessPolicy {
    policy(
        "registration",
        json!({"conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]}},
               "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
    )
}

fn tap_session(target: Target) -> portcullis_policy::SignInContext {
    let mut c = with_methods(ctx(), &["temporaryAccessPassOneTime"]);
    c.target = target;
    c
}

#[test]
fn registration_strength_takes_precedence_for_the_user_action() {
    let policies = || {
        set(vec![
            all_resources_phishing_resistant(&[]),
            registration_policy(),
        ])
    };
    let register = tap_session(Target::UserAction(UserAction::RegisterSecurityInformation));
    let decision = evaluate(&register, &policies());
    assert_eq!(
        decision.outcome,
        Outcome::Grant,
        "a TAP meets the registration policy's MFA"
    );
    let t = trace(&decision, "all-resources");
    assert!(t.applies && t.strength_superseded);
    assert_eq!(t.result, AppliedPolicyResult::Success);

    // Signing in to an application, the phishing-resistant strength still applies.
    let decision = evaluate(
        &tap_session(Target::Application(APP.to_owned())),
        &policies(),
    );
    match decision.outcome {
        Outcome::Requirements { requirements } => {
            assert!(
                matches!(&requirements[0].alternatives[0], Control::AuthenticationStrength(s) if s.id == PHISHING_RESISTANT_STRENGTH_ID)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_registration_policy_all_resources_strengths_apply() {
    let decision = evaluate(
        &tap_session(Target::UserAction(UserAction::RegisterSecurityInformation)),
        &set(vec![all_resources_phishing_resistant(&[])]),
    );
    assert!(matches!(decision.outcome, Outcome::Requirements { .. }));
}

#[test]
fn other_controls_of_all_resources_policies_still_apply() {
    let policies = set(vec![
        all_resources_phishing_resistant(&["compliantDevice"]),
        registration_policy(),
    ]);
    let mut register = tap_session(Target::UserAction(UserAction::RegisterSecurityInformation));
    register.device = Some(DeviceFacts {
        is_compliant: Some(false),
        ..DeviceFacts::default()
    });
    assert!(matches!(
        evaluate(&register, &policies).outcome,
        Outcome::Block { .. }
    ));
    register.device = Some(DeviceFacts {
        is_compliant: Some(true),
        ..DeviceFacts::default()
    });
    assert_eq!(evaluate(&register, &policies).outcome, Outcome::Grant);
}

#[test]
fn the_registration_policy_itself_must_still_be_met() {
    let policies = set(vec![
        all_resources_phishing_resistant(&[]),
        registration_policy(),
    ]);
    let mut register = with_methods(ctx(), &["password"]);
    register.target = Target::UserAction(UserAction::RegisterSecurityInformation);
    match evaluate(&register, &policies).outcome {
        Outcome::Requirements { requirements } => {
            assert_eq!(requirements.len(), 1);
            assert_eq!(requirements[0].policy_ids, ["registration"]);
        }
        other => panic!("{other:?}"),
    }
}
