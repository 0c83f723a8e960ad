//! The OAuth 2.0 token endpoint (client credentials for the admin API; authorization codes and
//! refresh tokens for people, decided by core's OIDC provider) and the public key set.
//!
//! Errors here follow RFC 6749 §5.2 (`{"error","error_description"}`), not Graph's shape,
//! because OAuth client libraries parse them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use std::collections::HashMap;

use portcullis_core::Error;
use portcullis_core::oidc::{ClientAuth, OAuthError, OAuthErrorCode, TokenResponse};
use serde_json::json;

use crate::rate_limit::{WithinLimit, endpoint};
use crate::{AppState, SignInState};

/// The token endpoint and the key set: called by single-page apps from their own origin, so
/// the caller puts them behind [`crate::cors`].
pub fn browser_router() -> Router<AppState> {
    Router::new()
        .route("/oauth2/v2.0/token", post(token))
        .route("/discovery/v2.0/keys", get(keys))
}

/// The one renderer of an OAuth error, for the token, revocation and userinfo endpoints:
/// RFC 6749 §5.2's `{"error","error_description"}` with the status its code carries (decided by
/// [`OAuthErrorCode::http_status`], nowhere else), never cached, and with the challenge a 401
/// owes: `Bearer` for a refused access token (RFC 6750 §3), `Basic` for a refused client.
pub fn oauth_error(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (
        status,
        Json(json!({ "error": error.code.as_str(), "error_description": error.description })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if error.code == OAuthErrorCode::InvalidToken {
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                error.description.replace('"', "'")
            )
        } else {
            "Basic realm=\"portcullis\"".to_string()
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// A call refused by a rate limit ([`crate::rate_limit`]), as an OAuth client reads it:
/// RFC 6749's `temporarily_unavailable` with status 429 and `Retry-After` in seconds.
pub(crate) fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut r = refuse(
        OAuthErrorCode::TemporarilyUnavailable,
        &format!("Too many requests. Try again in {retry_after_secs} seconds."),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// An OAuth error this layer finds itself (a malformed form, a missing parameter).
pub(crate) fn refuse(code: OAuthErrorCode, description: &str) -> Response {
    oauth_error(&OAuthError::new(code, description))
}

/// A form body as a map; a repeated parameter is refused (RFC 6749 §3.2).
pub(crate) fn read_form(body: &[u8]) -> Result<HashMap<String, String>, Box<Response>> {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return Err(Box::new(refuse(
            OAuthErrorCode::InvalidRequest,
            "The body must be application/x-www-form-urlencoded.",
        )));
    };
    let mut form = HashMap::new();
    for (k, v) in pairs {
        if form.insert(k.clone(), v).is_some() {
            return Err(Box::new(refuse(
                OAuthErrorCode::InvalidRequest,
                &format!("The parameter '{k}' is repeated."),
            )));
        }
    }
    Ok(form)
}

/// How the client authenticates: HTTP Basic or `client_secret` in the form, or (a public
/// client) `client_id` alone. Two methods at once are refused.
pub(crate) fn client_auth(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientAuth, Box<Response>> {
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
            s.split_once(':').map(|(a, b)| {
                // RFC 6749 §2.3.1: both halves are form-urlencoded.
                let decode = |v: &str| {
                    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={v}"))
                        .ok()
                        .and_then(|mut p| p.pop())
                        .map(|(_, v)| v)
                        .unwrap_or_else(|| v.to_string())
                };
                (decode(a), decode(b))
            })
        });
    match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some((client_id, secret)), None, None) => Ok(ClientAuth::Secret { client_id, secret }),
        (Some((client_id, secret)), Some(named), None) if *named == client_id => {
            Ok(ClientAuth::Secret { client_id, secret })
        }
        (None, Some(client_id), Some(secret)) => Ok(ClientAuth::Secret {
            client_id: client_id.clone(),
            secret: secret.clone(),
        }),
        (None, Some(client_id), None) => Ok(ClientAuth::Public {
            client_id: client_id.clone(),
        }),
        (Some(_), _, _) => Err(Box::new(refuse(
            OAuthErrorCode::InvalidRequest,
            "Use one client authentication method, not two.",
        ))),
        _ => Err(Box::new(refuse(
            OAuthErrorCode::InvalidClient,
            "Client authentication is missing.",
        ))),
    }
}

/// The `client_id` a request names, however it authenticates.
pub(crate) fn named_client(client: &ClientAuth) -> &str {
    match client {
        ClientAuth::Secret { client_id, .. } | ClientAuth::Public { client_id } => client_id,
    }
}

fn tokens_response(tokens: &impl serde::Serialize) -> Response {
    let mut r = Json(tokens).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn grant_outcome(outcome: portcullis_core::Result<Result<TokenResponse, OAuthError>>) -> Response {
    match outcome {
        Ok(Ok(tokens)) => tokens_response(&tokens),
        Ok(Err(e)) => oauth_error(&e),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// `POST /oauth2/v2.0/token`: `client_credentials` for the admin API, `authorization_code`
/// and `refresh_token` for people signing in to applications.
async fn token(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::Token>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match read_form(&body) {
        Ok(form) => form,
        Err(r) => return *r,
    };
    let grant_type = match form.get("grant_type").map(String::as_str) {
        Some(g @ ("client_credentials" | "authorization_code" | "refresh_token")) => g.to_string(),
        Some(other) => {
            return refuse(
                OAuthErrorCode::UnsupportedGrantType,
                &format!("The grant type '{other}' is not supported here."),
            );
        }
        None => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "The parameter 'grant_type' is missing.",
            );
        }
    };
    let client = match client_auth(&headers, &form) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    // Per application as well as per address: one client's callers may come from anywhere.
    if let Err(refused) = state.rate_limits.admit_client(named_client(&client)) {
        return refused.response();
    }
    let provider = state.oidc.clone();
    match grant_type.as_str() {
        "authorization_code" => {
            let Some(code) = form.get("code") else {
                return refuse(
                    OAuthErrorCode::InvalidRequest,
                    "The parameter 'code' is missing.",
                );
            };
            grant_outcome(
                provider
                    .redeem_code(
                        &client,
                        code,
                        form.get("redirect_uri").map(String::as_str),
                        form.get("code_verifier").map(String::as_str),
                    )
                    .await,
            )
        }
        "refresh_token" => {
            let Some(refresh_token) = form.get("refresh_token") else {
                return refuse(
                    OAuthErrorCode::InvalidRequest,
                    "The parameter 'refresh_token' is missing.",
                );
            };
            grant_outcome(provider.refresh(&client, refresh_token).await)
        }
        _ => client_credentials(&state, &form, client).await,
    }
}

async fn client_credentials(
    state: &SignInState,
    form: &HashMap<String, String>,
    client: ClientAuth,
) -> Response {
    // The admin API (Graph's `.default`), or one API registered here (`<resource>/.default`).
    let graph_default = format!("{}/.default", state.tokens.graph_audience());
    let mut api: Option<String> = None;
    if let Some(scope) = form.get("scope") {
        let asked: Vec<&str> = scope.split_whitespace().collect();
        let graph = |s: &&str| *s == graph_default || *s == "https://graph.microsoft.com/.default";
        if !asked.iter().all(graph) {
            match asked.as_slice() {
                [one] if one.ends_with("/.default") && one.len() > "/.default".len() => {
                    api = Some(one.trim_end_matches("/.default").to_string());
                }
                _ => {
                    return refuse(
                        OAuthErrorCode::InvalidScope,
                        &format!(
                            "Client credentials ask for '{graph_default}' or one API's '<identifier URI or appId>/.default'."
                        ),
                    );
                }
            }
        }
    }
    let ClientAuth::Secret { client_id, secret } = client else {
        return refuse(
            OAuthErrorCode::InvalidClient,
            "Client credentials need the client's secret.",
        );
    };
    let app = match state.oidc.authenticate_client(&client_id, &secret).await {
        Ok(app) => app,
        Err(Error::Unauthenticated(msg)) => {
            tracing::info!(client_id = %client_id, "client credentials refused");
            return refuse(OAuthErrorCode::InvalidClient, &msg);
        }
        Err(e) => return crate::error::ApiError(e).into_response(),
    };
    let issued = match api {
        Some(resource) => match state.oidc.api_application_token(&app, &resource).await {
            Ok(Ok(issued)) => Ok(issued),
            Ok(Err(refusal)) => return oauth_error(&refusal),
            Err(e) => Err(e),
        },
        None => state.tokens.issue_app_token(&app),
    };
    match issued {
        Ok((access_token, expires_in)) => tokens_response(&json!({
            "token_type": "Bearer",
            "expires_in": expires_in,
            "access_token": access_token,
        })),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The public keys that verify tokens this server signs.
async fn keys(State(state): State<Arc<SignInState>>) -> Json<serde_json::Value> {
    Json(state.tokens.jwks())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What an OAuth client receives: status, `WWW-Authenticate`, `Cache-Control`, body.
    async fn received(error: &OAuthError) -> (u16, Option<String>, Option<String>, Value) {
        let response = oauth_error(error);
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_string())
        };
        let challenge = header(header::WWW_AUTHENTICATE);
        let cache = header(header::CACHE_CONTROL);
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            challenge,
            cache,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    /// Every OAuth code, rendered: RFC 6749 §5.2's body, its one status, never cached, and the
    /// challenge a 401 owes (Bearer for a token, Basic for a client).
    #[tokio::test]
    async fn every_oauth_error_renders_with_its_status_and_challenge() {
        use OAuthErrorCode as C;
        let expected = [
            (C::InvalidRequest, "invalid_request", 400, None),
            (
                C::InvalidClient,
                "invalid_client",
                401,
                Some("Basic realm=\"portcullis\""),
            ),
            (C::InvalidGrant, "invalid_grant", 400, None),
            (C::InvalidScope, "invalid_scope", 400, None),
            (
                C::InvalidToken,
                "invalid_token",
                401,
                Some("Bearer error=\"invalid_token\", error_description=\"It's 'gone'.\""),
            ),
            (C::UnsupportedGrantType, "unsupported_grant_type", 400, None),
            (
                C::UnsupportedResponseType,
                "unsupported_response_type",
                400,
                None,
            ),
            (C::LoginRequired, "login_required", 400, None),
            (C::InteractionRequired, "interaction_required", 400, None),
            (
                C::TemporarilyUnavailable,
                "temporarily_unavailable",
                429,
                None,
            ),
            (C::RequestNotSupported, "request_not_supported", 400, None),
            (
                C::RequestUriNotSupported,
                "request_uri_not_supported",
                400,
                None,
            ),
        ];
        assert_eq!(expected.len(), C::ALL.len(), "every code is checked");
        for (code, spelled, status, challenge) in expected {
            let error = OAuthError::new(code, "It's \"gone\".");
            let (got, got_challenge, cache, body) = received(&error).await;
            assert_eq!(code.as_str(), spelled);
            assert_eq!(got, status, "{code:?}");
            assert_eq!(got_challenge.as_deref(), challenge, "{code:?}");
            assert_eq!(cache.as_deref(), Some("no-store"));
            assert_eq!(
                body,
                serde_json::json!({"error": spelled, "error_description": "It's \"gone\"."})
            );
        }
    }
}
