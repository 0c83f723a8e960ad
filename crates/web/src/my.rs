//! Self-service security info (JSON): change your password, add and remove authenticator apps.
//! Passkeys have their own module. Every route needs the session cookie; every change also needs
//! Conditional Access to let the session register security information
//! ([`SecurityInfoChange`]), and adding a method a recent strong sign-in or a Temporary Access
//! Pass, as adding a passkey does.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use portcullis_core::methods::totp::FinishTotpRegistration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::extract::{CurrentSession, GraphJson, Meta, SecurityInfoChange};
use crate::{AppState, SignInState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/my/password", post(change_password))
        .route("/my/totp/options", post(totp_options))
        .route("/my/totp", get(list_totp).post(finish_totp))
        .route("/my/totp/{id}", delete(delete_totp))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<Arc<SignInState>>,
    SecurityInfoChange { session }: SecurityInfoChange,
    Meta(meta): Meta,
    GraphJson(input): GraphJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    state
        .passwords
        .change(
            &session,
            &meta,
            &input.current_password,
            &input.new_password,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn totp_options(
    State(state): State<Arc<SignInState>>,
    SecurityInfoChange { session }: SecurityInfoChange,
) -> ApiResult<Json<Value>> {
    let options = state.software_oath.start_registration(&session).await?;
    Ok(Json(serde_json::to_value(options).unwrap_or(Value::Null)))
}

async fn finish_totp(
    State(state): State<Arc<SignInState>>,
    SecurityInfoChange { session }: SecurityInfoChange,
    Meta(meta): Meta,
    GraphJson(input): GraphJson<FinishTotpRegistration>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let method = state
        .software_oath
        .finish_registration(&session, &meta, input)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(method).unwrap_or(Value::Null)),
    ))
}

async fn list_totp(
    State(state): State<Arc<SignInState>>,
    CurrentSession { session }: CurrentSession,
) -> ApiResult<Json<Value>> {
    let methods = state.software_oath.list(session.user_id).await?;
    Ok(Json(json!({ "value": methods })))
}

async fn delete_totp(
    State(state): State<Arc<SignInState>>,
    SecurityInfoChange { session }: SecurityInfoChange,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.software_oath.delete(&session, &meta, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
