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
