//! The filter-for-devices rule language and its null semantics for unregistered devices.

use portcullis_policy::device_filter::{MAX_RULE_LENGTH, Rule};
use portcullis_policy::{AnalysisReason, BlockReason, DeviceFacts, Outcome, evaluate};
use serde_json::json;

use crate::support::*;

fn registered() -> DeviceFacts {
    let mut d = DeviceFacts {
        device_id: Some("6a7b8c9d-0000-4000-8000-00000000d001".into()),
        display_name: Some("JONI-LAPTOP".into()),
        device_ownership: Some("Company".into()),
        is_compliant: Some(true),
        manufacturer: Some("Contoso".into()),
        model: Some("Surface Laptop 5".into()),
        operating_system: Some("Windows".into()),
        operating_system_version: Some("10.0.22631".into()),
        physical_ids: vec!["[ZTDId]:abc".into(), "[OrderId]:PO-42".into()],
        profile_type: Some("RegisteredDevice".into()),
        system_labels: vec!["M365Managed".into()],
        trust_type: Some("AzureAD".into()),
        ..DeviceFacts::default()
    };
    d.extension_attributes[0] = Some("SAW".into());
    d
}

#[test]
fn null_semantics_for_unregistered_devices() {
    // Positive operators are false on null, negative operators true (reference §1.6a).
    let cases = [
        ("device.displayName -eq \"x\"", false),
        ("device.displayName -ne \"x\"", true),
        ("device.displayName -startsWith \"x\"", false),
        ("device.displayName -notStartsWith \"x\"", true),
        ("device.displayName -endsWith \"x\"", false),
        ("device.displayName -notEndsWith \"x\"", true),
        ("device.displayName -contains \"x\"", false),
        ("device.displayName -notContains \"x\"", true),
        ("device.deviceId -in [\"a\",\"b\"]", false),
        ("device.deviceId -notIn [\"a\",\"b\"]", true),
        ("device.isCompliant -eq True", false),
        ("device.isCompliant -ne True", true),
        ("device.systemLabels -contains \"M365Managed\"", false),
        ("device.systemLabels -notContains \"M365Managed\"", true),
        ("device.extensionAttribute1 -ne \"SAW\"", true),
        ("device.trustType -eq null", true),
    ];
    for (rule, expected) in cases {
        let parsed = Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(parsed.matches(None), expected, "{rule}");
    }
}

#[test]
fn rules_on_a_registered_device() {
    let d = registered();
    let cases = [
        ("device.trustType -eq \"azuread\"", true),
        (
            "device.trustType -eq \"ServerAD\" -or device.isCompliant -eq True",
            true,
        ),
        (
            "device.trustType -eq \"ServerAD\" -and device.isCompliant -eq True",
            false,
        ),
        ("device.displayName -startsWith \"joni\"", true),
        ("device.displayName -endsWith \"LAPTOP\"", true),
        ("device.displayName -contains \"-lap\"", true),
        ("device.model -notContains \"Surface\"", false),
        ("device.operatingSystemVersion -startsWith \"10.0.2\"", true),
        ("device.deviceOwnership -eq \"Company\"", true),
        (
            "device.deviceId -in [\"6A7B8C9D-0000-4000-8000-00000000D001\", \"x\"]",
            true,
        ),
        ("device.mdmAppId -notIn [\"x\"]", true),
        ("device.physicalIds -contains \"[ZTDId]:abc\"", true),
        ("device.physicalIds -contains \"[ZTDId]\"", false),
        ("device.systemLabels -contains \"m365managed\"", true),
        ("device.extensionAttribute1 -eq \"SAW\"", true),
        ("device.extensionAttribute2 -eq \"SAW\"", false),
        ("device.extensionAttribute2 -ne \"SAW\"", true),
        ("-not (device.isCompliant -eq False)", true),
        (
            "(device.trustType -eq \"Workplace\" -or (device.model -startsWith \"Surface\")) -and device.profileType -eq \"RegisteredDevice\"",
            true,
        ),
        ("device.displayName -eq \"say `\"hi`\"\"", false),
        ("DEVICE.TRUSTTYPE -EQ \"AzureAD\"", false),
    ];
    for (rule, expected) in cases {
        match Rule::parse(rule) {
            Ok(parsed) => assert_eq!(parsed.matches(Some(&d)), expected, "{rule}"),
            // Attribute prefixes are lower case `device.` in Entra; an upper-case prefix is refused.
            Err(_) => assert!(rule.starts_with("DEVICE"), "{rule} should parse"),
        }
    }
}

#[test]
fn bad_rules_are_errors() {
    let long = format!("device.displayName -eq \"{}\"", "x".repeat(MAX_RULE_LENGTH));
    let deep = format!(
        "{}device.model -eq \"x\"{}",
        "(".repeat(200),
        ")".repeat(200)
    );
    let bad = [
        "",
        "device.color -eq \"red\"",
        "device.deviceId -contains \"x\"",
        "device.trustType -startsWith \"Az\"",
        "device.physicalIds -eq \"x\"",
        "device.isCompliant -eq \"maybe\"",
        "device.model -match \"S.*\"",
        "device.model -eq",
        "device.model -eq \"unterminated",
        "(device.model -eq \"x\"",
        "device.model -eq \"x\")",
        "device.model -in \"x\"",
        "device.model -in [\"x\",]",
        "device.model -eq \"x\" -and",
        "user.department -eq \"x\"",
        "device.extensionAttribute16 -eq \"x\"",
        "device.extensionAttribute0 -eq \"x\"",
        // Found by fuzzing: a multi-byte character where the attribute prefix is compared.
        "device.trust\u{fffd}\u{fffd}\u{fffd} -eq \"x\"",
        "device.extensionAttribut\u{e9}1 -eq \"x\"",
        long.as_str(),
        deep.as_str(),
    ];
    for rule in bad {
        assert!(Rule::parse(rule).is_err(), "{rule:.80} should not parse");
    }
}

fn with_filter(mode: &str, rule: &str) -> portcullis_policy::ConditionalAccessPolicy {
    policy(
        "p",
        json!({"conditions": {"devices": {"deviceFilter": {"mode": mode, "rule": rule}}}}),
    )
}

#[test]
fn include_and_exclude_modes() {
    let mut on_saw = ctx();
    on_saw.device = Some(registered());
    let unregistered = ctx();
    let exclude_saw = || with_filter("exclude", "device.extensionAttribute1 -eq \"SAW\"");
    assert!(!applies(exclude_saw(), &on_saw));
    assert!(applies(exclude_saw(), &unregistered));
    // Entra's own example: exclude devices whose attribute is not SAW. An unregistered device's
    // null attribute makes `-ne` true, so it is excluded too.
    let graph_example = || with_filter("exclude", "device.extensionAttribute1 -ne \"SAW\"");
    assert!(applies(graph_example(), &on_saw));
    assert!(!applies(graph_example(), &unregistered));
    let include_compliant = || with_filter("include", "device.isCompliant -eq True");
    assert!(applies(include_compliant(), &on_saw));
    assert!(!applies(include_compliant(), &unregistered));
}

#[test]
fn an_invalid_rule_fails_closed() {
    let p = policy(
        "p",
        json!({"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.color -eq \"red\""}}},
               "grantControls": {"builtInControls": ["mfa"]}}),
    );
    let decision = evaluate(&with_methods(ctx(), &["password", "sms"]), &set(vec![p]));
    let t = trace(&decision, "p");
    assert!(t.applies);
    assert_eq!(t.analysis_reason(), AnalysisReason::InvalidCondition);
    match &decision.outcome {
        Outcome::Block { policies } => assert!(matches!(
            &policies[0].reason,
            BlockReason::UnevaluableCondition {
                condition: AnalysisReason::Devices,
                ..
            }
        )),
        other => panic!("expected block, got {other:?}"),
    }
}
