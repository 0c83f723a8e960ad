//! Trust ends at once, and policies name only what is there.
//!
//! Each event that ends trust in a person — disabling or deleting them, resetting their
//! password, deleting the method they signed in with, `revokeSignInSessions` — is checked the
//! same way: before it, the person's browser session answers and their refresh token works;
//! on the very next request after it, the cookie gets 401 and the refresh token
//! `invalid_grant`. Then: policies naming users, groups and applications that do not exist are
//! refused and store nothing; deleting what a policy names is refused and deletes nothing; an
//! import keeps what does not resolve, lists it, and may not enforce an unresolved exclusion;
//! a method policy whose targets do not resolve is refused; and a group deletion racing a
//! policy update on two nodes never leaves the policy naming a deleted group.

use portcullis_testkit::fixtures::{
    WINDOWS, call, create_group, create_policy, issue_pass_method, user,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::oidc::{
    App, Browser, authorize_url, confidential_app, query_param, sign_in_with_pass, token,
};

const POLICIES: &str = "/identity/conditionalAccess/policies";
const TAP_CONFIGURATION: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass";

/// A person signed in to an application through the browser with a reusable pass.
struct SignedIn {
    id: String,
    pass_id: String,
    cookie: String,
    refresh: String,
}

async fn signed_in(t: &TestServer, app: &App, upn: &str) -> SignedIn {
    let id = user(t, upn).await;
    let pass = issue_pass_method(
        t,
        &id,
        json!({"isUsableOnce": false, "lifetimeInMinutes": 60}),
    )
    .await;
    let mut browser = Browser::new(t, WINDOWS);
    let (done, _) = sign_in_with_pass(
        t,
        &mut browser,
        &authorize_url(app, None, ""),
        upn,
        pass["temporaryAccessPass"].as_str().unwrap(),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = token(
        t,
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.contoso.com/callback"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    SignedIn {
        id,
        pass_id: pass["id"].as_str().unwrap().to_string(),
        cookie: browser.cookie.clone().expect("a session cookie"),
        refresh: tokens["refresh_token"].as_str().unwrap().to_string(),
    }
}

async fn session_status(t: &TestServer, person: &SignedIn) -> StatusCode {
    call(
        t,
        Some(WINDOWS),
        Some(&person.cookie),
        reqwest::Method::GET,
        "/auth/session",
        None,
    )
    .await
    .status
}

/// Whether the refresh token still works; a working one is rotated, so the new one is kept.
async fn refresh(t: &TestServer, app: &App, person: &mut SignedIn) -> (StatusCode, Value) {
    let (status, body) = token(
        t,
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &person.refresh),
        ],
    )
    .await;
    if let Some(next) = body["refresh_token"].as_str() {
        person.refresh = next.to_string();
    }
    (status, body)
}

async fn assert_live(t: &TestServer, app: &App, person: &mut SignedIn, when: &str) {
    assert_eq!(session_status(t, person).await, StatusCode::OK, "{when}");
    let (status, body) = refresh(t, app, person).await;
    assert_eq!(status, StatusCode::OK, "{when}: {body}");
}

async fn assert_ended(t: &TestServer, app: &App, person: &mut SignedIn, when: &str) {
    assert_eq!(
        session_status(t, person).await,
        StatusCode::UNAUTHORIZED,
        "{when}: the cookie still works"
    );
    let (status, body) = refresh(t, app, person).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{when}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{when}: {body}");
}

#[tokio::test]
async fn each_event_that_ends_trust_ends_the_session_and_the_refresh_token_at_once() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    assert_eq!(
        t.patch(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password",
            json!({"state": "enabled"}),
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let events: [(&str, &str); 5] = [
        ("disabled", "disabled@contoso.com"),
        ("deleted", "deleted@contoso.com"),
        ("password reset", "reset@contoso.com"),
        ("pass deleted", "pass@contoso.com"),
        ("revoked", "revoked@contoso.com"),
    ];
    // A bystander, signed in throughout, whose sign-ins none of this touches.
    let mut bystander = signed_in(&t, &app, "bystander@contoso.com").await;
    for (event, upn) in events {
        let mut person = signed_in(&t, &app, upn).await;
        assert_live(&t, &app, &mut person, event).await;
        let id = person.id.clone();
        let r = match event {
            "disabled" => t.patch(&format!("/users/{id}"), json!({"accountEnabled": false})).await,
            "deleted" => t.delete(&format!("/users/{id}")).await,
            "password reset" => {
                t.post(
                    &format!("/users/{id}/authentication/passwordMethods/28c10230-6103-485e-b985-444c60001490/resetPassword"),
                    json!({"newPassword": "correct horse battery staple"}),
                )
                .await
            }
            "pass deleted" => {
                t.delete(&format!(
                    "/users/{id}/authentication/temporaryAccessPassMethods/{}",
                    person.pass_id
                ))
                .await
            }
            _ => t.post(&format!("/users/{id}/revokeSignInSessions"), json!({})).await,
        };
        assert!(r.status.is_success(), "{event}: {:?}", r.body);
        if event == "revoked" {
            assert_eq!(r.body["value"], true, "{:?}", r.body);
        }
        assert_ended(&t, &app, &mut person, event).await;
        assert_live(&t, &app, &mut bystander, event).await;
    }
    // Each revocation is in the audit log.
    let audits = t.get("/auditLogs/directoryAudits").await;
    assert!(
        audits.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["activityDisplayName"] == "Invalidate all refresh tokens for user"),
        "{:?}",
        audits.body
    );
    t.stop().await;
}

#[tokio::test]
async fn revoking_sessions_needs_the_permission_and_a_refusal_changes_nothing() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let mut joni = signed_in(&t, &app, "joni@contoso.com").await;
    let reader = t
        .post(
            "/applications",
            json!({"displayName": "Reader", "apiPermissions": ["User.Read.All"]}),
        )
        .await
        .body;
    let secret = t
        .post(
            &format!(
                "/applications/{}/addPassword",
                reader["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await
        .body;
    let reader_token = t
        .client_token(
            reader["appId"].as_str().unwrap(),
            secret["secretText"].as_str().unwrap(),
        )
        .await
        .unwrap();
    let path = format!("/users/{}/revokeSignInSessions", joni.id);
    let refused = t
        .graph_as(&reader_token, reqwest::Method::POST, &path, Some(json!({})))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_live(&t, &app, &mut joni, "after a refused revocation").await;

    // The narrow permission Graph documents is enough.
    let revoker = t
        .post(
            "/applications",
            json!({"displayName": "Revoker", "apiPermissions": ["User.RevokeSessions.All"]}),
        )
        .await;
    assert_eq!(revoker.status, StatusCode::CREATED, "{:?}", revoker.body);
    let secret = t
        .post(
            &format!(
                "/applications/{}/addPassword",
                revoker.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await
        .body;
    let revoker_token = t
        .client_token(
            revoker.body["appId"].as_str().unwrap(),
            secret["secretText"].as_str().unwrap(),
        )
        .await
        .unwrap();
    let done = t
        .graph_as(&revoker_token, reqwest::Method::POST, &path, None)
        .await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["value"], true);
    assert_ended(&t, &app, &mut joni, "after revokeSignInSessions").await;
    t.stop().await;
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_person() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let mut joni = signed_in(&t, &app, "joni@contoso.com").await;
    let r = call(
        &t,
        Some(WINDOWS),
        Some(&joni.cookie),
        reqwest::Method::POST,
        "/auth/sign-out-everywhere",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_ended(&t, &app, &mut joni, "after signing out everywhere").await;
    t.stop().await;
}

fn policy_naming(users: Value, applications: Value) -> Value {
    json!({
        "displayName": "Require MFA",
        "state": "enabled",
        "conditions": {
            "users": users,
            "applications": applications,
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    })
}

async fn policy_count(t: &TestServer) -> usize {
    t.get(POLICIES).await.body["value"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_policy_naming_what_does_not_exist_is_refused_and_nothing_is_stored() {
    let t = TestServer::start().await;
    let before = policy_count(&t).await;
    let nobody = "0b8f4e1c-5d2a-4c11-9a61-3f2d7e9c1a01";
    let all_apps = json!({"includeApplications": ["All"]});
    for (body, field) in [
        (
            policy_naming(json!({"includeGroups": [nobody]}), all_apps.clone()),
            "conditions.users.includeGroups",
        ),
        (
            policy_naming(
                json!({"includeUsers": ["All"], "excludeUsers": [nobody]}),
                all_apps.clone(),
            ),
            "conditions.users.excludeUsers",
        ),
        (
            policy_naming(
                json!({"includeUsers": ["All"]}),
                json!({"includeApplications": [nobody]}),
            ),
            "conditions.applications.includeApplications",
        ),
        (
            policy_naming(json!({"includeRoles": [nobody]}), all_apps.clone()),
            "conditions.users.includeRoles",
        ),
    ] {
        let r = t.post(POLICIES, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(field), "{:?}", r.body);
    }
    assert_eq!(policy_count(&t).await, before, "nothing was stored");

    // Special values are not ids, and what exists may be named.
    let group = create_group(&t, "Sales").await;
    create_policy(
        &t,
        policy_naming(
            json!({"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"], "includeGroups": [group]}),
            json!({"includeApplications": ["Office365", "MicrosoftAdminPortals"]}),
        ),
    )
    .await;
    // An update may not add what does not exist either.
    let policy = t.get(POLICIES).await.body["value"][before].clone();
    let r = t
        .patch(
            &format!("{POLICIES}/{}", policy["id"].as_str().unwrap()),
            json!({"conditions": {"users": {"includeUsers": ["All"], "excludeGroups": [nobody]}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("conditions.users.excludeGroups"));
    t.stop().await;
}

#[tokio::test]
async fn deleting_what_a_policy_names_is_refused_naming_the_policy() {
    let t = TestServer::start().await;
    let group = create_group(&t, "Contractors").await;
    let person = user(&t, "breakglass@contoso.com").await;
    let app = t
        .post("/applications", json!({"displayName": "Payroll"}))
        .await
        .body;
    let app_id = app["appId"].as_str().unwrap().to_string();
    create_policy(
        &t,
        json!({
            "displayName": "Block contractors from payroll",
            "state": "enabled",
            "conditions": {
                "users": {"includeGroups": [group], "excludeUsers": [person]},
                "applications": {"includeApplications": [app_id]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }),
    )
    .await;
    for (path, what) in [
        (format!("/groups/{group}"), "group"),
        (format!("/users/{person}"), "user"),
        (
            format!("/applications/{}", app["id"].as_str().unwrap()),
            "application",
        ),
    ] {
        let r = t.delete(&path).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{what}: {:?}", r.body);
        assert_eq!(r.error_code(), Some("objectInUseByPolicy"));
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Block contractors from payroll"),
            "{:?}",
            r.body
        );
        assert_eq!(
            t.get(&path).await.status,
            StatusCode::OK,
            "{what} is still there"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn an_import_keeps_what_does_not_resolve_lists_it_and_never_enforces_an_unresolved_exclusion()
{
    let t = TestServer::start().await;
    let gone_group = "6a1e2f3c-8b7d-4e5f-9a0b-1c2d3e4f5a6b";
    let gone_user = "7b2f3a4d-9c8e-4f6a-8b1c-2d3e4f5a6b7c";
    let export = |state: &str| {
        json!({
            "displayName": "Block legacy",
            "state": state,
            "conditions": {
                "users": {"includeGroups": [gone_group], "includeUsers": ["All"], "excludeUsers": [gone_user]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["exchangeActiveSync", "other"]
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        })
    };
    let import = format!("{POLICIES}?portcullisImport=true");
    // Enforced, the missing break-glass exclusion would block the person it meant to spare.
    let r = t.post(&import, export("enabled")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("conditions.users.excludeUsers"));
    // Report-only, it is kept as it is, and what does not resolve is listed.
    let r = t
        .post(&import, export("enabledForReportingButNotEnforced"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let read = t.get(&format!("{POLICIES}/{id}")).await.body;
    let unresolved = read["portcullisUnresolvedReferences"].as_array().unwrap();
    assert_eq!(unresolved.len(), 2, "{read}");
    assert!(unresolved.iter().any(|r| r["id"] == gone_group));
    // The policy's page in the portal lists them too.
    let admin = portcullis_testkit::fixtures::admin_session(&t).await;
    let page = t
        .http
        .get(format!("{}/admin/conditional-access/policies/{id}", t.url))
        .header("cookie", format!("portcullis_session={admin}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"policy-unresolved\""), "{page}");
    assert!(page.contains(gone_user), "{page}");
    // Renaming it keeps what was imported; enabling it with the exclusion unresolved does not.
    let r = t
        .patch(
            &format!("{POLICIES}/{id}"),
            json!({"displayName": "Block legacy auth"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t
        .patch(&format!("{POLICIES}/{id}"), json!({"state": "enabled"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("conditions.users.excludeUsers"));
    // Without the import flag, the same export is refused.
    let r = t.post(POLICIES, export("disabled")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn a_method_policy_whose_targets_do_not_resolve_is_refused() {
    let t = TestServer::start().await;
    let before = t.get(TAP_CONFIGURATION).await.body;
    let r = t
        .patch(
            TAP_CONFIGURATION,
            json!({"includeTargets": [{"targetType": "group", "id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("includeTargets[0].id"));
    assert_eq!(
        t.get(TAP_CONFIGURATION).await.body,
        before,
        "nothing changed"
    );
    let r = t
        .patch(
            portcullis_testkit::fixtures::FIDO2_CONFIGURATION,
            json!({"excludeTargets": [{"targetType": "group", "id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("excludeTargets[0].id"));
    // A method policy naming a group keeps the group from being deleted.
    let group = create_group(&t, "Pass users").await;
    // Acknowledged: the first-start administrator, not in the group, would lose their pass.
    let r = t
        .patch(
            &format!("{TAP_CONFIGURATION}?acknowledgeLockout=true"),
            json!({"includeTargets": [{"targetType": "group", "id": group}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t.delete(&format!("/groups/{group}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    t.stop().await;
}

/// A group deletion on one node races an update on another that makes a policy name the
/// group. Whichever commits first, the other must fail: never both, which would leave the
/// policy naming a deleted group. Many rounds, since a lost race is a matter of timing.
#[tokio::test]
async fn a_group_deletion_racing_a_policy_update_on_two_nodes_leaves_no_dangling_reference() {
    let t = TestServer::start().await;
    let (node, second) = t.second_node().await.expect("a second node");
    let admin = t.admin_token().await;
    let policy = create_policy(
        &t,
        policy_naming(
            json!({"includeUsers": ["None"]}),
            json!({"includeApplications": ["All"]}),
        ),
    )
    .await;
    let policy_path = format!(
        "{}/graph/v1.0{POLICIES}/{}",
        second,
        policy["id"].as_str().unwrap()
    );
    let mut both_refused = 0;
    for round in 0..25 {
        let group = create_group(&t, &format!("Racers {round}")).await;
        let delete = t
            .http
            .delete(format!("{}/graph/v1.0/groups/{group}", t.url))
            .bearer_auth(&admin)
            .send();
        let update = t
            .http
            .patch(&policy_path)
            .bearer_auth(&admin)
            .json(&json!({"conditions": {"users": {"includeUsers": [], "includeGroups": [group]}}}))
            .send();
        let (deleted, updated) = tokio::join!(delete, update);
        let deleted = deleted.unwrap().status().is_success();
        let updated = updated.unwrap().status().is_success();
        let stored = t
            .get(&format!("{POLICIES}/{}", policy["id"].as_str().unwrap()))
            .await
            .body;
        let names_group = stored["conditions"]["users"]["includeGroups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == group.as_str());
        let group_exists = t.get(&format!("/groups/{group}")).await.status == StatusCode::OK;
        assert!(
            !(deleted && updated),
            "round {round}: the group was deleted and the policy updated to name it"
        );
        assert!(
            !names_group || group_exists,
            "round {round}: the policy names a deleted group: {stored}"
        );
        assert!(
            stored.get("portcullisUnresolvedReferences").is_none(),
            "round {round}: {stored}"
        );
        if !deleted && !updated {
            both_refused += 1;
        }
        // Leave the policy naming nobody for the next round.
        let reset = t
            .patch(
                &format!("{POLICIES}/{}", policy["id"].as_str().unwrap()),
                json!({"conditions": {"users": {"includeUsers": ["None"], "includeGroups": []}}}),
            )
            .await;
        assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    }
    assert!(both_refused < 25, "every round refused both writes");
    node.shutdown().await.expect("the second node stops");
    t.stop().await;
}

/// Revoking sessions is one of the tiers' sensitive actions: the narrow permission reaches people
/// without a role (Helpdesk Administrator's reach), never a Global Administrator, whose sessions
/// stay live; the refusal is the tier rule's and is audited as a failure.
#[tokio::test]
async fn revoking_an_administrators_sessions_needs_a_caller_who_covers_them() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let mut admin = signed_in(&t, &app, "megan@contoso.com").await;
    portcullis_testkit::fixtures::assign_role(
        &t,
        &admin.id,
        "62e90394-69f5-4237-9190-012177145e10",
    )
    .await;
    let mut joni = signed_in(&t, &app, "joni@contoso.com").await;
    let (_, token) = portcullis_testkit::fixtures::app_with_permissions(
        &t,
        "Helpdesk script",
        &["User.RevokeSessions.All"],
    )
    .await;

    let path = format!("/users/{}/revokeSignInSessions", admin.id);
    let refused = t.graph_as(&token, reqwest::Method::POST, &path, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.error_code(), Some("Authorization_TargetPrivileged"));
    assert_live(&t, &app, &mut admin, "after a refused revocation").await;
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=result eq 'failure'")
        .await;
    assert!(
        audits.body["value"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "the refusal is audited: {:?}",
        audits.body
    );

    let path = format!("/users/{}/revokeSignInSessions", joni.id);
    let done = t.graph_as(&token, reqwest::Method::POST, &path, None).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_ended(&t, &app, &mut joni, "after revokeSignInSessions").await;
    t.stop().await;
}
