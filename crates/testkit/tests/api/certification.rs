//! The OpenID Foundation's certification test plans, module by module, against the real server:
//! `oidcc-basic-certification-test-plan` (Basic OP) and `oidcc-config-certification-test-plan`
//! (Config OP). The conformance suite itself cannot run here (it is a hosted Java service that
//! drives a browser), so each of its modules is a test named after it (`oidcc-scope-email` is
//! `oidcc_scope_email`) that does what the module does and asserts what it asserts, or, where
//! Portcullis does not offer a feature the module exercises, what the specification allows
//! instead. CONFORMANCE.md lists every module with its test.
//!
//! The relying party here is a confidential web client authenticating with
//! `client_secret_basic`, as the plan's default variant (`response_type=code`,
//! `response_mode=default`); `oidcc_server_client_secret_post` is the plan's second variant.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_testkit::fixtures::{WINDOWS, user};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};
use time::Duration;

use crate::oidc::{
    Answer, App, Browser, REDIRECT, claims, confidential_app, pass_for, pkce, query_param,
    urlencode,
};
use crate::signing_algorithms::{app_signed_with, header, key_set, rs256_verifies};

const UPN: &str = "joni@contoso.com";
const NONCE: &str = "n-0S6_WzA2Mj";
const STATE: &str = "af0ifjsldkj";

/// The suite's relying party: one server, one registered client, one person with a reusable
/// pass, and one browser whose session cookie carries single sign-on between authorizations.
struct Rp {
    t: TestServer,
    app: App,
    browser: Browser,
    person: String,
    /// Who signs in when the server asks, with `pass`.
    username: String,
    pass: String,
}

/// What came back at the redirect URI.
struct Callback {
    url: String,
}

impl Callback {
    fn param(&self, name: &str) -> Option<String> {
        query_param(&self.url, name)
    }
    fn code(&self) -> String {
        assert_eq!(self.param("error"), None, "{}", self.url);
        self.param("code")
            .unwrap_or_else(|| panic!("a code in {}", self.url))
    }
}

impl Rp {
    async fn new() -> Rp {
        let t = TestServer::start().await;
        let app = confidential_app(&t).await;
        Self::with(t, app).await
    }

    async fn with(t: TestServer, app: App) -> Rp {
        let person = user(&t, UPN).await;
        let pass = pass_for(&t, &person).await;
        let browser = Browser::new(&t, WINDOWS);
        Rp {
            t,
            app,
            browser,
            person,
            username: UPN.to_string(),
            pass,
        }
    }

    /// An authorization request as the suite builds it: `response_type=code`, the registered
    /// redirect URI, a state and a nonce, then `extra`.
    fn authorize_url(&self, scope: &str, extra: &str) -> String {
        format!(
            "/oauth2/v2.0/authorize?client_id={}&redirect_uri={}&response_type=code&scope={}&state={STATE}&nonce={NONCE}{extra}",
            self.app.client_id,
            urlencode(REDIRECT),
            urlencode(scope),
        )
    }

    /// Sends the browser to `url`; when the server asks the person to sign in, they do (the
    /// suite's "user interaction"). Whether they had to is returned beside the callback.
    async fn authorize(&mut self, url: &str) -> (Callback, bool) {
        let started = self.browser.get(url).await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
        let location = started.location.expect("a redirect");
        if location.starts_with(REDIRECT) {
            return (Callback { url: location }, false);
        }
        assert!(location.starts_with("/signin?flow="), "{location}");
        let done = self.finish_sign_in(&location).await;
        (Callback { url: done }, true)
    }

    /// Sends the browser to `url`, which must answer at once by sending an error back to the
    /// registered redirect URI (no page, no code); what came back.
    async fn error_sent_back(&mut self, url: &str) -> Callback {
        let r = self.browser.get(url).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let back = Callback {
            url: r.location.expect("a redirect"),
        };
        assert!(back.url.starts_with(REDIRECT), "{}", back.url);
        assert_eq!(back.param("code"), None);
        back
    }

    /// Identify and present the pass on the flow `location` names; the redirect URL it ends at.
    async fn finish_sign_in(&mut self, location: &str) -> String {
        let flow = query_param(location, "flow").unwrap();
        let url = self.t.url.clone();
        let identified = self
            .browser
            .step(
                &url,
                &format!("/signin/flows/{flow}/identify"),
                json!({"username": self.username}),
            )
            .await;
        assert_eq!(identified.status, StatusCode::OK, "{}", identified.text);
        let done: Answer = self
            .browser
            .step(
                &url,
                &format!("/signin/flows/{flow}/tap"),
                json!({"temporaryAccessPass": self.pass}),
            )
            .await;
        assert_eq!(done.body["status"], "completed", "{}", done.text);
        done.body["redirectUrl"].as_str().unwrap().to_string()
    }

    /// The token request with `client_secret_basic` (RFC 6749 §2.3.1: both parts form-encoded).
    async fn token_basic(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let credentials = format!(
            "{}:{}",
            urlencode(&self.app.client_id),
            urlencode(self.app.secret.as_deref().unwrap())
        );
        let r = self
            .t
            .http
            .post(format!("{}/oauth2/v2.0/token", self.t.url))
            .header(
                "authorization",
                format!("Basic {}", STANDARD.encode(credentials)),
            )
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn redeem(&self, code: &str) -> (StatusCode, Value) {
        self.token_basic(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ])
        .await
    }

    async fn tokens(&self, callback: &Callback) -> Value {
        let (status, tokens) = self.redeem(&callback.code()).await;
        assert_eq!(status, StatusCode::OK, "{tokens:?}");
        tokens
    }

    /// A whole code flow: authorize (signing in if asked), redeem, and the token response.
    async fn code_flow(&mut self, scope: &str, extra: &str) -> Value {
        let url = self.authorize_url(scope, extra);
        let (callback, _) = self.authorize(&url).await;
        assert_eq!(callback.param("state").as_deref(), Some(STATE));
        self.tokens(&callback).await
    }

    async fn discovery(&self) -> Value {
        self.t
            .http
            .get(format!("{}/.well-known/openid-configuration", self.t.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn userinfo(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let r = request.send().await.unwrap();
        let status = r.status();
        if status == StatusCode::OK {
            let kind = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(kind.starts_with("application/json"), "{kind}");
        }
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn userinfo_url(&self) -> String {
        format!("{}/oidc/userinfo", self.t.url)
    }

    async fn userinfo_get(&self, access_token: &str) -> (StatusCode, Value) {
        self.userinfo(
            self.t
                .http
                .get(self.userinfo_url())
                .bearer_auth(access_token),
        )
        .await
    }

    /// Verifies the ID token as the suite does (OIDCCServerTest's ID token checks) and returns
    /// its claims.
    async fn check_id_token(&self, tokens: &Value, nonce: Option<&str>) -> Value {
        let id_token = tokens["id_token"].as_str().expect("an id_token");
        let h = header(id_token);
        let keys = key_set(&self.t, &self.t.url).await;
        let jwk = keys
            .iter()
            .find(|k| k["kid"] == h["kid"])
            .expect("the header's kid names a published key");
        assert_eq!(h["alg"], jwk["alg"], "signed with the key's algorithm");
        assert!(signature_verifies(id_token, jwk), "the signature verifies");
        let c = claims(id_token);
        let discovery = self.discovery().await;
        assert_eq!(c["iss"], discovery["issuer"]);
        assert_eq!(c["aud"], self.app.client_id.as_str());
        let sub = c["sub"].as_str().expect("sub");
        assert!(!sub.is_empty() && sub.len() <= 255 && sub.is_ascii());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!(exp > iat, "exp after iat");
        // The test clock starts at the real time and moves only as far as a test moves it.
        assert!((iat - now).abs() < 60 * 60 * 25, "iat near now");
        assert!(c["auth_time"].as_i64().is_some(), "auth_time");
        assert_eq!(c["nonce"].as_str(), nonce);
        c
    }
}

/// Verifies a JWS with the JWK it names, by the JWK's algorithm, with `ring` alone.
fn signature_verifies(jwt: &str, jwk: &Value) -> bool {
    match jwk["alg"].as_str() {
        Some("RS256") => rs256_verifies(jwt, jwk),
        Some("ES256") => {
            let (signed, signature) = jwt.rsplit_once('.').unwrap();
            let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
                return false;
            };
            let mut point = vec![4u8];
            for member in ["x", "y"] {
                point.extend(
                    URL_SAFE_NO_PAD
                        .decode(jwk[member].as_str().unwrap())
                        .unwrap(),
                );
            }
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(signed.as_bytes(), &signature)
            .is_ok()
        }
        _ => false,
    }
}

fn scopes_of(tokens: &Value) -> Vec<String> {
    tokens["scope"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect()
}

// ---- Basic OP -------------------------------------------------------------------------------

/// OP-Response-code: the code flow end to end, the client authenticating with
/// `client_secret_basic`; the callback carries the state, the ID token passes every check.
#[tokio::test]
async fn oidcc_server() {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", "");
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(interacted, "the person signed in");
    assert_eq!(callback.param("state").as_deref(), Some(STATE));
    let (status, tokens) = rp.redeem(&callback.code()).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    assert!(
        tokens["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("bearer")
    );
    assert!(tokens["access_token"].is_string());
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    let c = rp.check_id_token(&tokens, Some(NONCE)).await;
    assert_eq!(c["sub"], rp.person.as_str());
    rp.t.stop().await;
}

/// OP-ClientAuth-SecretPost: the same flow with the secret in the token request's body; a
/// request without any client authentication is refused.
#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", "");
    let (callback, _) = rp.authorize(&url).await;
    let code = callback.code();
    let unauthenticated =
        rp.t.form(
            "/oauth2/v2.0/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", rp.app.client_id.as_str()),
            ],
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.body["error"], "invalid_client");
    // A refused client did not use the code up.
    let (status, tokens) = crate::oidc::redeem(&rp.t, &rp.app, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// OP-Response-Missing: without `response_type` the request is refused, to the registered
/// redirect URI with `invalid_request` and the state (or on an error page), never with a code.
#[tokio::test]
async fn oidcc_response_type_missing() {
    let mut rp = Rp::new().await;
    let url = rp
        .authorize_url("openid", "")
        .replace("&response_type=code", "");
    let back = rp.error_sent_back(&url).await;
    assert_eq!(back.param("error").as_deref(), Some("invalid_request"));
    assert_eq!(back.param("state").as_deref(), Some(STATE));
    rp.t.stop().await;
}

/// OP-IDToken-Signature and OP-IDToken-kid: the ID token is signed, its header names the key
/// by `kid`, that key is in the key set and verifies it, and a changed token does not verify.
#[tokio::test]
async fn oidcc_idtoken_signature() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "").await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let keys = key_set(&rp.t, &rp.t.url).await;
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == header(id_token)["kid"])
        .unwrap();
    let mut parts: Vec<String> = id_token.split('.').map(str::to_string).collect();
    let mut body = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
    body[2] ^= 1;
    parts[1] = URL_SAFE_NO_PAD.encode(body);
    assert!(!signature_verifies(&parts.join("."), jwk));
    rp.t.stop().await;
}

/// OP-IDToken-none: the suite runs it only for an OP that offers unsigned ID tokens. Portcullis
/// never issues one: `none` is not offered in discovery and cannot be registered.
#[tokio::test]
async fn oidcc_idtoken_unsigned() {
    let rp = Rp::new().await;
    let offered = rp.discovery().await["id_token_signing_alg_values_supported"].clone();
    assert!(
        !offered.as_array().unwrap().iter().any(|a| a == "none"),
        "{offered}"
    );
    let r =
        rp.t.post(
            "/applications",
            json!({"displayName": "Unsigned", "idTokenSignedResponseAlg": "none"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_target(), Some("idTokenSignedResponseAlg"));
    rp.t.stop().await;
}

/// OP-IDToken-RS256 (from the Dynamic OP plan; Basic OP clients may ask for it too): a client
/// registered for RS256 gets an RS256 ID token that verifies with the published key.
#[tokio::test]
async fn oidcc_idtoken_rs256() {
    let t = TestServer::start().await;
    let app = app_signed_with(&t, Some("RS256")).await;
    let mut rp = Rp::with(t, app).await;
    let tokens = rp.code_flow("openid", "").await;
    assert_eq!(header(tokens["id_token"].as_str().unwrap())["alg"], "RS256");
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// OP-UserInfo-Endpoint: userinfo by GET with the bearer token; its `sub` is the ID token's.
#[tokio::test]
async fn oidcc_userinfo_get() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "").await;
    let (status, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        info["sub"],
        claims(tokens["id_token"].as_str().unwrap())["sub"]
    );
    rp.t.stop().await;
}

/// OP-UserInfo-Header: userinfo by POST with the bearer token in the header.
#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "").await;
    let request =
        rp.t.http
            .post(rp.userinfo_url())
            .bearer_auth(tokens["access_token"].as_str().unwrap());
    let (status, info) = rp.userinfo(request).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        info["sub"],
        claims(tokens["id_token"].as_str().unwrap())["sub"]
    );
    rp.t.stop().await;
}

/// OP-UserInfo-Body: userinfo by POST with the token as the `access_token` form field
/// (RFC 6750 §2.2).
#[tokio::test]
async fn oidcc_userinfo_post_body() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "").await;
    let request =
        rp.t.http
            .post(rp.userinfo_url())
            .form(&[("access_token", tokens["access_token"].as_str().unwrap())]);
    let (status, info) = rp.userinfo(request).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        info["sub"],
        claims(tokens["id_token"].as_str().unwrap())["sub"]
    );
    rp.t.stop().await;
}

/// OP-nonce-NoReq-code: a code flow request without a nonce succeeds (the nonce is required
/// only for the implicit flow), and its ID token carries none.
#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let mut rp = Rp::new().await;
    let url = rp
        .authorize_url("openid", "")
        .replace(&format!("&nonce={NONCE}"), "");
    let (callback, _) = rp.authorize(&url).await;
    let tokens = rp.tokens(&callback).await;
    rp.check_id_token(&tokens, None).await;
    rp.t.stop().await;
}

/// OP-scope-profile: with `profile`, the profile claims Portcullis holds (name,
/// preferred_username) are returned; the scope is granted.
#[tokio::test]
async fn oidcc_scope_profile() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid profile", "").await;
    assert!(scopes_of(&tokens).contains(&"profile".to_string()));
    let (_, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["name"], "joni");
    assert_eq!(info["preferred_username"], UPN);
    assert!(info.get("email").is_none(), "only what was asked for");
    rp.t.stop().await;
}

/// OP-scope-email: with `email`, the email claim is returned.
#[tokio::test]
async fn oidcc_scope_email() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid email", "").await;
    assert!(scopes_of(&tokens).contains(&"email".to_string()));
    let (_, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["email"], UPN);
    assert!(info.get("name").is_none(), "only what was asked for");
    rp.t.stop().await;
}

/// A scope Portcullis does not support: absent from `scopes_supported` (so the suite skips the
/// module), and asking for it is not an error: it is ignored (OpenID Connect Core §3.1.2.1),
/// left out of the granted scopes, and no claim of it is returned.
async fn unsupported_scope_is_ignored(scope: &str, claim: &str) {
    let mut rp = Rp::new().await;
    let discovery = rp.discovery().await;
    assert!(
        !discovery["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == scope)
    );
    let tokens = rp.code_flow(&format!("openid {scope}"), "").await;
    assert_eq!(scopes_of(&tokens), ["openid"]);
    let (status, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(info.get(claim).is_none(), "{info}");
    rp.t.stop().await;
}

/// OP-scope-address (not supported: ignored).
#[tokio::test]
async fn oidcc_scope_address() {
    unsupported_scope_is_ignored("address", "address").await;
}

/// OP-scope-phone (not supported: ignored).
#[tokio::test]
async fn oidcc_scope_phone() {
    unsupported_scope_is_ignored("phone", "phone_number").await;
}

/// OP-scope-All: every standard scope at once; the supported ones are granted and their claims
/// returned, the others ignored.
#[tokio::test]
async fn oidcc_scope_all() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid profile email address phone", "").await;
    assert_eq!(scopes_of(&tokens), ["openid", "profile", "email"]);
    let (_, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["preferred_username"], UPN);
    assert_eq!(info["email"], UPN);
    rp.t.stop().await;
}

/// The scopes in another order (`email openid`) are the same request.
#[tokio::test]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("email openid", "").await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    let (_, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["email"], UPN);
    rp.t.stop().await;
}

/// `display` is a hint the OP may ignore (Core §3.1.2.1): the request succeeds and the person
/// is asked to sign in on the ordinary page.
async fn display_is_accepted(display: &str) {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", &format!("&display={display}"));
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(interacted);
    let tokens = rp.tokens(&callback).await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// OP-display-page.
#[tokio::test]
async fn oidcc_display_page() {
    display_is_accepted("page").await;
}

/// OP-display-popup.
#[tokio::test]
async fn oidcc_display_popup() {
    display_is_accepted("popup").await;
}

/// OP-prompt-login: signed in already, `prompt=login` makes the person sign in again, and the
/// second ID token's auth_time is later.
#[tokio::test]
async fn oidcc_prompt_login() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid", "").await;
    let first = rp.check_id_token(&first, Some(NONCE)).await;
    rp.t.clock.advance(Duration::seconds(2));
    let url = rp.authorize_url("openid", "&prompt=login");
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(interacted, "signed in again despite the session");
    let second = rp.tokens(&callback).await;
    let second = rp.check_id_token(&second, Some(NONCE)).await;
    assert_eq!(second["sub"], first["sub"]);
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64());
    rp.t.stop().await;
}

/// OP-prompt-none-NotLoggedIn: `prompt=none` without a session returns `login_required` (one
/// of the errors the module accepts) with the state, to the registered redirect URI.
#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", "&prompt=none");
    let back = rp.error_sent_back(&url).await;
    assert_eq!(back.param("error").as_deref(), Some("login_required"));
    assert_eq!(back.param("state").as_deref(), Some(STATE));
    rp.t.stop().await;
}

/// OP-prompt-none-LoggedIn: signed in already, `prompt=none` returns a code without any page;
/// the ID token names the same person and the same authentication.
#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid", "").await;
    let first = rp.check_id_token(&first, Some(NONCE)).await;
    let url = rp.authorize_url("openid", "&prompt=none");
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(!interacted);
    let second = rp.tokens(&callback).await;
    let second = rp.check_id_token(&second, Some(NONCE)).await;
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(second["auth_time"], first["auth_time"]);
    rp.t.stop().await;
}

/// OP-Req-max_age=1: signed in more than a second ago, `max_age=1` makes the person sign in
/// again; the new ID token has a later auth_time.
#[tokio::test]
async fn oidcc_max_age_1() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid", "").await;
    let first = rp.check_id_token(&first, Some(NONCE)).await;
    rp.t.clock.advance(Duration::seconds(2));
    let url = rp.authorize_url("openid", "&max_age=1");
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(interacted, "the session is older than max_age");
    let second = rp.tokens(&callback).await;
    let second = rp.check_id_token(&second, Some(NONCE)).await;
    assert!(second["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap() + 1);
    rp.t.stop().await;
}

/// OP-Req-max_age=10000: a recent session satisfies `max_age=10000`; no page, the same
/// auth_time.
#[tokio::test]
async fn oidcc_max_age_10000() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid", "").await;
    let first = rp.check_id_token(&first, Some(NONCE)).await;
    rp.t.clock.advance(Duration::seconds(2));
    let url = rp.authorize_url("openid", "&max_age=10000");
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(!interacted);
    let second = rp.tokens(&callback).await;
    let second = rp.check_id_token(&second, Some(NONCE)).await;
    assert_eq!(second["auth_time"], first["auth_time"]);
    rp.t.stop().await;
}

/// OP-Req-NotUnderstood: a parameter the OP does not know is ignored.
#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "&extra=foobar").await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// OP-Req-id_token_hint: signed in, the ID token handed back as `id_token_hint` with
/// `prompt=none` returns a code for the same person.
#[tokio::test]
async fn oidcc_id_token_hint() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid", "").await;
    let hint = first["id_token"].as_str().unwrap().to_string();
    let url = rp.authorize_url(
        "openid",
        &format!("&prompt=none&id_token_hint={}", urlencode(&hint)),
    );
    let (callback, interacted) = rp.authorize(&url).await;
    assert!(!interacted);
    let second = rp.tokens(&callback).await;
    let second = rp.check_id_token(&second, Some(NONCE)).await;
    assert_eq!(second["sub"], claims(&hint)["sub"]);
    rp.t.stop().await;
}

/// Not a module of the plans, but what `oidcc-id-token-hint` leaves open (OpenID Connect Core
/// §3.1.2.1): when someone other than the person the hint names is signed in, the session does
/// not answer for them — `login_required` with `prompt=none`, otherwise a sign-in; a hint this
/// server did not issue is refused.
#[tokio::test]
async fn id_token_hint_of_another_person_is_not_answered_with_this_session() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid", "").await;
    let hint = first["id_token"].as_str().unwrap().to_string();

    // Another person signs in, in another browser, to the same application.
    let other = user(&rp.t, "adele@contoso.com").await;
    rp.pass = pass_for(&rp.t, &other).await;
    rp.username = "adele@contoso.com".to_string();
    rp.browser = Browser::new(&rp.t, WINDOWS);
    let theirs = rp.code_flow("openid", "").await;
    let their_hint = theirs["id_token"].as_str().unwrap().to_string();
    let theirs = rp.check_id_token(&theirs, Some(NONCE)).await;
    assert_eq!(theirs["sub"], other.as_str());

    let hinted = format!("&id_token_hint={}", urlencode(&hint));
    let url = rp.authorize_url("openid", &format!("&prompt=none{hinted}"));
    let back = rp.error_sent_back(&url).await;
    assert_eq!(back.param("error").as_deref(), Some("login_required"));

    let r = rp.browser.get(&rp.authorize_url("openid", &hinted)).await;
    let location = r.location.expect("a redirect");
    assert!(location.starts_with("/signin?flow="), "{location}");

    // The session's own person's hint is answered at once.
    let own = rp.authorize_url(
        "openid",
        &format!("&prompt=none&id_token_hint={}", urlencode(&their_hint)),
    );
    let (callback, interacted) = rp.authorize(&own).await;
    assert!(!interacted);
    assert!(callback.param("code").is_some(), "{}", callback.url);

    let url = rp.authorize_url("openid", "&prompt=none&id_token_hint=not.a.token");
    let back = rp.error_sent_back(&url).await;
    assert_eq!(back.param("error").as_deref(), Some("invalid_request"));
    rp.t.stop().await;
}

/// OP-Req-login_hint: a hint the OP may use or ignore; the request succeeds.
#[tokio::test]
async fn oidcc_login_hint() {
    let mut rp = Rp::new().await;
    let tokens = rp
        .code_flow("openid", &format!("&login_hint={}", urlencode(UPN)))
        .await;
    let c = rp.check_id_token(&tokens, Some(NONCE)).await;
    assert_eq!(c["sub"], rp.person.as_str());
    rp.t.stop().await;
}

/// OP-Req-ui_locales: a preference the OP may ignore; the request succeeds.
#[tokio::test]
async fn oidcc_ui_locales() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "&ui_locales=se").await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// OP-Req-claims_locales: a preference the OP may ignore; the request and userinfo succeed.
#[tokio::test]
async fn oidcc_claims_locales() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid profile", "&claims_locales=se").await;
    let (status, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["preferred_username"], UPN);
    rp.t.stop().await;
}

/// OP-Req-acr_values: values that name no authentication context Portcullis knows are a
/// voluntary request, ignored (Core §5.5.1.1); the request succeeds.
#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let mut rp = Rp::new().await;
    let tokens = rp.code_flow("openid", "&acr_values=1%202").await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// OP-OAuth-2nd: a code redeemed twice is refused the second time with `invalid_grant`.
#[tokio::test]
async fn oidcc_codereuse() {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", "");
    let (callback, _) = rp.authorize(&url).await;
    let code = callback.code();
    assert_eq!(rp.redeem(&code).await.0, StatusCode::OK);
    let (status, body) = rp.redeem(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    rp.t.stop().await;
}

/// OP-OAuth-2nd-30s and OP-OAuth-2nd-Revokes: reused 30 seconds later, the code is refused and
/// the access token it issued stops working (RFC 6749 §4.1.2).
#[tokio::test]
async fn oidcc_codereuse_30seconds() {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", "");
    let (callback, _) = rp.authorize(&url).await;
    let code = callback.code();
    let (status, tokens) = rp.redeem(&code).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(rp.userinfo_get(access).await.0, StatusCode::OK);
    rp.t.clock.advance(Duration::seconds(30));
    let (status, body) = rp.redeem(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(rp.userinfo_get(access).await.0, StatusCode::UNAUTHORIZED);
    rp.t.stop().await;
}

/// OP-redirect_uri-NotReg: a redirect URI that is not registered gets an error page; nothing
/// is sent to it.
#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let mut rp = Rp::new().await;
    let url = rp.authorize_url("openid", "").replace(
        &urlencode(REDIRECT),
        &urlencode("https://app.contoso.com/not-registered"),
    );
    let r = rp.browser.get(&url).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.location.is_none());
    rp.t.stop().await;
}

/// The authorization request sent by POST (Core §3.1.2.1 requires the endpoint to take both).
#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let mut rp = Rp::new().await;
    let form = [
        ("client_id", rp.app.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", STATE),
        ("nonce", NONCE),
    ];
    let started = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/oauth2/v2.0/authorize", rp.t.url))
        .header("user-agent", WINDOWS)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let location = started.headers()["location"].to_str().unwrap().to_string();
    let back = Callback {
        url: rp.finish_sign_in(&location).await,
    };
    assert_eq!(back.param("state").as_deref(), Some(STATE));
    let tokens = rp.tokens(&back).await;
    rp.check_id_token(&tokens, Some(NONCE)).await;
    rp.t.stop().await;
}

/// An unsigned request object (`alg: none`) by value.
fn unsigned_request_object(rp: &Rp, redirect_uri: &str) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        part(json!({"alg": "none"})),
        part(json!({
            "client_id": rp.app.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "openid",
            "state": STATE,
            "nonce": NONCE,
        }))
    )
}

/// OP-request_uri-Unsigned: request objects by reference are not supported: discovery says
/// so, and a request naming one is refused with `request_uri_not_supported` and the state.
#[tokio::test]
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported() {
    let mut rp = Rp::new().await;
    assert_eq!(
        rp.discovery().await["request_uri_parameter_supported"],
        false
    );
    let url = rp.authorize_url(
        "openid",
        &format!(
            "&request_uri={}",
            urlencode("https://app.contoso.com/r.jwt")
        ),
    );
    let back = Callback {
        url: rp.browser.get(&url).await.location.unwrap(),
    };
    assert!(back.url.starts_with(REDIRECT));
    assert_eq!(
        back.param("error").as_deref(),
        Some("request_uri_not_supported")
    );
    assert_eq!(back.param("state").as_deref(), Some(STATE));
    rp.t.stop().await;
}

/// OP-request-Unsigned: request objects are not supported: discovery says so, and a request
/// carrying one is refused with `request_not_supported` and the state, never half-processed.
#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let mut rp = Rp::new().await;
    assert_eq!(rp.discovery().await["request_parameter_supported"], false);
    let object = unsigned_request_object(&rp, REDIRECT);
    let url = rp.authorize_url("openid", &format!("&request={object}"));
    let back = Callback {
        url: rp.browser.get(&url).await.location.unwrap(),
    };
    assert!(back.url.starts_with(REDIRECT));
    assert_eq!(
        back.param("error").as_deref(),
        Some("request_not_supported")
    );
    assert_eq!(back.param("state").as_deref(), Some(STATE));
    assert_eq!(back.param("code"), None);
    rp.t.stop().await;
}

/// OP-claims-essential: the `claims` parameter is not supported (discovery says
/// `claims_parameter_supported: false`), so it is ignored: the request succeeds, and userinfo
/// answers with what the scopes grant.
#[tokio::test]
async fn oidcc_claims_essential() {
    let mut rp = Rp::new().await;
    assert_eq!(rp.discovery().await["claims_parameter_supported"], false);
    let claims_request = json!({"userinfo": {"name": {"essential": true}}}).to_string();
    let tokens = rp
        .code_flow("openid", &format!("&claims={}", urlencode(&claims_request)))
        .await;
    let (status, info) = rp
        .userinfo_get(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], rp.person.as_str());
    rp.t.stop().await;
}

/// The request object names the registered redirect URI and the query an unregistered one.
/// An OP that processes request objects must use the object's; Portcullis refuses request
/// objects, and judges the query's redirect URI first: an error page, and nothing is ever sent
/// to the unregistered address.
#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    let mut rp = Rp::new().await;
    let object = unsigned_request_object(&rp, REDIRECT);
    let url = rp
        .authorize_url("openid", &format!("&request={object}"))
        .replace(
            &urlencode(REDIRECT),
            &urlencode("https://app.contoso.com/not-registered"),
        );
    let r = rp.browser.get(&url).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.location.is_none());
    rp.t.stop().await;
}

/// The refresh token grant: new tokens for the same person and authentication (Core §12.2:
/// same iss, sub, aud; auth_time kept), a used refresh token refused, and another client
/// refused the refresh token.
#[tokio::test]
async fn oidcc_refresh_token() {
    let mut rp = Rp::new().await;
    let first = rp.code_flow("openid offline_access", "").await;
    let first_claims = rp.check_id_token(&first, Some(NONCE)).await;
    let refresh = first["refresh_token"].as_str().expect("a refresh token");
    rp.t.clock.advance(Duration::seconds(5));
    let (status, second) = rp
        .token_basic(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(status, StatusCode::OK, "{second:?}");
    // The nonce belongs to the authentication: a refreshed ID token does not carry it.
    let second_claims = rp.check_id_token(&second, None).await;
    for same in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(second_claims[same], first_claims[same], "{same}");
    }
    assert!(second_claims["iat"].as_i64() > first_claims["iat"].as_i64());
    assert_eq!(
        rp.userinfo_get(second["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );

    let other = confidential_app(&rp.t).await;
    let next = second["refresh_token"].as_str().unwrap();
    let (status, body) = crate::oidc::token(
        &rp.t,
        &other,
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = rp
        .token_basic(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a used refresh token");
    assert_eq!(body["error"], "invalid_grant");
    rp.t.stop().await;
}

/// PKCE with S256: the code flow succeeds with the right verifier, and the code is refused
/// with a wrong one.
#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let mut rp = Rp::new().await;
    let p = pkce("certification");
    let extra = format!("&code_challenge={}&code_challenge_method=S256", p.challenge);
    let url = rp.authorize_url("openid", &extra);
    let (callback, _) = rp.authorize(&url).await;
    let code = callback.code();
    let (status, tokens) = rp
        .token_basic(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", p.verifier.as_str()),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    rp.check_id_token(&tokens, Some(NONCE)).await;

    let (callback, _) = rp.authorize(&url).await;
    let wrong = pkce("another");
    let (status, body) = rp
        .token_basic(&[
            ("grant_type", "authorization_code"),
            ("code", callback.code().as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", wrong.verifier.as_str()),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    rp.t.stop().await;
}

/// From the Dynamic OP plan: a request without `redirect_uri` is refused on an error page (a
/// client may register several; OpenID Connect requires it), never redirected anywhere.
#[tokio::test]
async fn oidcc_ensure_redirect_uri_in_authorization_request() {
    let mut rp = Rp::new().await;
    let url = rp
        .authorize_url("openid", "")
        .replace(&format!("&redirect_uri={}", urlencode(REDIRECT)), "");
    let r = rp.browser.get(&url).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.location.is_none());
    rp.t.stop().await;
}

// ---- Config OP ------------------------------------------------------------------------------

/// OP-Discovery-Config and what the module checks with it: the document is at the issuer's
/// well-known address, names the issuer exactly, its endpoints live under the issuer, the key
/// set is reachable and valid (every key with a unique kid, `use: sig`, its algorithm, public
/// members only), and the advertised values include what the Basic profile needs.
#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let rp = Rp::new().await;
    let d = rp.discovery().await;
    let issuer = d["issuer"].as_str().unwrap();
    assert_eq!(
        issuer, rp.t.url,
        "the issuer is the address discovery was fetched under"
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
    ] {
        let url = d[endpoint].as_str().unwrap_or_else(|| panic!("{endpoint}"));
        assert!(url.starts_with(issuer), "{endpoint}: {url}");
    }
    let has = |member: &str, value: &str| {
        d[member]
            .as_array()
            .unwrap_or_else(|| panic!("{member} is a list"))
            .iter()
            .any(|v| v == value)
    };
    assert!(has("response_types_supported", "code"));
    assert!(has("subject_types_supported", "public"));
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(!has("id_token_signing_alg_values_supported", "none"));
    assert!(has("scopes_supported", "openid"));
    assert!(has(
        "token_endpoint_auth_methods_supported",
        "client_secret_basic"
    ));
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(d["claims_parameter_supported"].is_boolean());
    assert!(
        d["claims_supported"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    // Every claim an ID token can carry is listed, the ones an application asks for too.
    for claim in [
        "sub",
        "name",
        "preferred_username",
        "email",
        "roles",
        "groups",
    ] {
        assert!(has("claims_supported", claim), "{claim}");
    }

    let r =
        rp.t.http
            .get(d["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let keys: Value = r.json().await.unwrap();
    let keys = keys["keys"].as_array().unwrap();
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), keys.len(), "kids are unique");
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(has(
            "id_token_signing_alg_values_supported",
            key["alg"].as_str().unwrap()
        ));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{key}");
        }
    }
    rp.t.stop().await;
}
