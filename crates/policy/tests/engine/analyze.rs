//! The analyzer: hand-built tenants that hold each finding and tenants that must not, and a
//! large generated tenant whose every witness is checked against the engine.

use portcullis_policy::analyze::{
    ADMIN_PORTAL_APP_ID, ANYONE_ELSE, Analysis, AnalysisInput, Directory, FindingKind,
    GLOBAL_ADMINISTRATOR_ROLE, PersonFacts, Reach, Severity, analyze,
};
use portcullis_policy::location::{IpNamedLocation, IpRange};
use portcullis_policy::{
    AuthenticationMethodMode, AuthenticationStrength, ConditionalAccessPolicy, NamedLocation,
    PolicySet, SatisfiedMethod, Target, evaluate,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::support::*;

const BREAK_GLASS: &str = "bbbbbbbb-0000-4000-8000-00000000b001";
const OFFICE: &str = "0ff1ce00-0000-4000-8000-000000000001";
const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";

fn run(set: &PolicySet) -> Analysis {
    let analysis = analyze(&AnalysisInput::new(set));
    assert_witnesses_hold(set, &analysis);
    analysis
}

fn run_with(set: &PolicySet, directory: &Directory) -> Analysis {
    let analysis = analyze(&AnalysisInput {
        directory: Some(directory),
        ..AnalysisInput::new(set)
    });
    assert_witnesses_hold(set, &analysis);
    analysis
}

/// Every finding's witness, decided by the engine as What-If builds it, gets the finding's
/// decision.
fn assert_witnesses_hold(set: &PolicySet, analysis: &Analysis) {
    for finding in &analysis.findings {
        let decision = evaluate(&finding.witness.to_context(set), set);
        assert_eq!(
            decision.outcome, finding.decision,
            "witness of {:?} \"{}\"",
            finding.kind, finding.message
        );
    }
}

fn of_kind(analysis: &Analysis, kind: FindingKind) -> Vec<&portcullis_policy::analyze::Finding> {
    analysis
        .findings
        .iter()
        .filter(|f| f.kind == kind)
        .collect()
}

fn office() -> NamedLocation {
    NamedLocation::Ip(IpNamedLocation {
        id: OFFICE.to_owned(),
        display_name: "Office".to_owned(),
        is_trusted: true,
        ip_ranges: vec![IpRange::new("198.51.100.0/24")],
        ..IpNamedLocation::default()
    })
}

fn block_all_but_break_glass() -> ConditionalAccessPolicy {
    policy(
        "block-all",
        json!({"displayName": "Block everyone except break-glass",
               "conditions": {"users": {"excludeUsers": [BREAK_GLASS]}},
               "grantControls": {"builtInControls": ["block"]}}),
    )
}

fn mfa_for_admins() -> ConditionalAccessPolicy {
    policy(
        "admin-mfa",
        json!({"displayName": "Admins: MFA",
               "conditions": {"users": {"includeUsers": [], "includeRoles": [GLOBAL_ADMINISTRATOR_ROLE]}}}),
    )
}

#[test]
fn blocking_everyone_but_break_glass_locks_the_global_administrators_out() {
    let set = set(vec![block_all_but_break_glass(), mfa_for_admins()]);
    let analysis = run(&set);
    let lockouts = of_kind(&analysis, FindingKind::Lockout);
    let portal = lockouts
        .iter()
        .find(|f| f.witness.target == Target::Application(ADMIN_PORTAL_APP_ID.to_owned()))
        .expect("the Admin Portal lockout");
    assert_eq!(portal.severity, Severity::High);
    assert_eq!(portal.decision.name(), "block");
    assert_eq!(portal.witness.roles, [GLOBAL_ADMINISTRATOR_ROLE]);
    assert_eq!(portal.policies[0].id, "block-all");
    assert_ne!(portal.witness.user, BREAK_GLASS);
    assert!(analysis.has_high());
    // The break-glass account is excluded, so the block is not "without exclusion".
    assert!(of_kind(&analysis, FindingKind::UnexcludedBlock).is_empty());
    // Nothing in the witness is invented: it is a sign-in What-If can be given.
    assert!(portal.witness.what_if_args().contains(&"--role".to_owned()));
}

#[test]
fn a_block_that_spares_the_office_and_mfa_for_admins_lock_no_one_out() {
    let block_outside = policy(
        "block-outside",
        json!({"displayName": "Block outside the office, except break-glass",
               "conditions": {"users": {"excludeUsers": [BREAK_GLASS]},
                              "locations": {"includeLocations": ["All"], "excludeLocations": [OFFICE]}},
               "grantControls": {"builtInControls": ["block"]}}),
    );
    let set = PolicySet::new(
        vec![block_outside, mfa_for_admins()],
        Vec::new(),
        vec![office()],
    );
    let analysis = run(&set);
    assert!(
        of_kind(&analysis, FindingKind::Lockout).is_empty(),
        "{:#?}",
        of_kind(&analysis, FindingKind::Lockout)
    );
    // A Global Administrator can get in from the office, with MFA.
    let space = portcullis_policy::analyze::ConditionSpace::new(&set, &[]);
    let admin = PersonFacts {
        user_id: "admin".into(),
        role_template_ids: vec![GLOBAL_ADMINISTRATOR_ROLE.into()],
        methods: vec![SatisfiedMethod::passkey(YUBIKEY)],
        ..PersonFacts::default()
    };
    match space.can_reach(
        &set,
        &admin,
        &Target::Application(ADMIN_PORTAL_APP_ID.into()),
    ) {
        Reach::Reachable(witness) => {
            assert_eq!(
                witness.ip.map(|ip| ip.to_string()).as_deref(),
                Some("198.51.100.0")
            );
            assert_eq!(
                evaluate(&witness.to_context(&set), &set).outcome.name(),
                "grant"
            );
        }
        other => panic!("the admin can sign in from the office: {other:?}"),
    }
}

#[test]
fn an_unconfigured_platform_condition_turns_block_android_into_block_everywhere() {
    let meant = policy(
        "block-android",
        json!({"displayName": "Block Android", "grantControls": {"builtInControls": ["block"]},
               "conditions": {"users": {"excludeUsers": [BREAK_GLASS]}}}),
    );
    let analysis = run(&set(vec![meant]));
    let lockout = of_kind(&analysis, FindingKind::Lockout);
    assert!(!lockout.is_empty());
    assert!(lockout.iter().all(|f| f.decision.name() == "block"));

    let fixed = policy(
        "block-android",
        json!({"displayName": "Block Android", "grantControls": {"builtInControls": ["block"]},
               "conditions": {"users": {"excludeUsers": [BREAK_GLASS]},
                              "platforms": {"includePlatforms": ["android"]}}}),
    );
    let analysis = run(&set(vec![fixed]));
    assert!(of_kind(&analysis, FindingKind::Lockout).is_empty());
}

fn allow_list_strength(aaguids: &[&str]) -> AuthenticationStrength {
    let mut strength = AuthenticationStrength::custom(
        "aaaa0000-0000-4000-8000-00000000f1d0",
        "Approved passkeys",
        &["fido2"],
    );
    strength.combination_configurations = Some(vec![
        portcullis_policy::strength::CombinationConfiguration::fido2(
            aaguids.iter().map(|a| a.to_string()).collect(),
        ),
    ]);
    strength
}

fn passkeys_for_admins() -> ConditionalAccessPolicy {
    policy(
        "admin-passkeys",
        json!({"displayName": "Admins: approved passkeys",
               "conditions": {"users": {"includeUsers": [], "includeRoles": [GLOBAL_ADMINISTRATOR_ROLE]}},
               "grantControls": {"builtInControls": [], "authenticationStrength": {"id": "aaaa0000-0000-4000-8000-00000000f1d0"}}}),
    )
}

fn directory_with_admin(aaguid: &str) -> Directory {
    Directory {
        people: vec![
            PersonFacts {
                user_id: "admin".into(),
                role_template_ids: vec![GLOBAL_ADMINISTRATOR_ROLE.into()],
                methods: vec![
                    SatisfiedMethod::new(AuthenticationMethodMode::Password),
                    SatisfiedMethod::passkey(aaguid),
                ],
                ..PersonFacts::default()
            },
            PersonFacts {
                user_id: "staff".into(),
                group_ids: vec![STAFF.into()],
                methods: vec![SatisfiedMethod::passkey(aaguid)],
                ..PersonFacts::default()
            },
        ],
        group_ids: vec![STAFF.into()],
        role_template_ids: None,
        applications: Vec::new(),
    }
}

#[test]
fn a_fido2_allow_list_that_leaves_out_the_administrators_passkey_is_a_lockout() {
    let set = PolicySet::new(
        vec![passkeys_for_admins()],
        vec![allow_list_strength(&[AUTHENTICATOR_IOS])],
        Vec::new(),
    );
    let analysis = run_with(&set, &directory_with_admin(YUBIKEY));
    let lockout = of_kind(&analysis, FindingKind::Lockout);
    assert!(!lockout.is_empty());
    assert!(lockout.iter().all(|f| f.witness.user == "admin"));
    assert_eq!(lockout[0].decision.name(), "requirements");
    assert_eq!(lockout[0].severity, Severity::High);
    assert!(
        lockout[0]
            .witness
            .methods
            .contains(&SatisfiedMethod::passkey(YUBIKEY))
    );

    // With the administrator's authenticator on the list, nobody is locked out.
    let set = PolicySet::new(
        vec![passkeys_for_admins()],
        vec![allow_list_strength(&[AUTHENTICATOR_IOS, YUBIKEY])],
        Vec::new(),
    );
    let analysis = run_with(&set, &directory_with_admin(YUBIKEY));
    assert!(of_kind(&analysis, FindingKind::Lockout).is_empty());
}

#[test]
fn no_policy_at_all_leaves_a_password_gap_and_administrators_without_phishing_resistance() {
    let analysis = run(&set(Vec::new()));
    let gaps = of_kind(&analysis, FindingKind::Gap);
    assert!(!gaps.is_empty());
    assert!(gaps.iter().all(|g| g.decision.name() == "grant"));
    assert!(gaps.iter().any(|g| g.severity == Severity::High));
    assert!(gaps.iter().any(|g| g.witness.user == ANYONE_ELSE));
    let baselines: Vec<&str> = of_kind(&analysis, FindingKind::Baseline)
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    for check in [
        "MFA for everyone",
        "phishing-resistant MFA for administrators",
        "legacy clients blocked",
        "registering security information protected",
    ] {
        assert!(
            baselines.iter().any(|m| m.starts_with(check)),
            "{check} missing from {baselines:?}"
        );
    }
}

#[test]
fn mfa_for_everyone_and_phishing_resistance_for_admins_close_the_gaps() {
    let mfa_all = policy("mfa-all", json!({"displayName": "Everyone: MFA"}));
    let analysis = run(&set(vec![mfa_all.clone()]));
    let gaps = of_kind(&analysis, FindingKind::Gap);
    // Password alone no longer gets in; administrators still get in without a passkey.
    assert!(
        gaps.iter()
            .all(|g| g.message.contains("phishing-resistant")),
        "{gaps:#?}"
    );
    assert!(gaps.iter().any(|g| g.severity == Severity::High));

    let pr_admins = policy(
        "pr-admins",
        json!({"displayName": "Admins: phishing-resistant",
               "conditions": {"users": {"includeUsers": [], "includeRoles": [GLOBAL_ADMINISTRATOR_ROLE]}},
               "grantControls": {"builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}}),
    );
    let analysis = run(&set(vec![mfa_all, pr_admins]));
    assert!(
        of_kind(&analysis, FindingKind::Gap).is_empty(),
        "{:#?}",
        of_kind(&analysis, FindingKind::Gap)
    );
    assert!(
        !of_kind(&analysis, FindingKind::Baseline)
            .iter()
            .any(|f| f.message.starts_with("MFA for everyone"))
    );
}

#[test]
fn a_policy_no_sign_in_can_meet_is_dead_and_says_which_condition() {
    let contradictory = policy(
        "dead-users",
        json!({"displayName": "Staff but not staff",
               "conditions": {"users": {"includeUsers": [], "includeGroups": [STAFF], "excludeGroups": [STAFF]}}}),
    );
    let registered_only = policy(
        "dead-device",
        json!({"displayName": "Company devices",
               "state": "enabledForReportingButNotEnforced",
               "conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.trustType -eq \"AzureAD\""}}}}),
    );
    let alive = policy(
        "alive",
        json!({"displayName": "Staff", "conditions": {"users": {"includeUsers": [], "includeGroups": [STAFF]}}}),
    );
    let disabled = policy(
        "off",
        json!({"displayName": "Off", "state": "disabled",
               "conditions": {"users": {"includeUsers": ["None"]}}}),
    );
    let analysis = run(&set(vec![contradictory, registered_only, alive, disabled]));
    let dead = of_kind(&analysis, FindingKind::DeadPolicy);
    let ids: Vec<&str> = dead.iter().map(|f| f.policies[0].id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{dead:#?}");
    assert!(ids.contains(&"dead-users") && ids.contains(&"dead-device"));
    let users = dead
        .iter()
        .find(|f| f.policies[0].id == "dead-users")
        .unwrap();
    assert!(
        users.message.contains("users condition"),
        "{}",
        users.message
    );
    assert_eq!(users.severity, Severity::Medium);
    let device = dead
        .iter()
        .find(|f| f.policies[0].id == "dead-device")
        .unwrap();
    assert!(
        device.message.contains("unregistered device"),
        "{}",
        device.message
    );
    assert_eq!(device.severity, Severity::Low);
}

#[test]
fn a_policy_others_already_cover_is_shadowed_and_a_stricter_one_is_not() {
    let mfa_all = policy("mfa-all", json!({"displayName": "Everyone: MFA"}));
    let mfa_staff_app = policy(
        "mfa-staff-app",
        json!({"displayName": "Staff on the app: MFA",
               "conditions": {"users": {"includeUsers": [], "includeGroups": [STAFF]},
                              "applications": {"includeApplications": [APP]}}}),
    );
    let analysis = run(&set(vec![mfa_all.clone(), mfa_staff_app]));
    let shadowed = of_kind(&analysis, FindingKind::ShadowedPolicy);
    assert_eq!(shadowed.len(), 1, "{shadowed:#?}");
    assert_eq!(shadowed[0].policies[0].id, "mfa-staff-app");
    assert!(shadowed[0].policies.iter().any(|p| p.id == "mfa-all"));

    let pr_staff = policy(
        "pr-staff",
        json!({"displayName": "Staff: phishing-resistant",
               "conditions": {"users": {"includeUsers": [], "includeGroups": [STAFF]}},
               "grantControls": {"builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}}),
    );
    let analysis = run(&set(vec![mfa_all, pr_staff]));
    assert!(of_kind(&analysis, FindingKind::ShadowedPolicy).is_empty());
}

#[test]
fn a_person_in_an_excluded_group_keeps_a_policy_from_being_shadowed() {
    // Everyone but contractors needs MFA; staff need it too. A staff member who is also a
    // contractor only meets the second, so it is not redundant.
    let mfa_but_contractors = policy(
        "mfa-but-contractors",
        json!({"displayName": "Everyone but contractors: MFA",
               "conditions": {"users": {"excludeGroups": [CONTRACTORS]}}}),
    );
    let mfa_staff = policy(
        "mfa-staff",
        json!({"displayName": "Staff: MFA",
               "conditions": {"users": {"includeUsers": [], "includeGroups": [STAFF]}}}),
    );
    let analysis = run(&set(vec![mfa_but_contractors, mfa_staff]));
    assert!(
        of_kind(&analysis, FindingKind::ShadowedPolicy).is_empty(),
        "{:#?}",
        of_kind(&analysis, FindingKind::ShadowedPolicy)
    );
}

#[test]
fn a_block_on_everyone_with_no_exclusion_is_reported_with_a_blocked_witness() {
    let block = policy(
        "block-everyone",
        json!({"displayName": "Block everyone", "grantControls": {"builtInControls": ["block"]}}),
    );
    let analysis = run(&set(vec![block]));
    let found = of_kind(&analysis, FindingKind::UnexcludedBlock);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::High);
    assert_eq!(found[0].decision.name(), "block");
}

#[test]
fn references_to_what_does_not_exist_are_unresolved() {
    let mentions = policy(
        "mentions",
        json!({"displayName": "Mentions ghosts",
               "conditions": {"users": {"includeUsers": [], "includeGroups": [STAFF, CONTRACTORS]},
                              "locations": {"includeLocations": ["All"], "excludeLocations": ["0ff1ce00-dead-4000-8000-000000000000"]}}}),
    );
    // Offline, only the undefined location can be known to be missing.
    let analysis = run(&set(vec![mentions.clone()]));
    let found = of_kind(&analysis, FindingKind::UnresolvedReference);
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("named location"));
    assert!(!found[0].message.contains(CONTRACTORS));

    // The directory holds STAFF only: CONTRACTORS names nothing.
    let analysis = run_with(&set(vec![mentions]), &directory_with_admin(YUBIKEY));
    let found = of_kind(&analysis, FindingKind::UnresolvedReference);
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains(&format!("group {CONTRACTORS}")));
    assert!(!found[0].message.contains(&format!("group {STAFF}")));
    assert_eq!(found[0].witness.groups, [CONTRACTORS]);
}

#[test]
fn the_analysis_json_has_the_documented_shape() {
    let analysis = run(&set(vec![block_all_but_break_glass()]));
    let body = analysis.to_json();
    assert_eq!(body["policies"], 1);
    let finding = &body["findings"][0];
    for key in [
        "kind", "severity", "message", "policies", "witness", "decision",
    ] {
        assert!(finding.get(key).is_some(), "{key} in {finding}");
    }
    let witness = &finding["witness"];
    for key in [
        "user",
        "groups",
        "roles",
        "guest",
        "platform",
        "clientApp",
        "ip",
        "methods",
        "signInRisk",
        "userRisk",
    ] {
        assert!(witness.get(key).is_some(), "{key} in {witness}");
    }
    assert!(witness.get("app").is_some() || witness.get("userAction").is_some());
}

/// A tenant of `count` policies drawn from the shapes real exports hold.
fn generated_tenant(seed: u64, count: usize) -> PolicySet {
    let mut rng = StdRng::seed_from_u64(seed);
    let groups: Vec<String> = (0..12)
        .map(|i| format!("aaaaaaaa-0000-4000-8000-{i:012x}"))
        .collect();
    let apps: Vec<String> = (0..6)
        .map(|i| format!("9a1b2c3d-0000-4000-8000-{i:012x}"))
        .collect();
    let roles = [GLOBAL_ADMINISTRATOR_ROLE, HELPDESK_ROLE];
    let platforms = [
        "android",
        "iOS",
        "windows",
        "macOS",
        "linux",
        "windowsPhone",
    ];
    let clients = [
        "browser",
        "mobileAppsAndDesktopClients",
        "exchangeActiveSync",
        "other",
    ];
    let risks = ["low", "medium", "high"];
    let locations = vec![
        office(),
        NamedLocation::Ip(IpNamedLocation {
            id: "10ca7100-0000-4000-8000-000000000002".into(),
            display_name: "Branch".into(),
            ip_ranges: vec![
                IpRange::new("198.51.100.128/25"),
                IpRange::new("2001:db8:1::/48"),
            ],
            ..IpNamedLocation::default()
        }),
    ];
    let location_ids = [OFFICE, "10ca7100-0000-4000-8000-000000000002", "AllTrusted"];
    let pick = |rng: &mut StdRng, items: &[&str], max: usize| -> Vec<String> {
        let n = rng.random_range(1..=max);
        (0..n)
            .map(|_| items[rng.random_range(0..items.len())].to_owned())
            .collect()
    };
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let app_refs: Vec<&str> = apps.iter().map(String::as_str).collect();
    let mut policies = Vec::new();
    for i in 0..count {
        let mut patch = json!({"displayName": format!("generated {i}")});
        patch["state"] = json!(match rng.random_range(0..10) {
            0 => "disabled",
            1 | 2 => "enabledForReportingButNotEnforced",
            _ => "enabled",
        });
        let users = match rng.random_range(0..5) {
            0 => json!({"includeUsers": ["All"], "excludeUsers": [BREAK_GLASS]}),
            1 => {
                json!({"includeUsers": [], "includeGroups": pick(&mut rng, &group_refs, 2), "excludeGroups": pick(&mut rng, &group_refs, 1)})
            }
            2 => json!({"includeUsers": [], "includeRoles": pick(&mut rng, &roles, 1)}),
            3 => json!({"includeUsers": ["All"], "excludeGroups": pick(&mut rng, &group_refs, 1)}),
            _ => json!({"includeUsers": ["GuestsOrExternalUsers"]}),
        };
        patch["conditions"] = json!({"users": users});
        if rng.random_bool(0.4) {
            patch["conditions"]["applications"] =
                json!({"includeApplications": pick(&mut rng, &app_refs, 2)});
        } else if rng.random_bool(0.1) {
            patch["conditions"]["applications"] = json!({"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]});
        } else if rng.random_bool(0.2) {
            patch["conditions"]["applications"] = json!({"includeApplications": ["All"], "excludeApplications": pick(&mut rng, &app_refs, 1)});
        }
        if rng.random_bool(0.3) {
            patch["conditions"]["platforms"] = if rng.random_bool(0.5) {
                json!({"includePlatforms": pick(&mut rng, &platforms, 2)})
            } else {
                json!({"includePlatforms": ["all"], "excludePlatforms": pick(&mut rng, &platforms, 2)})
            };
        }
        if rng.random_bool(0.25) {
            patch["conditions"]["locations"] = if rng.random_bool(0.5) {
                json!({"includeLocations": ["All"], "excludeLocations": pick(&mut rng, &location_ids, 1)})
            } else {
                json!({"includeLocations": pick(&mut rng, &location_ids, 1)})
            };
        }
        if rng.random_bool(0.25) {
            patch["conditions"]["clientAppTypes"] = json!(pick(&mut rng, &clients, 2));
        }
        if rng.random_bool(0.05) {
            patch["conditions"]["signInRiskLevels"] = json!(pick(&mut rng, &risks[2..], 1));
        }
        patch["grantControls"] = match rng.random_range(0..6) {
            0 => json!({"builtInControls": ["block"]}),
            1 => {
                json!({"builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}})
            }
            2 => {
                json!({"builtInControls": [], "authenticationStrength": {"id": "aaaa0000-0000-4000-8000-00000000f1d0"}})
            }
            3 => json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}),
            4 => json!({"builtInControls": [], "termsOfUse": ["tou-1"]}),
            _ => json!({"builtInControls": ["mfa"]}),
        };
        policies.push(policy(&format!("p{i:03}"), patch));
    }
    PolicySet::new(
        policies,
        vec![allow_list_strength(&[AUTHENTICATOR_IOS, YUBIKEY])],
        locations,
    )
}

#[test]
fn every_witness_of_a_large_generated_tenant_gets_its_stated_decision() {
    for seed in [7] {
        let set = generated_tenant(seed, 100);
        // `run` checks each witness against the engine; the analyzer itself checks, for every
        // combination it asks the engine about, that its classes predicted the applying set.
        let analysis = run(&set);
        assert!(!analysis.findings.is_empty());
        assert!(analysis.stats.combinations > 1_000);
        // The lockout witnesses really are shut out: even with every method, no grant.
        for lockout in of_kind(&analysis, FindingKind::Lockout) {
            assert_ne!(lockout.decision.name(), "grant");
        }
        // And a person the generator cannot touch with a block reaches something.
        let space = portcullis_policy::analyze::ConditionSpace::new(&set, &[]);
        let person = PersonFacts {
            user_id: BREAK_GLASS.into(),
            methods: vec![SatisfiedMethod::passkey(YUBIKEY)],
            ..PersonFacts::default()
        };
        let reach = space.can_reach(&set, &person, &Target::Application(APP.into()));
        let (witness, expected) = match &reach {
            Reach::Reachable(w) => (w, None),
            Reach::LockedOut { witness, decision } => (witness, Some(decision.outcome.clone())),
        };
        let decided = evaluate(&witness.to_context(&set), &set).outcome;
        if let Some(expected) = expected {
            assert_eq!(decided, expected);
        }
    }
}
