//! The import review lists everything: for each uploaded policy, every member the editor does
//! not show as a field is listed by its Graph name and Entra's label (kept and evaluated, kept
//! and not evaluated, or unsupported), and every id that names nothing here (users, groups,
//! roles, applications, named locations, strengths) is listed as unresolved. Checked against
//! the Entra export fixtures, member by member, and against an export that holds every kind of
//! member the editor does not model. The review proposes report-only and stores nothing; only
//! a Conditional Access writer may upload.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::portal::{admin, person};

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";
const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";

const FIXTURES: &[(&str, &[u8])] = &[
    (
        "policies.json",
        include_bytes!("../../../policy/tests/fixtures/entra-export/policies.json"),
    ),
    (
        "policy-insider-risk-beta.json",
        include_bytes!("../../../policy/tests/fixtures/entra-export/policy-insider-risk-beta.json"),
    ),
    (
        "policy-security-info-beta.json",
        include_bytes!(
            "../../../policy/tests/fixtures/entra-export/policy-security-info-beta.json"
        ),
    ),
];

/// The members the editor shows as fields of its own (so the review need not list them).
const MODELLED: &[&str] = &[
    "id",
    "displayName",
    "state",
    "createdDateTime",
    "modifiedDateTime",
    "conditions.users.includeUsers",
    "conditions.users.excludeUsers",
    "conditions.users.includeGroups",
    "conditions.users.excludeGroups",
    "conditions.users.includeRoles",
    "conditions.users.excludeRoles",
    "conditions.applications.includeApplications",
    "conditions.applications.excludeApplications",
    "conditions.applications.includeUserActions",
    "conditions.applications.includeAuthenticationContextClassReferences",
    "conditions.platforms.includePlatforms",
    "conditions.platforms.excludePlatforms",
    "conditions.locations.includeLocations",
    "conditions.locations.excludeLocations",
    "conditions.clientAppTypes",
    "grantControls.operator",
    "grantControls.authenticationStrength",
    "sessionControls.signInFrequency.isEnabled",
    "sessionControls.signInFrequency.value",
    "sessionControls.signInFrequency.type",
    "sessionControls.signInFrequency.frequencyInterval",
    "sessionControls.signInFrequency.authenticationType",
    "sessionControls.persistentBrowser.isEnabled",
    "sessionControls.persistentBrowser.mode",
];

/// A file's text: Entra's exports are UTF-16 (either byte order) with a byte-order mark, or
/// UTF-8.
fn text(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        String::from_utf16_lossy(
            &rest
                .chunks_exact(2)
                .map(|c| unit([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The policies a file holds: a collection's `value`, or the one policy.
fn policies_in(bytes: &[u8]) -> Vec<Value> {
    let file: Value = serde_json::from_str(&text(bytes)).expect("a fixture parses");
    match file.get("value").and_then(Value::as_array) {
        Some(list) => list.clone(),
        None => vec![file],
    }
}

/// Every member holding a setting, as `(path, value)`: objects are walked into; `null`, `""`,
/// `[]` and annotations are Graph's "not configured". A grant control is one entry each.
fn settings(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    let Some(map) = value.as_object() else {
        return;
    };
    for (key, member) in map {
        if key.starts_with('@') || key.contains("@odata.") {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match member {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::Array(a) if a.is_empty() => {}
            Value::Object(_) => settings(member, &path, out),
            Value::Array(a) if path == "grantControls.builtInControls" => {
                out.extend(a.iter().map(|c| (path.clone(), c.clone())));
            }
            _ => out.push((path, member.clone())),
        }
    }
}

/// The part of the review page about the policy at `index`.
fn item(html: &str, index: usize) -> &str {
    let start = html
        .find(&format!("id=\"import-item-{index}\""))
        .unwrap_or_else(|| panic!("no item {index} in:\n{html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("the item ends")]
}

/// Whether the review lists the setting at `path` (or the member holding it) as kept.
fn listed(item: &str, path: &str, value: &Value) -> bool {
    let Some(kept) = item.find("class=\"import-kept\"").map(|at| &item[at..]) else {
        return false;
    };
    if path == "grantControls.builtInControls" {
        let control = value.as_str().unwrap_or_default();
        return kept.contains(&format!(
            "<code>{path}</code>: <code class=\"kept-value\">{control}</code>"
        ));
    }
    let mut at = path;
    loop {
        if kept.contains(&format!("<code>{at}</code>")) {
            return true;
        }
        match at.rsplit_once('.') {
            Some((parent, _)) => at = parent,
            None => return false,
        }
    }
}

fn modelled(path: &str, value: &Value) -> bool {
    if path == "grantControls.builtInControls" {
        return matches!(value.as_str(), Some("mfa" | "block"));
    }
    MODELLED
        .iter()
        .any(|m| path == *m || path.starts_with(&format!("{m}.")))
}

#[tokio::test]
async fn every_member_of_the_entra_fixtures_is_modelled_or_listed_in_the_review() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    for (name, bytes) in FIXTURES {
        let review = browser
            .upload("/admin/conditional-access/import", bytes)
            .await;
        assert_eq!(review.status, StatusCode::OK, "{name}: {}", review.html);
        for (index, policy) in policies_in(bytes).iter().enumerate() {
            let item = item(&review.html, index);
            let mut members = Vec::new();
            settings(policy, "", &mut members);
            for (path, value) in members {
                assert!(
                    modelled(&path, &value) || listed(item, &path, &value),
                    "{name}, policy {index}: {path} = {value} is neither an editor field nor listed:\n{item}"
                );
            }
            // Each is proposed report-only, whatever the file says.
            assert!(
                item.contains(
                    "<option value=\"enabledForReportingButNotEnforced\" selected>Report-only"
                ),
                "{name}, policy {index}: {item}"
            );
        }
    }
    // The members Entra's fixtures hold beyond the editor, by Entra's label.
    let insider = browser
        .upload("/admin/conditional-access/import", FIXTURES[1].1)
        .await;
    assert!(
        insider.html.contains("<strong>Insider risk</strong>"),
        "{}",
        insider.html
    );
    let security_info = browser
        .upload("/admin/conditional-access/import", FIXTURES[2].1)
        .await;
    assert!(
        security_info
            .html
            .contains("<strong>Filter for devices</strong>")
    );
    assert!(security_info.html.contains("<strong>Description</strong>"));
    // The fixtures' group and break-glass user are not in this tenant.
    let all = browser
        .upload("/admin/conditional-access/import", FIXTURES[0].1)
        .await;
    assert!(
        all.html
            .contains("Excluded user <code>0c8a3b2e-7d41-4f5a-9b6c-1e2d3f4a5b6c</code>")
    );
    assert!(
        all.html
            .contains("Included group <code>5f1b5b5e-0a6b-4c1e-9d7a-2b3c4d5e6f70</code>")
    );
    let stored = t.get("/identity/conditionalAccess/policies").await.body;
    assert_eq!(stored["value"], json!([]), "a review stores nothing");
    t.stop().await;
}

/// An export holding every kind of member the editor does not model, and an id of each kind
/// that names nothing here.
fn everything_export() -> Value {
    json!({"value": [{
        "displayName": "Contoso: everything the editor does not model",
        "state": "enabled",
        "templateId": "0b2282f9-2862-4178-88b5-d79340b36cb1",
        "conditions": {
            "users": {"includeUsers": ["11111111-0000-4000-8000-000000000001"],
                      "excludeUsers": ["11111111-0000-4000-8000-000000000002"],
                      "includeGroups": ["22222222-0000-4000-8000-000000000001"],
                      "excludeGroups": ["22222222-0000-4000-8000-000000000002"],
                      "includeRoles": ["33333333-0000-4000-8000-000000000001"],
                      "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest,b2bDirectConnectUser",
                                                       "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}}},
            "applications": {"includeApplications": ["44444444-0000-4000-8000-000000000001"],
                             "excludeApplications": ["44444444-0000-4000-8000-000000000002"]},
            "locations": {"includeLocations": ["55555555-0000-4000-8000-000000000001"], "excludeLocations": ["AllTrusted"]},
            "clientAppTypes": ["all"],
            "userRiskLevels": ["high"],
            "signInRiskLevels": ["medium"],
            "servicePrincipalRiskLevels": ["high"],
            "insiderRiskLevels": "elevated",
            "devices": {"deviceFilter": {"mode": "include", "rule": "device.isCompliant -eq True"}},
            "authenticationFlows": {"transferMethods": "deviceCodeFlow"},
            "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}
        },
        "grantControls": {"operator": "OR",
                          "builtInControls": ["mfa", "compliantDevice", "domainJoinedDevice", "approvedApplication", "compliantApplication", "passwordChange"],
                          "termsOfUse": ["66666666-0000-4000-8000-000000000001"],
                          "authenticationStrength": {"id": "77777777-0000-4000-8000-000000000001"}},
        "sessionControls": {"applicationEnforcedRestrictions": {"isEnabled": true},
                            "cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"},
                            "continuousAccessEvaluation": {"mode": "strictEnforcement"},
                            "disableResilienceDefaults": true,
                            "secureSignInSession": {"isEnabled": true}}
    }]})
}

#[tokio::test]
async fn the_review_names_what_the_editor_keeps_and_what_names_nothing_here() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let export = everything_export();
    let review = browser
        .upload(
            "/admin/conditional-access/import",
            export.to_string().as_bytes(),
        )
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.html);
    let item = item(&review.html, 0);
    let mut members = Vec::new();
    settings(&export["value"][0], "", &mut members);
    for (path, value) in &members {
        assert!(
            modelled(path, value) || listed(item, path, value),
            "{path} = {value} is neither an editor field nor listed:\n{item}"
        );
    }
    // Each by its Graph name and Entra's label.
    for (graph, label) in [
        (
            "compliantDevice",
            "Require device to be marked as compliant",
        ),
        (
            "domainJoinedDevice",
            "Require Microsoft Entra hybrid joined device",
        ),
        ("approvedApplication", "Require approved client app"),
        ("compliantApplication", "Require app protection policy"),
        ("passwordChange", "Require password change"),
    ] {
        assert!(
            item.contains(&format!(
                "<strong>{label}</strong> (<code>grantControls.builtInControls</code>: <code class=\"kept-value\">{graph}</code>)"
            )),
            "{graph}: {item}"
        );
    }
    for (path, label) in [
        ("grantControls.termsOfUse", "Terms of use"),
        ("conditions.userRiskLevels", "User risk"),
        ("conditions.signInRiskLevels", "Sign-in risk"),
        (
            "conditions.servicePrincipalRiskLevels",
            "Service principal risk",
        ),
        ("conditions.insiderRiskLevels", "Insider risk"),
        ("conditions.devices", "Filter for devices"),
        ("conditions.authenticationFlows", "Authentication flows"),
        (
            "conditions.clientApplications",
            "Workload identities (client applications)",
        ),
        (
            "conditions.users.includeGuestsOrExternalUsers",
            "Include guest or external users",
        ),
        (
            "sessionControls.applicationEnforcedRestrictions",
            "Use app enforced restrictions",
        ),
        (
            "sessionControls.cloudAppSecurity",
            "Use Conditional Access App Control",
        ),
        (
            "sessionControls.continuousAccessEvaluation",
            "Customize continuous access evaluation",
        ),
        (
            "sessionControls.disableResilienceDefaults",
            "Disable resilience defaults",
        ),
        (
            "sessionControls.secureSignInSession",
            "Require token protection for sign-in sessions",
        ),
        ("templateId", "Created from a template"),
    ] {
        assert!(
            item.contains(&format!("<strong>{label}</strong> (<code>{path}</code>")),
            "{path}: {item}"
        );
    }
    // Every id that names nothing here, with what it is.
    let unresolved = &item[item
        .find("class=\"import-unresolved\"")
        .expect("the unresolved list")..];
    for (label, id) in [
        ("Included user", "11111111-0000-4000-8000-000000000001"),
        ("Excluded user", "11111111-0000-4000-8000-000000000002"),
        ("Included group", "22222222-0000-4000-8000-000000000001"),
        ("Excluded group", "22222222-0000-4000-8000-000000000002"),
        (
            "Included directory role",
            "33333333-0000-4000-8000-000000000001",
        ),
        (
            "Included application",
            "44444444-0000-4000-8000-000000000001",
        ),
        (
            "Excluded application",
            "44444444-0000-4000-8000-000000000002",
        ),
        (
            "Included named location",
            "55555555-0000-4000-8000-000000000001",
        ),
        (
            "Authentication strength",
            "77777777-0000-4000-8000-000000000001",
        ),
    ] {
        assert!(
            unresolved.contains(&format!("{label} <code>{id}</code>")),
            "{label} {id}: {unresolved}"
        );
    }
    // The location and strength would make the import refused: it is not ticked, and says why;
    // the unresolved exclusions keep On from being offered; report-only is proposed.
    assert!(
        item.contains("the import is refused until it exists"),
        "{item}"
    );
    assert!(
        item.contains(
            "id=\"import-0\" name=\"import-0\" value=\"true\" aria-describedby=\"import-0-hint\">"
        ),
        "{item}"
    );
    assert!(item.contains("value=\"enabled\" disabled"), "{item}");
    assert!(
        item.contains("<option value=\"enabledForReportingButNotEnforced\" selected>Report-only")
    );
    let stored = t.get("/identity/conditionalAccess/policies").await.body;
    assert_eq!(stored["value"], json!([]), "a review stores nothing");
    t.stop().await;
}

#[tokio::test]
async fn only_a_conditional_access_writer_may_upload_for_review() {
    let t = TestServer::start().await;
    let file = everything_export().to_string();
    for (upn, roles) in [
        ("reader@contoso.com", &[GLOBAL_READER][..]),
        ("reports@contoso.com", &[REPORTS_READER][..]),
        ("security-reader@contoso.com", &[SECURITY_READER][..]),
        ("nobody@contoso.com", &[][..]),
    ] {
        let (_, someone) = person(&t, upn, roles).await;
        let page = someone
            .upload("/admin/conditional-access/import", file.as_bytes())
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{upn}: {}", page.html);
        assert!(!page.html.contains("import-item-0"), "{upn}");
    }
    let stored = t.get("/identity/conditionalAccess/policies").await.body;
    assert_eq!(stored["value"], json!([]));
    t.stop().await;
}
