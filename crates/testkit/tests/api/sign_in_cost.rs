//! What one complete passkey sign-in asks of the database, leg by leg, as the load generator
//! performs it (`crates/bench/src/signin.rs`): `/authorize` → passkey options → passkey
//! verify → token exchange. The counts come from the server's own store
//! (`SqlStore::statement_counts`), so a read repeated within a request or a write that leaves
//! its step's transaction fails here rather than only slowing the benchmark down.

use portcullis_store::StatementCounts;
use portcullis_testkit::authenticator::{Attestation, SoftwareAuthenticator, TEST_AAGUID};
use portcullis_testkit::fixtures::{
    PHISHING_RESISTANT, WINDOWS, add_member, allow_test_authenticator, call, create_group,
    create_policy, create_user, pass_session,
};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;

use crate::oidc::{App, Browser, authorize_url, pkce, public_app, query_param, redeem};

/// The counts of each leg of one sign-in.
#[derive(Debug, PartialEq, Eq)]
struct Legs {
    authorize: StatementCounts,
    options: StatementCounts,
    verify: StatementCounts,
    token: StatementCounts,
}

/// What a leg costs: `reads` statements outside any transaction, `writes` write transactions
/// holding `written` statements between them.
fn cost(reads: u64, writes: u64, written: u64) -> StatementCounts {
    StatementCounts {
        reads,
        write_transactions: writes,
        written_statements: written,
    }
}

/// One sign-in as the generator makes it: a browser with no session, PKCE, a discoverable
/// passkey, the code redeemed. The counts of each leg, and the browser (now with a session).
async fn sign_in(
    t: &TestServer,
    app: &App,
    phone: &mut SoftwareAuthenticator,
    n: usize,
) -> (Legs, Browser) {
    let counts = || t.store().statement_counts();
    let mut browser = Browser::new(t, WINDOWS);
    let challenge = pkce(&format!("sign-in-{n}"));
    let before = counts();
    let started = browser.get(&authorize_url(app, Some(&challenge), "")).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.text);
    let flow = query_param(&started.location.unwrap(), "flow").unwrap();
    let authorized = counts();
    let options = browser
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/passkey/options"),
            json!({}),
        )
        .await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.text);
    let optioned = counts();
    let assertion = phone.get(&options.body["options"]);
    let done = browser
        .step(
            &t.url,
            &format!("/signin/flows/{flow}/passkey/verify"),
            json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
        )
        .await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let verified = counts();
    let code = query_param(done.body["redirectUrl"].as_str().unwrap(), "code").unwrap();
    let (status, tokens) = redeem(t, app, &code, Some(&challenge.verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());
    let redeemed = counts();
    let legs = Legs {
        authorize: authorized - before,
        options: optioned - authorized,
        verify: verified - optioned,
        token: redeemed - verified,
    };
    (legs, browser)
}

/// A tenant shaped like the generator's: Joni with one passkey (registered before any policy
/// applies), in groups that policies target (DESIGN.md's phishing-resistant MFA and platform
/// block, and an MFA policy), the passkey policy's allow-list, a public client.
async fn tenant(t: &TestServer) -> (App, SoftwareAuthenticator) {
    let joni = create_user(t, "joni@contoso.com", "Joni Sherman").await;
    allow_test_authenticator(t).await;
    let session = pass_session(
        t,
        &joni,
        "joni@contoso.com",
        json!({"isUsableOnce": false, "lifetimeInMinutes": 60}),
    )
    .await;
    let options = call(
        t,
        None,
        Some(&session),
        reqwest::Method::POST,
        "/my/passkeys/options",
        Some(json!({"device": "this"})),
    )
    .await;
    assert_eq!(options.status, StatusCode::OK, "{:?}", options.body);
    let mut phone = SoftwareAuthenticator::new(&t.url, TEST_AAGUID, Attestation::None);
    let credential = phone.create(&options.body["options"]);
    let done = call(
        t,
        None,
        Some(&session),
        reqwest::Method::POST,
        "/my/passkeys",
        Some(json!({"ceremonyId": options.body["ceremonyId"], "name": "Joni's key", "credential": credential})),
    )
    .await;
    assert!(done.status.is_success(), "{:?}", done.body);
    let admins = create_group(t, "Admins").await;
    let everyone = create_group(t, "Everyone").await;
    add_member(t, &admins, &joni).await;
    add_member(t, &everyone, &admins).await;
    for (name, group, grant) in [
        (
            "Passkey test: enforcement",
            &admins,
            json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}),
        ),
        (
            "Everyone: MFA",
            &everyone,
            json!({"operator": "OR", "builtInControls": ["mfa"]}),
        ),
    ] {
        create_policy(
            t,
            json!({
                "displayName": name,
                "state": "enabled",
                "conditions": {
                    "users": {"includeGroups": [group]},
                    "applications": {"includeApplications": ["All"]},
                    "clientAppTypes": ["all"]
                },
                "grantControls": grant
            }),
        )
        .await;
    }
    create_policy(
        t,
        json!({
            "displayName": "Passkey test: unsupported platforms",
            "state": "enabled",
            "conditions": {
                "users": {"includeGroups": [admins]},
                "applications": {"includeApplications": ["All"]},
                "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows"]},
                "clientAppTypes": ["all"]
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }),
    )
    .await;
    (public_app(t).await, phone)
}

#[tokio::test]
async fn a_passkey_sign_in_costs_one_write_transaction_per_leg_and_no_read_twice() {
    let t = TestServer::start().await;
    let (app, mut phone) = tenant(&t).await;
    // The first sign-in fills each node's caches (compiled policies, people's groups) and
    // sweeps expired ceremonies; the ones after it are what the generator measures.
    sign_in(&t, &app, &mut phone, 0).await;
    let (second, mut browser) = sign_in(&t, &app, &mut phone, 1).await;
    let (third, _) = sign_in(&t, &app, &mut phone, 2).await;
    assert_eq!(
        second, third,
        "every sign-in after the first costs the same"
    );
    // Each leg that stores something does it in one transaction; nothing is read twice:
    // authorize reads the application once (it read it twice), verify reads the flow, the
    // ceremony, the passkey with its owner, the passkey policy and the revisions once for
    // both the policies and the person's groups (it read the owner apart and the revisions
    // twice), and the token endpoint reads the client, the code and the grant with its
    // person (it read the person apart). 14 reads per sign-in before, 10 now.
    assert_eq!(
        second,
        Legs {
            authorize: cost(1, 1, 1),
            options: cost(1, 1, 1),
            verify: cost(5, 1, 7),
            token: cost(3, 1, 2),
        }
    );

    // Single sign-on with the session the sign-in left: the session is read with its person's
    // account check in one statement, and the new flow, its outcome, log entry, grant and
    // code are one transaction (the flow was inserted in a transaction of its own before).
    let challenge = pkce("single-sign-on");
    let before = t.store().statement_counts();
    let signed_on = browser
        .get(&authorize_url(&app, Some(&challenge), ""))
        .await;
    let spent = t.store().statement_counts() - before;
    assert_eq!(
        signed_on.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_on.text
    );
    let back = signed_on.location.unwrap();
    let code = query_param(&back, "code").expect("a code without a sign-in");
    // The session, the application, the person, the revisions.
    assert_eq!(spent, cost(4, 1, 4), "{spent}");
    let (status, tokens) = redeem(&t, &app, &code, Some(&challenge.verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    t.stop().await;
}
