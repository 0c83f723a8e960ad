//! Every sign-in attempt writes a sign-in log entry in Graph's `signIn` shape — success or
//! failure, known account or not — and none holds a secret.

use portcullis_testkit::fixtures::WINDOWS;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

async fn pass_attempt(t: &TestServer, username: &str, pass: &str) -> StatusCode {
    t.http
        .post(format!("{}/auth/tap", t.url))
        .header("user-agent", WINDOWS)
        .json(&json!({"username": username, "temporaryAccessPass": pass}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn each_attempt_is_logged_and_filterable() {
    let t = TestServer::start().await;
    let joni = t
        .post(
            "/users",
            json!({"userPrincipalName": "Joni@contoso.com", "displayName": "Joni Sherman"}),
        )
        .await
        .body;
    let pass = t
        .post(
            &format!(
                "/users/{}/authentication/temporaryAccessPassMethods",
                joni["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await
        .body["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        pass_attempt(&t, "joni@contoso.com", "not-the-pass").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        pass_attempt(&t, "nobody@contoso.com", &pass).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        pass_attempt(&t, "joni@contoso.com", &pass).await,
        StatusCode::OK
    );

    let all = t.get("/auditLogs/signIns").await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
    let entries = all.body["value"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "one entry per attempt");
    let newest = &entries[0];
    assert_eq!(
        newest["userPrincipalName"], "joni@contoso.com",
        "lower case, as Entra logs it"
    );
    assert_eq!(newest["userId"], joni["id"]);
    assert_eq!(newest["status"]["errorCode"], 0);
    assert_eq!(newest["conditionalAccessStatus"], "notApplied");
    assert!(
        newest["deviceDetail"]["operatingSystem"]
            .as_str()
            .unwrap()
            .starts_with("Windows"),
        "{newest}"
    );
    assert!(
        newest["deviceDetail"]["browser"]
            .as_str()
            .unwrap()
            .starts_with("Edge"),
        "{newest}"
    );
    assert_eq!(newest["clientAppUsed"], "Browser");
    assert_eq!(
        newest["authenticationDetails"][0]["authenticationMethod"],
        "Temporary Access Pass"
    );
    assert_eq!(newest["authenticationDetails"][0]["succeeded"], true);
    assert!(newest["correlationId"].is_string() && newest["ipAddress"] == "127.0.0.1");
    let unknown = &entries[1];
    assert_eq!(
        (
            unknown["userPrincipalName"].as_str(),
            unknown["userId"].is_null()
        ),
        (Some("nobody@contoso.com"), true)
    );
    assert_eq!(unknown["status"]["errorCode"], 50126);
    let body = all.body.to_string();
    assert!(
        !body.contains(&pass) && !body.contains("not-the-pass"),
        "no secret in the log"
    );

    // Filters the admin API offers.
    let count = |v: &Value| v["value"].as_array().unwrap().len();
    assert_eq!(
        count(
            &t.get("/auditLogs/signIns?$filter=userPrincipalName eq 'JONI@contoso.com'")
                .await
                .body
        ),
        2
    );
    assert_eq!(
        count(
            &t.get("/auditLogs/signIns?$filter=status/errorCode eq 50126")
                .await
                .body
        ),
        2
    );
    assert_eq!(
        count(
            &t.get(&format!(
                "/auditLogs/signIns?$filter=userId eq '{}' and status/errorCode eq 0",
                joni["id"].as_str().unwrap()
            ))
            .await
            .body
        ),
        1
    );
    assert_eq!(count(&t.get("/auditLogs/signIns?$filter=conditionalAccessStatus eq 'notApplied' and createdDateTime ge 2020-01-01T00:00:00Z").await.body), 3);
    assert_eq!(
        count(
            &t.get("/auditLogs/signIns?$filter=createdDateTime le 2020-01-01T00:00:00Z")
                .await
                .body
        ),
        0
    );
    let paged = t.get("/auditLogs/signIns?$top=2").await;
    assert_eq!(count(&paged.body), 2);
    assert!(paged.body["@odata.nextLink"].is_string());
    let one = t
        .get(&format!(
            "/auditLogs/signIns/{}",
            newest["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one.body["id"], newest["id"]);
    assert_eq!(
        t.get("/auditLogs/signIns?$filter=status/errorCode eq 'x'")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Entries are kept for the retention period (30 days by default), then purged.
    t.clock.advance(time::Duration::days(29));
    assert_eq!(t.purge_sign_in_logs().await, 0);
    t.clock.advance(time::Duration::days(2));
    assert_eq!(t.purge_sign_in_logs().await, 3);
    assert_eq!(count(&t.get("/auditLogs/signIns").await.body), 0);
    t.stop().await;
}

/// The compact log answers as the previous format did. The same sign-ins — 120 of them under
/// 240 policies, decided by the engine — are written compact to one server and, to another, as
/// the previous format wrote them (the whole entry as JSON, its policies listed by the code that
/// filled that JSON). Every way the API reads the log — a page of 100, filters, paging by
/// `@odata.nextLink`, `$select`, one entry by id — gives the same JSON on both.
#[tokio::test]
async fn the_compact_log_answers_as_the_previous_format_did() {
    use portcullis_core::store::Change;
    use portcullis_core::store::prelude::*;
    use portcullis_store::testing::{sample_policy_set, sample_sign_in_both_ways};

    let compact = TestServer::start().await;
    let previous = TestServer::start().await;
    let set = sample_policy_set(240);
    // Within the log's retention of the servers' clocks, so that no purge takes any. The
    // clock keeps milliseconds, as the store does.
    let now = time::OffsetDateTime::now_utc();
    let start = now
        - time::Duration::hours(1)
        - time::Duration::nanoseconds(i64::from(now.nanosecond() % 1_000_000));
    let mut changes = Vec::new();
    let mut ids = Vec::new();
    for n in 0..120 {
        let (new, old) =
            sample_sign_in_both_ways(&set, n, start + time::Duration::seconds(n as i64 / 3));
        ids.push(new.id);
        previous
            .store()
            .insert_previous_format_sign_in(&old)
            .await
            .unwrap();
        changes.push(Change::InsertSignInLogEntry(Box::new(new)));
    }
    compact.store().commit(changes, None).await.unwrap();
    assert_eq!(
        compact
            .store()
            .sign_in_policy_revision_rows()
            .await
            .unwrap(),
        1,
        "one policy set: one revision, stored once"
    );

    // What differs between the two servers is only their address.
    let answer = |t: &TestServer, body: Value| {
        let text = body.to_string().replace(&t.url, "SERVER");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let first = compact.get("/auditLogs/signIns?$top=100").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let page = first.body["value"].as_array().unwrap();
    assert_eq!(page.len(), 100);
    assert!(page.iter().all(|e| {
        e["appliedConditionalAccessPolicies"]
            .as_array()
            .unwrap()
            .len()
            == 240
    }));
    // The comparison means something only if the sample holds every kind of result.
    let results: std::collections::BTreeSet<String> = page
        .iter()
        .flat_map(|e| {
            e["appliedConditionalAccessPolicies"]
                .as_array()
                .unwrap()
                .iter()
        })
        .map(|p| p["result"].as_str().unwrap().to_owned())
        .collect();
    for result in [
        "success",
        "failure",
        "notApplied",
        "notEnabled",
        "reportOnlyFailure",
    ] {
        assert!(results.contains(result), "no {result} among {results:?}");
    }

    let mut paths = vec![
        "/auditLogs/signIns?$top=100".to_owned(),
        "/auditLogs/signIns?$filter=status/errorCode eq 53003".to_owned(),
        "/auditLogs/signIns?$filter=userPrincipalName eq 'person7@contoso.example'".to_owned(),
        "/auditLogs/signIns?$top=5&$select=id,status,appliedConditionalAccessPolicies".to_owned(),
        format!("/auditLogs/signIns/{}", ids[17]),
        format!("/auditLogs/signIns/{}", ids[118]),
    ];
    // Paging: follow nextLink on the compact server, ask the same of the previous one.
    let mut next = Some("/auditLogs/signIns?$top=33".to_owned());
    while let Some(path) = next.take() {
        let reply = compact.get(&path).await;
        next = reply.body["@odata.nextLink"]
            .as_str()
            .map(|link| link.replace(&format!("{}/graph/v1.0", compact.url), ""));
        paths.push(path);
    }
    assert!(paths.len() >= 10, "paging walked four pages");
    for path in &paths {
        let (a, b) = (compact.get(path).await, previous.get(path).await);
        assert_eq!(a.status, StatusCode::OK, "{path}: {:?}", a.body);
        assert_eq!(b.status, StatusCode::OK, "{path}: {:?}", b.body);
        let (a, b) = (answer(&compact, a.body), answer(&previous, b.body));
        if a != b {
            let (x, y) = (a["value"].as_array(), b["value"].as_array());
            let first = x
                .zip(y)
                .and_then(|(x, y)| x.iter().zip(y).find(|(p, q)| p != q));
            panic!(
                "{path} answers differently in the compact format: {} against {}; first differing entry: {:?}",
                a.get("@odata.nextLink").cloned().unwrap_or_default(),
                b.get("@odata.nextLink").cloned().unwrap_or_default(),
                first.map(|(p, q)| (p["id"].clone(), q["id"].clone()))
            );
        }
    }
    compact.check_invariants().await;
    previous.check_invariants().await;
}
