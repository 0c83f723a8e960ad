//! The sign-in JSON API the pages use: sign in with a Temporary Access Pass or a password, add
//! an authenticator app's code as a second step, read the current session, sign out (here or everywhere). The session lives in the database; the browser holds a random token in an
//! HttpOnly, SameSite=Lax cookie. These endpoints accept only `application/json` bodies, which
//! a cross-site form cannot send, so together with SameSite that is their CSRF protection.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_core::session::{SESSION_COOKIE, SESSION_LIFETIME};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiResult;
use crate::extract::{CurrentSession, Facts, GraphJson, Meta};
use crate::rate_limit::{Endpoint, WithinLimit, endpoint};
use crate::{AppState, SignInState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/tap", post(sign_in_with_pass))
        .route("/auth/password", post(sign_in_with_password))
        .route("/auth/totp", post(second_step_totp))
        .route("/auth/session", get(current))
        .route("/auth/sign-out", post(sign_out))
        .route("/auth/sign-out-everywhere", post(sign_out_everywhere))
}

/// The `Set-Cookie` value for a session token (or, empty, for removing it).
pub fn session_cookie(state: &SignInState, token: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("token characters are cookie-safe")
}

/// A session cookie that ends with the browser (Conditional Access "never persistent").
pub fn browser_session_cookie(state: &SignInState, token: &str) -> HeaderValue {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("token characters are cookie-safe")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PassSignIn {
    username: String,
    temporary_access_pass: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordSignIn {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CodeStep {
    code: String,
}

async fn sign_in_with_pass(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::SignIn>,
    Facts(facts): Facts,
    GraphJson(input): GraphJson<PassSignIn>,
) -> ApiResult<Response> {
    state
        .rate_limits
        .admit_account(Endpoint::SignIn, &input.username)?;
    let outcome = state
        .passes
        .sign_in(&input.username, &input.temporary_access_pass, &facts)
        .await?;
    Ok(signed_in(&state, outcome))
}

async fn sign_in_with_password(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::SignIn>,
    Facts(facts): Facts,
    GraphJson(input): GraphJson<PasswordSignIn>,
) -> ApiResult<Response> {
    state
        .rate_limits
        .admit_account(Endpoint::SignIn, &input.username)?;
    let outcome = state
        .passwords
        .sign_in(&input.username, &input.password, &facts)
        .await?;
    Ok(signed_in(&state, outcome))
}

/// Adds an authenticator app's code to the current session (the second step after a password).
async fn second_step_totp(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::SignIn>,
    CurrentSession { session }: CurrentSession,
    GraphJson(input): GraphJson<CodeStep>,
) -> ApiResult<Json<serde_json::Value>> {
    let added = state.software_oath.verify(&session, &input.code).await?;
    let mut methods = session.methods.clone();
    methods.push(added);
    Ok(Json(
        json!({ "userId": session.user_id, "methods": methods }),
    ))
}

/// The response to an accepted first factor: the person and the session cookie. (A refusal is
/// an [`portcullis_core::Error::SignInRefused`], rendered like every other JSON error.)
fn signed_in(
    state: &SignInState,
    (user, session, token): (
        portcullis_core::directory::model::User,
        portcullis_core::session::AuthSession,
        String,
    ),
) -> Response {
    let mut response = Json(json!({
        "userId": user.id,
        "userPrincipalName": user.user_principal_name,
        "methods": session.methods,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(state, &token, SESSION_LIFETIME.whole_seconds()),
    );
    response
}

async fn current(CurrentSession { session }: CurrentSession) -> Json<serde_json::Value> {
    Json(json!({
        "userId": session.user_id,
        "methods": session.methods,
        "expiresDateTime": portcullis_core::kernel::clock::graph_datetime::format(session.expires),
    }))
}

async fn sign_out(
    State(state): State<Arc<SignInState>>,
    CurrentSession { session }: CurrentSession,
) -> ApiResult<Response> {
    state.sessions.end(&session).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

/// "Sign out everywhere" (security info): every session of the person, this one included, and
/// every refresh token issued to them end at once, on every node.
async fn sign_out_everywhere(
    State(state): State<Arc<SignInState>>,
    Meta(meta): Meta,
    CurrentSession { session }: CurrentSession,
) -> ApiResult<Response> {
    state.sessions.end_everywhere(&session, &meta).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}
