//! Use case 2, "Existing user adds a passkey": Grady signs in to his security info, chooses
//! "Passkey", "Having trouble?", "Create your passkey a different way", his phone's operating
//! system, finishes on the phone, renames the passkey, signs out, and signs in with it from the
//! username field's autofill.

use portcullis_testkit::TestServer;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id, issue_pass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grady_adds_a_passkey_from_security_info_and_signs_in_with_autofill() {
    let t = TestServer::start().await;
    story::passkey_policy(&t, None).await;
    let grady = story::user(&t, "grady@contoso.com", "Grady Archie").await;
    let pass = issue_pass(&t, &id(&grady)).await;

    let b = Browser::start("use-case-2", &t.url, WINDOWS_UA).await;
    let phone = b.add_authenticator("hybrid").await;

    // Not signed in: security info sends him to sign in first.
    b.goto("/mysecurityinfo").await;
    b.until_panel("identify").await;
    assert!(b.path().await.starts_with("/signin?"), "{}", b.path().await);
    b.until_text("My Account").await;
    story::sign_in_with_pass(&b, "grady@contoso.com", &pass).await;

    b.until_path("/my/security-info").await;
    b.until_text("You have no sign-in methods yet").await;
    b.screenshot("security-info-empty").await;

    // Add sign-in method → Passkey → Having trouble? → a different way → Android.
    b.click("Add sign-in method").await;
    b.click("Passkey").await;
    b.until_text("Set up a passkey on this device").await;
    b.screenshot("add-passkey").await;
    b.click("Having trouble?").await;
    b.click("Create your passkey a different way").await;
    b.until_text("Choose where to create your passkey").await;
    b.screenshot("choose-operating-system").await;
    b.click("Android device").await;
    b.until_text("Passkey created").await;
    assert_eq!(
        b.credentials(&phone).await.len(),
        1,
        "the phone holds the passkey"
    );
    b.fill("Passkey name", "Grady's Android").await;
    b.click("Save").await;
    b.until_text("Your passkey was added").await;
    b.until_text("Grady's Android").await;
    b.screenshot("passkey-added").await;

    // Rename it.
    b.click("Rename").await;
    b.fill("New name for Grady's Android", "Grady's Pixel")
        .await;
    b.screenshot("rename").await;
    b.click("Save").await;
    b.until_text("The passkey was renamed").await;
    b.until_text("Grady's Pixel").await;
    let methods = t
        .get(&format!(
            "/users/{}/authentication/fido2Methods",
            id(&grady)
        ))
        .await;
    assert_eq!(methods.body["value"][0]["displayName"], "Grady's Pixel");

    // Sign out. The sign-in page offers the passkey in the username field (conditional
    // mediation); the phone answers that offer as a person picking the suggestion does, and
    // no button is pressed: he is back in security info, and the passkey shows its last use.
    b.click("Sign out").await;
    b.until(
        "signed in again with the passkey from autofill",
        "location.pathname === '/my/security-info' && document.querySelector('tr[data-kind=passkey] td:nth-child(4)').textContent.trim() !== '—'",
    )
    .await;
    b.until_text("Grady's Pixel").await;
    b.screenshot("signed-in-with-autofill").await;

    // His own sign-ins: the passkey sign-in to My Account, successful.
    b.click("My sign-ins").await;
    b.until_path("/my/sign-ins").await;
    b.until_text("Passkey").await;
    let first_row = b.text("tbody tr").await;
    assert!(
        first_row.contains("My Account") && first_row.contains("Success"),
        "{first_row}"
    );
    b.screenshot("my-sign-ins").await;

    b.close().await;
    t.stop().await;
}
