//! The OAuth 2.0 token endpoint (client credentials for the admin API) and the public key set.
//!
//! Errors here follow RFC 6749 §5.2 (`{"error","error_description"}`), not Graph's shape,
//! because OAuth client libraries parse them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use portcullis_core::Error;
use serde_json::json;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/v2.0/token", post(token))
        .route("/discovery/v2.0/keys", get(keys))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\""),
        );
    }
    r
}

/// `POST /oauth2/v2.0/token` with `grant_type=client_credentials`. The client authenticates
/// with `client_id` and `client_secret` in the form or with HTTP Basic.
async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be application/x-www-form-urlencoded.",
        );
    };
    let mut form = std::collections::HashMap::new();
    for (k, v) in pairs {
        // RFC 6749 §3.2: parameters must not be included more than once.
        if form.insert(k.clone(), v).is_some() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The parameter '{k}' is repeated."),
            );
        }
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("The grant type '{other}' is not supported here."),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The parameter 'grant_type' is missing.",
            );
        }
    }
    if let Some(scope) = form.get("scope") {
        let graph_default = format!("{}/.default", state.tokens.graph_audience());
        let accepted = scope
            .split_whitespace()
            .all(|s| s == graph_default || s == "https://graph.microsoft.com/.default");
        if !accepted {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("Client credentials may ask only for '{graph_default}'."),
            );
        }
    }
    let (client_id, secret) = match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some((id, secret)), None, None) => (id, secret),
        (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
        (Some(_), _, _) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Use one client authentication method, not two.",
            );
        }
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication is missing.",
            );
        }
    };
    let app = match state
        .directory
        .authenticate_client(&client_id, &secret)
        .await
    {
        Ok(app) => app,
        Err(Error::Unauthenticated(msg)) => {
            tracing::info!(client_id = %client_id, "client credentials refused");
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &msg);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    match state.tokens.issue_app_token(&app) {
        Ok((access_token, expires_in)) => {
            let mut r = Json(json!({
                "token_type": "Bearer",
                "expires_in": expires_in,
                "access_token": access_token,
            }))
            .into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The public keys that verify tokens this server signs.
async fn keys(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.jwks())
}
