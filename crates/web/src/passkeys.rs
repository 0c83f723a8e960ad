//! The self-service passkey endpoints the sign-in and security-info pages call:
//! `POST /auth/passkey/options` and `/auth/passkey/verify` (sign in, with or without a
//! username), and `/my/passkeys…` (list, add on this or another device, rename, remove) for the
//! person whose session cookie comes with the request.
//!
//! They speak JSON only: a body of any other content type is refused. Together with the
//! SameSite=Lax, HttpOnly session cookie that is the CSRF protection — a cross-site form cannot
//! send `application/json`, and a cross-site script cannot send the cookie.
//!
//! What it must never do: decide anything about passkeys (core does), or put ceremony state in
//! the browser (it gets only the ceremony id).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use portcullis_core::Error;
use portcullis_core::methods::passkeys::RegistrationDevice;
use portcullis_core::session::{AuthSession, SESSION_COOKIE, SESSION_LIFETIME};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::session_cookie;
use crate::error::{ApiError, ApiResult};
use crate::extract::{CurrentSession, Facts, Meta, SecurityInfoChange, cookie, parse_graph_json};
use crate::rate_limit::{Endpoint, WithinLimit, endpoint};
use crate::{AppState, SignInState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/passkey/options", post(sign_in_options))
        .route("/auth/passkey/verify", post(sign_in_verify))
        .route("/my/passkeys/options", post(registration_options))
        .route("/my/passkeys", post(register).get(list))
        .route("/my/passkeys/{id}", patch(rename).delete(remove))
}

/// A JSON body, refused unless the request says `Content-Type: application/json`.
pub struct JsonOnly<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOnly<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !crate::extract::is_json_media_type(&content_type) {
            return Err(Error::UnsupportedContentType {
                message: format!(
                    "This endpoint accepts only application/json, got '{content_type}'."
                ),
            }
            .into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge {
                    limit: crate::MAX_BODY_BYTES,
                }
            } else {
                Error::invalid(
                    "body",
                    format!("The request body could not be read: {rejection}"),
                )
            }
        })?;
        Ok(JsonOnly(parse_graph_json(&bytes)?))
    }
}

/// The session named by the request's session cookie, if it is live: a passkey sign-in adds
/// itself to it rather than starting another.
pub struct MaybeSession(pub Option<AuthSession>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = cookie(parts, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Ok(MaybeSession(None));
        };
        Ok(MaybeSession(
            state.sign_in().sessions.for_token(token).await?,
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignInOptionsRequest {
    #[serde(default)]
    username: Option<String>,
    /// `"conditional"` for autofill (conditional mediation).
    #[serde(default)]
    mediation: Option<String>,
}

async fn sign_in_options(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::PasskeyOptions>,
    JsonOnly(body): JsonOnly<SignInOptionsRequest>,
) -> ApiResult<Json<Value>> {
    let conditional = match body.mediation.as_deref() {
        None | Some("optional") | Some("required") => false,
        Some("conditional") => true,
        Some(other) => {
            return Err(Error::invalid(
                "mediation",
                format!("mediation must be 'conditional' or absent, not '{other}'."),
            )
            .into());
        }
    };
    if let Some(username) = body.username.as_deref() {
        state
            .rate_limits
            .admit_account(Endpoint::PasskeyOptions, username)?;
    }
    let options = state
        .passkeys
        .start_sign_in(body.username.as_deref(), conditional)
        .await?;
    Ok(Json(serde_json::to_value(options).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyRequest {
    ceremony_id: Uuid,
    credential: Value,
}

async fn sign_in_verify(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::PasskeyVerify>,
    Facts(facts): Facts,
    MaybeSession(current): MaybeSession,
    JsonOnly(body): JsonOnly<VerifyRequest>,
) -> ApiResult<Response> {
    let signed_in = state
        .passkeys
        .finish_sign_in(&facts, body.ceremony_id, &body.credential, current.as_ref())
        .await?;
    let reply = serde_json::json!({
        "userId": signed_in.user.id,
        "userPrincipalName": signed_in.user.user_principal_name,
        "displayName": signed_in.user.display_name,
        "passkey": signed_in.passkey,
        "sessionExpiresDateTime": portcullis_core::kernel::clock::graph_datetime::format(signed_in.session.expires),
    });
    let mut response = Json(reply).into_response();
    if let Some(token) = signed_in.new_token.as_deref() {
        let cookie = session_cookie(&state, token, SESSION_LIFETIME.whole_seconds());
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegistrationOptionsRequest {
    device: RegistrationDevice,
}

async fn registration_options(
    State(state): State<Arc<SignInState>>,
    SecurityInfoChange { session }: SecurityInfoChange,
    JsonOnly(body): JsonOnly<RegistrationOptionsRequest>,
) -> ApiResult<Json<Value>> {
    let options = state
        .passkeys
        .start_registration(&session, body.device)
        .await?;
    Ok(Json(serde_json::to_value(options).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterRequest {
    ceremony_id: Uuid,
    name: String,
    credential: Value,
}

async fn register(
    State(state): State<Arc<SignInState>>,
    Meta(meta): Meta,
    SecurityInfoChange { session }: SecurityInfoChange,
    JsonOnly(body): JsonOnly<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let method = state
        .passkeys
        .finish_registration(
            &session,
            &meta,
            body.ceremony_id,
            &body.name,
            &body.credential,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(method).unwrap_or(Value::Null)),
    ))
}

async fn list(
    State(state): State<Arc<SignInState>>,
    CurrentSession { session }: CurrentSession,
) -> ApiResult<Json<Value>> {
    let methods = state.passkeys.my_passkeys(&session).await?;
    Ok(Json(serde_json::json!({ "value": methods })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RenameRequest {
    display_name: String,
}

async fn rename(
    State(state): State<Arc<SignInState>>,
    Meta(meta): Meta,
    SecurityInfoChange { session }: SecurityInfoChange,
    Path(id): Path<String>,
    JsonOnly(body): JsonOnly<RenameRequest>,
) -> ApiResult<Json<Value>> {
    let method = state
        .passkeys
        .rename_my_passkey(&session, &meta, &id, &body.display_name)
        .await?;
    Ok(Json(serde_json::to_value(method).unwrap_or(Value::Null)))
}

async fn remove(
    State(state): State<Arc<SignInState>>,
    Meta(meta): Meta,
    SecurityInfoChange { session }: SecurityInfoChange,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .passkeys
        .delete_my_passkey(&session, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
