//! Per-request plumbing: a request id (also the correlation id of audit entries), the caller's
//! address, structured request logs and Prometheus metrics by route and status.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use crate::AppState;

tokio::task_local! {
    static REQUEST_ID: Uuid;
}

/// The id of the request being served (a fresh one outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.to_string())
        .unwrap_or_else(|_| Uuid::new_v4().to_string())
}

/// Facts about the request that core records.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: Uuid,
    pub client_ip: Option<String>,
}

pub async fn observe(State(_state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    // A caller may name its own correlation id, as Graph's `client-request-id` allows.
    let request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::new_v4);
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestMeta {
        request_id,
        client_ip,
    });
    let mut response = REQUEST_ID.scope(request_id, next.run(req)).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let id_header = HeaderValue::from_str(&request_id.to_string()).expect("uuid is a valid header");
    response
        .headers_mut()
        .insert("request-id", id_header.clone());
    response
        .headers_mut()
        .insert("client-request-id", id_header);
    let labels = [
        ("route", route.clone()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("portcullis_http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "portcullis_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method.to_string()
    )
    .record(elapsed.as_secs_f64());
    tracing::info!(
        target: "portcullis::http",
        request_id = %request_id,
        method = %method,
        route = %route,
        status,
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
