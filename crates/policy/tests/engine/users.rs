//! Users and groups: include/exclude, special values, transitive groups, roles, guests.

use portcullis_policy::{AnalysisReason, FailureDetail, UserKind, evaluate};
use serde_json::json;

use crate::support::*;

fn users(patch: serde_json::Value) -> portcullis_policy::ConditionalAccessPolicy {
    policy("p", json!({"conditions": {"users": patch}}))
}

#[test]
fn table_of_user_rules() {
    struct Case {
        name: &'static str,
        users: serde_json::Value,
        guest: bool,
        groups: &'static [&'static str],
        roles: &'static [&'static str],
        applies: bool,
    }
    let cases = [
        Case {
            name: "All includes members",
            users: json!({"includeUsers": ["All"]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "All includes guests",
            users: json!({"includeUsers": ["All"]}),
            guest: true,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "None includes nobody",
            users: json!({"includeUsers": ["None"]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: false,
        },
        Case {
            name: "empty includes nobody",
            users: json!({"includeUsers": []}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: false,
        },
        Case {
            name: "user by id",
            users: json!({"includeUsers": [USER]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "user id in upper case",
            users: json!({"includeUsers": [USER.to_uppercase()]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "another user",
            users: json!({"includeUsers": [OTHER_USER]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: false,
        },
        Case {
            name: "transitive group",
            users: json!({"includeUsers": [], "includeGroups": [ADMINS]}),
            guest: false,
            groups: &[STAFF, ADMINS],
            roles: &[],
            applies: true,
        },
        Case {
            name: "group not held",
            users: json!({"includeUsers": [], "includeGroups": [ADMINS]}),
            guest: false,
            groups: &[STAFF],
            roles: &[],
            applies: false,
        },
        Case {
            name: "exclude group beats All",
            users: json!({"includeUsers": ["All"], "excludeGroups": [CONTRACTORS]}),
            guest: false,
            groups: &[CONTRACTORS],
            roles: &[],
            applies: false,
        },
        Case {
            name: "exclude user beats include group",
            users: json!({"includeUsers": [], "includeGroups": [ADMINS], "excludeUsers": [USER]}),
            guest: false,
            groups: &[ADMINS],
            roles: &[],
            applies: false,
        },
        Case {
            name: "exclude group beats include user",
            users: json!({"includeUsers": [USER], "excludeGroups": [ADMINS]}),
            guest: false,
            groups: &[ADMINS],
            roles: &[],
            applies: false,
        },
        Case {
            name: "active role",
            users: json!({"includeUsers": [], "includeRoles": [GLOBAL_ADMIN_ROLE]}),
            guest: false,
            groups: &[],
            roles: &[GLOBAL_ADMIN_ROLE],
            applies: true,
        },
        Case {
            name: "other role",
            users: json!({"includeUsers": [], "includeRoles": [GLOBAL_ADMIN_ROLE]}),
            guest: false,
            groups: &[],
            roles: &[HELPDESK_ROLE],
            applies: false,
        },
        Case {
            name: "exclude role beats include group",
            users: json!({"includeUsers": [], "includeGroups": [ADMINS], "excludeRoles": [HELPDESK_ROLE]}),
            guest: false,
            groups: &[ADMINS],
            roles: &[HELPDESK_ROLE],
            applies: false,
        },
        Case {
            name: "guests special value, guest",
            users: json!({"includeUsers": ["GuestsOrExternalUsers"]}),
            guest: true,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "guests special value, member",
            users: json!({"includeUsers": ["GuestsOrExternalUsers"]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: false,
        },
        Case {
            name: "exclude guests",
            users: json!({"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"]}),
            guest: true,
            groups: &[],
            roles: &[],
            applies: false,
        },
        Case {
            name: "exclude guests keeps members",
            users: json!({"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"]}),
            guest: false,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "internal guest type",
            users: json!({"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest", "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}}}),
            guest: true,
            groups: &[],
            roles: &[],
            applies: true,
        },
        Case {
            name: "B2B-only type does not reach local guests",
            users: json!({"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest"}}),
            guest: true,
            groups: &[],
            roles: &[],
            applies: false,
        },
    ];
    for case in cases {
        let mut c = ctx();
        c.user_kind = if case.guest {
            UserKind::Guest
        } else {
            UserKind::Member
        };
        c.group_ids = case.groups.iter().map(|g| g.to_string()).collect();
        c.role_template_ids = case.roles.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            applies(users(case.users), &c),
            case.applies,
            "{}",
            case.name
        );
    }
}

#[test]
fn exclusion_is_reported_as_the_users_condition() {
    let mut c = ctx();
    c.group_ids = vec![ADMINS.to_owned()];
    let decision = evaluate(
        &c,
        &set(vec![users(
            json!({"includeUsers": ["All"], "excludeGroups": [ADMINS]}),
        )]),
    );
    let failure = trace(&decision, "p").failed_condition.clone().unwrap();
    assert_eq!(failure.condition, AnalysisReason::Users);
    assert_eq!(failure.detail, FailureDetail::Excluded);
    assert_eq!(
        trace(&decision, "p").analysis_reason(),
        AnalysisReason::Users
    );
}

#[test]
fn a_user_in_many_groups_is_matched_through_any_of_them() {
    let mut c = ctx();
    c.group_ids = (0..500)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let target = c.group_ids[437].clone();
    assert!(applies(
        users(json!({"includeUsers": [], "includeGroups": [target]})),
        &c
    ));
}

#[test]
fn workload_identity_policies_never_apply_to_users() {
    let p = policy(
        "p",
        json!({"conditions": {"users": {"includeUsers": []},
            "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"], "excludeServicePrincipals": []}}}),
    );
    let decision = evaluate(&ctx(), &set(vec![p]));
    let t = trace(&decision, "p");
    assert!(!t.applies);
    assert_eq!(t.analysis_reason(), AnalysisReason::WorkloadIdentities);
}
