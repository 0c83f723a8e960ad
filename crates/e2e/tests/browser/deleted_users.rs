//! Deleted users in the portal (issue 21): an administrator deletes Joni, reads on the
//! confirmation that she can be restored for 30 days, finds her under Deleted users with the
//! time left, and restores her; the portal takes them to Joni's page, in her group again, and
//! Joni's sign-in page lets her in once more (it did not while she was deleted). Another deleted
//! user is then deleted permanently from the same list.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id, issue_pass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_deletes_finds_and_restores_a_user() {
    let t = TestServer::start().await;
    let adele = story::global_administrator(&t, "adele@contoso.com", "Adele Vance").await;
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    let joni_id = id(&joni);
    story::group(&t, "Sales", &[&joni]).await;
    let gone = story::user(&t, "gone@contoso.com", "Gone Person").await;
    // Joni's reusable pass, kept with her while she is deleted.
    let r = t
        .post(
            &format!("/users/{joni_id}/authentication/temporaryAccessPassMethods"),
            json!({"isUsableOnce": false, "lifetimeInMinutes": 480}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let joni_pass = r.body["temporaryAccessPass"].as_str().unwrap().to_string();

    let pass = issue_pass(&t, &id(&adele)).await;
    let b = Browser::start("deleted-users", &t.url, WINDOWS_UA).await;
    b.goto("/signin?returnTo=/admin").await;
    story::sign_in_with_pass(&b, "adele@contoso.com", &pass).await;
    b.until_path("/admin").await;

    // Delete Joni: the confirmation says she can be restored.
    b.goto(&format!("/admin/users/{joni_id}/delete")).await;
    b.until_text("can be restored from Deleted users").await;
    b.screenshot("delete-confirmation").await;
    b.click("Delete user").await;
    b.until_path("/admin/users").await;
    b.until_text("It can be restored from Deleted users for 30 days.")
        .await;
    let (reply, _) = t
        .sign_in_with_pass(&t.url, "joni@contoso.com", &joni_pass)
        .await;
    assert_ne!(reply.status, StatusCode::OK, "{:?}", reply.body);

    // Deleted users, from the Users page: Joni, when, and the time left.
    b.click("Deleted users").await;
    b.until_path("/admin/users/deleted").await;
    let rows = b.rows("deleted-users-table").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("Joni Sherman") && rows[0].contains("joni@contoso.com"),
        "{rows:?}"
    );
    assert!(rows[0].contains("29 days"), "{rows:?}");
    b.screenshot("list").await;

    // Restore, confirmed, lands on Joni's page, in Sales again.
    b.click("Restore").await;
    b.until_text("This brings back the account of Joni Sherman")
        .await;
    b.screenshot("restore-confirmation").await;
    b.click("Restore user").await;
    b.until_path(&format!("/admin/users/{joni_id}")).await;
    b.until_text("The user was restored").await;
    b.until_text("Sales").await;
    b.screenshot("restored").await;

    // Joni's sign-in page lets her in again, with the pass she had.
    let joni_browser = Browser::start("deleted-users-joni", &t.url, WINDOWS_UA).await;
    joni_browser.goto("/signin?returnTo=/my/sign-ins").await;
    story::sign_in_with_pass(&joni_browser, "joni@contoso.com", &joni_pass).await;
    joni_browser.until_path("/my/sign-ins").await;
    joni_browser.close().await;

    // Another deleted user, deleted permanently from the list.
    let r = t.delete(&format!("/users/{}", id(&gone))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    b.goto("/admin/users/deleted").await;
    b.click("Delete permanently").await;
    b.until_text("It can no longer be restored").await;
    b.screenshot("permanent-delete-confirmation").await;
    b.click_within("//form", "Delete permanently").await;
    b.until_text("The user was deleted permanently.").await;
    b.until_text("No deleted users.").await;
    b.screenshot("empty").await;
    b.close().await;
    t.stop().await;
}
