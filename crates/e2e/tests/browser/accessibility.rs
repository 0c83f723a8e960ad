//! Accessibility as a test: axe-core, at the version pinned in `crates/e2e/axe/package-lock.json`
//! (installed by `scripts/install-test-deps.sh`), is injected into every page a person can reach
//! through WebDriver's execute-script and run there. Every panel of the sign-in page and of the
//! "More information required" wizard, security info and my sign-ins, every admin page (lists,
//! details, forms, a form answered with errors, confirmations) and the error pages (404, 403) are
//! checked; the test fails on any serious or critical violation and lists each one with its rule,
//! impact and the elements it found.

use std::sync::OnceLock;

use portcullis_core::directory::first_party::ADMIN_PORTAL_APP_ID;
use portcullis_core::directory::roles::GLOBAL_ADMINISTRATOR;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, PHISHING_RESISTANT, id, issue_pass};

/// axe-core's browser build, read once from where `npm ci` put it.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("axe/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is not installed at {} ({e}): run `scripts/install-test-deps.sh` (it runs `npm ci` in crates/e2e/axe)",
                path.display()
            )
        })
    })
}

/// One rule broken on one page, as axe reports it.
#[derive(Debug)]
pub struct Violation {
    page: String,
    rule: String,
    impact: String,
    help: String,
    targets: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({}) {} — at {}",
            self.page,
            self.rule,
            self.impact,
            self.help,
            self.targets.join(", ")
        )
    }
}

/// Runs axe on the page the browser shows now (WCAG 2.0/2.1 A and AA and axe's best practices)
/// and returns its serious and critical violations, labelled `page`.
pub async fn check(b: &Browser, page: &str) -> Vec<Violation> {
    // A navigation clears what was injected, so axe goes in again on every page.
    let injected = b
        .js(&format!(
            "{}\n;return typeof window.axe === 'object';",
            axe_source()
        ))
        .await;
    assert_eq!(injected, json!(true), "axe-core loaded into {page}");
    let found = b
        .js(
            "return window.axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
                 id: v.id, impact: v.impact, help: v.help,
                 targets: v.nodes.map(n => n.target.join(' '))
             })));",
        )
        .await;
    found
        .as_array()
        .expect("axe answers a list")
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| Violation {
            page: page.to_string(),
            rule: v["id"].as_str().unwrap_or_default().to_string(),
            impact: v["impact"].as_str().unwrap_or_default().to_string(),
            help: v["help"].as_str().unwrap_or_default().to_string(),
            targets: v["targets"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Opens `path`, waits for it to load, and checks it.
async fn visit(b: &Browser, path: &str, found: &mut Vec<Violation>) {
    b.goto(path).await;
    b.until(
        &format!("{path} to load"),
        "document.readyState === 'complete'",
    )
    .await;
    found.extend(check(b, path).await);
}

fn report(found: &[Violation]) -> String {
    found
        .iter()
        .map(|v| format!("  - {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_accessibility_check() {
    let t = TestServer::start().await;

    // A tenant with something on every page: Joni in a group, an application, the story's
    // policies, a named location, a custom strength, and Adele, a Global Administrator whose
    // first sign-in to the portal asks her for a passkey.
    let joni = story::user(&t, "joni@contoso.com", "Joni Sherman").await;
    let admins = story::group(&t, "Admins", &[&joni]).await;
    story::contoso_portal(&t, None).await;
    let apps = t.get("/applications").await;
    let app_object = apps.body["value"][0]["id"]
        .as_str()
        .expect("the application's object id")
        .to_string();
    story::policy(&t, story::unsupported_platforms(&admins)).await;
    let location = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Head office",
                   "isTrusted": true, "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}),
        )
        .await;
    assert_eq!(location.status, StatusCode::CREATED, "{:?}", location.body);
    let strength = t
        .post(
            "/policies/authenticationStrengthPolicies",
            json!({"displayName": "Passkeys only", "allowedCombinations": ["fido2"]}),
        )
        .await;
    assert_eq!(strength.status, StatusCode::CREATED, "{:?}", strength.body);
    let adele = story::global_administrator(&t, "adele@contoso.com", "Adele Vance").await;
    story::policy(
        &t,
        json!({
            "displayName": "Admin portal: phishing-resistant MFA",
            "state": "enabled",
            "conditions": {
                "users": {"includeRoles": [GLOBAL_ADMINISTRATOR.to_string()]},
                "applications": {"includeApplications": [ADMIN_PORTAL_APP_ID.to_string()]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}
        }),
    )
    .await;
    story::passkey_policy(&t, Some(story::VIRTUAL_AUTHENTICATOR_AAGUID)).await;
    let pass = issue_pass(&t, &id(&adele)).await;

    let b = Browser::start("accessibility", &t.url, WINDOWS_UA).await;
    b.add_authenticator("internal").await;
    let mut found = Vec::new();

    // The sign-in page, panel by panel.
    b.goto("/signin?returnTo=/admin").await;
    b.until_panel("identify").await;
    found.extend(check(&b, "sign-in: identify").await);
    b.fill("Email or username", "adele@contoso.com").await;
    b.click("Next").await;
    b.until_panel("first-factor").await;
    found.extend(check(&b, "sign-in: choose a method").await);
    b.click("Temporary Access Pass").await;
    b.until_panel("tap").await;
    found.extend(check(&b, "sign-in: Temporary Access Pass").await);
    b.fill("Temporary Access Pass", &pass).await;
    b.click("Sign in").await;

    // The "More information required" wizard.
    b.until_panel("register-intro").await;
    found.extend(check(&b, "wizard: more information required").await);
    b.click("Next").await;
    b.until_panel("register-where").await;
    found.extend(check(&b, "wizard: set up a passkey").await);
    b.click("Set up passkey using another device").await;
    b.until_panel("register-device").await;
    found.extend(check(&b, "wizard: choose your device").await);
    b.click("Back").await;
    b.until_panel("register-where").await;
    b.click("Set up passkey on this device").await;
    b.until_panel("register-name").await;
    found.extend(check(&b, "wizard: passkey created").await);
    b.fill("Passkey name", "Adele's laptop").await;
    b.click("Save").await;
    b.until_panel("prove").await;
    found.extend(check(&b, "wizard: prove it").await);
    b.click("Sign in with your passkey").await;
    b.until_path("/admin").await;

    // Adele's own pages.
    for path in ["/my/security-info", "/my/sign-ins"] {
        visit(&b, path, &mut found).await;
    }

    // Every admin page: lists, details, forms and confirmations.
    let policies = t.get("/identity/conditionalAccess/policies").await;
    let policy_id = policies.body["value"][0]["id"]
        .as_str()
        .expect("a policy id")
        .to_string();
    let sign_ins = t.get("/auditLogs/signIns?$top=1").await;
    let sign_in_id = sign_ins.body["value"][0]["id"]
        .as_str()
        .expect("a sign-in")
        .to_string();
    let joni_id = id(&joni);
    let group_id = id(&admins);
    let location_id = id(&location.body);
    let strength_id = id(&strength.body);
    // Someone in deleted users, for that list and its two confirmations.
    let gone = t
        .post(
            "/users",
            json!({"userPrincipalName": "gone@contoso.com", "displayName": "Gone Person"}),
        )
        .await;
    assert_eq!(gone.status, StatusCode::CREATED, "{:?}", gone.body);
    let gone_id = id(&gone.body);
    assert_eq!(
        t.delete(&format!("/users/{gone_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let pages = [
        "/admin".to_string(),
        "/admin/users".into(),
        "/admin/users/new".into(),
        "/admin/users?q=sher&sort=name&dir=desc".into(),
        format!("/admin/users/{joni_id}"),
        format!("/admin/users/{joni_id}/edit"),
        format!("/admin/users/{joni_id}/delete"),
        "/admin/users/deleted".into(),
        format!("/admin/users/deleted/{gone_id}/restore"),
        format!("/admin/users/deleted/{gone_id}/delete"),
        "/admin/groups".into(),
        format!("/admin/groups/{group_id}"),
        format!("/admin/groups/{group_id}/delete"),
        "/admin/applications".into(),
        format!("/admin/applications/{app_object}"),
        "/admin/conditional-access".into(),
        "/admin/conditional-access/policies/new".into(),
        format!("/admin/conditional-access/policies/{policy_id}"),
        format!("/admin/conditional-access/policies/{policy_id}/json"),
        "/admin/conditional-access/import".into(),
        "/admin/conditional-access/named-locations".into(),
        format!("/admin/conditional-access/named-locations/{location_id}"),
        "/admin/conditional-access/authentication-strengths".into(),
        format!("/admin/conditional-access/authentication-strengths/{strength_id}"),
        "/admin/conditional-access/what-if".into(),
        "/admin/conditional-access/what-if?user=joni%40contoso.com&target=applications&app=All&platform=android&clientApp=browser".into(),
        "/admin/conditional-access/analysis".into(),
        "/admin/authentication-methods".into(),
        "/admin/sign-ins".into(),
        format!("/admin/sign-ins/{sign_in_id}"),
        "/admin/audit-logs".into(),
        format!("/admin/audit-logs?initiatedBy={}", id(&adele)),
        format!("/admin/audit-logs?target={joni_id}"),
        "/admin/audit-logs?result=failure".into(),
        format!("/admin/sign-ins?userId={joni_id}"),
        "/admin/roles".into(),
        format!("/admin/roles/{GLOBAL_ADMINISTRATOR}"),
        "/admin/sign-ins?user=adele".into(),
        // Error pages.
        "/admin/no-such-page".into(),
        format!("/admin/conditional-access/authentication-strengths/{PHISHING_RESISTANT}"),
        format!("/admin/users/{}", uuid::Uuid::nil()),
        format!("/admin/users/{joni_id}/state"),
    ];
    for path in &pages {
        visit(&b, path, &mut found).await;
    }

    // An audit entry opened.
    b.goto("/admin/audit-logs").await;
    b.until(
        "the audit log's entries",
        "document.querySelectorAll('#audits-table tbody a').length > 0",
    )
    .await;
    b.js("document.querySelector('#audits-table tbody a').click(); return true;")
        .await;
    b.until(
        "an audit entry's page",
        "location.pathname.startsWith('/admin/audit-logs/') && document.readyState === 'complete'",
    )
    .await;
    found.extend(check(&b, "an audit entry").await);

    // A form answered with its errors.
    b.goto("/admin/users/new").await;
    b.fill("User principal name", "not an address").await;
    b.fill("Display name", "Someone").await;
    b.click("Create user").await;
    b.until(
        "the form with its errors",
        "document.readyState === 'complete' && document.getElementById('error-summary')",
    )
    .await;
    found.extend(check(&b, "new user: with errors").await);

    // The profile form answered with its errors.
    b.goto(&format!("/admin/users/{joni_id}/edit")).await;
    b.fill("Display name", "").await;
    b.fill("Email (optional)", "not a mail").await;
    b.click("Save profile").await;
    b.until(
        "the profile form with its errors",
        "document.readyState === 'complete' && document.getElementById('error-summary')",
    )
    .await;
    found.extend(check(&b, "edit profile: with errors").await);

    b.close().await;
    t.stop().await;
    assert!(
        found.is_empty(),
        "{} serious or critical accessibility violations:\n{}",
        found.len(),
        report(&found)
    );
}
