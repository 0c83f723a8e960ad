//! Issue 21: the audit log tells about people and about failures. An administrative operation
//! refused for a reason about its target (a conflict, the lockout guard) is an audit entry with
//! result `failure` and the reason, and nothing else is written; a malformed request and a
//! caller without the permission write nothing; a burst of refusals does not write an entry
//! each. The entries about one object are found with Graph's
//! `targetResources/any(t: t/id eq '…')`, other lambda forms are refused with a 400, and the
//! portal shows them on the person's page.

use portcullis_testkit::fixtures::{
    add_member, admin_session, app_with_permissions, create_group, create_user, person_with_roles,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::portal::Browser;

const AUDITS: &str = "/auditLogs/directoryAudits";
const POLICIES: &str = "/identity/conditionalAccess/policies";

fn encoded(text: &str) -> String {
    text.replace(' ', "%20").replace('\'', "%27")
}

/// Every audit entry `filter` matches (up to 999).
async fn audits(t: &TestServer, filter: &str) -> Vec<Value> {
    let r = t
        .get(&format!("{AUDITS}?$top=999&$filter={}", encoded(filter)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{filter}: {:?}", r.body);
    r.body["value"].as_array().unwrap().clone()
}

async fn failures(t: &TestServer) -> Vec<Value> {
    audits(t, "result eq 'failure'").await
}

fn one<'a>(entries: &'a [Value], activity: &str) -> &'a Value {
    let found: Vec<&Value> = entries
        .iter()
        .filter(|e| e["activityDisplayName"] == activity)
        .collect();
    assert_eq!(found.len(), 1, "one '{activity}' in {entries:#?}");
    found[0]
}

#[tokio::test]
async fn a_conflict_and_a_lockout_refusal_are_failures_with_their_reasons_and_bad_input_is_not() {
    let t = TestServer::start().await;
    assert!(failures(&t).await.is_empty());

    // 409: a userPrincipalName taken. Refused by the database at the commit.
    let grady = create_user(&t, "grady@contoso.com", "Grady Archie").await;
    let twin = t
        .post(
            "/users",
            json!({"userPrincipalName": "GRADY@contoso.com", "displayName": "Grady's twin"}),
        )
        .await;
    assert_eq!(twin.status, StatusCode::CONFLICT, "{:?}", twin.body);
    let found = failures(&t).await;
    let entry = one(&found, "Add user");
    assert_eq!(entry["result"], "failure");
    let reason = entry["resultReason"].as_str().unwrap();
    assert!(reason.contains("userPrincipalName"), "{reason}");
    assert!(
        reason.contains("Request_MultipleObjectsWithSameKeyValue"),
        "{reason}"
    );
    // Whoever called: the test's administrator token stands for the automation application.
    assert!(!entry["initiatedBy"]["app"].is_null(), "{entry:?}");
    assert_eq!(entry["targetResources"][0]["displayName"], "Grady's twin");
    // Nothing else: no second user.
    let named = t
        .get("/users?$filter=userPrincipalName%20eq%20%27grady@contoso.com%27")
        .await;
    assert_eq!(named.body["value"].as_array().unwrap().len(), 1);

    // 409: a member already present. Refused before the commit.
    let sales = create_group(&t, "Sales").await;
    add_member(&t, &sales, &grady).await;
    let again = t
        .post(
            &format!("/groups/{sales}/members/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{grady}")}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    let found = failures(&t).await;
    let entry = one(&found, "Add member to group");
    let reason = entry["resultReason"].as_str().unwrap();
    assert!(reason.contains("already a member of 'Sales'"), "{reason}");

    // 409: the lockout guard refuses a block on everyone.
    let block = json!({
        "displayName": "Block everyone",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    });
    let refused = t.post(POLICIES, block).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "policyWouldLockOut");
    let found = failures(&t).await;
    let entry = one(&found, "Add conditional access policy");
    assert_eq!(entry["category"], "Policy");
    assert_eq!(entry["targetResources"][0]["displayName"], "Block everyone");
    let reason = entry["resultReason"].as_str().unwrap();
    assert!(
        reason.starts_with("Refused by the lockout guard"),
        "{reason}"
    );
    assert!(
        t.get(POLICIES).await.body["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(found.len(), 3);

    // 400: malformed input is not an attempt on anything; nothing is recorded.
    let everything_before = audits(&t, "activityDateTime ge 2000-01-01T00:00:00Z")
        .await
        .len();
    for body in [
        json!({"userPrincipalName": "not-a-name", "displayName": "X"}),
        json!({"userPrincipalName": "x@contoso.com"}),
        json!({"userPrincipalName": "x@contoso.com", "displayName": "X", "shoeSize": 9}),
    ] {
        let bad = t.post("/users", body).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    }
    let bad = t
        .patch(
            &format!("/users/{grady}"),
            json!({"accountEnabled": "maybe"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    // 401 and 403 at the edge: no caller, or a caller without the permission.
    let anonymous = t
        .http
        .post(format!("{}/graph/v1.0/users", t.url))
        .json(&json!({"userPrincipalName": "grady@contoso.com", "displayName": "G"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (_, reader) = app_with_permissions(&t, "Reader", &["User.Read.All"]).await;
    let forbidden = t
        .graph_as(
            &reader,
            reqwest::Method::POST,
            "/users",
            Some(json!({"userPrincipalName": "grady@contoso.com", "displayName": "G"})),
        )
        .await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        forbidden.body
    );
    // Registering the reader application wrote its own entries (successes); no failure was
    // added by any of the refused requests.
    assert!(
        audits(&t, "activityDateTime ge 2000-01-01T00:00:00Z")
            .await
            .len()
            > everything_before
    );
    assert_eq!(failures(&t).await.len(), 3);
    t.stop().await;
}

#[tokio::test]
async fn a_burst_of_refusals_does_not_write_an_entry_each() {
    let t = TestServer::start().await;
    let grady = create_user(&t, "grady@contoso.com", "Grady Archie").await;
    let sales = create_group(&t, "Sales").await;
    add_member(&t, &sales, &grady).await;
    let token = t.admin_token().await;
    let body =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{grady}")});
    // A burst, not a sequence: 50 refused calls in flight at a time, so the budget is taken
    // by callers racing for it.
    let url = format!("{}/graph/v1.0/groups/{sales}/members/$ref", t.url);
    for _ in 0..20 {
        let wave: Vec<_> = (0..50)
            .map(|_| {
                let request = t.http.post(&url).bearer_auth(&token).json(&body);
                tokio::spawn(async move { request.send().await.expect("sent").status() })
            })
            .collect();
        for call in wave {
            assert_eq!(call.await.unwrap(), StatusCode::CONFLICT);
        }
    }
    let recorded = failures(&t).await.len();
    // One minute's budget per initiator (20), and one more minute's should the burst take longer.
    assert!(
        (1..=40).contains(&recorded),
        "{recorded} entries for 1,000 refusals"
    );
    // Later, the next failure recorded says how many were left out.
    t.clock.advance(time::Duration::minutes(2));
    let r = t
        .graph_as(
            &token,
            reqwest::Method::POST,
            &format!("/groups/{sales}/members/$ref"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let all = failures(&t).await;
    assert_eq!(all.len(), recorded + 1);
    let newest = &all[0];
    assert_eq!(newest["additionalDetails"][0]["key"], "suppressedFailures");
    let left_out: usize = newest["additionalDetails"][0]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(left_out + recorded, 1000);
    t.stop().await;
}

#[tokio::test]
async fn entries_about_an_object_are_found_by_target_and_other_lambdas_are_refused() {
    let t = TestServer::start().await;
    let grady = create_user(&t, "grady@contoso.com", "Grady Archie").await;
    let adele = create_user(&t, "adele@contoso.com", "Adele Vance").await;
    let sales = create_group(&t, "Sales").await;
    add_member(&t, &sales, &grady).await;
    let disabled = t
        .patch(&format!("/users/{grady}"), json!({"accountEnabled": false}))
        .await;
    assert!(disabled.status.is_success(), "{:?}", disabled.body);

    let about = |who: String| {
        let t = &t;
        async move {
            audits(t, &format!("targetResources/any(t: t/id eq '{who}')"))
                .await
                .iter()
                .map(|e| e["activityDisplayName"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let grady_entries = about(grady.clone()).await;
    assert_eq!(grady_entries.len(), 3, "{grady_entries:?}");
    assert!(grady_entries.contains(&"Add user".to_string()));
    assert!(grady_entries.contains(&"Add member to group".to_string()));
    assert_eq!(about(adele.clone()).await, vec!["Add user"]);
    assert_eq!(about(sales.to_uppercase()).await.len(), 2, "ignoring case");
    // With the other filters.
    let both = audits(
        &t,
        &format!("targetResources/any(x:x/id eq '{grady}') and result eq 'success'"),
    )
    .await;
    assert_eq!(both.len(), 3);

    for filter in [
        format!("targetResources/all(t: t/id eq '{grady}')"),
        format!("targetResources/any(t: t/id ne '{grady}')"),
        "targetResources/any(t: t/displayName eq 'Grady Archie')".to_string(),
        "targetResources/any()".to_string(),
        format!("targetResources/any(t: t/id eq '{grady}' or t/id eq '{adele}')"),
        "additionalDetails/any(d: d/key eq 'x')".to_string(),
        format!("targetResources/id eq '{grady}'"),
    ] {
        let r = t
            .get(&format!("{AUDITS}?$filter={}", encoded(&filter)))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{filter}: {:?}", r.body);
        assert_eq!(
            r.body["error"]["code"], "Request_UnsupportedQuery",
            "{filter}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn a_persons_page_shows_the_entries_about_them_and_their_sign_ins_to_those_who_read_logs() {
    let t = TestServer::start().await;
    let grady = create_user(&t, "grady@contoso.com", "Grady Archie").await;
    let twin = t
        .post(
            "/users",
            json!({"userPrincipalName": "grady@contoso.com", "displayName": "Twin"}),
        )
        .await;
    assert_eq!(twin.status, StatusCode::CONFLICT);
    t.patch(
        &format!("/users/{grady}"),
        json!({"displayName": "Grady A."}),
    )
    .await;
    let admin = Browser::new(&t, Some(admin_session(&t).await));
    let page = admin.get(&format!("/admin/users/{grady}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("id=\"audit-about\""), "{}", page.html);
    assert!(page.html.contains("Update user"));
    assert!(page.html.contains(&format!("audit-logs?target={grady}")));
    assert!(page.html.contains("id=\"recent-sign-ins\""));
    assert!(page.html.contains(&format!("sign-ins?userId={grady}")));

    // The audit log filtered to him names him, not an id; failures are marked.
    let filtered = admin
        .get(&format!("/admin/audit-logs?target={grady}"))
        .await;
    assert_eq!(filtered.status, StatusCode::OK);
    assert!(
        filtered
            .html
            .contains("Entries about Grady A. (grady@contoso.com)"),
        "{}",
        filtered.html
    );
    let failed = admin.get("/admin/audit-logs?result=failure").await;
    assert!(failed.html.contains("state-bad"));
    assert!(!failed.html.contains("Update user"));
    // A result that is neither is a clear 400 beside the field.
    let bad = admin.get("/admin/audit-logs?result=maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("Choose success or failure."));
    let bad = admin.get("/admin/sign-ins?userId=nobody").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Every role that reads people but not the logs (the Helpdesk, Groups, Application,
    // Privileged Role and Authentication Policy Administrators): no sections, and the log
    // refuses.
    use portcullis_core::directory::authz::perm;
    use portcullis_core::directory::roles::BUILT_IN_ROLES;
    let readers_of_people_only: Vec<_> = BUILT_IN_ROLES
        .iter()
        .filter(|r| {
            r.permissions.contains(&perm::DIRECTORY_READ_ALL)
                && !r.permissions.contains(&perm::AUDIT_LOG_READ_ALL)
        })
        .collect();
    assert!(
        readers_of_people_only.len() >= 5,
        "{}",
        readers_of_people_only.len()
    );
    for (n, role) in readers_of_people_only.into_iter().enumerate() {
        let (_, session) = person_with_roles(
            &t,
            &format!("reader{n}@contoso.com"),
            role.display_name,
            &[&role.template_id.to_string()],
        )
        .await;
        let reader = Browser::new(&t, Some(session));
        let page = reader.get(&format!("/admin/users/{grady}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", role.display_name);
        assert!(
            !page.html.contains("id=\"audit-about\""),
            "{}",
            role.display_name
        );
        assert!(
            !page.html.contains("id=\"recent-sign-ins\""),
            "{}",
            role.display_name
        );
        let refused = reader
            .get(&format!("/admin/audit-logs?target={grady}"))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{}",
            role.display_name
        );
    }
    t.stop().await;
}
