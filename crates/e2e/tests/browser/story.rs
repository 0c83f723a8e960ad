//! The story's tenant, set up through the admin API as an administrator would.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::harness::Browser;

/// Phishing-resistant MFA, the built-in authentication strength.
pub const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";
/// The model (AAGUID) Chromium's virtual CTAP2 authenticator reports: the allow-list holds it,
/// as a production tenant's holds Microsoft Authenticator's.
pub const VIRTUAL_AUTHENTICATOR_AAGUID: &str = "01020304-0506-0708-0102-030405060708";
const FIDO2: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

pub async fn user(t: &TestServer, upn: &str, name: &str) -> Value {
    let r = t
        .post(
            "/users",
            json!({"userPrincipalName": upn, "displayName": name}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// A user who holds Global Administrator: the portal's administrator in most browser tests.
pub async fn global_administrator(t: &TestServer, upn: &str, name: &str) -> Value {
    let person = user(t, upn, name).await;
    let r = t
        .post(
            "/roleManagement/directory/roleAssignments",
            json!({
                "principalId": id(&person),
                "roleDefinitionId": portcullis_core::directory::roles::GLOBAL_ADMINISTRATOR.to_string(),
                "directoryScopeId": "/"
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    person
}

/// A one-time Temporary Access Pass for the user, as the administrator reads it to them.
pub async fn issue_pass(t: &TestServer, user_id: &str) -> String {
    let pass = t
        .post(
            &format!("/users/{user_id}/authentication/temporaryAccessPassMethods"),
            json!({"isUsableOnce": true}),
        )
        .await;
    assert_eq!(pass.status, StatusCode::CREATED, "{:?}", pass.body);
    pass.body["temporaryAccessPass"]
        .as_str()
        .expect("the pass")
        .to_string()
}

/// Passkeys may be registered by their owners; `allow_list` restricts the models.
pub async fn passkey_policy(t: &TestServer, allow_list: Option<&str>) {
    let restrictions = match allow_list {
        Some(aaguid) => {
            json!({"isEnforced": true, "enforcementType": "allow", "aaGuids": [aaguid]})
        }
        None => json!({"isEnforced": false, "enforcementType": "block", "aaGuids": []}),
    };
    let r = t
        .patch(
            FIDO2,
            json!({"isSelfServiceRegistrationAllowed": true, "keyRestrictions": restrictions}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

/// On the sign-in page: types the username, chooses "Temporary Access Pass", types the pass and
/// signs in, saving a screenshot of the choice and of the pass typed in.
pub async fn sign_in_with_pass(b: &Browser, upn: &str, pass: &str) {
    b.until_panel("identify").await;
    b.fill("Email or username", upn).await;
    b.click("Next").await;
    b.until_panel("first-factor").await;
    b.screenshot("choose-how").await;
    b.click("Temporary Access Pass").await;
    b.until_panel("tap").await;
    b.fill("Temporary Access Pass", pass).await;
    b.screenshot("temporary-access-pass").await;
    b.click("Sign in").await;
}

pub struct Story {
    pub joni: Value,
    pub app_id: String,
}

/// A group holding `members`.
pub async fn group(t: &TestServer, name: &str, members: &[&Value]) -> Value {
    let group = t.post("/groups", json!({"displayName": name})).await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    for member in members {
        let added = t
            .post(
                &format!("/groups/{}/members/$ref", id(&group.body)),
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", id(member))}),
            )
            .await;
        assert!(added.status.is_success(), "{:?}", added.body);
    }
    group.body
}

/// The application people sign in to: a public client, with the test's redirect URI if given.
/// Returns its appId (the client id).
pub async fn contoso_portal(t: &TestServer, redirect_uri: Option<&str>) -> String {
    let mut app = json!({"displayName": "Contoso Portal", "isFallbackPublicClient": true});
    if let Some(uri) = redirect_uri {
        app["publicClient"] = json!({"redirectUris": [uri]});
    }
    let app = t.post("/applications", app).await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    app.body["appId"].as_str().expect("an appId").to_string()
}

/// A Conditional Access policy, created through the admin API.
pub async fn policy(t: &TestServer, policy: Value) -> Value {
    let r = t.post("/identity/conditionalAccess/policies", policy).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// "Passkey test: unsupported platforms": the group's members are blocked everywhere but on
/// Windows.
pub fn unsupported_platforms(group: &Value) -> Value {
    json!({
        "displayName": "Passkey test: unsupported platforms",
        "state": "enabled",
        "conditions": {
            "users": {"includeGroups": [id(group)]},
            "applications": {"includeApplications": ["All"]},
            "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows"]},
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    })
}

/// DESIGN.md's tenant: Joni in the admins group, the application she signs in to, the two
/// policies, and the passkey policy's allow-list.
pub async fn tenant(t: &TestServer, redirect_uri: Option<&str>) -> Story {
    let joni = user(t, "joni@contoso.com", "Joni Sherman").await;
    let admins = group(t, "Admins", &[&joni]).await;
    let app_id = contoso_portal(t, redirect_uri).await;
    policy(
        t,
        json!({
            "displayName": "Passkey test: enforcement",
            "state": "enabled",
            "conditions": {
                "users": {"includeGroups": [id(&admins)]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}
        }),
    )
    .await;
    policy(t, unsupported_platforms(&admins)).await;
    passkey_policy(t, Some(VIRTUAL_AUTHENTICATOR_AAGUID)).await;
    Story { joni, app_id }
}
