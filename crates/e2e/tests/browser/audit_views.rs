//! Issue 21 in the browser: a person's page shows the latest audit entries about them (a
//! refused attempt marked, with its reason) and their recent sign-ins, each leading to the
//! whole log filtered to them; the audit log filtered to failures shows why each failed, and an
//! entry opened says in words that nothing was changed.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id, issue_pass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_page_shows_the_changes_to_them_and_the_log_shows_failures() {
    let t = TestServer::start().await;
    // The administrator who reads the log: a Global Administrator signed in with a pass.
    let adele = story::global_administrator(&t, "adele@contoso.com", "Adele Vance").await;
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    let sales = story::group(&t, "Sales", &[&joni]).await;
    // Changes to Joni, and two refused attempts: her name taken, and adding her twice.
    let r = t
        .patch(
            &format!("/users/{}", id(&joni)),
            json!({"displayName": "Joni S."}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let r = t
        .post(
            "/users",
            json!({"userPrincipalName": "JONI@contoso.com", "displayName": "Joni again"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = t
        .post(
            &format!("/groups/{}/members/$ref", id(&sales)),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", id(&joni))}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    // Joni signs in once, so her page has a sign-in.
    let joni_pass = issue_pass(&t, &id(&joni)).await;
    let (reply, _) = t
        .sign_in_with_pass(&t.url, "joni@contoso.com", &joni_pass)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let b = Browser::start("audit_views", &t.url, WINDOWS_UA).await;
    b.goto("/signin?returnTo=/admin").await;
    let pass = issue_pass(&t, &id(&adele)).await;
    story::sign_in_with_pass(&b, "adele@contoso.com", &pass).await;
    b.until_path("/admin").await;

    // Her page: the changes to her, newest first, the refused one marked with its reason.
    b.goto(&format!("/admin/users/{}", id(&joni))).await;
    b.until_text("Audit log").await;
    let about = b.rows("about-table").await;
    assert!(
        about.iter().any(|r| r.contains("Add member to group")
            && r.contains("Failure")
            && r.contains("already a member of 'Sales'")),
        "{about:?}"
    );
    assert!(
        about
            .iter()
            .any(|r| r.contains("Update user") && r.contains("Success")),
        "{about:?}"
    );
    assert!(about.iter().any(|r| r.contains("Add user")), "{about:?}");
    let sign_ins = b.rows("recent-sign-ins-table").await;
    assert_eq!(sign_ins.len(), 1, "{sign_ins:?}");
    assert!(sign_ins[0].contains("Success"), "{sign_ins:?}");
    b.js("document.getElementById('audit-about').scrollIntoView(); return true;")
        .await;
    b.screenshot("audit-about-person-01-user-page").await;

    // All entries about her: the log filtered to her, named.
    b.click("All audit entries about Joni S.").await;
    b.until_path("/admin/audit-logs").await;
    b.until_text("Entries about Joni S. (joni@contoso.com)")
        .await;
    let rows = b.rows("audits-table").await;
    assert!(rows.len() >= 4, "{rows:?}");
    assert!(!rows.iter().any(|r| r.contains("Joni again")), "{rows:?}");
    b.screenshot("audit-about-person-02-filtered-log").await;

    // Her sign-ins, from her page.
    b.goto(&format!("/admin/users/{}", id(&joni))).await;
    b.click("All sign-ins of Joni S.").await;
    b.until_path("/admin/sign-ins").await;
    b.until_text("Sign-ins of one person").await;
    let rows = b.rows("sign-ins-table").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("joni@contoso.com"), "{rows:?}");

    // The log's failures: each marked, with its reason; one opened says nothing changed.
    b.goto("/admin/audit-logs").await;
    b.js("const s = document.getElementById('result'); s.value = 'failure'; s.form.submit(); return true;")
        .await;
    b.until(
        "the log filtered to failures",
        "location.search.includes('result=failure') && document.readyState === 'complete'",
    )
    .await;
    let rows = b.rows("audits-table").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.contains("Failure")), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Add user") && r.contains("userPrincipalName")),
        "{rows:?}"
    );
    b.screenshot("audit-failures-01-log").await;
    b.open_row("audits-table", "Add user").await;
    b.until_text("This operation was refused").await;
    let reason = b.text("#audit-reason").await;
    assert!(reason.starts_with("Conflict:"), "{reason}");
    assert_eq!(b.text("#audit-result").await, "Failure");
    b.screenshot("audit-failures-02-detail").await;
    b.close().await;
    t.stop().await;
}
