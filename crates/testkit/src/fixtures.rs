//! # Fixtures — the setup server tests share, made one way
//!
//! This module owns what tests set up again and again before they check anything: people
//! (with their roles and group memberships), Temporary Access Passes, Conditional Access
//! policies and the tenant of DESIGN.md's story, and sessions — signing in with a pass, reading
//! the `portcullis_session` cookie, and calling the JSON endpoints as the pages' script does.
//!
//! Everything goes through HTTP, as an administrator (the admin API with the bootstrap
//! application's token) or a person's browser would; nothing here reaches into the server.
//! Each fixture asserts that its own requests succeeded, so a failure in setup names the step
//! that failed rather than surfacing later as a puzzling assertion.

use serde_json::{Value, json};

use crate::{Reply, StatusCode, TestServer};

/// Edge on Windows: the platform DESIGN.md's platform policy leaves alone.
pub const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
/// Chrome on Android: a platform DESIGN.md's platform policy blocks.
pub const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

/// The built-in authentication strength "Phishing-resistant MFA".
pub const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";

/// The passkey (FIDO2) method configuration, below `/graph/v1.0`.
pub const FIDO2_CONFIGURATION: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "portcullis_session";

/// A Graph object's `id`.
pub fn id(object: &Value) -> String {
    object["id"].as_str().expect("an id").to_string()
}

// ---------------------------------------------------------------------------------------------
// The directory, through the admin API

/// Creates a user; their id.
pub async fn create_user(t: &TestServer, upn: &str, display_name: &str) -> String {
    let r = t
        .post(
            "/users",
            json!({"userPrincipalName": upn, "displayName": display_name}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    id(&r.body)
}

/// Creates a user named after the part of `upn` before the `@`; their id.
pub async fn user(t: &TestServer, upn: &str) -> String {
    let name = upn.split('@').next().unwrap_or(upn);
    create_user(t, upn, name).await
}

/// Creates a security group; its id.
pub async fn create_group(t: &TestServer, display_name: &str) -> String {
    let r = t
        .post("/groups", json!({"displayName": display_name}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    id(&r.body)
}

/// Adds `member` (a user or group id) to `group`.
pub async fn add_member(t: &TestServer, group: &str, member: &str) {
    let r = t
        .post(
            &format!("/groups/{group}/members/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

/// Assigns the built-in role `role` (its template id) to `principal`, tenant-wide.
pub async fn assign_role(t: &TestServer, principal: &str, role: &str) {
    let r = t
        .post(
            "/roleManagement/directory/roleAssignments",
            json!({"principalId": principal, "roleDefinitionId": role, "directoryScopeId": "/"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// Creates a security group that may hold directory roles (`isAssignableToRole`); its id.
pub async fn create_role_assignable_group(t: &TestServer, display_name: &str) -> String {
    let r = t
        .post(
            "/groups",
            json!({"displayName": display_name, "isAssignableToRole": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["isAssignableToRole"], true);
    id(&r.body)
}

/// Registers a confidential application holding `permissions`, gives it a secret and signs it
/// in with client credentials: its object id and an access token.
pub async fn app_with_permissions(
    t: &TestServer,
    display_name: &str,
    permissions: &[&str],
) -> (String, String) {
    let app = t
        .post(
            "/applications",
            json!({"displayName": display_name, "apiPermissions": permissions}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let object_id = id(&app.body);
    let secret = t
        .post(&format!("/applications/{object_id}/addPassword"), json!({}))
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    let token = t
        .client_token(
            app.body["appId"].as_str().expect("an appId"),
            secret.body["secretText"].as_str().expect("a secret"),
        )
        .await
        .expect("a client credentials token");
    (object_id, token)
}

/// Creates a Conditional Access policy from its Graph JSON; the created policy.
pub async fn create_policy(t: &TestServer, body: Value) -> Value {
    let r = t.post("/identity/conditionalAccess/policies", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

// ---------------------------------------------------------------------------------------------
// Temporary Access Passes

/// Issues `user_id` a Temporary Access Pass with `body` (`{}` takes the method policy's
/// defaults); the created method, the pass itself in `temporaryAccessPass`.
pub async fn issue_pass_method(t: &TestServer, user_id: &str, body: Value) -> Value {
    let r = t
        .post(
            &format!("/users/{user_id}/authentication/temporaryAccessPassMethods"),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// Issues `user_id` a Temporary Access Pass with `body`; the pass.
pub async fn issue_pass(t: &TestServer, user_id: &str, body: Value) -> String {
    issue_pass_method(t, user_id, body).await["temporaryAccessPass"]
        .as_str()
        .expect("the pass is shown when it is created")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// The session token a reply sets in its cookie, if it sets one. A session cookie must be
/// HttpOnly and SameSite=Lax; one that is not fails the test here.
pub fn session_token(reply: &Reply) -> Option<String> {
    let cookie = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))?;
    let value = cookie
        .split(';')
        .next()?
        .strip_prefix(&format!("{SESSION_COOKIE}="))?;
    if value.is_empty() {
        return None;
    }
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    Some(value.to_string())
}

/// A JSON request as the pages' script makes it: from user agent `ua` when given, with the
/// session cookie when given. A body that is not JSON reads as `null`.
pub async fn call(
    t: &TestServer,
    ua: Option<&str>,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = t.http.request(method, format!("{}{path}", t.url));
    if let Some(ua) = ua {
        request = request.header("user-agent", ua);
    }
    if let Some(token) = token {
        request = request.header("cookie", format!("{SESSION_COOKIE}={token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Signs `upn` in at `/auth/tap` with a pass issued with `pass_body`; the session token.
pub async fn pass_session(t: &TestServer, user_id: &str, upn: &str, pass_body: Value) -> String {
    let pass = issue_pass(t, user_id, pass_body).await;
    let (reply, _) = t.sign_in_with_pass(&t.url, upn, &pass).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    session_token(&reply).expect("a session cookie")
}

/// The bootstrap administrator (Global Administrator), signed in with their first-start pass;
/// the session token.
pub async fn admin_session(t: &TestServer) -> String {
    let upn = t.bootstrap.admin_user_principal_name.clone();
    let (reply, _) = t.sign_in_with_pass(&t.url, &upn, &t.bootstrap_pass).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    session_token(&reply).expect("a session cookie")
}

/// A new person who holds `roles`, signed in with a pass the admin API issued them with the
/// method policy's defaults: their id and session token.
pub async fn person_with_roles(
    t: &TestServer,
    upn: &str,
    display_name: &str,
    roles: &[&str],
) -> (String, String) {
    let id = create_user(t, upn, display_name).await;
    for role in roles {
        assign_role(t, &id, role).await;
    }
    let token = pass_session(t, &id, upn, json!({})).await;
    (id, token)
}

// ---------------------------------------------------------------------------------------------
// DESIGN.md's story

/// The tenant of DESIGN.md's story, as [`story_tenant`] makes it.
pub struct Story {
    /// Joni Sherman (`joni@contoso.com`), in the admins group, with no methods.
    pub joni: String,
    /// The "Admins" group.
    pub admins: String,
    /// "Passkey test: enforcement": all applications need `strength`.
    pub enforcement: Value,
    /// "Passkey test: unsupported platforms": every platform but Windows is blocked.
    pub platforms: Value,
}

/// DESIGN.md's tenant: Joni in an admins group, and the two policies for that group —
/// enforcement of `strength` (enabled) and the platform block in `block_state` (`enabled`,
/// `enabledForReportingButNotEnforced`, `disabled`).
pub async fn story_tenant(t: &TestServer, block_state: &str, strength: &str) -> Story {
    let joni = create_user(t, "joni@contoso.com", "Joni Sherman").await;
    let admins = create_group(t, "Admins").await;
    add_member(t, &admins, &joni).await;
    let enforcement = create_policy(
        t,
        json!({
            "displayName": "Passkey test: enforcement",
            "state": "enabled",
            "conditions": {
                "users": {"includeGroups": [admins]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": strength}}
        }),
    )
    .await;
    let platforms = create_policy(
        t,
        json!({
            "displayName": "Passkey test: unsupported platforms",
            "state": block_state,
            "conditions": {
                "users": {"includeGroups": [admins]},
                "applications": {"includeApplications": ["All"]},
                "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows"]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }),
    )
    .await;
    Story {
        joni,
        admins,
        enforcement,
        platforms,
    }
}

/// The passkey method policy of the story: self-service registration on, and passkeys
/// restricted to the test authenticator's model.
pub async fn allow_test_authenticator(t: &TestServer) {
    let r = t
        .patch(
            FIDO2_CONFIGURATION,
            json!({"isSelfServiceRegistrationAllowed": true,
                   "keyRestrictions": {"isEnforced": true, "enforcementType": "allow",
                                       "aaGuids": [crate::authenticator::TEST_AAGUID.to_string()]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

/// Registers a passkey of the test authenticator's model (none attestation) for the person
/// signed in with `session`, through the security-info JSON as the page does; the finishing
/// reply, asserted successful.
pub async fn register_test_passkey(t: &TestServer, session: &str, name: &str) -> Reply {
    use crate::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
    let options = call(
        t,
        None,
        Some(session),
        reqwest::Method::POST,
        "/my/passkeys/options",
        Some(json!({"device": "this"})),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    let mut authenticator = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let credential = authenticator.create(&options.body["options"]);
    let done = call(
        t,
        None,
        Some(session),
        reqwest::Method::POST,
        "/my/passkeys",
        Some(json!({"ceremonyId": options.body["ceremonyId"], "name": name, "credential": credential})),
    )
    .await;
    assert!(done.status.is_success(), "{:?}", done.body);
    done
}
