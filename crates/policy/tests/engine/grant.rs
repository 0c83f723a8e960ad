//! Grant controls, authentication strengths, report-only, session controls.

use portcullis_policy::strength::CombinationConfiguration;
use portcullis_policy::{
    AppliedPolicyResult, AuthenticationStrength, BlockReason, ConditionalAccessStatus, Control,
    DeviceFacts, GrantOutcome, MULTIFACTOR_STRENGTH_ID, Outcome, PASSWORDLESS_STRENGTH_ID,
    PHISHING_RESISTANT_STRENGTH_ID, PersistentBrowserMode, PolicySet, SatisfiedMethod,
    built_in_strength, evaluate,
};
use serde_json::json;

use crate::support::*;

fn grant(operator: &str, controls: &[&str]) -> serde_json::Value {
    json!({"grantControls": {"operator": operator, "builtInControls": controls}})
}

fn strength_policy(id: &str, strength_id: &str) -> portcullis_policy::ConditionalAccessPolicy {
    policy(
        id,
        json!({"grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": strength_id}}}),
    )
}

fn compliant(
    mut c: portcullis_policy::SignInContext,
    yes: bool,
) -> portcullis_policy::SignInContext {
    c.device = Some(DeviceFacts {
        is_compliant: Some(yes),
        ..DeviceFacts::default()
    });
    c
}

fn strength_ids(outcome: &Outcome) -> Vec<Vec<String>> {
    match outcome {
        Outcome::Requirements { requirements } => requirements
            .iter()
            .map(|r| {
                r.alternatives
                    .iter()
                    .map(|a| match a {
                        Control::AuthenticationStrength(s) => s.id.clone(),
                        other => other.label(),
                    })
                    .collect()
            })
            .collect(),
        other => panic!("expected requirements, got {other:?}"),
    }
}

#[test]
fn built_in_strengths_have_entras_ids_and_combinations() {
    let mfa = built_in_strength(MULTIFACTOR_STRENGTH_ID).unwrap();
    assert_eq!(
        mfa.display_name.as_deref(),
        Some("Multifactor authentication")
    );
    assert_eq!(mfa.allowed_combinations.as_ref().unwrap().len(), 19);
    let passwordless = built_in_strength(PASSWORDLESS_STRENGTH_ID).unwrap();
    assert_eq!(
        passwordless.display_name.as_deref(),
        Some("Passwordless MFA")
    );
    let pr = built_in_strength(PHISHING_RESISTANT_STRENGTH_ID).unwrap();
    let combos: Vec<String> = pr
        .allowed_combinations
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        combos,
        [
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor"
        ]
    );
}

#[test]
fn table_of_methods_against_built_in_strengths() {
    // (methods, MFA, passwordless, phishing-resistant), from the reference's human table.
    let cases: Vec<(&[&str], bool, bool, bool)> = vec![
        (&["fido2"], true, true, true),
        (&["windowsHelloForBusiness"], true, true, true),
        (&["x509CertificateMultiFactor"], true, true, true),
        (&["deviceBasedPush"], true, true, false),
        (&["temporaryAccessPassOneTime"], true, false, false),
        (&["temporaryAccessPassMultiUse"], true, false, false),
        (&["password", "sms"], true, false, false),
        (
            &["password", "microsoftAuthenticatorPush"],
            true,
            false,
            false,
        ),
        (&["password", "softwareOath"], true, false, false),
        (&["federatedSingleFactor", "voice"], true, false, false),
        (&["federatedMultiFactor"], true, false, false),
        (&["password"], false, false, false),
        (&["sms"], false, false, false),
        (&["x509CertificateSingleFactor"], false, false, false),
        (&[], false, false, false),
    ];
    for (methods, mfa, passwordless, pr) in cases {
        let used: Vec<SatisfiedMethod> = methods
            .iter()
            .map(|m| SatisfiedMethod::new(portcullis_policy::AuthenticationMethodMode::parse(m)))
            .collect();
        let check = |id: &str| built_in_strength(id).unwrap().is_satisfied_by(&used);
        assert_eq!(check(MULTIFACTOR_STRENGTH_ID), mfa, "{methods:?} / MFA");
        assert_eq!(
            check(PASSWORDLESS_STRENGTH_ID),
            passwordless,
            "{methods:?} / passwordless"
        );
        assert_eq!(
            check(PHISHING_RESISTANT_STRENGTH_ID),
            pr,
            "{methods:?} / phishing-resistant"
        );
    }
}

#[test]
fn a_temporary_access_pass_meets_the_mfa_control_only() {
    let tap = with_methods(ctx(), &["temporaryAccessPassOneTime"]);
    let decision = evaluate(&tap, &set(vec![policy("mfa", grant("OR", &["mfa"]))]));
    assert_eq!(decision.outcome, Outcome::Grant);
    for strength in [PASSWORDLESS_STRENGTH_ID, PHISHING_RESISTANT_STRENGTH_ID] {
        let decision = evaluate(&tap, &set(vec![strength_policy("s", strength)]));
        assert_eq!(
            strength_ids(&decision.outcome),
            vec![vec![strength.to_owned()]]
        );
    }
}

#[test]
fn fido2_combination_configuration_restricts_aaguids() {
    let mut authenticator_only =
        AuthenticationStrength::custom("custom-1", "Authenticator passkeys", &["fido2"]);
    authenticator_only.combination_configurations =
        Some(vec![CombinationConfiguration::fido2(vec![
            AUTHENTICATOR_ANDROID.to_owned(),
            AUTHENTICATOR_IOS.to_owned(),
        ])]);
    let set = PolicySet::new(
        vec![strength_policy("p", "custom-1")],
        vec![authenticator_only],
        Vec::new(),
    );
    let mut c = ctx();
    c.methods = vec![SatisfiedMethod::passkey(AUTHENTICATOR_IOS.to_uppercase())];
    assert_eq!(evaluate(&c, &set).outcome, Outcome::Grant);
    c.methods = vec![SatisfiedMethod::passkey(YUBIKEY)];
    assert_eq!(
        strength_ids(&evaluate(&c, &set).outcome),
        vec![vec!["custom-1".to_owned()]]
    );
    c.methods = vec![SatisfiedMethod::new(
        portcullis_policy::AuthenticationMethodMode::Fido2,
    )];
    assert!(
        matches!(evaluate(&c, &set).outcome, Outcome::Requirements { .. }),
        "an unknown AAGUID is not allowed"
    );
}

#[test]
fn an_unknown_strength_blocks() {
    let decision = evaluate(
        &with_methods(ctx(), &["fido2"]),
        &set(vec![strength_policy("p", "no-such-strength")]),
    );
    match decision.outcome {
        Outcome::Block { policies } => {
            assert_eq!(
                policies[0].reason,
                BlockReason::UnmetControls(vec![Control::UnknownAuthenticationStrength(
                    "no-such-strength".into()
                )])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn block_wins_over_everything() {
    let policies = vec![
        policy("mfa", grant("OR", &["mfa"])),
        policy("block", grant("OR", &["block"])),
        policy("mfa-or-compliant", grant("OR", &["mfa", "compliantDevice"])),
    ];
    let decision = evaluate(
        &compliant(with_methods(ctx(), &["fido2"]), true),
        &set(policies),
    );
    match &decision.outcome {
        Outcome::Block { policies } => {
            assert_eq!(policies.len(), 1);
            assert_eq!(policies[0].policy_id, "block");
            assert_eq!(policies[0].reason, BlockReason::BlockControl);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(decision.status, ConditionalAccessStatus::Failure);
    assert_eq!(
        trace(&decision, "block").result,
        AppliedPolicyResult::Failure
    );
    assert_eq!(trace(&decision, "mfa").result, AppliedPolicyResult::Success);
}

#[test]
fn and_operator_needs_every_control() {
    let p = || set(vec![policy("p", grant("AND", &["mfa", "compliantDevice"]))]);
    assert_eq!(
        evaluate(
            &compliant(with_methods(ctx(), &["password", "sms"]), true),
            &p()
        )
        .outcome,
        Outcome::Grant
    );
    let pending = evaluate(&compliant(with_methods(ctx(), &["password"]), true), &p());
    assert_eq!(
        strength_ids(&pending.outcome),
        vec![vec![MULTIFACTOR_STRENGTH_ID.to_owned()]]
    );
    let noncompliant = evaluate(
        &compliant(with_methods(ctx(), &["password", "sms"]), false),
        &p(),
    );
    match noncompliant.outcome {
        Outcome::Block { policies } => assert_eq!(
            policies[0].reason,
            BlockReason::UnmetControls(vec![Control::CompliantDevice])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn or_operator_needs_one_control_and_prompts_in_defined_order() {
    let p = || {
        set(vec![policy(
            "p",
            grant("OR", &["compliantDevice", "mfa", "passwordChange"]),
        )])
    };
    assert_eq!(
        evaluate(&compliant(with_methods(ctx(), &["password"]), true), &p()).outcome,
        Outcome::Grant
    );
    let decision = evaluate(&compliant(with_methods(ctx(), &["password"]), false), &p());
    assert_eq!(
        strength_ids(&decision.outcome),
        vec![vec![
            MULTIFACTOR_STRENGTH_ID.to_owned(),
            "Require password change".to_owned()
        ]]
    );
    // Nothing that can be prompted for: the policy fails.
    let only_device = set(vec![policy(
        "p",
        grant("OR", &["compliantDevice", "domainJoinedDevice"]),
    )]);
    assert!(matches!(
        evaluate(&compliant(ctx(), false), &only_device).outcome,
        Outcome::Block { .. }
    ));
    let mut hybrid = ctx();
    hybrid.device = Some(DeviceFacts {
        trust_type: Some("ServerAD".into()),
        ..DeviceFacts::default()
    });
    assert_eq!(evaluate(&hybrid, &only_device).outcome, Outcome::Grant);
}

#[test]
fn every_applicable_policy_must_be_satisfied_in_prompt_order() {
    let policies = vec![
        policy(
            "terms",
            json!({"grantControls": {"operator": "OR", "builtInControls": [], "termsOfUse": ["tou-1"]}}),
        ),
        policy(
            "password",
            json!({"grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}),
        ),
        strength_policy("strength", PHISHING_RESISTANT_STRENGTH_ID),
    ];
    let decision = evaluate(&with_methods(ctx(), &["password"]), &set(policies));
    assert_eq!(
        strength_ids(&decision.outcome),
        vec![
            vec![PHISHING_RESISTANT_STRENGTH_ID.to_owned()],
            vec!["Require password change".to_owned()],
            vec!["Terms of use: tou-1".to_owned()],
        ],
        "MFA is met by meeting phishing-resistant, so it is not asked separately"
    );
    if let Outcome::Requirements { requirements } = &decision.outcome {
        assert_eq!(requirements[0].policy_ids, ["strength", "password"]);
    }
    let mut done = with_methods(ctx(), &["password", "fido2"]);
    done.password_changed = true;
    done.accepted_terms_of_use = vec!["TOU-1".into()];
    let policies = vec![
        policy(
            "terms",
            json!({"grantControls": {"operator": "OR", "builtInControls": [], "termsOfUse": ["tou-1"]}}),
        ),
        policy(
            "password",
            json!({"grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}),
        ),
        strength_policy("strength", PHISHING_RESISTANT_STRENGTH_ID),
    ];
    assert_eq!(evaluate(&done, &set(policies)).outcome, Outcome::Grant);
}

#[test]
fn two_strengths_that_do_not_imply_each_other_are_both_required() {
    let custom = AuthenticationStrength::custom("sms-only", "SMS sign-in", &["sms"]);
    let set = PolicySet::new(
        vec![
            strength_policy("a", "sms-only"),
            strength_policy("b", PHISHING_RESISTANT_STRENGTH_ID),
        ],
        vec![custom],
        Vec::new(),
    );
    let decision = evaluate(&ctx(), &set);
    assert_eq!(
        strength_ids(&decision.outcome),
        vec![
            vec!["sms-only".to_owned()],
            vec![PHISHING_RESISTANT_STRENGTH_ID.to_owned()]
        ]
    );
}

#[test]
fn unsupported_grant_controls_fail_closed() {
    for control in [
        "compliantApplication",
        "approvedApplication",
        "riskRemediation",
        "somethingNew",
    ] {
        let decision = evaluate(
            &with_methods(ctx(), &["fido2"]),
            &set(vec![policy("p", grant("AND", &["mfa", control]))]),
        );
        assert!(
            matches!(decision.outcome, Outcome::Block { .. }),
            "{control}"
        );
    }
    let custom = policy(
        "p",
        json!({"grantControls": {"operator": "OR", "builtInControls": [], "customAuthenticationFactors": ["duo"]}}),
    );
    assert!(matches!(
        evaluate(&ctx(), &set(vec![custom])).outcome,
        Outcome::Block { .. }
    ));
}

#[test]
fn report_only_results_and_no_effect() {
    let report_only = |id: &str, controls: &[&str]| {
        policy(
            id,
            json!({"state": "enabledForReportingButNotEnforced", "grantControls": {"operator": "OR", "builtInControls": controls}}),
        )
    };
    let policies = vec![
        report_only("ro-block", &["block"]),
        report_only("ro-mfa", &["mfa"]),
        report_only("ro-device", &["compliantDevice"]),
        policy(
            "ro-elsewhere",
            json!({"state": "enabledForReportingButNotEnforced", "conditions": {"applications": {"includeApplications": [OTHER_APP]}}}),
        ),
        policy(
            "off",
            json!({"state": "disabled", "grantControls": {"builtInControls": ["block"]}}),
        ),
    ];
    let decision = evaluate(
        &compliant(with_methods(ctx(), &["password"]), false),
        &set(policies),
    );
    assert_eq!(decision.outcome, Outcome::Grant);
    assert_eq!(decision.status, ConditionalAccessStatus::NotApplied);
    assert_eq!(
        trace(&decision, "ro-block").result,
        AppliedPolicyResult::ReportOnlyFailure
    );
    assert_eq!(
        trace(&decision, "ro-mfa").result,
        AppliedPolicyResult::ReportOnlyInterrupted
    );
    assert_eq!(
        trace(&decision, "ro-device").result,
        AppliedPolicyResult::ReportOnlyFailure
    );
    assert_eq!(
        trace(&decision, "ro-elsewhere").result,
        AppliedPolicyResult::ReportOnlyNotApplied
    );
    assert_eq!(
        trace(&decision, "off").result,
        AppliedPolicyResult::NotEnabled
    );
    let satisfied = evaluate(
        &with_methods(ctx(), &["fido2"]),
        &set(vec![report_only("ro-mfa", &["mfa"])]),
    );
    assert_eq!(
        trace(&satisfied, "ro-mfa").result,
        AppliedPolicyResult::ReportOnlySuccess
    );
}

#[test]
fn results_and_status_for_enforced_policies() {
    let decision = evaluate(
        &with_methods(ctx(), &["fido2"]),
        &set(vec![policy("p", grant("OR", &["mfa"]))]),
    );
    let t = trace(&decision, "p");
    assert_eq!(t.result, AppliedPolicyResult::Success);
    assert_eq!(t.grant, Some(GrantOutcome::Satisfied));
    assert_eq!(t.enforced_grant_controls, vec![Control::Mfa]);
    assert_eq!(
        t.enforced_grant_controls[0].label(),
        "Require multifactor authentication"
    );
    assert_eq!(decision.status, ConditionalAccessStatus::Success);
    let pending = evaluate(&ctx(), &set(vec![policy("p", grant("OR", &["mfa"]))]));
    assert_eq!(trace(&pending, "p").result, AppliedPolicyResult::Failure);
}

#[test]
fn session_controls_combine_most_restrictive() {
    let sif = |id: &str, value: i64, unit: &str| {
        policy(
            id,
            json!({"grantControls": {"builtInControls": []}, "sessionControls": {
            "signInFrequency": {"isEnabled": true, "type": unit, "value": value, "frequencyInterval": "timeBased"},
            "persistentBrowser": {"isEnabled": true, "mode": if id == "a" { "never" } else { "always" }},
            "cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}}}),
        )
    };
    let decision = evaluate(
        &ctx(),
        &set(vec![sif("a", 1, "days"), sif("b", 4, "hours")]),
    );
    assert_eq!(decision.outcome, Outcome::Grant);
    let frequency = decision.session.sign_in_frequency.clone().unwrap();
    assert_eq!(frequency.window_hours(), Some(4));
    assert_eq!(
        decision.session.persistent_browser,
        Some(PersistentBrowserMode::Never)
    );
    assert_eq!(decision.session.not_enforced, ["cloudAppSecurity"]);
    let every_time = policy(
        "c",
        json!({"grantControls": {"builtInControls": []}, "sessionControls": {
        "signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime", "authenticationType": "primaryAndSecondaryAuthentication"}}}),
    );
    let decision = evaluate(&ctx(), &set(vec![sif("a", 1, "days"), every_time]));
    assert_eq!(
        decision.session.sign_in_frequency.unwrap().window_hours(),
        Some(0)
    );
}
