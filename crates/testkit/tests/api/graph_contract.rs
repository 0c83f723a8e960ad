//! The Graph contract as real Graph scripts use it: `POST /users` with `passwordProfile`,
//! `$count` and `@odata.count` on every list, `/users/$count`, and an OpenAPI document that
//! says every answer an operation can give, with Graph's error body.

use portcullis_testkit::fixtures::{
    add_member, app_with_permissions, assign_role, create_group, create_user,
};
use portcullis_testkit::{StatusCode, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD_CONFIG: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password";

fn new_user(upn: &str, profile: Value) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": "Pat Profile",
        "mailNickname": "pat",
        "userPrincipalName": upn,
        "passwordProfile": profile,
    })
}

async fn password_sign_in(t: &TestServer, upn: &str, password: &str) -> StatusCode {
    t.http
        .post(format!("{}/auth/password", t.url))
        .json(&json!({"username": upn, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn post_users_with_a_password_profile_sets_the_password_only_when_passwords_are_on() {
    let t = TestServer::start().await;
    let upn = "pat@portcullis.local";
    let password = "violet staple orbit 42";

    // Off (the default): a clear 400 naming passwordProfile, and nobody is created.
    let refused = t
        .post(
            "/users",
            new_user(
                upn,
                json!({"password": password, "forceChangePasswordNextSignIn": false}),
            ),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.error_target(), Some("passwordProfile"));
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("turned off"), "{message}");
    assert_eq!(
        t.get(&format!("/users/{upn}")).await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        t.patch(PASSWORD_CONFIG, json!({"state": "enabled"}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // The password rules of resetPassword, named in passwordProfile; nothing created.
    for (profile, target) in [
        (json!({"password": "short"}), "passwordProfile.password"),
        (
            json!({"password": "pat-is-my-name-2024"}),
            "passwordProfile.password",
        ),
        (
            json!({"password": password, "forceChangePasswordNextSignIn": true}),
            "passwordProfile",
        ),
        (
            json!({"forceChangePasswordNextSignIn": false}),
            "passwordProfile.password",
        ),
        (
            json!({"password": password, "colour": "red"}),
            "passwordProfile.colour",
        ),
    ] {
        let r = t.post("/users", new_user(upn, profile.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{profile}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(target), "{profile}: {:?}", r.body);
        assert_eq!(
            t.get(&format!("/users/{upn}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // A caller who may read users but not create them is refused before anything is checked.
    let (_, reader) = app_with_permissions(&t, "Reader", &["User.Read.All"]).await;
    let r = t
        .graph_as(
            &reader,
            Method::POST,
            "/users",
            Some(new_user(upn, json!({"password": password}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.get(&format!("/users/{upn}")).await.status,
        StatusCode::NOT_FOUND
    );

    let created = t
        .post(
            "/users",
            new_user(
                upn,
                json!({"password": password, "forceChangePasswordNextSignIn": false}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(
        created.body.get("passwordProfile").is_none(),
        "never echoed"
    );
    assert_eq!(password_sign_in(&t, upn, password).await, StatusCode::OK);
    assert_eq!(
        password_sign_in(&t, upn, "not the password at all").await,
        StatusCode::UNAUTHORIZED
    );
    // One audit entry for the user, saying a password was set; the password is in no entry.
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Add user'")
        .await;
    let text = audits.body.to_string();
    assert!(!text.contains(password));
    let entry = audits.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["targetResources"][0]["userPrincipalName"] == upn)
        .expect("the user's audit entry");
    assert_eq!(entry["additionalDetails"][0]["key"], "passwordSet");
    t.stop().await;
}

#[tokio::test]
async fn count_answers_odata_count_on_every_list_with_or_without_consistency_level() {
    let t = TestServer::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(create_user(&t, &format!("counted{n}@portcullis.local"), "Counted").await);
    }
    let group = create_group(&t, "Counted group").await;
    add_member(&t, &group, &ids[0]).await;
    add_member(&t, &group, &ids[1]).await;
    let helpdesk = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    assign_role(&t, &ids[2], helpdesk).await;

    // A paged list: the count is of every match, not of the page, and stays on the next page.
    let first = t
        .get("/users?$count=true&$filter=startswith(userPrincipalName,'counted')&$top=2")
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["@odata.count"], 3);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let keys: Vec<&String> = first.body.as_object().unwrap().keys().collect();
    assert_eq!(keys[1], "@odata.count", "before value, as Graph writes it");
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let path = next.split("/graph/v1.0").nth(1).unwrap();
    let second = t.get(path).await;
    assert_eq!(second.body["@odata.count"], 3);
    assert_eq!(second.body["value"].as_array().unwrap().len(), 1);
    // Without $count there is no count.
    let plain = t.get("/users").await;
    assert!(plain.body.get("@odata.count").is_none());

    // Graph's header for advanced queries changes nothing.
    let token = t.admin_token().await;
    let with_header = t
        .http
        .get(format!(
            "{}/graph/v1.0/groups?$count=true&$filter=displayName eq 'Counted group'",
            t.url
        ))
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(with_header.status(), StatusCode::OK);
    let body: Value = with_header.json().await.unwrap();
    assert_eq!(body["@odata.count"], 1);

    let user = &ids[0];
    for path in [
        "/users".to_string(),
        "/groups".to_string(),
        "/applications".to_string(),
        "/auditLogs/directoryAudits".to_string(),
        "/auditLogs/signIns".to_string(),
        "/roleManagement/directory/roleAssignments".to_string(),
        format!("/groups/{group}/members"),
        format!("/groups/{group}/transitiveMembers"),
        format!("/groups/{group}/memberOf"),
        format!("/users/{user}/memberOf"),
        format!("/users/{user}/transitiveMemberOf"),
        format!("/directoryRoles/{helpdesk}/members"),
    ] {
        let r = t.get(&format!("{path}?$count=true")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        let listed = r.body["value"].as_array().unwrap().len();
        assert!(r.body["@odata.nextLink"].is_null(), "{path} fits one page");
        assert_eq!(r.body["@odata.count"], listed, "{path}");
        let bad = t.get(&format!("{path}?$count=maybe")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(bad.error_target(), Some("$count"), "{path}");
    }
    let members = t.get(&format!("/groups/{group}/members?$count=true")).await;
    assert_eq!(members.body["@odata.count"], 2);
    // Lists returned whole take $select, and refuse $filter and $top rather than ignore them.
    let selected = t.get(&format!("/groups/{group}/members?$select=id")).await;
    assert_eq!(selected.status, StatusCode::OK);
    assert!(selected.body["value"][0].get("displayName").is_none());
    assert!(selected.body["value"][0].get("id").is_some());
    for option in ["$filter=id eq 'x'", "$top=1", "$orderby=id"] {
        let r = t.get(&format!("/groups/{group}/members?{option}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{option}");
    }

    // /users/$count and /groups/$count: plain text, $filter applies.
    for (path, expected) in [
        (
            "/users/$count?$filter=startswith(userPrincipalName,'counted')",
            "3",
        ),
        ("/groups/$count", "1"),
    ] {
        let r = t
            .http
            .get(format!("{}/graph/v1.0{path}", t.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(r.text().await.unwrap(), expected, "{path}");
    }
    // Counting needs the same permission as listing.
    let (_, groups_only) = app_with_permissions(&t, "Groups only", &["Group.Read.All"]).await;
    let r = t
        .graph_as(&groups_only, Method::GET, "/users/$count", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test]
async fn the_openapi_document_gives_every_operation_its_shared_answers_with_graphs_error_body() {
    let t = TestServer::start().await;
    let api: Value = t
        .http
        .get(format!("{}/graph/v1.0/openapi.json", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let error_ref = json!({"$ref": "#/components/schemas/GraphError"});
    assert!(api["components"]["schemas"]["GraphError"]["properties"]["error"].is_object());
    let mut operations = 0;
    for (path, item) in api["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["400", "401", "403", "503"];
            if path.contains('{') {
                expected.push("404");
            }
            if operation.get("requestBody").is_some() {
                expected.push("413");
            }
            for status in expected {
                let answer = &responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} documents {status}"));
                assert_eq!(
                    answer["content"]["application/json"]["schema"], error_ref,
                    "{method} {path} {status}"
                );
            }
            for (status, answer) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        answer["content"]["application/json"]["schema"], error_ref,
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(operations > 60, "{operations} operations");
    // The request schema says what the server refuses.
    let schemas = &api["components"]["schemas"];
    let new_user = &schemas["NewUser"];
    assert_eq!(new_user["additionalProperties"], false);
    let required: Vec<&str> = new_user["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"userPrincipalName") && required.contains(&"displayName"));
    assert!(new_user["properties"]["passwordProfile"].is_object());
    let profile = &schemas["PasswordProfile"];
    assert_eq!(profile["properties"]["password"]["minLength"], 8);
    assert_eq!(profile["properties"]["password"]["maxLength"], 256);
    assert_eq!(
        api["paths"]["/users/$count"]["get"]["responses"]["200"]["content"]["text/plain"]["schema"]
            ["type"],
        "string"
    );
    t.stop().await;
}
