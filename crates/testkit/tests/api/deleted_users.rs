//! Deleted users (issue 21, Entra's soft delete): `DELETE /users/{id}` moves a person to
//! `directory/deletedItems`, where they cannot sign in (passkey, pass or session) and appear in
//! no list or group; a restore brings them back with their groups and methods; a live user who
//! took their name makes the restore a 409 that changes nothing; a permanent delete and the purge
//! after 30 days remove them for good. Each is audited under Entra's activity name, and every
//! role that may not restore or permanently delete is refused, as is a caller whose roles do not
//! cover the roles a restore would give back.

use portcullis_testkit::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
use portcullis_testkit::fixtures::{
    self, add_member, admin_session, app_with_permissions, assign_role, create_group, create_user,
    issue_pass, pass_session, person_with_roles,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};
use time::Duration;

const DELETED: &str = "/directory/deletedItems";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

/// Every built-in role without User.ReadWrite.All: none of them restores or permanently
/// deletes anyone.
const REFUSED_ROLES: &[(&str, &str)] = &[
    (
        "Privileged Authentication Administrator",
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    ),
    (
        "Authentication Administrator",
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    ),
    (
        "Conditional Access Administrator",
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
    ),
    (
        "Security Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
    ),
    ("Security Reader", "5d6b6bb7-de71-4623-b4af-96380a352509"),
    ("Global Reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
    (
        "Groups Administrator",
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    ),
    (
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    ),
    (
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
    ),
    (
        "Authentication Policy Administrator",
        "0526716b-113d-4c15-b2c8-68e3c22b9f80",
    ),
    ("Reports Reader", "4a5d8f65-41da-4de4-8968-e035b65339cf"),
    (
        "Helpdesk Administrator",
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    ),
];

/// A form post from the portal's own origin with a person's session, redirects left alone.
async fn portal_post(t: &TestServer, session: &str, path: &str) -> Reply {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http
        .post(format!("{}{path}", t.url))
        .header("cookie", format!("{}={session}", fixtures::SESSION_COOKIE))
        .header("origin", &t.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
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

async fn as_app(t: &TestServer, token: &str, method: reqwest::Method, path: &str) -> Reply {
    t.graph_as(token, method, path, None).await
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("a collection: {:?}", reply.body))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// Successful audit entries for `activity` on `user`.
async fn audited(t: &TestServer, activity: &str, user: &str, result: &str) -> usize {
    let r = t.get("/auditLogs/directoryAudits?$top=999").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["result"] == result
                && a["activityDisplayName"] == activity
                && a["targetResources"][0]["id"] == user
        })
        .count()
}

async fn delete_user(t: &TestServer, user: &str) {
    let r = t.delete(&format!("/users/{user}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

/// Signs in with the passkey on `auth`, naming `upn` or (without) letting the passkey say who.
async fn passkey_sign_in(
    t: &TestServer,
    auth: &mut SoftwareAuthenticator,
    upn: Option<&str>,
) -> Reply {
    let body = match upn {
        Some(upn) => json!({"username": upn}),
        None => json!({}),
    };
    let options = fixtures::call(
        t,
        None,
        None,
        reqwest::Method::POST,
        "/auth/passkey/options",
        Some(body),
    )
    .await;
    if options.status != StatusCode::OK {
        return options;
    }
    let credential = auth.get(&options.body["options"]);
    fixtures::call(
        t,
        None,
        None,
        reqwest::Method::POST,
        "/auth/passkey/verify",
        Some(json!({"ceremonyId": options.body["ceremonyId"], "credential": credential})),
    )
    .await
}

#[tokio::test]
async fn a_deleted_user_cannot_sign_in_and_a_restore_brings_them_back_as_they_were() {
    let t = TestServer::start().await;
    fixtures::allow_test_authenticator(&t).await;
    let upn = "joni@contoso.com";
    let joni = create_user(&t, upn, "Joni Sherman").await;
    let team = create_group(&t, "Team").await;
    add_member(&t, &team, &joni).await;
    // A passkey registered on this authenticator, and a reusable pass.
    let session = pass_session(&t, &joni, upn, json!({"isUsableOnce": false})).await;
    let mut auth = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    {
        let options = fixtures::call(
            &t,
            None,
            Some(&session),
            reqwest::Method::POST,
            "/my/passkeys/options",
            Some(json!({"device": "this"})),
        )
        .await;
        assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
        let credential = auth.create(&options.body["options"]);
        let done = fixtures::call(
            &t,
            None,
            Some(&session),
            reqwest::Method::POST,
            "/my/passkeys",
            Some(json!({"ceremonyId": options.body["ceremonyId"], "name": "Laptop", "credential": credential})),
        )
        .await;
        assert!(done.status.is_success(), "{:?}", done.body);
    }
    let r = passkey_sign_in(&t, &mut auth, Some(upn)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let pass = issue_pass(&t, &joni, json!({"isUsableOnce": false})).await;

    delete_user(&t, &joni).await;

    // Gone from users and from the group; in deleted items with when.
    assert_eq!(
        t.get(&format!("/users/{joni}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!ids(&t.get("/users?$top=999").await).contains(&joni));
    assert!(ids(&t.get(&format!("/groups/{team}/members")).await).is_empty());
    let listed = t
        .get(&format!(
            "{DELETED}/microsoft.graph.user?$count=true&$top=5"
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(ids(&listed), vec![joni.clone()]);
    assert_eq!(listed.body["@odata.count"], 1);
    assert_eq!(
        listed.body["value"][0]["@odata.type"],
        "#microsoft.graph.user"
    );
    assert!(listed.body["value"][0]["deletedDateTime"].is_string());
    let one = t.get(&format!("{DELETED}/{joni}")).await;
    assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
    assert_eq!(one.body["userPrincipalName"], upn);
    assert_eq!(audited(&t, "Delete user", &joni, "success").await, 1);

    // Cannot sign in: not with the session they had, the passkey or the pass.
    let me = fixtures::call(
        &t,
        None,
        Some(&session),
        reqwest::Method::GET,
        "/my/passkeys",
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{:?}", me.body);
    // (Named, the deleted account offers no passkey; unnamed, the passkey finds nobody.)
    let r = passkey_sign_in(&t, &mut auth, None).await;
    assert_eq!(r.error_code(), Some("passkeyNotRegistered"), "{:?}", r.body);
    let (r, token) = t.sign_in_with_pass(&t.url, upn, &pass).await;
    assert_ne!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(token.is_none());

    // Restored: the user, the group membership, the passkey and the pass are back.
    let restored = t
        .post(&format!("{DELETED}/{joni}/restore"), json!({}))
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{:?}", restored.body);
    assert_eq!(restored.body["id"], joni.as_str());
    assert_eq!(restored.body["userPrincipalName"], upn);
    assert_eq!(
        t.get(&format!("/users/{joni}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ids(&t.get(&format!("/groups/{team}/members")).await),
        vec![joni.clone()]
    );
    assert!(ids(&t.get(&format!("{DELETED}/microsoft.graph.user")).await).is_empty());
    let r = passkey_sign_in(&t, &mut auth, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (r, _) = t.sign_in_with_pass(&t.url, upn, &pass).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(audited(&t, "Restore user", &joni, "success").await, 1);
    // Restoring what is not in deleted items is a 404.
    assert_eq!(
        t.post(&format!("{DELETED}/{joni}/restore"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    t.stop().await;
}

#[tokio::test]
async fn a_new_user_may_take_a_deleted_name_and_the_restore_is_then_a_conflict() {
    let t = TestServer::start().await;
    let joni = create_user(&t, "joni@contoso.com", "Joni").await;
    delete_user(&t, &joni).await;
    // As in Entra, the name is free for a new account.
    let again = create_user(&t, "JONI@contoso.com", "Joni again").await;
    let r = t
        .post(&format!("{DELETED}/{joni}/restore"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("userPrincipalName"), "{message}");
    // Nothing changed: still deleted, the new account untouched, nothing audited as done.
    assert_eq!(
        t.get(&format!("{DELETED}/{joni}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.get("/users/joni@contoso.com").await.body["id"],
        again.as_str()
    );
    assert_eq!(audited(&t, "Restore user", &joni, "success").await, 0);

    // A live user with the same mail is a conflict too.
    let r = t
        .post(
            "/users",
            json!({"userPrincipalName": "mara@contoso.com", "displayName": "Mara", "mail": "mara@contoso.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let mara = r.body["id"].as_str().unwrap().to_string();
    delete_user(&t, &mara).await;
    let r = t
        .post(
            "/users",
            json!({"userPrincipalName": "mara.new@contoso.com", "displayName": "Mara", "mail": "MARA@contoso.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = t
        .post(&format!("{DELETED}/{mara}/restore"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mail")
    );

    // Once the name is free again, the restore goes through.
    delete_user(&t, &again).await;
    let r = t
        .post(&format!("{DELETED}/{joni}/restore"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn a_permanent_delete_and_the_purge_after_30_days_remove_a_user_for_good() {
    let t = TestServer::start().await;
    let gone = create_user(&t, "gone@contoso.com", "Gone").await;
    delete_user(&t, &gone).await;
    let r = t.delete(&format!("{DELETED}/{gone}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        t.get(&format!("{DELETED}/{gone}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.post(&format!("{DELETED}/{gone}/restore"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(audited(&t, "Hard delete user", &gone, "success").await, 1);
    // A live user is not in deleted items: no permanent delete of them from here.
    let live = create_user(&t, "live@contoso.com", "Live").await;
    assert_eq!(
        t.delete(&format!("{DELETED}/{live}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(&format!("/users/{live}")).await.status,
        StatusCode::OK
    );

    let old = create_user(&t, "old@contoso.com", "Old").await;
    delete_user(&t, &old).await;
    t.clock.advance(Duration::days(29));
    assert_eq!(t.purge_deleted_users().await, 0);
    assert_eq!(
        t.get(&format!("{DELETED}/{old}")).await.status,
        StatusCode::OK
    );
    t.clock.advance(Duration::days(1) + Duration::minutes(1));
    assert_eq!(t.purge_deleted_users().await, 1);
    assert_eq!(
        t.get(&format!("{DELETED}/{old}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(audited(&t, "Hard delete user", &old, "success").await, 1);
    t.stop().await;
}

#[tokio::test]
async fn only_user_writers_whose_roles_cover_the_person_restore_or_permanently_delete() {
    let t = TestServer::start().await;
    let plain = create_user(&t, "pat@contoso.com", "Pat").await;
    delete_user(&t, &plain).await;

    // Applications: reading is User.Read.All; restoring and deleting need User.ReadWrite.All.
    let (_, reader) = app_with_permissions(&t, "Reader", &["User.Read.All"]).await;
    let (_, groups) = app_with_permissions(&t, "Groups", &["Group.Read.All"]).await;
    let list = format!("{DELETED}/microsoft.graph.user");
    assert_eq!(
        as_app(&t, &reader, reqwest::Method::GET, &list)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        as_app(&t, &groups, reqwest::Method::GET, &list)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let restore = format!("{DELETED}/{plain}/restore");
    let purge = format!("{DELETED}/{plain}");
    for token in [&reader, &groups] {
        assert_eq!(
            as_app(&t, token, reqwest::Method::POST, &restore)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            as_app(&t, token, reqwest::Method::DELETE, &purge)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }

    // People, in the portal: every role without User.ReadWrite.All is refused both.
    for (name, role) in REFUSED_ROLES {
        let upn = format!("r{}@contoso.com", &role[..8]);
        let (_, session) = person_with_roles(&t, &upn, name, &[role]).await;
        for path in [
            format!("/admin/users/deleted/{plain}/restore"),
            format!("/admin/users/deleted/{plain}/delete"),
        ] {
            let r = portal_post(&t, &session, &path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{name} {path}");
        }
    }
    assert_eq!(
        t.get(&format!("{DELETED}/{plain}")).await.status,
        StatusCode::OK
    );

    // A deleted Global Administrator: a User Administrator (and an application standing for
    // one) may not give the role back by restoring, nor delete them for good.
    let grace = create_user(&t, "grace@contoso.com", "Grace").await;
    assign_role(&t, &grace, GLOBAL_ADMINISTRATOR).await;
    delete_user(&t, &grace).await;
    let (_, ua) = person_with_roles(&t, "uma@contoso.com", "Uma", &[USER_ADMINISTRATOR]).await;
    for path in [
        format!("/admin/users/deleted/{grace}/restore"),
        format!("/admin/users/deleted/{grace}/delete"),
    ] {
        let r = portal_post(&t, &ua, &path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            r.body
                .as_str()
                .unwrap()
                .contains("Authorization_TargetPrivileged")
        );
    }
    let (_, writer) = app_with_permissions(&t, "Writer", &["User.ReadWrite.All"]).await;
    let r = as_app(
        &t,
        &writer,
        reqwest::Method::POST,
        &format!("{DELETED}/{grace}/restore"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("Authorization_TargetPrivileged"));
    assert_eq!(audited(&t, "Restore user", &grace, "failure").await, 2);
    assert_eq!(
        t.get(&format!("{DELETED}/{grace}")).await.status,
        StatusCode::OK
    );
    // The same User Administrator restores a person without a role.
    let r = portal_post(&t, &ua, &format!("/admin/users/deleted/{plain}/restore")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A Global Administrator restores Grace, with her role.
    let ga = admin_session(&t).await;
    let r = portal_post(&t, &ga, &format!("/admin/users/deleted/{grace}/restore")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let roles = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{grace}'"
        ))
        .await;
    assert_eq!(roles.status, StatusCode::OK, "{:?}", roles.body);
    assert_eq!(
        roles.body["value"][0]["roleDefinitionId"],
        GLOBAL_ADMINISTRATOR
    );
    t.stop().await;
}
