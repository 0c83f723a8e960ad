//! Use case 1, "New admin, first sign-in": Joni has no methods; an administrator issues her a
//! one-time Temporary Access Pass; she signs in on Windows with it, gets "More information
//! required", creates a passkey on her phone (a virtual authenticator reached over `hybrid`),
//! names it, proves it with one assertion and is signed in to the application. From Android she
//! is blocked, and the page names the policy and gives a correlation id.

use portcullis_testkit::TestServer;
use serde_json::Value;

use crate::harness::{ANDROID_UA, Browser, WINDOWS_UA};
use crate::relying_party::RelyingParty;
use crate::story::{self, id, issue_pass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joni_registers_a_passkey_on_her_phone_and_is_blocked_from_android() {
    let t = TestServer::start().await;
    let rp = RelyingParty::bind().await;
    let story = story::tenant(&t, Some(&rp.redirect_uri)).await;
    let pass = issue_pass(&t, &id(&story.joni)).await;

    let b = Browser::start("use-case-1", &t.url, WINDOWS_UA).await;
    let phone = b.add_authenticator("hybrid").await;

    // Windows: the application sends her to sign in (authorization code with PKCE). The
    // Android visit later starts the same way, with its own PKCE pair.
    let (authorize, verifier) = rp.authorize_url(&t.url, &story.app_id);
    let (android_authorize, _) = rp.authorize_url(&t.url, &story.app_id);
    let callback = tokio::spawn(rp.serve_callback(t.url.clone(), story.app_id.clone(), verifier));
    b.goto(&authorize).await;
    b.until_panel("identify").await;
    b.until_text("Contoso Portal").await;
    b.screenshot("sign-in").await;
    story::sign_in_with_pass(&b, "joni@contoso.com", &pass).await;

    // The pass does not meet phishing-resistant MFA: "More information required".
    b.until_panel("register-intro").await;
    b.until_text("More information required").await;
    b.until_text("Passkey test: enforcement").await;
    b.screenshot("more-information-required").await;
    b.click("Next").await;
    b.until_panel("register-where").await;
    b.screenshot("set-up-a-passkey").await;
    b.click("Set up passkey using another device").await;
    b.until_panel("register-device").await;
    b.screenshot("choose-device").await;
    b.click("iPhone, iPad or Android device").await;

    // The phone made the passkey; she names it and proves it.
    b.until_panel("register-name").await;
    assert_eq!(
        b.credentials(&phone).await.len(),
        1,
        "the phone holds one passkey"
    );
    b.screenshot("passkey-created").await;
    b.fill("Passkey name", "Joni's phone").await;
    b.click("Save").await;
    b.until_panel("prove").await;
    b.screenshot("prove-it").await;
    b.click("Sign in with your passkey").await;

    // Signed in: back at the application, which redeemed the code for her ID token.
    b.until_text("Signed in as joni@contoso.com").await;
    b.screenshot("signed-in-to-the-application").await;
    callback.await.expect("the application served its callback");
    let methods = t
        .get(&format!(
            "/users/{}/authentication/fido2Methods",
            id(&story.joni)
        ))
        .await;
    let names: Vec<&str> = methods.body["value"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["displayName"].as_str())
        .collect();
    assert_eq!(names, ["Joni's phone"]);

    // Android: the same person, the same passkey, blocked by the platform policy.
    b.set_user_agent(ANDROID_UA).await;
    b.goto(&android_authorize).await;
    // The username field offers her passkey (conditional mediation) and the phone answers
    // that offer; Conditional Access then blocks the platform.
    b.until_panel("blocked").await;
    b.until_text("You can't get there from here").await;
    let blocked = b.text("[data-panel=blocked]").await;
    assert!(
        blocked.contains("Passkey test: unsupported platforms"),
        "the block names the policy: {blocked}"
    );
    assert!(blocked.contains("53003"), "and the error code: {blocked}");
    assert!(blocked.contains("Android"), "and the platform: {blocked}");
    let correlation = b
        .js("return [...document.querySelectorAll('[data-details] dt')].find(d => d.textContent === 'Correlation ID').nextElementSibling.textContent;")
        .await;
    let correlation = correlation.as_str().unwrap_or_default().to_string();
    assert_eq!(correlation.len(), 36, "a correlation id: {correlation}");
    b.screenshot("blocked-on-android").await;

    // The administrator finds the same correlation id in the sign-in log, blocked.
    let log = t.get("/auditLogs/signIns?$top=50").await;
    let entry: &Value = log.body["value"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["correlationId"] == correlation.as_str())
        .expect("the blocked sign-in is logged under the correlation id the page shows");
    assert_eq!(entry["status"]["errorCode"], 53003);

    b.close().await;
    t.stop().await;
}
