//! The sign-in flow's JSON endpoints under `/signin/flows`: start a sign-in to an application,
//! identify, give a first factor (pass, password, passkey), answer what Conditional Access asks
//! (a passkey, an app code), register a passkey when "More information required", prove it, and
//! read where the flow stands. The sign-in pages and the OIDC authorize endpoint sit on top.
//!
//! Each handler extracts facts (body, session cookie, IP, user agent) and calls
//! [`portcullis_core::signin::SignIns`], which decides. JSON bodies only; behind the same-origin
//! guard. What it must never do: decide a step, or put flow state anywhere but the database (the
//! browser holds the flow id and its session cookie).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_core::methods::passkeys::RegistrationDevice;
use portcullis_core::oidc::ResponseMode;
use portcullis_core::session::SESSION_LIFETIME;
use portcullis_core::signin::{FlowState, Step};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{browser_session_cookie, session_cookie};
use crate::error::ApiResult;
use crate::extract::{CurrentSession, Facts};
use crate::passkeys::{JsonOnly, MaybeSession};
use crate::rate_limit::{Endpoint, WithinLimit, endpoint};
use crate::{AppState, SignInState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signin/flows", post(start))
        .route("/signin/flows/{id}", get(current))
        .route("/signin/flows/{id}/identify", post(identify))
        .route("/signin/flows/{id}/tap", post(tap))
        .route("/signin/flows/{id}/password", post(password))
        .route("/signin/flows/{id}/totp", post(totp))
        .route("/signin/flows/{id}/passkey/options", post(passkey_options))
        .route("/signin/flows/{id}/passkey/verify", post(passkey_verify))
        .route(
            "/signin/flows/{id}/registration/options",
            post(registration_options),
        )
        .route("/signin/flows/{id}/registration", post(register))
}

/// A flow's state as JSON: 403 when blocked, 200 otherwise; the session cookie when this step
/// started a session (a browser-session cookie when Conditional Access says the browser must
/// not stay signed in).
fn reply(state: &SignInState, flow: FlowState) -> Response {
    let status = if flow.status == Step::Blocked {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let token = flow.new_session_token.clone();
    let persistent = flow.persistent_session != Some(false);
    let mut response = (status, Json(flow)).into_response();
    if let Some(token) = token {
        let cookie = if persistent {
            session_cookie(state, &token, SESSION_LIFETIME.whole_seconds())
        } else {
            browser_session_cookie(state, &token)
        };
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Like [`reply`]; when this step completed a flow from `/authorize` (its code was stored in
/// the step's own commit), the reply's `redirectUrl` or `formPost` takes the browser back to the
/// application with that code.
fn finish(state: &SignInState, mut flow: FlowState) -> Response {
    if let Some(response) = flow.completion.take() {
        match response.response_mode {
            ResponseMode::Query => flow.redirect_url = Some(response.url()),
            // The page builds the form and posts it to the application.
            ResponseMode::FormPost => {
                let fields: serde_json::Map<String, Value> = response
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                flow.form_post = Some(serde_json::json!({
                    "action": response.redirect_uri,
                    "fields": fields,
                }));
            }
        }
    }
    reply(state, flow)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartRequest {
    client_id: String,
}

async fn start(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStart>,
    Facts(facts): Facts,
    JsonOnly(body): JsonOnly<StartRequest>,
) -> ApiResult<Response> {
    let flow = state.sign_ins.start(&body.client_id, &facts).await?;
    Ok(reply(&state, flow))
}

async fn current(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    MaybeSession(session): MaybeSession,
) -> ApiResult<Response> {
    let flow = state.sign_ins.current(&id, session.as_ref()).await?;
    Ok(finish(&state, flow))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentifyRequest {
    username: String,
}

async fn identify(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    JsonOnly(body): JsonOnly<IdentifyRequest>,
) -> ApiResult<Response> {
    state
        .rate_limits
        .admit_account(Endpoint::FlowStep, &body.username)?;
    let flow = state.sign_ins.identify(&id, &body.username).await?;
    Ok(reply(&state, flow))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PassRequest {
    temporary_access_pass: String,
}

async fn tap(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    Facts(facts): Facts,
    JsonOnly(body): JsonOnly<PassRequest>,
) -> ApiResult<Response> {
    let flow = state
        .sign_ins
        .with_pass(&id, &body.temporary_access_pass, &facts)
        .await?;
    Ok(finish(&state, flow))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordRequest {
    password: String,
}

async fn password(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    Facts(facts): Facts,
    JsonOnly(body): JsonOnly<PasswordRequest>,
) -> ApiResult<Response> {
    let flow = state
        .sign_ins
        .with_password(&id, &body.password, &facts)
        .await?;
    Ok(finish(&state, flow))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CodeRequest {
    code: String,
}

async fn totp(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    CurrentSession { session }: CurrentSession,
    JsonOnly(body): JsonOnly<CodeRequest>,
) -> ApiResult<Response> {
    let flow = state.sign_ins.with_totp(&id, &session, &body.code).await?;
    Ok(finish(&state, flow))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn passkey_options(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowPasskeyOptions>,
    Path(id): Path<String>,
    MaybeSession(session): MaybeSession,
    JsonOnly(_): JsonOnly<Empty>,
) -> ApiResult<Json<Value>> {
    let options = state
        .sign_ins
        .passkey_options(&id, session.as_ref())
        .await?;
    Ok(Json(serde_json::to_value(options).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyRequest {
    ceremony_id: Uuid,
    credential: Value,
}

async fn passkey_verify(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    Facts(facts): Facts,
    MaybeSession(session): MaybeSession,
    JsonOnly(body): JsonOnly<VerifyRequest>,
) -> ApiResult<Response> {
    let flow = state
        .sign_ins
        .with_passkey(
            &id,
            session.as_ref(),
            &facts,
            body.ceremony_id,
            &body.credential,
        )
        .await?;
    Ok(finish(&state, flow))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegistrationOptionsRequest {
    device: RegistrationDevice,
}

async fn registration_options(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    CurrentSession { session }: CurrentSession,
    JsonOnly(body): JsonOnly<RegistrationOptionsRequest>,
) -> ApiResult<Response> {
    Ok(
        match state
            .sign_ins
            .registration_options(&id, &session, body.device)
            .await?
        {
            Ok(options) => {
                Json(serde_json::to_value(options).unwrap_or(Value::Null)).into_response()
            }
            Err(blocked) => reply(&state, blocked),
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterRequest {
    ceremony_id: Uuid,
    name: String,
    credential: Value,
}

async fn register(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::FlowStep>,
    Path(id): Path<String>,
    Facts(facts): Facts,
    CurrentSession { session }: CurrentSession,
    JsonOnly(body): JsonOnly<RegisterRequest>,
) -> ApiResult<Response> {
    let flow = state
        .sign_ins
        .finish_registration(
            &id,
            &session,
            &facts,
            body.ceremony_id,
            &body.name,
            &body.credential,
        )
        .await?;
    Ok(reply(&state, flow))
}
