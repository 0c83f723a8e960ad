//! Property tests over generated tenants and sign-ins.

use portcullis_policy::graph::{export_policies, import_policies};
use portcullis_policy::{
    ConditionalAccessPolicy, DevicePlatform, Outcome, PolicySet, PolicyState, SignInContext,
    Target, evaluate,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

const GROUPS: [&str; 3] = [ADMINS, STAFF, CONTRACTORS];
const PLATFORMS: [&str; 7] = [
    "android",
    "iOS",
    "windows",
    "macOS",
    "linux",
    "windowsPhone",
    "all",
];
const CONTROLS: [&str; 5] = [
    "mfa",
    "compliantDevice",
    "domainJoinedDevice",
    "passwordChange",
    "block",
];
const METHODS: [&str; 6] = [
    "password",
    "sms",
    "fido2",
    "temporaryAccessPassOneTime",
    "deviceBasedPush",
    "windowsHelloForBusiness",
];

fn subset<T: Clone + std::fmt::Debug + 'static>(
    items: &'static [T],
) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items, 0..=items.len())
}

fn state() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("enabled"),
        Just("enabledForReportingButNotEnforced"),
        Just("disabled")
    ]
}

prop_compose! {
    fn policy_value(index: usize)(
        state in state(),
        include_all in any::<bool>(),
        include_groups in subset(&GROUPS),
        exclude_groups in subset(&GROUPS),
        exclude_user in any::<bool>(),
        app in prop_oneof![Just("All"), Just(APP), Just(OTHER_APP)],
        include_platforms in subset(&PLATFORMS),
        exclude_platforms in subset(&PLATFORMS[..6]),
        controls in subset(&CONTROLS),
        operator in prop_oneof![Just("AND"), Just("OR")],
        strength in prop_oneof![Just(None), Just(Some(portcullis_policy::PHISHING_RESISTANT_STRENGTH_ID)), Just(Some(portcullis_policy::PASSWORDLESS_STRENGTH_ID))],
        risk in subset(&["low", "medium", "high"]),
        extra in prop_oneof![Just(Value::Null), Just(json!("kept")), Just(json!({"nested": [1, 2]}))],
    ) -> Value {
        let mut grant = json!({"operator": operator, "builtInControls": controls});
        if let Some(id) = strength {
            grant["authenticationStrength"] = json!({"id": id});
        }
        json!({
            "id": format!("p{index}"),
            "displayName": format!("generated {index}"),
            "state": state,
            "futureMember": extra,
            "conditions": {
                "users": {
                    "includeUsers": if include_all { vec!["All"] } else { vec![] },
                    "excludeUsers": if exclude_user { vec![USER] } else { vec![] },
                    "includeGroups": include_groups, "excludeGroups": exclude_groups,
                    "includeRoles": [], "excludeRoles": []
                },
                "applications": {"includeApplications": [app], "excludeApplications": [], "includeUserActions": []},
                "platforms": {"includePlatforms": include_platforms, "excludePlatforms": exclude_platforms},
                "clientAppTypes": ["all"],
                "signInRiskLevels": risk,
                "userRiskLevels": []
            },
            "grantControls": grant
        })
    }
}

fn policies(max: usize) -> impl Strategy<Value = Vec<ConditionalAccessPolicy>> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_flat_map(|seeds| {
        seeds
            .into_iter()
            .enumerate()
            .map(|(i, _)| policy_value(i).prop_map(|v| serde_json::from_value(v).unwrap()))
            .collect::<Vec<_>>()
    })
}

prop_compose! {
    fn sign_in()(
        groups in subset(&GROUPS),
        platform in prop_oneof![Just(None), Just(Some(DevicePlatform::Windows)), Just(Some(DevicePlatform::Android)), Just(Some(DevicePlatform::IOS)), Just(Some(DevicePlatform::Linux))],
        methods in subset(&METHODS),
        compliant in any::<bool>(),
        app in prop_oneof![Just(APP), Just(OTHER_APP)],
        risk in prop_oneof![Just("none"), Just("low"), Just("high")],
    ) -> SignInContext {
        let mut c = with_methods(ctx(), &methods);
        c.target = Target::Application(app.to_owned());
        c.group_ids = groups.iter().map(|g| g.to_string()).collect();
        c.platform = platform;
        c.sign_in_risk = portcullis_policy::RiskLevel::parse(risk);
        c.device = Some(portcullis_policy::DeviceFacts { is_compliant: Some(compliant), ..Default::default() });
        c
    }
}

fn with(mut base: Vec<ConditionalAccessPolicy>, extra: ConditionalAccessPolicy) -> PolicySet {
    base.push(extra);
    set(base)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn exclusion_always_beats_inclusion(p in policy_value(0), c in sign_in(), via_group in any::<bool>()) {
        let mut p: ConditionalAccessPolicy = serde_json::from_value(p).unwrap();
        let users = p.conditions.users.as_mut().unwrap();
        if via_group && !c.group_ids.is_empty() {
            users.exclude_groups.push(c.group_ids[0].clone());
        } else {
            users.exclude_users.push(USER.to_owned());
        }
        let decision = evaluate(&c, &set(vec![p]));
        prop_assert!(!decision.trace[0].applies);
        prop_assert_eq!(decision.outcome, Outcome::Grant);
    }

    #[test]
    fn a_block_in_any_applicable_enabled_policy_blocks(ps in policies(8), c in sign_in()) {
        let block = policy("blocker", json!({"grantControls": {"operator": "OR", "builtInControls": ["block"]}}));
        let decision = evaluate(&c, &with(ps, block));
        match decision.outcome {
            Outcome::Block { policies } => prop_assert!(policies.iter().any(|b| b.policy_id == "blocker")),
            other => prop_assert!(false, "not blocked: {:?}", other),
        }
    }

    #[test]
    fn adding_an_enabled_policy_never_weakens_the_decision(ps in policies(8), extra in policy_value(99), c in sign_in()) {
        let mut extra: ConditionalAccessPolicy = serde_json::from_value(extra).unwrap();
        extra.state = PolicyState::Enabled;
        let before = evaluate(&c, &set(ps.clone()));
        let after = evaluate(&c, &with(ps, extra));
        prop_assert!(after.outcome.severity() >= before.outcome.severity(), "{:?} -> {:?}", before.outcome, after.outcome);
        if let (Outcome::Block { policies: was }, Outcome::Block { policies: now }) = (&before.outcome, &after.outcome) {
            for blocking in was {
                prop_assert!(now.contains(blocking));
            }
        }
    }

    #[test]
    fn report_only_policies_never_change_the_decision(ps in policies(8), extra in policy_value(99), c in sign_in()) {
        let mut extra: ConditionalAccessPolicy = serde_json::from_value(extra).unwrap();
        extra.state = PolicyState::EnabledForReportingButNotEnforced;
        let before = evaluate(&c, &set(ps.clone()));
        let after = evaluate(&c, &with(ps, extra));
        prop_assert_eq!(before.outcome, after.outcome);
        prop_assert_eq!(before.session, after.session);
        prop_assert_eq!(before.status, after.status);
    }

    #[test]
    fn evaluation_is_deterministic(ps in policies(8), c in sign_in()) {
        let tenant = set(ps);
        prop_assert_eq!(evaluate(&c, &tenant), evaluate(&c, &tenant));
    }

    #[test]
    fn import_export_import_is_the_identity(ps in policies(6)) {
        let exported = export_policies(&ps);
        let again = import_policies(exported.as_bytes()).unwrap();
        prop_assert_eq!(&again, &ps);
        let twice = import_policies(export_policies(&again).as_bytes()).unwrap();
        prop_assert_eq!(twice, again);
    }
}
