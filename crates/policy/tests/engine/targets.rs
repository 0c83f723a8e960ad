//! Target resources: applications, user actions, authentication contexts.

use portcullis_policy::{AnalysisReason, Target, UserAction, evaluate};
use serde_json::json;

use crate::support::*;

fn apps(patch: serde_json::Value) -> portcullis_policy::ConditionalAccessPolicy {
    policy("p", json!({"conditions": {"applications": patch}}))
}

fn target(t: Target) -> portcullis_policy::SignInContext {
    let mut c = ctx();
    c.target = t;
    c
}

#[test]
fn table_of_target_rules() {
    let app = || Target::Application(APP.to_owned());
    let register = || Target::UserAction(UserAction::RegisterSecurityInformation);
    let device = || Target::UserAction(UserAction::RegisterOrJoinDevices);
    let c37 = || Target::AuthenticationContext("c37".to_owned());
    let cases: Vec<(&str, serde_json::Value, Target, bool)> = vec![
        (
            "All apps",
            json!({"includeApplications": ["All"]}),
            app(),
            true,
        ),
        (
            "app by id",
            json!({"includeApplications": [APP]}),
            app(),
            true,
        ),
        (
            "other app",
            json!({"includeApplications": [OTHER_APP]}),
            app(),
            false,
        ),
        (
            "None",
            json!({"includeApplications": ["None"]}),
            app(),
            false,
        ),
        (
            "exclude beats All",
            json!({"includeApplications": ["All"], "excludeApplications": [APP]}),
            app(),
            false,
        ),
        (
            "exclude beats include",
            json!({"includeApplications": [APP], "excludeApplications": [APP.to_uppercase()]}),
            app(),
            false,
        ),
        (
            "exclude another app",
            json!({"includeApplications": ["All"], "excludeApplications": [OTHER_APP]}),
            app(),
            true,
        ),
        (
            "Office365 group holds no Portcullis app",
            json!({"includeApplications": ["Office365"]}),
            app(),
            false,
        ),
        (
            "register security info action",
            json!({"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]}),
            register(),
            true,
        ),
        (
            "All resources reach security info",
            json!({"includeApplications": ["All"]}),
            register(),
            true,
        ),
        (
            "app policy does not reach security info",
            json!({"includeApplications": [APP]}),
            register(),
            false,
        ),
        (
            "register device action",
            json!({"includeApplications": [], "includeUserActions": ["urn:user:registerdevice"]}),
            device(),
            true,
        ),
        (
            "All resources do not reach device registration",
            json!({"includeApplications": ["All"]}),
            device(),
            false,
        ),
        (
            "security info policy does not reach apps",
            json!({"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]}),
            app(),
            false,
        ),
        (
            "auth context c37",
            json!({"includeApplications": [], "includeAuthenticationContextClassReferences": ["c37"]}),
            c37(),
            true,
        ),
        (
            "other auth context",
            json!({"includeApplications": [], "includeAuthenticationContextClassReferences": ["c1"]}),
            c37(),
            false,
        ),
        (
            "All apps do not reach an auth context",
            json!({"includeApplications": ["All"]}),
            c37(),
            false,
        ),
    ];
    for (name, patch, t, expected) in cases {
        assert_eq!(applies(apps(patch), &target(t)), expected, "{name}");
    }
}

#[test]
fn failing_target_names_the_right_reason() {
    let decision = evaluate(
        &target(Target::UserAction(UserAction::RegisterOrJoinDevices)),
        &set(vec![apps(json!({"includeApplications": [APP]}))]),
    );
    assert_eq!(
        trace(&decision, "p").analysis_reason(),
        AnalysisReason::UserActions
    );
    let decision = evaluate(
        &ctx(),
        &set(vec![apps(json!({"includeApplications": [OTHER_APP]}))]),
    );
    assert_eq!(
        trace(&decision, "p").analysis_reason(),
        AnalysisReason::Application
    );
}
