//! The views an administrator reaches for, in the browser: who holds each role, a group's
//! members (direct and through nesting) and the groups it is in, a person's sign-ins and the
//! changes they made from their page, an audit entry opened to its old and new values, and the
//! sign-in log's location, device, seconds and failure reason with its CSV download.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id, issue_pass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sees_role_holders_groups_audit_details_and_the_sign_in_log() {
    let t = TestServer::start().await;
    let adele = story::global_administrator(&t, "adele@contoso.com", "Adele Vance").await;
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    let admins = story::group(&t, "Admins", &[&joni]).await;
    let staff = story::group(&t, "All staff", &[&admins]).await;
    // A policy changed once: its audit entry has the old and new values.
    let policy = story::policy(&t, story::unsupported_platforms(&admins)).await;
    let r = t
        .patch(
            &format!("/identity/conditionalAccess/policies/{}", id(&policy)),
            json!({"state": "disabled"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    // Joni signs in once, so the log has her.
    let joni_pass = issue_pass(&t, &id(&joni)).await;
    let (reply, _) = t
        .sign_in_with_pass(&t.url, "joni@contoso.com", &joni_pass)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let pass = issue_pass(&t, &id(&adele)).await;
    let b = Browser::start("views", &t.url, WINDOWS_UA).await;
    b.goto("/signin?returnTo=/admin").await;
    story::sign_in_with_pass(&b, "adele@contoso.com", &pass).await;
    b.until_path("/admin").await;

    // Roles: who holds Global Administrator (Adele, and the administrator the first start made).
    b.click_within("//nav[@aria-label='Admin portal']", "Roles")
        .await;
    b.until_path("/admin/roles").await;
    let roles = b.rows("roles-table").await;
    assert!(
        roles
            .iter()
            .any(|r| r.starts_with("Global Administrator") && r.trim_end().ends_with('2')),
        "{roles:?}"
    );
    b.open_row("roles-table", "Global Administrator").await;
    b.until_text("Assignments (2)").await;
    let holders = b.rows("role-holders").await;
    assert_eq!(holders.len(), 2, "{holders:?}");
    assert!(
        holders
            .iter()
            .any(|h| h.contains("Adele Vance") && h.contains("adele@contoso.com")),
        "{holders:?}"
    );
    b.screenshot("role-holders").await;

    // Groups: direct members counted, everyone through nesting, and what a group is in.
    b.goto(&format!("/admin/groups/{}", id(&staff))).await;
    b.until_text("All members, through nested groups").await;
    assert_eq!(b.text("#member-count").await, "1");
    assert_eq!(b.text("#all-member-count").await, "2");
    let everyone = b.rows("all-members-table").await;
    assert!(
        everyone.iter().any(|r| r.contains("Joni Sherman")),
        "{everyone:?}"
    );
    b.screenshot("group-all-members").await;
    b.goto(&format!("/admin/groups/{}", id(&admins))).await;
    b.until_text("Member of").await;
    assert_eq!(b.text("#member-of-list").await, "All staff");

    // Joni's page leads to her sign-ins.
    b.goto(&format!("/admin/users/{}", id(&joni))).await;
    b.click("Sign-ins").await;
    b.until_path("/admin/sign-ins").await;
    b.until_text("joni@contoso.com").await;
    let head = b
        .js("return [...document.querySelectorAll('#sign-ins-table thead th')].map(t => t.textContent.trim());")
        .await;
    for column in ["Date", "Failure reason", "Location", "Device", "IP address"] {
        assert!(
            head.as_array().unwrap().iter().any(|h| h == column),
            "{column} in {head}"
        );
    }
    let rows = b.rows("sign-ins-table").await;
    assert!(
        rows.iter().all(|r| r.contains("joni@contoso.com")),
        "{rows:?}"
    );
    // Seconds in the time the row shows (the UTC text is its tooltip).
    let title = b
        .js("return document.querySelector('#sign-ins-table tbody time').getAttribute('title');")
        .await;
    let title = title.as_str().unwrap_or_default();
    assert_eq!(title.len(), "2026-03-01 09:30:12 UTC".len(), "{title}");
    b.screenshot("sign-ins-columns").await;
    let csv = b
        .js("return fetch(document.getElementById('download-csv').href).then(r => r.text());")
        .await;
    let csv = csv.as_str().unwrap_or_default();
    assert!(csv.starts_with("\"Date (UTC)\""), "{csv}");
    assert!(csv.contains("\"joni@contoso.com\""), "{csv}");
    assert!(
        !csv.contains("adele@contoso.com"),
        "the page's filter applies: {csv}"
    );

    // The changes Adele made are a link from her page; the policy change opens to its values.
    b.goto(&format!("/admin/users/{}", id(&adele))).await;
    b.click("Changes this person made").await;
    b.until_path("/admin/audit-logs").await;
    b.until_text("Changes made by one person").await;
    b.goto("/admin/audit-logs?activity=Update%20conditional")
        .await;
    b.until(
        "the policy update in the audit log",
        "document.querySelectorAll('#audits-table tbody a').length > 0",
    )
    .await;
    b.open_row("audits-table", "Update conditional").await;
    b.until(
        "the modified properties",
        "document.querySelector('.modified-properties')",
    )
    .await;
    let modified = b.text(".modified-properties").await;
    assert!(
        modified.contains("enabled") && modified.contains("disabled"),
        "{modified}"
    );
    b.screenshot("audit-detail").await;
    b.close().await;
    t.stop().await;
}
