//! The Conditional Access editor's merge rule over HTTP: the form writes the parts a person
//! changed into the stored document and nothing else, so every member it does not edit —
//! controls and conditions Portcullis does not evaluate, unknown members an import kept, ids
//! that do not resolve — survives an open-and-save, checked through the Graph API. The import
//! review stores nothing until confirmed. People without the write role are refused.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::portal::{admin, hidden_value, person, redirected_to, reviewed_and_saved};

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
/// A user id no directory here holds: the break-glass account of the tenant it came from.
const BREAK_GLASS: &str = "9b0c6c3e-0000-4000-8000-00000000beef";

/// An Entra export with what the editor shows but does not edit.
fn export(group: &str) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies/$entity",
        "displayName": "Contoso: compliant device or MFA",
        "state": "enabledForReportingButNotEnforced",
        "someFutureMember": {"kept": true},
        "conditions": {
            "users": {"includeGroups": [group], "excludeUsers": [BREAK_GLASS],
                      "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest",
                                                       "externalTenants": {"membershipKind": "all"}}},
            "applications": {"includeApplications": ["All"]},
            "platforms": {"includePlatforms": ["android", "iOS"], "excludePlatforms": ["windows"]},
            "clientAppTypes": ["browser", "mobileAppsAndDesktopClients"],
            "signInRiskLevels": [], "userRiskLevels": ["high"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"],
                          "termsOfUse": ["5d1b4d3c-0000-4000-8000-000000000001"]},
        "sessionControls": {"signInFrequency": {"isEnabled": true, "value": 4, "type": "hours"},
                            "cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}}
    })
}

/// The fields the editor's page sends for that policy, unchanged.
fn unchanged_form(group: &str) -> Vec<(&'static str, String)> {
    vec![
        ("displayName", "Contoso: compliant device or MFA".into()),
        ("state", "enabledForReportingButNotEnforced".into()),
        ("usersInclude", "select".into()),
        ("includeGroups", group.into()),
        ("excludeUsers", BREAK_GLASS.into()),
        ("target", "applications".into()),
        ("appsInclude", "all".into()),
        ("platformsInclude", "select".into()),
        ("includePlatforms", "android".into()),
        ("includePlatforms", "iOS".into()),
        ("excludePlatforms", "windows".into()),
        ("locationsInclude", "All".into()),
        ("clientAppTypes", "browser".into()),
        ("clientAppTypes", "mobileAppsAndDesktopClients".into()),
        ("grant", "grant".into()),
        ("requireMfa", "true".into()),
        ("operator", "OR".into()),
        ("signInFrequency", "true".into()),
        ("signInFrequencyInterval", "timeBased".into()),
        ("signInFrequencyValue", "4".into()),
        ("signInFrequencyUnit", "hours".into()),
        ("persistentBrowserMode", "never".into()),
    ]
}

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn without(policy: &Value, members: &[&str]) -> Value {
    let mut policy = policy.clone();
    for m in members {
        policy.as_object_mut().unwrap().remove(*m);
    }
    policy
}

async fn imported(t: &TestServer) -> (String, String) {
    let group = t
        .post("/groups", json!({"displayName": "Sales"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = t
        .post(
            "/identity/conditionalAccess/policies?portcullisImport=true",
            export(&group),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    (group, created.body["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn saving_an_imported_policy_keeps_every_member_the_editor_does_not_edit() {
    let t = TestServer::start().await;
    let (group, id) = imported(&t).await;
    let path = format!("/identity/conditionalAccess/policies/{id}");
    let before = t.get(&path).await.body;
    let browser = admin(&t).await;

    // The page shows what it does not edit, flagged, and the unresolved exclusion by its field.
    let page = browser
        .get(&format!("/admin/conditional-access/policies/{id}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        "compliantDevice",
        "grantControls.termsOfUse",
        "conditions.userRiskLevels",
        "Portcullis detects no risk",
        "sessionControls.cloudAppSecurity",
        "someFutureMember",
        "conditions.users.includeGuestsOrExternalUsers",
        "Kept, not enforced by Portcullis",
        "excludeUsers-unresolved-1",
    ] {
        assert!(page.html.contains(shown), "{shown} in:\n{}", page.html);
    }

    // Reviewed unchanged: no diff, and a save stores nothing.
    let form = unchanged_form(&group);
    let mut review = pairs(&form);
    review.push(("intent", "review"));
    let page = browser
        .post(&format!("/admin/conditional-access/policies/{id}"), &review)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("id=\"policy-no-changes\""),
        "{}",
        page.html
    );
    let saved = reviewed_save(&browser, &id, &form, &page.html).await;
    assert!(
        saved
            .location
            .as_deref()
            .unwrap_or_default()
            .ends_with("done=policy-unchanged"),
        "{:?}",
        saved.location
    );
    assert_eq!(t.get(&path).await.body, before, "every member is as it was");

    // One change: the state. Everything else survives, the unresolved exclusion included.
    let mut off = form.clone();
    off.retain(|(k, _)| *k != "state");
    off.push(("state", "disabled".into()));
    redirected_to(
        &reviewed_and_saved(&browser, &id, &pairs(&off)).await,
        &format!("/admin/conditional-access/policies/{id}"),
    );
    let after = t.get(&path).await.body;
    assert_eq!(after["state"], "disabled");
    assert_eq!(
        without(&after, &["state", "modifiedDateTime"]),
        without(&before, &["state", "modifiedDateTime"])
    );

    // Unticking MFA keeps compliantDevice and the terms of use beside the grant.
    let mut no_mfa = off.clone();
    no_mfa.retain(|(k, _)| *k != "requireMfa");
    redirected_to(
        &reviewed_and_saved(&browser, &id, &pairs(&no_mfa)).await,
        &format!("/admin/conditional-access/policies/{id}"),
    );
    let after = t.get(&path).await.body;
    assert_eq!(
        after["grantControls"]["builtInControls"],
        json!(["compliantDevice"])
    );
    assert_eq!(
        after["grantControls"]["termsOfUse"],
        before["grantControls"]["termsOfUse"]
    );
    assert_eq!(after["someFutureMember"], before["someFutureMember"]);
    t.stop().await;
}

/// Posts Save with the digest of the review on `html`.
async fn reviewed_save(
    browser: &crate::portal::Browser,
    id: &str,
    form: &[(&'static str, String)],
    html: &str,
) -> crate::portal::Page {
    let digest = hidden_value(html, "reviewed");
    let mut save = pairs(form);
    save.push(("intent", "save"));
    save.push(("reviewed", &digest));
    browser
        .post(&format!("/admin/conditional-access/policies/{id}"), &save)
        .await
}

#[tokio::test]
async fn a_save_stores_only_what_was_reviewed_and_bad_picks_change_nothing() {
    let t = TestServer::start().await;
    let (group, id) = imported(&t).await;
    let path = format!("/identity/conditionalAccess/policies/{id}");
    let before = t.get(&path).await.body;
    let browser = admin(&t).await;
    let form = unchanged_form(&group);

    // Reviewed one change, then sent with another: reviewed again, nothing saved.
    let mut off = form.clone();
    off.retain(|(k, _)| *k != "state");
    off.push(("state", "disabled".into()));
    let mut review = pairs(&off);
    review.push(("intent", "review"));
    let page = browser
        .post(&format!("/admin/conditional-access/policies/{id}"), &review)
        .await;
    assert!(page.html.contains("id=\"policy-diff\""), "{}", page.html);
    let mut other = off.clone();
    other.push(("excludePlatforms", "macOS".into()));
    let stale = reviewed_save(&browser, &id, &other, &page.html).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert!(stale.html.contains("id=\"review-stale\""), "{}", stale.html);
    assert_eq!(t.get(&path).await.body, before);

    // A group typed into the picker that does not exist: beside the users, nothing saved.
    let mut typo = form.clone();
    typo.push(("excludeGroupsAdd", "No such group".into()));
    let mut review = pairs(&typo);
    review.push(("intent", "review"));
    let page = browser
        .post(&format!("/admin/conditional-access/policies/{id}"), &review)
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.html.contains("id=\"conditions-users-error\""),
        "{}",
        page.html
    );
    assert!(page.html.contains("No group is named"), "{}", page.html);
    assert!(
        page.html.contains("value=\"No such group\""),
        "the typed value survives as a chip"
    );
    assert_eq!(t.get(&path).await.body, before);

    // Turning it On with the unresolved exclusion: core refuses, beside the users.
    let mut on = form.clone();
    on.retain(|(k, _)| *k != "state");
    on.push(("state", "enabled".into()));
    let mut review = pairs(&on);
    review.push(("intent", "review"));
    let page = browser
        .post(&format!("/admin/conditional-access/policies/{id}"), &review)
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.html);
    assert!(
        page.html.contains("excludes nobody") || page.html.contains("exclude nobody"),
        "{}",
        page.html
    );
    assert_eq!(t.get(&path).await.body, before);

    // A reader sees the editor and can neither review nor save nor import.
    let (_, reader) = person(&t, "reader@contoso.com", &[GLOBAL_READER]).await;
    let page = reader
        .get(&format!("/admin/conditional-access/policies/{id}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("id=\"review-policy\""));
    let mut review = pairs(&off);
    review.push(("intent", "review"));
    let refused = reader
        .post(&format!("/admin/conditional-access/policies/{id}"), &review)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = reader
        .post(
            "/admin/conditional-access/import/reviewed",
            &[
                ("count", "1"),
                ("document-0", "{}"),
                ("import-0", "true"),
                ("state-0", "disabled"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(t.get(&path).await.body, before);
    t.stop().await;
}

#[tokio::test]
async fn the_import_review_stores_nothing_until_confirmed_and_copies_an_existing_id() {
    let t = TestServer::start().await;
    let (_, id) = imported(&t).await;
    let browser = admin(&t).await;
    let export = t
        .get(&format!("/identity/conditionalAccess/policies/{id}"))
        .await
        .body;
    let count = || async {
        t.get("/identity/conditionalAccess/policies").await.body["value"]
            .as_array()
            .unwrap()
            .len()
    };

    // The portal's own export, uploaded again: reviewed with its id flagged, nothing stored.
    let review = browser
        .upload(
            "/admin/conditional-access/import",
            export.to_string().as_bytes(),
        )
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.html);
    assert!(
        review.html.contains("id=\"import-exists-0\""),
        "{}",
        review.html
    );
    assert!(review.html.contains("id=\"copy-0\""));
    assert!(review.html.contains("id=\"import-unresolved-0\""));
    // An unresolved exclusion: On is not offered.
    assert!(
        review.html.contains("value=\"enabled\" disabled"),
        "{}",
        review.html
    );
    assert_eq!(count().await, 1, "a review stores nothing");
    let document = hidden_value(&review.html, "document-0");

    // Not as a copy: the id is taken, so it comes back for review with the reason.
    let refused = browser
        .post(
            "/admin/conditional-access/import/reviewed",
            &[
                ("count", "1"),
                ("document-0", &document),
                ("file-0", "policy.json"),
                ("import-0", "true"),
                ("state-0", "enabledForReportingButNotEnforced"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.html.contains("already exists"), "{}", refused.html);
    assert_eq!(count().await, 1);

    // Enabled, despite the page: core refuses the unresolved exclusion.
    let refused = browser
        .post(
            "/admin/conditional-access/import/reviewed",
            &[
                ("count", "1"),
                ("document-0", &document),
                ("file-0", "policy.json"),
                ("import-0", "true"),
                ("copy-0", "true"),
                ("state-0", "enabled"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(count().await, 1);

    // As a copy, report-only: a new policy with a new id and everything else kept.
    let done = browser
        .post(
            "/admin/conditional-access/import/reviewed",
            &[
                ("count", "1"),
                ("document-0", &document),
                ("file-0", "policy.json"),
                ("import-0", "true"),
                ("copy-0", "true"),
                ("state-0", "enabledForReportingButNotEnforced"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(done.html.contains("class=\"imported-policy\""));
    let all = t.get("/identity/conditionalAccess/policies").await.body["value"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 2);
    let copy = all.iter().find(|p| p["id"] != id.as_str()).unwrap();
    assert_eq!(
        without(copy, &["id", "createdDateTime", "modifiedDateTime"]),
        without(&export, &["id", "createdDateTime", "modifiedDateTime"])
    );
    t.stop().await;
}
