//! Rate limits on the anonymous endpoints, with the production defaults, as an attacker with a
//! script meets them: a burst of 10,000 passkey option calls from one address is mostly refused
//! with 429 and `Retry-After` and stores a bounded number of ceremonies, while another address
//! is served; a limit per account holds when the attacker changes address for every call; the
//! token endpoint refuses a burst as an OAuth error, per address and per client; each surface
//! refuses in its own shape; `/metrics` counts the refusals; and expired sign-in state is purged
//! within seconds of the short interval, not hourly.
//!
//! Several source addresses come from one test client the way they reach a real deployment:
//! through a trusted proxy (loopback here) that names them in `X-Forwarded-For`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::Config;
use portcullis_testkit::{StatusCode, TestServer};
use serde_json::{Value, json};

/// A server with the production rate limits that believes loopback's `X-Forwarded-For`.
async fn behind_a_proxy(configure: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with_rate_limits(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        configure(c);
    })
    .await
}

/// `POST path` with a JSON body as the client at `source`: status, `Retry-After`, body.
async fn post_from(
    http: &reqwest::Client,
    url: &str,
    source: &str,
    body: &Value,
) -> (StatusCode, Option<u64>, Value) {
    let response = http
        .post(url)
        .header("x-forwarded-for", source)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let retry_after = retry_after(response.headers());
    if status == StatusCode::TOO_MANY_REQUESTS {
        // The refusal comes before the body is read, so the connection cannot carry another
        // request: the answer says so rather than leaving the client to find a broken pipe.
        assert_eq!(
            response
                .headers()
                .get("connection")
                .map(|v| v.to_str().unwrap()),
            Some("close"),
            "{url}"
        );
    }
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After is seconds"))
}

/// The sum of `portcullis_rate_limited_total` for `endpoint` in the server's `/metrics`.
async fn refusals_counted(t: &TestServer, endpoint: &str) -> u64 {
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
        .filter(|line| {
            line.starts_with("portcullis_rate_limited_total{")
                && line.contains(&format!("endpoint=\"{endpoint}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// 10,000 usernameless passkey option calls from one address, 64 at a time: the starts bucket
/// (300, five back a second) lets a few hundred through, each of which stored one ceremony;
/// the rest are 429 with `Retry-After` and stored nothing. Another address is still served,
/// and `/metrics` counted the refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_passkey_options_from_one_address_is_refused_and_stores_little() {
    let t = behind_a_proxy(|_| {}).await;
    let starts = Config::default().rate_limit_starts_per_address_per_minute as u64;
    let url = Arc::new(format!("{}/auth/passkey/options", t.url));
    const CALLS: usize = 10_000;
    const AT_ONCE: usize = 64;
    let began = Instant::now();
    let workers: Vec<_> = (0..AT_ONCE)
        .map(|w| {
            let http = t.http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in (w..CALLS).step_by(AT_ONCE) {
                    answers.push(post_from(&http, &url, "203.0.113.7", &json!({})).await);
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(CALLS);
    for worker in workers {
        answers.extend(worker.await.unwrap());
    }
    let elapsed = began.elapsed();
    assert_eq!(answers.len(), CALLS);

    let served = answers.iter().filter(|a| a.0 == StatusCode::OK).count() as u64;
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        served + refused.len() as u64,
        CALLS as u64,
        "every call is served or refused as too many"
    );
    for (_, retry, body) in &refused {
        assert!(retry.is_some_and(|s| s >= 1), "Retry-After on every 429");
        assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
    }
    // The bucket, plus what refilled while the burst lasted (one every 0.2 s), plus one.
    let bound = starts + (elapsed.as_secs_f64() * starts as f64 / 60.0).ceil() as u64 + 1;
    let rows = t.store().sign_in_state_rows().await.unwrap();
    eprintln!(
        "{CALLS} passkey option calls from one address in {elapsed:.1?}: {served} served, {} refused, {} ceremonies stored (bound {bound})",
        refused.len(),
        rows.passkey_ceremonies
    );
    assert!(
        served >= 1 && served <= bound,
        "{served} served, bound {bound}"
    );
    assert!(refused.len() >= 9_000, "mostly refused: {}", refused.len());
    assert_eq!(
        rows.passkey_ceremonies, served,
        "one ceremony per call served, none per refusal"
    );

    // Another address is not affected by the first one's limit.
    let other = post_from(&t.http, &url, "203.0.113.8", &json!({})).await;
    assert_eq!(other.0, StatusCode::OK, "{:?}", other.2);
    assert!(other.2["ceremonyId"].is_string(), "{:?}", other.2);

    // The registry is the process's, shared by the tests running beside this one: at least
    // this test's refusals are there.
    let counted = refusals_counted(&t, "passkey").await;
    assert!(
        counted >= refused.len() as u64,
        "{counted} counted, {} refused",
        refused.len()
    );
    t.stop().await;
}

/// Calls naming one account, each from a new address: the account's bucket (30) runs out
/// whatever the addresses, under any spelling of the name, while another account is served.
#[tokio::test]
async fn a_limit_per_account_holds_when_the_address_changes() {
    let t = behind_a_proxy(|_| {}).await;
    let per_account = Config::default().rate_limit_per_account_per_minute as usize;
    let url = format!("{}/auth/passkey/options", t.url);
    let mut statuses = Vec::new();
    for i in 0..per_account + 10 {
        let name = if i % 2 == 0 {
            "joni@contoso.com"
        } else {
            "JONI@Contoso.com"
        };
        let source = format!("198.51.100.{}", i + 1);
        let (status, retry, body) =
            post_from(&t.http, &url, &source, &json!({"username": name})).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry.is_some_and(|s| s >= 1), "{body}");
            assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
        }
        statuses.push(status);
    }
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(served, per_account, "{statuses:?}");
    assert!(
        statuses[per_account..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let other = post_from(
        &t.http,
        &url,
        "198.51.100.200",
        &json!({"username": "grady@contoso.com"}),
    )
    .await;
    assert_eq!(other.0, StatusCode::OK, "{:?}", other.2);
    t.stop().await;
}

/// A burst at the token endpoint: refused as an OAuth error (`temporarily_unavailable`, 429,
/// `Retry-After`, not cached) once one address has used its bucket, and once one client has,
/// even from a new address each time.
#[tokio::test]
async fn the_token_endpoint_refuses_a_burst_per_address_and_per_client() {
    const LIMIT: usize = 40;
    let t = behind_a_proxy(|c| c.rate_limit_token_per_minute = LIMIT as u32).await;
    let token_url = format!("{}/oauth2/v2.0/token", t.url);
    let token_call = |source: String, client_id: String| {
        let http = t.http.clone();
        let url = token_url.clone();
        async move {
            let response = http
                .post(url)
                .header("x-forwarded-for", source)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", "not-the-secret"),
                ])
                .send()
                .await
                .expect("request sent");
            let status = response.status();
            let retry = retry_after(response.headers());
            let cache = response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry, cache, body)
        }
    };

    // One address, a different client each time: the address's bucket runs out.
    let mut from_one_address = Vec::new();
    for i in 0..LIMIT + 20 {
        from_one_address.push(token_call("203.0.113.20".into(), format!("client-{i}")).await);
    }
    // One client, a different address each time: the client's bucket runs out.
    let mut for_one_client = Vec::new();
    for i in 0..LIMIT + 20 {
        for_one_client.push(token_call(format!("192.0.2.{}", i + 1), "one-client".into()).await);
    }
    for answers in [&from_one_address, &for_one_client] {
        let (first, rest) = answers.split_at(LIMIT);
        assert!(
            first
                .iter()
                .all(|a| a.0 == StatusCode::UNAUTHORIZED && a.3["error"] == "invalid_client"),
            "{first:?}"
        );
        for (status, retry, cache, body) in rest {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(body["error"], "temporarily_unavailable", "{body}");
            assert!(retry.is_some_and(|s| s >= 1));
            assert_eq!(cache.as_deref(), Some("no-store"));
        }
    }
    assert!(refusals_counted(&t, "token").await >= 40);
    t.stop().await;
}

/// Every surface refuses in its own shape: the sign-in page and `/authorize` with a page that
/// says to wait, the flow's JSON steps with Graph's error; each with `Retry-After`.
#[tokio::test]
async fn each_surface_refuses_in_its_own_shape() {
    let t = behind_a_proxy(|c| c.rate_limit_starts_per_address_per_minute = 2).await;
    let page = |query: &'static str| {
        let http = t.http.clone();
        let url = format!("{}{query}", t.url);
        async move {
            let response = http
                .get(url)
                .header("x-forwarded-for", "203.0.113.30")
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry = retry_after(response.headers());
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, retry, content_type, response.text().await.unwrap())
        }
    };
    // Two sign-in pages start two flows; the third is refused.
    for _ in 0..2 {
        assert_eq!(page("/signin").await.0, StatusCode::OK);
    }
    let (status, retry, content_type, html) = page("/signin").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|s| s >= 1));
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("Too many attempts"), "{html}");
    // So is the authorization endpoint, before it reads its parameters.
    let (status, retry, content_type, _) =
        page("/oauth2/v2.0/authorize?client_id=x&response_type=code").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    assert!(content_type.starts_with("text/html"));
    // A flow's start is JSON.
    let (status, retry, body) = post_from(
        &t.http,
        &format!("{}/signin/flows", t.url),
        "203.0.113.30",
        &json!({"clientId": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some());
    assert_eq!(body["error"]["code"], "TooManyRequests");
    // A call that stores nothing still has the address's larger bucket.
    let (status, _, body) = post_from(
        &t.http,
        &format!("{}/auth/passkey/verify", t.url),
        "203.0.113.30",
        &json!({"ceremonyId": uuid::Uuid::new_v4(), "credential": {}}),
    )
    .await;
    assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    t.stop().await;
}

/// Expired flows and ceremonies are gone within the short purge interval (a second here; a
/// minute by default), not the hourly one.
#[tokio::test]
async fn expired_sign_in_state_is_purged_within_the_interval() {
    let t = TestServer::start_with(|c| c.sign_in_state_purge_seconds = 1).await;
    let signin = t
        .http
        .get(format!("{}/signin", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(signin.status(), StatusCode::OK);
    let options = t
        .http
        .post(format!("{}/auth/passkey/options", t.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), StatusCode::OK);
    let before = t.store().sign_in_state_rows().await.unwrap();
    assert!(
        before.sign_in_flows >= 1 && before.passkey_ceremonies >= 1,
        "{before:?}"
    );
    // Still live a few purges later: only what has expired goes.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(t.store().sign_in_state_rows().await.unwrap(), before);
    // A flow lives ten minutes, a ceremony five.
    t.clock.advance(time::Duration::minutes(11));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = t.store().sign_in_state_rows().await.unwrap();
        if rows.sign_in_flows == 0 && rows.passkey_ceremonies == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still there 10 s after expiring: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.stop().await;
}

/// Found by an attacker's script: the method of a request was a label of its metrics, so each
/// made-up method (HTTP allows any token) added series the server kept for good; 300 methods of
/// 30 KB made `/metrics` 150 MB. A burst of 500 distinct made-up methods, 32 at a time, now adds
/// one `OTHER` series, and `/metrics` stays the size it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn made_up_methods_share_one_metrics_label() {
    let t = TestServer::start().await;
    let metrics = |t: &TestServer| {
        let (http, url) = (t.http.clone(), format!("{}/metrics", t.url));
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // Every route once with a standard method, so the series that can exist do.
    t.http
        .get(format!("{}/healthz", t.url))
        .send()
        .await
        .unwrap();
    let before = metrics(&t).await.len();
    let url = Arc::new(format!("{}/healthz", t.url));
    const CALLS: usize = 500;
    const AT_ONCE: usize = 32;
    let workers: Vec<_> = (0..AT_ONCE)
        .map(|w| {
            let (http, url) = (t.http.clone(), url.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in (w..CALLS).step_by(AT_ONCE) {
                    let method = reqwest::Method::from_bytes(
                        format!("PROBE{i:04}{}", "X".repeat(200)).as_bytes(),
                    )
                    .unwrap();
                    statuses.push(
                        http.request(method, url.as_str())
                            .send()
                            .await
                            .unwrap()
                            .status(),
                    );
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(CALLS);
    for worker in workers {
        statuses.extend(worker.await.unwrap());
    }
    assert_eq!(statuses.len(), CALLS);
    assert!(statuses.iter().all(|s| s.is_client_error()), "{statuses:?}");
    let after = metrics(&t).await;
    assert!(!after.contains("PROBE"), "a made-up method became a label");
    let other: f64 = after
        .lines()
        .filter(|l| {
            l.starts_with("portcullis_http_requests_total{") && l.contains("method=\"OTHER\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(other, 500.0, "{after}");
    // The new series: one counter and one histogram (its buckets, sum and count) for OTHER.
    assert!(
        after.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    t.stop().await;
}
