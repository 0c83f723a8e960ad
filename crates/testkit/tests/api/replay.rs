//! Replay of the sign-in log against candidate policies (`…/conditionalAccess/replay`), the
//! report-only summary (`…/conditionalAccess/reportOnlySummary`) and `portcullis ca replay`,
//! on a log seeded with real sign-ins through `/signin/flows`.

use portcullis_testkit::fixtures::{
    PHISHING_RESISTANT, WINDOWS, add_member, app_with_permissions, call, create_group,
    create_policy, id, issue_pass, user,
};
use portcullis_testkit::{Reply, StatusCode, TestServer};
use serde_json::{Value, json};

const REPLAY: &str = "/identity/conditionalAccess/replay";
const SUMMARY: &str = "/identity/conditionalAccess/reportOnlySummary";

/// The seeded tenant: Alice and Bob (in Finance) and Carol; Payroll and Wiki; Carol blocked
/// from Wiki by an enforced policy; two report-only policies.
struct Tenant {
    alice: String,
    bob: String,
    carol: String,
    finance: String,
    payroll: String,
    wiki: String,
    carol_wiki_block: String,
    report_only_payroll_block: String,
    report_only_finance_strength: String,
}

fn policy(name: &str, state: &str, users: Value, apps: Value, grant: Value) -> Value {
    json!({
        "displayName": name,
        "state": state,
        "conditions": {
            "users": users,
            "applications": {"includeApplications": apps},
            "clientAppTypes": ["all"]
        },
        "grantControls": grant
    })
}

fn block() -> Value {
    json!({"operator": "OR", "builtInControls": ["block"]})
}

fn strength(id: &str) -> Value {
    json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": id}})
}

pub(crate) async fn app(t: &TestServer, name: &str) -> String {
    let r = t.post("/applications", json!({"displayName": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["appId"].as_str().unwrap().to_string()
}

/// One sign-in to `app_id` through a flow with a fresh pass, from Windows: the flow's status.
pub(crate) async fn sign_in(t: &TestServer, app_id: &str, upn: &str, user_id: &str) -> String {
    let post = |path: String, body: Value| async move {
        call(
            t,
            Some(WINDOWS),
            None,
            reqwest::Method::POST,
            &path,
            Some(body),
        )
        .await
    };
    let started = post("/signin/flows".into(), json!({"clientId": app_id})).await;
    let flow = started.body["flowId"].as_str().expect("a flow").to_string();
    let identified = post(
        format!("/signin/flows/{flow}/identify"),
        json!({"username": upn}),
    )
    .await;
    assert_eq!(
        identified.body["status"], "firstFactor",
        "{:?}",
        identified.body
    );
    let pass = issue_pass(t, user_id, json!({"isUsableOnce": true})).await;
    let done = post(
        format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": pass}),
    )
    .await;
    done.body["status"].as_str().unwrap_or_default().to_string()
}

/// A wrong pass in a flow: logged, but Conditional Access never decided it.
async fn wrong_pass(t: &TestServer, app_id: &str, upn: &str) {
    let post = |path: String, body: Value| async move {
        call(
            t,
            Some(WINDOWS),
            None,
            reqwest::Method::POST,
            &path,
            Some(body),
        )
        .await
    };
    let started = post("/signin/flows".into(), json!({"clientId": app_id})).await;
    let flow = started.body["flowId"].as_str().expect("a flow").to_string();
    post(
        format!("/signin/flows/{flow}/identify"),
        json!({"username": upn}),
    )
    .await;
    let refused = post(
        format!("/signin/flows/{flow}/tap"),
        json!({"temporaryAccessPass": "not-the-pass-1234"}),
    )
    .await;
    assert!(refused.status.is_client_error(), "{:?}", refused.body);
}

/// Builds the tenant and signs in: Alice and Bob to Payroll and Wiki, Carol to Wiki (blocked),
/// and one wrong pass of Carol's on Payroll. Six entries, five decided by Conditional Access.
async fn seeded(t: &TestServer) -> Tenant {
    let alice = user(t, "alice@contoso.com").await;
    let bob = user(t, "bob@contoso.com").await;
    let carol = user(t, "carol@contoso.com").await;
    let finance = create_group(t, "Finance").await;
    add_member(t, &finance, &bob).await;
    let payroll = app(t, "Payroll").await;
    let wiki = app(t, "Wiki").await;
    let carol_wiki_block = id(&create_policy(
        t,
        policy(
            "Carol: no Wiki",
            "enabled",
            json!({"includeUsers": [carol]}),
            json!([wiki]),
            block(),
        ),
    )
    .await);
    let report_only_payroll_block = id(&create_policy(
        t,
        policy(
            "Report-only: block Payroll",
            "enabledForReportingButNotEnforced",
            json!({"includeUsers": ["All"]}),
            json!([payroll]),
            block(),
        ),
    )
    .await);
    let report_only_finance_strength = id(&create_policy(
        t,
        policy(
            "Report-only: phishing-resistant for Finance",
            "enabledForReportingButNotEnforced",
            json!({"includeGroups": [finance]}),
            json!(["All"]),
            strength(PHISHING_RESISTANT),
        ),
    )
    .await);
    for (app_id, upn, user_id, expected) in [
        (&payroll, "alice@contoso.com", &alice, "granted"),
        (&wiki, "alice@contoso.com", &alice, "granted"),
        (&payroll, "bob@contoso.com", &bob, "granted"),
        (&wiki, "bob@contoso.com", &bob, "granted"),
        (&wiki, "carol@contoso.com", &carol, "blocked"),
    ] {
        let status = sign_in(t, app_id, upn, user_id).await;
        // A flow from /signin/flows without /authorize ends granted, not completed.
        assert!(
            status == expected || (expected == "granted" && status == "completed"),
            "{upn} to {app_id}: {status}"
        );
    }
    wrong_pass(t, &payroll, "carol@contoso.com").await;
    Tenant {
        alice,
        bob,
        carol,
        finance,
        payroll,
        wiki,
        carol_wiki_block,
        report_only_payroll_block,
        report_only_finance_strength,
    }
}

async fn replay(t: &TestServer, body: Value) -> Value {
    let r = t.post(REPLAY, body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// The listed sign-ins as (user, app, before, after), in log order.
fn flips(report: &Value) -> Vec<(String, String, String, String)> {
    report["signIns"]
        .as_array()
        .expect("signIns")
        .iter()
        .map(|s| {
            (
                s["userPrincipalName"].as_str().unwrap().to_string(),
                s["appId"].as_str().unwrap().to_string(),
                s["before"].as_str().unwrap().to_string(),
                s["after"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn tally<'a>(report: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t[key] == value)
        .unwrap_or_else(|| panic!("{value} in {list}: {report}"))
}

fn flip(upn: &str, app: &str, before: &str, after: &str) -> (String, String, String, String) {
    (upn.into(), app.into(), before.into(), after.into())
}

#[tokio::test]
async fn blocking_one_application_lists_exactly_its_sign_ins_with_counts() {
    let t = TestServer::start().await;
    let s = seeded(&t).await;
    let candidate = policy(
        "Block Payroll",
        "enabled",
        json!({"includeUsers": ["All"]}),
        json!([s.payroll]),
        block(),
    );
    let report = replay(&t, json!({"changes": [{"policy": candidate}]})).await;
    assert_eq!(report["evaluated"], 5, "{report}");
    assert_eq!(report["skipped"], 1, "the wrong pass has no context");
    assert_eq!(report["changed"], 2);
    assert_eq!(report["candidatePolicies"], 4);
    assert_eq!(
        flips(&report),
        vec![
            flip("alice@contoso.com", &s.payroll, "grant", "block"),
            flip("bob@contoso.com", &s.payroll, "grant", "block"),
        ]
    );
    let listed = &report["signIns"][0];
    assert_eq!(listed["userId"], s.alice.as_str());
    assert_eq!(listed["policies"][0]["displayName"], "Block Payroll");
    assert!(listed["createdDateTime"].as_str().unwrap().ends_with('Z'));
    let payroll = tally(&report, "byApplication", "appId", &s.payroll);
    assert_eq!(
        (&payroll["changed"], &payroll["evaluated"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(payroll["nowBlocked"], 2);
    assert_eq!(
        report["byApplication"].as_array().unwrap().len(),
        1,
        "Wiki is unchanged"
    );
    for upn in ["alice@contoso.com", "bob@contoso.com"] {
        let person = tally(&report, "byUser", "userPrincipalName", upn);
        assert_eq!(
            (&person["changed"], &person["evaluated"]),
            (&json!(1), &json!(2))
        );
    }
    assert_eq!(
        report["byUser"].as_array().unwrap().len(),
        2,
        "Carol is unchanged"
    );

    // The same candidate as a whole set (the tenant's three and the new one) says the same.
    let mut whole: Vec<Value> = t.get("/identity/conditionalAccess/policies").await.body["value"]
        .as_array()
        .unwrap()
        .clone();
    whole.push(candidate);
    let as_set = replay(&t, json!({"policies": whole})).await;
    assert_eq!(flips(&as_set), flips(&report));
    // And replay changed nothing: the tenant still has three policies.
    let after = t.get("/identity/conditionalAccess/policies").await;
    assert_eq!(after.body["value"].as_array().unwrap().len(), 3);
    t.stop().await;
}

#[tokio::test]
async fn a_stronger_method_for_a_group_challenges_its_members_as_they_were_then() {
    let t = TestServer::start().await;
    let s = seeded(&t).await;
    // Alice joins Finance after she signed in: replay uses memberships as they were, so her
    // sign-ins stay as they were.
    add_member(&t, &s.finance, &s.alice).await;
    let mfa_for_finance = |grant: Value| {
        json!({"changes": [{"policy": policy(
            "Finance: stronger sign-in",
            "enabled",
            json!({"includeGroups": [s.finance]}),
            json!(["All"]),
            grant,
        )}]})
    };
    // A pass meets Multifactor authentication: nothing changes.
    let mfa = replay(
        &t,
        mfa_for_finance(json!({"operator": "OR", "builtInControls": ["mfa"]})),
    )
    .await;
    assert_eq!((&mfa["evaluated"], &mfa["changed"]), (&json!(5), &json!(0)));
    assert_eq!(mfa["signIns"], json!([]));
    // Phishing-resistant MFA it does not meet: Bob's two sign-ins now ask for more.
    let strong = replay(&t, mfa_for_finance(strength(PHISHING_RESISTANT))).await;
    assert_eq!(
        flips(&strong),
        vec![
            flip("bob@contoso.com", &s.payroll, "grant", "requirements"),
            flip("bob@contoso.com", &s.wiki, "grant", "requirements"),
        ]
    );
    let bob = tally(&strong, "byUser", "userPrincipalName", "bob@contoso.com");
    assert_eq!(
        (&bob["changed"], &bob["nowChallenged"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(bob["userId"], s.bob.as_str());
    assert_eq!(
        strong["signIns"][0]["policies"][0]["displayName"],
        "Finance: stronger sign-in"
    );
    t.stop().await;
}

#[tokio::test]
async fn deleting_a_block_grants_what_it_blocked_and_the_window_bounds_the_log() {
    let t = TestServer::start().await;
    let s = seeded(&t).await;
    let deleted = replay(
        &t,
        json!({"changes": [{"id": s.carol_wiki_block, "policy": null}]}),
    )
    .await;
    assert_eq!(
        flips(&deleted),
        vec![flip("carol@contoso.com", &s.wiki, "block", "grant")]
    );
    assert_eq!(deleted["signIns"][0]["policies"], json!([]));
    assert_eq!(deleted["signIns"][0]["userId"], s.carol.as_str());
    let carol = tally(&deleted, "byUser", "userPrincipalName", "carol@contoso.com");
    assert_eq!(carol["nowGranted"], 1);

    // The tenant as it is decides as it did.
    let same = replay(&t, json!({})).await;
    assert_eq!(
        (&same["evaluated"], &same["changed"]),
        (&json!(5), &json!(0))
    );

    // Eight days on, the default week holds none of it; thirty days do.
    t.clock.advance(time::Duration::days(8));
    let week = replay(
        &t,
        json!({"changes": [{"id": s.carol_wiki_block, "policy": null}]}),
    )
    .await;
    assert_eq!(
        (&week["evaluated"], &week["skipped"]),
        (&json!(0), &json!(0))
    );
    let month = replay(
        &t,
        json!({"days": 30, "changes": [{"id": s.carol_wiki_block, "policy": null}]}),
    )
    .await;
    assert_eq!(
        (&month["evaluated"], &month["changed"]),
        (&json!(5), &json!(1))
    );
    // `top` bounds the list, never the counts.
    let candidate = policy(
        "Block everyone",
        "enabled",
        json!({"includeUsers": ["All"]}),
        json!(["All"]),
        block(),
    );
    let capped = replay(
        &t,
        json!({"days": 30, "top": 1, "changes": [{"policy": candidate}]}),
    )
    .await;
    assert_eq!(capped["changed"], 4, "all but Carol's blocked Wiki sign-in");
    assert_eq!(capped["signIns"].as_array().unwrap().len(), 1);
    assert_eq!(capped["signInsTruncated"], true);
    t.stop().await;
}

#[tokio::test]
async fn bad_candidates_are_refused_naming_the_member() {
    let t = TestServer::start().await;
    let s = seeded(&t).await;
    for (body, target) in [
        (
            json!({"changes": [{"id": "no-such-policy", "policy": null}]}),
            "changes[0].id",
        ),
        (
            json!({"policies": [{"state": "enabled"}], "changes": []}),
            "changes",
        ),
        (
            json!({"policies": [policy("x", "sometimes", json!({"includeUsers": ["All"]}), json!(["All"]), block())]}),
            "policies[0].state",
        ),
        (json!({"days": 0}), "days"),
        (json!({"from": "last week"}), "from"),
        (json!({"window": 7}), "window"),
    ] {
        let r = t.post(REPLAY, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(r.error_target(), Some(target), "{body}: {:?}", r.body);
    }
    let r = t.get(&format!("{SUMMARY}?since=monday")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.error_target(), Some("since"));
    // Nothing was changed by any of it.
    let policies = t.get("/identity/conditionalAccess/policies").await;
    assert_eq!(policies.body["value"].as_array().unwrap().len(), 3);
    let _ = s;
    t.stop().await;
}

#[tokio::test]
async fn the_report_only_summary_counts_what_each_policy_would_have_done() {
    let t = TestServer::start().await;
    let s = seeded(&t).await;
    let r = t.get(SUMMARY).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["evaluated"], 5, "{:?}", r.body);
    let find = |policy_id: &str| -> Value {
        r.body["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == policy_id)
            .cloned()
            .unwrap_or_else(|| panic!("{policy_id} in {:?}", r.body))
    };
    let payroll = find(&s.report_only_payroll_block);
    assert_eq!(payroll["displayName"], "Report-only: block Payroll");
    assert_eq!(payroll["state"], "enabledForReportingButNotEnforced");
    assert_eq!(
        (
            &payroll["wouldBlock"],
            &payroll["wouldChallenge"],
            &payroll["notApplied"]
        ),
        (&json!(2), &json!(0), &json!(3))
    );
    let finance = find(&s.report_only_finance_strength);
    assert_eq!(
        (
            &finance["wouldBlock"],
            &finance["wouldChallenge"],
            &finance["notApplied"]
        ),
        (&json!(0), &json!(2), &json!(3))
    );
    assert_eq!(finance["satisfied"], 0);
    assert!(
        r.body["policies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != s.carol_wiki_block.as_str()),
        "an enforced policy is not in the summary"
    );
    // A window before any sign-in counts none, and still lists the report-only policies.
    let empty = t
        .get(&format!(
            "{SUMMARY}?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"
        ))
        .await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(empty.body["evaluated"], 0);
    assert_eq!(empty.body["policies"].as_array().unwrap().len(), 2);
    let _ = (&s.alice, &s.bob);
    t.stop().await;
}

#[tokio::test]
async fn replay_needs_both_policy_and_sign_in_log_reading() {
    let t = TestServer::start().await;
    let _ = seeded(&t).await;
    let refused: [&[&str]; 4] = [
        &["AuditLog.Read.All"],
        &["Policy.Read.All"],
        &["Policy.ReadWrite.ConditionalAccess", "User.Read.All"],
        &["Directory.Read.All"],
    ];
    for (index, permissions) in refused.iter().enumerate() {
        let (_, token) = app_with_permissions(&t, &format!("Refused {index}"), permissions).await;
        for (method, path, body) in [
            (reqwest::Method::POST, REPLAY, Some(json!({}))),
            (reqwest::Method::GET, SUMMARY, None),
        ] {
            let r: Reply = t.graph_as(&token, method, path, body).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{permissions:?} {path}: {:?}",
                r.body
            );
        }
    }
    let (_, token) =
        app_with_permissions(&t, "Reader", &["Policy.Read.All", "AuditLog.Read.All"]).await;
    let r = t
        .graph_as(&token, reqwest::Method::POST, REPLAY, Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = t
        .graph_as(&token, reqwest::Method::GET, SUMMARY, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn ca_replay_on_the_command_line_reads_policy_files() {
    let t = TestServer::start().await;
    let s = seeded(&t).await;
    let admin = super::cli::Admin::new(&t);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("block-payroll.json");
    // As Entra exports: UTF-16 with a byte-order mark.
    let text = policy(
        "Block Payroll",
        "enabled",
        json!({"includeUsers": ["All"]}),
        json!([s.payroll]),
        block(),
    )
    .to_string();
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&file, bytes).unwrap();
    let path = file.to_str().unwrap();

    let report = admin.json(&["ca", "replay", "--policies", path]).await;
    assert_eq!(
        (&report["evaluated"], &report["changed"]),
        (&json!(5), &json!(2))
    );
    assert_eq!(
        flips(&report),
        vec![
            flip("alice@contoso.com", &s.payroll, "grant", "block"),
            flip("bob@contoso.com", &s.payroll, "grant", "block"),
        ]
    );
    let table = admin
        .ok(&["ca", "replay", "--policies", path, "--days", "2"])
        .await;
    assert!(table.starts_with("Replayed 5 sign-ins"), "{table}");
    assert!(table.contains("2 would change; 1 skipped"), "{table}");
    assert!(
        table.contains("alice@contoso.com") && table.contains("Block Payroll"),
        "{table}"
    );
    let deleted = admin
        .json(&["ca", "replay", "--delete", &s.carol_wiki_block])
        .await;
    assert_eq!(
        flips(&deleted),
        vec![flip("carol@contoso.com", &s.wiki, "block", "grant")]
    );
    let failure = admin
        .fails(&["ca", "replay", "--delete", "no-such-policy"])
        .await
        .to_string();
    assert!(failure.contains("no-such-policy"), "{failure}");
    t.stop().await;
}
