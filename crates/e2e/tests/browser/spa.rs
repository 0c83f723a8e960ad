//! A single-page app signs in from its own origin with a real browser-side OpenID Connect
//! library, `oidc-client-ts` (pinned in `crates/e2e/axe/package-lock.json`): the page fetches
//! discovery and the key set, redeems the code with its PKCE verifier at the token endpoint and
//! calls userinfo with the access token, all cross-origin, so all through Portcullis's CORS
//! answers for the origin of the app's registered `spa` redirect URI. A page from an origin no
//! app registered cannot read the token endpoint's answer.

use std::path::PathBuf;

use axum::Router;
use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::harness::{Browser, WINDOWS_UA};
use crate::story::{self, id, issue_pass};

/// The library's browser bundle (it defines the global `oidc`), installed by `npm ci` in
/// `crates/e2e/axe` (scripts/install-test-deps.sh does that).
fn library_bundle() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("axe/node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "oidc-client-ts is not installed at {} ({e}): run `scripts/install-test-deps.sh` (it runs `npm ci` in crates/e2e/axe)",
            path.display()
        )
    })
}

/// A free port on `127.0.0.1` for a single-page app, and the origin it will have.
async fn spa_origin() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the single-page app");
    let origin = format!("http://{}", listener.local_addr().expect("bound"));
    (listener, origin)
}

/// The single-page app's own server: the page at `/` and `/callback`, the library beside it.
fn serve_spa(listener: tokio::net::TcpListener, authority: &str, client_id: &str) {
    let config = json!({ "authority": authority, "clientId": client_id }).to_string();
    let page = include_str!("spa/index.html").replace("__CONFIG__", &config);
    let bundle = library_bundle();
    let app = Router::new()
        .route("/", get(Html(page.clone())))
        .route("/callback", get(Html(page)))
        .route(
            "/oidc-client-ts.min.js",
            get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], bundle) }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service())
            .await
            .expect("the single-page app serves");
    });
}

/// From the page now open, POSTs a (bad) authorization code to the token endpoint and says
/// whether the page could read the answer: `read <status> <error>` or `blocked <error name>`.
async fn token_endpoint_from_page(b: &Browser, token_endpoint: &str, client_id: &str) -> String {
    let endpoint = serde_json::to_string(token_endpoint).expect("quotes");
    let client = serde_json::to_string(client_id).expect("quotes");
    let script = format!(
        "return fetch({endpoint}, {{method: 'POST', body: new URLSearchParams({{grant_type: 'authorization_code', code: 'made-up', code_verifier: 'made-up-verifier-made-up-verifier-made-up-verifier', client_id: {client}}})}})
           .then(r => r.json().then(j => 'read ' + r.status + ' ' + j.error), e => 'blocked ' + e.name);"
    );
    b.js(&script).await.as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_signs_in_with_oidc_client_ts_from_its_own_origin() {
    let t = TestServer::start().await;
    let megan = story::user(&t, "megan@contoso.com", "Megan Bowen").await;
    let pass = issue_pass(&t, &id(&megan)).await;

    // The SPA, registered through the admin API as a public client whose redirect URI on its
    // own origin is of the `spa` kind.
    let (listener, origin) = spa_origin().await;
    let app = t
        .post(
            "/applications",
            json!({"displayName": "Contoso SPA", "spa": {"redirectUris": [format!("{origin}/callback")]}}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let client_id = app.body["appId"].as_str().expect("an appId").to_string();
    serve_spa(listener, &t.url, &client_id);
    // A second copy of the page on an origin no application registered.
    let (listener, stranger) = spa_origin().await;
    serve_spa(listener, &t.url, &client_id);

    let b = Browser::start("spa", &t.url, WINDOWS_UA).await;
    b.goto(&format!("{origin}/")).await;
    b.until_text("Not signed in").await;
    b.click("Sign in").await;

    // oidc-client-ts read discovery cross-origin and sent the browser to Portcullis.
    b.until_panel("identify").await;
    b.until_text("Contoso SPA").await;
    let at = b.client.current_url().await.expect("a url");
    assert_eq!(
        at.as_str().split('/').take(3).collect::<Vec<_>>().join("/"),
        t.url
    );
    story::sign_in_with_pass(&b, "megan@contoso.com", &pass).await;

    // Back at the SPA's callback: the library redeemed the code (PKCE) at the token endpoint,
    // read the profile from the ID token, and the page called the key set and userinfo.
    b.until(
        "the SPA's callback to finish",
        "document.getElementById('status').textContent !== 'Not signed in'",
    )
    .await;
    let status = b.text("#status").await;
    assert_eq!(
        status,
        "Signed in as Megan Bowen",
        "{}",
        b.text("body").await
    );
    assert_eq!(b.path().await.split('?').next(), Some("/callback"));
    let sub = b.text("#sub").await;
    assert!(!sub.is_empty(), "the ID token names a subject");
    assert!(!b.text("#keys").await.is_empty(), "the key set was read");
    let signature = b.text("#signature").await;
    assert!(signature.starts_with("valid (ES256, key "), "{signature}");
    let userinfo = b.text("#userinfo").await;
    let (code, body) = userinfo.split_once(' ').expect("status and body");
    assert_eq!(code, "200", "{userinfo}");
    let claims: serde_json::Value = serde_json::from_str(body).expect("userinfo is JSON");
    assert_eq!(claims["sub"], sub.as_str(), "{claims}");
    assert_eq!(claims["name"], "Megan Bowen", "{claims}");
    b.screenshot("signed-in").await;

    // The registered origin reads the token endpoint's refusal of a made-up code...
    let discovery: serde_json::Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", t.url))
            .await
            .expect("discovery answers")
            .json()
            .await
            .expect("discovery is JSON");
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .expect("a token endpoint")
        .to_string();
    let registered = token_endpoint_from_page(&b, &token_endpoint, &client_id).await;
    assert_eq!(registered, "read 400 invalid_grant");
    // ...a page from an origin no application registered cannot read it at all.
    b.goto(&format!("{stranger}/")).await;
    b.until_text("Not signed in").await;
    let refused = token_endpoint_from_page(&b, &token_endpoint, &client_id).await;
    assert_eq!(refused, "blocked TypeError");

    b.close().await;
    t.stop().await;
}
