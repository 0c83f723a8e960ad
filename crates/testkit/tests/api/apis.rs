//! Applications as APIs (identifier URIs, scopes, app roles), who may use an application (app
//! role assignments, `appRoleAssignmentRequired`), and what tokens say about the person (`roles`,
//! `groups` and the overage indicator). Access tokens are verified the way a resource server
//! would: with a stock JWT library against the published key set.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use portcullis_testkit::fixtures::{
    WINDOWS, add_member, app_with_permissions, create_group, create_user, id, user,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::oidc::{
    App, Browser, REDIRECT, claims, confidential_app, pass_for, query_param, redeem,
    sign_in_with_pass, token, urlencode,
};

const READ_SCOPE: &str = "5b3c62f0-5d0f-4c52-9d0c-3f5d1e0a7a11";
const WRITE_SCOPE: &str = "0f9a8a3e-8c4e-4a0d-9a57-6a2c1b7de912";
const APPROVER_ROLE: &str = "c1d2e3f4-0a1b-4c5d-8e9f-112233445566";
const SYNC_ROLE: &str = "a9b8c7d6-1e2f-4a3b-9c4d-665544332211";

/// An API: `api://orders` with scopes `Orders.Read` and `Orders.Write` and two app roles,
/// `Approver` for people and `Orders.Sync` for applications. Its object id and appId.
async fn orders_api(t: &TestServer, extra: Value) -> (String, String) {
    let mut body = json!({
        "displayName": "Orders API",
        "identifierUris": ["api://orders"],
        "api": {"oauth2PermissionScopes": [
            {"id": READ_SCOPE, "value": "Orders.Read", "adminConsentDisplayName": "Read orders", "isEnabled": true, "type": "User"},
            {"id": WRITE_SCOPE, "value": "Orders.Write", "adminConsentDisplayName": "Write orders", "isEnabled": true, "type": "Admin"}
        ]},
        "appRoles": [
            {"id": APPROVER_ROLE, "value": "Approver", "displayName": "Approver", "allowedMemberTypes": ["User"], "isEnabled": true},
            {"id": SYNC_ROLE, "value": "Orders.Sync", "displayName": "Sync", "allowedMemberTypes": ["Application"], "isEnabled": true}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = t.post("/applications", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (id(&r.body), r.body["appId"].as_str().unwrap().to_string())
}

async fn assign(t: &TestServer, resource: &str, principal: &str, role: &str) -> Value {
    let r = t
        .post(
            &format!("/servicePrincipals/{resource}/appRoleAssignedTo"),
            json!({"principalId": principal, "resourceId": resource, "appRoleId": role}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// Verifies `jwt` as a resource server would: signature by a key of the published set,
/// issuer, audience and lifetime. The claims and the header's `typ`.
async fn verified(t: &TestServer, jwt: &str, audience: &str) -> (Value, Option<String>) {
    let keys: JwkSet = t
        .http
        .get(format!("{}/discovery/v2.0/keys", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let jwk = keys
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the key is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&t.url]);
    let data =
        jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the token verifies for its audience");
    (data.claims, header.typ)
}

fn authorize(app: &App, scope: &str) -> String {
    format!(
        "/oauth2/v2.0/authorize?client_id={}&redirect_uri={}&response_type=code&scope={}&state=s1",
        app.client_id,
        urlencode(REDIRECT),
        urlencode(scope)
    )
}

/// Signs `upn` in to `app` asking for `scope`; the token response.
async fn tokens_for(t: &TestServer, app: &App, upn: &str, user_id: &str, scope: &str) -> Value {
    let pass = pass_for(t, user_id).await;
    let mut browser = Browser::new(t, WINDOWS);
    let (done, _) = sign_in_with_pass(t, &mut browser, &authorize(app, scope), upn, &pass).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = redeem(t, app, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    tokens
}

/// Where `/authorize` sends the browser for `scope`: the error it redirects with, if any.
async fn authorize_error(t: &TestServer, app: &App, scope: &str) -> Option<String> {
    let mut browser = Browser::new(t, WINDOWS);
    let r = browser.get(&authorize(app, scope)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    query_param(&r.location.unwrap(), "error")
}

#[tokio::test]
async fn an_api_access_token_names_the_api_and_verifies_with_a_stock_jwt_library() {
    let t = TestServer::start().await;
    let (api, api_app_id) = orders_api(&t, json!({})).await;
    let client = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    assign(&t, &api, &joni, APPROVER_ROLE).await;

    let tokens = tokens_for(
        &t,
        &client,
        "joni@contoso.com",
        &joni,
        "openid profile api://orders/Orders.Read",
    )
    .await;
    let scope = tokens["scope"].as_str().unwrap();
    assert!(scope.contains("api://orders/Orders.Read"), "{scope}");
    assert!(!scope.contains("Orders.Write"), "{scope}");
    let access = tokens["access_token"].as_str().unwrap();
    let (at, typ) = verified(&t, access, &api_app_id).await;
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!(at["aud"], api_app_id, "aud is the API's appId (Entra v2)");
    assert_eq!(at["scp"], "Orders.Read");
    assert_eq!(at["roles"], json!(["Approver"]));
    assert_eq!(at["client_id"], client.client_id);
    assert_eq!(at["azp"], client.client_id);
    assert_eq!(at["sub"], joni);
    assert_eq!(at["iss"], t.url);
    for claim in ["exp", "iat", "jti"] {
        assert!(!at[claim].is_null(), "{claim} in {at}");
    }
    // The ID token is still the client's.
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["aud"], client.client_id);

    // The API's token opens nothing of the admin API, and is no key to the person's profile:
    // userinfo refuses it, and takes the token the client got for itself.
    let refused = t
        .graph_as(access, reqwest::Method::GET, "/users", None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let userinfo = |token: String| {
        let t = &t;
        async move {
            t.http
                .get(format!("{}/oidc/userinfo", t.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let r = userinfo(access.to_string()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let own = tokens_for(&t, &client, "joni@contoso.com", &joni, "openid profile").await;
    let own_access = own["access_token"].as_str().unwrap();
    assert_eq!(claims(own_access)["aud"], client.client_id);
    let r = userinfo(own_access.to_string()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], joni);

    // `.default` asks for every enabled scope; the appId names the API as well as its URI.
    let all = tokens_for(
        &t,
        &client,
        "joni@contoso.com",
        &joni,
        &format!("openid {api_app_id}/.default"),
    )
    .await;
    let (at, _) = verified(&t, all["access_token"].as_str().unwrap(), &api_app_id).await;
    assert_eq!(at["scp"], "Orders.Read Orders.Write");
    t.stop().await;
}

#[tokio::test]
async fn unknown_disabled_or_mixed_api_scopes_are_refused() {
    let t = TestServer::start().await;
    let (api, _) = orders_api(&t, json!({})).await;
    orders_api(
        &t,
        json!({"displayName": "Billing API", "identifierUris": ["api://billing"]}),
    )
    .await;
    let client = confidential_app(&t).await;
    for scope in [
        "openid api://orders/Orders.Delete",
        "openid api://nowhere/Orders.Read",
        "openid api://orders/Orders.Read api://billing/Orders.Read",
    ] {
        assert_eq!(
            authorize_error(&t, &client, scope).await.as_deref(),
            Some("invalid_scope"),
            "{scope}"
        );
    }
    // A disabled scope is no longer granted.
    let r = t
        .patch(
            &format!("/applications/{api}"),
            json!({"api": {"oauth2PermissionScopes": [
                {"id": READ_SCOPE, "value": "Orders.Read", "adminConsentDisplayName": "Read orders", "isEnabled": false, "type": "User"},
                {"id": WRITE_SCOPE, "value": "Orders.Write", "adminConsentDisplayName": "Write orders", "isEnabled": true, "type": "Admin"}
            ]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        authorize_error(&t, &client, "openid api://orders/Orders.Read")
            .await
            .as_deref(),
        Some("invalid_scope")
    );
    // A scope of no API here that is not spelled like one is ignored, as OpenID Connect asks.
    assert_eq!(
        authorize_error(&t, &client, "openid https://graph.microsoft.com/User.Read").await,
        None
    );
    t.stop().await;
}

#[tokio::test]
async fn client_credentials_for_an_api_carry_the_app_roles_granted_to_the_caller() {
    let t = TestServer::start().await;
    let (api, api_app_id) = orders_api(&t, json!({})).await;
    let caller = confidential_app(&t).await;
    let caller_object = t
        .get(&format!("/applications/{}", caller.client_id))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assign(&t, &api, &caller_object, SYNC_ROLE).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "api://orders/.default"),
    ];
    let (status, body) = token(&t, &caller, &form).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let access = body["access_token"].as_str().unwrap();
    let (at, typ) = verified(&t, access, &api_app_id).await;
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!(at["roles"], json!(["Orders.Sync"]));
    assert_eq!(at["client_id"], caller.client_id);
    assert_eq!(at["azp"], caller.client_id);
    assert_eq!(at["idtyp"], "app");
    let refused = t
        .graph_as(access, reqwest::Method::GET, "/users", None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // A person's role is not an application's: assigning it to the caller is refused.
    let r = t
        .post(
            &format!("/servicePrincipals/{api}/appRoleAssignedTo"),
            json!({"principalId": caller_object, "resourceId": api, "appRoleId": APPROVER_ROLE}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("appRoleId"));

    // Another application gets a token without roles; once the API requires assignment, none.
    let other = confidential_app(&t).await;
    let (status, body) = token(&t, &other, &form).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let (at, _) = verified(&t, body["access_token"].as_str().unwrap(), &api_app_id).await;
    assert_eq!(at["roles"], json!([]));
    let r = t
        .patch(
            &format!("/applications/{api}"),
            json!({"appRoleAssignmentRequired": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (status, body) = token(&t, &other, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = token(&t, &caller, &form).await;
    assert_eq!(status, StatusCode::OK);
    // An unknown API, or two scopes at once, are refused.
    for scope in ["api://nowhere/.default", "api://orders/.default openid"] {
        let (status, body) = token(
            &t,
            &caller,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope}: {body:?}");
        assert_eq!(body["error"], "invalid_scope", "{scope}");
    }
    t.stop().await;
}

#[tokio::test]
async fn api_definitions_are_checked_like_entra() {
    let t = TestServer::start().await;
    let (api, _) = orders_api(&t, json!({})).await;
    let scope = |id: &str, value: &str| json!({"id": id, "value": value, "adminConsentDisplayName": "x", "isEnabled": true, "type": "User"});
    let cases = [
        (json!({"identifierUris": ["orders"]}), "identifierUris"),
        (json!({"identifierUris": ["api://x/"]}), "identifierUris"),
        (
            json!({"identifierUris": ["api://a", "API://A"]}),
            "identifierUris",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope(READ_SCOPE, "Read"), scope(WRITE_SCOPE, "read")]}}),
            "api.oauth2PermissionScopes",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope(READ_SCOPE, "has space")]}}),
            "api.oauth2PermissionScopes",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope(READ_SCOPE, ".Read")]}}),
            "api.oauth2PermissionScopes",
        ),
        (
            json!({"appRoles": [{"id": READ_SCOPE, "value": "R", "displayName": "R", "allowedMemberTypes": ["Robot"], "isEnabled": true}]}),
            "appRoles[0].allowedMemberTypes[0]",
        ),
        (
            json!({"appRoles": [{"id": READ_SCOPE, "value": "R", "displayName": "R", "allowedMemberTypes": [], "isEnabled": true}]}),
            "appRoles",
        ),
        (
            json!({"groupMembershipClaims": "DirectoryRole"}),
            "groupMembershipClaims",
        ),
    ];
    for (body, target) in cases {
        let mut full = body.clone();
        full["displayName"] = json!("Bad API");
        let r = t.post("/applications", full).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(target), "{body}: {:?}", r.body);
    }
    let not_a_guid = t
        .post(
            "/applications",
            json!({"displayName": "Bad", "api": {"oauth2PermissionScopes": [scope("not-a-guid", "Read")]}}),
        )
        .await;
    assert_eq!(not_a_guid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        not_a_guid.error_target(),
        Some("api.oauth2PermissionScopes[0].id")
    );
    // Identifier URIs are unique in the tenant, whatever their case.
    let r = t
        .post(
            "/applications",
            json!({"displayName": "Copy", "identifierUris": ["API://Orders"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // An enabled scope is disabled before it is removed.
    let r = t
        .patch(
            &format!("/applications/{api}"),
            json!({"api": {"oauth2PermissionScopes": []}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("api.oauth2PermissionScopes"));
    // Nothing was changed by the refusals.
    let read = t.get(&format!("/applications/{api}")).await;
    assert_eq!(
        read.body["api"]["oauth2PermissionScopes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(read.body["identifierUris"], json!(["api://orders"]));
    // The Admin Portal neither exposes an API nor requires assignment.
    let portal = "005cbd19-3de0-4238-a5c6-97d038f6c66d";
    let r = t
        .patch(
            &format!("/applications/{portal}"),
            json!({"appRoleAssignmentRequired": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("firstPartyApplicationProtected"));
    t.stop().await;
}

#[tokio::test]
async fn assignment_required_refuses_the_unassigned_with_50105_and_admits_the_assigned() {
    let t = TestServer::start().await;
    let client = confidential_app(&t).await;
    let client_object = t
        .get(&format!("/applications/{}", client.client_id))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .patch(
            &format!("/applications/{client_object}"),
            json!({"appRoleAssignmentRequired": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let direct = create_user(&t, "direct@contoso.com", "Direct").await;
    let grouped = create_user(&t, "grouped@contoso.com", "Grouped").await;
    let nested = create_user(&t, "nested@contoso.com", "Nested").await;
    let outsider = create_user(&t, "outsider@contoso.com", "Outsider").await;
    let team = create_group(&t, "Order team").await;
    let subteam = create_group(&t, "Order subteam").await;
    add_member(&t, &team, &grouped).await;
    add_member(&t, &team, &subteam).await;
    add_member(&t, &subteam, &nested).await;
    let default_access = "00000000-0000-0000-0000-000000000000";
    assign(&t, &client_object, &direct, default_access).await;
    assign(&t, &client_object, &team, default_access).await;

    for (upn, id, admitted) in [
        ("direct@contoso.com", &direct, true),
        ("grouped@contoso.com", &grouped, true),
        // As in Entra, a group's assignment is not passed on to nested groups.
        ("nested@contoso.com", &nested, false),
        ("outsider@contoso.com", &outsider, false),
    ] {
        let pass = pass_for(&t, id).await;
        let mut browser = Browser::new(&t, WINDOWS);
        let (done, _) =
            sign_in_with_pass(&t, &mut browser, &authorize(&client, "openid"), upn, &pass).await;
        if admitted {
            assert_eq!(done.body["status"], "completed", "{upn}: {}", done.text);
        } else {
            assert_eq!(done.body["status"], "blocked", "{upn}: {}", done.text);
            assert_eq!(done.body["errorCode"], 50105, "{upn}");
            assert!(done.body["redirectUrl"].is_null(), "no code for {upn}");
            let message = done.body["message"].as_str().unwrap();
            assert!(message.contains("not assigned"), "{message}");
        }
    }
    let log = t
        .get("/auditLogs/signIns?$filter=status/errorCode eq 50105")
        .await;
    let entries = log.body["value"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{:?}", log.body);
    for entry in entries {
        let reason = entry["status"]["failureReason"].as_str().unwrap();
        assert!(reason.contains("not assigned"), "{reason}");
        assert_eq!(entry["appId"], client.client_id);
    }
    t.stop().await;
}

#[tokio::test]
async fn app_role_assignments_need_their_permissions_and_are_audited() {
    let t = TestServer::start().await;
    let (api, _) = orders_api(&t, json!({})).await;
    let joni = user(&t, "joni@contoso.com").await;
    let path = format!("/servicePrincipals/{api}/appRoleAssignedTo");
    let body = json!({"principalId": joni, "resourceId": api, "appRoleId": APPROVER_ROLE});

    let (_, nothing) = app_with_permissions(&t, "Nothing", &[]).await;
    let (_, users_only) = app_with_permissions(&t, "Users", &["User.ReadWrite.All"]).await;
    let (_, reader) = app_with_permissions(&t, "Reader", &["Application.Read.All"]).await;
    let (_, assigner) =
        app_with_permissions(&t, "Assigner", &["AppRoleAssignment.ReadWrite.All"]).await;
    for token in [&nothing, &users_only] {
        let r = t.graph_as(token, reqwest::Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    for token in [&nothing, &users_only, &reader] {
        let r = t
            .graph_as(token, reqwest::Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    }
    let made = t
        .graph_as(&assigner, reqwest::Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert_eq!(made.body["principalType"], "User");
    assert_eq!(made.body["principalDisplayName"], "joni");
    assert_eq!(made.body["resourceDisplayName"], "Orders API");
    let assignment = id(&made.body);
    let again = t
        .graph_as(&assigner, reqwest::Method::POST, &path, Some(body.clone()))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    let listed = t.graph_as(&reader, reqwest::Method::GET, &path, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["value"][0]["id"], assignment);

    let bad = [
        (
            json!({"principalId": joni, "resourceId": api, "appRoleId": "not-a-guid"}),
            "appRoleId",
        ),
        (
            json!({"principalId": joni, "resourceId": api, "appRoleId": SYNC_ROLE}),
            "appRoleId",
        ),
        (
            json!({"principalId": joni, "resourceId": api, "appRoleId": READ_SCOPE}),
            "appRoleId",
        ),
        (
            json!({"principalId": READ_SCOPE, "resourceId": api, "appRoleId": APPROVER_ROLE}),
            "principalId",
        ),
        (
            json!({"principalId": joni, "resourceId": joni, "appRoleId": APPROVER_ROLE}),
            "resourceId",
        ),
    ];
    for (bad_body, target) in bad {
        let r = t
            .graph_as(
                &assigner,
                reqwest::Method::POST,
                &path,
                Some(bad_body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{bad_body}: {:?}",
            r.body
        );
        assert_eq!(r.error_target(), Some(target), "{bad_body}");
    }
    // The Admin Portal takes no assignments.
    let portal = t
        .get("/applications/005cbd19-3de0-4238-a5c6-97d038f6c66d")
        .await;
    let portal_id = id(&portal.body);
    let r = t
        .graph_as(
            &assigner,
            reqwest::Method::POST,
            &format!("/servicePrincipals/{portal_id}/appRoleAssignedTo"),
            Some(json!({"principalId": joni, "resourceId": portal_id, "appRoleId": "00000000-0000-0000-0000-000000000000"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.error_code(), Some("firstPartyApplicationProtected"));

    let one = format!("{path}/{assignment}");
    for token in [&nothing, &reader] {
        let r = t.graph_as(token, reqwest::Method::DELETE, &one, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = t
        .graph_as(&assigner, reqwest::Method::DELETE, &one, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t
        .graph_as(&assigner, reqwest::Method::DELETE, &one, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let listed = t.graph_as(&reader, reqwest::Method::GET, &path, None).await;
    assert_eq!(listed.body["value"], json!([]));

    let audits = t.get("/auditLogs/directoryAudits?$top=999").await;
    let activities: Vec<(&str, &str)> = audits.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["activityDisplayName"].as_str().unwrap(),
                a["result"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("Add app role assignment to user", "success"),
        ("Remove app role assignment from user", "success"),
        ("Add app role assignment to user", "failure"),
    ] {
        assert!(
            activities.contains(&expected),
            "{expected:?} in {activities:?}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn tokens_list_groups_and_roles_and_past_the_bound_point_at_get_member_objects() {
    let t = TestServer::start_with(|c| c.groups_claim_limit = 2).await;
    let client = confidential_app(&t).await;
    let client_object = t
        .get(&format!("/applications/{}", client.client_id))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .patch(
            &format!("/applications/{client_object}"),
            json!({
                "groupMembershipClaims": "SecurityGroup",
                "appRoles": [{"id": APPROVER_ROLE, "value": "Approver", "displayName": "Approver", "allowedMemberTypes": ["User"], "isEnabled": true}]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let joni = user(&t, "joni@contoso.com").await;
    let sales = create_group(&t, "Sales").await;
    let emea = create_group(&t, "Sales EMEA").await;
    add_member(&t, &sales, &joni).await;
    add_member(&t, &emea, &joni).await;
    assign(&t, &client_object, &sales, APPROVER_ROLE).await;

    let tokens = tokens_for(&t, &client, "joni@contoso.com", &joni, "openid").await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    let mut groups: Vec<String> = serde_json::from_value(id_token["groups"].clone()).unwrap();
    groups.sort();
    let mut expected = vec![sales.clone(), emea.clone()];
    expected.sort();
    assert_eq!(groups, expected);
    assert_eq!(id_token["roles"], json!(["Approver"]), "through the group");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["roles"], json!(["Approver"]));
    assert!(access["groups"].is_array());

    // A third group (through nesting) passes the bound: the overage indicator instead.
    let nested = create_group(&t, "Sales leads").await;
    add_member(&t, &nested, &sales).await;
    let tokens = tokens_for(&t, &client, "joni@contoso.com", &joni, "openid").await;
    for token in ["id_token", "access_token"] {
        let c = claims(tokens[token].as_str().unwrap());
        assert!(c.get("groups").is_none(), "{token}: {c}");
        assert_eq!(c["_claim_names"], json!({"groups": "src1"}), "{token}");
        let endpoint = c["_claim_sources"]["src1"]["endpoint"].as_str().unwrap();
        assert_eq!(
            endpoint,
            format!("{}/graph/v1.0/users/{joni}/getMemberObjects", t.url)
        );
    }
    // The endpoint it names answers with every group.
    let (_, reader) =
        app_with_permissions(&t, "Group reader", &["User.Read.All", "Group.Read.All"]).await;
    let path = format!("/users/{joni}/getMemberObjects");
    let r = t
        .graph_as(
            &reader,
            reqwest::Method::POST,
            &path,
            Some(json!({"securityEnabledOnly": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut found: Vec<String> = serde_json::from_value(r.body["value"].clone()).unwrap();
    found.sort();
    let mut all = vec![sales.clone(), emea.clone(), nested.clone()];
    all.sort();
    assert_eq!(found, all);
    let (_, users_only) = app_with_permissions(&t, "Users only", &["User.Read.All"]).await;
    let r = t
        .graph_as(
            &users_only,
            reqwest::Method::POST,
            &path,
            Some(json!({"securityEnabledOnly": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .graph_as(&reader, reqwest::Method::POST, &path, Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // ApplicationGroup: only the groups assigned to the application.
    let r = t
        .patch(
            &format!("/applications/{client_object}"),
            json!({"groupMembershipClaims": "ApplicationGroup"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let tokens = tokens_for(&t, &client, "joni@contoso.com", &joni, "openid").await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["groups"], json!([sales]));
    // None (or null): no claim.
    let r = t
        .patch(
            &format!("/applications/{client_object}"),
            json!({"groupMembershipClaims": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let tokens = tokens_for(&t, &client, "joni@contoso.com", &joni, "openid").await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token.get("groups").is_none(), "{id_token}");
    assert!(id_token.get("_claim_names").is_none(), "{id_token}");
    t.stop().await;
}

#[tokio::test]
async fn the_portal_requires_assignment_and_assigns_people_and_groups_by_name() {
    const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    let t = TestServer::start().await;
    let client = confidential_app(&t).await;
    let app = t.get(&format!("/applications/{}", client.client_id)).await;
    let object = id(&app.body);
    let joni = user(&t, "joni@contoso.com").await;
    let sales = create_group(&t, "Sales").await;
    let page = format!("/admin/applications/{object}");
    let admin = crate::portal::admin(&t).await;
    let assigned = || async {
        t.get(&format!("/servicePrincipals/{object}/appRoleAssignedTo"))
            .await
            .body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["principalId"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    let saved = admin
        .post(
            &page,
            &[
                ("displayName", "Contoso Portal"),
                ("web.redirectUris", REDIRECT),
                ("appRoleAssignmentRequired", "true"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let read = t.get(&format!("/applications/{object}")).await;
    assert_eq!(read.body["appRoleAssignmentRequired"], true);

    let default_access = "00000000-0000-0000-0000-000000000000";
    for principal in ["joni@contoso.com", "Sales"] {
        let added = admin
            .post(
                &format!("{page}/assignments"),
                &[("principal", principal), ("appRoleId", default_access)],
            )
            .await;
        assert_eq!(
            added.status,
            StatusCode::SEE_OTHER,
            "{principal}: {}",
            added.html
        );
    }
    let mut found = assigned().await;
    found.sort();
    let mut expected = vec![joni.clone(), sales.clone()];
    expected.sort();
    assert_eq!(found, expected);
    let shown = admin.get(&page).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown.html.contains("Assignment required: only"),
        "{}",
        shown.html
    );
    assert!(shown.html.contains(">joni<") && shown.html.contains(">Sales<"));

    // Someone who is neither a user nor a group: answered beside the field, nothing added.
    let unknown = admin
        .post(
            &format!("{page}/assignments"),
            &[
                ("principal", "nobody@contoso.com"),
                ("appRoleId", default_access),
            ],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.html.contains("No user signs in as"),
        "{}",
        unknown.html
    );
    assert_eq!(assigned().await.len(), 2);

    // A Helpdesk Administrator reads the page but cannot assign or remove.
    let (_, helpdesk) =
        crate::portal::person(&t, "helpdesk@contoso.com", &[HELPDESK_ADMINISTRATOR]).await;
    let seen = helpdesk.get(&page).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.html.contains("id=\"add-assignment\""));
    let refused = helpdesk
        .post(
            &format!("{page}/assignments"),
            &[
                ("principal", "helpdesk@contoso.com"),
                ("appRoleId", default_access),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let listed = t
        .get(&format!("/servicePrincipals/{object}/appRoleAssignedTo"))
        .await;
    let joni_assignment = listed.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["principalId"] == joni)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let remove = format!("{page}/assignments/{joni_assignment}/remove");
    assert_eq!(
        helpdesk.post(&remove, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(assigned().await.len(), 2);

    // Removing asks first, then removes.
    let confirm = admin.get(&remove).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.html.contains("joni (Default access)"),
        "{}",
        confirm.html
    );
    assert_eq!(assigned().await.len(), 2);
    let removed = admin.post(&remove, &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.html);
    assert_eq!(assigned().await, vec![sales]);
    t.stop().await;
}
