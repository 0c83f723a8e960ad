//! The admin portal over HTTP: pages render for an administrator with what a person checks,
//! people without the role are refused with a page naming it, forms change data (checked
//! through the Graph API), bad input changes nothing and is answered beside the field, and a
//! form posted from another origin is refused.

use portcullis_testkit::fixtures::{
    ANDROID, WINDOWS, admin_session, issue_pass, person_with_roles,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

const CONDITIONAL_ACCESS_ADMINISTRATOR: &str = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9";
pub(crate) const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";

/// A browser signed in to the portal: its session cookie, and redirects left for the test to
/// see.
pub(crate) struct Browser {
    url: String,
    cookie: Option<String>,
    http: reqwest::Client,
}

/// What a page answered.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) html: String,
}

impl Browser {
    pub(crate) fn new(t: &TestServer, token: Option<String>) -> Self {
        Browser {
            url: t.url.clone(),
            cookie: token.map(|t| format!("portcullis_session={t}")),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn page(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            html: response.text().await.unwrap(),
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        let request = self.with_cookie(self.http.get(format!("{}{path}", self.url)));
        Self::page(request.send().await.unwrap()).await
    }

    /// Posts a form as the portal's own page does: same origin.
    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(Some(&self.url.clone()), path, form).await
    }

    async fn post_from(&self, origin: Option<&str>, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self
            .with_cookie(self.http.post(format!("{}{path}", self.url)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded_pairs(form));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        Self::page(request.send().await.unwrap()).await
    }

    /// Uploads one file as the import form does (`multipart/form-data`).
    pub(crate) async fn upload(&self, path: &str, file: &[u8]) -> Page {
        let boundary = "----portcullis-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"policy.json\"\r\nContent-Type: application/json\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = self
            .with_cookie(self.http.post(format!("{}{path}", self.url)))
            .header("origin", &self.url)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        Self::page(request.send().await.unwrap()).await
    }
}

fn serde_urlencoded_pairs(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The bootstrap administrator (Global Administrator), signed in with their first-start pass.
pub(crate) async fn admin(t: &TestServer) -> Browser {
    Browser::new(t, Some(admin_session(t).await))
}

/// A new person holding `roles`, signed in with a pass the admin API issued them.
pub(crate) async fn person(t: &TestServer, upn: &str, roles: &[&str]) -> (String, Browser) {
    let (id, token) = person_with_roles(t, upn, upn, roles).await;
    (id, Browser::new(t, Some(token)))
}

/// The text of the element with `id`, as the page has it (escaped).
pub(crate) fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in:\n{html}"));
    let rest = &html[start..];
    let open_end = rest.find('>').unwrap() + 1;
    let rest = &rest[open_end..];
    &rest[..rest.find('<').unwrap()]
}

pub(crate) fn redirected_to(page: &Page, prefix: &str) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let location = page.location.clone().unwrap();
    assert!(location.starts_with(prefix), "{location}");
    location
}

async fn app_count(t: &TestServer) -> usize {
    t.get("/applications?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .len()
}

async fn user_count(t: &TestServer) -> usize {
    t.get("/users?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn people_sign_in_first_and_without_the_role_are_told_which_role_opens_the_page() {
    let t = TestServer::start().await;
    // No session: to the sign-in page, and back here afterwards.
    let anonymous = Browser::new(&t, None);
    let page = anonymous.get("/admin/users?upn=jo").await;
    assert_eq!(
        redirected_to(&page, "/signin?"),
        "/signin?returnTo=%2Fadmin%2Fusers%3Fupn%3Djo"
    );

    // Signed in, but no role: refused everywhere, with the role to ask for.
    let (_, nobody) = person(&t, "nobody@contoso.com", &[]).await;
    let home = nobody.get("/admin").await;
    assert_eq!(home.status, StatusCode::FORBIDDEN);
    assert_eq!(
        element(&home.html, "forbidden-title"),
        "You don't have access to the admin portal"
    );
    let users = nobody.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    assert_eq!(element(&users.html, "role-needed"), "User Administrator");

    // A Reports Reader reads the logs, and nothing else.
    let (_, reader) = person(&t, "reader@contoso.com", &[REPORTS_READER]).await;
    assert_eq!(reader.get("/admin").await.status, StatusCode::OK);
    assert_eq!(reader.get("/admin/sign-ins").await.status, StatusCode::OK);
    assert_eq!(reader.get("/admin/audit-logs").await.status, StatusCode::OK);
    let policies = reader.get("/admin/conditional-access").await;
    assert_eq!(policies.status, StatusCode::FORBIDDEN);
    let nav = reader.get("/admin").await.html;
    assert!(nav.contains("href=\"/admin/sign-ins\""));
    assert!(
        !nav.contains("href=\"/admin/users\""),
        "no way to pages they cannot open"
    );

    // A Conditional Access Administrator cannot create users or issue passes, even by posting.
    let (_, ca_admin) = person(&t, "ca@contoso.com", &[CONDITIONAL_ACCESS_ADMINISTRATOR]).await;
    let before = user_count(&t).await;
    let refused = ca_admin
        .post(
            "/admin/users",
            &[
                ("userPrincipalName", "sneaky@contoso.com"),
                ("displayName", "Sneaky"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(element(&refused.html, "role-needed"), "User Administrator");
    assert_eq!(user_count(&t).await, before, "nothing created");
    t.stop().await;
}

#[tokio::test]
async fn an_administrator_looks_after_a_user_in_the_portal() {
    let t = TestServer::start().await;
    let admin_browser = admin(&t).await;
    let home = admin_browser.get("/admin").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    assert!(home.html.contains("Global Administrator"));
    assert!(home.html.contains("href=\"/admin/users\""));

    // Create: bad input first — answered beside the field, nothing created.
    let before = user_count(&t).await;
    let bad = admin_browser
        .post(
            "/admin/users",
            &[("userPrincipalName", "not an upn"), ("displayName", "Joni")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(element(&bad.html, "userPrincipalName-error").contains("name@domain"));
    assert!(bad.html.contains("aria-invalid=\"true\""));
    assert!(
        bad.html.contains("value=\"Joni\""),
        "what was typed is kept"
    );
    assert_eq!(user_count(&t).await, before);

    let created = admin_browser
        .post(
            "/admin/users",
            &[
                ("userPrincipalName", "joni@contoso.com"),
                ("displayName", "Joni <Sherman>"),
                ("accountEnabled", "true"),
            ],
        )
        .await;
    let location = redirected_to(&created, "/admin/users/");
    assert!(location.ends_with("?done=user-created"));
    let joni = t.get("/users/joni@contoso.com").await.body;
    assert_eq!(joni["displayName"], "Joni <Sherman>");
    let joni_id = joni["id"].as_str().unwrap().to_string();
    let page = admin_browser.get(&location).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("The user was created."));
    assert!(page.html.contains("Joni &lt;Sherman&gt;"), "escaped");
    assert!(!page.html.contains("Joni <Sherman>"));

    // A taken name is a conflict beside the field.
    let taken = admin_browser
        .post(
            "/admin/users",
            &[
                ("userPrincipalName", "joni@contoso.com"),
                ("displayName", "Other"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.html.contains("id=\"userPrincipalName-error\""));

    // The list filters by what is in the URL.
    let list = admin_browser.get("/admin/users?upn=joni").await;
    assert!(list.html.contains("joni@contoso.com"));
    let none = admin_browser.get("/admin/users?upn=zz").await;
    assert!(none.html.contains("No users match."));
    assert_eq!(
        admin_browser
            .get("/admin/users?state=sideways")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Disable and enable.
    let user_path = format!("/admin/users/{joni_id}");
    redirected_to(
        &admin_browser
            .post(
                &format!("{user_path}/state"),
                &[("accountEnabled", "false")],
            )
            .await,
        &user_path,
    );
    assert_eq!(
        t.get(&format!("/users/{joni_id}")).await.body["accountEnabled"],
        false
    );
    redirected_to(
        &admin_browser
            .post(&format!("{user_path}/state"), &[("accountEnabled", "true")])
            .await,
        &user_path,
    );
    assert_eq!(
        t.get(&format!("/users/{joni_id}")).await.body["accountEnabled"],
        true
    );

    // Groups: by name; an unknown group is an error beside the field.
    t.post("/groups", json!({"displayName": "Admins"})).await;
    let unknown = admin_browser
        .post(&format!("{user_path}/groups"), &[("group", "Nope")])
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(element(&unknown.html, "group-error").contains("No group is named"));
    redirected_to(
        &admin_browser
            .post(&format!("{user_path}/groups"), &[("group", "Admins")])
            .await,
        &user_path,
    );
    let member_of = t.get(&format!("/users/{joni_id}/memberOf")).await.body;
    assert_eq!(member_of["value"][0]["displayName"], "Admins");

    // Roles.
    redirected_to(
        &admin_browser
            .post(
                &format!("{user_path}/roles"),
                &[("role", CONDITIONAL_ACCESS_ADMINISTRATOR)],
            )
            .await,
        &user_path,
    );
    let roles = t
        .get(&format!(
            "/roleManagement/directory/roleAssignments?$filter=principalId eq '{joni_id}'"
        ))
        .await
        .body;
    assert_eq!(
        roles["value"][0]["roleDefinitionId"],
        CONDITIONAL_ACCESS_ADMINISTRATOR
    );
    let page = admin_browser.get(&user_path).await.html;
    assert!(page.contains("Conditional Access Administrator"));

    // A Temporary Access Pass: out of the policy's range first (nothing issued), then shown once.
    let passes = format!("/users/{joni_id}/authentication/temporaryAccessPassMethods");
    let too_short = admin_browser
        .post(&format!("{user_path}/pass"), &[("lifetimeInMinutes", "5")])
        .await;
    assert_eq!(too_short.status, StatusCode::BAD_REQUEST);
    assert!(element(&too_short.html, "lifetimeInMinutes-error").contains("60 to 480"));
    assert_eq!(t.get(&passes).await.body["value"], json!([]));
    let issued = admin_browser
        .post(
            &format!("{user_path}/pass"),
            &[("lifetimeInMinutes", "120"), ("isUsableOnce", "true")],
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.html);
    let pass = element(&issued.html, "temporary-access-pass").to_string();
    assert!(pass.len() >= 8);
    assert!(issued.html.contains("id=\"copy-pass\""));
    assert!(element(&issued.html, "pass-one-time").starts_with("Yes"));
    // The end is a <time> the browser shows in its own zone.
    assert!(
        issued.html.contains("id=\"pass-end\"><time datetime=\""),
        "{}",
        issued.html
    );
    assert_eq!(
        issued.html.matches(&pass).count(),
        1,
        "shown once on the page"
    );
    // The page that lists it never shows it again.
    assert!(!admin_browser.get(&user_path).await.html.contains(&pass));
    let (signed_in, _) = t.sign_in_with_pass(&t.url, "joni@contoso.com", &pass).await;
    assert_eq!(signed_in.status, StatusCode::OK, "the pass works");

    // Revoke.
    let listed = t.get(&passes).await.body;
    let pass_id = listed["value"][0]["id"].as_str().unwrap().to_string();
    redirected_to(
        &admin_browser
            .post(&format!("{user_path}/pass/{pass_id}/delete"), &[])
            .await,
        &user_path,
    );
    assert_eq!(t.get(&passes).await.body["value"], json!([]));

    // Every change is audited with the person who made it.
    let admin_id = t
        .get(&format!("/users/{}", t.bootstrap.admin_user_principal_name))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let audits = t
        .get(&format!(
            "/auditLogs/directoryAudits?$filter=initiatedBy/user/id eq '{admin_id}'&$top=999"
        ))
        .await
        .body;
    let activities: Vec<&str> = audits["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activityDisplayName"].as_str().unwrap())
        .collect();
    for expected in [
        "Add user",
        "Disable account",
        "Enable account",
        "Add member to group",
        "Add member to role",
        "Admin registered temporary access pass method for user",
        "Admin deleted security info",
    ] {
        assert!(
            activities.contains(&expected),
            "{expected} in {activities:?}"
        );
    }
    let audit_page = admin_browser
        .get("/admin/audit-logs?activity=Add%20user")
        .await;
    assert!(
        audit_page
            .html
            .contains(&t.bootstrap.admin_user_principal_name)
    );
    t.stop().await;
}

/// The value of the hidden field named `name`, as the browser would send it.
pub(crate) fn hidden_value(html: &str, name: &str) -> String {
    let start = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in:\n{html}"))
        + name.len()
        + 15;
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

/// An edit as the editor makes it: reviewed (the diff, the guard, the impact), then saved with
/// the review's digest. Returns the save's answer.
pub(crate) async fn reviewed_and_saved(browser: &Browser, id: &str, form: &[(&str, &str)]) -> Page {
    let path = format!("/admin/conditional-access/policies/{id}");
    let mut review = form.to_vec();
    review.push(("intent", "review"));
    let page = browser.post(&path, &review).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"policy-review\""), "{}", page.html);
    let digest = hidden_value(&page.html, "reviewed");
    let mut save = form.to_vec();
    save.push(("intent", "save"));
    save.push(("reviewed", &digest));
    browser.post(&path, &save).await
}

/// The story's platform policy through the form.
fn platform_policy_form(name: &str, group: &str, state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("displayName", name.to_string()),
        ("usersInclude", "select".into()),
        ("includeGroups", group.to_string()),
        ("target", "applications".into()),
        ("appsInclude", "all".into()),
        ("platformsInclude", "all".into()),
        ("excludePlatforms", "windows".into()),
        ("grant", "block".into()),
        ("operator", "OR".into()),
        ("state", state.to_string()),
    ]
}

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn policies(t: &TestServer) -> Vec<Value> {
    t.get("/identity/conditionalAccess/policies").await.body["value"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn conditional_access_policies_are_made_edited_and_imported_in_the_portal() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let group = t
        .post("/groups", json!({"displayName": "Admins"}))
        .await
        .body;
    let group_id = group["id"].as_str().unwrap().to_string();
    let form = platform_policy_form("Passkey test: unsupported platforms", &group_id, "enabled");

    // Bad input: no name, and MFA beside a strength (core's rule) — nothing is saved.
    let mut nameless = form.clone();
    nameless[0].1 = String::new();
    let page = browser
        .post("/admin/conditional-access/policies", &pairs(&nameless))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.html.contains("id=\"displayName-error\""),
        "{}",
        page.html
    );
    let mut both = form.clone();
    both.retain(|(k, _)| *k != "grant");
    both.extend([
        ("grant", "grant".into()),
        ("requireMfa", "true".into()),
        (
            "authenticationStrength",
            "00000000-0000-0000-0000-000000000004".into(),
        ),
    ]);
    let page = browser
        .post("/admin/conditional-access/policies", &pairs(&both))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.html.contains("id=\"grantControls-error\""),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("value=\"Passkey test: unsupported platforms\"")
    );
    assert!(policies(&t).await.is_empty(), "nothing saved");

    // The happy path.
    let created = browser
        .post("/admin/conditional-access/policies", &pairs(&form))
        .await;
    let location = redirected_to(&created, "/admin/conditional-access/policies/");
    let stored = policies(&t).await;
    assert_eq!(stored.len(), 1);
    let policy = &stored[0];
    let id = policy["id"].as_str().unwrap().to_string();
    assert_eq!(policy["state"], "enabled");
    assert_eq!(
        policy["conditions"]["users"]["includeGroups"],
        json!([group_id])
    );
    assert_eq!(
        policy["conditions"]["platforms"]["includePlatforms"],
        json!(["all"])
    );
    assert_eq!(
        policy["conditions"]["platforms"]["excludePlatforms"],
        json!(["windows"])
    );
    assert_eq!(policy["grantControls"]["builtInControls"], json!(["block"]));

    // The list and the form show it as a person checks it.
    let list = browser.get("/admin/conditional-access").await.html;
    assert!(list.contains("Passkey test: unsupported platforms"));
    assert!(list.contains("Block access"));
    assert!(list.contains(">On<"));
    let edit = browser.get(&location).await.html;
    assert!(edit.contains(
        "id=\"exclude-platform-windows\" name=\"excludePlatforms\" value=\"windows\" checked"
    ));

    // Edit it to report-only.
    let mut report_only = form.clone();
    report_only.retain(|(k, _)| *k != "state");
    report_only.push(("state", "enabledForReportingButNotEnforced".into()));
    redirected_to(
        &reviewed_and_saved(&browser, &id, &pairs(&report_only)).await,
        &format!("/admin/conditional-access/policies/{id}"),
    );
    let stored = t
        .get(&format!("/identity/conditionalAccess/policies/{id}"))
        .await
        .body;
    assert_eq!(stored["state"], "enabledForReportingButNotEnforced");
    assert!(
        browser
            .get("/admin/conditional-access")
            .await
            .html
            .contains(">Report-only<")
    );

    // A bad edit changes nothing.
    let mut bad = report_only.clone();
    bad.push(("platformsInclude", "select".into()));
    bad.retain(|(k, v)| !(*k == "platformsInclude" && v == "all"));
    let page = browser
        .post(
            &format!("/admin/conditional-access/policies/{id}"),
            &pairs(&bad),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("id=\"conditions-platforms-error\""));
    assert_eq!(
        t.get(&format!("/identity/conditionalAccess/policies/{id}"))
            .await
            .body,
        stored
    );

    // JSON view.
    let view = browser
        .get(&format!("/admin/conditional-access/policies/{id}/json"))
        .await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(
        view.html
            .contains(&format!("&quot;id&quot;: &quot;{id}&quot;"))
            || view.html.contains(&id)
    );

    // Import an exported file: UTF-16 with a byte-order mark, as Entra's export may be.
    let export = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies/$entity",
        "displayName": "Imported: require MFA",
        "state": "disabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
            "signInRiskLevels": [], "userRiskLevels": []
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    })
    .to_string();
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in export.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let review = browser
        .upload("/admin/conditional-access/import", &utf16)
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.html);
    assert!(review.html.contains("id=\"import-review\""));
    assert!(policies(&t).await.len() == 1, "a review stores nothing");
    let document = hidden_value(&review.html, "document-0");
    let imported = browser
        .post(
            "/admin/conditional-access/import/reviewed",
            &[
                ("count", "1"),
                ("document-0", &document),
                ("file-0", "policy.json"),
                ("import-0", "true"),
                ("state-0", "disabled"),
            ],
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.html);
    assert!(imported.html.contains("class=\"imported-policy\""));
    assert!(
        policies(&t)
            .await
            .iter()
            .any(|p| p["displayName"] == "Imported: require MFA")
    );
    let broken = browser
        .upload("/admin/conditional-access/import", b"{ not json")
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert!(broken.html.contains("id=\"file-error\""));
    assert_eq!(policies(&t).await.len(), 2, "nothing more imported");

    // What If: an Android sign-in by a member of the group meets the policy.
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni"}),
        )
        .await
        .body;
    t.post(
        &format!("/groups/{group_id}/members/$ref"),
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", joni["id"].as_str().unwrap())}),
    )
    .await;
    let app = t
        .post("/applications", json!({"displayName": "Contoso Portal"}))
        .await
        .body;
    let what_if = browser
        .get(&format!(
            "/admin/conditional-access/what-if?user=joni%40contoso.com&target=applications&app={}&platform=android",
            app["appId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(what_if.status, StatusCode::OK, "{}", what_if.html);
    let table = &what_if.html[what_if.html.find("id=\"what-if-table\"").unwrap()..];
    let row = &table[table.find("Passkey test: unsupported platforms").unwrap()..];
    assert!(
        row[..row.find("</tr>").unwrap()].contains("<td>Yes</td>"),
        "{row}"
    );
    let unknown = browser
        .get("/admin/conditional-access/what-if?user=nobody%40contoso.com&app=x")
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.html.contains("id=\"user-error\""));

    // Delete.
    redirected_to(
        &browser
            .post(
                &format!("/admin/conditional-access/policies/{id}/delete"),
                &[],
            )
            .await,
        "/admin/conditional-access",
    );
    assert_eq!(policies(&t).await.len(), 1);
    t.stop().await;
}

async fn flow_step(t: &TestServer, ua: &str, path: &str, body: Value) -> Value {
    let r = t
        .http
        .post(format!("{}{path}", t.url))
        .header("user-agent", ua)
        .json(&body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

/// Joni signs in to the application from `ua` with a fresh pass; the flow's answer.
async fn joni_signs_in(t: &TestServer, joni_id: &str, app_id: &str, ua: &str) -> Value {
    let started = flow_step(t, ua, "/signin/flows", json!({"clientId": app_id})).await;
    let flow = started["flowId"].as_str().unwrap().to_string();
    flow_step(
        t,
        ua,
        &format!("/signin/flows/{flow}/identify"),
        json!({"username": "joni@contoso.com"}),
    )
    .await;
    let pass = issue_pass(t, joni_id, json!({})).await;
    flow_step(
        t,
        ua,
        &format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": pass}),
    )
    .await
}

#[tokio::test]
async fn sign_in_logs_show_each_policy_with_its_result_and_why() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let group = t
        .post("/groups", json!({"displayName": "Admins"}))
        .await
        .body;
    let group_id = group["id"].as_str().unwrap().to_string();
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni"}),
        )
        .await
        .body;
    let joni_id = joni["id"].as_str().unwrap().to_string();
    t.post(
        &format!("/groups/{group_id}/members/$ref"),
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{joni_id}")}),
    )
    .await;
    let app = t
        .post("/applications", json!({"displayName": "Contoso Portal"}))
        .await
        .body;
    let app_id = app["appId"].as_str().unwrap().to_string();
    let form = platform_policy_form("Passkey test: unsupported platforms", &group_id, "enabled");
    redirected_to(
        &browser
            .post("/admin/conditional-access/policies", &pairs(&form))
            .await,
        "/admin/conditional-access/policies/",
    );

    let blocked = joni_signs_in(&t, &joni_id, &app_id, ANDROID).await;
    assert_eq!(blocked["errorCode"], 53003, "{blocked:?}");
    joni_signs_in(&t, &joni_id, &app_id, WINDOWS).await;

    // The table, filtered in the URL.
    let list = browser.get("/admin/sign-ins?user=joni&app=Contoso").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.html.matches("<td>Contoso Portal</td>").count(),
        2,
        "{}",
        list.html
    );
    let failures = browser
        .get("/admin/sign-ins?user=joni&status=53003")
        .await
        .html;
    assert_eq!(failures.matches("<td>Contoso Portal</td>").count(), 1);
    let ca_failures = browser.get("/admin/sign-ins?caStatus=failure").await.html;
    assert_eq!(ca_failures.matches("<td>Contoso Portal</td>").count(), 1);
    let today = time::OffsetDateTime::now_utc().date();
    let later = browser
        .get(&format!(
            "/admin/sign-ins?from={}",
            today + time::Duration::days(2)
        ))
        .await
        .html;
    assert!(later.contains("No sign-ins match."));
    let bad = browser.get("/admin/sign-ins?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("id=\"from-error\""));

    // The blocked entry's three tabs.
    let entry_id = {
        let start =
            failures.find("href=\"/admin/sign-ins/").unwrap() + "href=\"/admin/sign-ins/".len();
        failures[start..start + 36].to_string()
    };
    let basic = browser.get(&format!("/admin/sign-ins/{entry_id}")).await;
    assert_eq!(basic.status, StatusCode::OK);
    assert_eq!(element(&basic.html, "error-code"), "53003");
    assert!(basic.html.contains("Android"));
    let auth = browser
        .get(&format!("/admin/sign-ins/{entry_id}?tab=authentication"))
        .await
        .html;
    assert!(auth.contains("Temporary Access Pass"));
    let ca = browser
        .get(&format!(
            "/admin/sign-ins/{entry_id}?tab=conditional-access"
        ))
        .await
        .html;
    assert_eq!(element(&ca, "ca-status"), "Failure");
    assert!(ca.contains("Passkey test: unsupported platforms"));
    assert!(ca.contains("the policy blocks access"), "{ca}");

    // The Windows entry: the policy did not apply, and the page says why.
    let all = browser.get("/admin/sign-ins?user=joni").await.html;
    let ids: Vec<String> = all
        .match_indices("href=\"/admin/sign-ins/")
        .map(|(i, m)| all[i + m.len()..i + m.len() + 36].to_string())
        .filter(|id| *id != entry_id)
        .collect();
    let windows = browser
        .get(&format!(
            "/admin/sign-ins/{}?tab=conditional-access",
            ids[0]
        ))
        .await
        .html;
    assert!(windows.contains("Not applied"), "{windows}");
    assert!(windows.contains("devicePlatform"), "{windows}");

    // An unknown entry is a friendly 404.
    let missing = browser
        .get("/admin/sign-ins/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test]
async fn a_form_posted_from_another_origin_is_refused() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let before = user_count(&t).await;
    let form = [
        ("userPrincipalName", "csrf@contoso.com"),
        ("displayName", "CSRF"),
    ];
    let foreign = browser
        .post_from(Some("https://evil.example"), "/admin/users", &form)
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let no_origin = browser.post_from(None, "/admin/users", &form).await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    assert_eq!(user_count(&t).await, before, "nothing created");
    // The JSON sign-in endpoints still take no form, even from this origin.
    let as_form = browser
        .post(
            "/auth/tap",
            &[("username", "x"), ("temporaryAccessPass", "y")],
        )
        .await;
    assert!(as_form.status.is_client_error());
    assert_ne!(
        as_form.status,
        StatusCode::UNAUTHORIZED,
        "refused before any attempt"
    );
    // From the portal itself it works.
    let own = browser.post("/admin/users", &form).await;
    redirected_to(&own, "/admin/users/");
    assert_eq!(user_count(&t).await, before + 1);
    t.stop().await;
}

#[tokio::test]
async fn applications_groups_locations_and_method_policies_are_managed_in_the_portal() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let before = app_count(&t).await;

    // Applications: a bad redirect URI is refused beside its field; then one is registered.
    let bad = browser
        .post(
            "/admin/applications",
            &[
                ("displayName", "Contoso Portal"),
                ("web.redirectUris", "http://contoso.example/cb"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(element(&bad.html, "web.redirectUris-error").contains("https"));
    assert_eq!(app_count(&t).await, before);
    let created = browser
        .post(
            "/admin/applications",
            &[
                ("displayName", "Contoso Portal"),
                ("web.redirectUris", "https://contoso.example/cb"),
            ],
        )
        .await;
    let location = redirected_to(&created, "/admin/applications/");
    let app_id = location
        .trim_start_matches("/admin/applications/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let app = t.get(&format!("/applications/{app_id}")).await.body;
    assert_eq!(
        app["web"]["redirectUris"],
        json!(["https://contoso.example/cb"])
    );

    // A secret, shown once; only its hint is kept.
    let secret_page = browser
        .post(
            &format!("/admin/applications/{app_id}/secrets"),
            &[("description", "CI"), ("months", "6")],
        )
        .await;
    assert_eq!(secret_page.status, StatusCode::OK, "{}", secret_page.html);
    let secret = element(&secret_page.html, "client-secret").to_string();
    let app = t.get(&format!("/applications/{app_id}")).await.body;
    let hint = app["passwordCredentials"][0]["hint"].as_str().unwrap();
    assert!(secret.starts_with(hint));
    let later = browser
        .get(&format!("/admin/applications/{app_id}"))
        .await
        .html;
    assert!(!later.contains(&secret), "never shown again");
    assert!(
        t.client_token(app["appId"].as_str().unwrap(), &secret)
            .await
            .is_ok()
    );

    // Groups: create, then add a member by sign-in name.
    let created = browser
        .post("/admin/groups", &[("displayName", "Admins")])
        .await;
    let group_path = redirected_to(&created, "/admin/groups/");
    let group_path = group_path.split('?').next().unwrap().to_string();
    let upn = t.bootstrap.admin_user_principal_name.clone();
    redirected_to(
        &browser
            .post(&format!("{group_path}/members"), &[("member", &upn)])
            .await,
        &group_path,
    );
    let nobody = browser
        .post(
            &format!("{group_path}/members"),
            &[("member", "nobody@contoso.com")],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);
    assert!(element(&nobody.html, "member-error").contains("nobody@contoso.com"));
    let members = t
        .get(&format!("{}/members", group_path.replace("/admin", "")))
        .await
        .body;
    assert_eq!(members["value"].as_array().unwrap().len(), 1);

    // Named locations: a mask too wide is refused; a good one is created.
    let wide = browser
        .post(
            "/admin/conditional-access/named-locations",
            &[
                ("displayName", "Office"),
                ("kind", "ip"),
                ("ipRanges", "10.0.0.0/4"),
            ],
        )
        .await;
    assert!(wide.status.is_client_error(), "{}", wide.html);
    let ok = browser
        .post(
            "/admin/conditional-access/named-locations",
            &[
                ("displayName", "Office"),
                ("kind", "ip"),
                ("ipRanges", "203.0.113.0/24"),
                ("isTrusted", "true"),
            ],
        )
        .await;
    redirected_to(&ok, "/admin/conditional-access/named-locations");
    let locations = t
        .get("/identity/conditionalAccess/namedLocations")
        .await
        .body;
    assert_eq!(locations["value"].as_array().unwrap().len(), 1);
    assert_eq!(locations["value"][0]["isTrusted"], true);

    // The passkey policy: an AAGUID allow-list; a malformed AAGUID changes nothing.
    const FIDO2: &str =
        "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";
    let stored = t.get(FIDO2).await.body;
    let methods = browser.get("/admin/authentication-methods").await;
    assert!(
        methods.html.contains("id=\"self-reported-note\""),
        "says AAGUIDs are self-reported"
    );
    let fido2_form = |aaguid: &'static str| {
        vec![
            ("state", "enabled"),
            ("isSelfServiceRegistrationAllowed", "true"),
            ("keyRestrictionsEnforced", "true"),
            ("enforcementType", "allow"),
            ("aaGuids", aaguid),
        ]
    };
    let refused = browser
        .post(
            "/admin/authentication-methods/fido2",
            &fido2_form("not-a-guid"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert_eq!(t.get(FIDO2).await.body, stored);
    redirected_to(
        &browser
            .post(
                "/admin/authentication-methods/fido2",
                &fido2_form("90A3CCDF-635C-4729-A248-9B709135078F"),
            )
            .await,
        "/admin/authentication-methods",
    );
    let saved = t.get(FIDO2).await.body;
    assert_eq!(saved["keyRestrictions"]["isEnforced"], true);
    assert_eq!(saved["keyRestrictions"]["enforcementType"], "allow");
    assert_eq!(
        saved["keyRestrictions"]["aaGuids"],
        json!(["90a3ccdf-635c-4729-a248-9b709135078f"])
    );

    // The pass policy's lifetimes.
    const TAP: &str = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass";
    let pass_form = |min: &'static str| {
        vec![
            ("state", "enabled"),
            ("minimumLifetimeInMinutes", min),
            ("maximumLifetimeInMinutes", "480"),
            ("defaultLifetimeInMinutes", "120"),
            ("defaultLength", "12"),
            ("isUsableOnce", "true"),
        ]
    };
    let refused = browser
        .post(
            "/admin/authentication-methods/temporary-access-pass",
            &pass_form("5"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .html
            .contains("id=\"minimumLifetimeInMinutes-error\"")
    );
    assert_eq!(t.get(TAP).await.body["minimumLifetimeInMinutes"], 60);
    redirected_to(
        &browser
            .post(
                "/admin/authentication-methods/temporary-access-pass",
                &pass_form("30"),
            )
            .await,
        "/admin/authentication-methods",
    );
    let tap = t.get(TAP).await.body;
    assert_eq!(
        (
            tap["minimumLifetimeInMinutes"].clone(),
            tap["defaultLength"].clone(),
            tap["isUsableOnce"].clone()
        ),
        (json!(30), json!(12), json!(true))
    );
    t.stop().await;
}

/// Conditional Access for the Admin Portal holds on every page, not only at sign-in: once a
/// policy blocks the portal, a session that opened it a moment ago is sent back to sign in.
#[tokio::test]
async fn conditional_access_on_the_admin_portal_applies_to_every_page() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    assert_eq!(browser.get("/admin").await.status, StatusCode::OK);
    let r = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({"displayName": "Block the admin portal", "state": "enabled",
                   "conditions": {"users": {"includeUsers": ["All"]},
                                  "applications": {"includeApplications": [portcullis_core::directory::first_party::ADMIN_PORTAL_APP_ID.to_string()]},
                                  "clientAppTypes": ["all"]},
                   "grantControls": {"operator": "OR", "builtInControls": ["block"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let page = browser.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        redirected_to(&page, "/signin?").contains("returnTo"),
        "{:?}",
        page.location
    );
    t.stop().await;
}

/// What shows whether an object is still there, through the admin API.
enum Probe {
    /// The object answers at this path (and is 404 once gone).
    Object(String),
    /// The list at this path (or the object's client secrets) holds an entry with this id.
    Listed(String, String),
}

async fn still_there(t: &TestServer, probe: &Probe) -> bool {
    match probe {
        Probe::Object(path) => {
            let r = t.get(path).await;
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                "{path}: {:?}",
                r.body
            );
            r.status == StatusCode::OK
        }
        Probe::Listed(path, id) => {
            let body = t.get(path).await.body;
            body["value"]
                .as_array()
                .or(body["passwordCredentials"].as_array())
                .unwrap()
                .iter()
                .any(|v| v["id"] == id.as_str() || v["keyId"] == id.as_str())
        }
    }
}

/// One destructive action: the page with its button, the address it leads to, the name the
/// confirmation must show, and how to tell whether the object is gone.
struct Removal {
    page: String,
    confirm: String,
    name: &'static str,
    probe: Probe,
}

#[tokio::test]
async fn destructive_actions_ask_first_naming_what_goes_and_change_nothing_until_confirmed() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let id_of = |v: &Value| v["id"].as_str().unwrap().to_string();

    // Something of every kind the portal can remove.
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "joni@contoso.com", "displayName": "Joni Sherman"}),
        )
        .await
        .body;
    let grady = t
        .post(
            "/users",
            json!({"userPrincipalName": "grady@contoso.com", "displayName": "Grady Archie"}),
        )
        .await
        .body;
    let (joni_id, grady_id) = (id_of(&joni), id_of(&grady));
    let admins = id_of(
        &t.post("/groups", json!({"displayName": "Admins"}))
            .await
            .body,
    );
    let helpdesk = id_of(
        &t.post("/groups", json!({"displayName": "Helpdesk"}))
            .await
            .body,
    );
    for (group, user) in [(&admins, &joni_id), (&helpdesk, &grady_id)] {
        let r = t
            .post(
                &format!("/groups/{group}/members/$ref"),
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")}),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let role = t
        .post(
            "/roleManagement/directory/roleAssignments",
            json!({"principalId": joni_id, "roleDefinitionId": REPORTS_READER, "directoryScopeId": "/"}),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{:?}", role.body);
    let passes = format!("/users/{joni_id}/authentication/temporaryAccessPassMethods");
    t.post(&passes, json!({})).await;
    let pass_id = id_of(&t.get(&passes).await.body["value"][0]);
    let app = t
        .post("/applications", json!({"displayName": "Contoso Portal"}))
        .await
        .body;
    let app_id = id_of(&app);
    let secret = t
        .post(
            &format!("/applications/{app_id}/addPassword"),
            json!({"passwordCredential": {"displayName": "CI"}}),
        )
        .await;
    assert!(secret.status.is_success(), "{:?}", secret.body);
    let key_id = secret.body["keyId"].as_str().unwrap().to_string();
    let other_app = id_of(
        &t.post("/applications", json!({"displayName": "Old Intranet"}))
            .await
            .body,
    );
    let policy = id_of(
        &t.post(
            "/identity/conditionalAccess/policies",
            json!({"displayName": "Block legacy clients", "state": "disabled",
                   "conditions": {"users": {"includeUsers": ["All"]},
                                  "applications": {"includeApplications": ["All"]},
                                  "clientAppTypes": ["exchangeActiveSync", "other"]},
                   "grantControls": {"operator": "OR", "builtInControls": ["block"]}}),
        )
        .await
        .body,
    );
    let location = id_of(
        &t.post(
            "/identity/conditionalAccess/namedLocations",
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Branch office",
                   "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "198.51.100.0/24"}]}),
        )
        .await
        .body,
    );
    let strength = id_of(
        &t.post(
            "/policies/authenticationStrengthPolicies",
            json!({"displayName": "Passkeys only", "allowedCombinations": ["fido2"]}),
        )
        .await
        .body,
    );

    let removals = vec![
        Removal {
            page: format!("/admin/users/{joni_id}"),
            confirm: format!("/admin/users/{joni_id}/groups/{admins}/remove"),
            name: "joni@contoso.com",
            probe: Probe::Listed(format!("/groups/{admins}/members"), joni_id.clone()),
        },
        Removal {
            page: format!("/admin/users/{joni_id}"),
            confirm: format!(
                "/admin/users/{joni_id}/roles/{}/remove",
                role.body["id"].as_str().unwrap()
            ),
            name: "Reports Reader",
            probe: Probe::Listed(
                format!(
                    "/roleManagement/directory/roleAssignments?$filter=principalId eq '{joni_id}'"
                ),
                role.body["id"].as_str().unwrap().to_string(),
            ),
        },
        Removal {
            page: format!("/admin/users/{joni_id}"),
            confirm: format!("/admin/users/{joni_id}/pass/{pass_id}/delete"),
            name: "joni@contoso.com",
            probe: Probe::Listed(passes.clone(), pass_id.clone()),
        },
        Removal {
            page: format!("/admin/groups/{helpdesk}"),
            confirm: format!("/admin/groups/{helpdesk}/members/{grady_id}/remove"),
            name: "grady@contoso.com",
            probe: Probe::Listed(format!("/groups/{helpdesk}/members"), grady_id.clone()),
        },
        Removal {
            page: format!("/admin/groups/{helpdesk}"),
            confirm: format!("/admin/groups/{helpdesk}/delete"),
            name: "Helpdesk",
            probe: Probe::Object(format!("/groups/{helpdesk}")),
        },
        Removal {
            page: format!("/admin/users/{grady_id}"),
            confirm: format!("/admin/users/{grady_id}/delete"),
            name: "grady@contoso.com",
            probe: Probe::Object(format!("/users/{grady_id}")),
        },
        Removal {
            page: format!("/admin/applications/{app_id}"),
            confirm: format!("/admin/applications/{app_id}/secrets/{key_id}/remove"),
            name: "CI (",
            probe: Probe::Listed(format!("/applications/{app_id}"), key_id.clone()),
        },
        Removal {
            page: format!("/admin/applications/{other_app}"),
            confirm: format!("/admin/applications/{other_app}/delete"),
            name: "Old Intranet",
            probe: Probe::Object(format!("/applications/{other_app}")),
        },
        Removal {
            page: format!("/admin/conditional-access/policies/{policy}"),
            confirm: format!("/admin/conditional-access/policies/{policy}/delete"),
            name: "Block legacy clients",
            probe: Probe::Object(format!("/identity/conditionalAccess/policies/{policy}")),
        },
        Removal {
            page: "/admin/conditional-access/named-locations".into(),
            confirm: format!("/admin/conditional-access/named-locations/{location}/delete"),
            name: "Branch office",
            probe: Probe::Object(format!(
                "/identity/conditionalAccess/namedLocations/{location}"
            )),
        },
        Removal {
            page: "/admin/conditional-access/authentication-strengths".into(),
            confirm: format!(
                "/admin/conditional-access/authentication-strengths/{strength}/delete"
            ),
            name: "Passkeys only",
            probe: Probe::Object(format!(
                "/policies/authenticationStrengthPolicies/{strength}"
            )),
        },
    ];

    for removal in &removals {
        // The page's button leads to the confirmation; it does not remove anything itself.
        let page = browser.get(&removal.page).await;
        assert_eq!(page.status, StatusCode::OK, "{}", removal.page);
        assert!(
            page.html.contains(&format!("href=\"{}\"", removal.confirm)),
            "{} links to {}",
            removal.page,
            removal.confirm
        );
        assert!(
            !page
                .html
                .contains(&format!("action=\"{}\"", removal.confirm)),
            "no form on {} removes at once",
            removal.page
        );

        // The confirmation names the object, offers Cancel, and posts to itself.
        let confirm = browser.get(&removal.confirm).await;
        assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.html);
        assert!(
            element(&confirm.html, "confirm-name").starts_with(removal.name),
            "{} names {}: {}",
            removal.confirm,
            removal.name,
            element(&confirm.html, "confirm-name")
        );
        assert!(
            confirm.html.contains(&format!(
                "action=\"{}\"",
                removal.confirm.replace('/', "&#x2f;")
            )),
            "the confirmation posts to itself: {}",
            confirm.html
        );
        assert!(
            confirm
                .html
                .contains("class=\"button button-danger\" id=\"confirm\"")
        );
        assert!(confirm.html.contains("id=\"cancel\""));
        if removal.confirm.starts_with("/admin/users/")
            && removal.confirm.ends_with("/delete")
            && !removal.confirm.contains("/pass/")
        {
            // A deleted user can be restored for 30 days: the page says so, not "can't be undone".
            assert!(
                confirm
                    .html
                    .contains("can be restored from Deleted users for 30 days")
            );
            assert!(!confirm.html.contains("This can't be undone."));
        } else {
            assert!(confirm.html.contains("This can't be undone."));
        }
        assert!(
            still_there(&t, &removal.probe).await,
            "{}: asked only",
            removal.confirm
        );

        // From another site the form is refused; from the page it removes.
        let forged = browser
            .post_from(Some("https://evil.example"), &removal.confirm, &[])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", removal.confirm);
        assert!(
            still_there(&t, &removal.probe).await,
            "{}: forged",
            removal.confirm
        );
        let done = browser.post(&removal.confirm, &[]).await;
        let location = redirected_to(&done, "/admin");
        assert!(location.contains("done="), "{location}");
        assert!(
            !still_there(&t, &removal.probe).await,
            "{}: confirmed",
            removal.confirm
        );
    }

    // Asking about something that is not there is a friendly 404; about yourself, a refusal.
    let missing = browser
        .get("/admin/groups/00000000-0000-0000-0000-000000000000/delete")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let me = t
        .get(&format!("/users/{}", t.bootstrap.admin_user_principal_name))
        .await
        .body;
    let myself = browser
        .get(&format!("/admin/users/{}/delete", id_of(&me)))
        .await;
    assert_eq!(myself.status, StatusCode::BAD_REQUEST);
    assert!(myself.html.contains("You cannot delete your own account"));
    assert_eq!(
        browser
            .post(&format!("/admin/users/{}/delete", id_of(&me)), &[])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert!(still_there(&t, &Probe::Object(format!("/users/{}", id_of(&me)))).await);

    // Someone who may read but not change does not get the question either.
    let (_, reader) = person(&t, "reader@contoso.com", &[REPORTS_READER]).await;
    let refused = reader
        .get(&format!(
            "/admin/conditional-access/named-locations/{location}/delete"
        ))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test]
async fn named_locations_and_custom_strengths_are_edited_in_the_portal() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;

    // A named location: its form shows it as stored.
    let created = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office",
                   "isTrusted": true,
                   "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}),
        )
        .await
        .body;
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/admin/conditional-access/named-locations/{id}");
    let stored = || async {
        t.get(&format!("/identity/conditionalAccess/namedLocations/{id}"))
            .await
            .body
    };
    let before = stored().await;
    let list = browser
        .get("/admin/conditional-access/named-locations")
        .await;
    assert!(
        list.html.contains(&format!("href=\"{path}\"")),
        "the name opens its form"
    );
    let form = browser.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    assert!(form.html.contains("value=\"Office\""));
    assert_eq!(unescape(element(&form.html, "ipRanges")), "203.0.113.0/24");
    assert!(
        form.html
            .contains("id=\"isTrusted\" name=\"isTrusted\" value=\"true\" checked")
    );
    assert_eq!(element(&form.html, "location-kind"), "IP ranges");

    // A mask too wide, then no name: each answered beside its field with what was typed, and
    // nothing changes.
    let wide = browser
        .post(
            &path,
            &[
                ("displayName", "Head office"),
                ("ipRanges", "203.0.113.0/24\n10.0.0.0/4"),
            ],
        )
        .await;
    assert_eq!(wide.status, StatusCode::BAD_REQUEST, "{}", wide.html);
    assert!(wide.html.contains("id=\"ipRanges-error\""), "{}", wide.html);
    assert!(
        wide.html.contains("value=\"Head office\""),
        "what was typed is kept"
    );
    assert!(unescape(element(&wide.html, "ipRanges")).contains("10.0.0.0/4"));
    let nameless = browser
        .post(
            &path,
            &[("displayName", ""), ("ipRanges", "198.51.100.0/24")],
        )
        .await;
    assert_eq!(
        nameless.status,
        StatusCode::BAD_REQUEST,
        "{}",
        nameless.html
    );
    assert!(
        nameless.html.contains("id=\"displayName-error\""),
        "{}",
        nameless.html
    );
    assert!(unescape(element(&nameless.html, "ipRanges")).contains("198.51.100.0/24"));
    assert_eq!(stored().await, before, "nothing changed");

    // A good edit: renamed, a second range, no longer trusted.
    let saved = browser
        .post(
            &path,
            &[
                ("displayName", "Head office"),
                ("ipRanges", "203.0.113.0/24\n198.51.100.0/24"),
            ],
        )
        .await;
    redirected_to(
        &saved,
        "/admin/conditional-access/named-locations?done=location-saved",
    );
    let after = stored().await;
    assert_eq!(after["displayName"], "Head office");
    assert_eq!(after["isTrusted"], false);
    let ranges: Vec<&str> = after["ipRanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cidrAddress"].as_str().unwrap())
        .collect();
    assert_eq!(ranges, ["203.0.113.0/24", "198.51.100.0/24"]);
    assert_eq!(
        browser.get(&path).await.status,
        StatusCode::OK,
        "the form opens again"
    );
    assert_eq!(
        browser
            .get("/admin/conditional-access/named-locations/00000000-0000-0000-0000-000000000000")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A custom authentication strength.
    let strength = t
        .post(
            "/policies/authenticationStrengthPolicies",
            json!({"displayName": "Passkeys only", "allowedCombinations": ["fido2"]}),
        )
        .await
        .body;
    let sid = strength["id"].as_str().unwrap().to_string();
    let spath = format!("/admin/conditional-access/authentication-strengths/{sid}");
    let stored_strength = || async {
        t.get(&format!("/policies/authenticationStrengthPolicies/{sid}"))
            .await
            .body
    };
    let before = stored_strength().await;
    let list = browser
        .get("/admin/conditional-access/authentication-strengths")
        .await;
    assert!(list.html.contains(&format!("href=\"{spath}\"")));
    let form = browser.get(&spath).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    assert!(form.html.contains("value=\"Passkeys only\""));
    assert!(
        form.html.contains(
            "id=\"combination-fido2\" name=\"allowedCombinations\" value=\"fido2\" checked"
        )
    );
    assert!(
        !form
            .html
            .contains("value=\"windowsHelloForBusiness\" checked")
    );

    let empty = browser
        .post(&spath, &[("displayName", "Passkeys or Hello")])
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.html);
    assert!(
        empty.html.contains("id=\"allowedCombinations-error\""),
        "{}",
        empty.html
    );
    assert!(empty.html.contains("value=\"Passkeys or Hello\""));
    let nameless = browser
        .post(
            &spath,
            &[
                ("displayName", " "),
                ("allowedCombinations", "fido2"),
                ("allowedCombinations", "windowsHelloForBusiness"),
            ],
        )
        .await;
    assert_eq!(
        nameless.status,
        StatusCode::BAD_REQUEST,
        "{}",
        nameless.html
    );
    assert!(nameless.html.contains("id=\"displayName-error\""));
    assert!(
        nameless
            .html
            .contains("value=\"windowsHelloForBusiness\" checked"),
        "ticks kept"
    );
    assert_eq!(stored_strength().await, before, "nothing changed");

    let saved = browser
        .post(
            &spath,
            &[
                ("displayName", "Passkeys or Hello"),
                ("description", "For administrators"),
                ("allowedCombinations", "fido2"),
                ("allowedCombinations", "windowsHelloForBusiness"),
            ],
        )
        .await;
    redirected_to(
        &saved,
        "/admin/conditional-access/authentication-strengths?done=strength-saved",
    );
    let after = stored_strength().await;
    assert_eq!(after["displayName"], "Passkeys or Hello");
    assert_eq!(after["description"], "For administrators");
    assert_eq!(
        after["allowedCombinations"],
        json!(["fido2", "windowsHelloForBusiness"])
    );

    // The built-in strengths are not for editing.
    let built_in = browser
        .get("/admin/conditional-access/authentication-strengths/00000000-0000-0000-0000-000000000004")
        .await;
    assert_eq!(built_in.status, StatusCode::FORBIDDEN);
    assert!(built_in.html.contains("built-in"), "{}", built_in.html);
    let posted = browser
        .post(
            "/admin/conditional-access/authentication-strengths/00000000-0000-0000-0000-000000000004",
            &[("displayName", "Mine now"), ("allowedCombinations", "fido2")],
        )
        .await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN);
    t.stop().await;
}

/// Text from a page as a browser reads it: minijinja's escapes undone.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `href` of the element with `id`, unescaped as a browser would follow it.
fn link(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..start].rfind('<')?;
    let tag = &html[tag_start..start + html[start..].find('>')?];
    let href = tag.split("href=\"").nth(1)?.split('"').next()?;
    Some(unescape(href))
}

/// The users a page of the users list shows, by sign-in name.
fn listed_users(html: &str) -> Vec<String> {
    html.match_indices("@paging.example")
        .map(|(i, _)| {
            let start = html[..i].rfind('>').unwrap() + 1;
            html[start..i].to_string()
        })
        .collect()
}

#[tokio::test]
async fn long_lists_page_forwards_and_back_keeping_their_filters() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    for n in 0..55 {
        let r = t
            .post(
                "/users",
                json!({"userPrincipalName": format!("p{n:02}@paging.example"), "displayName": format!("Pat {n:02}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    // Someone the filter leaves out.
    t.post(
        "/users",
        json!({"userPrincipalName": "other@contoso.com", "displayName": "Pat Other"}),
    )
    .await;

    let first = browser.get("/admin/users?name=Pat&upn=p").await.html;
    let page1 = listed_users(&first);
    assert_eq!(page1.len(), 25, "{first}");
    assert!(
        link(&first, "previous-page").is_none(),
        "no way back from the first page"
    );
    let next = link(&first, "next-page").expect("a next page");
    assert!(
        next.contains("name=Pat") && next.contains("upn=p"),
        "{next}"
    );

    let second = browser.get(&next).await.html;
    let page2 = listed_users(&second);
    assert_eq!(page2.len(), 25);
    assert!(page2.iter().all(|u| !page1.contains(u)), "a new page");
    let back = link(&second, "previous-page").expect("a way back");
    assert!(
        back.contains("name=Pat") && back.contains("upn=p"),
        "{back}"
    );
    assert_eq!(listed_users(&browser.get(&back).await.html), page1);

    let third_link = link(&second, "next-page").expect("a third page");
    let third = browser.get(&third_link).await.html;
    let page3 = listed_users(&third);
    assert_eq!(page3.len(), 5, "{third}");
    assert!(link(&third, "next-page").is_none(), "the end");
    assert!(
        !third.contains("other@contoso.com"),
        "the filters hold on every page"
    );
    let back = link(&third, "previous-page").expect("a way back");
    assert_eq!(listed_users(&browser.get(&back).await.html), page2);
    let first_again = link(&third, "first-page").expect("the first page");
    assert_eq!(listed_users(&browser.get(&first_again).await.html), page1);

    // The audit log pages the same way, with its filter.
    let audits = browser
        .get("/admin/audit-logs?activity=Add%20user")
        .await
        .html;
    let next = link(&audits, "next-page").expect("more than a page of audits");
    let later = browser.get(&next).await.html;
    let back = link(&later, "previous-page").expect("a way back");
    assert!(back.contains("activity=Add"), "{back}");
    let again = browser.get(&back).await.html;
    let rows = |html: &str| html.matches("<td>Add user</td>").count();
    assert_eq!(rows(&again), rows(&audits));
    assert_eq!(rows(&again), 25, "{again}");

    // A page link the server did not make is a friendly 400.
    let forged = browser
        .get("/admin/users?after=bm90LWEtY3Vyc29y.%21%21")
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(forged.html.contains("That page does not exist"));
    t.stop().await;
}

/// "Revoke sessions" on a person's page asks first, refuses a forged post, and then ends the
/// person's session at once; deleting a group a policy names is refused with a page naming the
/// policy; security info offers "Sign out everywhere".
#[tokio::test]
async fn revoking_sessions_and_deleting_what_a_policy_names_from_the_portal() {
    let t = TestServer::start().await;
    let browser = Browser::new(&t, Some(admin_session(&t).await));
    let (joni, joni_session) = person_with_roles(&t, "joni@contoso.com", "Joni Sherman", &[]).await;
    let joni_alive = || async {
        portcullis_testkit::fixtures::call(
            &t,
            Some(WINDOWS),
            Some(&joni_session),
            reqwest::Method::GET,
            "/auth/session",
            None,
        )
        .await
        .status
    };
    let confirm = format!("/admin/users/{joni}/revoke-sessions");
    let page = browser.get(&format!("/admin/users/{joni}")).await;
    assert!(
        page.html.contains(&format!("href=\"{confirm}\"")),
        "{}",
        page.html
    );
    let asked = browser.get(&confirm).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.html);
    assert!(element(&asked.html, "confirm-name").starts_with("joni@contoso.com"));
    assert_eq!(joni_alive().await, StatusCode::OK, "asking revokes nothing");
    let forged = browser
        .post_from(Some("https://evil.example"), &confirm, &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        joni_alive().await,
        StatusCode::OK,
        "a forged post revokes nothing"
    );
    let done = browser.post(&confirm, &[]).await;
    assert!(
        redirected_to(&done, &format!("/admin/users/{joni}")).contains("done=sessions-revoked")
    );
    assert_eq!(joni_alive().await, StatusCode::UNAUTHORIZED);

    let group = portcullis_testkit::fixtures::id(
        &t.post(
            "/groups",
            json!({"displayName": "Contractors", "mailEnabled": false, "mailNickname": "contractors", "securityEnabled": true}),
        )
        .await
        .body,
    );
    let policy = json!({
        "displayName": "Contractors need MFA",
        "state": "enabled",
        "conditions": {"users": {"includeGroups": [group]}, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    });
    assert_eq!(
        t.post("/identity/conditionalAccess/policies", policy)
            .await
            .status,
        StatusCode::CREATED
    );
    let refused = browser
        .post(&format!("/admin/groups/{group}/delete"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.html);
    assert!(
        refused.html.contains("Contractors need MFA"),
        "{}",
        refused.html
    );
    assert_eq!(
        t.get(&format!("/groups/{group}")).await.status,
        StatusCode::OK
    );

    let (_, grady_session) = person_with_roles(&t, "grady@contoso.com", "Grady", &[]).await;
    let mine = Browser::new(&t, Some(grady_session));
    let info = mine.get("/my/security-info").await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.html);
    assert!(info.html.contains("id=\"sign-out-everywhere\""));
    t.stop().await;
}

#[tokio::test]
async fn the_policy_editor_refuses_a_lockout_shows_why_and_saves_it_when_ticked() {
    let t = TestServer::start().await;
    let browser = admin(&t).await;
    let form = vec![
        ("displayName", "Block everyone".to_string()),
        ("usersInclude", "all".into()),
        ("target", "applications".into()),
        ("appsInclude", "all".into()),
        ("grant", "block".into()),
        ("operator", "OR".into()),
        ("state", "enabled".into()),
    ];
    let page = browser
        .post("/admin/conditional-access/policies", &pairs(&form))
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    let start = page
        .html
        .find("id=\"policy-lockout\"")
        .unwrap_or_else(|| panic!("no lockout panel in:\n{}", page.html));
    let panel = &page.html[start..start + page.html[start..].find("</div>").unwrap()];
    assert!(panel.contains("would lock administrators out"), "{panel}");
    assert!(
        panel.contains(&t.bootstrap.admin_user_principal_name),
        "the panel names who: {panel}"
    );
    assert!(panel.contains("the Admin Portal"), "{panel}");
    assert!(panel.contains("id=\"acknowledge-lockout\""), "{panel}");
    assert!(
        page.html.contains("value=\"Block everyone\""),
        "what was typed is kept"
    );
    assert!(policies(&t).await.is_empty(), "nothing saved");

    let mut ticked = form.clone();
    ticked.push(("acknowledgeLockout", "true".into()));
    let created = browser
        .post("/admin/conditional-access/policies", &pairs(&ticked))
        .await;
    redirected_to(&created, "/admin/conditional-access/policies/");
    assert_eq!(policies(&t).await.len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn the_policy_editor_shows_what_a_change_would_have_done_in_the_last_7_days() {
    let t = TestServer::start().await;
    let payroll = crate::replay::app(&t, "Payroll").await;
    let wiki = crate::replay::app(&t, "Wiki").await;
    let alice = portcullis_testkit::fixtures::create_user(&t, "alice@contoso.com", "Alice").await;
    for app in [&payroll, &payroll, &wiki] {
        let status = crate::replay::sign_in(&t, app, "alice@contoso.com", &alice).await;
        assert!(status == "granted" || status == "completed", "{status}");
    }
    let browser = admin(&t).await;
    // A new policy blocking Payroll for Alice, previewed: two of her three sign-ins flip.
    let form = vec![
        ("displayName", "Alice: no Payroll".to_string()),
        ("usersInclude", "select".into()),
        ("includeUsers", "alice@contoso.com".into()),
        ("target", "applications".into()),
        ("appsInclude", "select".into()),
        ("includeApplications", payroll.clone()),
        ("grant", "block".into()),
        ("operator", "OR".into()),
        ("state", "enabled".into()),
        ("intent", "preview".into()),
    ];
    let page = browser
        .post("/admin/conditional-access/policies", &pairs(&form))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let start = page
        .html
        .find("id=\"policy-impact\"")
        .unwrap_or_else(|| panic!("no impact panel in:\n{}", page.html));
    let panel = &page.html[start..start + page.html[start..].find("</div>").unwrap()];
    let text = unescape(panel);
    assert!(
        text.contains("Of 3 sign-ins decided again"),
        "every sign-in of the week is decided again: {text}"
    );
    assert!(
        text.contains("<strong>2</strong> would have ended differently"),
        "{text}"
    );
    assert!(text.contains("2 blocked"), "{text}");
    assert!(text.contains("alice@contoso.com"), "{text}");
    assert!(
        page.html.contains("value=\"Alice: no Payroll\""),
        "the form keeps what was typed"
    );
    assert!(policies(&t).await.is_empty(), "a preview saves nothing");
    t.stop().await;
}

#[tokio::test]
async fn the_passkey_policy_form_counts_the_passkeys_a_list_would_stop_before_saving() {
    use portcullis_testkit::authenticator::TEST_AAGUID;
    let t = TestServer::start().await;
    portcullis_testkit::fixtures::allow_test_authenticator(&t).await;
    // Joni registers a passkey of the test model.
    let joni = portcullis_testkit::fixtures::create_user(&t, "joni@contoso.com", "Joni").await;
    let session =
        portcullis_testkit::fixtures::pass_session(&t, &joni, "joni@contoso.com", json!({})).await;
    portcullis_testkit::fixtures::register_test_passkey(&t, &session, "Phone").await;
    let stored = t
        .get(portcullis_testkit::fixtures::FIDO2_CONFIGURATION)
        .await
        .body;

    let browser = admin(&t).await;
    let preview = |aaguids: String| {
        vec![
            ("state", "enabled".to_string()),
            ("isSelfServiceRegistrationAllowed", "true".into()),
            ("keyRestrictionsEnforced", "true".into()),
            ("enforcementType", "allow".into()),
            ("aaGuids", aaguids),
            ("intent", "preview".into()),
        ]
    };
    let other_only = preview("cb69481e-8ff7-4039-93ec-0a2729a154a8".into());
    let page = browser
        .post("/admin/authentication-methods/fido2", &pairs(&other_only))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let start = page
        .html
        .find("id=\"fido2-impact\"")
        .expect("an impact panel");
    let panel = &page.html[start..start + page.html[start..].find("</div>").unwrap()];
    assert!(
        panel.contains(
            "<strong>1 of 1 registered passkey</strong>, of 1 person, would stop working"
        ),
        "{panel}"
    );
    assert_eq!(
        t.get(portcullis_testkit::fixtures::FIDO2_CONFIGURATION)
            .await
            .body,
        stored,
        "a preview saves nothing"
    );

    let both = preview(format!(
        "{TEST_AAGUID}\ncb69481e-8ff7-4039-93ec-0a2729a154a8"
    ));
    let page = browser
        .post("/admin/authentication-methods/fido2", &pairs(&both))
        .await;
    assert!(
        page.html
            .contains("None of the 1 registered passkey would stop working"),
        "{}",
        page.html
    );
    t.stop().await;
}

/// The Temporary Access Pass form refuses a lockout as the passkey form does: an
/// Authentication Policy Administrator turning passes off while the only Global Administrator
/// has nothing but a pass sees why, with the box that acknowledges it; ticked, it is saved.
#[tokio::test]
async fn the_pass_policy_form_refuses_a_lockout_and_saves_it_when_ticked() {
    const PASSES: &str = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass";
    let t = TestServer::start().await;
    let (_, browser) = person(
        &t,
        "policy@contoso.com",
        &["0526716b-113d-4c15-b2c8-68e3c22b9f80"],
    )
    .await;
    let form = vec![
        ("state", "disabled"),
        ("minimumLifetimeInMinutes", "60"),
        ("maximumLifetimeInMinutes", "480"),
        ("defaultLifetimeInMinutes", "60"),
        ("defaultLength", "8"),
        ("isUsableOnce", "true"),
    ];
    let page = browser
        .post("/admin/authentication-methods/temporary-access-pass", &form)
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.html);
    let start = page
        .html
        .find("id=\"pass-lockout\"")
        .unwrap_or_else(|| panic!("no lockout panel in:\n{}", page.html));
    let panel = &page.html[start..start + page.html[start..].find("</div>").unwrap()];
    assert!(panel.contains("id=\"acknowledge-pass-lockout\""), "{panel}");
    assert!(
        page.html.contains(&t.bootstrap.admin_user_principal_name),
        "the page names who would be locked out: {}",
        page.html
    );
    assert_eq!(
        t.get(PASSES).await.body["state"],
        "enabled",
        "nothing saved"
    );

    let mut ticked = form.clone();
    ticked.push(("acknowledgeLockout", "true"));
    let saved = browser
        .post(
            "/admin/authentication-methods/temporary-access-pass",
            &ticked,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(t.get(PASSES).await.body["state"], "disabled");
    t.stop().await;
}
