//! Connections are bounded in time and number, so slow or idle clients cannot starve others;
//! and the client address comes from forwarding headers only when the peer is a trusted proxy.
//!
//! The timing tests shorten the limits to a second or two and allow many times that before
//! failing: they check that a limit acts, not how fast.

use std::net::SocketAddr;
use std::time::Duration;

use portcullis_testkit::{StatusCode, TestServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any limit these tests set: past it, the server did not act.
const BOUND: Duration = Duration::from_secs(15);

fn address(t: &TestServer) -> SocketAddr {
    let port = t.url.rsplit(':').next().unwrap().parse().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Reads until the server closes the connection; what it sent meanwhile. Panics if it does
/// not close within [`BOUND`].
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `GET /healthz` and reads its whole reply (its body is `ok`), leaving the connection
/// open.
async fn health_on(stream: &mut TcpStream) -> String {
    stream.write_all(HEALTH).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(BOUND, async {
        while !received.ends_with(b"\r\n\r\nok") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before replying");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server replies");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let t = TestServer::start_with(|c| {
        c.header_read_timeout_seconds = 1;
        c.keep_alive_timeout_seconds = 4;
        c.request_body_timeout_seconds = 1;
    })
    .await;
    let addr = address(&t);

    // Connected, and nothing sent.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let said = until_closed(&mut silent).await;
    assert!(!said.contains("200 OK"), "{said}");

    // Headers begun and never finished.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let said = until_closed(&mut partial).await;
    assert!(!said.contains("200 OK"), "{said}");

    // Kept alive between requests for longer than the header timeout, then closed once idle
    // past the keep-alive timeout.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert!(health_on(&mut kept).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        health_on(&mut kept).await.starts_with("HTTP/1.1 200"),
        "a kept-alive connection waits for its next request longer than the header timeout"
    );
    let said = until_closed(&mut kept).await;
    assert!(said.is_empty(), "{said}");

    // A body promised and never delivered: refused, and the connection closed.
    let mut slow_body = TcpStream::connect(addr).await.unwrap();
    slow_body
        .write_all(
            b"POST /auth/tap HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    let said = until_closed(&mut slow_body).await;
    assert!(said.is_empty() || said.starts_with("HTTP/1.1 4"), "{said}");

    // Meanwhile everyone else is served.
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    assert!(health_on(&mut fresh).await.starts_with("HTTP/1.1 200"));
    t.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_a_slot_frees() {
    let t = TestServer::start_with(|c| c.max_connections = Some(3)).await;
    let addr = address(&t);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert!(health_on(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }

    // The kernel completes the handshake, but the server does not take the connection.
    let mut waiting = TcpStream::connect(addr).await.unwrap();
    waiting.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_secs(1), waiting.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a fourth connection was served while three were held: {early:?}"
    );

    drop(held);
    let mut received = Vec::new();
    tokio::time::timeout(BOUND, async {
        while !received.ends_with(b"\r\n\r\nok") {
            let n = waiting.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before replying");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("served once the held connections closed");
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    t.stop().await;
}

/// A failed pass sign-in sent with `headers`; the address its sign-in log entry records.
async fn logged_address(t: &TestServer, headers: &[(&str, &str)]) -> String {
    let mut request = t
        .http
        .post(format!("{}/auth/tap", t.url))
        .json(&json!({"username": "nobody@contoso.com", "temporaryAccessPass": "not-a-pass"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let status = request.send().await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let log = t.get("/auditLogs/signIns?$top=1").await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    log.body["value"][0]["ipAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let t = TestServer::start().await;
    assert_eq!(
        logged_address(&t, &[("x-forwarded-for", "203.0.113.9")]).await,
        "127.0.0.1"
    );
    assert_eq!(
        logged_address(&t, &[("forwarded", "for=203.0.113.9")]).await,
        "127.0.0.1"
    );
    // Only loopback's neighbour is trusted, not loopback itself.
    t.stop().await;
    let t =
        TestServer::start_with(|c| c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    assert_eq!(
        logged_address(&t, &[("x-forwarded-for", "203.0.113.9")]).await,
        "127.0.0.1"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_spoofed_hops_are_skipped() {
    let t = TestServer::start_with(|c| {
        c.trusted_proxies = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]
    })
    .await;
    assert_eq!(
        logged_address(&t, &[("x-forwarded-for", "203.0.113.9")]).await,
        "203.0.113.9"
    );
    // The client wrote the leftmost entry itself; the proxy appended what it saw.
    assert_eq!(
        logged_address(&t, &[("x-forwarded-for", "198.51.100.1, 203.0.113.9")]).await,
        "203.0.113.9"
    );
    // A chain of trusted proxies is walked past.
    assert_eq!(
        logged_address(
            &t,
            &[("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2")]
        )
        .await,
        "203.0.113.9"
    );
    // A client naming a trusted address to hide behind gets no further than the next hop.
    assert_eq!(
        logged_address(&t, &[("x-forwarded-for", "10.9.9.9, 203.0.113.9")]).await,
        "203.0.113.9"
    );
    assert_eq!(
        logged_address(
            &t,
            &[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")]
        )
        .await,
        "2001:db8::7"
    );
    // Nothing forwarded: the proxy itself.
    assert_eq!(logged_address(&t, &[]).await, "127.0.0.1");
    t.stop().await;
}

#[tokio::test]
async fn a_graceful_stop_lets_the_request_in_flight_finish() {
    let t = TestServer::start().await;
    let addr = address(&t);
    let body = br#"{"username":"nobody@contoso.com","temporaryAccessPass":"not-a-pass"}"#;
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight
        .write_all(
            format!(
                "POST /auth/tap HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    in_flight.write_all(&body[..10]).await.unwrap();
    // Give the server the headers before it is told to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = tokio::spawn(t.stop());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!stopping.is_finished(), "stopped with a request in flight");
    in_flight.write_all(&body[10..]).await.unwrap();
    let said = until_closed(&mut in_flight).await;
    assert!(said.starts_with("HTTP/1.1 401"), "{said}");
    tokio::time::timeout(BOUND, stopping)
        .await
        .expect("the server stops once the request is answered")
        .unwrap();
}
