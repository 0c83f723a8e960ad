//! The administrator's part of the story: Megan Bowen, a Conditional Access Administrator and
//! Authentication Administrator, opens the admin portal; her first sign-in, with the pass she
//! was handed, makes her register a passkey on this device (the portal's policy asks
//! administrators for phishing-resistant MFA), and she proves it to get in. She finds Joni,
//! issues her a Temporary Access Pass and reads it off the page. Joni signs in from her Android
//! phone and is blocked by "Passkey test: unsupported platforms". Megan opens that policy in the
//! portal's form and switches it to report-only. Joni signs in again, from a fresh browser, and
//! gets in. In the sign-in logs Megan finds both sign-ins, and the Conditional Access tab of each
//! shows the policy's result as she reads it: "Failure", then "Report-only: failure". Then she
//! revokes Joni's pass, confirming on the page that names whose pass it is.

use portcullis_core::directory::first_party::ADMIN_PORTAL_APP_ID;
use portcullis_core::directory::roles::{
    AUTHENTICATION_ADMINISTRATOR, CONDITIONAL_ACCESS_ADMINISTRATOR,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::harness::{ANDROID_UA, Browser, WINDOWS_UA};
use crate::relying_party::RelyingParty;
use crate::story::{self, PHISHING_RESISTANT, id, issue_pass};

const PLATFORM_POLICY: &str = "Passkey test: unsupported platforms";

/// Joni, on her Android phone (a browser of its own), opens the application, which sends her to
/// sign in, and signs in with the pass. The browser is left on the page the sign-in ends on.
async fn joni_signs_in(name: &'static str, server: &str, authorize: &str, pass: &str) -> Browser {
    let b = Browser::start(name, server, ANDROID_UA).await;
    // An authenticator with no passkey for this site: the username field's passkey offer waits
    // quietly, as it does on a phone with none.
    b.add_authenticator("hybrid").await;
    b.goto(authorize).await;
    b.until_panel("identify").await;
    b.until_text("Contoso Portal").await;
    story::sign_in_with_pass(&b, "joni@contoso.com", pass).await;
    b
}

/// Filters the sign-in log to Joni's sign-ins, as the form does, and waits for the answer.
async fn filter_sign_ins_by_joni(admin: &Browser) {
    admin.fill("User starts with", "joni").await;
    admin.click("Filter").await;
    admin
        .until(
            "the sign-in log filtered to Joni",
            "location.search.includes('user=joni') && document.readyState === 'complete'",
        )
        .await;
}

/// The open sign-in's "Conditional Access" tab (not the portal's menu item of that name).
async fn open_conditional_access_tab(admin: &Browser) {
    admin
        .click_within("//nav[@aria-label='Sign-in details']", "Conditional Access")
        .await;
    admin.until_text("Conditional Access:").await;
}

/// The State column of a row of the policy list.
fn state_of(row: &str) -> Option<&str> {
    row.split('\t').nth(1).map(str::trim)
}

/// The result the Conditional Access tab shows for `policy`, as the table reads.
async fn result_for(b: &Browser, policy: &str) -> String {
    let quoted = serde_json::to_string(policy).expect("name quotes");
    let result = b
        .js(&format!(
            "const row = [...document.querySelectorAll('#ca-policies tbody tr')].find(r => r.cells[0].innerText.trim() === {quoted}); return row ? row.cells[1].innerText.trim() : null;"
        ))
        .await;
    match result.as_str() {
        Some(text) => text.to_string(),
        None => panic!("the tab lists {policy}: {}", b.text("#ca-policies").await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_issues_a_pass_switches_a_policy_to_report_only_and_reads_the_log() {
    let t = TestServer::start().await;
    let rp = RelyingParty::bind().await;

    // The tenant, through the admin API: Joni in the admins group that the platform policy
    // covers, the application, and Megan with her two roles and the pass she was handed.
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    let admins = story::group(&t, "Admins", &[&joni]).await;
    let app_id = story::contoso_portal(&t, Some(&rp.redirect_uri)).await;
    story::policy(&t, story::unsupported_platforms(&admins)).await;
    story::policy(
        &t,
        json!({
            "displayName": "Admin portal: phishing-resistant MFA",
            "state": "enabled",
            "conditions": {
                "users": {"includeRoles": [CONDITIONAL_ACCESS_ADMINISTRATOR.to_string(), AUTHENTICATION_ADMINISTRATOR.to_string()]},
                "applications": {"includeApplications": [ADMIN_PORTAL_APP_ID.to_string()]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}
        }),
    )
    .await;
    story::passkey_policy(&t, Some(story::VIRTUAL_AUTHENTICATOR_AAGUID)).await;
    let megan = story::user(&t, "megan@contoso.com", "Megan Bowen").await;
    for role in [
        CONDITIONAL_ACCESS_ADMINISTRATOR,
        AUTHENTICATION_ADMINISTRATOR,
    ] {
        let r = t
            .post(
                "/roleManagement/directory/roleAssignments",
                json!({"principalId": id(&megan), "roleDefinitionId": role.to_string(), "directoryScopeId": "/"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let megans_pass = issue_pass(&t, &id(&megan)).await;
    // Joni's two visits to the application, each with its own PKCE pair; the second one reaches
    // the application's callback.
    let (blocked_visit, _) = rp.authorize_url(&t.url, &app_id);
    let (granted_visit, verifier) = rp.authorize_url(&t.url, &app_id);
    let callback = tokio::spawn(rp.serve_callback(t.url.clone(), app_id.clone(), verifier));

    // Megan opens the portal on her Windows laptop and signs in with her pass.
    let admin = Browser::start("admin-story", &t.url, WINDOWS_UA).await;
    let laptop = admin.add_authenticator("internal").await;
    admin.goto("/admin").await;
    admin.until_panel("identify").await;
    admin.until_text("Admin Portal").await;
    story::sign_in_with_pass(&admin, "megan@contoso.com", &megans_pass).await;

    // The portal asks administrators for a passkey: she makes one on this laptop and signs in
    // with it.
    admin.until_panel("register-intro").await;
    admin
        .until_text("Admin portal: phishing-resistant MFA")
        .await;
    admin.screenshot("more-information-required").await;
    admin.click("Next").await;
    admin.until_panel("register-where").await;
    admin.click("Set up passkey on this device").await;
    admin.until_panel("register-name").await;
    assert_eq!(
        admin.credentials(&laptop).await.len(),
        1,
        "the laptop holds her passkey"
    );
    admin.fill("Passkey name", "Megan's laptop").await;
    admin.click("Save").await;
    admin.until_panel("prove").await;
    admin.click("Sign in with your passkey").await;
    admin.until_path("/admin").await;
    admin.until_text("Conditional Access Administrator").await;
    admin.until_text("Authentication Administrator").await;
    admin.screenshot("portal-home").await;

    // She finds Joni and issues her a pass that lasts the day (not one-time: Joni will sign in
    // more than once).
    admin.click("Users").await;
    admin.until_path("/admin/users").await;
    admin.fill("Search users", "joni").await;
    admin.click("Search").await;
    admin.until_text("Joni Sherman").await;
    admin.screenshot("users-filtered").await;
    admin.click("Joni Sherman").await;
    admin.until_text("Issue a pass").await;
    if admin
        .js("return document.getElementById('isUsableOnce').checked;")
        .await
        == json!(true)
    {
        admin.choose("One-time use").await;
    }
    admin.click("Issue Temporary Access Pass").await;
    admin.until_text("It is shown only this once").await;
    admin.until_text("No: it works until it expires").await;
    let pass = admin
        .text("#temporary-access-pass")
        .await
        .trim()
        .to_string();
    assert!(pass.len() >= 8, "the pass is on the page: {pass:?}");
    admin.screenshot("pass-issued").await;
    admin.click("Done").await;
    admin.until_text("Valid until").await;
    let user_page = admin.text("main").await;
    assert!(!user_page.contains(&pass), "the pass is never shown again");

    // Joni, on Android: the platform policy blocks her, and the page names it.
    let phone = joni_signs_in("admin-story-joni-blocked", &t.url, &blocked_visit, &pass).await;
    phone.until_panel("blocked").await;
    phone.until_text("You can't get there from here").await;
    let blocked = phone.text("[data-panel=blocked]").await;
    assert!(blocked.contains(PLATFORM_POLICY), "{blocked}");
    phone.screenshot("blocked").await;
    phone.close().await;

    // Megan opens the policy in the portal's form and switches it to report-only.
    admin.click("Conditional Access").await;
    admin.until_path("/admin/conditional-access").await;
    let listed = admin.rows("policies-table").await;
    assert!(
        listed
            .iter()
            .any(|r| r.contains(PLATFORM_POLICY) && state_of(r) == Some("On")),
        "{listed:?}"
    );
    admin.click(PLATFORM_POLICY).await;
    admin.until_text("Enable policy").await;
    admin.choose("Report-only").await;
    admin.screenshot("policy-report-only").await;
    admin.click("Review changes").await;
    admin.until_text("Review the change before saving").await;
    admin.click("Save").await;
    admin.until_text("The policy was saved.").await;
    admin.click("← Policies").await;
    admin.until_path("/admin/conditional-access").await;
    let listed = admin.rows("policies-table").await;
    assert!(
        listed
            .iter()
            .any(|r| r.contains(PLATFORM_POLICY) && state_of(r) == Some("Report-only")),
        "{listed:?}"
    );
    admin.screenshot("policies-report-only").await;

    // Joni again, from a fresh browser: the policy only reports now, and she reaches the app.
    let phone = joni_signs_in("admin-story-joni-granted", &t.url, &granted_visit, &pass).await;
    phone.until_text("Signed in as joni@contoso.com").await;
    phone.screenshot("signed-in-to-the-application").await;
    phone.close().await;
    callback.await.expect("the application served its callback");

    // The sign-in logs: both of Joni's sign-ins, the blocked one and the one that got in.
    admin.click("Sign-in logs").await;
    admin.until_path("/admin/sign-ins").await;
    filter_sign_ins_by_joni(&admin).await;
    let rows = admin.rows("sign-ins-table").await;
    let joni_rows: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains("Contoso Portal"))
        .collect();
    assert_eq!(joni_rows.len(), 2, "{rows:?}");
    assert!(
        joni_rows
            .iter()
            .any(|r| r.contains("Failure") && r.contains("53003")),
        "{rows:?}"
    );
    assert!(joni_rows.iter().any(|r| r.contains("Success")), "{rows:?}");
    admin.screenshot("sign-in-logs").await;

    // The blocked one: the policy failed.
    admin.open_row("sign-ins-table", "53003").await;
    admin.until_text("Sign-in error code").await;
    assert_eq!(admin.text("#error-code").await, "53003");
    open_conditional_access_tab(&admin).await;
    assert_eq!(result_for(&admin, PLATFORM_POLICY).await, "Failure");
    assert_eq!(admin.text("#ca-status").await, "Failure");
    admin.screenshot("blocked-sign-in-conditional-access").await;

    // The one that got in: the same policy, report-only, would have blocked her.
    admin.click("← Sign-in logs").await;
    admin.until_path("/admin/sign-ins").await;
    filter_sign_ins_by_joni(&admin).await;
    admin.open_row("sign-ins-table", "Success").await;
    admin.until_text("Sign-in error code").await;
    assert_eq!(admin.text("#error-code").await, "0");
    open_conditional_access_tab(&admin).await;
    assert_eq!(
        result_for(&admin, PLATFORM_POLICY).await,
        "Report-only: failure"
    );
    admin.screenshot("granted-sign-in-conditional-access").await;

    // Done with it: she revokes Joni's pass, and the portal asks first, naming whose it is.
    admin.click("Users").await;
    admin.until_path("/admin/users").await;
    admin.click("Joni Sherman").await;
    admin.click("Revoke this pass").await;
    admin.until_text("Revoke Temporary Access Pass?").await;
    assert_eq!(admin.text("#confirm-name").await, "joni@contoso.com");
    admin.screenshot("revoke-pass-confirmation").await;
    admin.click("Revoke Temporary Access Pass").await;
    admin
        .until_text("The Temporary Access Pass was deleted.")
        .await;
    admin.until_text("No Temporary Access Pass.").await;
    let passes = t
        .get(&format!(
            "/users/{}/authentication/temporaryAccessPassMethods",
            id(&joni)
        ))
        .await;
    assert_eq!(passes.body["value"], json!([]), "the pass is gone");

    admin.close().await;
    t.stop().await;
}
