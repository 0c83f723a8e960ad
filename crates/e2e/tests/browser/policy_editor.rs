//! The Conditional Access editor and the import review in the browser, as an administrator who
//! knows Entra uses them: two exported files uploaded together and reviewed (one a re-import of
//! a policy the tenant has, imported as a copy; one an Entra export with an unresolved
//! exclusion, proposed report-only), then the Entra one opened in the editor: its sections,
//! the members Portcullis keeps but does not evaluate, a review that finds nothing changed (and
//! the stored JSON, read through the API, is the same), the picker adding and removing a group
//! while the break-glass exclusion stays, a platform ticked and the diff that shows it before
//! Save. A new policy with a platform ticked alone saves that platform, and a change that would
//! lock the administrator out is shown with the guard's proof before anything is saved.

use portcullis_testkit::TestServer;
use portcullis_testkit::fixtures::admin_session;
use serde_json::{Value, json};

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id};

/// A user id that is not in this directory: the exporting tenant's break-glass account.
const UNRESOLVED: &str = "9b0c6c3e-0000-4000-8000-00000000beef";
const ENTRA_ID: &str = "4f1b2c3d-0000-4000-8000-00000000000a";
const ENTRA_NAME: &str = "Contoso: compliant device or MFA on mobile";

/// A policy as Entra's Graph export writes it, nulls and annotations included.
fn entra_export(sales: &str, break_glass: &str) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies/$entity",
        "id": ENTRA_ID,
        "templateId": null,
        "displayName": ENTRA_NAME,
        "createdDateTime": "2025-11-02T09:12:44.1234567Z",
        "modifiedDateTime": null,
        "state": "enabled",
        "conditions": {
            "userRiskLevels": ["high"], "signInRiskLevels": [], "clientAppTypes": ["all"],
            "servicePrincipalRiskLevels": [], "insiderRiskLevels": null,
            "platforms": {"includePlatforms": ["android", "iOS"], "excludePlatforms": ["windows"]},
            "locations": null, "times": null, "devices": null, "clientApplications": null,
            "authenticationFlows": null,
            "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": [],
                             "includeAuthenticationContextClassReferences": [], "applicationFilter": null},
            "users": {"includeUsers": [], "excludeUsers": [break_glass, UNRESOLVED], "includeGroups": [sales],
                      "excludeGroups": [], "includeRoles": [], "excludeRoles": [],
                      "includeGuestsOrExternalUsers": null, "excludeGuestsOrExternalUsers": null}
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"], "customAuthenticationFactors": [],
                          "termsOfUse": ["5d1b4d3c-0000-4000-8000-000000000001"],
                          "authenticationStrength@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies('x')/grantControls/authenticationStrength/$entity",
                          "authenticationStrength": null},
        "sessionControls": {"disableResilienceDefaults": null, "applicationEnforcedRestrictions": null,
                            "cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}, "persistentBrowser": null, "continuousAccessEvaluation": null,
                            "secureSignInSession": null,
                            "signInFrequency": {"value": 4, "type": "hours", "authenticationType": "primaryAndSecondaryAuthentication",
                                                "frequencyInterval": "timeBased", "isEnabled": true}}
    })
}

async fn policies(t: &TestServer) -> Vec<Value> {
    t.get("/identity/conditionalAccess/policies").await.body["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn policy(t: &TestServer, id: &str) -> Value {
    t.get(&format!("/identity/conditionalAccess/policies/{id}"))
        .await
        .body
}

fn without(policy: &Value, path: &[&str]) -> Value {
    let mut policy = policy.clone();
    let (last, parents) = path.split_last().expect("a path");
    let mut at = &mut policy;
    for p in parents {
        at = &mut at[*p];
    }
    at.as_object_mut().expect("an object").remove(*last);
    policy
}

/// Opens a section of the editor, as a click on its summary does.
async fn open_section(b: &Browser, section: &str) {
    b.js(&format!(
        "document.querySelector('#section-{section} > summary').click(); return true;"
    ))
    .await;
    b.until(
        &format!("the {section} section open"),
        &format!("document.getElementById('section-{section}').open"),
    )
    .await;
}

/// Types into a picker's search box and picks the match named `name`.
async fn pick(b: &Browser, picker: &str, typed: &str, name: &str) {
    let typed = serde_json::to_string(typed).unwrap();
    b.js(&format!(
        "const box = document.getElementById('{picker}-search'); box.focus(); box.value = {typed}; box.dispatchEvent(new Event('input')); return true;"
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

/// Scrolls the element with `id` to the top of the window, for the screenshot that shows it.
async fn show(b: &Browser, id: &str) {
    b.js(&format!(
        "document.getElementById('{id}').scrollIntoView({{block: 'start'}}); return true;"
    ))
    .await;
}

async fn chips(b: &Browser, picker: &str) -> Vec<String> {
    b.js(&format!(
        "return [...document.querySelectorAll('#{picker}-chips .chip .chip-text')].map(l => l.textContent.trim());"
    ))
    .await
    .as_array()
    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_shows_and_keeps_every_field_and_the_import_is_reviewed() {
    let t = TestServer::start().await;
    let break_glass = story::user(&t, "breakglass@contoso.com", "Break Glass").await;
    let sales = story::group(&t, "Sales", &[]).await;
    story::group(&t, "Contractors", &[]).await;
    let existing = story::policy(
        &t,
        json!({
            "displayName": "Sales: require MFA",
            "state": "enabled",
            "conditions": {"users": {"includeGroups": [id(&sales)]},
                           "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
        }),
    )
    .await;
    let existing_id = id(&existing);
    // The two files: the portal's own export of a policy it has, and Entra's.
    let files = tempfile::tempdir().expect("a folder");
    let own = files.path().join("sales-require-mfa.json");
    std::fs::write(&own, policy(&t, &existing_id).await.to_string()).unwrap();
    let entra = files.path().join("entra-export.json");
    std::fs::write(
        &entra,
        entra_export(&id(&sales), &id(&break_glass)).to_string(),
    )
    .unwrap();

    let b = Browser::start("ca-editor", &t.url, WINDOWS_UA).await;
    let token = admin_session(&t).await;
    b.cdp(
        "Network.setCookie",
        json!({"name": "portcullis_session", "value": token, "url": t.url, "httpOnly": true}),
    )
    .await;

    // Upload both files at once and review them.
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
        json!({"nodeId": input["nodeId"], "files": [entra.display().to_string(), own.display().to_string()]}),
    )
    .await;
    b.click("Review").await;
    b.until_text("Review the import").await;
    b.screenshot("import-review").await;
    assert_eq!(policies(&t).await.len(), 1, "a review stores nothing");
    let review = b.text("#import-review").await;
    assert!(review.contains(ENTRA_NAME), "{review}");
    assert!(
        review.contains(UNRESOLVED),
        "the unresolved exclusion is listed: {review}"
    );
    assert!(
        review.contains("sessionControls.cloudAppSecurity"),
        "{review}"
    );
    // Entra's: proposed report-only, On not offered; the re-import: flagged, as a copy.
    assert_eq!(
        b.js("return [document.getElementById('state-0').value, document.querySelector('#state-0 option[value=enabled]').disabled];").await,
        json!(["enabledForReportingButNotEnforced", true])
    );
    assert_eq!(
        b.js("return [!!document.getElementById('import-exists-1'), document.getElementById('copy-1').checked, document.getElementById('state-1').value];").await,
        json!([true, true, "enabledForReportingButNotEnforced"])
    );
    b.click("Import the ticked policies").await;
    b.until_text("Imported 2 policies").await;
    b.screenshot("import-done").await;
    let stored = policies(&t).await;
    assert_eq!(stored.len(), 3);
    let copy = stored
        .iter()
        .find(|p| p["displayName"] == "Sales: require MFA" && p["id"] != existing_id.as_str())
        .expect("the re-import is a copy with a new id");
    assert_eq!(copy["state"], "enabledForReportingButNotEnforced");
    let imported = policy(&t, ENTRA_ID).await;
    assert_eq!(imported["state"], "enabledForReportingButNotEnforced");

    // The Entra policy in the editor: sections with their summaries, what is kept flagged.
    b.click(ENTRA_NAME).await;
    b.until_text("Enable policy").await;
    assert_eq!(
        b.text("#summary-users").await,
        "1 group included; 2 users excluded"
    );
    assert_eq!(
        b.text("#summary-platforms").await,
        "Android, iOS except Windows"
    );
    assert!(
        b.text("#summary-grant")
            .await
            .starts_with("Require multifactor authentication")
    );
    show(&b, "section-users").await;
    b.screenshot("sections").await;
    open_section(&b, "users").await;
    open_section(&b, "grant").await;
    open_section(&b, "other-conditions").await;
    open_section(&b, "session").await;
    let grant = b.text("#kept-grant").await;
    assert!(
        grant.contains("compliantDevice") && grant.contains("not evaluated by Portcullis"),
        "{grant}"
    );
    assert!(grant.contains("grantControls.termsOfUse"), "{grant}");
    assert!(
        b.text("#kept-conditions")
            .await
            .contains("Portcullis detects no risk")
    );
    assert!(
        b.text("#kept-session")
            .await
            .contains("not enforced by Portcullis")
    );
    assert!(
        b.text("#excludeUsers-chips")
            .await
            .contains("Not in this directory")
    );
    show(&b, "kept-grant").await;
    b.screenshot("kept-and-unresolved").await;

    // Reviewed unchanged: nothing to save, and the stored JSON is the same.
    b.click("Review changes").await;
    b.until_text("Nothing changed").await;
    assert_eq!(policy(&t, ENTRA_ID).await, imported, "every field survives");

    // The picker: a group added to the exclusions and removed again; the break-glass
    // exclusion and the unresolved one stay.
    open_section(&b, "users").await;
    pick(&b, "excludeGroups", "contr", "Contractors").await;
    assert_eq!(chips(&b, "excludeGroups").await, ["Contractors"]);
    show(&b, "excludeUsers-chips").await;
    b.screenshot("picker").await;
    b.click_within("//ul[@id='excludeGroups-chips']", "Remove")
        .await;
    assert!(chips(&b, "excludeGroups").await.is_empty());
    let excluded = chips(&b, "excludeUsers").await;
    assert_eq!(excluded.len(), 2, "{excluded:?}");
    assert!(
        excluded[0].contains("breakglass@contoso.com"),
        "{excluded:?}"
    );

    // A platform excluded: the diff shows it before Save, and Save stores it and nothing else.
    open_section(&b, "platforms").await;
    b.js("document.getElementById('exclude-platform-macOS').click(); return true;")
        .await;
    b.click("Review changes").await;
    // The page before held a review too ("Nothing changed"), so its heading says nothing about
    // whether the new one has arrived: wait for the new review's diff itself.
    b.until(
        "the review's diff",
        "document.readyState === 'complete' && document.querySelector('#policy-diff tr.diff-added') !== null",
    )
    .await;
    let added = b
        .js("return [...document.querySelectorAll('#policy-diff tr.diff-added')].map(r => r.innerText).join('\\n');")
        .await;
    assert!(
        added.as_str().unwrap_or_default().contains("macOS"),
        "{added}"
    );
    show(&b, "policy-review").await;
    b.screenshot("diff").await;
    b.click("Save").await;
    b.until_text("The policy was saved.").await;
    let saved = policy(&t, ENTRA_ID).await;
    assert_eq!(
        saved["conditions"]["platforms"]["excludePlatforms"],
        json!(["windows", "macOS"])
    );
    assert_eq!(
        without(
            &without(&saved, &["modifiedDateTime"]),
            &["conditions", "platforms"]
        ),
        without(
            &without(&imported, &["modifiedDateTime"]),
            &["conditions", "platforms"]
        ),
        "only the platforms changed"
    );

    // A new policy with one platform ticked, and no switch to turn on: it saves that platform.
    b.goto("/admin/conditional-access/policies/new").await;
    b.until_text("Enable policy").await;
    b.fill("Name", "Sales on Android: block").await;
    open_section(&b, "users").await;
    pick(&b, "includeGroups", "sal", "Sales").await;
    open_section(&b, "grant").await;
    b.choose("Block access").await;
    open_section(&b, "platforms").await;
    b.choose("Android").await;
    b.click("Create").await;
    b.until_text("The policy was created.").await;
    let android = policies(&t)
        .await
        .into_iter()
        .find(|p| p["displayName"] == "Sales on Android: block")
        .expect("created");
    assert_eq!(
        android["conditions"]["platforms"]["includePlatforms"],
        json!(["android"])
    );

    // A change that would lock the administrator out: the guard's proof before any save.
    let before = policy(&t, &existing_id).await;
    b.goto(&format!("/admin/conditional-access/policies/{existing_id}"))
        .await;
    b.until_text("Enable policy").await;
    open_section(&b, "users").await;
    b.choose("All users").await;
    open_section(&b, "grant").await;
    b.choose("Block access").await;
    b.click("Review changes").await;
    b.until_text("This change would lock administrators out")
        .await;
    show(&b, "policy-lockout").await;
    b.screenshot("lockout").await;
    assert!(b.text("#policy-diff").await.contains("block"));
    assert_eq!(policy(&t, &existing_id).await, before, "nothing saved");
    b.close().await;
    t.stop().await;
}
