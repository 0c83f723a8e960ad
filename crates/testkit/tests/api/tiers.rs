//! Who may act on whom (issue 15, escalation paths 3 and 4): a User Administrator cannot disable
//! or delete a Global Administrator, and an Authentication Administrator cannot delete a Global
//! Administrator's passkey — not from the portal and not through the Graph API, where
//! applications are judged by the roles their permissions stand for. Each refusal is a 403
//! naming the rule (`Authorization_TargetPrivileged`), changes nothing, and is in the audit log
//! as a failure; the callers the tables allow still succeed.

use portcullis_testkit::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
use portcullis_testkit::fixtures::{
    self, admin_session, assign_role, create_user, id, pass_session, person_with_roles,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};

const CODE: &str = "Authorization_TargetPrivileged";

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
const AUTHENTICATION_ADMINISTRATOR: &str = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

/// Every built-in role but Global Administrator, and whether its holder may use the portal's
/// user-changing forms at all (User.ReadWrite.All) and the methods forms
/// (UserAuthenticationMethod.ReadWrite.All).
const OTHER_ROLES: &[(&str, &str, bool, bool)] = &[
    (
        "Privileged Authentication Administrator",
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        false,
        true,
    ),
    (
        "Authentication Administrator",
        AUTHENTICATION_ADMINISTRATOR,
        false,
        true,
    ),
    (
        "Conditional Access Administrator",
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        false,
        false,
    ),
    (
        "Security Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        false,
        false,
    ),
    (
        "Security Reader",
        "5d6b6bb7-de71-4623-b4af-96380a352509",
        false,
        false,
    ),
    (
        "Global Reader",
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        false,
        false,
    ),
    ("User Administrator", USER_ADMINISTRATOR, true, false),
    (
        "Groups Administrator",
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        false,
        false,
    ),
    (
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        false,
        false,
    ),
    (
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        false,
        false,
    ),
    (
        "Authentication Policy Administrator",
        "0526716b-113d-4c15-b2c8-68e3c22b9f80",
        false,
        false,
    ),
    (
        "Reports Reader",
        "4a5d8f65-41da-4de4-8968-e035b65339cf",
        false,
        false,
    ),
    (
        "Helpdesk Administrator",
        HELPDESK_ADMINISTRATOR,
        false,
        false,
    ),
];

/// A form post from the portal's own origin with a person's session, redirects left alone.
async fn portal_post(t: &TestServer, session: &str, path: &str, form: &[(&str, &str)]) -> Reply {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let response = http
        .post(format!("{}{path}", t.url))
        .header("cookie", format!("{}={session}", fixtures::SESSION_COOKIE))
        .header("origin", &t.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: Value::String(text),
    }
}

fn page_text(reply: &Reply) -> &str {
    reply.body.as_str().unwrap_or("")
}

/// An application holding `permissions`, and a token for it.
async fn application_token(t: &TestServer, name: &str, permissions: &[&str]) -> String {
    let app = t
        .post(
            "/applications",
            json!({"displayName": name, "apiPermissions": permissions}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let secret = t
        .post(
            &format!("/applications/{}/addPassword", id(&app.body)),
            json!({}),
        )
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    t.client_token(
        app.body["appId"].as_str().unwrap(),
        secret.body["secretText"].as_str().unwrap(),
    )
    .await
    .unwrap()
}

/// A second Global Administrator, the target of the attempts; their id.
async fn global_administrator(t: &TestServer, upn: &str) -> String {
    let target = create_user(t, upn, "Target").await;
    assign_role(t, &target, GLOBAL_ADMINISTRATOR).await;
    target
}

/// Registers a passkey for `user` (signing them in with a pass first); its id.
async fn passkey_of(t: &TestServer, user: &str, upn: &str) -> String {
    let session = pass_session(t, user, upn, json!({"isUsableOnce": false})).await;
    let options = fixtures::call(
        t,
        None,
        Some(&session),
        reqwest::Method::POST,
        "/my/passkeys/options",
        Some(json!({"device": "this"})),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    let mut authenticator = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let credential = authenticator.create(&options.body["options"]);
    let created = fixtures::call(
        t,
        None,
        Some(&session),
        reqwest::Method::POST,
        "/my/passkeys",
        Some(json!({"ceremonyId": options.body["ceremonyId"], "name": "Key", "credential": credential})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    id(&created.body)
}

async fn passkeys(t: &TestServer, user: &str) -> usize {
    let r = t
        .get(&format!("/users/{user}/authentication/fido2Methods"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"].as_array().unwrap().len()
}

/// The target is still there and still enabled.
async fn untouched(t: &TestServer, user: &str) {
    let r = t.get(&format!("/users/{user}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["accountEnabled"], true, "{:?}", r.body);
}

/// Failed audit entries for `activity` on `user`.
async fn failures(t: &TestServer, activity: &str, user: &str) -> Vec<Value> {
    let r = t.get("/auditLogs/directoryAudits?$top=999").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["result"] == "failure"
                && a["activityDisplayName"] == activity
                && a["targetResources"][0]["id"] == user
        })
        .cloned()
        .collect()
}

fn refused_by_tier(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.body);
    assert_eq!(reply.error_code(), Some(CODE), "{:?}", reply.body);
}

fn page_refused_by_tier(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", page_text(reply));
    assert!(page_text(reply).contains(CODE), "{}", page_text(reply));
}

/// Path 3, in the portal: a User Administrator can neither disable nor delete a Global
/// Administrator; the refusals are audited; a Global Administrator still can.
#[tokio::test]
async fn a_user_administrator_cannot_disable_or_delete_a_global_administrator_in_the_portal() {
    let t = TestServer::start().await;
    let target = global_administrator(&t, "grace@contoso.com").await;
    let (_, ua) = person_with_roles(&t, "uma@contoso.com", "Uma", &[USER_ADMINISTRATOR]).await;

    let disable = portal_post(
        &t,
        &ua,
        &format!("/admin/users/{target}/state"),
        &[("accountEnabled", "false")],
    )
    .await;
    page_refused_by_tier(&disable);
    let delete = portal_post(&t, &ua, &format!("/admin/users/{target}/delete"), &[]).await;
    page_refused_by_tier(&delete);
    untouched(&t, &target).await;
    assert_eq!(failures(&t, "Disable account", &target).await.len(), 1);
    let deleted = failures(&t, "Delete user", &target).await;
    assert_eq!(deleted.len(), 1);
    assert!(
        deleted[0]["resultReason"]
            .as_str()
            .unwrap()
            .contains("Global Administrator"),
        "{:?}",
        deleted[0]
    );
    assert_eq!(
        deleted[0]["initiatedBy"]["user"]["userPrincipalName"],
        "uma@contoso.com"
    );

    // The same User Administrator still looks after people the tables give them.
    let (helpdesk, _) =
        person_with_roles(&t, "hal@contoso.com", "Hal", &[HELPDESK_ADMINISTRATOR]).await;
    let plain = create_user(&t, "pat@contoso.com", "Pat").await;
    for person in [&helpdesk, &plain] {
        let r = portal_post(
            &t,
            &ua,
            &format!("/admin/users/{person}/state"),
            &[("accountEnabled", "false")],
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", page_text(&r));
    }
    let r = portal_post(&t, &ua, &format!("/admin/users/{plain}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", page_text(&r));

    // A Global Administrator covers every target.
    let ga = admin_session(&t).await;
    let r = portal_post(
        &t,
        &ga,
        &format!("/admin/users/{target}/state"),
        &[("accountEnabled", "false")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", page_text(&r));
    let r = portal_post(&t, &ga, &format!("/admin/users/{target}/delete"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", page_text(&r));
    assert_eq!(
        t.get(&format!("/users/{target}")).await.status,
        StatusCode::NOT_FOUND
    );
    t.check_invariants().await;
}

/// Path 3, through the Graph API: applications holding User.ReadWrite.All or
/// Directory.ReadWrite.All stand for a User Administrator and are refused on a Global
/// Administrator; one with RoleManagement.ReadWrite.Directory is not.
#[tokio::test]
async fn applications_that_manage_users_cannot_disable_rename_or_delete_a_global_administrator() {
    let t = TestServer::start().await;
    let target = global_administrator(&t, "grace@contoso.com").await;
    let path = format!("/users/{target}");
    for (name, permissions) in [
        ("User manager", &["User.ReadWrite.All"][..]),
        ("Directory writer", &["Directory.ReadWrite.All"][..]),
    ] {
        let token = application_token(&t, name, permissions).await;
        for patch in [
            json!({"accountEnabled": false}),
            json!({"userPrincipalName": "taken@contoso.com"}),
            json!({"mail": "taken@contoso.com"}),
        ] {
            let r = t
                .graph_as(&token, reqwest::Method::PATCH, &path, Some(patch.clone()))
                .await;
            refused_by_tier(&r);
        }
        let r = t
            .graph_as(&token, reqwest::Method::DELETE, &path, None)
            .await;
        refused_by_tier(&r);
        // A harmless change is not a sensitive action.
        let r = t
            .graph_as(
                &token,
                reqwest::Method::PATCH,
                &path,
                Some(json!({"displayName": format!("Renamed by {name}")})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
        // A person without a role is theirs to manage.
        let plain = create_user(&t, &format!("{}@contoso.com", name.replace(' ', "")), name).await;
        let r = t
            .graph_as(
                &token,
                reqwest::Method::PATCH,
                &format!("/users/{plain}"),
                Some(json!({"accountEnabled": false})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    untouched(&t, &target).await;
    let user = t.get(&path).await.body;
    assert_eq!(user["userPrincipalName"], "grace@contoso.com");
    assert_eq!(user["mail"], Value::Null);
    assert_eq!(failures(&t, "Disable account", &target).await.len(), 2);
    assert_eq!(failures(&t, "Update user", &target).await.len(), 4);
    let deleted = failures(&t, "Delete user", &target).await;
    assert_eq!(deleted.len(), 2);
    assert_eq!(
        deleted[0]["initiatedBy"]["app"]["displayName"],
        "Directory writer"
    );

    // Role management stands for Global Administrator (the bootstrap application holds it).
    let r = t.patch(&path, json!({"accountEnabled": false})).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let r = t.delete(&path).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    t.check_invariants().await;
}

/// Path 4: an Authentication Administrator cannot delete a Global Administrator's passkey, in
/// the portal or as an application with UserAuthenticationMethod.ReadWrite.All (nor issue them a
/// pass or reset their password); a Privileged Authentication Administrator can.
#[tokio::test]
async fn an_authentication_administrator_cannot_delete_a_global_administrators_passkey() {
    let t = TestServer::start().await;
    let target = global_administrator(&t, "grace@contoso.com").await;
    let passkey = passkey_of(&t, &target, "grace@contoso.com").await;
    let delete_path = format!("/admin/users/{target}/passkeys/{passkey}/delete");

    let (_, auth_admin) = person_with_roles(
        &t,
        "ada@contoso.com",
        "Ada",
        &[AUTHENTICATION_ADMINISTRATOR],
    )
    .await;
    let r = portal_post(&t, &auth_admin, &delete_path, &[]).await;
    page_refused_by_tier(&r);
    assert_eq!(passkeys(&t, &target).await, 1);

    let token = application_token(
        &t,
        "Methods tool",
        &["UserAuthenticationMethod.ReadWrite.All"],
    )
    .await;
    let graph_path = format!("/users/{target}/authentication/fido2Methods/{passkey}");
    let r = t
        .graph_as(&token, reqwest::Method::DELETE, &graph_path, None)
        .await;
    refused_by_tier(&r);
    assert_eq!(passkeys(&t, &target).await, 1);
    let r = t
        .graph_as(
            &token,
            reqwest::Method::POST,
            &format!("/users/{target}/authentication/temporaryAccessPassMethods"),
            Some(json!({})),
        )
        .await;
    refused_by_tier(&r);
    let r = t
        .graph_as(
            &token,
            reqwest::Method::POST,
            &format!("/users/{target}/authentication/passwordMethods/28c10230-6103-485e-b985-444c60001490/resetPassword"),
            Some(json!({"newPassword": "Correct-Horse-Battery-9"})),
        )
        .await;
    refused_by_tier(&r);
    let deleted = failures(&t, "Admin deleted security info", &target).await;
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert_eq!(
        failures(
            &t,
            "Admin registered temporary access pass method for user",
            &target
        )
        .await
        .len(),
        1
    );
    assert_eq!(failures(&t, "Reset user password", &target).await.len(), 1);
    let passes = t
        .get(&format!(
            "/users/{target}/authentication/temporaryAccessPassMethods"
        ))
        .await;
    // The pass the target signed in with is the only one.
    assert_eq!(passes.body["value"].as_array().unwrap().len(), 1);

    // The Authentication Administrator still manages a person without a role.
    let plain = create_user(&t, "pat@contoso.com", "Pat").await;
    let plain_key = passkey_of(&t, &plain, "pat@contoso.com").await;
    let r = portal_post(
        &t,
        &auth_admin,
        &format!("/admin/users/{plain}/passkeys/{plain_key}/delete"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", page_text(&r));
    assert_eq!(passkeys(&t, &plain).await, 0);

    // A Privileged Authentication Administrator covers every target.
    let (_, paa) = person_with_roles(
        &t,
        "pia@contoso.com",
        "Pia",
        &[PRIVILEGED_AUTHENTICATION_ADMINISTRATOR],
    )
    .await;
    let r = portal_post(&t, &paa, &delete_path, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", page_text(&r));
    assert_eq!(passkeys(&t, &target).await, 0);
    t.check_invariants().await;
}

/// Every built-in role but Global Administrator tries both escalations in the portal: each is
/// refused — by the tier rule when the role has the form's permission, by the permission
/// otherwise — except a Privileged Authentication Administrator deleting the passkey; nothing
/// changes but that.
#[tokio::test]
async fn every_role_below_the_top_is_refused_on_a_global_administrator() {
    let t = TestServer::start().await;
    let target = global_administrator(&t, "grace@contoso.com").await;
    let passkey = passkey_of(&t, &target, "grace@contoso.com").await;
    for (n, (name, role, writes_users, writes_methods)) in OTHER_ROLES.iter().enumerate() {
        let upn = format!("caller{n}@contoso.com");
        let (_, session) = person_with_roles(&t, &upn, name, &[role]).await;
        let disable = portal_post(
            &t,
            &session,
            &format!("/admin/users/{target}/state"),
            &[("accountEnabled", "false")],
        )
        .await;
        let delete = portal_post(&t, &session, &format!("/admin/users/{target}/delete"), &[]).await;
        for reply in [&disable, &delete] {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}");
            assert_eq!(page_text(reply).contains(CODE), *writes_users, "{name}");
        }
        if *role == PRIVILEGED_AUTHENTICATION_ADMINISTRATOR {
            continue;
        }
        let remove = portal_post(
            &t,
            &session,
            &format!("/admin/users/{target}/passkeys/{passkey}/delete"),
            &[],
        )
        .await;
        assert_eq!(remove.status, StatusCode::FORBIDDEN, "{name}");
        assert_eq!(page_text(&remove).contains(CODE), *writes_methods, "{name}");
    }
    untouched(&t, &target).await;
    assert_eq!(passkeys(&t, &target).await, 1);
    // Refusals by the tier rule are audited; refusals for want of a permission never reach it.
    assert_eq!(failures(&t, "Disable account", &target).await.len(), 1);
    assert_eq!(failures(&t, "Delete user", &target).await.len(), 1);
    assert_eq!(
        failures(&t, "Admin deleted security info", &target)
            .await
            .len(),
        1
    );
    t.check_invariants().await;
}
