//! The OpenID Connect provider end to end: an application sends a browser to `/authorize`, the
//! person signs in through the `/signin/flows` steps, the application gets a code at its
//! redirect URI and exchanges it for tokens. Every attack the issue lists is tried here: codes
//! replayed and expired, PKCE missing or wrong, redirect URIs not registered, refresh tokens
//! reused, logout to an unregistered address.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_testkit::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
use portcullis_testkit::fixtures::{
    ANDROID, PHISHING_RESISTANT, WINDOWS, allow_test_authenticator, issue_pass, story_tenant, user,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::Duration;

pub(crate) const REDIRECT: &str = "https://app.contoso.com/callback";

/// A browser: one user agent, its cookie, never following redirects (the test reads them).
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    ua: &'static str,
    pub(crate) cookie: Option<String>,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Browser {
    pub(crate) fn new(t: &TestServer, ua: &'static str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: t.url.clone(),
            ua,
            cookie: None,
        }
    }

    /// Serves this browser's requests from another node (same public URL, same cookie).
    fn on(&self, base: &str) -> Browser {
        Browser {
            http: self.http.clone(),
            base: base.to_string(),
            ua: self.ua,
            cookie: self.cookie.clone(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request.header("user-agent", self.ua);
        if let Some(c) = &self.cookie {
            request = request.header("cookie", format!("portcullis_session={c}"));
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        if let Some(set) = response.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            let value = pair.strip_prefix("portcullis_session=").unwrap_or_default();
            self.cookie = (!value.is_empty()).then(|| value.to_string());
        }
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            location,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub(crate) async fn get(&mut self, path_and_query: &str) -> Answer {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_string()
        } else {
            format!("{}{path_and_query}", self.base)
        };
        let request = self.http.get(url);
        self.send(request).await
    }

    /// A JSON step, with the Origin a browser sends (the same-origin guard checks it).
    pub(crate) async fn step(&mut self, origin: &str, path: &str, body: Value) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .json(&body);
        self.send(request).await
    }
}

pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub(crate) fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
}

pub(crate) fn pkce(seed: &str) -> Pkce {
    let verifier = format!("{seed}-verifier-{}", "x".repeat(43));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// An application registered through the admin API: a public client with an SPA redirect
/// URI, or a confidential web client with a secret.
pub(crate) struct App {
    pub(crate) client_id: String,
    pub(crate) secret: Option<String>,
}

pub(crate) async fn public_app(t: &TestServer) -> App {
    let r = t
        .post(
            "/applications",
            json!({"displayName": "Contoso SPA", "spa": {"redirectUris": [REDIRECT]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    App {
        client_id: r.body["appId"].as_str().unwrap().to_string(),
        secret: None,
    }
}

pub(crate) async fn confidential_app(t: &TestServer) -> App {
    let r = t
        .post(
            "/applications",
            json!({"displayName": "Contoso Portal", "web": {"redirectUris": [REDIRECT, "https://app.contoso.com/signed-out"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let object_id = r.body["id"].as_str().unwrap();
    let secret = t
        .post(
            &format!("/applications/{object_id}/addPassword"),
            json!({"passwordCredential": {"displayName": "test"}}),
        )
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    App {
        client_id: r.body["appId"].as_str().unwrap().to_string(),
        secret: Some(secret.body["secretText"].as_str().unwrap().to_string()),
    }
}

/// A reusable pass for `user_id`, good for an hour.
pub(crate) async fn pass_for(t: &TestServer, user_id: &str) -> String {
    issue_pass(
        t,
        user_id,
        json!({"isUsableOnce": false, "lifetimeInMinutes": 60}),
    )
    .await
}

pub(crate) fn authorize_url(app: &App, pkce: Option<&Pkce>, extra: &str) -> String {
    let mut url = format!(
        "/oauth2/v2.0/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid%20profile%20offline_access&state=st%20ate%2F1&nonce=n-0S6_WzA2Mj",
        app.client_id,
        urlencode(REDIRECT)
    );
    if let Some(p) = pkce {
        url.push_str(&format!(
            "&code_challenge={}&code_challenge_method=S256",
            p.challenge
        ));
    }
    url.push_str(extra);
    url
}

pub(crate) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

/// `/authorize`, then identify and a pass: the final step's answer (with `redirectUrl` when
/// granted) and the flow id.
pub(crate) async fn sign_in_with_pass(
    t: &TestServer,
    browser: &mut Browser,
    authorize: &str,
    upn: &str,
    pass: &str,
) -> (Answer, String) {
    let started = browser.get(authorize).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
    let location = started.location.expect("a redirect");
    assert!(location.starts_with("/signin?flow="), "{location}");
    let flow = query_param(&location, "flow").unwrap();
    let identified = browser
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/identify"),
            json!({"username": upn}),
        )
        .await;
    assert_eq!(identified.status, StatusCode::OK, "{}", identified.text);
    let done = browser
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/tap"),
            json!({"temporaryAccessPass": pass}),
        )
        .await;
    (done, flow)
}

pub(crate) async fn token(t: &TestServer, app: &App, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.push(("client_id", &app.client_id));
    if let Some(secret) = &app.secret {
        fields.push(("client_secret", secret));
    }
    let r = t.form("/oauth2/v2.0/token", &fields).await;
    (r.status, r.body)
}

pub(crate) async fn redeem(
    t: &TestServer,
    app: &App,
    code: &str,
    verifier: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(t, app, &form).await
}

async fn userinfo(t: &TestServer, access_token: &str) -> (StatusCode, Value) {
    let r = t
        .http
        .get(format!("{}/oidc/userinfo", t.url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discovery_names_every_endpoint_and_only_s256() {
    let t = TestServer::start().await;
    let r = t
        .http
        .get(format!("{}/.well-known/openid-configuration", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["issuer"], t.url);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{}/oauth2/v2.0/authorize", t.url)
    );
    assert_eq!(d["jwks_uri"], format!("{}/discovery/v2.0/keys", t.url));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
    assert!(d["end_session_endpoint"].is_string());
    assert!(d["revocation_endpoint"].is_string());
    assert!(d["userinfo_endpoint"].is_string());
    t.stop().await;
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_and_a_replayed_code_revokes_its_tokens() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let p = pkce("one");
    let mut browser = Browser::new(&t, WINDOWS);
    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, Some(&p), ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let back = done.body["redirectUrl"].as_str().expect("a redirect URL");
    assert!(back.starts_with(&format!("{REDIRECT}?code=")), "{back}");
    // `state` comes back exactly as sent.
    assert_eq!(query_param(back, "state").as_deref(), Some("st ate/1"));
    let code = query_param(back, "code").unwrap();

    let (status, tokens) = redeem(&t, &app, &code, Some(&p.verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    assert_eq!(tokens["token_type"], "Bearer");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], t.url);
    assert_eq!(id["aud"], app.client_id);
    assert_eq!(id["sub"], joni);
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["preferred_username"], "joni@contoso.com");
    assert!(
        id["amr"].as_array().unwrap().contains(&json!("tap")),
        "{id}"
    );
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let (status, info) = userinfo(&t, &access).await;
    assert_eq!(status, StatusCode::OK, "{info:?}");
    assert_eq!(info["sub"], joni);
    assert_eq!(info["preferred_username"], "joni@contoso.com");
    assert!(tokens["refresh_token"].is_string());

    // The same code again: refused, and what it issued stops working.
    let (status, replay) = redeem(&t, &app, &code, Some(&p.verifier)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(replay["error"], "invalid_grant", "{replay:?}");
    let (status, _) = userinfo(&t, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, refreshed) = token(
        &t,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refreshed:?}");
    t.stop().await;
}

#[tokio::test]
async fn pkce_is_required_s256_only_and_checked_at_the_token_endpoint() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut browser = Browser::new(&t, WINDOWS);

    // A public client without PKCE: the error goes back to the registered address, with state.
    let r = browser.get(&authorize_url(&app, None, "")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let location = r.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st ate/1"));
    assert!(query_param(&location, "code").is_none());
    // `plain` is refused.
    let p = pkce("plain");
    let plain = authorize_url(
        &app,
        None,
        &format!(
            "&code_challenge={}&code_challenge_method=plain",
            p.challenge
        ),
    );
    let r = browser.get(&plain).await;
    assert_eq!(
        query_param(&r.location.unwrap(), "error").as_deref(),
        Some("invalid_request")
    );

    // A wrong verifier, then a missing one: each refused (each needs its own code).
    for verifier in [Some("wrong-verifier-wrong-verifier-wrong-verifier-0"), None] {
        let (done, _) = sign_in_with_pass(
            &t,
            &mut Browser::new(&t, WINDOWS),
            &authorize_url(&app, Some(&p), ""),
            "joni@contoso.com",
            &pass,
        )
        .await;
        let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
        let (status, body) = redeem(&t, &app, &code, verifier).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(body["error"], "invalid_grant");
        // A refused attempt uses the code up: the right verifier afterwards gets nothing.
        let (status, body) = redeem(&t, &app, &code, Some(&p.verifier)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(body["error"], "invalid_grant");
        assert!(body.get("access_token").is_none(), "{body:?}");
    }

    // An expired code.
    let (done, _) = sign_in_with_pass(
        &t,
        &mut Browser::new(&t, WINDOWS),
        &authorize_url(&app, Some(&p), ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    t.clock.advance(Duration::minutes(6));
    let (status, body) = redeem(&t, &app, &code, Some(&p.verifier)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    t.stop().await;
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_client_gets_an_error_page_and_no_redirect() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let p = pkce("r");
    let evil = authorize_url(&app, Some(&p), "").replace(
        &urlencode(REDIRECT),
        &urlencode("https://evil.example/callback"),
    );
    let prefix = authorize_url(&app, Some(&p), "").replace(
        &urlencode(REDIRECT),
        &urlencode("https://app.contoso.com/callback/../x"),
    );
    let unknown = authorize_url(&app, Some(&p), "")
        .replace(&app.client_id, "6d3f1f3e-1b1e-4a59-9b0a-000000000000");
    for url in [evil, prefix, unknown] {
        let r = browser.get(&url).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(r.location.is_none(), "{url} redirected");
        assert!(r.text.contains("<html"), "a page, not raw JSON: {}", r.text);
        assert!(!r.text.contains("evil.example/callback?"), "{}", r.text);
    }
    t.stop().await;
}

#[tokio::test]
async fn a_confidential_client_must_prove_its_secret_and_its_redirect_uri() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut browser = Browser::new(&t, WINDOWS);
    // A confidential client may skip PKCE.
    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();

    let wrong = App {
        client_id: app.client_id.clone(),
        secret: Some("not-the-secret".into()),
    };
    let (status, body) = redeem(&t, &wrong, &code, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:?}");
    assert_eq!(body["error"], "invalid_client");
    let public = App {
        client_id: app.client_id.clone(),
        secret: None,
    };
    let (status, body) = redeem(&t, &public, &code, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body:?}");
    // The code was not spent by the refused attempts.
    let (status, body) = token(
        &t,
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.contoso.com/signed-out"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    assert_eq!(body["error"], "invalid_grant");
    t.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (_, first) = redeem(&t, &app, &code, None).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();

    let (status, second) = token(
        &t,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second:?}");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let id = claims(second["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], joni);
    assert!(
        id.get("nonce").is_none(),
        "a refreshed ID token carries no nonce: {id}"
    );

    // r1 again: a thief or a bug. The whole family goes, r2 included.
    let (status, reused) = token(
        &t,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant");
    let (status, _) = token(
        &t,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = userinfo(&t, second["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Revocation (RFC 7009) of a fresh sign-in's refresh token.
    let (done, _) = sign_in_with_pass(
        &t,
        &mut Browser::new(&t, WINDOWS),
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (_, tokens) = redeem(&t, &app, &code, None).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = t
        .form(
            "/oauth2/v2.0/revoke",
            &[
                ("token", refresh),
                ("client_id", &app.client_id),
                ("client_secret", app.secret.as_deref().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (status, _) = token(
        &t,
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    t.stop().await;
}

/// Tokens that look like `token` (a split token, `ID.SECRET`) to someone who knows or guesses
/// part of it: the right id with the secret truncated, extended, changed or left out, and the
/// secret under an altered id.
pub(crate) fn forgeries(token: &str) -> Vec<String> {
    let (id, secret) = token.split_once('.').expect("a split token: ID.SECRET");
    assert_eq!(id.len(), 36, "{token}");
    let other = |c: char| if c == 'A' { 'B' } else { 'A' };
    let last = secret.chars().last().unwrap();
    let changed = format!("{}{}", &secret[..secret.len() - 1], other(last));
    let id_last = id.chars().last().unwrap();
    let altered_id = format!("{}{}", &id[..35], if id_last == '0' { '1' } else { '0' });
    vec![
        format!("{id}.{}", &secret[..secret.len() - 1]),
        format!("{id}.{secret}A"),
        format!("{id}.{changed}"),
        format!("{id}."),
        id.to_string(),
        format!("{altered_id}.{secret}"),
    ]
}

/// A split token nobody was issued: a well-formed id and secret.
pub(crate) fn unknown_token() -> String {
    format!("{}.{}", uuid::Uuid::now_v7(), "A".repeat(43))
}

/// A code or refresh token with the right id and a wrong, truncated, extended or missing
/// secret, or with an altered id, gets exactly an unknown token's answer, and uses up or
/// revokes nothing: the real code still redeems once, the real refresh token still rotates,
/// the tokens issued stay good. Only the real code replayed revokes the grant.
#[tokio::test]
async fn a_code_or_refresh_token_with_a_wrong_secret_is_unknown_and_changes_nothing() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();

    let unknown = redeem(&t, &app, &unknown_token(), None).await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST, "{:?}", unknown.1);
    assert_eq!(unknown.1["error"], "invalid_grant");
    for forged in forgeries(&code) {
        assert_eq!(redeem(&t, &app, &forged, None).await, unknown, "{forged}");
    }
    let (status, tokens) = redeem(&t, &app, &code, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the code is still unused: {tokens:?}"
    );
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let r1 = tokens["refresh_token"].as_str().unwrap().to_string();

    // The code is used now; forgeries of it are still unknown, never a replay that revokes.
    for forged in forgeries(&code) {
        assert_eq!(redeem(&t, &app, &forged, None).await, unknown, "{forged}");
    }
    assert_eq!(userinfo(&t, &access).await.0, StatusCode::OK);

    let refresh = |presented: String| {
        let (t, app) = (&t, &app);
        async move {
            token(
                t,
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &presented),
                ],
            )
            .await
        }
    };
    let unknown = refresh(unknown_token()).await;
    assert_eq!(unknown.0, StatusCode::BAD_REQUEST, "{:?}", unknown.1);
    for forged in forgeries(&r1) {
        assert_eq!(refresh(forged.clone()).await, unknown, "{forged}");
        // Revocation answers 200 whatever it is given, and revokes nothing for a forgery.
        let r = t
            .form(
                "/oauth2/v2.0/revoke",
                &[
                    ("token", &forged),
                    ("client_id", &app.client_id),
                    ("client_secret", app.secret.as_deref().unwrap()),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(userinfo(&t, &access).await.0, StatusCode::OK);
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, StatusCode::OK, "r1 is still unused: {second:?}");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    // r1 is used now: its forgeries are unknown, not a reuse that ends the family.
    for forged in forgeries(&r1) {
        assert_eq!(refresh(forged.clone()).await, unknown, "{forged}");
    }
    let (status, third) = refresh(r2).await;
    assert_eq!(status, StatusCode::OK, "the family is intact: {third:?}");

    // The real code replayed still revokes everything issued under it.
    let (status, _) = redeem(&t, &app, &code, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let r3 = third["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(r3).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(userinfo(&t, &access).await.0, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn single_sign_on_reuses_the_session_unless_the_application_asks_for_a_fresh_one() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let other = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let p = pkce("sso");
    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, Some(&p), ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(done.body["status"], "completed");

    // Another application in the same browser: straight back with a code, no page.
    let r = browser.get(&authorize_url(&other, None, "")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let location = r.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = query_param(&location, "code").expect("a code");
    let (status, tokens) = redeem(&t, &other, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], joni);

    // prompt=login and max_age=0 both send the person to sign in again.
    for extra in ["&prompt=login", "&max_age=0"] {
        let r = browser.get(&authorize_url(&other, None, extra)).await;
        assert!(
            r.location
                .as_deref()
                .unwrap_or_default()
                .starts_with("/signin?flow="),
            "{extra}: {:?}",
            r.location
        );
    }
    // prompt=none without a session: an error to the application, never a page.
    let r = Browser::new(&t, WINDOWS)
        .get(&authorize_url(&other, None, "&prompt=none"))
        .await;
    let location = r.location.unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required")
    );

    // Each of these decisions is in the sign-in log, for each application.
    let log = t.get("/auditLogs/signIns?$top=999").await;
    let for_other = log.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["appId"] == other.client_id)
        .count();
    assert!(for_other >= 1, "{:?}", log.body);
    t.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_revokes_its_tokens_and_returns_only_to_registered_addresses() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (_, tokens) = redeem(&t, &app, &code, None).await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // Not registered: an error page, no redirect.
    let r = browser
        .get(&format!(
            "/oauth2/v2.0/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            urlencode("https://evil.example/")
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location.is_none());

    let (done, _) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (_, tokens) = redeem(&t, &app, &code, None).await;
    let r = browser
        .get(&format!(
            "/oauth2/v2.0/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            tokens["id_token"].as_str().unwrap(),
            urlencode("https://app.contoso.com/signed-out")
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.location.as_deref(),
        Some("https://app.contoso.com/signed-out?state=bye")
    );
    assert!(browser.cookie.is_none(), "the session cookie is cleared");
    let (status, _) = token(
        &t,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The next authorization needs a sign-in.
    let r = browser.get(&authorize_url(&app, None, "")).await;
    assert!(r.location.unwrap().starts_with("/signin?flow="));
    t.stop().await;
}

/// DESIGN.md's tenant for the OIDC story: admins must use phishing-resistant MFA, and every
/// platform but Windows is blocked (or only reported).
async fn story(t: &TestServer, block_state: &str) -> (String, String) {
    let joni = story_tenant(t, block_state, PHISHING_RESISTANT).await.joni;
    allow_test_authenticator(t).await;
    let pass = pass_for(t, &joni).await;
    (joni, pass)
}

/// Registers a passkey in the interrupt and proves it; the last answer.
async fn register_and_prove(
    browser: &mut Browser,
    origin: &str,
    flow: &str,
    phone: &mut SoftwareAuthenticator,
) -> Answer {
    let options = browser
        .step(
            origin,
            &format!("/signin/flows/{flow}/registration/options"),
            json!({"device": "another"}),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text);
    let credential = phone.create(&options.body["options"]);
    let registered = browser
        .step(
            origin,
            &format!("/signin/flows/{flow}/registration"),
            json!({"ceremonyId": options.body["ceremonyId"], "name": "Joni's phone", "credential": credential}),
        )
        .await;
    assert_eq!(
        registered.body["status"], "proveRegistration",
        "{}",
        registered.text
    );
    let options = browser
        .step(
            origin,
            &format!("/signin/flows/{flow}/passkey/options"),
            json!({}),
        )
        .await;
    let assertion = phone.get(&options.body["options"]);
    browser
        .step(
            origin,
            &format!("/signin/flows/{flow}/passkey/verify"),
            json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
        )
        .await
}

#[tokio::test]
async fn joni_registers_a_passkey_through_the_interrupt_and_the_id_token_says_how() {
    let t = TestServer::start().await;
    let (joni, pass) = story(&t, "enabled").await;
    let app = confidential_app(&t).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let (interrupted, flow) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(
        interrupted.body["status"], "registrationNeeded",
        "{}",
        interrupted.text
    );
    assert!(interrupted.body.get("redirectUrl").is_none());
    let mut phone = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let done = register_and_prove(&mut browser, &t.url.clone(), &flow, &mut phone).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = redeem(&t, &app, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], joni);
    assert_eq!(id["acr"], "phishingResistantMfa", "{id}");
    let amr: Vec<&str> = id["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for expected in ["tap", "hwk", "user", "mfa"] {
        assert!(amr.contains(&expected), "{expected} in {amr:?}");
    }
    t.stop().await;
}

#[tokio::test]
async fn a_blocked_platform_gets_no_code_by_any_path_and_each_attempt_is_logged() {
    let t = TestServer::start().await;
    let (joni, pass) = story(&t, "enabled").await;
    let app = confidential_app(&t).await;
    // Joni already has a passkey and a password: every first factor is tried from Android.
    let r = t
        .patch(
            &format!("/users/{joni}"),
            json!({"passwordProfile": {"password": "Correct-Horse-9-Battery"}}),
        )
        .await;
    let has_password = r.status.is_success();
    let mut phone = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    {
        let mut windows = Browser::new(&t, WINDOWS);
        let (_, flow) = sign_in_with_pass(
            &t,
            &mut windows,
            &authorize_url(&app, None, ""),
            "joni@contoso.com",
            &pass,
        )
        .await;
        let done = register_and_prove(&mut windows, &t.url.clone(), &flow, &mut phone).await;
        assert_eq!(done.body["status"], "completed", "{}", done.text);
    }
    let before = t.get("/auditLogs/signIns?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .len();

    let mut android = Browser::new(&t, ANDROID);
    let (blocked, flow) = sign_in_with_pass(
        &t,
        &mut android,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "{}", blocked.text);
    assert_eq!(blocked.body["status"], "blocked");
    assert_eq!(blocked.body["errorCode"], 53003);
    assert_eq!(
        blocked.body["policies"][0]["displayName"],
        "Passkey test: unsupported platforms"
    );
    assert!(blocked.body.get("redirectUrl").is_none());
    // The blocked flow takes no more steps.
    let again = android
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/passkey/options"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // A passkey from Android, in a new flow.
    let mut android = Browser::new(&t, ANDROID);
    let started = android.get(&authorize_url(&app, None, "")).await;
    let flow = query_param(&started.location.unwrap(), "flow").unwrap();
    let options = android
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/passkey/options"),
            json!({}),
        )
        .await;
    let assertion = phone.get(&options.body["options"]);
    let blocked = android
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/passkey/verify"),
            json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN, "{}", blocked.text);
    assert!(blocked.body.get("redirectUrl").is_none());

    // A password from Android, when the tenant lets Joni have one.
    let mut attempts = 2;
    if has_password {
        let mut android = Browser::new(&t, ANDROID);
        let started = android.get(&authorize_url(&app, None, "")).await;
        let flow = query_param(&started.location.unwrap(), "flow").unwrap();
        android
            .step(
                &t.url,
                &format!("/signin/flows/{flow}/identify"),
                json!({"username": "joni@contoso.com"}),
            )
            .await;
        let blocked = android
            .step(
                &t.url,
                &format!("/signin/flows/{flow}/password"),
                json!({"password": "Correct-Horse-9-Battery"}),
            )
            .await;
        assert_eq!(blocked.status, StatusCode::FORBIDDEN, "{}", blocked.text);
        attempts += 1;
    }
    // SSO from Android with the Windows session is not possible (different browser), and a
    // fresh Android session never reached a code: no grant was made.
    let log = t.get("/auditLogs/signIns?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .clone();
    let blocked_entries = log[..log.len() - before]
        .iter()
        .filter(|e| e["status"]["errorCode"] == 53003 && e["appId"] == app.client_id)
        .count();
    assert!(
        blocked_entries >= attempts,
        "{attempts} blocked attempts logged: {log:?}"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_report_only_platform_policy_lets_joni_in_and_the_log_says_report_only_failure() {
    let t = TestServer::start().await;
    let (_, pass) = story(&t, "enabledForReportingButNotEnforced").await;
    let app = confidential_app(&t).await;
    let mut phone = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let mut android = Browser::new(&t, ANDROID);
    let (interrupted, flow) = sign_in_with_pass(
        &t,
        &mut android,
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(
        interrupted.body["status"], "registrationNeeded",
        "{}",
        interrupted.text
    );
    let done = register_and_prove(&mut android, &t.url.clone(), &flow, &mut phone).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let log = t
        .get(&format!(
            "/auditLogs/signIns?$filter=appId eq '{}'",
            app.client_id
        ))
        .await;
    let granted = log.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"]["errorCode"] == 0)
        .expect("the granted sign-in")
        .clone();
    let platform = granted["appliedConditionalAccessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Passkey test: unsupported platforms")
        .unwrap()
        .clone();
    assert_eq!(platform["result"], "reportOnlyFailure");
    t.stop().await;
}

#[tokio::test]
async fn a_sign_in_step_from_another_origin_is_refused() {
    let t = TestServer::start().await;
    let app = public_app(&t).await;
    let mut browser = Browser::new(&t, WINDOWS);
    let started = browser
        .get(&authorize_url(&app, Some(&pkce("csrf")), ""))
        .await;
    let flow = query_param(&started.location.unwrap(), "flow").unwrap();
    let r = browser
        .step(
            "https://evil.example",
            &format!("/signin/flows/{flow}/identify"),
            json!({"username": "joni@contoso.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    t.stop().await;
}

#[tokio::test]
async fn steps_alternate_between_two_nodes() {
    let t = TestServer::start().await;
    let (node_b, url_b) = t.second_node().await.expect("a second node");
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let mut a = Browser::new(&t, WINDOWS);
    let started = a.get(&authorize_url(&app, None, "")).await;
    let flow = query_param(&started.location.unwrap(), "flow").unwrap();
    let mut b = a.on(&url_b);
    let r = b
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/identify"),
            json!({"username": "joni@contoso.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let done = a
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/tap"),
            json!({"temporaryAccessPass": pass}),
        )
        .await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    // The code is redeemed at node B, and B's single sign-on knows A's session.
    let r = reqwest::Client::new()
        .post(format!("{url_b}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app.client_id),
            ("client_secret", app.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let (status, info) = userinfo(&t, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{info:?}");
    let mut b = a.on(&url_b);
    let sso = b.get(&authorize_url(&app, None, "")).await;
    assert!(sso.location.unwrap().starts_with(REDIRECT));
    node_b.shutdown().await.unwrap();
    t.stop().await;
}

/// The `openidconnect` crate's HTTP calls, made with reqwest and never following redirects
/// (as that crate requires of its clients).
pub(crate) async fn oidc_http(
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, std::io::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let (parts, body) = request.into_parts();
    let mut outgoing = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await.map_err(std::io::Error::other)?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let bytes = response.bytes().await.map_err(std::io::Error::other)?;
    builder.body(bytes.to_vec()).map_err(std::io::Error::other)
}

#[tokio::test]
async fn the_openidconnect_crate_completes_the_code_flow_and_validates_the_id_token() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
        RedirectUrl, Scope, TokenResponse,
    };

    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(t.url.clone()).unwrap(), &oidc_http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.secret.clone().unwrap())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The person's part, as the sign-in pages would do it.
    let mut browser = Browser::new(&t, WINDOWS);
    let (done, _) =
        sign_in_with_pass(&t, &mut browser, url.as_str(), "joni@contoso.com", &pass).await;
    let back = done.body["redirectUrl"].as_str().expect("a redirect URL");
    assert_eq!(
        query_param(back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(back, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&oidc_http)
        .await
        .expect("the token exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verified = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the ID token verifies: signature, issuer, audience, nonce, expiry");
    assert_eq!(verified.subject().as_str(), joni);
    assert_eq!(
        verified.preferred_username().map(|u| u.as_str()),
        Some("joni@contoso.com")
    );
    let amr: Vec<String> = verified
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert!(amr.contains(&"tap".to_string()), "{amr:?}");
    // A nonce other than the one sent is caught by the library.
    assert!(
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new("another".into()))
            .is_err()
    );
    t.stop().await;
}

#[tokio::test]
async fn an_authentication_context_asked_for_with_acr_values_steps_up_the_sign_in() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let r = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({"displayName": "Sensitive actions need phishing-resistant MFA", "state": "enabled",
                   "conditions": {"users": {"includeUsers": ["All"]},
                                  "applications": {"includeAuthenticationContextClassReferences": ["c1"]},
                                  "clientAppTypes": ["all"]},
                   "grantControls": {"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = t
        .patch(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
            json!({"isSelfServiceRegistrationAllowed": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // Without the context the pass is enough for this application.
    let (plain, _) = sign_in_with_pass(
        &t,
        &mut Browser::new(&t, WINDOWS),
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(plain.body["status"], "completed", "{}", plain.text);
    let code = query_param(plain.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (_, tokens) = redeem(&t, &app, &code, None).await;
    assert!(
        claims(tokens["id_token"].as_str().unwrap())
            .get("acrs")
            .is_none()
    );

    // Asking for c1: the policy on c1 applies, and Joni must set up a passkey and prove it.
    let mut browser = Browser::new(&t, WINDOWS);
    let (stepped, flow) = sign_in_with_pass(
        &t,
        &mut browser,
        &authorize_url(&app, None, "&acr_values=c1"),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(
        stepped.body["status"], "registrationNeeded",
        "{}",
        stepped.text
    );
    assert_eq!(
        stepped.body["policies"][0]["displayName"],
        "Sensitive actions need phishing-resistant MFA"
    );
    let mut key = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let done = register_and_prove(&mut browser, &t.url.clone(), &flow, &mut key).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (_, tokens) = redeem(&t, &app, &code, None).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acrs"], json!(["c1"]), "{id}");
    assert_eq!(id["acr"], "phishingResistantMfa");

    // A value that names no authentication context is ignored (acr_values is a voluntary
    // request, OpenID Connect Core §5.5.1.1): the request goes on, here to single sign-on.
    let r = browser
        .get(&authorize_url(
            &app,
            None,
            "&acr_values=urn:mace:incommon:iap:silver",
        ))
        .await;
    let location = r.location.unwrap();
    assert_eq!(query_param(&location, "error"), None, "{location}");
    assert!(
        query_param(&location, "code").is_some() || location.starts_with("/signin?flow="),
        "{location}"
    );
    t.stop().await;
}

#[tokio::test]
async fn sign_in_frequency_sends_a_lapsed_session_back_to_the_first_factor() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let r = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({"displayName": "Sign in every hour, never persistent", "state": "enabled",
                   "conditions": {"users": {"includeUsers": ["All"]},
                                  "applications": {"includeApplications": ["All"]},
                                  "clientAppTypes": ["all"]},
                   "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": 1, "frequencyInterval": "timeBased"},
                                       "persistentBrowser": {"isEnabled": true, "mode": "never"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let mut browser = Browser::new(&t, WINDOWS);
    let started = browser.get(&authorize_url(&app, None, "")).await;
    let flow = query_param(&started.location.unwrap(), "flow").unwrap();
    browser
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/identify"),
            json!({"username": "joni@contoso.com"}),
        )
        .await;
    let request = browser
        .http
        .post(format!("{}/signin/flows/{flow}/tap", t.url))
        .header("origin", &t.url)
        .header("user-agent", WINDOWS)
        .json(&json!({"temporaryAccessPass": pass}));
    let response = request.send().await.unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    // "Never persistent": the cookie ends with the browser.
    assert!(!cookie.to_ascii_lowercase().contains("max-age"), "{cookie}");
    browser.cookie = Some(
        cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("portcullis_session=")
            .to_string(),
    );
    let done: Value = response.json().await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");

    // Within the hour, single sign-on.
    t.clock.advance(Duration::minutes(30));
    let r = browser.get(&authorize_url(&app, None, "")).await;
    assert!(r.location.unwrap().starts_with(REDIRECT));
    // Past it, the person signs in again.
    t.clock.advance(Duration::minutes(45));
    let r = browser.get(&authorize_url(&app, None, "")).await;
    let location = r.location.unwrap();
    assert!(location.starts_with("/signin?flow="), "{location}");
    let flow = query_param(&location, "flow").unwrap();
    let state = browser.get(&format!("/signin/flows/{flow}")).await;
    assert_eq!(state.body["status"], "firstFactor", "{}", state.text);
    t.stop().await;
}

#[tokio::test]
async fn each_attempt_in_a_sign_in_is_one_log_entry_under_the_application() {
    let t = TestServer::start().await;
    let app = confidential_app(&t).await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = pass_for(&t, &joni).await;
    let entries = |body: &Value| body["value"].as_array().unwrap().clone();
    let before = entries(&t.get("/auditLogs/signIns?$top=999").await.body).len();

    let (wrong, _) = sign_in_with_pass(
        &t,
        &mut Browser::new(&t, WINDOWS),
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        "not-the-pass",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    let (done, _) = sign_in_with_pass(
        &t,
        &mut Browser::new(&t, WINDOWS),
        &authorize_url(&app, None, ""),
        "joni@contoso.com",
        &pass,
    )
    .await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);

    let log = entries(&t.get("/auditLogs/signIns?$top=999").await.body);
    let new: Vec<&Value> = log[..log.len() - before].iter().collect();
    assert_eq!(new.len(), 2, "one entry per attempt: {new:?}");
    assert!(new.iter().all(|e| e["appId"] == app.client_id), "{new:?}");
    let codes: Vec<i64> = new
        .iter()
        .map(|e| e["status"]["errorCode"].as_i64().unwrap())
        .collect();
    assert!(codes.contains(&50126) && codes.contains(&0), "{codes:?}");
    t.stop().await;
}
