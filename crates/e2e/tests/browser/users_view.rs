//! The Users view an administrator reaches for (issue 21), in the browser: one search box that
//! finds people by a middle part of their name, the count of who matches, the columns sorted
//! both ways from their headers, and "Edit profile" on a person's page — an error shown at the
//! top with what was typed kept, then the change saved, on the page and in the audit log.

use portcullis_testkit::TestServer;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id, issue_pass};

/// Signs Adele in to the portal in a fresh browser named `name` (the screenshots' prefix).
async fn adele_in_the_portal(t: &TestServer, adele: &str, name: &'static str) -> Browser {
    let pass = issue_pass(t, adele).await;
    let b = Browser::start(name, &t.url, WINDOWS_UA).await;
    b.goto("/signin?returnTo=/admin").await;
    story::sign_in_with_pass(&b, "adele@contoso.com", &pass).await;
    b.until_path("/admin").await;
    b
}

/// The names in the users table, top to bottom.
async fn listed(b: &Browser) -> Vec<String> {
    b.rows("users-table")
        .await
        .iter()
        .map(|row| {
            row.split('\t')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_finds_sorts_counts_and_edits_users() {
    let t = TestServer::start().await;
    let adele = story::global_administrator(&t, "adele@contoso.com", "Adele Vance").await;
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    story::user(&t, "ann@contoso.com", "Ann Sherwood").await;
    story::user(&t, "megan@contoso.com", "Megan Bowen").await;
    story::user(&t, "sherlock@fabrikam.example", "Holmes").await;

    // Search by a middle part of the name: the box, the count, the rows.
    let b = adele_in_the_portal(&t, &id(&adele), "users-search").await;
    b.click_within("//nav[@aria-label='Admin portal']", "Users")
        .await;
    b.until_path("/admin/users").await;
    b.fill("Search users", "HERw").await;
    b.click("Search").await;
    b.until_text("1 user match").await;
    assert_eq!(listed(&b).await, vec!["Ann Sherwood"]);
    b.screenshot("middle-of-a-name").await;

    // "sher" is in two names and in one user principal name.
    b.fill("Search users", "sher").await;
    b.click("Search").await;
    b.until_text("3 users match").await;
    assert_eq!(b.text("#users-count").await, "3 users match");

    // Sorted by name from the column header, then the other way round.
    b.click_within("//table[@id='users-table']/thead", "Name")
        .await;
    b.until(
        "the list sorted by name",
        "document.querySelector('th[aria-sort=\"ascending\"] #sort-name') !== null",
    )
    .await;
    assert_eq!(
        listed(&b).await,
        vec!["Ann Sherwood", "Holmes", "Joni Sherman"]
    );
    b.click_within("//table[@id='users-table']/thead", "Name")
        .await;
    b.until(
        "the list sorted by name, descending",
        "document.querySelector('th[aria-sort=\"descending\"] #sort-name') !== null",
    )
    .await;
    assert_eq!(
        listed(&b).await,
        vec!["Joni Sherman", "Holmes", "Ann Sherwood"]
    );
    assert!(b.path().await.contains("/admin/users"));
    let address = b.js("return location.search;").await;
    let address = address.as_str().unwrap_or_default();
    assert!(
        address.contains("q=sher") && address.contains("sort=name") && address.contains("dir=desc"),
        "the search and the order live in the address: {address}"
    );
    b.screenshot("sorted-by-name-descending").await;
    // By user principal name: Holmes's is sherlock@fabrikam.example.
    b.click_within("//table[@id='users-table']/thead", "User principal name")
        .await;
    b.until(
        "the list sorted by user principal name",
        "document.querySelector('th[aria-sort=\"ascending\"] #sort-upn') !== null",
    )
    .await;
    assert_eq!(
        listed(&b).await,
        vec!["Ann Sherwood", "Joni Sherman", "Holmes"]
    );
    b.close().await;

    // Joni's profile, edited from her page.
    let b = adele_in_the_portal(&t, &id(&adele), "users-edit").await;
    b.goto("/admin/users?q=joni").await;
    b.open_row("users-table", "Joni Sherman").await;
    b.until_text("Edit profile").await;
    b.click("Edit profile").await;
    b.until_path(&format!("/admin/users/{}/edit", id(&joni)))
        .await;
    b.screenshot("profile-form").await;

    // A mistake: the problem at the top, beside its field, and what was typed kept.
    b.fill("Display name", "").await;
    b.fill("Email (optional)", "joni.sherman@contoso.com").await;
    b.click("Save profile").await;
    b.until(
        "the form with its error",
        "document.readyState === 'complete' && document.getElementById('error-summary')",
    )
    .await;
    assert!(
        b.text("#error-summary").await.contains("Display name"),
        "{}",
        b.text("#error-summary").await
    );
    let kept = b.js("return document.getElementById('mail').value;").await;
    assert_eq!(kept, "joni.sherman@contoso.com");
    b.screenshot("error-kept-input").await;

    b.fill("Display name", "Joni Sherman-Smith").await;
    b.click("Save profile").await;
    b.until_text("The profile was saved.").await;
    assert_eq!(b.text("#user-name").await, "Joni Sherman-Smith");
    assert!(b.text("#basic").await.contains("joni.sherman@contoso.com"));
    b.screenshot("profile-saved").await;

    // The change is in the audit log, with the old and new values.
    b.goto("/admin/audit-logs").await;
    b.until_text("Update user").await;
    let entries = b.rows("audits-table").await;
    assert!(
        entries
            .iter()
            .any(|e| e.contains("Update user") && e.contains("Joni Sherman")),
        "{entries:?}"
    );
    b.open_row("audits-table", "Update user").await;
    b.until(
        "the entry's old and new values",
        "document.querySelector('table.modified-properties') !== null",
    )
    .await;
    let page = b.text("main").await;
    assert!(page.contains("Joni Sherman-Smith"), "{page}");
    assert!(page.contains("joni.sherman@contoso.com"), "{page}");
    b.screenshot("audit-entry").await;
    b.close().await;
}
