//! No privilege ladder through groups or applications (issue 15, paths 1 and 2), over the admin
//! API and the portal: each escalation is refused with its code, audited as a failure, and
//! changes nothing; the people and applications allowed to make the change still can.

use portcullis_core::directory::model::ObjectKind;
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_testkit::fixtures::{
    add_member, app_with_permissions, assign_role, create_group, create_role_assignable_group, id,
    user,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::portal::{admin, person};

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";
const GROUPS_ADMINISTRATOR: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// Client ids of the first-party applications.
const MY_ACCOUNT: &str = "706f08e8-a92c-465d-a0b9-6066aa4623cc";
const ADMIN_PORTAL: &str = "005cbd19-3de0-4238-a5c6-97d038f6c66d";

/// Every permission set that may manage group members but not roles.
const MEMBER_WRITERS: &[&[&str]] = &[
    &["GroupMember.ReadWrite.All"],
    &["Group.ReadWrite.All"],
    &["Directory.ReadWrite.All"],
    &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
        "User.ReadWrite.All",
        "Application.ReadWrite.All",
    ],
];

fn reference(object: &str) -> Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{object}")})
}

#[track_caller]
fn refused(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.error_code(), Some(code), "{:?}", reply.body);
}

async fn member_ids(t: &TestServer, group: &str) -> Vec<String> {
    let r = t.get(&format!("/groups/{group}/members")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"].as_array().unwrap().iter().map(id).collect()
}

/// The failed audit entries whose reason names `code`.
async fn failures(t: &TestServer, code: &str) -> Vec<Value> {
    let r = t.get("/auditLogs/directoryAudits?$top=999").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "failure")
        .filter(|a| a["resultReason"].as_str().unwrap_or("").contains(code))
        .cloned()
        .collect()
}

/// The automation application made at first start, as the API shows it.
async fn automation_app(t: &TestServer) -> Value {
    let r = t
        .get(&format!("/applications/{}", t.bootstrap.client_id))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

// --- path 1: role-assignable groups ------------------------------------------------------------

#[tokio::test]
async fn a_member_writer_cannot_put_anyone_in_a_group_holding_global_administrator() {
    let t = TestServer::start().await;
    let tier0 = create_role_assignable_group(&t, "Tier 0").await;
    assign_role(&t, &tier0, GLOBAL_ADMINISTRATOR).await;
    let keeper = user(&t, "keeper@contoso.com").await;
    add_member(&t, &tier0, &keeper).await;
    let mallory = user(&t, "mallory@contoso.com").await;
    let plain = create_group(&t, "Readers").await;

    for (n, permissions) in MEMBER_WRITERS.iter().enumerate() {
        let (_, token) = app_with_permissions(&t, &format!("Member writer {n}"), permissions).await;
        let add = t
            .graph_as(
                &token,
                Method::POST,
                &format!("/groups/{tier0}/members/$ref"),
                Some(reference(&mallory)),
            )
            .await;
        refused(
            &add,
            StatusCode::FORBIDDEN,
            "roleAssignableGroupNeedsRoleManagement",
        );
        let remove = t
            .graph_as(
                &token,
                Method::DELETE,
                &format!("/groups/{tier0}/members/{keeper}/$ref"),
                None,
            )
            .await;
        refused(
            &remove,
            StatusCode::FORBIDDEN,
            "roleAssignableGroupNeedsRoleManagement",
        );
        // Deleting the group would take Global Administrator from its members at once (found
        // by an attacker's script: it was allowed). A writer of groups is refused by the same
        // rule; a writer of members only cannot delete groups at all.
        let delete = t
            .graph_as(&token, Method::DELETE, &format!("/groups/{tier0}"), None)
            .await;
        // Nor renamed, so that it could pass for another group (found by the same script).
        let rename = t
            .graph_as(
                &token,
                Method::PATCH,
                &format!("/groups/{tier0}"),
                Some(json!({"displayName": "Printers"})),
            )
            .await;
        if permissions
            .iter()
            .any(|p| p.starts_with("Group.") || p.starts_with("Directory."))
        {
            refused(
                &rename,
                StatusCode::FORBIDDEN,
                "roleAssignableGroupNeedsRoleManagement",
            );
        } else {
            assert_eq!(rename.status, StatusCode::FORBIDDEN, "{:?}", rename.body);
        }
        assert_eq!(
            t.get(&format!("/groups/{tier0}")).await.body["displayName"],
            "Tier 0"
        );
        if permissions
            .iter()
            .any(|p| p.starts_with("Group.") || p.starts_with("Directory."))
        {
            refused(
                &delete,
                StatusCode::FORBIDDEN,
                "roleAssignableGroupNeedsRoleManagement",
            );
        } else {
            assert_eq!(delete.status, StatusCode::FORBIDDEN, "{:?}", delete.body);
        }
        assert_eq!(
            member_ids(&t, &tier0).await,
            vec![keeper.clone()],
            "{permissions:?}"
        );
        // An ordinary group is theirs to manage.
        let ordinary = t
            .graph_as(
                &token,
                Method::POST,
                &format!("/groups/{plain}/members/$ref"),
                Some(reference(&mallory)),
            )
            .await;
        assert_eq!(
            ordinary.status,
            StatusCode::NO_CONTENT,
            "{:?}",
            ordinary.body
        );
        let out = t
            .graph_as(
                &token,
                Method::DELETE,
                &format!("/groups/{plain}/members/{mallory}/$ref"),
                None,
            )
            .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT, "{:?}", out.body);
    }
    // Mallory holds no role, and each refusal is in the audit log as a failure.
    let held = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{mallory}'"
        ))
        .await;
    assert_eq!(held.body["value"], json!([]));
    let group_writers = MEMBER_WRITERS
        .iter()
        .filter(|ps| {
            ps.iter()
                .any(|p| p.starts_with("Group.") || p.starts_with("Directory."))
        })
        .count();
    assert_eq!(
        failures(&t, "roleAssignableGroupNeedsRoleManagement")
            .await
            .len(),
        2 * MEMBER_WRITERS.len() + 2 * group_writers
    );
    let holders = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{tier0}'"
        ))
        .await;
    assert_eq!(
        holders.body["value"].as_array().unwrap().len(),
        1,
        "the group keeps its role"
    );

    // With RoleManagement.ReadWrite.Directory besides, the change is allowed.
    let (_, token) = app_with_permissions(
        &t,
        "Privileged",
        &[
            "GroupMember.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
        ],
    )
    .await;
    let add = t
        .graph_as(
            &token,
            Method::POST,
            &format!("/groups/{tier0}/members/$ref"),
            Some(reference(&mallory)),
        )
        .await;
    assert_eq!(add.status, StatusCode::NO_CONTENT, "{:?}", add.body);
    let remove = t
        .graph_as(
            &token,
            Method::DELETE,
            &format!("/groups/{tier0}/members/{mallory}/$ref"),
            None,
        )
        .await;
    assert_eq!(remove.status, StatusCode::NO_CONTENT, "{:?}", remove.body);
    assert_eq!(member_ids(&t, &tier0).await, vec![keeper.clone()]);
    // And so is deleting the group, by a writer of groups who also manages roles.
    let (_, token) = app_with_permissions(
        &t,
        "Privileged group writer",
        &["Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory"],
    )
    .await;
    let delete = t
        .graph_as(&token, Method::DELETE, &format!("/groups/{tier0}"), None)
        .await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT, "{:?}", delete.body);
    t.stop().await;
}

/// A database from before role-assignable groups may hold a group nested in one that holds a
/// role; its members get the role too, so its membership is guarded alike.
#[tokio::test]
async fn a_group_nested_in_a_role_holding_group_is_guarded_alike() {
    let t = TestServer::start().await;
    let tier0 = create_role_assignable_group(&t, "Tier 0").await;
    assign_role(&t, &tier0, GLOBAL_ADMINISTRATOR).await;
    let legacy = create_group(&t, "Legacy admins").await;
    // As the upgrade leaves it: nesting that the API no longer allows.
    t.store()
        .commit(
            vec![Change::AddMember {
                group_id: tier0.parse().unwrap(),
                member_id: legacy.parse().unwrap(),
                member_kind: ObjectKind::Group,
            }],
            None,
        )
        .await
        .unwrap();
    let mallory = user(&t, "mallory@contoso.com").await;
    let (_, token) =
        app_with_permissions(&t, "Member writer", &["GroupMember.ReadWrite.All"]).await;
    let add = t
        .graph_as(
            &token,
            Method::POST,
            &format!("/groups/{legacy}/members/$ref"),
            Some(reference(&mallory)),
        )
        .await;
    refused(
        &add,
        StatusCode::FORBIDDEN,
        "roleAssignableGroupNeedsRoleManagement",
    );
    assert_eq!(member_ids(&t, &legacy).await, Vec::<String>::new());
    t.stop().await;
}

#[tokio::test]
async fn only_role_assignable_groups_hold_roles_hold_no_groups_and_stay_so() {
    let t = TestServer::start().await;
    let plain = create_group(&t, "Readers").await;
    let assigned = t
        .post(
            "/roleManagement/directory/roleAssignments",
            json!({"principalId": plain, "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}),
        )
        .await;
    refused(
        &assigned,
        StatusCode::BAD_REQUEST,
        "groupNotAssignableToRole",
    );
    assert_eq!(assigned.body["error"]["target"], "principalId");
    let held = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{plain}'"
        ))
        .await;
    assert_eq!(held.body["value"], json!([]));

    let tier0 = create_role_assignable_group(&t, "Tier 0").await;
    assign_role(&t, &tier0, REPORTS_READER).await;
    let shown = t.get(&format!("/groups/{plain}")).await;
    assert_eq!(shown.body["isAssignableToRole"], false);
    let listed = t.get("/groups?$filter=isAssignableToRole eq true").await;
    assert_eq!(
        listed.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        vec![tier0.clone()]
    );

    // A role-assignable group cannot contain a group.
    let nested = t
        .post(&format!("/groups/{tier0}/members/$ref"), reference(&plain))
        .await;
    refused(
        &nested,
        StatusCode::BAD_REQUEST,
        "roleAssignableGroupCannotNest",
    );
    assert_eq!(member_ids(&t, &tier0).await, Vec::<String>::new());

    // isAssignableToRole is fixed once the group is made.
    for (group, value) in [(&tier0, false), (&plain, true)] {
        let patch = t
            .patch(
                &format!("/groups/{group}"),
                json!({"isAssignableToRole": value}),
            )
            .await;
        refused(&patch, StatusCode::BAD_REQUEST, "invalidRequest");
        assert_eq!(patch.body["error"]["target"], "isAssignableToRole");
        let still = t.get(&format!("/groups/{group}")).await;
        assert_eq!(still.body["isAssignableToRole"], !value);
    }
    let same = t
        .patch(
            &format!("/groups/{tier0}"),
            json!({"isAssignableToRole": true, "description": "Tier 0 admins"}),
        )
        .await;
    assert_eq!(same.status, StatusCode::NO_CONTENT, "{:?}", same.body);

    // Making one needs RoleManagement.ReadWrite.Directory.
    let before = t.get("/groups?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .len();
    for permissions in [
        &["Group.ReadWrite.All"][..],
        &["Directory.ReadWrite.All"][..],
    ] {
        let (_, token) = app_with_permissions(&t, "Group writer", permissions).await;
        let made = t
            .graph_as(
                &token,
                Method::POST,
                "/groups",
                Some(json!({"displayName": "Shadow admins", "isAssignableToRole": true})),
            )
            .await;
        refused(
            &made,
            StatusCode::FORBIDDEN,
            "roleAssignableGroupNeedsRoleManagement",
        );
    }
    let after = t.get("/groups?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before);
    t.stop().await;
}

// --- path 2: applications ----------------------------------------------------------------------

#[tokio::test]
async fn an_application_writer_cannot_take_over_the_automation_application() {
    let t = TestServer::start().await;
    let automation = automation_app(&t).await;
    let automation_id = id(&automation);
    let key = automation["passwordCredentials"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let all_but_role_management: Vec<&str> = automation["apiPermissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .filter(|p| *p != "RoleManagement.ReadWrite.Directory")
        .collect();
    for permissions in [&["Application.ReadWrite.All"][..], &all_but_role_management] {
        let (_, token) = app_with_permissions(&t, "Climber", permissions).await;
        let attempts = [
            (
                Method::POST,
                format!("/applications/{automation_id}/addPassword"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/applications/{automation_id}/removePassword"),
                Some(json!({"keyId": key})),
            ),
            (
                Method::PATCH,
                format!("/applications/{automation_id}"),
                Some(json!({"apiPermissions": ["User.Read.All"]})),
            ),
            // Found by an attacker's script: its name and addresses were anyone's to change.
            (
                Method::PATCH,
                format!("/applications/{automation_id}"),
                Some(
                    json!({"displayName": "Evil", "publicClient": {"redirectUris": ["http://localhost:9999/cb"]}}),
                ),
            ),
            (
                Method::PATCH,
                format!("/applications/{automation_id}"),
                Some(json!({"identifierUris": ["api://taken"], "appRoleAssignmentRequired": true})),
            ),
            (
                Method::DELETE,
                format!("/applications/{automation_id}"),
                None,
            ),
        ];
        for (method, path, body) in attempts {
            let r = t.graph_as(&token, method.clone(), &path, body).await;
            refused(&r, StatusCode::FORBIDDEN, "automationApplicationProtected");
        }
    }
    assert_eq!(automation_app(&t).await, automation, "nothing changed");
    assert_eq!(
        failures(&t, "automationApplicationProtected").await.len(),
        12
    );

    // A caller holding RoleManagement.ReadWrite.Directory may rotate its secret.
    let (_, token) = app_with_permissions(
        &t,
        "Privileged",
        &[
            "Application.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
        ],
    )
    .await;
    let added = t
        .graph_as(
            &token,
            Method::POST,
            &format!("/applications/{automation_id}/addPassword"),
            Some(json!({})),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    let removed = t
        .graph_as(
            &token,
            Method::POST,
            &format!("/applications/{automation_id}/removePassword"),
            Some(json!({"keyId": added.body["keyId"]})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    t.stop().await;
}

#[tokio::test]
async fn an_application_is_changed_only_by_a_caller_holding_what_it_holds() {
    let t = TestServer::start().await;
    let (payroll, _) = app_with_permissions(&t, "Payroll", &["User.ReadWrite.All"]).await;
    let before = t.get(&format!("/applications/{payroll}")).await.body;
    let key = before["passwordCredentials"][0]["keyId"].clone();

    let (_, weak) = app_with_permissions(&t, "App writer", &["Application.ReadWrite.All"]).await;
    let (_, reader) = app_with_permissions(
        &t,
        "App writer who reads users",
        &["Application.ReadWrite.All", "User.Read.All"],
    )
    .await;
    for token in [&weak, &reader] {
        for (method, path, body) in [
            (
                Method::POST,
                format!("/applications/{payroll}/addPassword"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/applications/{payroll}/removePassword"),
                json!({"keyId": key}),
            ),
            (
                Method::PATCH,
                format!("/applications/{payroll}"),
                json!({"apiPermissions": []}),
            ),
        ] {
            let r = t.graph_as(token, method, &path, Some(body)).await;
            refused(
                &r,
                StatusCode::FORBIDDEN,
                "applicationPermissionsNotCovered",
            );
        }
    }
    assert_eq!(
        t.get(&format!("/applications/{payroll}")).await.body,
        before
    );
    assert_eq!(
        failures(&t, "applicationPermissionsNotCovered").await.len(),
        6
    );
    // Renaming is not a ladder.
    let renamed = t
        .graph_as(
            &weak,
            Method::PATCH,
            &format!("/applications/{payroll}"),
            Some(json!({"displayName": "Payroll sync"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT, "{:?}", renamed.body);

    // A caller holding what it holds (User.ReadWrite.All, or Directory.ReadWrite.All which
    // implies it) may rotate its secret and narrow its permissions.
    let (_, covering) = app_with_permissions(
        &t,
        "Covering writer",
        &["Application.ReadWrite.All", "User.ReadWrite.All"],
    )
    .await;
    let added = t
        .graph_as(
            &covering,
            Method::POST,
            &format!("/applications/{payroll}/addPassword"),
            Some(json!({})),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    let removed = t
        .graph_as(
            &covering,
            Method::POST,
            &format!("/applications/{payroll}/removePassword"),
            Some(json!({"keyId": key})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    let narrowed = t
        .graph_as(
            &covering,
            Method::PATCH,
            &format!("/applications/{payroll}"),
            Some(json!({"apiPermissions": []})),
        )
        .await;
    assert_eq!(
        narrowed.status,
        StatusCode::NO_CONTENT,
        "{:?}",
        narrowed.body
    );
    // Once it holds nothing, any application writer may manage it, and delete it.
    let deleted = t
        .graph_as(
            &weak,
            Method::DELETE,
            &format!("/applications/{payroll}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    t.stop().await;
}

#[tokio::test]
async fn first_party_applications_are_never_deleted_nor_given_credentials() {
    let t = TestServer::start().await;
    for client_id in [MY_ACCOUNT, ADMIN_PORTAL] {
        let before = t.get(&format!("/applications/{client_id}")).await;
        assert_eq!(before.status, StatusCode::OK, "{:?}", before.body);
        let object = id(&before.body);
        // Even the automation application, which holds every permission, is refused.
        let secret = t
            .post(&format!("/applications/{object}/addPassword"), json!({}))
            .await;
        refused(
            &secret,
            StatusCode::FORBIDDEN,
            "firstPartyApplicationProtected",
        );
        let deleted = t.delete(&format!("/applications/{object}")).await;
        refused(
            &deleted,
            StatusCode::FORBIDDEN,
            "firstPartyApplicationProtected",
        );
        // Nor pointed elsewhere, nor renamed (found by an attacker's script: an application
        // writer set the Admin Portal's public-client redirect to an address of theirs, and a
        // signed-in Global Administrator's single sign-on then sent them a code).
        for patch in [
            json!({"publicClient": {"redirectUris": ["http://localhost:9999/cb"]}}),
            json!({"isFallbackPublicClient": true}),
            json!({"spa": {"redirectUris": ["https://evil.example/cb"]}}),
            json!({"web": {"redirectUris": ["https://evil.example/cb"]}}),
            json!({"displayName": "Evil"}),
            json!({"idTokenSignedResponseAlg": "RS256"}),
        ] {
            let r = t
                .patch(&format!("/applications/{object}"), patch.clone())
                .await;
            refused(&r, StatusCode::FORBIDDEN, "firstPartyApplicationProtected");
        }
        assert_eq!(
            t.get(&format!("/applications/{client_id}")).await.body,
            before.body
        );
    }
    t.stop().await;
}

// --- the same through the portal ---------------------------------------------------------------

#[tokio::test]
async fn portal_administrators_below_privileged_roles_cannot_climb() {
    let t = TestServer::start().await;
    let tier0 = create_role_assignable_group(&t, "Tier 0").await;
    assign_role(&t, &tier0, GLOBAL_ADMINISTRATOR).await;
    let keeper = user(&t, "keeper@contoso.com").await;
    add_member(&t, &tier0, &keeper).await;
    let groups_before = t.get("/groups?$top=999").await.body["value"].clone();

    for (n, role) in [GROUPS_ADMINISTRATOR, USER_ADMINISTRATOR]
        .iter()
        .enumerate()
    {
        let upn = format!("climber{n}@contoso.com");
        let (_, browser) = person(&t, &upn, &[role]).await;
        let add = browser
            .post(
                &format!("/admin/groups/{tier0}/members"),
                &[("member", &upn)],
            )
            .await;
        assert_eq!(add.status, StatusCode::FORBIDDEN, "{}", add.html);
        assert!(
            add.html.contains("roleAssignableGroupNeedsRoleManagement"),
            "{}",
            add.html
        );
        let remove = browser
            .post(
                &format!("/admin/groups/{tier0}/members/{keeper}/remove"),
                &[],
            )
            .await;
        assert_eq!(remove.status, StatusCode::FORBIDDEN, "{}", remove.html);
        assert!(
            remove
                .html
                .contains("roleAssignableGroupNeedsRoleManagement")
        );
        let delete = browser
            .post(&format!("/admin/groups/{tier0}/delete"), &[])
            .await;
        assert_eq!(delete.status, StatusCode::FORBIDDEN, "{}", delete.html);
        assert!(
            delete
                .html
                .contains("roleAssignableGroupNeedsRoleManagement"),
            "{}",
            delete.html
        );
        let create = browser
            .post(
                "/admin/groups",
                &[
                    ("displayName", "Shadow admins"),
                    ("isAssignableToRole", "true"),
                ],
            )
            .await;
        assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.html);
        assert!(
            create
                .html
                .contains("roleAssignableGroupNeedsRoleManagement")
        );
    }
    assert_eq!(member_ids(&t, &tier0).await, vec![keeper.clone()]);
    assert_eq!(t.get("/groups?$top=999").await.body["value"], groups_before);

    let automation = automation_app(&t).await;
    let automation_id = id(&automation);
    let key = automation["passwordCredentials"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    let (payroll, _) = app_with_permissions(&t, "Payroll", &["User.ReadWrite.All"]).await;
    let payroll_before = t.get(&format!("/applications/{payroll}")).await.body;
    let (_, browser) = person(&t, "apps@contoso.com", &[APPLICATION_ADMINISTRATOR]).await;
    for (path, form, code) in [
        (
            format!("/admin/applications/{automation_id}/secrets"),
            vec![("months", "6")],
            "automationApplicationProtected",
        ),
        (
            format!("/admin/applications/{automation_id}/secrets/{key}/remove"),
            vec![],
            "automationApplicationProtected",
        ),
        (
            format!("/admin/applications/{automation_id}/delete"),
            vec![],
            "automationApplicationProtected",
        ),
        (
            format!("/admin/applications/{payroll}/secrets"),
            vec![("months", "6")],
            "applicationPermissionsNotCovered",
        ),
    ] {
        let page = browser.post(&path, &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.html);
        assert!(page.html.contains(code), "{path}: {}", page.html);
    }
    assert_eq!(automation_app(&t).await, automation);
    assert_eq!(
        t.get(&format!("/applications/{payroll}")).await.body,
        payroll_before
    );

    // A Global Administrator may do all of it, and sees the group's kind on its page.
    let browser = admin(&t).await;
    let add = browser
        .post(
            &format!("/admin/groups/{tier0}/members"),
            &[("member", "climber0@contoso.com")],
        )
        .await;
    assert_eq!(add.status, StatusCode::SEE_OTHER, "{}", add.html);
    assert_eq!(member_ids(&t, &tier0).await.len(), 2);
    let made = browser
        .post(
            "/admin/groups",
            &[("displayName", "Tier 1"), ("isAssignableToRole", "true")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let path = made.location.unwrap();
    let path = path.split('?').next().unwrap();
    let page = browser.get(path).await;
    assert!(
        page.html.contains("id=\"group-role-assignable\">Yes"),
        "{}",
        page.html
    );
    let secret = browser
        .post(
            &format!("/admin/applications/{automation_id}/secrets"),
            &[("months", "6")],
        )
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{}", secret.html);
    // First-party applications are refused to everyone.
    let portal_app = t.get(&format!("/applications/{ADMIN_PORTAL}")).await.body;
    let deleted = browser
        .post(
            &format!("/admin/applications/{}/delete", id(&portal_app)),
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN, "{}", deleted.html);
    assert!(deleted.html.contains("firstPartyApplicationProtected"));
    t.stop().await;
}
