//! RS256 beside ES256: a signing key per algorithm, both published, the application's
//! `idTokenSignedResponseAlg` choosing how its tokens are signed, both keys rotated on the same
//! schedule, the RS256 key made at the first start after an upgrade, and tokens whose header
//! names another algorithm than their key refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::directory::model::SigningAlgorithm;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};
use time::Duration;

use crate::conformance::signed_in_tokens;
use crate::oidc::{App, REDIRECT, token};

/// A confidential web application registered with `alg` (or the default when `None`), with a
/// secret.
pub(crate) async fn app_signed_with(t: &TestServer, alg: Option<&str>) -> App {
    let mut body = json!({"displayName": "Contoso Gateway", "web": {"redirectUris": [REDIRECT]}});
    if let Some(alg) = alg {
        body["idTokenSignedResponseAlg"] = alg.into();
    }
    let r = t.post("/applications", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.body["idTokenSignedResponseAlg"],
        alg.unwrap_or("ES256"),
        "{:?}",
        r.body
    );
    let secret = t
        .post(
            &format!(
                "/applications/{}/addPassword",
                r.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    App {
        client_id: r.body["appId"].as_str().unwrap().to_string(),
        secret: Some(secret.body["secretText"].as_str().unwrap().to_string()),
    }
}

pub(crate) fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub(crate) async fn key_set(t: &TestServer, base: &str) -> Vec<Value> {
    let r = t
        .http
        .get(format!("{base}/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["keys"].as_array().unwrap().clone()
}

fn kids_of(keys: &[Value], alg: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies an RS256 JWS with `ring` from the JWK's `n` and `e` alone: no JWT library, so
/// nothing of the server's own code is trusted.
pub(crate) fn rs256_verifies(jwt: &str, jwk: &Value) -> bool {
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let component = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    ring::signature::RsaPublicKeyComponents {
        n: component("n"),
        e: component("e"),
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &signature,
    )
    .is_ok()
}

async fn userinfo_status(t: &TestServer, access_token: &str) -> StatusCode {
    t.http
        .get(format!("{}/oidc/userinfo", t.url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn refreshed(t: &TestServer, app: &App, refresh_token: &str) -> Value {
    let (status, tokens) = token(
        t,
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens:?}");
    tokens
}

#[tokio::test]
async fn an_application_registered_for_rs256_gets_rs256_tokens_that_verify_with_the_key_set() {
    use openidconnect::core::{CoreClient, CoreIdToken, CoreProviderMetadata};
    use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};

    let t = TestServer::start().await;
    let app = app_signed_with(&t, Some("RS256")).await;
    let tokens = signed_in_tokens(&t, &app).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    let keys = key_set(&t, &t.url).await;
    for jwt in [id_token, access_token] {
        let h = header(jwt);
        assert_eq!(h["alg"], "RS256", "{h}");
        let jwk = keys
            .iter()
            .find(|k| k["kid"] == h["kid"])
            .expect("the key that signed it is published");
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        let modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(modulus.len() * 8, 2048, "a 2048-bit key");
        assert!(rs256_verifies(jwt, jwk), "ring verifies it from n and e");
        // One bit changed in the claims, and it no longer verifies.
        let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
        let mut claims = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        claims[5] ^= 1;
        parts[1] = URL_SAFE_NO_PAD.encode(claims);
        assert!(!rs256_verifies(&parts.join("."), jwk));
    }

    // A stock OpenID Connect library verifies the ID token from discovery and the key set.
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(t.url.clone()).unwrap(),
        &crate::oidc::oidc_http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(app.client_id.clone()),
        Some(ClientSecret::new(app.secret.clone().unwrap())),
    );
    let parsed: CoreIdToken = id_token.parse().expect("an ID token");
    let verified = parsed
        .claims(
            &client.id_token_verifier(),
            &Nonce::new("n-0S6_WzA2Mj".into()),
        )
        .expect("the RS256 ID token verifies: signature, issuer, audience, nonce, expiry");
    assert_eq!(verified.audiences()[0].as_str(), app.client_id);

    // The access token is the server's own to check: userinfo takes it.
    assert_eq!(userinfo_status(&t, access_token).await, StatusCode::OK);
    // A refresh signs the same way.
    let again = refreshed(&t, &app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(header(again["id_token"].as_str().unwrap())["alg"], "RS256");
    assert_eq!(
        header(again["access_token"].as_str().unwrap())["alg"],
        "RS256"
    );
    // Client credentials too.
    let app_token = t
        .client_token(&app.client_id, app.secret.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(header(&app_token)["alg"], "RS256");
    t.stop().await;
}

#[tokio::test]
async fn discovery_and_the_key_set_offer_both_and_a_default_application_stays_on_es256() {
    let t = TestServer::start().await;
    let discovery = t
        .http
        .get(format!("{}/.well-known/openid-configuration", t.url))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"]),
        "RS256 is OpenID Connect's mandatory-to-implement algorithm; none is never offered"
    );

    let keys = key_set(&t, &t.url).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA")] {
        let key = keys.iter().find(|k| k["alg"] == alg).expect(alg);
        assert_eq!(key["kty"], kty);
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        // Only public members: no private exponent, primes or scalar ever leave the server.
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "{alg} publishes {private}");
        }
    }
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);

    let app = app_signed_with(&t, None).await;
    let tokens = signed_in_tokens(&t, &app).await;
    for jwt in ["id_token", "access_token"] {
        let h = header(tokens[jwt].as_str().unwrap());
        assert_eq!(h["alg"], "ES256", "{h}");
        assert_eq!(kids_of(&keys, "ES256"), vec![h["kid"].as_str().unwrap()]);
    }
    t.stop().await;
}

async fn app_count(t: &TestServer) -> usize {
    t.get("/applications?$top=999").await.body["value"]
        .as_array()
        .unwrap()
        .len()
}

/// Refreshes `refresh` (replacing it with the next one): the key id of the new ID token.
async fn refreshed_kid(t: &TestServer, app: &App, refresh: &mut String) -> String {
    let next = refreshed(t, app, refresh).await;
    *refresh = next["refresh_token"].as_str().unwrap().to_string();
    header(next["id_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn id_token_signed_response_alg_is_es256_or_rs256_and_anything_else_is_refused_by_name() {
    let t = TestServer::start().await;
    let before = app_count(&t).await;
    for bad in [
        json!("none"),
        json!("HS256"),
        json!("rs256"),
        json!("PS256"),
        json!(256),
    ] {
        let r = t
            .post(
                "/applications",
                json!({"displayName": "Bad", "idTokenSignedResponseAlg": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert_eq!(
            r.error_target(),
            Some("idTokenSignedResponseAlg"),
            "{:?}",
            r.body
        );
    }
    assert_eq!(app_count(&t).await, before, "nothing was created");

    let created = t
        .post("/applications", json!({"displayName": "Contoso Gateway"}))
        .await;
    let path = format!("/applications/{}", created.body["id"].as_str().unwrap());
    let r = t
        .patch(&path, json!({"idTokenSignedResponseAlg": "none"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_target(), Some("idTokenSignedResponseAlg"));
    assert_eq!(t.get(&path).await.body["idTokenSignedResponseAlg"], "ES256");

    // Only a caller who may change applications may change it.
    let limited = app_signed_with(&t, None).await;
    let limited_token = t
        .client_token(&limited.client_id, limited.secret.as_deref().unwrap())
        .await
        .unwrap();
    let refused = t
        .graph_as(
            &limited_token,
            reqwest::Method::PATCH,
            &path,
            Some(json!({"idTokenSignedResponseAlg": "RS256"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(t.get(&path).await.body["idTokenSignedResponseAlg"], "ES256");

    let r = t
        .patch(&path, json!({"idTokenSignedResponseAlg": "RS256"}))
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    assert_eq!(t.get(&path).await.body["idTokenSignedResponseAlg"], "RS256");
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Update application'")
        .await;
    let changed: Vec<&Value> = audits.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["targetResources"][0]["modifiedProperties"]
                .as_array()
                .unwrap()
        })
        .filter(|p| p["displayName"] == "idTokenSignedResponseAlg")
        .collect();
    assert_eq!(changed.len(), 1, "{audits:?}");
    assert_eq!(changed[0]["oldValue"], "\"ES256\"");
    assert_eq!(changed[0]["newValue"], "\"RS256\"");
    t.stop().await;
}

#[tokio::test]
async fn a_rotation_rotates_the_key_of_each_algorithm_on_the_same_schedule() {
    // `rotate_signing_keys` runs on the system clock, as an operator's command does; the test
    // clock starts at the same time, so the rotations come before it is moved on.
    let t = TestServer::start().await;
    let rs = app_signed_with(&t, Some("RS256")).await;
    let tokens = signed_in_tokens(&t, &rs).await;
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let es_kid = |token: String| header(&token)["kid"].as_str().unwrap().to_string();
    let first = key_set(&t, &t.url).await;

    // An immediate rotation: both algorithms sign with their new keys at once, and the keys
    // they replace stay published for the tokens they signed.
    let immediate = portcullis::server::rotate_signing_keys(&t.config, true)
        .await
        .unwrap();
    assert_eq!(immediate.kids.len(), 2);
    let (now_rs, now_es) = (
        immediate.kids[&SigningAlgorithm::Rs256].clone(),
        immediate.kids[&SigningAlgorithm::Es256].clone(),
    );
    t.reload_keys().await;
    assert_eq!(refreshed_kid(&t, &rs, &mut refresh).await, now_rs);
    assert_eq!(es_kid(t.admin_token().await), now_es);
    let published = key_set(&t, &t.url).await;
    assert_eq!(published.len(), 4, "{published:?}");
    for key in &first {
        assert!(published.contains(key), "{key} still published");
    }

    // A rotation with the lead: both next keys are published at once and sign only after it.
    let rotated = portcullis::server::rotate_signing_keys(&t.config, false)
        .await
        .unwrap();
    let next_rs = rotated.kids[&SigningAlgorithm::Rs256].clone();
    let next_es = rotated.kids[&SigningAlgorithm::Es256].clone();
    t.reload_keys().await;
    let during = key_set(&t, &t.url).await;
    assert!(kids_of(&during, "RS256").contains(&next_rs), "{during:?}");
    assert!(kids_of(&during, "ES256").contains(&next_es), "{during:?}");
    assert_eq!(refreshed_kid(&t, &rs, &mut refresh).await, now_rs);
    assert_eq!(es_kid(t.admin_token().await), now_es);

    t.clock.advance(Duration::hours(24) + Duration::minutes(1));
    t.reload_keys().await;
    assert_eq!(refreshed_kid(&t, &rs, &mut refresh).await, next_rs);
    assert_eq!(es_kid(t.admin_token().await), next_es);
    // The keys that stopped signing stay published until their tokens have expired; the first
    // ones have expired by now.
    let after_switch = key_set(&t, &t.url).await;
    let sorted = |mut kids: Vec<String>| {
        kids.sort();
        kids
    };
    assert_eq!(
        sorted(kids_of(&after_switch, "RS256")),
        sorted(vec![now_rs.clone(), next_rs.clone()])
    );
    assert_eq!(
        sorted(kids_of(&after_switch, "ES256")),
        sorted(vec![now_es.clone(), next_es.clone()])
    );
    t.clock.advance(Duration::hours(2));
    t.reload_keys().await;
    let after = key_set(&t, &t.url).await;
    assert_eq!(kids_of(&after, "RS256"), vec![next_rs]);
    assert_eq!(kids_of(&after, "ES256"), vec![next_es]);
    t.stop().await;
}

#[tokio::test]
async fn a_data_folder_from_before_rs256_gets_its_key_at_the_next_start_and_every_node_signs_with_one()
 {
    let t = TestServer::start().await;
    let before = key_set(&t, &t.url).await;
    let es = kids_of(&before, "ES256");
    let removed = t
        .store()
        .delete_signing_keys_of(SigningAlgorithm::Rs256)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let app = app_signed_with(&t, Some("RS256")).await;

    // Two nodes start on the upgraded data at once: each may make the missing key.
    let (_, second) = tokio::join!(t.reload_keys(), t.second_node());
    let (second, second_url) = second.unwrap();
    t.reload_keys().await;
    second.tokens.load_keys().await.unwrap();

    let keys = key_set(&t, &t.url).await;
    assert_eq!(
        kids_of(&keys, "ES256"),
        es,
        "the ES256 key is kept as it was"
    );
    assert!(!kids_of(&keys, "RS256").is_empty());
    assert_eq!(
        key_set(&t, &second_url).await,
        keys,
        "both nodes publish the same keys"
    );
    // Both nodes sign the application's tokens with the same RS256 key.
    let mut kids = Vec::new();
    for base in [&t.url, &second_url] {
        let r = t
            .http
            .post(format!("{base}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", app.client_id.as_str()),
                ("client_secret", app.secret.as_deref().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        let h = header(body["access_token"].as_str().unwrap());
        assert_eq!(h["alg"], "RS256");
        kids.push(h["kid"].as_str().unwrap().to_string());
    }
    assert_eq!(kids[0], kids[1]);
    assert!(kids_of(&keys, "RS256").contains(&kids[0]));
    second.shutdown().await.unwrap();
    t.stop().await;
}

fn with_header(jwt: &str, header: Value) -> String {
    let (_, rest) = jwt.split_once('.').unwrap();
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[tokio::test]
async fn a_token_whose_header_names_another_algorithm_or_key_than_it_was_signed_with_is_refused() {
    let t = TestServer::start().await;
    let rs = app_signed_with(&t, Some("RS256")).await;
    let tokens = signed_in_tokens(&t, &rs).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&t, access).await, StatusCode::OK);
    let keys = key_set(&t, &t.url).await;
    let rs_kid = header(access)["kid"].clone();
    let es_kid = kids_of(&keys, "ES256")[0].clone();
    let rsa_jwk = keys.iter().find(|k| k["kid"] == rs_kid).unwrap();

    // `none`, with the signature dropped.
    let unsigned = with_header(
        access,
        json!({"alg": "none", "kid": rs_kid, "typ": "at+jwt"}),
    );
    let (unsigned, _) = unsigned.rsplit_once('.').unwrap();
    // HS256 keyed with the published RSA key (the classic confusion attack).
    let hs_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": rs_kid, "typ": "at+jwt"}).to_string());
    let payload = access.split('.').nth(1).unwrap();
    let signing_input = format!("{hs_header}.{payload}");
    let mac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, rsa_jwk.to_string().as_bytes());
    let mac = ring::hmac::sign(&mac_key, signing_input.as_bytes());
    let hs256 = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    // The RSA signature under a header that claims ES256, and under the ES256 key's id.
    let claims_es = with_header(
        access,
        json!({"alg": "ES256", "kid": rs_kid, "typ": "at+jwt"}),
    );
    let other_kid = with_header(
        access,
        json!({"alg": "RS256", "kid": es_kid, "typ": "at+jwt"}),
    );
    for forged in [format!("{unsigned}."), hs256, claims_es, other_kid] {
        assert_eq!(
            userinfo_status(&t, &forged).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            header(&forged)
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn the_application_page_and_the_cli_choose_how_id_tokens_are_signed() {
    use crate::portal::{REPORTS_READER, admin, element, person, redirected_to};

    let t = TestServer::start().await;
    let created = t
        .post(
            "/applications",
            json!({"displayName": "Contoso Portal", "web": {"redirectUris": [REDIRECT]}}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let page_path = format!("/admin/applications/{id}");
    let api_path = format!("/applications/{id}");
    let browser = admin(&t).await;
    let page = browser.get(&page_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(element(&page.html, "id-token-alg"), "ES256");

    let form = |alg: &'static str| {
        [
            ("displayName", "Contoso Portal"),
            ("web.redirectUris", REDIRECT),
            ("idTokenSignedResponseAlg", alg),
        ]
    };
    redirected_to(&browser.post(&page_path, &form("RS256")).await, &page_path);
    assert_eq!(
        t.get(&api_path).await.body["idTokenSignedResponseAlg"],
        "RS256"
    );
    assert_eq!(
        element(&browser.get(&page_path).await.html, "id-token-alg"),
        "RS256"
    );

    // A value that is no algorithm is answered beside the field and changes nothing.
    let bad = browser.post(&page_path, &form("none")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(element(&bad.html, "idTokenSignedResponseAlg-error").contains("ES256 or RS256"));
    assert_eq!(
        t.get(&api_path).await.body["idTokenSignedResponseAlg"],
        "RS256"
    );

    // Someone who may only read reports cannot change it.
    let (_, reader) = person(&t, "reports@contoso.com", &[REPORTS_READER]).await;
    let refused = reader.post(&page_path, &form("ES256")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.get(&api_path).await.body["idTokenSignedResponseAlg"],
        "RS256"
    );

    // The CLI registers an application for RS256 and shows the choice.
    let cli = crate::cli::Admin::new(&t);
    let made = cli
        .json(&[
            "apps",
            "create",
            "--name",
            "Contoso Gateway",
            "--redirect-uri",
            REDIRECT,
            "--id-token-alg",
            "RS256",
        ])
        .await;
    assert_eq!(made["idTokenSignedResponseAlg"], "RS256");
    let shown = cli.ok(&["apps", "show", "Contoso Gateway"]).await;
    assert!(
        shown
            .lines()
            .any(|l| l.contains("ID token alg") && l.contains("RS256")),
        "{shown}"
    );
    let default = cli
        .json(&["apps", "create", "--name", "Contoso Default"])
        .await;
    assert_eq!(default["idTokenSignedResponseAlg"], "ES256");
    t.stop().await;
}
