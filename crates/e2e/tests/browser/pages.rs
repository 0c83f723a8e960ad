//! The pages over plain HTTP: friendly HTML for bad links and unknown or expired sign-ins,
//! redirects to sign in, escaping of what people type. No browser is needed for these.

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::story::{id, issue_pass, user};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

struct Page {
    status: StatusCode,
    content_type: String,
    location: Option<String>,
    body: String,
}

async fn get(t: &TestServer, path: &str, cookie: Option<&str>) -> Page {
    let mut request = client().get(format!("{}{path}", t.url));
    if let Some(token) = cookie {
        request = request.header("cookie", format!("portcullis_session={token}"));
    }
    let response = request.send().await.expect("request sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Page {
        status: response.status(),
        content_type: header("content-type").unwrap_or_default(),
        location: header("location"),
        body: response.text().await.expect("a body"),
    }
}

/// A page a person can read: HTML, the title given, and no JSON error body.
fn friendly(page: &Page, status: StatusCode, title: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains(title), "{title:?} in {}", page.body);
    assert!(
        !page.body.contains("\"error\""),
        "no raw error: {}",
        page.body
    );
}

#[tokio::test]
async fn bad_sign_in_links_get_friendly_pages() {
    let t = TestServer::start().await;

    let unknown = get(&t, &format!("/signin?flow={}", uuid_like()), None).await;
    friendly(&unknown, StatusCode::NOT_FOUND, "This sign-in has expired");

    let garbage = get(&t, "/signin?flow=not-a-flow", None).await;
    friendly(
        &garbage,
        StatusCode::BAD_REQUEST,
        "This sign-in link isn&#x27;t valid",
    );

    for elsewhere in [
        "https://evil.example/",
        "//evil.example/",
        "/%5Cevil.example",
        "javascript:alert(1)",
    ] {
        let page = get(&t, &format!("/signin?returnTo={elsewhere}"), None).await;
        friendly(
            &page,
            StatusCode::BAD_REQUEST,
            "This sign-in link isn&#x27;t valid",
        );
    }

    let malformed = get(&t, "/signin?returnTo=%ZZ", None).await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );

    // A good link: the sign-in page for My Account, which security info is part of.
    let good = get(&t, "/signin?returnTo=/my/security-info", None).await;
    assert_eq!(good.status, StatusCode::OK);
    assert!(good.body.contains("My Account"), "{}", good.body);
    assert!(good.body.contains("autocomplete=\"username webauthn\""));
    let admin = get(&t, "/signin?returnTo=/admin", None).await;
    assert!(admin.body.contains("Admin Portal"), "{}", admin.body);
    t.stop().await;
}

fn uuid_like() -> String {
    "3f2b8c1e-9d4a-4e6b-8f10-2a7c5d9e0b14".to_string()
}

#[tokio::test]
async fn security_info_needs_a_sign_in_and_escapes_what_it_shows() {
    let t = TestServer::start().await;

    let short = get(&t, "/mysecurityinfo", None).await;
    assert!(short.status.is_redirection());
    assert_eq!(short.location.as_deref(), Some("/my/security-info"));

    for path in ["/my/security-info", "/my/sign-ins"] {
        let anonymous = get(&t, path, None).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            anonymous.location.as_deref(),
            Some(format!("/signin?returnTo={path}").as_str())
        );
        let stale = get(&t, path, Some("not-a-session")).await;
        assert_eq!(stale.status, StatusCode::SEE_OTHER, "{path}");
    }

    let person = user(
        &t,
        "mallory@contoso.com",
        "<script>alert('x')</script> Mallory",
    )
    .await;
    let pass = issue_pass(&t, &id(&person)).await;
    let (reply, token) = t
        .sign_in_with_pass(&t.url, "mallory@contoso.com", &pass)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let token = token.expect("a session");

    let page = get(&t, "/my/security-info", Some(&token)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Security info"));
    assert!(page.body.contains("&lt;script&gt;"), "the name is escaped");
    assert!(!page.body.contains("<script>alert"), "never raw");

    let sign_ins = get(&t, "/my/sign-ins", Some(&token)).await;
    assert_eq!(sign_ins.status, StatusCode::OK, "{}", sign_ins.body);
    assert!(
        sign_ins.body.contains("Temporary Access Pass"),
        "{}",
        sign_ins.body
    );
    t.stop().await;
}

#[tokio::test]
async fn a_policy_that_blocks_my_account_keeps_a_signed_in_person_out_of_security_info() {
    let t = TestServer::start().await;
    let person = user(&t, "adele@contoso.com", "Adele Vance").await;
    let r = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({
                "displayName": "No self-service from anywhere",
                "state": "enabled",
                "conditions": {
                    "users": {"includeUsers": [id(&person)]},
                    "applications": {"includeApplications": [portcullis_core::directory::first_party::MY_ACCOUNT_APP_ID.to_string()]},
                    "clientAppTypes": ["all"]
                },
                "grantControls": {"operator": "OR", "builtInControls": ["block"]}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let pass = issue_pass(&t, &id(&person)).await;
    // The pass is a good first factor, so a session exists; Conditional Access still decides.
    let (_, token) = t
        .sign_in_with_pass(&t.url, "adele@contoso.com", &pass)
        .await;
    let page = get(&t, "/my/security-info", token.as_deref()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/signin?returnTo=/my/security-info")
    );
    t.stop().await;
}
