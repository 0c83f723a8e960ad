//! The Conditional Access editor's live summaries and the import review's completeness, as an
//! administrator who knows Entra uses them. Each section's one-line summary follows the choices
//! as they are made (picks and removals, ticks, radio buttons, a strength, a typed frequency)
//! without a round trip, in the server's own words: after the review and again after Save and
//! a reload, the server renders exactly what the script wrote. Typing in a picker's search box
//! says nothing; a typed frequency is announced once, when the person pauses; with reduced
//! motion the highlight does not move. The import review of an export holding what the editor
//! does not model lists each member by its Entra label and Graph name, and every id that names
//! nothing here, and passes the accessibility check. The review before Save shows what the
//! analyzer finds about the changed policy.

use portcullis_testkit::fixtures::admin_session;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id};

/// The sections whose summary the script keeps, by the id the page gives them.
const SECTIONS: &[&str] = &[
    "users",
    "target",
    "platforms",
    "locations",
    "client-apps",
    "grant",
    "session",
];

async fn open_section(b: &Browser, section: &str) {
    b.js(&format!(
        "const d = document.getElementById('section-{section}'); if (!d.open) d.querySelector('summary').click(); return true;"
    ))
    .await;
    b.until(
        &format!("the {section} section open"),
        &format!("document.getElementById('section-{section}').open"),
    )
    .await;
}

async fn pick(b: &Browser, picker: &str, typed: &str, name: &str) {
    let typed = serde_json::to_string(typed).unwrap();
    b.js(&format!(
        "const box = document.getElementById('{picker}-search'); box.focus(); box.value = {typed}; box.dispatchEvent(new Event('input', {{bubbles: true}})); return true;"
    ))
    .await;
    let quoted = serde_json::to_string(name).unwrap();
    b.until(
        &format!("{name} among the matches"),
        &format!("[...document.querySelectorAll('#{picker}-results [role=option]')].some(o => o.textContent === {quoted})"),
    )
    .await;
    b.js(&format!(
        "[...document.querySelectorAll('#{picker}-results [role=option]')].find(o => o.textContent === {quoted}).click(); return true;"
    ))
    .await;
}

/// The summary the page shows for `section` now (the words the script or the server wrote).
async fn summary(b: &Browser, section: &str) -> String {
    b.js(&format!(
        "return document.getElementById('summary-text-{section}').textContent;"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Waits until `section`'s summary reads `words`.
async fn until_summary(b: &Browser, section: &str, words: &str) {
    let quoted = serde_json::to_string(words).unwrap();
    b.until(
        &format!("the {section} summary to read {words:?}"),
        &format!("document.getElementById('summary-text-{section}').textContent === {quoted}"),
    )
    .await;
}

async fn all_summaries(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for s in SECTIONS {
        out.push(summary(b, s).await);
    }
    out
}

/// Picks the option of the `<select>` with `id`, as a person's choice does (a change event).
async fn select(b: &Browser, id: &str, value: &str) {
    let quoted = serde_json::to_string(value).unwrap();
    b.js(&format!(
        "const s = document.getElementById('{id}'); s.value = {quoted}; s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_summary_follows_the_choices_in_the_servers_words() {
    let t = TestServer::start().await;
    story::user(&t, "alex@contoso.com", "Alex Wilber").await;
    let sales = story::group(&t, "Sales", &[]).await;
    story::group(&t, "Contractors", &[]).await;
    let location = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Head office",
                   "isTrusted": true, "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}),
        )
        .await;
    assert_eq!(location.status, StatusCode::CREATED, "{:?}", location.body);
    let policy = story::policy(
        &t,
        json!({
            "displayName": "Sales: require MFA",
            "state": "enabledForReportingButNotEnforced",
            "conditions": {"users": {"includeGroups": [id(&sales)]},
                           "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
        }),
    )
    .await;
    let policy_id = id(&policy);
    let path = format!("/admin/conditional-access/policies/{policy_id}");

    let b = Browser::start("ca-editor-live", &t.url, WINDOWS_UA).await;
    let token = admin_session(&t).await;
    b.cdp(
        "Network.setCookie",
        json!({"name": "portcullis_session", "value": token, "url": t.url, "httpOnly": true}),
    )
    .await;
    b.goto(&path).await;
    b.until_text("Enable policy").await;
    assert_eq!(summary(&b, "users").await, "1 group included");
    // Every live summary is a polite live region; the fixed one is not.
    assert_eq!(
        b.js("return [...document.querySelectorAll('[data-live-summary]')].map(s => s.getAttribute('aria-live'));")
            .await,
        json!(vec!["polite"; 7])
    );
    assert_eq!(
        b.js("return document.getElementById('summary-text-other-conditions').hasAttribute('aria-live');")
            .await,
        json!(false)
    );
    // Counts every rewrite of a summary from here on, and marks the page: a round trip
    // would lose the mark.
    b.js("window.stillHere = true; window.rewrites = {}; document.querySelectorAll('[data-live-summary]').forEach(s => new MutationObserver(() => { window.rewrites[s.dataset.liveSummary] = (window.rewrites[s.dataset.liveSummary] || 0) + 1; }).observe(s, {childList: true, characterData: true, subtree: true})); return true;")
        .await;

    // Users: typing in a picker's box changes no choice and says nothing.
    open_section(&b, "users").await;
    b.js("const box = document.getElementById('excludeUsers-search'); box.focus(); box.value = 'al'; box.dispatchEvent(new Event('input', {bubbles: true})); return true;")
        .await;
    b.until(
        "the matches for 'al'",
        "!document.getElementById('excludeUsers-results').hidden",
    )
    .await;
    assert_eq!(b.js("return window.rewrites.users || 0;").await, json!(0));
    pick(&b, "excludeUsers", "alex", "Alex Wilber (alex@contoso.com)").await;
    until_summary(&b, "users", "1 group included; 1 user excluded").await;
    pick(&b, "includeGroups", "contr", "Contractors").await;
    until_summary(&b, "users", "2 groups included; 1 user excluded").await;
    b.click_within("//ul[@id='includeGroups-chips']/li[2]", "Remove")
        .await;
    until_summary(&b, "users", "1 group included; 1 user excluded").await;
    // A plain click on a chosen name (the break-glass exclusion) never drops it.
    b.js("document.querySelector('#excludeUsers-chips .chip-text').click(); return true;")
        .await;
    assert_eq!(
        b.js("return document.querySelectorAll('#excludeUsers-chips input:checked').length;")
            .await,
        json!(1)
    );
    b.choose("All users").await;
    until_summary(&b, "users", "All users; 1 user excluded").await;
    b.screenshot("users").await;

    // Target resources: the radio, then an application picked.
    open_section(&b, "target").await;
    b.choose("Select applications").await;
    until_summary(&b, "target", "0 applications included").await;
    pick(&b, "includeApplications", "office", "Office 365").await;
    until_summary(&b, "target", "1 application included").await;

    // Device platforms: a tick alone chooses the platforms.
    open_section(&b, "platforms").await;
    b.js("document.getElementById('include-platform-android').click(); return true;")
        .await;
    until_summary(&b, "platforms", "Android").await;
    b.js("document.getElementById('exclude-platform-iOS').click(); return true;")
        .await;
    until_summary(&b, "platforms", "Android except iOS").await;

    // Locations.
    open_section(&b, "locations").await;
    b.choose("All trusted networks and locations").await;
    until_summary(&b, "locations", "All trusted networks and locations").await;
    b.js(&format!(
        "document.getElementById('exclude-location-{}').click(); return true;",
        id(&location.body)
    ))
    .await;
    until_summary(
        &b,
        "locations",
        "All trusted networks and locations; 1 location excluded",
    )
    .await;

    // Client apps.
    open_section(&b, "client-apps").await;
    b.choose("Browser").await;
    until_summary(&b, "client-apps", "Browser").await;

    // Grant: MFA off, a strength on.
    open_section(&b, "grant").await;
    b.choose("Require multifactor authentication").await;
    until_summary(&b, "grant", "Grant access").await;
    select(
        &b,
        "authenticationStrength",
        "00000000-0000-0000-0000-000000000004",
    )
    .await;
    until_summary(
        &b,
        "grant",
        "Require authentication strength Phishing resistant MFA",
    )
    .await;

    // Session: a typed frequency is read once the person pauses, and said once.
    open_section(&b, "session").await;
    b.choose("Sign-in frequency").await;
    until_summary(&b, "session", "Sign-in frequency: every  hours").await;
    b.js("window.rewrites.session = 0; return true;").await;
    b.fill("Every", "12").await;
    until_summary(&b, "session", "Sign-in frequency: every 12 hours").await;
    assert_eq!(
        b.js("return window.rewrites.session;").await,
        json!(1),
        "two keys, one announcement"
    );
    select(&b, "signInFrequencyUnit", "days").await;
    until_summary(&b, "session", "Sign-in frequency: every 12 days").await;
    b.screenshot("session").await;
    assert_eq!(b.js("return window.stillHere === true;").await, json!(true));

    // With reduced motion the highlight does not move.
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]}),
    )
    .await;
    b.choose("Persistent browser session").await;
    until_summary(
        &b,
        "session",
        "Sign-in frequency: every 12 days; Persistent browser: never",
    )
    .await;
    assert_eq!(
        b.js("return getComputedStyle(document.getElementById('summary-text-session')).animationName;")
            .await,
        json!("none")
    );
    b.cdp("Emulation.setEmulatedMedia", json!({"features": []}))
        .await;
    let live = all_summaries(&b).await;
    b.js("document.getElementById('section-users').scrollIntoView({block: 'start'}); return true;")
        .await;
    b.screenshot("all-sections").await;
    let violations = crate::accessibility::check(&b, "the editor after live changes").await;
    assert!(violations.is_empty(), "{violations:#?}");

    // The server's words for the same form: on the review, and after Save and a reload.
    b.click("Review changes").await;
    b.until_text("Review the change before saving").await;
    assert_eq!(all_summaries(&b).await, live, "the review's summaries");
    // The analyzer's findings about the policy as changed, before Save.
    assert!(
        b.text("#policy-analysis")
            .await
            .contains("What the analyzer finds with this change")
    );
    b.js(
        "document.getElementById('policy-analysis').scrollIntoView({block: 'start'}); return true;",
    )
    .await;
    b.screenshot("review-analysis").await;
    b.click("Save").await;
    b.until_text("The policy was saved.").await;
    b.goto(&path).await;
    b.until_text("Enable policy").await;
    assert_eq!(
        all_summaries(&b).await,
        live,
        "the saved policy's summaries"
    );
    b.screenshot("saved").await;
    let saved: Value = t
        .get(&format!("/identity/conditionalAccess/policies/{policy_id}"))
        .await
        .body;
    assert_eq!(
        saved["sessionControls"]["signInFrequency"]["type"],
        json!("days")
    );

    // A context typed with commas reads as the saved one will.
    open_section(&b, "target").await;
    b.choose("Authentication context").await;
    b.fill("Authentication contexts", "c1,c2").await;
    until_summary(&b, "target", "Authentication context: c1, c2").await;
    b.close().await;
    t.stop().await;
}

/// An export with what the editor does not model, and ids that name nothing here.
fn export_with_everything(sales: &str) -> Value {
    json!({
        "displayName": "Contoso: compliant device, terms of use, risk",
        "state": "enabled",
        "conditions": {
            "users": {"includeGroups": [sales], "excludeUsers": ["9b0c6c3e-0000-4000-8000-00000000beef"],
                      "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest",
                                                       "externalTenants": {"membershipKind": "all"}}},
            "applications": {"includeApplications": ["All"], "excludeApplications": ["44444444-0000-4000-8000-000000000002"]},
            "clientAppTypes": ["all"],
            "userRiskLevels": ["high"],
            "insiderRiskLevels": "elevated",
            "devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True"}},
            "authenticationFlows": {"transferMethods": "deviceCodeFlow"}
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice", "approvedApplication"],
                          "termsOfUse": ["5d1b4d3c-0000-4000-8000-000000000001"]},
        "sessionControls": {"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"},
                            "signInFrequency": {"isEnabled": true, "value": 4, "type": "hours"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_review_lists_what_the_editor_keeps_by_entra_name() {
    let t = TestServer::start().await;
    let sales = story::group(&t, "Sales", &[]).await;
    let files = tempfile::tempdir().expect("a folder");
    let file = files.path().join("entra-export.json");
    std::fs::write(&file, export_with_everything(&id(&sales)).to_string()).unwrap();

    let b = Browser::start("ca-import-review-kept", &t.url, WINDOWS_UA).await;
    let token = admin_session(&t).await;
    b.cdp(
        "Network.setCookie",
        json!({"name": "portcullis_session", "value": token, "url": t.url, "httpOnly": true}),
    )
    .await;
    b.goto("/admin/conditional-access/import").await;
    b.until_text("Import policies").await;
    let document = b.cdp("DOM.getDocument", json!({})).await;
    let input = b
        .cdp(
            "DOM.querySelector",
            json!({"nodeId": document["root"]["nodeId"], "selector": "#file"}),
        )
        .await;
    b.cdp(
        "DOM.setFileInputFiles",
        json!({"nodeId": input["nodeId"], "files": [file.display().to_string()]}),
    )
    .await;
    b.click("Review").await;
    b.until_text("Review the import").await;
    let kept = b.text("#import-kept-0").await;
    for expected in [
        "Require device to be marked as compliant (grantControls.builtInControls: compliantDevice)",
        "Require approved client app (grantControls.builtInControls: approvedApplication)",
        "Terms of use (grantControls.termsOfUse",
        "User risk (conditions.userRiskLevels",
        "Insider risk (conditions.insiderRiskLevels",
        "Filter for devices (conditions.devices",
        "Authentication flows (conditions.authenticationFlows",
        "Include guest or external users (conditions.users.includeGuestsOrExternalUsers",
        "Use Conditional Access App Control (sessionControls.cloudAppSecurity",
    ] {
        assert!(kept.contains(expected), "{expected}: {kept}");
    }
    let unresolved = b.text("#import-unresolved-0").await;
    assert!(
        unresolved.contains("Excluded user 9b0c6c3e-0000-4000-8000-00000000beef"),
        "{unresolved}"
    );
    assert!(
        unresolved.contains("Excluded application 44444444-0000-4000-8000-000000000002"),
        "{unresolved}"
    );
    // Proposed report-only; On is not offered while an exclusion names nobody.
    assert_eq!(
        b.js("return [document.getElementById('state-0').value, document.querySelector('#state-0 option[value=enabled]').disabled];").await,
        json!(["enabledForReportingButNotEnforced", true])
    );
    b.js("document.getElementById('import-kept-0').scrollIntoView({block: 'start'}); return true;")
        .await;
    b.screenshot("kept").await;
    b.js("document.getElementById('import-unresolved-0').scrollIntoView({block: 'center'}); return true;")
        .await;
    b.screenshot("unresolved").await;
    let violations = crate::accessibility::check(&b, "the import review").await;
    assert!(violations.is_empty(), "{violations:#?}");
    b.close().await;
    t.stop().await;
}
