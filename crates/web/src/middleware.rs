//! Per-request plumbing: a request id (also the correlation id of audit entries), the caller's
//! address (from [`crate::client_address`]), structured request logs and Prometheus metrics by
//! route and status.

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

pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    // A caller may name its own correlation id, as Graph's `client-request-id` allows.
    let request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        // Time-ordered: the sign-in log's correlation index then grows at its end.
        .unwrap_or_else(Uuid::now_v7);
    // The one place the client's address is decided; everything downstream reads it here.
    let client_address =
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                crate::client_address::client_address(
                    peer.ip(),
                    req.headers(),
                    state.trusted_proxies(),
                )
            });
    let client_ip = client_address.map(|address| address.to_string());
    // The rate limits count by the address itself, not by its text.
    if let Some(address) = client_address {
        req.extensions_mut()
            .insert(crate::rate_limit::ClientAddress(address));
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method());
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
    harden(response.headers_mut());
    if response.status() == axum::http::StatusCode::TOO_MANY_REQUESTS {
        // A limit refuses before the request's body is read, so the connection cannot carry
        // another request; the answer says so rather than leave the client a broken pipe. A
        // client over its limit opening a new connection later costs nothing worth keeping.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    let labels = [
        ("route", route.clone()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("portcullis_http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "portcullis_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method
    )
    .record(elapsed.as_secs_f64());
    tracing::info!(
        target: "portcullis::http",
        request_id = %request_id,
        method,
        route = %route,
        status,
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Headers every answer carries so that a browser treats it as what it is: no content-type
/// sniffing on anything, and no page of this server inside another site's frame (a framed
/// sign-in or portal page could be clicked through by a page on top: clickjacking), nor a full
/// address of it in the `Referer` another site receives. A handler's own value is kept. The
/// pages' scripts and styles are their own files, but a full `script-src` policy is left out:
/// the only directive set here is the one that cannot break a page.
fn harden(headers: &mut axum::http::HeaderMap) {
    use axum::http::header;
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
        headers
            .entry(header::REFERRER_POLICY)
            .or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
    }
}

/// The `method` label of a request's metrics and log line. HTTP lets a client send any token as
/// its method, and every distinct label value is a series the server keeps for good: anything
/// but the standard methods is counted as `OTHER`, so that anonymous requests cannot grow the
/// server's memory (or `/metrics`) with made-up methods.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// CSRF protection for the cookie-authenticated endpoints (`/auth/…`, `/my/…`): a request that
/// changes something must come from this server's own origin (browsers send `Origin` on every
/// such request) and carry a JSON body, which a cross-site form cannot send. SameSite=Lax on the
/// session cookie is a second wall, not the only one.
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use axum::http::{Method, header};
    use axum::response::IntoResponse;
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes {
        let expected = origin_of(&state.sign_in().public_url);
        if let Some(origin) = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            && origin != expected
        {
            return crate::error::ApiError(portcullis_core::Error::Forbidden(format!(
                "Requests that change something must come from {expected}."
            )))
            .into_response();
        }
        if req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            == Some("cross-site")
        {
            return crate::error::ApiError(portcullis_core::Error::Forbidden(
                "Cross-site requests are refused here.".into(),
            ))
            .into_response();
        }
        // A body must be JSON; a request without a body (signing out) needs no content type. Every
        // form a page can submit carries a content type, so none gets through.
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let empty = req.headers().get(header::TRANSFER_ENCODING).is_none()
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|n| n.trim() == "0");
        let acceptable = match content_type {
            Some(ct) => crate::extract::is_json_media_type(ct),
            None => empty,
        };
        if !acceptable {
            return crate::error::ApiError(portcullis_core::Error::UnsupportedContentType {
                message: "Send the request as application/json.".into(),
            })
            .into_response();
        }
    }
    next.run(req).await
}

/// `scheme://host[:port]` of a URL.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

/// CSRF protection for the pages' own HTML forms (the admin portal): a request that changes
/// something must name this server as its `Origin` — browsers send it on every form post, and a
/// post without one is refused too, so a browser that hides it cannot be used to get around the
/// check (`Sec-Fetch-Site: same-origin` is accepted in its place). The body may be a form or
/// JSON. The JSON endpoints keep [`same_origin`], which takes no form at all.
pub async fn same_origin_forms(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::{Method, header};
    use axum::response::IntoResponse;
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes {
        let expected = origin_of(&state.sign_in().public_url);
        let header_text = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let same_origin = match header_text(header::ORIGIN) {
            Some(origin) => origin == expected,
            None => {
                header_text(header::HeaderName::from_static("sec-fetch-site")).as_deref()
                    == Some("same-origin")
            }
        };
        if !same_origin {
            return crate::error::ApiError(portcullis_core::Error::Forbidden(format!(
                "A form must be sent from a page of {expected}."
            )))
            .into_response();
        }
    }
    next.run(req).await
}
