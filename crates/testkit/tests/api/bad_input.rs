//! Bad input of every kind gets a 4xx with a stable code naming what is wrong, and changes
//! nothing.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

/// A fingerprint of everything a bad request might have touched.
async fn snapshot(t: &TestServer) -> Value {
    json!({
        "users": t.get("/users").await.body["value"],
        "groups": t.get("/groups").await.body["value"],
        "apps": t.get("/applications").await.body["value"],
        "roles": t.get("/roleManagement/directory/roleAssignments").await.body["value"],
        // Changes made; a refused operation adds its failure entry (issue 21), a change it is not.
        "audits": t.get("/auditLogs/directoryAudits?$top=999&$filter=result%20eq%20%27success%27").await.body["value"].as_array().map(|a| a.len()),
    })
}

#[tokio::test]
async fn malformed_bodies_name_the_field_and_change_nothing() {
    let t = TestServer::start().await;
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni"}),
        )
        .await
        .body;
    let group = t.post("/groups", json!({"displayName": "G"})).await.body;
    let before = snapshot(&t).await;
    let user_path = format!("/users/{}", joni["id"].as_str().unwrap());
    let ref_path = format!("/groups/{}/members/$ref", group["id"].as_str().unwrap());

    // Found by schemathesis: 256 characters of name after a tab is 257 sent, past the
    // document's maxLength, and must not become acceptable by being trimmed.
    let padded_name = format!("\t6{}", "*".repeat(255));
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/groups",
            json!({"displayName": padded_name, "isAssignableToRole": true}),
            "displayName",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "pad@contoso.com", "displayName": padded_name}),
            "displayName",
        ),
        (
            "PATCH",
            &user_path,
            json!({"displayName": padded_name}),
            "displayName",
        ),
        (
            "POST",
            "/users",
            json!({"displayName": "No UPN"}),
            "userPrincipalName",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "x@contoso.com"}),
            "displayName",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": 5, "displayName": "X"}),
            "userPrincipalName",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "x@contoso.com", "displayName": "X", "favouriteColour": "red"}),
            "favouriteColour",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "not-an-upn", "displayName": "X"}),
            "userPrincipalName",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "x@contoso.com", "displayName": "   "}),
            "displayName",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "x@contoso.com", "displayName": "X", "accountEnabled": "yes"}),
            "accountEnabled",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "x@contoso.com", "displayName": "X", "userType": "Admin"}),
            "userType",
        ),
        (
            "POST",
            "/users",
            json!({"userPrincipalName": "x@contoso.com", "displayName": "X", "mail": "nope"}),
            "mail",
        ),
        ("POST", "/users", json!(["an", "array"]), "body"),
        (
            "PATCH",
            &user_path,
            json!({"accountEnabled": 1}),
            "accountEnabled",
        ),
        (
            "PATCH",
            &user_path,
            json!({"displayName": ""}),
            "displayName",
        ),
        (
            "POST",
            "/groups",
            json!({"displayName": "M", "mailEnabled": true}),
            "mailEnabled",
        ),
        (
            "POST",
            "/groups",
            json!({"displayName": "U", "groupTypes": ["Unified"]}),
            "groupTypes",
        ),
        (
            "POST",
            &ref_path,
            json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/not-a-guid"}),
            "@odata.id",
        ),
        ("POST", &ref_path, json!({}), "@odata.id"),
        (
            "POST",
            "/roleManagement/directory/roleAssignments",
            json!({"principalId": "x", "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10"}),
            "principalId",
        ),
        (
            "POST",
            "/applications",
            json!({"displayName": "A", "web": {"redirectUris": ["http://evil.example/cb"]}}),
            "web.redirectUris",
        ),
        (
            "POST",
            "/applications",
            json!({"displayName": "A", "web": {"redirectUris": ["https://a.example/cb#x"]}}),
            "web.redirectUris",
        ),
        (
            "POST",
            "/applications",
            json!({"displayName": "A", "apiPermissions": ["Everything.All"]}),
            "apiPermissions",
        ),
        (
            "POST",
            "/applications",
            json!({"displayName": "A", "web": {"redirectUris": "https://a.example"}}),
            "web.redirectUris",
        ),
        (
            "POST",
            "/applications",
            json!({"displayName": "A", "signInAudience": "AzureADMultipleOrgs"}),
            "signInAudience",
        ),
    ];
    for (method, path, body, field) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = t.graph(method.clone(), path, Some(body.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {:?}",
            r.body
        );
        assert_eq!(
            r.error_target(),
            Some(field),
            "{method} {path} {body}: {:?}",
            r.body
        );
        assert!(r.error_code().is_some_and(|c| !c.is_empty()));
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field.split('.').next_back().unwrap()),
            "{:?}",
            r.body
        );
    }

    // Not JSON at all, wrong content type, empty body.
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/users",
            "application/json",
            b"{\"userPrincipalName\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.error_target()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/users",
            "text/plain",
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.error_target()),
        (StatusCode::BAD_REQUEST, Some("Content-Type"))
    );
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/users",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(
        (r.status, r.error_target()),
        (StatusCode::BAD_REQUEST, Some("body"))
    );
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/users",
            "application/json",
            vec![0xff, 0xfe, 0x00],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Too large: 413, in Graph's error shape.
    let huge = format!(
        "{{\"userPrincipalName\":\"big@contoso.com\",\"displayName\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/users",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), Some("Request_EntityTooLarge"));

    assert_eq!(
        snapshot(&t).await,
        before,
        "no bad request changed anything"
    );
    t.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_duplicates_409() {
    let t = TestServer::start().await;
    let missing = uuid::Uuid::new_v4();
    for path in [
        format!("/users/{missing}"),
        "/users/nobody@contoso.com".to_string(),
        format!("/groups/{missing}"),
        "/groups/not-a-guid".to_string(),
        format!("/groups/{missing}/members"),
        format!("/applications/{missing}"),
        format!("/roleManagement/directory/roleAssignments/{missing}"),
        format!("/roleManagement/directory/roleDefinitions/{missing}"),
        format!("/auditLogs/directoryAudits/{missing}"),
    ] {
        let r = t.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error_code(), Some("Request_ResourceNotFound"), "{path}");
    }
    assert_eq!(
        t.patch(&format!("/users/{missing}"), json!({"displayName": "X"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.delete(&format!("/groups/{missing}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.post(&format!("/applications/{missing}/addPassword"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let first = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let before = snapshot(&t).await;
    let dup = t
        .post(
            "/users",
            json!({"userPrincipalName": "JONI@contoso.com", "displayName": "Other Joni"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(
        dup.error_code(),
        Some("Request_MultipleObjectsWithSameKeyValue")
    );
    // A mail another live user has is refused, whatever its case, on create and on change
    // (found by an attacker's script: an ordinary account given a Global Administrator's
    // address, which applications read as the same person's `email`).
    let admin_mail = t.bootstrap.admin_user_principal_name.to_uppercase();
    let r = t
        .patch(
            &format!("/users/{}", t.bootstrap.admin_user_id),
            json!({"mail": t.bootstrap.admin_user_principal_name}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let before_mail = snapshot(&t).await;
    let joni_id = first.body["id"].as_str().unwrap();
    for reply in [
        t.patch(&format!("/users/{joni_id}"), json!({"mail": admin_mail}))
            .await,
        t.post(
            "/users",
            json!({"userPrincipalName": "copy@contoso.com", "displayName": "Copy", "mail": admin_mail}),
        )
        .await,
    ] {
        assert_eq!(reply.status, StatusCode::CONFLICT, "{:?}", reply.body);
        assert_eq!(
            reply.error_code(),
            Some("Request_MultipleObjectsWithSameKeyValue")
        );
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already has the mail"),
            "{:?}",
            reply.body
        );
    }
    assert_eq!(snapshot(&t).await["users"], before_mail["users"]);
    // Setting one's own mail again, in another case, is no conflict.
    let r = t
        .patch(
            &format!("/users/{}", t.bootstrap.admin_user_id),
            json!({"mail": admin_mail}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let other = t
        .post(
            "/users",
            json!({"userPrincipalName": "other@contoso.com", "displayName": "Other"}),
        )
        .await
        .body;
    let rename = t
        .patch(
            &format!("/users/{}", other["id"].as_str().unwrap()),
            json!({"userPrincipalName": "Joni@Contoso.com"}),
        )
        .await;
    assert_eq!(rename.status, StatusCode::CONFLICT);
    t.delete(&format!("/users/{}", other["id"].as_str().unwrap()))
        .await;

    let app_id = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        t.post(
            "/applications",
            json!({"displayName": "A", "appId": app_id})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let before_app = snapshot(&t).await;
    let dup_app = t
        .post(
            "/applications",
            json!({"displayName": "B", "appId": app_id}),
        )
        .await;
    assert_eq!(dup_app.status, StatusCode::CONFLICT);
    assert_eq!(snapshot(&t).await, before_app, "a conflict changes nothing");
    assert_ne!(before, before_app);
    t.stop().await;
}

#[tokio::test]
async fn bad_query_options_are_refused_by_name() {
    let t = TestServer::start().await;
    for (query, option) in [
        ("$filter=password eq 'x'", "$filter"),
        (
            "$filter=displayName eq 'a' or displayName eq 'b'",
            "$filter",
        ),
        ("$filter=displayName eq", "$filter"),
        ("$top=0", "$top"),
        ("$top=1000", "$top"),
        ("$top=ten", "$top"),
        ("$select=id,passwordHash", "$select"),
        ("$skiptoken=forged", "$skiptoken"),
        ("$orderby=mail", "$orderby"),
        ("$search=joni", "$search"),
        ("$expand=memberOf", "$expand"),
        ("$top=1&$top=2", "$top"),
    ] {
        let r = t.get(&format!("/users?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(option), "{query}");
        assert_eq!(r.error_code(), Some("Request_UnsupportedQuery"), "{query}");
    }
    let r = t
        .get("/auditLogs/directoryAudits?$filter=activityDateTime ge 'yesterday'")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .get("/auditLogs/directoryAudits?$filter=activityDateTime ge 2020-01-01T00:00:00Z")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // First start (the tenant, its administrator and the administrator's pass, one entry) and
    // the two first-party applications (My Account, Admin Portal).
    assert_eq!(r.body["value"].as_array().unwrap().len(), 3);
    let r = t
        .get("/auditLogs/directoryAudits?$filter=activityDateTime le 2020-01-01T00:00:00Z")
        .await;
    assert_eq!(r.body["value"], json!([]));
    t.stop().await;
}

/// One JSON body reader for every JSON endpoint: a body is exactly one JSON object, sent as
/// `application/json` (parameters allowed); trailing data, arrays and look-alike media types such
/// as `application/jsonp` are refused with a 4xx naming the problem, and nothing changes.
#[tokio::test]
async fn a_json_body_is_one_object_sent_as_json() {
    let t = TestServer::start().await;
    let before = snapshot(&t).await;
    let user = br#"{"userPrincipalName": "trail@contoso.com", "displayName": "Trail"}"#;

    for (content_type, body) in [
        ("application/json", [&user[..], b"garbage"].concat()),
        ("application/json", [&user[..], &user[..]].concat()),
        ("application/json", [b"[", &user[..], b"]"].concat()),
        ("application/jsonp", user.to_vec()),
        ("application/json-seq", user.to_vec()),
        ("text/json", user.to_vec()),
    ] {
        let r = t
            .graph_raw(reqwest::Method::POST, "/users", content_type, body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{content_type} {:?}: {:?}",
            String::from_utf8_lossy(&body),
            r.body
        );
        assert!(
            matches!(r.error_target(), Some("body" | "Content-Type")),
            "{:?}",
            r.body
        );
    }
    // Found by schemathesis: a form feed or a vertical tab is not JSON's whitespace, so a
    // body of one is malformed, not absent (the analysis and replay take an absent body as
    // "the tenant's policies"). JSON's own whitespace still counts as no body.
    for path in [
        "/identity/conditionalAccess/analyze",
        "/identity/conditionalAccess/replay",
        "/users",
    ] {
        for body in [&b"\x0c"[..], b"\x0b", b" \x0c\n"] {
            let r = t
                .graph_raw(
                    reqwest::Method::POST,
                    path,
                    "application/json",
                    body.to_vec(),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path} {body:?}: {:?}",
                r.body
            );
            assert_eq!(
                r.error_target(),
                Some("body"),
                "{path} {body:?}: {:?}",
                r.body
            );
        }
    }
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/identity/conditionalAccess/analyze",
            "application/json",
            b" \r\n\t".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Parameters and case do not matter; trailing whitespace is not data.
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            "/users",
            "Application/JSON; charset=utf-8",
            [&user[..], b" \n"].concat(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    t.delete(&format!("/users/{}", r.body["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        snapshot(&t).await["users"],
        before["users"],
        "nothing else was created"
    );

    // The sign-in endpoints the pages call read bodies the same way (415 for other types).
    for (content_type, body, status) in [
        (
            "application/json",
            br#"{"username": "x@contoso.com", "temporaryAccessPass": "abcdefgh"} {}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/jsonp",
            br#"{"username": "x@contoso.com", "temporaryAccessPass": "abcdefgh"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let r = t
            .http
            .post(format!("{}/auth/tap", t.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(r.status(), status, "{content_type}");
    }
    t.stop().await;
}

/// A Conditional Access policy keeps fields this engine does not implement, but not values Entra
/// itself refuses for fields it knows: each is a 400 naming the field and what it takes, and
/// nothing is stored.
#[tokio::test]
async fn policy_values_outside_entras_enumerations_are_refused_by_name() {
    let t = TestServer::start().await;
    let path = "/identity/conditionalAccess/policies";
    let before = t.get(path).await.body["value"].clone();
    let base = || {
        json!({
            "displayName": "Block Android",
            "state": "enabled",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"],
                "platforms": {"includePlatforms": ["android"]}
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        })
    };
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "grantControls.operator",
            Box::new(|p: &mut Value| p["grantControls"]["operator"] = json!("XOR")),
        ),
        (
            "conditions.platforms.includePlatforms[0]",
            Box::new(|p: &mut Value| {
                p["conditions"]["platforms"]["includePlatforms"] = json!(["androidTV"])
            }),
        ),
        (
            "conditions.clientAppTypes[0]",
            Box::new(|p: &mut Value| p["conditions"]["clientAppTypes"] = json!(["fax"])),
        ),
        (
            "conditions.signInRiskLevels[0]",
            Box::new(|p: &mut Value| p["conditions"]["signInRiskLevels"] = json!(["extreme"])),
        ),
        (
            "state",
            Box::new(|p: &mut Value| p["state"] = json!("sometimes")),
        ),
        (
            "sessionControls.signInFrequency.value",
            Box::new(|p: &mut Value| {
                p["grantControls"] = json!({"operator": "OR", "builtInControls": ["mfa"]});
                p["sessionControls"] =
                    json!({"signInFrequency": {"isEnabled": true, "type": "hours", "value": -1}});
            }),
        ),
    ];
    for (field, change) in cases {
        let mut body = base();
        change(&mut body);
        let r = t.post(path, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(field), "{:?}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field.split('[').next().unwrap_or(field))),
            "{:?}",
            r.body
        );
    }
    assert_eq!(
        t.get(path).await.body["value"],
        before,
        "nothing was stored"
    );
    // The same policy in Entra's values is accepted.
    assert_eq!(t.post(path, base()).await.status, StatusCode::CREATED);
    t.stop().await;
}

/// The lists returned whole refuse query options by name instead of ignoring them.
#[tokio::test]
async fn whole_lists_refuse_query_options_by_name() {
    let t = TestServer::start().await;
    for list in [
        "/identity/conditionalAccess/policies",
        "/identity/conditionalAccess/namedLocations",
        "/policies/authenticationStrengthPolicies",
        "/roleManagement/directory/roleDefinitions",
        "/directoryRoles",
    ] {
        assert_eq!(t.get(list).await.status, StatusCode::OK, "{list}");
        for option in [
            "$top=1",
            "$filter=displayName eq 'x'",
            "$orderby=displayName",
        ] {
            let r = t.get(&format!("{list}?{option}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{list}?{option}");
            let name = option.split('=').next().unwrap();
            assert_eq!(
                r.error_target(),
                Some(name),
                "{list}?{option}: {:?}",
                r.body
            );
            assert_eq!(r.error_code(), Some("Request_UnsupportedQuery"));
        }
    }
    t.stop().await;
}
