//! `lint` findings.

use portcullis_policy::graph::import_any;
use portcullis_policy::lint::{LintCode, LintOptions, Severity, lint};
use portcullis_policy::{PHISHING_RESISTANT_STRENGTH_ID, PolicySet};
use serde_json::json;

use crate::support::*;

fn codes(set: &PolicySet, options: &LintOptions) -> Vec<(LintCode, Option<String>)> {
    lint(set, options)
        .into_iter()
        .map(|f| (f.code, f.object_id))
        .collect()
}

#[test]
fn table_of_findings() {
    let cases: Vec<(&str, serde_json::Value, LintCode)> = vec![
        (
            "mfa with strength",
            json!({"grantControls": {"builtInControls": ["mfa"], "authenticationStrength": {"id": PHISHING_RESISTANT_STRENGTH_ID}}}),
            LintCode::MfaWithStrength,
        ),
        (
            "unknown strength",
            json!({"grantControls": {"builtInControls": [], "authenticationStrength": {"id": "nope"}}}),
            LintCode::UnknownStrength,
        ),
        (
            "unknown location",
            json!({"conditions": {"locations": {"includeLocations": ["nowhere"]}}}),
            LintCode::UnknownLocation,
        ),
        (
            "unsupported member",
            json!({"conditions": {"times": {"x": 1}}}),
            LintCode::UnsupportedField,
        ),
        (
            "nobody",
            json!({"conditions": {"users": {"includeUsers": ["None"]}}}),
            LintCode::NeverApplies,
        ),
        (
            "user excluded",
            json!({"conditions": {"users": {"includeUsers": [USER], "excludeUsers": [USER]}}}),
            LintCode::NeverApplies,
        ),
        (
            "no target",
            json!({"conditions": {"applications": {"includeApplications": []}}}),
            LintCode::NeverApplies,
        ),
        (
            "app excluded",
            json!({"conditions": {"applications": {"includeApplications": [APP], "excludeApplications": [APP]}}}),
            LintCode::NeverApplies,
        ),
        (
            "platform excluded",
            json!({"conditions": {"platforms": {"includePlatforms": ["iOS"], "excludePlatforms": ["iOS"]}}}),
            LintCode::NeverApplies,
        ),
        (
            "all locations excluded",
            json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["All"]}}}),
            LintCode::NeverApplies,
        ),
        (
            "bad device filter",
            json!({"conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.x -eq \"y\""}}}}),
            LintCode::InvalidDeviceFilter,
        ),
        (
            "report-only user action",
            json!({"state": "enabledForReportingButNotEnforced", "conditions": {"applications": {"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]}}}),
            LintCode::ReportOnlyUserAction,
        ),
        (
            "Office365 app group",
            json!({"conditions": {"applications": {"includeApplications": ["Office365"]}}}),
            LintCode::AppGroup,
        ),
        (
            "unsatisfiable control",
            json!({"grantControls": {"builtInControls": ["compliantApplication"]}}),
            LintCode::UnsupportedField,
        ),
        (
            "unknown platform value",
            json!({"conditions": {"platforms": {"includePlatforms": ["visionOS"]}}}),
            LintCode::UnknownValue,
        ),
    ];
    for (name, patch, code) in cases {
        let set = set(vec![policy("p", patch)]);
        let found = codes(&set, &LintOptions::default());
        assert!(
            found.contains(&(code, Some("p".to_owned()))),
            "{name}: {found:?}"
        );
    }
    let clean = set(vec![policy("p", json!({}))]);
    assert!(lint(&clean, &LintOptions::default()).is_empty());
}

#[test]
fn the_policy_limit_is_configurable() {
    let many = set((0..196)
        .map(|i| policy(&format!("p{i}"), json!({})))
        .collect());
    assert!(codes(&many, &LintOptions::default()).contains(&(LintCode::TooManyPolicies, None)));
    assert!(
        !codes(&many, &LintOptions { max_policies: 240 })
            .contains(&(LintCode::TooManyPolicies, None))
    );
}

#[test]
fn the_fixture_tenant_lints_as_expected() {
    let mut policies = Vec::new();
    for name in [
        "policies.json",
        "policy-security-info-beta.json",
        "policy-insider-risk-beta.json",
    ] {
        policies.extend(import_any(&fixture_bytes(name)).unwrap().policies);
    }
    let tenant = design_tenant();
    let set = PolicySet::new(
        policies,
        tenant.strengths().to_vec(),
        tenant.named_locations().to_vec(),
    );
    let findings = lint(&set, &LintOptions::default());
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("conditions.insiderRiskLevels"),
        "{}",
        errors[0]
    );
    assert!(
        findings
            .iter()
            .any(|f| f.code == LintCode::UnsupportedField && f.message.contains("templateId"))
    );
}
