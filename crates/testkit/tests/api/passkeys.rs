//! Passkeys end to end, driven by the software authenticator: registration on this device and
//! on another, sign-in with and without a username, rename, delete, the per-person limit, the
//! method policy's restrictions and attestation, and every attack the browser would stop before
//! the server saw it.
//!
//! Registration needs a recent strong sign-in or a Temporary Access Pass session: each person
//! here gets a pass from the admin API and signs in with it, as a new person would.

use portcullis_testkit::authenticator::{
    Attestation, SoftwareAuthenticator, TEST_AAGUID, TestAttestationCa, Tweaks,
};
use portcullis_testkit::fixtures::{
    self, FIDO2_CONFIGURATION as FIDO2, pass_session, session_token, user,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

struct Person {
    id: String,
    upn: String,
    token: String,
}

async fn person(t: &TestServer, upn: &str) -> Person {
    let id = user(t, upn).await;
    let token = tap_session(t, &id, upn, false).await;
    Person {
        id,
        upn: upn.to_string(),
        token,
    }
}

/// Issues `upn` a Temporary Access Pass through the admin API, signs in with it, and returns
/// the session cookie's token.
async fn tap_session(t: &TestServer, id: &str, upn: &str, one_time: bool) -> String {
    pass_session(t, id, upn, json!({"isUsableOnce": one_time})).await
}

/// A self-service request (JSON, with the session cookie when given).
async fn call(
    t: &TestServer,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    fixtures::call(t, None, token, method, path, body).await
}

async fn post(t: &TestServer, token: Option<&str>, path: &str, body: Value) -> Reply {
    call(t, token, reqwest::Method::POST, path, Some(body)).await
}

fn code(reply: &Reply) -> &str {
    reply.error_code().unwrap_or("<no error>")
}

async fn registration_options(t: &TestServer, token: &str, device: &str) -> Reply {
    let r = post(
        t,
        Some(token),
        "/my/passkeys/options",
        json!({"device": device}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r
}

async fn finish_registration(
    t: &TestServer,
    token: &str,
    options: &Reply,
    name: &str,
    credential: Value,
) -> Reply {
    post(
        t,
        Some(token),
        "/my/passkeys",
        json!({"ceremonyId": options.body["ceremonyId"], "name": name, "credential": credential}),
    )
    .await
}

/// Registers a passkey on `auth` for `p`; the finishing reply.
async fn register(
    t: &TestServer,
    p: &Person,
    auth: &mut SoftwareAuthenticator,
    device: &str,
    name: &str,
) -> Reply {
    let options = registration_options(t, &p.token, device).await;
    let credential = auth.create(&options.body["options"]);
    finish_registration(t, &p.token, &options, name, credential).await
}

async fn sign_in_options(t: &TestServer, body: Value) -> Reply {
    let r = post(t, None, "/auth/passkey/options", body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r
}

async fn verify(t: &TestServer, options: &Reply, credential: Value) -> Reply {
    post(
        t,
        None,
        "/auth/passkey/verify",
        json!({"ceremonyId": options.body["ceremonyId"], "credential": credential}),
    )
    .await
}

async fn sign_in(
    t: &TestServer,
    auth: &mut SoftwareAuthenticator,
    username: Option<&str>,
) -> Reply {
    let body = match username {
        Some(u) => json!({"username": u}),
        None => json!({}),
    };
    let options = sign_in_options(t, body).await;
    let credential = auth.get(&options.body["options"]);
    verify(t, &options, credential).await
}

async fn graph_passkeys(t: &TestServer, p: &Person) -> Vec<Value> {
    let r = t
        .get(&format!("/users/{}/authentication/fido2Methods", p.id))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"].as_array().unwrap().clone()
}

async fn audits(t: &TestServer, activity: &str) -> Vec<Value> {
    let r = t.get("/auditLogs/directoryAudits?$top=999").await;
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["activityDisplayName"] == activity)
        .cloned()
        .collect()
}

fn authenticator(t: &TestServer) -> SoftwareAuthenticator {
    SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None)
}

#[tokio::test]
async fn passkeys_register_on_this_and_another_device_and_sign_in_both_ways() {
    let t = TestServer::start().await;
    let joni = person(&t, "joni@contoso.com").await;

    // This device: a platform authenticator, discoverable, verified, attestation asked for.
    let options = registration_options(&t, &joni.token, "this").await;
    let pk = &options.body["options"]["publicKey"];
    assert_eq!(pk["attestation"], "direct");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(
        pk["authenticatorSelection"]["authenticatorAttachment"],
        "platform"
    );
    assert_eq!(pk["rp"]["id"], "localhost");
    let mut laptop = authenticator(&t);
    let credential = laptop.create(&options.body["options"]);
    let created = finish_registration(&t, &joni.token, &options, " Laptop ", credential).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["displayName"], "Laptop");
    assert_eq!(created.body["aaGuid"], TEST_AAGUID.to_string());
    assert_eq!(created.body["attestationLevel"], "notAttested");
    assert_eq!(created.body["attestationType"], "none");
    assert_eq!(created.body["passkeyType"], "deviceBound");

    // Another device: cross-platform with the hybrid hint (the browser's QR code); the first
    // passkey is excluded so the same authenticator is not registered twice.
    let options = registration_options(&t, &joni.token, "another").await;
    let pk = &options.body["options"]["publicKey"];
    assert_eq!(pk["hints"], json!(["hybrid"]));
    assert_eq!(
        pk["authenticatorSelection"]["authenticatorAttachment"],
        "cross-platform"
    );
    assert_eq!(pk["excludeCredentials"].as_array().unwrap().len(), 1);
    let mut phone = authenticator(&t);
    phone.synced = true;
    phone.counts_signatures = false;
    let credential = phone.create(&options.body["options"]);
    let created = finish_registration(&t, &joni.token, &options, "Pixel", credential).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["passkeyType"], "synced");
    assert_eq!(created.body["backupEligible"], true);

    let mine = call(
        &t,
        Some(&joni.token),
        reqwest::Method::GET,
        "/my/passkeys",
        None,
    )
    .await;
    assert_eq!(mine.body["value"].as_array().unwrap().len(), 2);
    let listed = graph_passkeys(&t, &joni).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0]["@odata.type"],
        "#microsoft.graph.fido2AuthenticationMethod"
    );
    assert!(listed[0]["lastUsedDateTime"].is_null());
    let registered = audits(&t, "User registered security info").await;
    assert_eq!(registered.len(), 2);
    assert_eq!(registered[0]["initiatedBy"]["user"]["id"], joni.id);
    assert_eq!(
        registered[0]["targetResources"][0]["userPrincipalName"],
        joni.upn
    );

    // Username first: the options list both passkeys.
    let options = sign_in_options(&t, json!({"username": "JONI@contoso.com"})).await;
    assert_eq!(
        options.body["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let assertion = laptop.get(&options.body["options"]);
    let signed_in = verify(&t, &options, assertion).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
    assert_eq!(signed_in.body["userPrincipalName"], "joni@contoso.com");
    assert_eq!(signed_in.body["passkey"]["displayName"], "Laptop");
    let session = session_token(&signed_in).expect("a session cookie");

    // Usernameless, then autofill (conditional mediation).
    let options = sign_in_options(&t, json!({})).await;
    assert!(
        options.body["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    assert!(options.body["options"]["mediation"].is_null());
    let assertion = phone.get(&options.body["options"]);
    let phone_sign_in = verify(&t, &options, assertion).await;
    assert_eq!(
        phone_sign_in.status,
        StatusCode::OK,
        "{:?}",
        phone_sign_in.body
    );
    assert_eq!(phone_sign_in.body["passkey"]["displayName"], "Pixel");
    let options = sign_in_options(&t, json!({"mediation": "conditional"})).await;
    assert_eq!(options.body["options"]["mediation"], "conditional");
    let assertion = laptop.get(&options.body["options"]);
    assert_eq!(verify(&t, &options, assertion).await.status, StatusCode::OK);

    // An unknown username gets options shaped like Joni's: no account enumeration.
    let known = sign_in_options(&t, json!({"username": "joni@contoso.com"})).await;
    let unknown = sign_in_options(&t, json!({"username": "nobody@contoso.com"})).await;
    assert_eq!(
        shape(&unknown.body),
        shape(&known.body),
        "known: {:?}\nunknown: {:?}",
        known.body,
        unknown.body
    );

    // The passkey session is a recent strong sign-in: it may add a passkey for five minutes.
    let listed = graph_passkeys(&t, &joni).await;
    assert!(listed.iter().all(|p| p["lastUsedDateTime"].is_string()));
    registration_options(&t, &session, "this").await;
    t.clock.advance(Duration::minutes(6));
    let late = post(
        &t,
        Some(&session),
        "/my/passkeys/options",
        json!({"device": "this"}),
    )
    .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "{:?}", late.body);
    t.stop().await;
}

#[tokio::test]
async fn passkeys_are_renamed_deleted_and_limited_to_ten() {
    let t = TestServer::start().await;
    let grady = person(&t, "grady@contoso.com").await;
    let mut auth = authenticator(&t);
    let mut ids = Vec::new();
    for i in 0..9 {
        let r = register(&t, &grady, &mut auth, "this", &format!("Key {i}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    // Two registrations race for the tenth place: exactly one wins.
    let first = registration_options(&t, &grady.token, "this").await;
    let second = registration_options(&t, &grady.token, "this").await;
    let c1 = auth.create(&first.body["options"]);
    let c2 = auth.create(&second.body["options"]);
    let (r1, r2) = tokio::join!(
        finish_registration(&t, &grady.token, &first, "Tenth", c1),
        finish_registration(&t, &grady.token, &second, "Eleventh", c2),
    );
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CONFLICT],
        "{:?} {:?}",
        r1.body,
        r2.body
    );
    let loser = if r1.status == StatusCode::CONFLICT {
        &r1
    } else {
        &r2
    };
    assert_eq!(code(loser), "passkeyLimitReached");
    let full = post(
        &t,
        Some(&grady.token),
        "/my/passkeys/options",
        json!({"device": "this"}),
    )
    .await;
    assert_eq!(
        (full.status, code(&full)),
        (StatusCode::CONFLICT, "passkeyLimitReached")
    );
    assert_eq!(graph_passkeys(&t, &grady).await.len(), 10);

    // Rename: by the person, and by an administrator.
    let renamed = call(
        &t,
        Some(&grady.token),
        reqwest::Method::PATCH,
        &format!("/my/passkeys/{}", ids[0]),
        Some(json!({"displayName": "YubiKey 5"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(renamed.body["displayName"], "YubiKey 5");
    let path = format!(
        "/users/{}/authentication/fido2Methods/{}",
        grady.upn, ids[1]
    );
    assert_eq!(
        t.patch(&path, json!({"displayName": "Office key"}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.get(&path).await.body["displayName"], "Office key");
    let blank = t.patch(&path, json!({"displayName": "  "})).await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert_eq!(audits(&t, "User updated security info").await.len(), 1);
    assert_eq!(audits(&t, "Admin updated security info").await.len(), 1);

    // Delete: by the person, and by an administrator; then the passkey is gone.
    let gone = call(
        &t,
        Some(&grady.token),
        reqwest::Method::DELETE,
        &format!("/my/passkeys/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{:?}", gone.body);
    assert_eq!(t.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.delete(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(graph_passkeys(&t, &grady).await.len(), 8);
    assert_eq!(audits(&t, "User deleted security info").await.len(), 1);
    let admin_deleted = audits(&t, "Admin deleted security info").await;
    assert_eq!(admin_deleted.len(), 1);
    assert!(admin_deleted[0]["initiatedBy"]["app"].is_object());

    // Someone else's passkey is not found through another person's path.
    let joni = person(&t, "joni@contoso.com").await;
    let other = format!("/users/{}/authentication/fido2Methods/{}", joni.id, ids[2]);
    assert_eq!(t.get(&other).await.status, StatusCode::NOT_FOUND);
    let theirs = call(
        &t,
        Some(&joni.token),
        reqwest::Method::DELETE,
        &format!("/my/passkeys/{}", ids[2]),
        None,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    // JSON only, and a session is needed.
    let form = t
        .http
        .post(format!("{}/my/passkeys/options", t.url))
        .header("cookie", format!("portcullis_session={}", grady.token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("device=this")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = form.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupportedContentType");
    let anonymous = post(&t, None, "/my/passkeys/options", json!({"device": "this"})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let bad_device = post(
        &t,
        Some(&grady.token),
        "/my/passkeys/options",
        json!({"device": "fridge"}),
    )
    .await;
    assert_eq!(bad_device.status, StatusCode::BAD_REQUEST);

    // A one-time pass gives ten minutes to register.
    let once = tap_session(&t, &joni.id, &joni.upn, true).await;
    t.clock.advance(Duration::minutes(11));
    let late = post(
        &t,
        Some(&once),
        "/my/passkeys/options",
        json!({"device": "this"}),
    )
    .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "{:?}", late.body);
    t.stop().await;
}

#[tokio::test]
async fn registration_attacks_are_refused_and_change_nothing() {
    let t = TestServer::start().await;
    let joni = person(&t, "joni@contoso.com").await;
    let mut auth = authenticator(&t);

    let cases: Vec<(&str, Tweaks, &str)> = vec![
        (
            "wrong origin",
            Tweaks {
                origin: Some("https://evil.example".into()),
                ..Tweaks::default()
            },
            "passkeyOriginMismatch",
        ),
        (
            "wrong RP ID hash",
            Tweaks {
                rp_id: Some("evil.example".into()),
                ..Tweaks::default()
            },
            "passkeyRpIdMismatch",
        ),
        (
            "no user verification",
            Tweaks {
                no_user_verification: true,
                ..Tweaks::default()
            },
            "passkeyUserNotVerified",
        ),
        (
            "another challenge",
            Tweaks {
                challenge: Some(vec![7; 32]),
                ..Tweaks::default()
            },
            "passkeyChallengeMismatch",
        ),
        (
            "malformed CBOR",
            Tweaks {
                raw_object: Some(vec![0xa3, 0x63, 0x66, 0x6d, 0xff, 0x00]),
                ..Tweaks::default()
            },
            "passkeyMalformed",
        ),
        (
            "malformed client data",
            Tweaks {
                client_data: Some(b"{\"type\": \"webauthn.create\", \"challenge\": 12".to_vec()),
                ..Tweaks::default()
            },
            "passkeyMalformed",
        ),
        (
            "client data of a sign-in",
            Tweaks {
                client_data: Some(
                    serde_json::to_vec(
                        &json!({"type": "webauthn.get", "challenge": "AAAA", "origin": t.url}),
                    )
                    .unwrap(),
                ),
                ..Tweaks::default()
            },
            "passkeyMalformed",
        ),
    ];
    for (what, tweaks, expected) in cases {
        let options = registration_options(&t, &joni.token, "this").await;
        let credential = auth.create_with(&options.body["options"], &tweaks);
        let r = finish_registration(&t, &joni.token, &options, "Bad", credential).await;
        assert_eq!(
            (r.status, code(&r)),
            (StatusCode::BAD_REQUEST, expected),
            "{what}: {:?}",
            r.body
        );
        // Refused ceremonies are spent too: the same answer cannot be tried again.
    }
    // Shapes WebAuthn does not allow, refused before the ceremony is taken: the same ceremony
    // then finishes with a good credential, so the refusal changed nothing.
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let options = registration_options(&t, &joni.token, "this").await;
        let good = auth.create(&options.body["options"]);
        let long_id = b64.encode(vec![7u8; 1024]);
        let with_statement = {
            let bytes = b64
                .decode(good["response"]["attestationObject"].as_str().unwrap())
                .unwrap();
            let mut object: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
            for (k, v) in object.as_map_mut().unwrap() {
                if k.as_text() == Some("attStmt") {
                    *v = ciborium::Value::Map(vec![(
                        ciborium::Value::Text("sig".into()),
                        ciborium::Value::Bytes(vec![1, 2, 3]),
                    )]);
                }
            }
            let mut out = Vec::new();
            ciborium::into_writer(&object, &mut out).unwrap();
            b64.encode(out)
        };
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            (
                "a password credential",
                Box::new(|c: &mut Value| c["type"] = json!("password")),
                "credential.type",
            ),
            (
                "an empty id",
                Box::new(|c: &mut Value| {
                    c["rawId"] = json!("");
                    c["id"] = json!("");
                }),
                "credential.rawId",
            ),
            (
                "an id over 1,023 bytes",
                Box::new(move |c: &mut Value| {
                    c["rawId"] = json!(long_id);
                    c["id"] = json!(long_id);
                }),
                "credential.rawId",
            ),
            (
                "format none with a statement",
                Box::new(move |c: &mut Value| {
                    c["response"]["attestationObject"] = json!(with_statement)
                }),
                "credential.response.attestationObject",
            ),
        ];
        for (what, change, target) in cases {
            let mut bad = good.clone();
            change(&mut bad);
            let r = finish_registration(&t, &joni.token, &options, "Bad", bad).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
            assert_eq!(r.body["error"]["target"], target, "{what}: {:?}", r.body);
        }
        let r = finish_registration(&t, &joni.token, &options, "Good shape", good).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let garbage = post(
        &t,
        Some(&joni.token),
        "/my/passkeys",
        json!({"ceremonyId": Uuid::new_v4(), "name": "x", "credential": {"id": 1}}),
    )
    .await;
    assert_eq!(code(&garbage), "passkeyMalformed");

    // Replay: a finished ceremony cannot be finished again.
    let options = registration_options(&t, &joni.token, "this").await;
    let credential = auth.create(&options.body["options"]);
    let ok = finish_registration(&t, &joni.token, &options, "Good", credential.clone()).await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let replay = finish_registration(&t, &joni.token, &options, "Again", credential).await;
    assert_eq!(
        code(&replay),
        "passkeyChallengeNotFound",
        "{:?}",
        replay.body
    );

    // Expiry: five minutes.
    let options = registration_options(&t, &joni.token, "this").await;
    let credential = auth.create(&options.body["options"]);
    t.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let late = finish_registration(&t, &joni.token, &options, "Late", credential).await;
    assert_eq!(code(&late), "passkeyChallengeExpired", "{:?}", late.body);

    // Someone else's ceremony.
    let grady = person(&t, "grady@contoso.com").await;
    let options = registration_options(&t, &grady.token, "this").await;
    let credential = auth.create(&options.body["options"]);
    let stolen = finish_registration(&t, &joni.token, &options, "Mine", credential).await;
    assert_eq!(code(&stolen), "passkeyChallengeNotFound");

    // Nothing but the two good passkeys was stored.
    let stored = graph_passkeys(&t, &joni).await;
    let mut names: Vec<&str> = stored
        .iter()
        .map(|p| p["displayName"].as_str().unwrap_or_default())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Good", "Good shape"]);
    assert!(graph_passkeys(&t, &grady).await.is_empty());
    assert_eq!(audits(&t, "User registered security info").await.len(), 2);
    t.stop().await;
}

#[tokio::test]
async fn sign_in_attacks_are_refused_and_change_nothing() {
    let t = TestServer::start().await;
    let joni = person(&t, "joni@contoso.com").await;
    let mut auth = authenticator(&t);
    assert_eq!(
        register(&t, &joni, &mut auth, "this", "Laptop")
            .await
            .status,
        StatusCode::CREATED
    );
    let first = sign_in(&t, &mut auth, Some(&joni.upn)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let used_at = graph_passkeys(&t, &joni).await[0]["lastUsedDateTime"].clone();

    let cases: Vec<(&str, Tweaks, &str)> = vec![
        (
            "wrong origin",
            Tweaks {
                origin: Some("http://localhost:1".into()),
                ..Tweaks::default()
            },
            "passkeyOriginMismatch",
        ),
        (
            "wrong RP ID hash",
            Tweaks {
                rp_id: Some("example.com".into()),
                ..Tweaks::default()
            },
            "passkeyRpIdMismatch",
        ),
        (
            "no user verification",
            Tweaks {
                no_user_verification: true,
                ..Tweaks::default()
            },
            "passkeyUserNotVerified",
        ),
        (
            "another challenge",
            Tweaks {
                challenge: Some(vec![1; 32]),
                ..Tweaks::default()
            },
            "passkeyChallengeMismatch",
        ),
        (
            "malformed client data",
            Tweaks {
                client_data: Some(b"\xff\xfe not json".to_vec()),
                ..Tweaks::default()
            },
            "passkeyMalformed",
        ),
        (
            "truncated authenticator data",
            Tweaks {
                raw_object: Some(vec![1, 2, 3]),
                ..Tweaks::default()
            },
            "passkeyMalformed",
        ),
        (
            "regressed signature counter",
            Tweaks {
                sign_count: Some(1),
                ..Tweaks::default()
            },
            "passkeyCounterRegressed",
        ),
    ];
    for (what, tweaks, expected) in cases {
        for username in [Some(joni.upn.as_str()), None] {
            let body = username.map_or(json!({}), |u| json!({"username": u}));
            let options = sign_in_options(&t, body).await;
            let credential = auth.get_with(&options.body["options"], &tweaks);
            let r = verify(&t, &options, credential).await;
            assert_eq!(
                (r.status, code(&r)),
                (StatusCode::BAD_REQUEST, expected),
                "{what} ({username:?}): {:?}",
                r.body
            );
            assert!(r.headers.get("set-cookie").is_none(), "{what}: no session");
        }
    }
    // The clone is on record for administrators.
    let clones = audits(&t, "Passkey sign-in refused: possibly cloned authenticator").await;
    assert_eq!(clones.len(), 2);
    assert_eq!(clones[0]["result"], "failure");

    // Replay of a good answer, and expiry.
    let options = sign_in_options(&t, json!({"username": joni.upn})).await;
    let credential = auth.get(&options.body["options"]);
    assert_eq!(
        verify(&t, &options, credential.clone()).await.status,
        StatusCode::OK
    );
    let replay = verify(&t, &options, credential).await;
    assert_eq!(code(&replay), "passkeyChallengeNotFound");
    // A refused answer uses its challenge up too: the honest answer afterwards is refused.
    let options = sign_in_options(&t, json!({"username": joni.upn})).await;
    let refused = verify(
        &t,
        &options,
        auth.get_with(
            &options.body["options"],
            &Tweaks {
                challenge: Some(vec![1; 32]),
                ..Tweaks::default()
            },
        ),
    )
    .await;
    assert_eq!(code(&refused), "passkeyChallengeMismatch");
    let honest = verify(&t, &options, auth.get(&options.body["options"])).await;
    assert_eq!(code(&honest), "passkeyChallengeNotFound");
    assert!(honest.headers.get("set-cookie").is_none());
    let options = sign_in_options(&t, json!({})).await;
    let credential = auth.get(&options.body["options"]);
    t.clock.advance(Duration::minutes(6));
    let late = verify(&t, &options, credential).await;
    assert_eq!(code(&late), "passkeyChallengeExpired");
    assert!(late.headers.get("set-cookie").is_none());

    // A credential the server does not know.
    let mut stranger = authenticator(&t);
    let foreign = registration_options(&t, &joni.token, "this").await;
    stranger.create(&foreign.body["options"]);
    let options = sign_in_options(&t, json!({})).await;
    let r = verify(&t, &options, stranger.get(&options.body["options"])).await;
    assert_eq!(code(&r), "passkeyNotRegistered");
    assert_ne!(
        graph_passkeys(&t, &joni).await[0]["lastUsedDateTime"],
        Value::Null
    );
    assert_ne!(used_at, Value::Null);
    t.stop().await;
}

#[tokio::test]
async fn key_restrictions_and_excluded_groups_apply_at_registration_and_sign_in() {
    let t = TestServer::start().await;
    let defaults = t.get(FIDO2).await;
    assert_eq!(defaults.status, StatusCode::OK);
    assert_eq!(defaults.body["state"], "enabled");
    assert_eq!(defaults.body["isAttestationEnforced"], false);
    assert_eq!(defaults.body["keyRestrictions"]["isEnforced"], false);

    let joni = person(&t, "joni@contoso.com").await;
    let mut auth = authenticator(&t);
    assert_eq!(
        register(&t, &joni, &mut auth, "this", "Laptop")
            .await
            .status,
        StatusCode::CREATED
    );
    let authenticator_app = "de1e552d-db1d-4423-a619-566b625cdc84";
    let r = t
        .patch(FIDO2, json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [authenticator_app]}}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let updates = audits(&t, "Authentication Methods Policy Update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["targetResources"][0]["type"], "Policy");

    // The existing passkey can no longer sign in, and no new one of its model registers.
    let refused = sign_in(&t, &mut auth, Some(&joni.upn)).await;
    assert_eq!(
        code(&refused),
        "passkeyModelNotAllowed",
        "{:?}",
        refused.body
    );
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&TEST_AAGUID.to_string())
    );
    assert!(refused.headers.get("set-cookie").is_none());
    // The sign-in log says why, for the right person.
    let log = t.get("/auditLogs/signIns").await;
    let entries = log.body["value"].as_array().unwrap();
    let failed = entries
        .iter()
        .find(|e| e["status"]["errorCode"] != 0)
        .expect("the refused sign-in is logged");
    assert_eq!(failed["userId"], joni.id);
    assert_eq!(
        failed["authenticationDetails"][0]["authenticationMethod"],
        "Passkey"
    );
    assert!(
        failed["status"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("does not allow this passkey's model"),
        "{failed}"
    );
    let refused = register(&t, &joni, &mut auth, "this", "Second").await;
    assert_eq!(
        code(&refused),
        "passkeyModelNotAllowed",
        "{:?}",
        refused.body
    );
    // The refused key stays on the authenticator, as it would on a real one; the person picks
    // the registered passkey from now on.
    auth.credentials.pop();
    // Block lists work the other way round.
    t.patch(
        FIDO2,
        json!({"keyRestrictions": {"enforcementType": "block", "aaGuids": [TEST_AAGUID]}}),
    )
    .await;
    assert_eq!(
        code(&sign_in(&t, &mut auth, None).await),
        "passkeyModelNotAllowed"
    );
    t.patch(
        FIDO2,
        json!({"keyRestrictions": {"enforcementType": "allow"}}),
    )
    .await;
    assert_eq!(sign_in(&t, &mut auth, None).await.status, StatusCode::OK);
    let model = authenticator_app.to_string();
    let mut microsoft =
        SoftwareAuthenticator::new(&t.url, Uuid::parse_str(&model).unwrap(), Attestation::None);
    t.patch(
        FIDO2,
        json!({"keyRestrictions": {"aaGuids": [authenticator_app]}}),
    )
    .await;
    let ok = register(&t, &joni, &mut microsoft, "another", "Authenticator").await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    assert_eq!(ok.body["model"], "Microsoft Authenticator for Android");
    assert_eq!(ok.body["attestationLevel"], "notAttested");

    // An excluded group blocks both registration and sign-in.
    let group = t
        .post("/groups", json!({"displayName": "No passkeys", "mailEnabled": false, "securityEnabled": true, "mailNickname": "nopk"}))
        .await;
    let group_id = group.body["id"].as_str().unwrap().to_string();
    let added = t
        .post(
            &format!("/groups/{group_id}/members/$ref"),
            json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", joni.id)}),
        )
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{:?}", added.body);
    let r = t
        .patch(
            FIDO2,
            json!({"excludeTargets": [{"targetType": "group", "id": group_id}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let refused = sign_in(&t, &mut microsoft, None).await;
    assert_eq!(
        code(&refused),
        "passkeyMethodExcludedForUser",
        "{:?}",
        refused.body
    );
    let refused = post(
        &t,
        Some(&joni.token),
        "/my/passkeys/options",
        json!({"device": "this"}),
    )
    .await;
    assert_eq!(code(&refused), "passkeyMethodExcludedForUser");

    // Bad configurations are refused and change nothing.
    let before = t.get(FIDO2).await.body;
    for (body, target) in [
        (json!({"passkeyProfiles": []}), "passkeyProfiles"),
        (
            json!({"keyRestrictions": {"aaGuids": ["not-a-guid"]}}),
            "keyRestrictions.aaGuids[0]",
        ),
        (json!({"state": "sometimes"}), "state"),
        (
            json!({"includeTargets": [{"targetType": "group", "id": Uuid::new_v4()}]}),
            "includeTargets[0].id",
        ),
        (
            json!({"excludeTargets": [{"targetType": "user", "id": Uuid::new_v4()}]}),
            "excludeTargets[0].targetType",
        ),
    ] {
        let r = t.patch(FIDO2, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(target), "{body}");
    }
    assert_eq!(t.get(FIDO2).await.body, before);
    t.patch(FIDO2, json!({"state": "disabled", "excludeTargets": []}))
        .await;
    assert_eq!(
        code(&sign_in(&t, &mut microsoft, None).await),
        "passkeyMethodDisabled"
    );
    t.stop().await;
}

#[tokio::test]
async fn enforced_attestation_needs_a_chain_to_a_trusted_root() {
    let vendor = TestAttestationCa::generate("Portcullis Test Root");
    let other_vendor = TestAttestationCa::generate("Second Test Root");
    let untrusted = TestAttestationCa::generate("Untrusted Root");
    let files = tempfile::tempdir().unwrap();
    let mds = files.path().join("mds.json");
    std::fs::write(
        &mds,
        vendor.metadata_json(TEST_AAGUID, "Portcullis Test Key"),
    )
    .unwrap();
    let pem = files.path().join("roots.pem");
    std::fs::write(&pem, other_vendor.root_pem()).unwrap();
    let t = TestServer::start_with(|c| c.attestation_roots = vec![mds.clone(), pem.clone()]).await;
    let joni = person(&t, "joni@contoso.com").await;

    // Not enforced: a proven chain is shown as attested, with the model from the metadata.
    let mut attested =
        SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::Full(vendor.clone()));
    let r = register(&t, &joni, &mut attested, "this", "Attested").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["attestationLevel"], "attested");
    assert_eq!(r.body["model"], "Portcullis Test Key");

    let r = t
        .patch(FIDO2, json!({"isAttestationEnforced": true, "keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [TEST_AAGUID]}}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // Self-attestation claiming the allowed AAGUID, no attestation, and a chain to a root
    // nobody trusts: all refused.
    for (what, attestation) in [
        ("self-attested", Attestation::SelfAttested),
        ("none", Attestation::None),
        ("untrusted chain", Attestation::Full(untrusted.clone())),
    ] {
        let mut liar = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, attestation);
        let r = register(&t, &joni, &mut liar, "this", what).await;
        assert_eq!(
            (r.status, code(&r)),
            (StatusCode::BAD_REQUEST, "passkeyAttestationRequired"),
            "{what}: {:?}",
            r.body
        );
    }
    // The browser's cross-device path carries no attestation: refused up front.
    let cross = post(
        &t,
        Some(&joni.token),
        "/my/passkeys/options",
        json!({"device": "another"}),
    )
    .await;
    assert_eq!(
        code(&cross),
        "passkeyCrossDeviceNeedsAttestation",
        "{:?}",
        cross.body
    );
    // A root from the metadata vouches only for its own models.
    let mut wrong_model = SoftwareAuthenticator::new(
        &t.url,
        Uuid::from_u128(42),
        Attestation::Full(vendor.clone()),
    );
    t.patch(FIDO2, json!({"keyRestrictions": {"isEnforced": false}}))
        .await;
    let r = register(&t, &joni, &mut wrong_model, "this", "Wrong model").await;
    assert_eq!(code(&r), "passkeyAttestationRequired", "{:?}", r.body);
    // A PEM root vouches for whatever its chain attests.
    let mut pem_attested = SoftwareAuthenticator::new(
        &t.url,
        Uuid::from_u128(43),
        Attestation::Full(other_vendor.clone()),
    );
    let r = register(&t, &joni, &mut pem_attested, "this", "PEM").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["attestationLevel"], "attested");
    assert!(r.body["model"].is_null());
    // And a proven passkey of an allowed model.
    let mut second = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::Full(vendor));
    let r = register(&t, &joni, &mut second, "this", "Second").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let names: Vec<Value> = graph_passkeys(&t, &joni)
        .await
        .iter()
        .map(|p| p["displayName"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("Attested"), json!("PEM"), json!("Second")]
    );
    t.stop().await;
}

#[tokio::test]
async fn passkey_administration_needs_its_permissions_and_goes_with_the_user() {
    let t = TestServer::start().await;
    let joni = person(&t, "joni@contoso.com").await;
    let mut auth = authenticator(&t);
    let key = register(&t, &joni, &mut auth, "this", "Laptop").await;
    let method = format!(
        "/users/{}/authentication/fido2Methods/{}",
        joni.id,
        key.body["id"].as_str().unwrap()
    );

    let app = t
        .post(
            "/applications",
            json!({"displayName": "Helpdesk reader", "apiPermissions": ["Policy.Read.All", "UserAuthenticationMethod.Read.All"]}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let secret = t
        .post(
            &format!(
                "/applications/{}/addPassword",
                app.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let reader = t
        .client_token(
            app.body["appId"].as_str().unwrap(),
            secret.body["secretText"].as_str().unwrap(),
        )
        .await
        .unwrap();
    let as_reader = |method: reqwest::Method, path: String, body: Option<Value>| {
        let t = &t;
        let reader = reader.clone();
        async move { t.graph_as(&reader, method, &path, body).await.status }
    };
    assert_eq!(
        as_reader(reqwest::Method::GET, FIDO2.to_string(), None).await,
        StatusCode::OK
    );
    assert_eq!(
        as_reader(
            reqwest::Method::PATCH,
            FIDO2.to_string(),
            Some(json!({"state": "disabled"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        as_reader(reqwest::Method::GET, method.clone(), None).await,
        StatusCode::OK
    );
    assert_eq!(
        as_reader(reqwest::Method::DELETE, method.clone(), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        as_reader(
            reqwest::Method::PATCH,
            method.clone(),
            Some(json!({"displayName": "Mine"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(t.get(FIDO2).await.body["state"], "enabled");
    assert_eq!(t.get(&method).await.body["displayName"], "Laptop");
    assert!(
        audits(&t, "Authentication Methods Policy Update")
            .await
            .is_empty()
    );

    // Deleting the person deletes their passkeys: the key no longer signs anyone in.
    assert_eq!(
        t.delete(&format!("/users/{}", joni.id)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.get(&method).await.status, StatusCode::NOT_FOUND);
    let r = sign_in(&t, &mut auth, None).await;
    assert_eq!(code(&r), "passkeyNotRegistered", "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn a_passkey_sign_in_extends_the_session_it_arrives_with() {
    let t = TestServer::start().await;
    let joni = person(&t, "joni@contoso.com").await;
    let mut auth = authenticator(&t);
    assert_eq!(
        register(&t, &joni, &mut auth, "this", "Laptop")
            .await
            .status,
        StatusCode::CREATED
    );
    let once = tap_session(&t, &joni.id, &joni.upn, true).await;
    t.clock.advance(Duration::minutes(11));
    let late = post(
        &t,
        Some(&once),
        "/my/passkeys/options",
        json!({"device": "this"}),
    )
    .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);

    // Signing in with a passkey inside that session adds the method to it: no new cookie, and
    // the session now holds a fresh strong sign-in.
    let options = sign_in_options(&t, json!({"username": joni.upn})).await;
    let credential = auth.get(&options.body["options"]);
    let extended = post(
        &t,
        Some(&once),
        "/auth/passkey/verify",
        json!({"ceremonyId": options.body["ceremonyId"], "credential": credential}),
    )
    .await;
    assert_eq!(extended.status, StatusCode::OK, "{:?}", extended.body);
    assert!(extended.headers.get("set-cookie").is_none());
    registration_options(&t, &once, "another").await;

    // Someone else's session is not extended with Joni's passkey: she gets her own.
    let grady = person(&t, "grady@contoso.com").await;
    let options = sign_in_options(&t, json!({})).await;
    let credential = auth.get(&options.body["options"]);
    let own = post(
        &t,
        Some(&grady.token),
        "/auth/passkey/verify",
        json!({"ceremonyId": options.body["ceremonyId"], "credential": credential}),
    )
    .await;
    assert_eq!(own.body["userId"], joni.id);
    let token = session_token(&own).expect("a new session for Joni");
    let mine = call(&t, Some(&token), reqwest::Method::GET, "/my/passkeys", None).await;
    assert_eq!(mine.body["value"][0]["displayName"], "Laptop");
    let his = call(
        &t,
        Some(&grady.token),
        reqwest::Method::GET,
        "/my/passkeys",
        None,
    )
    .await;
    assert_eq!(his.body["value"], json!([]));
    t.stop().await;
}

/// Conditional Access for "Register security information" holds on the `/my/…` endpoints as
/// it does on the security-info page, by the same decision: with a policy that blocks
/// registering security info from outside the office's trusted addresses, a person signed in
/// from elsewhere can neither add a passkey or an authenticator app, nor change their password,
/// nor rename or remove a passkey — each refused with a 403 naming the policy, and nothing
/// changes. Once this address is one of the office's, the same requests work.
#[tokio::test]
async fn registering_security_info_from_outside_the_office_is_refused_and_changes_nothing() {
    let t = TestServer::start().await;
    let p = person(&t, "ines@contoso.com").await;
    let mut auth = authenticator(&t);
    let registered = register(&t, &p, &mut auth, "this", "Ines's laptop").await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:?}",
        registered.body
    );
    let passkey_id = registered.body["id"].as_str().unwrap().to_string();

    let office = t
        .post(
            "/identity/conditionalAccess/namedLocations",
            json!({
                "@odata.type": "#microsoft.graph.ipNamedLocation",
                "displayName": "Head office",
                "isTrusted": true,
                "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]
            }),
        )
        .await;
    assert_eq!(office.status, StatusCode::CREATED, "{:?}", office.body);
    let policy = t
        .post(
            "/identity/conditionalAccess/policies",
            json!({
                "displayName": "Security info only from the office",
                "state": "enabled",
                "conditions": {
                    "users": {"includeUsers": ["All"]},
                    "applications": {"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]},
                    "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
                    "clientAppTypes": ["all"]
                },
                "grantControls": {"operator": "OR", "builtInControls": ["block"]}
            }),
        )
        .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{:?}", policy.body);
    let before = graph_passkeys(&t, &p).await;

    let refused = [
        post(
            &t,
            Some(&p.token),
            "/my/passkeys/options",
            json!({"device": "this"}),
        )
        .await,
        post(&t, Some(&p.token), "/my/totp/options", json!({})).await,
        post(
            &t,
            Some(&p.token),
            "/my/password",
            json!({"currentPassword": "", "newPassword": "a long new passphrase 42"}),
        )
        .await,
        call(
            &t,
            Some(&p.token),
            reqwest::Method::PATCH,
            &format!("/my/passkeys/{passkey_id}"),
            Some(json!({"displayName": "Renamed"})),
        )
        .await,
        call(
            &t,
            Some(&p.token),
            reqwest::Method::DELETE,
            &format!("/my/passkeys/{passkey_id}"),
            None,
        )
        .await,
    ];
    for reply in &refused {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.body);
        assert_eq!(code(reply), "Authorization_RequestDenied");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("'Security info only from the office'")
                && message.contains("register or change security info"),
            "{message}"
        );
    }
    assert_eq!(graph_passkeys(&t, &p).await, before, "nothing changed");
    let apps = call(&t, Some(&p.token), reqwest::Method::GET, "/my/totp", None).await;
    assert_eq!(
        apps.body["value"],
        json!([]),
        "no authenticator app was added"
    );

    // The security-info page says the same, and offers no way to add a method.
    let page = t
        .http
        .get(format!("{}/my/security-info", t.url))
        .header("cookie", format!("portcullis_session={}", p.token))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"security-info-policy\"")
            && html.contains("Security info only from the office"),
        "{html}"
    );
    assert!(!html.contains("Add sign-in method"), "{html}");

    // This address becomes one of the office's: the same session may add a passkey again.
    let moved = t
        .patch(
            &format!(
                "/identity/conditionalAccess/namedLocations/{}",
                office.body["id"].as_str().unwrap()
            ),
            json!({
                "@odata.type": "#microsoft.graph.ipNamedLocation",
                "ipRanges": [
                    {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"},
                    {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "127.0.0.1/32"}
                ]
            }),
        )
        .await;
    assert!(moved.status.is_success(), "{:?}", moved.body);
    let renamed = call(
        &t,
        Some(&p.token),
        reqwest::Method::PATCH,
        &format!("/my/passkeys/{passkey_id}"),
        Some(json!({"displayName": "Renamed"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    registration_options(&t, &p.token, "this").await;
    t.stop().await;
}

/// The shape of a JSON value: its keys and the kinds of its leaves, with arrays reduced to the
/// shape of their first element, so two answers compare equal when nothing but their values
/// (ids, challenges, counts) tells them apart.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "ceremonyId")
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

/// Username-first passkey options do not tell whether an account exists or has a passkey: an
/// unknown name and a name without passkeys get credential ids too, the same ones each time and
/// on every node (derived with the server's secret), different per name, and an assertion
/// against them cannot succeed.
#[tokio::test]
async fn username_first_options_do_not_reveal_accounts() {
    use base64::Engine as _;
    let t = TestServer::start().await;
    let joni = person(&t, "joni@contoso.com").await;
    let mut laptop = authenticator(&t);
    let done = register(&t, &joni, &mut laptop, "this", "Laptop").await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    user(&t, "grady@contoso.com").await;

    let ids = |r: &Reply| -> Vec<String> {
        r.body["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let real = sign_in_options(&t, json!({"username": "joni@contoso.com"})).await;
    let nobody = sign_in_options(&t, json!({"username": "nobody@contoso.com"})).await;
    let no_passkey = sign_in_options(&t, json!({"username": "grady@contoso.com"})).await;
    for decoy in [&nobody, &no_passkey] {
        assert_eq!(shape(&decoy.body), shape(&real.body), "{:?}", decoy.body);
        let decoy_ids = ids(decoy);
        assert!(!decoy_ids.is_empty() && decoy_ids.len() <= 2);
        for id in &decoy_ids {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id)
                .expect("base64url");
            assert!(
                [16, 20, 32, 64].contains(&bytes.len()),
                "{} bytes",
                bytes.len()
            );
        }
    }
    // The same name gets the same ids (as a real account would), in any case; names differ.
    let again = sign_in_options(&t, json!({"username": "NOBODY@contoso.com"})).await;
    assert_eq!(ids(&again), ids(&nobody));
    assert_ne!(ids(&nobody), ids(&no_passkey));

    // A real passkey cannot be used against a decoy ceremony to sign in as someone else.
    let assertion = laptop.get(&real.body["options"]);
    let refused = verify(&t, &nobody, assertion).await;
    assert_ne!(refused.status, StatusCode::OK, "{:?}", refused.body);
    t.stop().await;
}
