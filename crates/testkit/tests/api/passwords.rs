//! Passwords (optional per tenant) and authenticator apps (TOTP) as the non-passkey path to
//! the Multifactor strength.

use portcullis_core::kernel::clock::Clock;
use portcullis_core::methods::totp::{code_at, step_of};
use portcullis_testkit::fixtures::{create_user, pass_session};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};
use time::Duration;

const CONFIG: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password";

fn reset_path(user: &str) -> String {
    format!(
        "/users/{user}/authentication/passwordMethods/28c10230-6103-485e-b985-444c60001490/resetPassword"
    )
}

async fn post_with(t: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = t
        .http
        .post(format!("{}{path}", t.url))
        .header("cookie", format!("portcullis_session={token}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn password_sign_in(
    t: &TestServer,
    upn: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    let r = t
        .http
        .post(format!("{}/auth/password", t.url))
        .json(&json!({"username": upn, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let token = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("portcullis_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), token)
}

#[tokio::test]
async fn passwords_are_off_until_the_tenant_turns_them_on() {
    let t = TestServer::start().await;
    let joni = create_user(&t, "joni@contoso.com", "Joni").await;
    assert_eq!(t.get(CONFIG).await.body["state"], "disabled");
    let refused = t
        .post(
            &reset_path(&joni),
            json!({"newPassword": "correct horse battery"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let (status, body, _) = password_sign_in(&t, "joni@contoso.com", "correct horse battery").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("passkey")
    );

    assert_eq!(
        t.patch(CONFIG, json!({"state": "enabled"})).await.status,
        StatusCode::NO_CONTENT
    );
    let policy = t.get("/policies/authenticationMethodsPolicy").await;
    let ids: Vec<&str> = policy.body["authenticationMethodConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"Password") && ids.contains(&"TemporaryAccessPass") && ids.contains(&"Fido2"),
        "{ids:?}"
    );
    for (password, why) in [("short", "at least"), ("joni-secret-1", "user name")] {
        let r = t
            .post(&reset_path(&joni), json!({"newPassword": password}))
            .await;
        assert_eq!(
            (r.status, r.error_target()),
            (StatusCode::BAD_REQUEST, Some("newPassword"))
        );
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(why),
            "{:?}",
            r.body
        );
    }
    assert_eq!(
        t.post(
            &reset_path(&joni),
            json!({"newPassword": "correct horse battery"})
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let (status, body, token) =
        password_sign_in(&t, "joni@contoso.com", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["methods"][0]["method"], "password");
    let token = token.unwrap();

    // Changing it needs the current one.
    let (status, body) = post_with(
        &t,
        &token,
        "/my/password",
        json!({"currentPassword": "wrong one!", "newPassword": "another long phrase"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "currentPassword");
    let (status, _) = post_with(
        &t,
        &token,
        "/my/password",
        json!({"currentPassword": "correct horse battery", "newPassword": "another long phrase"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        password_sign_in(&t, "joni@contoso.com", "correct horse battery")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        password_sign_in(&t, "joni@contoso.com", "another long phrase")
            .await
            .0,
        StatusCode::OK
    );

    // Wrong guesses lock the account's password sign-in.
    for _ in 0..9 {
        assert_eq!(
            password_sign_in(&t, "joni@contoso.com", "guess guess")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body, _) = password_sign_in(&t, "joni@contoso.com", "guess guess").await;
    assert_eq!(
        (status, body["error"]["errorCode"].as_u64()),
        (StatusCode::TOO_MANY_REQUESTS, Some(50053))
    );
    assert_eq!(
        password_sign_in(&t, "joni@contoso.com", "another long phrase")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let audits = t
        .get("/auditLogs/directoryAudits?$filter=category eq 'UserManagement'")
        .await;
    let names: Vec<&str> = audits.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activityDisplayName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Reset user password") && names.contains(&"Change user password"),
        "{names:?}"
    );
    assert!(
        !audits.body.to_string().contains("another long phrase"),
        "no password in the audit log"
    );
    t.stop().await;
}

/// `GET /my/totp` as the person whose session `token` is.
async fn my_apps(t: &TestServer, token: &str) -> Value {
    let r = t
        .http
        .get(format!("{}/my/totp", t.url))
        .header("cookie", format!("portcullis_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_authenticator_app_is_registered_with_a_pass_and_its_codes_count_once() {
    let t = TestServer::start().await;
    let joni = create_user(&t, "joni@contoso.com", "Joni").await;
    t.patch(CONFIG, json!({"state": "enabled"})).await;
    t.post(
        &reset_path(&joni),
        json!({"newPassword": "correct horse battery"}),
    )
    .await;
    // A password session alone may not add a method.
    let (_, _, password_session) =
        password_sign_in(&t, "joni@contoso.com", "correct horse battery").await;
    let (status, body) = post_with(
        &t,
        password_session.as_deref().unwrap(),
        "/my/totp/options",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A pass session may.
    let tap_session =
        pass_session(&t, &joni, "joni@contoso.com", json!({"isUsableOnce": true})).await;
    let (status, options) = post_with(&t, &tap_session, "/my/totp/options", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert!(
        options["qrCodeSvg"].as_str().unwrap().contains("<svg"),
        "a QR code to scan"
    );
    assert!(
        options["otpauthUri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let secret = data_encoding::BASE32_NOPAD
        .decode(options["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let code = |offset: i64| code_at(&secret, step_of(t.clock.now()) + offset);
    // A wrong code does not register; a tampered registration is refused.
    let (status, body) = post_with(
        &t,
        &tap_session,
        "/my/totp",
        json!({"registration": options["registration"], "code": "000000x"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["target"].as_str()),
        (StatusCode::BAD_REQUEST, Some("code"))
    );
    let (status, body) = post_with(
        &t,
        &tap_session,
        "/my/totp",
        json!({"registration": "AAAA", "code": code(0)}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["target"].as_str()),
        (StatusCode::BAD_REQUEST, Some("registration"))
    );
    let (status, created) = post_with(
        &t,
        &tap_session,
        "/my/totp",
        json!({"registration": options["registration"], "code": code(0), "displayName": "Phone"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["displayName"], "Phone");
    // The same setup sent again adds nothing (found by an attacker's script: eight finishes
    // of one setup made ten apps, past the limit of five), with the current or the next code.
    for offset in [0, 1] {
        let (status, body) = post_with(
            &t,
            &tap_session,
            "/my/totp",
            json!({"registration": options["registration"], "code": code(offset), "displayName": "Again"}),
        )
        .await;
        assert_eq!(
            (status, body["error"]["target"].as_str()),
            (StatusCode::BAD_REQUEST, Some("registration")),
            "{body}"
        );
    }
    // Five apps at most, checked when each is saved: five setups started at once, then all
    // finished, leave five.
    let mut setups = Vec::new();
    for _ in 0..5 {
        let (status, options) = post_with(&t, &tap_session, "/my/totp/options", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{options}");
        setups.push(options);
    }
    let mut added = 0;
    for options in &setups {
        let secret = data_encoding::BASE32_NOPAD
            .decode(options["secret"].as_str().unwrap().as_bytes())
            .unwrap();
        let (status, body) = post_with(
            &t,
            &tap_session,
            "/my/totp",
            json!({"registration": options["registration"], "code": code_at(&secret, step_of(t.clock.now()))}),
        )
        .await;
        if status == StatusCode::CREATED {
            added += 1;
        } else {
            assert_eq!(body["error"]["target"], "softwareOathMethods", "{body}");
        }
    }
    assert_eq!(added, 4, "one app was there already");
    let listed = my_apps(&t, &tap_session).await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 5);
    // Back to the one app the rest of this test signs in with.
    for app in listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["displayName"] != "Phone")
    {
        let removed = t
            .http
            .delete(format!("{}/my/totp/{}", t.url, app["id"].as_str().unwrap()))
            .header("cookie", format!("portcullis_session={tap_session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    }

    // Password, then the app's code: the session holds both.
    t.clock.advance(Duration::seconds(30));
    let (_, _, session) = password_sign_in(&t, "joni@contoso.com", "correct horse battery").await;
    let session = session.unwrap();
    let current = code(0);
    let (status, body) = post_with(&t, &session, "/auth/totp", json!({"code": current})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let methods: Vec<&str> = body["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, vec!["password", "softwareOath"]);
    // The same code again is refused: a code is good once.
    let (status, body) = post_with(&t, &session, "/auth/totp", json!({"code": current})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let (status, _) = post_with(&t, &session, "/auth/totp", json!({"code": "123"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Listed, then removed.
    let listed = my_apps(&t, &session).await;
    let id = listed["value"][0]["id"].as_str().unwrap().to_string();
    let removed = t
        .http
        .delete(format!("{}/my/totp/{id}", t.url))
        .header("cookie", format!("portcullis_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let audits = t.get("/auditLogs/directoryAudits?$filter=activityDisplayName eq 'User registered security info'").await;
    assert!(!audits.body["value"].as_array().unwrap().is_empty());
    assert!(
        !audits
            .body
            .to_string()
            .contains(options["secret"].as_str().unwrap()),
        "no secret in the audit log"
    );
    t.stop().await;
}
