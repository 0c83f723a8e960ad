//! The policy editor's review shows what the analyzer finds about the policy with the change
//! made, before anything is saved, beside the diff, the guard and the impact. Someone who may
//! change policies but not read people's methods (which the analyzer's witnesses need) is told
//! the analyzer was not run, and the review still works. A review saves nothing.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::portal::{admin, person};

const CONDITIONAL_ACCESS_ADMINISTRATOR: &str = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9";

/// The editor's fields for a policy on the group, changed to block everyone.
fn block_everyone() -> Vec<(&'static str, String)> {
    vec![
        ("displayName", "Sales: require MFA".into()),
        ("state", "enabledForReportingButNotEnforced".into()),
        ("usersInclude", "all".into()),
        ("target", "applications".into()),
        ("appsInclude", "all".into()),
        ("platformsInclude", "all".into()),
        ("locationsInclude", "All".into()),
        ("grant", "block".into()),
        ("operator", "OR".into()),
        ("signInFrequencyInterval", "timeBased".into()),
        ("signInFrequencyUnit", "hours".into()),
        ("persistentBrowserMode", "never".into()),
        ("intent", "review".into()),
    ]
}

#[tokio::test]
async fn the_review_shows_the_analyzers_findings_before_saving() {
    let t = TestServer::start().await;
    let sales = t
        .post("/groups", json!({"displayName": "Sales"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({
                "displayName": "Sales: require MFA",
                "state": "enabledForReportingButNotEnforced",
                "conditions": {"users": {"includeGroups": [sales]},
                               "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("/identity/conditionalAccess/policies/{id}");
    let before = t.get(&path).await.body;
    let form = block_everyone();
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let browser = admin(&t).await;
    let page = browser
        .post(&format!("/admin/conditional-access/policies/{id}"), &fields)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"policy-diff\""), "{}", page.html);
    let analysis = &page.html[page
        .html
        .find("id=\"policy-analysis\"")
        .unwrap_or_else(|| panic!("no analysis in the review:\n{}", page.html))..];
    let analysis = &analysis[..analysis.find("</div>").unwrap()];
    // Blocking every user with nobody excluded: the analyzer says so, about this policy.
    assert!(
        analysis.contains("id=\"analysis-findings\"")
            && analysis.contains("Block without an emergency-access exclusion"),
        "{analysis}"
    );
    assert_eq!(t.get(&path).await.body, before, "a review saves nothing");

    // A Conditional Access Administrator may change the policy but not read people's methods:
    // the review says the analyzer was not run, and shows the rest.
    let (_, ca_admin) = person(&t, "ca@contoso.com", &[CONDITIONAL_ACCESS_ADMINISTRATOR]).await;
    let page = ca_admin
        .post(&format!("/admin/conditional-access/policies/{id}"), &fields)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"policy-diff\""));
    assert!(
        page.html.contains("The analyzer was not run"),
        "{}",
        page.html
    );
    assert_eq!(t.get(&path).await.body, before, "a review saves nothing");
    t.stop().await;
}
