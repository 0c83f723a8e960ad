//! Members the engine keeps but does not implement: reported, exported, and never read as
//! "matches everything".

use portcullis_policy::model::{UnsupportedEffect, UnsupportedField};
use portcullis_policy::{
    AnalysisReason, AppliedPolicyResult, BlockReason, NamedLocation, Outcome, PolicySet, evaluate,
};
use serde_json::json;

use crate::support::*;

fn timed_block() -> portcullis_policy::ConditionalAccessPolicy {
    policy(
        "timed",
        json!({"templateId": "abc", "conditions": {"times": {"includedRanges": ["weekends"]}},
               "grantControls": {"builtInControls": ["mfa"]}}),
    )
}

#[test]
fn unsupported_members_are_reported_with_their_effect() {
    let p = policy(
        "p",
        json!({"templateId": "tmpl", "partialEnablementStrategy": null,
               "conditions": {"times": {"x": 1}, "insiderRiskLevels": null, "authenticationFlows": {"transferMethods": ""},
                              "applications": {"applicationFilter": {"mode": "include", "rule": "CustomSecurityAttribute.x -eq \"y\""}},
                              "devices": {"includeDevices": [], "deviceFilter": {"mode": "include", "rule": "device.isCompliant -eq True"}}},
               "grantControls": {"builtInControls": ["mfa"], "futureGrant": ["x"], "authenticationStrength@odata.context": "ctx"},
               "sessionControls": {"signInFrequency": null, "secureSignInSession": {"isEnabled": true}}}),
    );
    let paths: Vec<(String, UnsupportedEffect)> = p
        .unsupported_fields()
        .into_iter()
        .map(|UnsupportedField { path, effect }| (path, effect))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("templateId".to_owned(), UnsupportedEffect::Informational),
            (
                "conditions.times".to_owned(),
                UnsupportedEffect::FailsClosed
            ),
            (
                "conditions.applications.applicationFilter".to_owned(),
                UnsupportedEffect::FailsClosed
            ),
            (
                "grantControls.futureGrant".to_owned(),
                UnsupportedEffect::NeverSatisfied
            ),
            (
                "sessionControls.secureSignInSession".to_owned(),
                UnsupportedEffect::NotEnforced
            ),
        ]
    );
}

#[test]
fn an_unevaluable_condition_fails_closed_when_the_rest_matches() {
    let decision = evaluate(&with_methods(ctx(), &["fido2"]), &set(vec![timed_block()]));
    let t = trace(&decision, "timed");
    assert!(t.applies);
    assert_eq!(t.result, AppliedPolicyResult::Failure);
    assert_eq!(t.analysis_reason(), AnalysisReason::InvalidCondition);
    assert!(
        t.failed_condition
            .as_ref()
            .unwrap()
            .to_string()
            .contains("conditions.times")
    );
    match decision.outcome {
        Outcome::Block { policies } => assert_eq!(
            policies[0].reason,
            BlockReason::UnevaluableCondition {
                condition: AnalysisReason::Time,
                field: "conditions.times".into()
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unevaluable_condition_does_not_widen_who_a_policy_applies_to() {
    let mut p = timed_block();
    p.conditions.users.as_mut().unwrap().include_users = vec![OTHER_USER.to_owned()];
    let decision = evaluate(&ctx(), &set(vec![p]));
    assert_eq!(decision.outcome, Outcome::Grant);
    assert_eq!(
        trace(&decision, "timed").result,
        AppliedPolicyResult::NotApplied
    );
}

#[test]
fn report_only_policies_with_unevaluable_conditions_change_nothing() {
    let mut p = timed_block();
    p.state = portcullis_policy::PolicyState::EnabledForReportingButNotEnforced;
    let decision = evaluate(&ctx(), &set(vec![p]));
    assert_eq!(decision.outcome, Outcome::Grant);
    assert_eq!(
        trace(&decision, "timed").result,
        AppliedPolicyResult::ReportOnlyFailure
    );
}

#[test]
fn references_to_unknown_or_unevaluable_locations_fail_closed() {
    let p = || {
        policy(
            "p",
            json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["missing-location"]}}}),
        )
    };
    let mut c = with_methods(ctx(), &["fido2"]);
    c.ip_address = Some("192.0.2.1".parse().unwrap());
    assert!(matches!(
        evaluate(&c, &set(vec![p()])).outcome,
        Outcome::Block { .. }
    ));
    let compliant_network = NamedLocation::Other(
        json!({"@odata.type": "#microsoft.graph.compliantNetworkNamedLocation", "id": "gsa", "displayName": "GSA"}),
    );
    let q = policy(
        "q",
        json!({"conditions": {"locations": {"includeLocations": ["gsa"], "excludeLocations": []}}}),
    );
    let decision = evaluate(
        &c,
        &PolicySet::new(vec![q], Vec::new(), vec![compliant_network]),
    );
    assert!(matches!(decision.outcome, Outcome::Block { .. }));
}

#[test]
fn unsupported_session_controls_are_reported_not_enforced() {
    let p = policy(
        "p",
        json!({"grantControls": {"builtInControls": []}, "sessionControls": {"applicationEnforcedRestrictions": {"isEnabled": true}}}),
    );
    let decision = evaluate(&ctx(), &set(vec![p]));
    assert_eq!(decision.outcome, Outcome::Grant);
    assert_eq!(
        decision.session.not_enforced,
        ["applicationEnforcedRestrictions"]
    );
}
