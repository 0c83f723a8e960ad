//! Pages people can trust, in the browser: the portal never leaves an administrator on a dead
//! end (its error pages keep the navigation, its header has "My security info" and "Sign out",
//! a form's errors are summed up at its top and take the focus, with the form's own words and
//! what was typed kept); the sign-in page offers only the ways in the tenant allows, the "More
//! information required" wizard shows its steps with Back and "Use a different account", and a
//! passkey whose model the policy refuses is refused before anything says "created"; security
//! info names each passkey's model and shows times in the browser's own zone.

use portcullis_testkit::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
use portcullis_testkit::{StatusCode, TestServer, fixtures};
use serde_json::json;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, PHISHING_RESISTANT, id, issue_pass};

/// Signs `upn` in to the portal with `pass` (no policy asks more of them here).
async fn sign_in_to_portal(b: &Browser, upn: &str, pass: &str) {
    b.goto("/signin?returnTo=/admin").await;
    story::sign_in_with_pass(b, upn, pass).await;
    b.until_path("/admin").await;
}

async fn global_administrator(t: &TestServer, upn: &str, name: &str) -> String {
    let person = story::global_administrator(t, upn, name).await;
    issue_pass(t, &id(&person)).await
}

/// The portal's error page is open: its status, inside the portal's navigation.
async fn framed_error(b: &Browser, status: &str) {
    b.until(
        &format!("the portal's {status} page"),
        "document.readyState === 'complete' && document.getElementById('error-status')",
    )
    .await;
    assert_eq!(b.text("#error-status").await, status);
    let nav = b.text("nav.portal-nav").await;
    assert!(nav.contains("Users") && nav.contains("Audit logs"), "{nav}");
    assert_eq!(b.text("#my-security-info").await, "My security info");
    assert_eq!(b.text("#sign-out").await, "Sign out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_never_leaves_an_administrator_on_a_dead_end() {
    let t = TestServer::start().await;
    let pass = global_administrator(&t, "adele@contoso.com", "Adele Vance").await;
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;

    // The icon browsers ask for on their own, and the one the pages name.
    let icon = reqwest::get(format!("{}/favicon.ico", t.url))
        .await
        .expect("the icon answers");
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().contains("<svg"));

    let b = Browser::start("trusted-portal", &t.url, WINDOWS_UA).await;
    sign_in_to_portal(&b, "adele@contoso.com", &pass).await;
    let linked = b
        .js("const l = document.querySelector('link[rel=icon]'); return l ? l.href : null;")
        .await;
    assert_eq!(linked, json!(format!("{}/assets/favicon.svg", b.base)));
    assert_eq!(b.text("#my-security-info").await, "My security info");
    assert_eq!(b.text("#sign-out").await, "Sign out");
    b.screenshot("admin-header").await;

    // An address no page has, a built-in strength (which cannot be edited), and a page that
    // only takes its form: each keeps the navigation.
    b.goto("/admin/no-such-page").await;
    framed_error(&b, "404").await;
    assert!(b.text("main").await.contains("This page doesn't exist"));
    b.screenshot("error-404-admin").await;
    b.goto(&format!(
        "/admin/conditional-access/authentication-strengths/{PHISHING_RESISTANT}"
    ))
    .await;
    let status = b
        .js("return document.getElementById('error-status') ? document.getElementById('error-status').innerText : null;")
        .await;
    assert!(
        matches!(status.as_str(), Some("403" | "400" | "409")),
        "a built-in strength is refused in the frame: {status}"
    );
    framed_error(&b, status.as_str().unwrap()).await;
    b.screenshot("error-built-in-strength").await;
    b.goto(&format!("/admin/users/{}/state", id(&joni))).await;
    framed_error(&b, "405").await;
    b.screenshot("error-405-admin").await;

    // A form with a mistake: the summary at the top has the focus, in the form's words, with a
    // link to the field; what was typed is still there.
    b.goto("/admin/users/new").await;
    b.fill("User principal name", "not an address").await;
    b.fill("Display name", "Lee Gu").await;
    b.fill("Email (optional)", "lee@contoso.com").await;
    b.click("Create user").await;
    b.until(
        "the error summary to take the focus",
        "document.activeElement && document.activeElement.id === 'error-summary'",
    )
    .await;
    let summary = b.text("#error-summary").await;
    assert!(summary.contains("There is a problem"), "{summary}");
    assert!(summary.contains("User principal name"), "{summary}");
    assert!(
        !summary.contains("userPrincipalName"),
        "no API names: {summary}"
    );
    let kept = b
        .js("return [document.getElementById('userPrincipalName').value, document.getElementById('displayName').value, document.getElementById('mail').value];")
        .await;
    assert_eq!(kept, json!(["not an address", "Lee Gu", "lee@contoso.com"]));
    b.screenshot("form-error-summary").await;
    b.click_within("//*[@id='error-summary']", "User principal name")
        .await;
    b.until(
        "the link to move to the field",
        "document.activeElement && document.activeElement.id === 'userPrincipalName'",
    )
    .await;

    // The header's way to the person's own security info, and out.
    b.goto("/admin").await;
    b.click("My security info").await;
    b.until_path("/my/security-info").await;
    b.goto("/admin").await;
    b.click("Sign out").await;
    b.until_path("/signin").await;
    b.until_panel("identify").await;
    b.goto("/admin").await;
    b.until_path("/signin").await;
    b.close().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wizard_shows_its_steps_and_refuses_a_passkey_model_before_saying_created() {
    let t = TestServer::start().await;
    // Joni must register a phishing-resistant passkey, and the policy allows only one model,
    // which is not the one this browser's authenticator is.
    let story = story::tenant(&t, None).await;
    let fido2 = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";
    let r = t
        .patch(
            fido2,
            json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [TEST_AAGUID.to_string()]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let pass = issue_pass(&t, &id(&story.joni)).await;

    let b = Browser::start("trusted-signin", &t.url, WINDOWS_UA).await;
    let laptop = b.add_authenticator("internal").await;
    b.goto("/signin?returnTo=/my/security-info").await;
    b.until_panel("identify").await;
    b.fill("Email or username", "joni@contoso.com").await;
    b.click("Next").await;
    b.until_panel("first-factor").await;
    // Passwords are off in this tenant (the default): only the pass is offered beside a passkey.
    let offered = b.text("#other-ways").await;
    assert!(offered.contains("Temporary Access Pass"), "{offered}");
    assert!(!offered.contains("Password"), "{offered}");
    b.screenshot("choices-without-password").await;
    b.click("Temporary Access Pass").await;
    b.until_panel("tap").await;
    b.fill("Temporary Access Pass", &pass).await;
    b.click("Sign in").await;

    b.until_panel("register-intro").await;
    let intro = b.text("[data-panel=register-intro]").await;
    assert!(intro.contains("Step 1 of 2"), "{intro}");
    assert!(intro.contains("Use a different account"), "{intro}");
    b.screenshot("signin-wizard-steps").await;
    b.click("Next").await;
    b.until_panel("register-where").await;
    b.click_within("//*[@data-panel='register-where']", "Back")
        .await;
    b.until_panel("register-intro").await;
    b.click("Next").await;
    b.until_panel("register-where").await;

    // The authenticator makes a passkey of a model the policy does not allow: the page says
    // so in words, never "created", and keeps nothing of it.
    b.click("Set up passkey on this device").await;
    b.until_text("doesn't allow this kind of passkey").await;
    b.until_panel("register-where").await;
    let shown = b
        .js("return !document.querySelector('[data-panel=\"register-name\"]').hidden;")
        .await;
    assert_eq!(shown, json!(false), "no success card");
    let error = b.text("[data-error]").await;
    assert!(!error.contains("AAGUID"), "in words: {error}");
    b.screenshot("passkey-model-refused").await;
    let stored = t
        .get(&format!(
            "/users/{}/authentication/fido2Methods",
            id(&story.joni)
        ))
        .await;
    assert_eq!(stored.body["value"], json!([]), "nothing was saved");
    let _ = b.credentials(&laptop).await;

    // Someone else's turn: "Use a different account" ends this sign-in.
    b.click_within(
        "//*[@data-panel='register-where']",
        "Use a different account",
    )
    .await;
    b.until_panel("identify").await;
    b.until(
        "an empty username",
        "document.getElementById('username').value === ''",
    )
    .await;

    // With passwords on for the tenant, the choice is offered.
    let r = t
        .patch(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password",
            json!({"state": "enabled"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    b.goto("/signin?returnTo=/my/security-info").await;
    b.until_panel("identify").await;
    b.fill("Email or username", "joni@contoso.com").await;
    b.click("Next").await;
    b.until_panel("first-factor").await;
    assert!(b.text("#other-ways").await.contains("Password"));
    b.close().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_info_names_each_passkeys_model_and_shows_times_in_the_browsers_zone() {
    // Metadata naming the browser's virtual authenticator; the software authenticator's model
    // is named nowhere.
    let metadata = tempfile::NamedTempFile::new().expect("a metadata file");
    std::fs::write(
        metadata.path(),
        json!({"entries": [{"aaguid": story::VIRTUAL_AUTHENTICATOR_AAGUID,
                             "metadataStatement": {"description": "Contoso Test Key", "attestationRootCertificates": []}}]})
        .to_string(),
    )
    .expect("metadata written");
    let path = metadata.path().to_path_buf();
    let t = TestServer::start_with(move |c| c.attestation_roots = vec![path]).await;
    let person = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    // Her first passkey, of a model no metadata names, made through the API.
    let token = fixtures::pass_session(&t, &id(&person), "joni@contoso.com", json!({})).await;
    let mut key = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let options = fixtures::call(
        &t,
        None,
        Some(&token),
        reqwest::Method::POST,
        "/my/passkeys/options",
        Some(json!({"device": "this"})),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    let credential = key.create(&options.body["options"]);
    let saved = fixtures::call(
        &t,
        None,
        Some(&token),
        reqwest::Method::POST,
        "/my/passkeys",
        Some(json!({"ceremonyId": options.body["ceremonyId"], "name": "Old key", "credential": credential})),
    )
    .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{:?}", saved.body);
    let pass = issue_pass(&t, &id(&person)).await;

    let b = Browser::start("trusted-security-info", &t.url, WINDOWS_UA).await;
    b.add_authenticator("internal").await;
    b.cdp(
        "Emulation.setTimezoneOverride",
        json!({"timezoneId": "Asia/Tokyo"}),
    )
    .await;
    b.goto("/signin?returnTo=/my/security-info").await;
    story::sign_in_with_pass(&b, "joni@contoso.com", &pass).await;
    b.until_path("/my/security-info").await;
    b.click("Add sign-in method").await;
    b.click("Passkey").await;
    b.click_within("//*[@data-add='passkey']", "Next").await;
    b.until_text("Passkey created").await;
    b.fill("Passkey name", "Work laptop").await;
    b.click_within("//form[@data-add='name']", "Save").await;
    b.until_text("Your passkey was added").await;

    let rows = b
        .js("return [...document.querySelectorAll('[data-methods] tbody tr')].map(r => r.innerText);")
        .await;
    let rows: Vec<String> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.contains(name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {rows:?}"))
    };
    assert!(row("Work laptop").contains("Contoso Test Key"), "{rows:?}");
    assert!(row("Old key").contains("Unknown model"), "{rows:?}");
    // Times in the browser's zone (Tokyo, nine hours ahead of UTC), the UTC text kept as the
    // tooltip.
    let times = b
        .js("return [...document.querySelectorAll('[data-methods] time')].map(t => [t.dataset.local || '', t.getAttribute('title'), t.innerText]);")
        .await;
    let times = times.as_array().expect("times").clone();
    assert!(!times.is_empty(), "times are <time> elements");
    for time in &times {
        assert_eq!(time[0], "true", "{time}");
        let utc = time[1].as_str().unwrap_or_default();
        let shown = time[2].as_str().unwrap_or_default();
        assert!(utc.ends_with("UTC"), "{time}");
        assert_ne!(utc, shown, "shown in the browser's zone: {time}");
        assert!(shown.contains("GMT+9"), "{time}");
    }
    b.screenshot("security-info-models").await;
    b.close().await;
    t.stop().await;
}
