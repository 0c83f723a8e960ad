//! What strict OpenID Connect clients and single-page apps expect beyond the basic code flow:
//! the authorization and end-session endpoints taken by POST, request objects refused by name,
//! unknown scopes and acr values ignored, userinfo with the token in a form body, RFC 9068's
//! `client_id` in access tokens, and CORS only for the origins of registered single-page apps.

use portcullis_testkit::fixtures::{WINDOWS, user};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::Value;

use crate::oidc::{
    Browser, REDIRECT, authorize_url, claims, confidential_app, pass_for, pkce, public_app,
    query_param, redeem, sign_in_with_pass, urlencode,
};

const SPA_ORIGIN: &str = "https://app.contoso.com";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_authorization_endpoint_takes_its_parameters_by_post_too() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let p = pkce("post");
    let form = [
        ("client_id", app.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "s1"),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = no_redirects()
        .post(format!("{}/oauth2/v2.0/authorize", t.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/signin?flow="), "{location}");

    // A POST still goes through every check: a redirect URI that is not registered gets an
    // error page, never a redirect.
    let mut bad = form.to_vec();
    bad[1] = ("redirect_uri", "https://evil.example/cb");
    let r = no_redirects()
        .post(format!("{}/oauth2/v2.0/authorize", t.url))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // A body that is not a form is refused with a page, not a 5xx or a redirect.
    let r = no_redirects()
        .post(format!("{}/oauth2/v2.0/authorize", t.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.headers().get("location").is_none());
    t.stop().await;
}

#[tokio::test]
async fn request_objects_are_refused_by_name_and_unknown_scopes_and_acr_values_are_ignored() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let p = pkce("req");
    let mut browser = Browser::new(&t, WINDOWS);
    for (extra, error) in [
        ("&request=eyJhbGciOiJub25lIn0.e30.", "request_not_supported"),
        (
            "&request_uri=https%3A%2F%2Fapp.contoso.com%2Fr.jwt",
            "request_uri_not_supported",
        ),
    ] {
        let r = browser.get(&authorize_url(&app, Some(&p), extra)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let back = r.location.expect("an error back to the application");
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(query_param(&back, "error").as_deref(), Some(error));
        assert_eq!(query_param(&back, "state").as_deref(), Some("st ate/1"));
    }

    // `address` and `phone` are scopes Portcullis does not grant, and `urn:example:loa:2` is
    // no authentication context: the sign-in goes on, and the token response lists only what
    // was granted.
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let url = authorize_url(&app, Some(&p), "&acr_values=urn%3Aexample%3Aloa%3A2").replace(
        "scope=openid%20profile",
        "scope=openid%20address%20profile%20phone",
    );
    let (done, _) = sign_in_with_pass(&t, &mut browser, &url, "joni@contoso.com", &pass).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = redeem(&t, &app, &code, Some(&p.verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    let scope = tokens["scope"].as_str().unwrap();
    assert!(
        scope.contains("openid") && scope.contains("profile"),
        "{scope}"
    );
    assert!(
        !scope.contains("address") && !scope.contains("phone"),
        "{scope}"
    );

    // RFC 9068: an access token names the client it was issued to.
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["client_id"], app.client_id.as_str());
    t.stop().await;
}

pub(crate) async fn signed_in_tokens(t: &TestServer, app: &crate::oidc::App) -> Value {
    let joni = user(t, "joni@contoso.com").await;
    let pass = pass_for(t, &joni).await;
    let p = pkce("tokens");
    let mut browser = Browser::new(t, WINDOWS);
    let (done, _) = sign_in_with_pass(
        t,
        &mut browser,
        &authorize_url(app, Some(&p), ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = redeem(t, app, &code, Some(&p.verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    tokens
}

#[tokio::test]
async fn userinfo_takes_the_token_in_a_form_body_but_not_in_two_places_at_once() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let tokens = signed_in_tokens(&t, &app).await;
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = format!("{}/oidc/userinfo", t.url);

    let r = t
        .http
        .post(&userinfo)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["preferred_username"], "joni@contoso.com");

    let r = t
        .http
        .post(&userinfo)
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let r = t
        .http
        .post(&userinfo)
        .form(&[("access_token", access), ("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A forged token in the body is refused as in the header.
    let r = t
        .http
        .post(&userinfo)
        .form(&[("access_token", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn logout_with_only_a_client_id_returns_to_that_applications_registered_address() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let other = public_app(&t).await;
    let browser = no_redirects();
    let logout = |query: String| {
        let browser = browser.clone();
        let url = format!("{}/oauth2/v2.0/logout?{query}", t.url);
        async move { browser.get(url).send().await.unwrap() }
    };
    let signed_out = urlencode("https://app.contoso.com/signed-out");

    let r = logout(format!(
        "client_id={}&post_logout_redirect_uri={signed_out}&state=bye",
        app.client_id
    ))
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://app.contoso.com/signed-out?state=bye"
    );

    // Not registered for that application: an error page and no redirect.
    let r = logout(format!(
        "client_id={}&post_logout_redirect_uri={}",
        app.client_id,
        urlencode("https://evil.example/")
    ))
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // An ID token hint and a client_id that name different applications are refused.
    let tokens = signed_in_tokens(&t, &app).await;
    let r = logout(format!(
        "id_token_hint={}&client_id={}&post_logout_redirect_uri={signed_out}",
        tokens["id_token"].as_str().unwrap(),
        other.client_id
    ))
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // The end-session endpoint takes POST as well.
    let r = browser
        .post(format!("{}/oauth2/v2.0/logout", t.url))
        .form(&[
            ("client_id", app.client_id.as_str()),
            (
                "post_logout_redirect_uri",
                "https://app.contoso.com/signed-out",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "https://app.contoso.com/signed-out"
    );
    t.stop().await;
}

async fn preflight(t: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    t.http
        .request(reqwest::Method::OPTIONS, format!("{}{path}", t.url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

fn allowed_origin(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_single_page_app_may_call_the_token_endpoints_from_its_origin_and_no_one_else_may() {
    let t = TestServer::start_with(|c| {
        c.cors_allowed_origins = vec!["https://tools.contoso.com".into()];
    })
    .await;
    let app = public_app(&t).await;

    for path in [
        "/oauth2/v2.0/token",
        "/oidc/userinfo",
        "/oauth2/v2.0/revoke",
        "/.well-known/openid-configuration",
        "/discovery/v2.0/keys",
    ] {
        let r = preflight(&t, path, SPA_ORIGIN).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(allowed_origin(&r).as_deref(), Some(SPA_ORIGIN), "{path}");
        let methods = r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST"), "{path}: {methods}");
        // Never with credentials: these endpoints take tokens, not the session cookie.
        assert!(
            r.headers()
                .get("access-control-allow-credentials")
                .is_none()
        );

        for stranger in [
            "https://evil.example",
            "null",
            "https://app.contoso.com.evil.example",
        ] {
            let r = preflight(&t, path, stranger).await;
            assert_eq!(allowed_origin(&r), None, "{path} from {stranger}");
        }
        let r = preflight(&t, path, "https://tools.contoso.com").await;
        assert_eq!(
            allowed_origin(&r).as_deref(),
            Some("https://tools.contoso.com"),
            "{path}: a configured origin"
        );
    }

    // The real calls carry the header too, and the answer varies by origin.
    let r = t
        .http
        .get(format!("{}/discovery/v2.0/keys", t.url))
        .header("origin", SPA_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&r).as_deref(), Some(SPA_ORIGIN));
    let vary: Vec<String> = r
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    assert!(vary.iter().any(|v| v.contains("origin")), "{vary:?}");
    let tokens = signed_in_tokens(&t, &app).await;
    let r = t
        .http
        .post(format!("{}/oauth2/v2.0/token", t.url))
        .header("origin", SPA_ORIGIN)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", app.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(allowed_origin(&r).as_deref(), Some(SPA_ORIGIN));

    // The endpoints that use the session cookie get no CORS at all.
    let r = preflight(&t, "/oauth2/v2.0/authorize", SPA_ORIGIN).await;
    assert_eq!(allowed_origin(&r), None);

    // A burst of made-up origins changes nothing and breaks nothing.
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..200 {
        let http = t.http.clone();
        let url = format!("{}/oauth2/v2.0/token", t.url);
        calls.spawn(async move {
            http.request(reqwest::Method::OPTIONS, url)
                .header("origin", format!("https://x{n}.example"))
                .header("access-control-request-method", "POST")
                .send()
                .await
                .unwrap()
        });
    }
    while let Some(r) = calls.join_next().await {
        let r = r.unwrap();
        assert!(!r.status().is_server_error(), "{}", r.status());
        assert_eq!(allowed_origin(&r), None);
    }
    let r = preflight(&t, "/oauth2/v2.0/token", SPA_ORIGIN).await;
    assert_eq!(allowed_origin(&r).as_deref(), Some(SPA_ORIGIN));
    t.stop().await;
}
