//! The analyzer online: `POST …/conditionalAccess/analyze` on the tenant's policies or a
//! candidate set, against the real directory (its people and the methods they can present),
//! and the portal's Analysis page.

use portcullis_testkit::fixtures::{
    self, PHISHING_RESISTANT, app_with_permissions, create_policy, id,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};

use crate::portal::{admin, person};

const ANALYZE: &str = "/identity/conditionalAccess/analyze";
const POLICIES: &str = "/identity/conditionalAccess/policies";
const ADMIN_PORTAL: &str = "005cbd19-3de0-4238-a5c6-97d038f6c66d";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";

fn everyone_everywhere(name: &str, state: &str, grant: Value) -> Value {
    json!({
        "displayName": name,
        "state": state,
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "grantControls": grant,
    })
}

fn block() -> Value {
    json!({"operator": "OR", "builtInControls": ["block"]})
}

fn findings(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["findings"].as_array().expect("findings").clone()
}

async fn stored_policies(t: &TestServer) -> usize {
    t.get(POLICIES).await.body["value"]
        .as_array()
        .unwrap()
        .len()
}

/// The bootstrap administrator's user id.
async fn admin_id(t: &TestServer) -> String {
    let upn = t.bootstrap.admin_user_principal_name.clone();
    let r = t.get(&format!("/users/{upn}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    id(&r.body)
}

#[tokio::test]
async fn a_candidate_blocking_everyone_is_a_proved_lockout_and_nothing_is_stored() {
    let t = TestServer::start().await;
    let admin = admin_id(&t).await;
    let candidate =
        json!({"policies": [everyone_everywhere("Block everyone", "enabled", block())]});
    let reply = t.post(ANALYZE, candidate).await;
    let found = findings(&reply);
    assert_eq!(reply.body["policies"], 1, "the candidate, not the tenant's");
    let lockout = found
        .iter()
        .find(|f| f["kind"] == "lockout" && f["witness"]["app"] == ADMIN_PORTAL)
        .unwrap_or_else(|| panic!("no lockout of the Admin Portal: {found:?}"));
    assert_eq!(lockout["severity"], "high");
    assert_eq!(lockout["decision"], "block");
    assert_eq!(lockout["witness"]["user"], admin.as_str(), "a real person");
    assert_eq!(
        lockout["witness"]["roles"],
        json!([GLOBAL_ADMINISTRATOR]),
        "with the roles the directory gives them"
    );
    assert_eq!(lockout["policies"][0]["displayName"], "Block everyone");
    assert!(
        found.iter().any(|f| f["kind"] == "unexcludedBlock"),
        "{found:?}"
    );
    assert_eq!(stored_policies(&t).await, 0, "nothing was stored");

    // No body at all, or an empty object: the tenant's policies, none yet.
    let empty = t
        .graph_raw(
            reqwest::Method::POST,
            ANALYZE,
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(empty.body["policies"], 0);
    assert!(findings(&empty).iter().all(|f| f["kind"] != "lockout"));
    let object = t.post(ANALYZE, json!({})).await;
    assert_eq!(object.body["policies"], 0, "{:?}", object.body);
    t.stop().await;
}

#[tokio::test]
async fn the_tenants_policies_are_judged_with_the_methods_people_really_have() {
    let t = TestServer::start().await;
    // The administrator registers a passkey (with the first-start pass, which that uses up).
    fixtures::allow_test_authenticator(&t).await;
    let session = fixtures::admin_session(&t).await;
    portcullis_testkit::fixtures::register_test_passkey(&t, &session, "Laptop").await;
    // MFA for everyone, phishing-resistant MFA for Global Administrators: a harmless set for a
    // tenant whose administrator has a passkey.
    create_policy(
        &t,
        everyone_everywhere(
            "MFA for everyone",
            "enabled",
            json!({"operator": "OR", "builtInControls": ["mfa"]}),
        ),
    )
    .await;
    create_policy(
        &t,
        json!({
            "displayName": "Phishing-resistant MFA for administrators",
            "state": "enabled",
            "conditions": {
                "users": {"includeRoles": [GLOBAL_ADMINISTRATOR]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["all"],
            },
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}},
        }),
    )
    .await;
    let reply = t.post(ANALYZE, json!({})).await;
    let found = findings(&reply);
    assert_eq!(reply.body["policies"], 2, "the tenant's policies");
    let high: Vec<&Value> = found.iter().filter(|f| f["severity"] == "high").collect();
    assert!(high.is_empty(), "nothing high: {high:?}");

    // Someone who has registered nothing cannot meet it: the same set locks them out.
    let dana = fixtures::user(&t, "dana@contoso.com").await;
    let found = findings(&t.post(ANALYZE, json!({})).await);
    let lockout = found
        .iter()
        .find(|f| f["kind"] == "lockout")
        .unwrap_or_else(|| panic!("no lockout for Dana: {found:?}"));
    assert_eq!(lockout["witness"]["user"], dana.as_str());
    assert_eq!(lockout["witness"]["methods"], json!([]));
    assert_eq!(stored_policies(&t).await, 2);
    t.stop().await;
}

#[tokio::test]
async fn a_malformed_candidate_is_refused_naming_the_member_at_fault() {
    let t = TestServer::start().await;
    let conditions = json!({
        "users": {"includeUsers": ["All"]},
        "applications": {"includeApplications": ["All"]},
    });
    for (body, field) in [
        (
            json!({"policies": [{"displayName": "x", "state": "sometimes", "conditions": conditions}]}),
            "policies[0].state",
        ),
        (
            json!({"policies": [{"displayName": " ", "state": "enabled", "conditions": conditions}]}),
            "policies[0].displayName",
        ),
        (json!({"policies": {}}), "policies"),
        (json!({"days": 7}), "days"),
    ] {
        let r = t.post(ANALYZE, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(field), "{body}: {:?}", r.body);
    }
    let r = t
        .graph_raw(
            reqwest::Method::POST,
            ANALYZE,
            "application/json",
            b"not json".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("body"));
    t.stop().await;
}

#[tokio::test]
async fn only_callers_that_read_policies_and_peoples_methods_may_analyse() {
    let t = TestServer::start().await;
    let (_, users_only) = app_with_permissions(&t, "Users only", &["User.Read.All"]).await;
    let refused = t
        .graph_as(&users_only, reqwest::Method::POST, ANALYZE, Some(json!({})))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    // Policies alone are not enough: a witness is a real person with their methods.
    let (_, policies_only) = app_with_permissions(&t, "Policy reader", &["Policy.Read.All"]).await;
    let refused = t
        .graph_as(
            &policies_only,
            reqwest::Method::POST,
            ANALYZE,
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let (_, methods_only) =
        app_with_permissions(&t, "Methods reader", &["UserAuthenticationMethod.Read.All"]).await;
    let refused = t
        .graph_as(
            &methods_only,
            reqwest::Method::POST,
            ANALYZE,
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let (_, reader) = app_with_permissions(
        &t,
        "Analyst",
        &["Policy.Read.All", "UserAuthenticationMethod.Read.All"],
    )
    .await;
    let allowed = t
        .graph_as(&reader, reqwest::Method::POST, ANALYZE, Some(json!({})))
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{:?}", allowed.body);
    t.stop().await;
}

#[tokio::test]
async fn the_analysis_page_lists_findings_by_severity_with_their_proof() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    // A fresh tenant: nothing asks for more than a password, so there are findings already.
    let fresh = browser.get("/admin/conditional-access/analysis").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.html);
    assert!(fresh.html.contains("aria-current=\"page\">Analysis</a>"));
    assert!(!fresh.html.contains("id=\"analysis-empty\""));
    assert!(
        fresh.html.contains("a password alone reaches"),
        "{}",
        fresh.html
    );
    assert!(
        !fresh
            .html
            .contains("Block without an emergency-access exclusion")
    );

    // A report-only block on everyone never trips the guard, and is still a block without an
    // emergency-access exclusion.
    let stored = create_policy(
        &t,
        everyone_everywhere(
            "Block everyone (report-only)",
            "enabledForReportingButNotEnforced",
            block(),
        ),
    )
    .await;
    let policy = id(&stored);
    let page = browser.get("/admin/conditional-access/analysis").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let html = &page.html;
    assert!(
        html.contains("Block without an emergency-access exclusion"),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<a href=\"/admin/conditional-access/policies/{policy}\">Block everyone (report-only)</a>"
    )));
    let upn = t.bootstrap.admin_user_principal_name.clone();
    assert!(
        html.contains(&format!("<dd>{upn}</dd>")),
        "the witness by name"
    );
    assert!(html.contains("Try it in What If"));
    let link = html
        .split("Try it in What If")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .unwrap_or_default();
    // The address as the browser reads the attribute (the template escapes it).
    let link = link
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(
        link.starts_with(&format!(
            "/admin/conditional-access/what-if?user={}&target=applications&app=",
            upn.replace('@', "%40")
        )),
        "{link}"
    );
    assert!(html.contains("id=\"count-high\""));

    // Reading policies is what it takes: a Reports Reader is refused.
    let (_, reader) = person(&t, "reader@contoso.com", &[REPORTS_READER]).await;
    let refused = reader.get("/admin/conditional-access/analysis").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    t.stop().await;
}
