//! Smart lockout under bursts and from shared addresses: a burst of wrong passes spread over two
//! nodes is cut off at the account's threshold before the passes are compared (the sign-in log
//! says how many were), so the right pass sent after it is refused; and a source address locked
//! by guesses at other accounts still lets in a person who has signed in from it before, while
//! it refuses one it has never seen and that person's own lock still holds there.

use std::net::IpAddr;

use portcullis_core::methods::lockout::{ACCOUNT_THRESHOLD, SOURCE_THRESHOLD};
use portcullis_testkit::fixtures::{issue_pass, user};
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

/// Signs in at `base_url` with a pass through `http` (whose source address the server sees):
/// the status and the sign-in error code (0 for a success).
async fn pass_sign_in(
    http: &reqwest::Client,
    base_url: &str,
    username: &str,
    pass: &str,
) -> (StatusCode, u64) {
    let response = http
        .post(format!("{base_url}/auth/tap"))
        .json(&json!({"username": username, "temporaryAccessPass": pass}))
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["errorCode"].as_u64().unwrap_or_default(),
    )
}

/// A client whose connections leave from `address` (any of 127.0.0.0/8 reaches the loopback
/// server), so the server sees that source address.
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .expect("a client")
}

/// The server's address by number, so that a client bound to an IPv4 source connects over IPv4.
fn by_number(url: &str) -> String {
    url.replace("localhost", "127.0.0.1")
}

/// The sign-in log entries with `code` for `upn`.
async fn logged(t: &TestServer, upn: &str, code: u64) -> usize {
    let r = t
        .get(&format!(
            "/auditLogs/signIns?$filter=userPrincipalName eq '{upn}' and status/errorCode eq {code}&$top=999"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["@odata.nextLink"].is_null(), "one page holds them");
    r.body["value"].as_array().expect("a list").len()
}

/// 100 wrong passes at once, half to each of two nodes, then the right one: at most the
/// threshold's number are compared (9 answered "wrong", the 10th compared and answered with
/// the lock it brought), every other is refused as locked without a comparison, and so is the
/// right pass after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_across_two_nodes_is_cut_off_before_comparing() {
    let t = TestServer::start().await;
    let joni = user(&t, "joni@contoso.com").await;
    let pass = issue_pass(&t, &joni, json!({"isUsableOnce": false})).await;
    let (second, second_url) = t.second_node().await.unwrap();
    let burst: Vec<_> = (0..100)
        .map(|i| {
            let http = t.http.clone();
            let url = if i % 2 == 0 {
                t.url.clone()
            } else {
                second_url.clone()
            };
            tokio::spawn(async move {
                pass_sign_in(
                    &http,
                    &url,
                    "joni@contoso.com",
                    &format!("wrong-{i:03}-pass"),
                )
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in burst {
        answers.push(guess.await.unwrap());
    }
    let right = pass_sign_in(&t.http, &second_url, "joni@contoso.com", &pass).await;
    assert_eq!(
        right,
        (StatusCode::TOO_MANY_REQUESTS, 50053),
        "the right pass after the burst"
    );

    let wrong = answers.iter().filter(|a| a.1 == 50126).count();
    let locked = answers.iter().filter(|a| a.1 == 50053).count();
    assert_eq!(wrong + locked, 100, "{answers:?}");
    // Only the slot that reached the threshold answers 50053 after comparing, so the guesses
    // compared are those answered 50126 and that one.
    let compared = wrong + 1;
    eprintln!(
        "burst of 100 across two nodes: {compared} compared, {} refused",
        100 - compared
    );
    assert!(
        compared <= ACCOUNT_THRESHOLD as usize,
        "{compared} guesses were compared, more than the threshold"
    );
    assert_eq!(wrong, ACCOUNT_THRESHOLD as usize - 1, "{answers:?}");
    // The sign-in log, written by both nodes, agrees: 101 attempts, the same 9 wrong.
    assert_eq!(logged(&t, "joni@contoso.com", 50126).await, wrong);
    assert_eq!(logged(&t, "joni@contoso.com", 50053).await, locked + 1);

    // The lock ends a minute after the last guess compared; then the right pass works, on
    // either node.
    t.clock.advance(time::Duration::seconds(61));
    let later = pass_sign_in(&t.http, &t.url, "joni@contoso.com", &pass).await;
    assert_eq!(later, (StatusCode::OK, 0));
    second.shutdown().await.unwrap();
    t.stop().await;
}

/// Guesses at other accounts from one address lock that address; a colleague who signed in
/// from it before still gets in there with the right pass, a person never seen there does not
/// (but does from elsewhere), and the colleague's own account lock still holds there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_source_still_admits_those_familiar_with_it() {
    let t = TestServer::start().await;
    let office = client_from([127, 0, 0, 2]);
    let elsewhere = client_from([127, 0, 0, 3]);
    let url = by_number(&t.url);
    let grady = user(&t, "grady@contoso.com").await;
    let grady_pass = issue_pass(&t, &grady, json!({"isUsableOnce": false})).await;
    let lee = user(&t, "lee@contoso.com").await;
    let lee_pass = issue_pass(&t, &lee, json!({"isUsableOnce": false})).await;

    // Grady signs in from the office once: it becomes familiar to him.
    assert_eq!(
        pass_sign_in(&office, &url, "grady@contoso.com", &grady_pass).await,
        (StatusCode::OK, 0)
    );

    // Someone at the office sprays guesses at other accounts, more than the source allows.
    let spray: Vec<_> = (0..SOURCE_THRESHOLD + 10)
        .map(|i| {
            let office = office.clone();
            let url = url.clone();
            tokio::spawn(async move {
                pass_sign_in(
                    &office,
                    &url,
                    &format!("nobody{i}@contoso.com"),
                    "not-a-pass-1",
                )
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in spray {
        answers.push(guess.await.unwrap());
    }
    let wrong = answers.iter().filter(|a| a.1 == 50126).count();
    assert_eq!(wrong, SOURCE_THRESHOLD as usize - 1, "{answers:?}");
    assert_eq!(
        pass_sign_in(&office, &url, "someone@contoso.com", "not-a-pass-2").await,
        (StatusCode::TOO_MANY_REQUESTS, 50053),
        "the office address is locked"
    );

    // Lee was never seen at the office: refused there while it is locked, let in elsewhere.
    let refused = office
        .post(format!("{url}/auth/tap"))
        .json(&json!({"username": "lee@contoso.com", "temporaryAccessPass": lee_pass}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["errorCode"], 50053);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("your network"),
        "{body:?}"
    );
    assert_eq!(
        pass_sign_in(&elsewhere, &url, "lee@contoso.com", &lee_pass).await,
        (StatusCode::OK, 0)
    );

    // Grady, familiar with the office, gets in there with the right pass.
    assert_eq!(
        pass_sign_in(&office, &url, "grady@contoso.com", &grady_pass).await,
        (StatusCode::OK, 0)
    );

    // His own account's count still applies there: ten wrong passes lock him, at the office
    // too, and the right pass is then refused.
    for i in 1..ACCOUNT_THRESHOLD {
        assert_eq!(
            pass_sign_in(
                &office,
                &url,
                "grady@contoso.com",
                &format!("wrong-{i}-pass")
            )
            .await,
            (StatusCode::UNAUTHORIZED, 50126)
        );
    }
    assert_eq!(
        pass_sign_in(&office, &url, "grady@contoso.com", "wrong-10-pass").await,
        (StatusCode::TOO_MANY_REQUESTS, 50053)
    );
    assert_eq!(
        pass_sign_in(&office, &url, "grady@contoso.com", &grady_pass).await,
        (StatusCode::TOO_MANY_REQUESTS, 50053)
    );
    // The log saw the office address.
    let seen = t
        .get("/auditLogs/signIns?$filter=userPrincipalName eq 'grady@contoso.com'&$top=1")
        .await;
    assert_eq!(seen.body["value"][0]["ipAddress"], "127.0.0.2");
    t.stop().await;
}

/// Lockout does not tell which accounts exist: wrong passes at a name that matches no account
/// lock it exactly as they lock a real one, with the same answers in the same order.
#[tokio::test]
async fn a_made_up_name_locks_as_a_real_account_does() {
    let t = TestServer::start().await;
    let real = user(&t, "joni@contoso.com").await;
    issue_pass(&t, &real, json!({"isUsableOnce": false})).await;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for name in ["joni@contoso.com", "nobody@contoso.com"] {
        let mut codes = Vec::new();
        for _ in 0..=ACCOUNT_THRESHOLD {
            codes.push(pass_sign_in(&http, &t.url, name, "wrong-pass-1234").await);
        }
        answers.push(codes);
    }
    assert_eq!(
        answers[0], answers[1],
        "the real and the made-up name answer alike"
    );
    assert_eq!(
        answers[1].last(),
        Some(&(StatusCode::TOO_MANY_REQUESTS, 50053)),
        "{:?}",
        answers[1]
    );
    t.stop().await;
}
