//! The admin portal over HTTP: pages render for an administrator with what a person checks,
//! people without the role are refused with a page naming it, forms change data (checked
//! through the Graph API), bad input changes nothing and is answered beside the field, and a
//! form posted from another origin is refused.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";
const CONDITIONAL_ACCESS_ADMINISTRATOR: &str = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9";
const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";

/// A browser signed in to the portal: its session cookie, and redirects left for the test to
/// see.
struct Browser {
    url: String,
    cookie: Option<String>,
    http: reqwest::Client,
}

/// What a page answered.
struct Page {
    status: StatusCode,
    location: Option<String>,
    html: String,
}

impl Browser {
    fn new(t: &TestServer, token: Option<String>) -> Self {
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

    async fn get(&self, path: &str) -> Page {
        let request = self.with_cookie(self.http.get(format!("{}{path}", self.url)));
        Self::page(request.send().await.unwrap()).await
    }

    /// Posts a form as the portal's own page does: same origin.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
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
    async fn upload(&self, path: &str, file: &[u8]) -> Page {
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
async fn admin(t: &TestServer) -> Browser {
    let upn = t.bootstrap.admin_user_principal_name.clone();
    let (reply, token) = t.sign_in_with_pass(&t.url, &upn, &t.bootstrap_pass).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    Browser::new(t, token)
}

/// A new person holding `roles`, signed in with a pass the admin API issued them.
async fn person(t: &TestServer, upn: &str, roles: &[&str]) -> (String, Browser) {
    let user = t
        .post(
            "/users",
            json!({"userPrincipalName": upn, "displayName": upn}),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    let id = user.body["id"].as_str().unwrap().to_string();
    for role in roles {
        let r = t
            .post(
                "/roleManagement/directory/roleAssignments",
                json!({"principalId": id, "roleDefinitionId": role, "directoryScopeId": "/"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let pass = t
        .post(
            &format!("/users/{id}/authentication/temporaryAccessPassMethods"),
            json!({}),
        )
        .await
        .body["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_string();
    let (reply, token) = t.sign_in_with_pass(&t.url, upn, &pass).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    (id, Browser::new(t, token))
}

/// The text of the element with `id`, as the page has it (escaped).
fn element<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in:\n{html}"));
    let rest = &html[start..];
    let open_end = rest.find('>').unwrap() + 1;
    let rest = &rest[open_end..];
    &rest[..rest.find('<').unwrap()]
}

fn redirected_to(page: &Page, prefix: &str) -> String {
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
    assert!(!element(&issued.html, "pass-end").is_empty());
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

/// The story's platform policy through the form.
fn platform_policy_form(name: &str, group: &str, state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("displayName", name.to_string()),
        ("usersInclude", "select".into()),
        ("includeGroups", group.to_string()),
        ("target", "applications".into()),
        ("appsInclude", "all".into()),
        ("platformsConfigured", "true".into()),
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
        &browser
            .post(
                &format!("/admin/conditional-access/policies/{id}"),
                &pairs(&report_only),
            )
            .await,
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
    let imported = browser
        .upload("/admin/conditional-access/import", &utf16)
        .await;
    redirected_to(&imported, "/admin/conditional-access/policies/");
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
    let pass = t
        .post(
            &format!("/users/{joni_id}/authentication/temporaryAccessPassMethods"),
            json!({}),
        )
        .await
        .body["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_string();
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
