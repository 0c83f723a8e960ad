//! Events out: sign-in and audit entries as JSON lines to a file and to a signed webhook that
//! is retried, and neither a dead nor a hanging receiver slows a sign-in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use portcullis_testkit::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "events-test-shared-secret";

/// The JSON lines of `path` once `done` says they are all there (or after ten seconds).
async fn lines_when(path: &std::path::Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect();
        if done(&lines) || tokio::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether an entry is about the object `id` (an audit entry naming it as a target).
fn targets(line: &Value, id: &str) -> bool {
    line["data"]["targetResources"]
        .as_array()
        .is_some_and(|targets| targets.iter().any(|t| t["id"] == id))
}

#[tokio::test]
async fn the_events_file_gets_one_line_per_sign_in_and_per_audit_change_in_order() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.jsonl");
    let file = path.to_str().unwrap().to_string();
    let t = TestServer::start_with(|c| c.events_file = Some(file)).await;
    let created = t
        .post(
            "/users",
            json!({"displayName": "Eve Events", "userPrincipalName": "eve.events@portcullis.local", "accountEnabled": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let admin = t.bootstrap.admin_user_principal_name.clone();
    let (refused, _) = t.sign_in_with_pass(&t.url, &admin, "not-the-pass").await;
    assert!(!refused.status.is_success());
    let (signed_in, _) = t.sign_in_with_pass(&t.url, &admin, &t.bootstrap_pass).await;
    assert!(signed_in.status.is_success(), "{:?}", signed_in.body);
    let updated = t
        .patch(
            &format!("/users/{id}"),
            json!({"displayName": "Eve Renamed"}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT);

    let ours = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["type"] == "signIn" || targets(l, &id))
            .cloned()
            .collect()
    };
    let lines = lines_when(&path, |lines| ours(lines).len() >= 4).await;
    let ours = ours(&lines);
    let summary: Vec<(String, String)> = ours
        .iter()
        .map(|l| {
            let what = if l["type"] == "signIn" {
                l["data"]["status"]["errorCode"].to_string()
            } else {
                l["data"]["activityDisplayName"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            (l["type"].as_str().unwrap().to_string(), what)
        })
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!(summary[0], ("directoryAudit".into(), "Add user".into()));
    assert_eq!(summary[1].0, "signIn");
    assert_ne!(summary[1].1, "0", "the wrong pass is logged as a failure");
    assert_eq!(summary[2], ("signIn".into(), "0".into()));
    assert_eq!(summary[3], ("directoryAudit".into(), "Update user".into()));
    for line in &ours {
        assert_eq!(
            line["id"], line["data"]["id"],
            "the envelope names its entry"
        );
        assert_eq!(line["data"]["id"].as_str().map(str::len), Some(36));
    }
    assert_eq!(
        ours[2]["data"]["userPrincipalName"],
        admin.to_lowercase(),
        "the signIn is Graph's signIn"
    );
    // Each entry once: nothing written twice.
    let mut ids: Vec<&Value> = lines.iter().map(|l| &l["id"]).collect();
    ids.sort_by_key(|v| v.to_string());
    ids.dedup();
    assert_eq!(ids.len(), lines.len());
    t.stop().await;
}

/// What a receiver saw: each call's signature header and body.
type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver on a port of its own, answering each call with what `answer` says for its
/// number (0 for the first); `None` never answers.
async fn receiver(answer: fn(usize) -> Option<StatusCode>) -> (String, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let n = {
                    let mut calls = seen.lock().unwrap();
                    let signature = headers
                        .get("portcullis-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    calls.push((signature, body.to_vec()));
                    calls.len() - 1
                };
                match answer(n) {
                    Some(status) => status,
                    None => std::future::pending().await,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// A receiver's check: `t=<seconds>,v1=<hex>` where hex is HMAC-SHA256 over `<t>.<body>`.
fn verified(header: &str, body: &[u8], secret: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(seconds) = t.parse::<i64>() else {
        return false;
    };
    // A receiver refuses old signatures, so a captured body cannot be replayed later.
    if (time::OffsetDateTime::now_utc().unix_timestamp() - seconds).abs() > 300 {
        return false;
    }
    let Ok(tag) = hex::decode(v1) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    ring::hmac::verify(&key, &signed, &tag).is_ok()
}

#[tokio::test]
async fn the_webhook_gets_signed_batches_and_a_failed_call_is_retried() {
    let (url, calls) = receiver(|n| {
        Some(if n == 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        })
    })
    .await;
    let t = TestServer::start_with(|c| {
        c.events_webhook_url = Some(url);
        c.events_webhook_secret = Some(SECRET.to_string());
    })
    .await;
    let created = t
        .post(
            "/users",
            json!({"displayName": "Wes Webhook", "userPrincipalName": "wes@portcullis.local", "accountEnabled": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_string();
    let delivered = |calls: &[(String, Vec<u8>)]| {
        calls.iter().skip(1).any(|(_, body)| {
            String::from_utf8_lossy(body)
                .lines()
                .any(|line| targets(&serde_json::from_str(line).unwrap(), &id))
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !delivered(&calls.lock().unwrap()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = calls.lock().unwrap().clone();
    assert!(
        delivered(&calls),
        "{} calls, none after the first carried the change",
        calls.len()
    );
    assert!(calls.len() >= 2);
    // The first call was answered 500; the second carries the same batch again.
    assert_eq!(
        calls[0].1, calls[1].1,
        "the failed batch is retried as it was"
    );
    for (signature, body) in &calls {
        assert!(verified(signature, body, SECRET), "{signature}");
        assert!(!verified(signature, body, "another-secret-entirely"));
        let mut tampered = body.clone();
        tampered.extend_from_slice(b"{}\n");
        assert!(!verified(signature, &tampered, SECRET));
    }
    t.stop().await;
}

/// The sum of `portcullis_events_dropped_total` in the server's `/metrics`.
async fn dropped(t: &TestServer) -> u64 {
    let text = t
        .http
        .get(format!("{}/metrics", t.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("portcullis_events_dropped_total{"))
        .filter(|line| line.contains("sink=\"webhook\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_webhook_that_never_answers_slows_no_sign_in_and_the_queue_stays_bounded() {
    let (url, calls) = receiver(|_| None).await;
    let t = TestServer::start_with(|c| {
        c.events_webhook_url = Some(url);
        c.events_webhook_secret = Some(SECRET.to_string());
        c.events_queue_capacity = 2;
    })
    .await;
    let before = dropped(&t).await;
    let admin = t.bootstrap.admin_user_principal_name.clone();
    let signed_in = tokio::time::timeout(
        Duration::from_secs(5),
        t.sign_in_with_pass(&t.url, &admin, &t.bootstrap_pass),
    )
    .await
    .expect("the sign-in completes while the receiver hangs");
    assert!(signed_in.0.status.is_success(), "{:?}", signed_in.0.body);
    let token = t.admin_token().await;
    for n in 0..6 {
        let created = tokio::time::timeout(
            Duration::from_secs(5),
            t.graph_as(
                &token,
                Method::POST,
                "/users",
                Some(json!({"displayName": format!("Queued {n}"), "userPrincipalName": format!("queued{n}@portcullis.local"), "accountEnabled": true})),
            ),
        )
        .await
        .expect("an audited change completes while the receiver hangs");
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while calls.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !calls.lock().unwrap().is_empty(),
        "the receiver was called (and hangs)"
    );
    // Seven entries (a sign-in, six audits) behind one hanging call that took at most two of
    // them off the queue, and two places: at least three dropped, and counted.
    let after = dropped(&t).await;
    assert!(after >= before + 3, "dropped {before} then {after}");
    t.stop().await;
}
