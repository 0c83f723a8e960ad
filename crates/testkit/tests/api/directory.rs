//! Round trips of users, groups, nesting, roles, applications, and the audit trail they leave.

use portcullis_testkit::fixtures::id;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn users_round_trip_with_filters_select_and_paging() {
    let t = TestServer::start().await;
    let joni = t
        .post("/users", json!({"userPrincipalName": "Joni@Contoso.com", "displayName": "Joni Sherman", "mail": "joni@contoso.com"}))
        .await;
    assert_eq!(joni.status, StatusCode::CREATED, "{:?}", joni.body);
    assert_eq!(joni.body["accountEnabled"], true);
    assert_eq!(joni.body["userType"], "Member");
    assert!(
        joni.body["createdDateTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // Found by id and, case-insensitively, by userPrincipalName.
    assert_eq!(
        t.get(&format!("/users/{}", id(&joni.body))).await.body["displayName"],
        "Joni Sherman"
    );
    assert_eq!(
        t.get("/users/joni@contoso.com").await.body["id"],
        joni.body["id"]
    );
    let patched = t
        .patch(
            &format!("/users/{}", id(&joni.body)),
            json!({"displayName": "Joni S.", "accountEnabled": false, "mail": null}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);
    let now = t.get(&format!("/users/{}", id(&joni.body))).await.body;
    assert_eq!(
        (
            now["displayName"].as_str(),
            now["accountEnabled"].as_bool(),
            now["mail"].is_null()
        ),
        (Some("Joni S."), Some(false), true)
    );

    for i in 0..5 {
        let r = t.post("/users", json!({"userPrincipalName": format!("grady{i}@contoso.com"), "displayName": format!("Grady {i}"), "userType": if i == 0 { "Guest" } else { "Member" }})).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let guests = t.get("/users?$filter=userType eq 'Guest'").await;
    assert_eq!(guests.body["value"].as_array().unwrap().len(), 1);
    let gradys = t
        .get("/users?$filter=startswith(displayName,'grady') and accountEnabled eq true")
        .await;
    assert_eq!(gradys.body["value"].as_array().unwrap().len(), 5);
    let disabled = t.get("/users?$filter=accountEnabled eq false").await;
    assert_eq!(disabled.body["value"][0]["id"], joni.body["id"]);
    let selected = t.get("/users?$select=id,displayName&$top=1").await;
    let first = selected.body["value"][0].as_object().unwrap();
    assert_eq!(first.keys().collect::<Vec<_>>(), vec!["id", "displayName"]);

    // Paging with $top follows @odata.nextLink to the end, each user once.
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/graph/v1.0/users?$top=2", t.url));
    let token = t.admin_token().await;
    while let Some(link) = next {
        let page: Value = t
            .http
            .get(&link)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for u in page["value"].as_array().unwrap() {
            seen.push(id(u));
        }
        assert!(page["value"].as_array().unwrap().len() <= 2);
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (seen.len(), unique.len()),
        (7, 7),
        "bootstrap admin + Joni + 5, each once"
    );

    let deleted = t.delete(&format!("/users/{}", id(&joni.body))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.get(&format!("/users/{}", id(&joni.body))).await.status,
        StatusCode::NOT_FOUND
    );

    // Each change left an audit entry naming the actor and the target.
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=category eq 'UserManagement'")
        .await;
    let activities: Vec<&str> = audits.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activityDisplayName"].as_str().unwrap())
        .collect();
    assert_eq!(activities.iter().filter(|a| **a == "Add user").count(), 6);
    assert!(activities.contains(&"Disable account") && activities.contains(&"Delete user"));
    let latest = &audits.body["value"][0];
    assert_eq!(latest["activityDisplayName"], "Delete user", "newest first");
    assert_eq!(
        latest["initiatedBy"]["app"]["appId"],
        t.bootstrap.client_id.to_string()
    );
    assert_eq!(
        latest["targetResources"][0]["userPrincipalName"],
        "Joni@Contoso.com"
    );
    assert_eq!(latest["result"], "success");
    let disable = audits.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["activityDisplayName"] == "Disable account")
        .unwrap();
    let props = disable["targetResources"][0]["modifiedProperties"]
        .as_array()
        .unwrap();
    assert!(props.iter().any(|p| p["displayName"] == "accountEnabled"
        && p["oldValue"] == "true"
        && p["newValue"] == "false"));
    t.stop().await;
}

#[tokio::test]
async fn nested_groups_resolve_transitively_and_refuse_cycles() {
    let t = TestServer::start().await;
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni"}),
        )
        .await
        .body;
    let mk = |name: &'static str| {
        t.post("/groups", json!({"displayName": name, "mailEnabled": false, "mailNickname": name, "securityEnabled": true}))
    };
    let admins = mk("Admins").await;
    assert_eq!(admins.status, StatusCode::CREATED, "{:?}", admins.body);
    let (admins, tier0, all) = (
        admins.body,
        mk("Tier 0").await.body,
        mk("Everyone privileged").await.body,
    );
    let reference = |v: &Value| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", id(v))});
    // joni ∈ Admins ∈ Tier 0 ∈ Everyone privileged
    for (group, member) in [(&admins, &joni), (&tier0, &admins), (&all, &tier0)] {
        let r = t
            .post(
                &format!("/groups/{}/members/$ref", id(group)),
                reference(member),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    }
    let direct = t.get(&format!("/users/{}/memberOf", id(&joni))).await;
    assert_eq!(direct.body["value"].as_array().unwrap().len(), 1);
    let transitive = t
        .get(&format!("/users/{}/transitiveMemberOf", id(&joni)))
        .await;
    let mut names: Vec<&str> = transitive.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Admins", "Everyone privileged", "Tier 0"]);
    let members = t
        .get(&format!("/groups/{}/transitiveMembers", id(&all)))
        .await;
    assert!(
        members.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["userPrincipalName"] == "joni@contoso.com"
                && m["@odata.type"] == "#microsoft.graph.user")
    );

    // A cycle is refused and changes nothing; a repeated membership is a conflict.
    let cycle = t
        .post(
            &format!("/groups/{}/members/$ref", id(&admins)),
            reference(&all),
        )
        .await;
    assert_eq!(cycle.status, StatusCode::BAD_REQUEST);
    assert!(
        cycle.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circular")
    );
    let itself = t
        .post(
            &format!("/groups/{}/members/$ref", id(&admins)),
            reference(&admins),
        )
        .await;
    assert_eq!(itself.status, StatusCode::BAD_REQUEST);
    let again = t
        .post(
            &format!("/groups/{}/members/$ref", id(&admins)),
            reference(&joni),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let ghost = t.post(&format!("/groups/{}/members/$ref", id(&admins)), json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", uuid::Uuid::new_v4())})).await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);

    // Removing the middle link cuts the chain.
    let removed = t
        .delete(&format!(
            "/groups/{}/members/{}/$ref",
            id(&tier0),
            id(&admins)
        ))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let transitive = t
        .get(&format!("/users/{}/transitiveMemberOf", id(&joni)))
        .await;
    assert_eq!(transitive.body["value"].as_array().unwrap().len(), 1);
    // Deleting a group removes its memberships.
    assert_eq!(
        t.delete(&format!("/groups/{}", id(&admins))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get(&format!("/users/{}/memberOf", id(&joni))).await.body["value"],
        json!([])
    );
    t.stop().await;
}

#[tokio::test]
async fn roles_are_assigned_listed_and_removed() {
    let t = TestServer::start().await;
    let defs = t.get("/roleManagement/directory/roleDefinitions").await;
    let names: Vec<&str> = defs.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["displayName"].as_str().unwrap())
        .collect();
    for required in [
        "Global Administrator",
        "Privileged Authentication Administrator",
        "Authentication Administrator",
        "Conditional Access Administrator",
        "Security Reader",
        "Global Reader",
    ] {
        assert!(names.contains(&required), "{required}");
    }
    let ca_admin = defs.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["displayName"] == "Conditional Access Administrator")
        .unwrap();
    assert_eq!(
        ca_admin["templateId"],
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9"
    );
    let grady = t
        .post(
            "/users",
            json!({"userPrincipalName": "grady@contoso.com", "displayName": "Grady"}),
        )
        .await
        .body;
    let assign = json!({"principalId": id(&grady), "roleDefinitionId": "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", "directoryScopeId": "/"});
    let a = t
        .post("/roleManagement/directory/roleAssignments", assign.clone())
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(
        t.post("/roleManagement/directory/roleAssignments", assign)
            .await
            .status,
        StatusCode::CONFLICT
    );
    let members = t
        .get("/directoryRoles/b1be1c3e-b65d-4f19-8427-f6fa0d97feb9/members")
        .await;
    assert_eq!(
        members.body["value"][0]["userPrincipalName"],
        "grady@contoso.com"
    );
    let unknown_role = t
        .post(
            "/roleManagement/directory/roleAssignments",
            json!({"principalId": id(&grady), "roleDefinitionId": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (unknown_role.status, unknown_role.error_target()),
        (StatusCode::BAD_REQUEST, Some("roleDefinitionId"))
    );
    let scoped = t.post("/roleManagement/directory/roleAssignments", json!({"principalId": id(&grady), "roleDefinitionId": "f2ef992c-3afb-46b9-b7cf-a126ee74c451", "directoryScopeId": "/administrativeUnits/x"})).await;
    assert_eq!(scoped.error_target(), Some("directoryScopeId"));
    assert_eq!(
        t.delete(&format!(
            "/roleManagement/directory/roleAssignments/{}",
            id(&a.body)
        ))
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.get(&format!(
            "/roleManagement/directory/roleAssignments/{}",
            id(&a.body)
        ))
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // Deleting a user removes their role assignments (checked by the invariants in stop()).
    t.post("/roleManagement/directory/roleAssignments", json!({"principalId": id(&grady), "roleDefinitionId": "5d6b6bb7-de71-4623-b4af-96380a352509"})).await;
    assert_eq!(
        t.delete(&format!("/users/{}", id(&grady))).await.status,
        StatusCode::NO_CONTENT
    );
    let left = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{}'",
            id(&grady)
        ))
        .await;
    assert_eq!(left.body["value"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn applications_and_secrets_shown_once() {
    let t = TestServer::start().await;
    let app = t
        .post("/applications", json!({"displayName": "Payroll", "web": {"redirectUris": ["https://payroll.contoso.com/signin-oidc"]}}))
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let app_id = app.body["appId"].as_str().unwrap().to_string();
    assert_ne!(app_id, id(&app.body), "client id and object id differ");
    assert_eq!(
        t.get(&format!("/applications?$filter=appId eq '{app_id}'"))
            .await
            .body["value"][0]["displayName"],
        "Payroll"
    );
    assert_eq!(
        t.get(&format!("/applications/{app_id}")).await.body["id"],
        app.body["id"],
        "found by appId too"
    );
    let secret = t
        .post(
            &format!("/applications/{}/addPassword", id(&app.body)),
            json!({"passwordCredential": {"displayName": "ci"}}),
        )
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    let text = secret.body["secretText"].as_str().unwrap().to_string();
    assert!(text.len() >= 40);
    assert_eq!(secret.body["hint"], &text[..3]);
    let listed = t.get(&format!("/applications/{}", id(&app.body))).await;
    let creds = listed.body["passwordCredentials"].as_array().unwrap();
    assert_eq!(creds.len(), 1);
    assert!(
        creds[0].get("secretText").is_none() && !listed.body.to_string().contains(&text),
        "the secret is shown once"
    );
    // The secret works at the token endpoint until removed.
    assert!(t.client_token(&app_id, &text).await.is_ok());
    let removed = t
        .post(
            &format!("/applications/{}/removePassword", id(&app.body)),
            json!({"keyId": creds[0]["keyId"]}),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        t.client_token(&app_id, &text).await.unwrap_err().status,
        StatusCode::UNAUTHORIZED
    );
    // Public clients keep no secrets.
    let public = t.post("/applications", json!({"displayName": "Mobile", "isFallbackPublicClient": true, "publicClient": {"redirectUris": ["com.contoso.mobile:/auth"]}})).await;
    assert_eq!(public.status, StatusCode::CREATED);
    let refused = t
        .post(
            &format!("/applications/{}/addPassword", id(&public.body)),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=category eq 'ApplicationManagement'")
        .await;
    assert!(
        !audits.body.to_string().contains(&text),
        "no secret in the audit log"
    );
    // The first-party applications made at start (My Account, Admin Portal), then add Payroll,
    // add and remove its secret, add Mobile; the refused request left none.
    assert_eq!(audits.body["value"].as_array().unwrap().len(), 6);
    t.stop().await;
}
