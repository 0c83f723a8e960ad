//! The sign-in state machine end to end, over `/signin/flows`, with the story's tenant set up
//! through the admin API (admins group, "Passkey test: enforcement" and "Passkey test:
//! unsupported platforms", the passkey policy's allow-list holding the software authenticator),
//! real user-agent strings and the software authenticator.

use portcullis_testkit::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
use portcullis_testkit::fixtures::{
    ANDROID, PHISHING_RESISTANT, WINDOWS, allow_test_authenticator, call, id, issue_pass,
    session_token, story_tenant,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};

struct Story {
    joni: String,
    app_id: String,
    enforcement: Value,
    platforms: Value,
}

/// DESIGN.md's tenant with an application to sign in to; `block_state` is the state of the
/// platform policy.
async fn story(t: &TestServer, block_state: &str, strength: &str) -> Story {
    let tenant = story_tenant(t, block_state, strength).await;
    let app = t
        .post("/applications", json!({"displayName": "Contoso Portal"}))
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    allow_test_authenticator(t).await;
    Story {
        joni: tenant.joni,
        app_id: app.body["appId"].as_str().unwrap().to_string(),
        enforcement: tenant.enforcement,
        platforms: tenant.platforms,
    }
}

async fn post(t: &TestServer, ua: &str, token: Option<&str>, path: &str, body: Value) -> Reply {
    call(t, Some(ua), token, reqwest::Method::POST, path, Some(body)).await
}

/// A fresh one-time pass for `user_id`.
async fn one_time_pass(t: &TestServer, user_id: &str) -> String {
    issue_pass(t, user_id, json!({"isUsableOnce": true})).await
}

/// Starts a flow, identifies Joni and signs in with a fresh pass: the reply and the session.
async fn tap_first_factor(t: &TestServer, s: &Story, ua: &str) -> (String, Reply, String) {
    let started = post(t, ua, None, "/signin/flows", json!({"clientId": s.app_id})).await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    assert_eq!(started.body["status"], "identify");
    let flow = started.body["flowId"].as_str().unwrap().to_string();
    let identified = post(
        t,
        ua,
        None,
        &format!("/signin/flows/{flow}/identify"),
        json!({"username": "joni@contoso.com"}),
    )
    .await;
    assert_eq!(
        identified.body["status"], "firstFactor",
        "{:?}",
        identified.body
    );
    let pass = one_time_pass(t, &s.joni).await;
    let reply = post(
        t,
        ua,
        None,
        &format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": pass}),
    )
    .await;
    let token = session_token(&reply).expect("a session cookie");
    (flow, reply, token)
}

async fn sign_ins_for(t: &TestServer, app_id: &str) -> Vec<Value> {
    let r = t.get("/auditLogs/signIns?$top=999").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["appId"] == app_id)
        .cloned()
        .collect()
}

fn applied<'a>(entry: &'a Value, policy_id: &str) -> &'a Value {
    entry["appliedConditionalAccessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == policy_id)
        .expect("the policy in the entry")
}

/// Registers a passkey on "another device" in the flow and proves it: the final reply.
async fn register_and_prove(
    t: &TestServer,
    ua: &str,
    flow: &str,
    token: &str,
    phone: &mut SoftwareAuthenticator,
) -> Reply {
    let options = post(
        t,
        ua,
        Some(token),
        &format!("/signin/flows/{flow}/registration/options"),
        json!({"device": "another"}),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    assert_eq!(
        options.body["options"]["publicKey"]["hints"],
        json!(["hybrid"])
    );
    let credential = phone.create(&options.body["options"]);
    let registered = post(
        t,
        ua,
        Some(token),
        &format!("/signin/flows/{flow}/registration"),
        json!({"ceremonyId": options.body["ceremonyId"], "name": "Joni's phone", "credential": credential}),
    )
    .await;
    assert_eq!(registered.status, StatusCode::OK, "{:?}", registered.body);
    assert_eq!(registered.body["status"], "proveRegistration");
    let options = post(
        t,
        ua,
        Some(token),
        &format!("/signin/flows/{flow}/passkey/options"),
        json!({}),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    let assertion = phone.get(&options.body["options"]);
    post(
        t,
        ua,
        Some(token),
        &format!("/signin/flows/{flow}/passkey/verify"),
        json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
    )
    .await
}

#[tokio::test]
async fn joni_on_windows_registers_a_passkey_on_another_device_and_is_granted() {
    let t = TestServer::start().await;
    let s = story(&t, "enabled", PHISHING_RESISTANT).await;
    let (flow, reply, token) = tap_first_factor(&t, &s, WINDOWS).await;

    // The pass does not meet phishing-resistant MFA, and Joni has nothing that does.
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        reply.body["status"], "registrationNeeded",
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["errorCode"], 50079);
    assert_eq!(reply.body["methods"], json!(["fido2"]));
    assert_eq!(reply.body["policies"][0]["id"], id(&s.enforcement));
    let log = sign_ins_for(&t, &s.app_id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"]["errorCode"], 50079);
    assert_eq!(applied(&log[0], &id(&s.enforcement))["result"], "failure");
    assert_eq!(applied(&log[0], &id(&s.platforms))["result"], "notApplied");
    assert_eq!(log[0]["authenticationStrength"], "Phishing resistant MFA");
    assert_eq!(
        log[0]["authenticationRequirement"],
        "multiFactorAuthentication"
    );
    assert_eq!(
        log[0]["authenticationDetails"][0]["authenticationMethod"],
        "Temporary Access Pass"
    );

    let mut phone = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let done = register_and_prove(&t, WINDOWS, &flow, &token, &mut phone).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.body["status"], "granted", "{:?}", done.body);
    assert_eq!(done.body["userPrincipalName"], "joni@contoso.com");

    let log = sign_ins_for(&t, &s.app_id).await;
    let granted = &log[0];
    assert_eq!(granted["status"]["errorCode"], 0, "{granted:?}");
    assert_eq!(granted["conditionalAccessStatus"], "success");
    let p1 = applied(granted, &id(&s.enforcement));
    assert_eq!(p1["result"], "success");
    assert_eq!(p1["displayName"], "Passkey test: enforcement");
    assert_eq!(
        p1["enforcedGrantControls"][0],
        "Require authentication strength: Phishing resistant MFA"
    );
    assert!(
        granted["deviceDetail"]["operatingSystem"]
            .as_str()
            .unwrap()
            .starts_with("Windows"),
        "{granted:?}"
    );
    let methods: Vec<&str> = granted["authenticationDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["authenticationMethod"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["Temporary Access Pass", "Passkey"]);

    // A granted flow takes no more steps.
    let again = post(
        &t,
        WINDOWS,
        Some(&token),
        &format!("/signin/flows/{flow}/passkey/options"),
        json!({}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    assert_eq!(again.body["error"]["code"], "signInStepOutOfOrder");

    // Next time the passkey alone is the way in: no username, no pass, granted at once.
    let started = post(
        &t,
        WINDOWS,
        None,
        "/signin/flows",
        json!({"clientId": s.app_id}),
    )
    .await;
    let next = started.body["flowId"].as_str().unwrap().to_string();
    let options = post(
        &t,
        WINDOWS,
        None,
        &format!("/signin/flows/{next}/passkey/options"),
        json!({}),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    let assertion = phone.get(&options.body["options"]);
    let granted = post(
        &t,
        WINDOWS,
        None,
        &format!("/signin/flows/{next}/passkey/verify"),
        json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
    )
    .await;
    assert_eq!(granted.status, StatusCode::OK, "{:?}", granted.body);
    assert_eq!(granted.body["status"], "granted", "{:?}", granted.body);
    assert!(session_token(&granted).is_some());
    let log = sign_ins_for(&t, &s.app_id).await;
    assert_eq!(log[0]["status"]["errorCode"], 0);
    assert_eq!(
        log[0]["authenticationDetails"][0]["authenticationMethod"],
        "Passkey"
    );
}

#[tokio::test]
async fn joni_on_android_is_blocked_by_the_platform_policy() {
    let t = TestServer::start().await;
    let s = story(&t, "enabled", PHISHING_RESISTANT).await;
    let (flow, reply, token) = tap_first_factor(&t, &s, ANDROID).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "blocked");
    assert_eq!(reply.body["errorCode"], 53003);
    assert_eq!(reply.body["policies"][0]["id"], id(&s.platforms));
    assert_eq!(
        reply.body["policies"][0]["displayName"],
        "Passkey test: unsupported platforms"
    );
    let details = &reply.body["details"];
    assert!(details["correlationId"].is_string(), "{details:?}");
    assert!(details["timestamp"].is_string());
    assert_eq!(details["appId"], s.app_id);
    assert_eq!(details["platform"], "Android");

    let log = sign_ins_for(&t, &s.app_id).await;
    assert_eq!(log[0]["status"]["errorCode"], 53003);
    assert_eq!(log[0]["conditionalAccessStatus"], "failure");
    assert_eq!(applied(&log[0], &id(&s.platforms))["result"], "failure");
    assert!(
        log[0]["status"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("Passkey test: unsupported platforms")
    );

    // Nothing more can be done in a blocked flow.
    let options = post(
        &t,
        ANDROID,
        Some(&token),
        &format!("/signin/flows/{flow}/registration/options"),
        json!({"device": "this"}),
    )
    .await;
    assert_eq!(options.status, StatusCode::CONFLICT, "{:?}", options.body);
    assert_eq!(options.body["error"]["code"], "signInStepOutOfOrder");
}

/// Starts a flow on the node at `url` and signs Joni in with a fresh pass from Android.
async fn android_pass_sign_in_at(t: &TestServer, url: &str, s: &Story) -> Value {
    let http = &t.http;
    let post_at = |path: String, body: Value| async move {
        let response = http
            .post(format!("{url}{path}"))
            .header("user-agent", ANDROID)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        response.json::<Value>().await.unwrap_or(Value::Null)
    };
    let started = post_at("/signin/flows".into(), json!({"clientId": s.app_id})).await;
    let flow = started["flowId"].as_str().expect("a flow").to_string();
    let identified = post_at(
        format!("/signin/flows/{flow}/identify"),
        json!({"username": "joni@contoso.com"}),
    )
    .await;
    assert_eq!(identified["status"], "firstFactor", "{identified:?}");
    let pass = one_time_pass(t, &s.joni).await;
    post_at(
        format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": pass}),
    )
    .await
}

#[tokio::test]
async fn a_membership_removed_on_one_node_counts_at_the_next_sign_in_on_another() {
    // Nodes keep people's groups between decisions; removing Joni from Admins through one node
    // must take her out of the Admins-only policies at her very next sign-in on the other.
    let t = TestServer::start().await;
    let s = story(&t, "enabled", PHISHING_RESISTANT).await;
    let (node_b, url_b) = t.second_node().await.expect("a second node");
    let first = android_pass_sign_in_at(&t, &url_b, &s).await;
    assert_eq!(first["status"], "blocked", "{first:?}");

    let admins = t.get("/groups?$filter=displayName eq 'Admins'").await.body["value"][0].clone();
    let removed = t
        .delete(&format!("/groups/{}/members/{}/$ref", id(&admins), s.joni))
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);

    let second = android_pass_sign_in_at(&t, &url_b, &s).await;
    assert_ne!(second["status"], "blocked", "{second:?}");
    let log = sign_ins_for(&t, &s.app_id).await;
    assert_eq!(applied(&log[0], &id(&s.platforms))["result"], "notApplied");
    assert_eq!(
        applied(&log[0], &id(&s.enforcement))["result"],
        "notApplied"
    );
    drop(node_b);
}

#[tokio::test]
async fn a_report_only_platform_policy_lets_joni_in_from_android_and_logs_report_only_failure() {
    let t = TestServer::start().await;
    let s = story(&t, "enabledForReportingButNotEnforced", PHISHING_RESISTANT).await;
    let (flow, reply, token) = tap_first_factor(&t, &s, ANDROID).await;
    assert_eq!(
        reply.body["status"], "registrationNeeded",
        "{:?}",
        reply.body
    );
    let mut phone = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let done = register_and_prove(&t, ANDROID, &flow, &token, &mut phone).await;
    assert_eq!(done.body["status"], "granted", "{:?}", done.body);
    let log = sign_ins_for(&t, &s.app_id).await;
    assert_eq!(log[0]["status"]["errorCode"], 0);
    assert_eq!(
        applied(&log[0], &id(&s.platforms))["result"],
        "reportOnlyFailure"
    );
    assert_eq!(applied(&log[0], &id(&s.enforcement))["result"], "success");
}

#[tokio::test]
async fn a_passkey_whose_model_the_strength_does_not_allow_never_satisfies_it() {
    let t = TestServer::start().await;
    // A custom strength: passkeys of one other model only.
    let other_model = "90a3ccdf-635c-4729-a248-9b709135078f";
    let strength = t
        .post(
            "/policies/authenticationStrengthPolicies",
            json!({
                "displayName": "Authenticator passkeys only",
                "allowedCombinations": ["fido2"],
                "combinationConfigurations": [{
                    "@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                    "appliesToCombinations": ["fido2"],
                    "allowedAAGUIDs": [other_model]
                }]
            }),
        )
        .await;
    assert_eq!(strength.status, StatusCode::CREATED, "{:?}", strength.body);
    assert_eq!(
        strength.body["combinationConfigurations"][0]["allowedAAGUIDs"][0],
        other_model
    );
    let s = story(&t, "enabled", &id(&strength.body)).await;
    // The passkey policy allows only the test authenticator's model, which the strength does
    // not: nothing Joni could register would meet it, so she is blocked, never offered a
    // registration she could not use.
    let (_, reply, _) = tap_first_factor(&t, &s, WINDOWS).await;
    assert_eq!(reply.body["status"], "blocked", "{:?}", reply.body);
    assert_eq!(reply.body["policies"][0]["id"], id(&s.enforcement));
}

#[tokio::test]
async fn a_pass_alone_never_reaches_granted_and_steps_out_of_order_are_refused() {
    let t = TestServer::start().await;
    let s = story(&t, "enabled", PHISHING_RESISTANT).await;
    let (flow, reply, token) = tap_first_factor(&t, &s, WINDOWS).await;
    assert_eq!(reply.body["status"], "registrationNeeded");

    // Reading the flow again does not grant it; the pass step cannot be replayed.
    let current = call(
        &t,
        Some(WINDOWS),
        Some(&token),
        reqwest::Method::GET,
        &format!("/signin/flows/{flow}"),
        None,
    )
    .await;
    assert_eq!(current.body["status"], "registrationNeeded");
    let pass = one_time_pass(&t, &s.joni).await;
    let replay = post(
        &t,
        WINDOWS,
        Some(&token),
        &format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": pass}),
    )
    .await;
    assert_eq!(replay.status, StatusCode::CONFLICT, "{:?}", replay.body);
    assert_eq!(replay.body["error"]["code"], "signInStepOutOfOrder");

    // Proving a passkey before registering one is out of order.
    let early = post(
        &t,
        WINDOWS,
        Some(&token),
        &format!("/signin/flows/{flow}/passkey/options"),
        json!({}),
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{:?}", early.body);

    // Another flow's session cannot drive this one.
    let (_, _, other_token) = tap_first_factor(&t, &s, WINDOWS).await;
    let foreign = post(
        &t,
        WINDOWS,
        Some(&other_token),
        &format!("/signin/flows/{flow}/registration/options"),
        json!({"device": "another"}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::CONFLICT, "{:?}", foreign.body);
    assert_eq!(foreign.body["error"]["code"], "signInFlowSessionMismatch");

    // A first factor before identification, and an unknown flow, are refused.
    let started = post(
        &t,
        WINDOWS,
        None,
        "/signin/flows",
        json!({"clientId": s.app_id}),
    )
    .await;
    let fresh = started.body["flowId"].as_str().unwrap().to_string();
    let early = post(
        &t,
        WINDOWS,
        None,
        &format!("/signin/flows/{fresh}/tap"),
        json!({"temporaryAccessPass": "whatever"}),
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{:?}", early.body);
    let unknown = post(
        &t,
        WINDOWS,
        None,
        &format!("/signin/flows/{}/identify", uuid::Uuid::new_v4()),
        json!({"username": "joni@contoso.com"}),
    )
    .await;
    assert_eq!(
        unknown.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        unknown.body
    );
    assert_eq!(unknown.body["error"]["code"], "signInFlowNotFound");
    let no_app = post(
        &t,
        WINDOWS,
        None,
        "/signin/flows",
        json!({"clientId": uuid::Uuid::new_v4().to_string()}),
    )
    .await;
    assert_eq!(no_app.status, StatusCode::BAD_REQUEST, "{:?}", no_app.body);
    assert_eq!(no_app.body["error"]["code"], "unknownClient");

    // Whatever happened, no entry for this application says it was granted.
    let log = sign_ins_for(&t, &s.app_id).await;
    assert!(log.iter().all(|e| e["status"]["errorCode"] != 0), "{log:?}");
}

/// Flow ids and session cookies are split tokens too. A flow named with a wrong, truncated,
/// extended or missing secret, or an altered id, is a flow that does not exist (400
/// `signInFlowNotFound`, as for an unknown one), and a forged session cookie is no session
/// (the flow bound to the real one says it belongs to another session, as without a
/// cookie). Neither moves the flow: it is where it was, for the real token.
#[tokio::test]
async fn a_flow_id_or_session_cookie_with_a_wrong_secret_is_unknown_and_changes_nothing() {
    use crate::oidc::{forgeries, unknown_token};
    // What tells two refusals apart, without the request's own id and time.
    fn refusal(r: &Reply) -> (StatusCode, Value) {
        let mut error = r.body["error"].clone();
        if let Some(e) = error.as_object_mut() {
            e.remove("innerError");
        }
        (r.status, error)
    }
    let t = TestServer::start().await;
    let s = story(&t, "enabled", PHISHING_RESISTANT).await;

    // Before the first factor the flow's token alone drives it.
    let started = post(
        &t,
        WINDOWS,
        None,
        "/signin/flows",
        json!({"clientId": s.app_id}),
    )
    .await;
    let fresh = started.body["flowId"].as_str().unwrap().to_string();
    let identify = |flow: String| {
        let t = &t;
        async move {
            post(
                t,
                WINDOWS,
                None,
                &format!("/signin/flows/{flow}/identify"),
                json!({"username": "joni@contoso.com"}),
            )
            .await
        }
    };
    let unknown = identify(unknown_token()).await;
    assert_eq!(
        unknown.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        unknown.body
    );
    assert_eq!(unknown.body["error"]["code"], "signInFlowNotFound");
    for forged in forgeries(&fresh) {
        let r = identify(forged.clone()).await;
        assert_eq!(refusal(&r), refusal(&unknown), "{forged}");
        let read = call(
            &t,
            Some(WINDOWS),
            None,
            reqwest::Method::GET,
            &format!("/signin/flows/{forged}"),
            None,
        )
        .await;
        assert_eq!(refusal(&read), refusal(&unknown), "{forged}");
    }
    let identified = identify(fresh.clone()).await;
    assert_eq!(
        identified.body["status"], "firstFactor",
        "still at identify: {:?}",
        identified.body
    );

    // After the first factor the flow belongs to its session.
    let (flow, _, cookie) = tap_first_factor(&t, &s, WINDOWS).await;
    let read = |cookie: Option<String>| {
        let (t, flow) = (&t, flow.clone());
        async move {
            call(
                t,
                Some(WINDOWS),
                cookie.as_deref(),
                reqwest::Method::GET,
                &format!("/signin/flows/{flow}"),
                None,
            )
            .await
        }
    };
    let without = read(None).await;
    assert_eq!(without.status, StatusCode::CONFLICT, "{:?}", without.body);
    assert_eq!(without.body["error"]["code"], "signInFlowSessionMismatch");
    assert_eq!(
        refusal(&read(Some(unknown_token())).await),
        refusal(&without)
    );
    for forged in forgeries(&cookie) {
        let r = read(Some(forged.clone())).await;
        assert_eq!(refusal(&r), refusal(&without), "{forged}");
    }
    let real = read(Some(cookie.clone())).await;
    assert_eq!(real.status, StatusCode::OK, "{:?}", real.body);
    assert_eq!(real.body["status"], "registrationNeeded");
    assert_eq!(real.body["flowId"], flow.as_str());
}
