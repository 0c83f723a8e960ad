//! Temporary Access Pass: the per-user methods under `users/{id}/authentication/` and the
//! method's configuration in the authentication methods policy.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{
    ReadPolicies, ReadUserMethods, WriteAuthenticationMethodPolicy, WriteUserMethods,
};
use portcullis_core::methods::password::{PasswordConfiguration, ResetPassword};
use portcullis_core::methods::tap::{
    NewTemporaryAccessPass, TapConfiguration, TemporaryAccessPassMethod,
};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{entity, plain_collection};
use crate::error::ApiResult;
use crate::extract::{Authorized, GraphJson, Meta};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_passes, create_pass))
        .routes(routes!(get_pass, delete_pass))
        .routes(routes!(get_tap_configuration, update_tap_configuration))
        .routes(routes!(
            get_password_configuration,
            update_password_configuration
        ))
        .routes(routes!(methods_policy))
        .routes(routes!(reset_password))
}

/// The authentication methods policy: every method's configuration in one document.
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy", tag = "authentication methods",
    responses((status = 200, description = "authenticationMethodsPolicy")), security(("bearer" = ["Policy.Read.All"])))]
async fn methods_policy(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let configurations = vec![
        state.passkeys.configuration(&grant).await?,
        serde_json::to_value(state.passes.read_configuration(&grant).await?).unwrap_or(Value::Null),
        serde_json::to_value(state.passwords.read_configuration(&grant).await?)
            .unwrap_or(Value::Null),
    ];
    Ok(Json(serde_json::json!({
        "@odata.context": super::context(&state, "policies/authenticationMethodsPolicy/$entity"),
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": "The authentication methods people in this tenant may use and register.",
        "policyVersion": "1.5",
        "authenticationMethodConfigurations": configurations,
    })))
}

/// Whether passwords are allowed in this tenant (off by default).
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password", tag = "authentication methods",
    responses((status = 200, body = PasswordConfiguration)), security(("bearer" = ["Policy.Read.All"])))]
async fn get_password_configuration(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let config = state.passwords.read_configuration(&grant).await?;
    Ok(entity(
        &state,
        "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
        &config,
    ))
}

/// Turn passwords on or off (`{"state":"enabled"}`).
#[utoipa::path(patch, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password", tag = "authentication methods",
    request_body(content = Object), responses((status = 204, description = "Updated"), (status = 400, description = "Invalid field"), (status = 409, description = "The lockout guard: administrators would be left with no way in (policyWouldLockOut; acknowledgeLockout=true to proceed)")),
    security(("bearer" = ["Policy.ReadWrite.AuthenticationMethod"])))]
async fn update_password_configuration(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteAuthenticationMethodPolicy>,
    Meta(meta): Meta,
    GraphJson(patch): GraphJson<Value>,
) -> ApiResult<StatusCode> {
    state
        .passwords
        .update_configuration(&grant, &meta, patch)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An administrator sets a user's password (`{"newPassword": "…"}`).
#[utoipa::path(post, path = "/users/{id}/authentication/passwordMethods/28c10230-6103-485e-b985-444c60001490/resetPassword", tag = "authentication methods",
    params(("id" = String, Path)), request_body = ResetPassword,
    responses((status = 204, description = "Set"), (status = 400, description = "Too short, contains the user name, or passwords are off"), (status = 403, description = "Authorization_TargetPrivileged: the user holds a role the caller's roles do not cover"), (status = 404, description = "No such user")),
    security(("bearer" = ["UserAuthenticationMethod.ReadWrite.All"])))]
async fn reset_password(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUserMethods>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(input): GraphJson<ResetPassword>,
) -> ApiResult<StatusCode> {
    state.passwords.reset(&grant, &meta, &id, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's Temporary Access Pass (at most one; the pass itself is never shown again).
#[utoipa::path(get, path = "/users/{id}/authentication/temporaryAccessPassMethods", tag = "authentication methods", params(("id" = String, Path)),
    responses((status = 200, description = "Passes"), (status = 404, description = "No such user")), security(("bearer" = ["UserAuthenticationMethod.Read.All"])))]
async fn list_passes(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUserMethods>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let passes = state.passes.list(&grant, &id).await?;
    let value = passes
        .iter()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect();
    Ok(plain_collection(
        &state,
        &format!("users('{id}')/authentication/temporaryAccessPassMethods"),
        value,
    ))
}

/// Issue a Temporary Access Pass, replacing any the user had. The response is the only place the pass appears.
#[utoipa::path(post, path = "/users/{id}/authentication/temporaryAccessPassMethods", tag = "authentication methods", params(("id" = String, Path)),
    request_body = NewTemporaryAccessPass,
    responses((status = 201, body = TemporaryAccessPassMethod), (status = 400, description = "Outside the policy's limits"), (status = 403, description = "Not for yourself, or Authorization_TargetPrivileged: the user holds a role the caller's roles do not cover")),
    security(("bearer" = ["UserAuthenticationMethod.ReadWrite.All"])))]
async fn create_pass(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUserMethods>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(input): GraphJson<NewTemporaryAccessPass>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = state.passes.issue(&grant, &meta, &id, input).await?;
    Ok((
        StatusCode::CREATED,
        entity(
            &state,
            "microsoft.graph.temporaryAccessPassAuthenticationMethod",
            &created,
        ),
    ))
}

/// One pass.
#[utoipa::path(get, path = "/users/{id}/authentication/temporaryAccessPassMethods/{method_id}", tag = "authentication methods",
    params(("id" = String, Path), ("method_id" = String, Path)),
    responses((status = 200, body = TemporaryAccessPassMethod), (status = 404, description = "No such pass")), security(("bearer" = ["UserAuthenticationMethod.Read.All"])))]
async fn get_pass(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUserMethods>,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let pass = state.passes.get(&grant, &id, &method_id).await?;
    Ok(entity(
        &state,
        "microsoft.graph.temporaryAccessPassAuthenticationMethod",
        &pass,
    ))
}

/// Revoke a pass.
#[utoipa::path(delete, path = "/users/{id}/authentication/temporaryAccessPassMethods/{method_id}", tag = "authentication methods",
    params(("id" = String, Path), ("method_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Authorization_TargetPrivileged: the user holds a role the caller's roles do not cover"), (status = 404, description = "No such pass")), security(("bearer" = ["UserAuthenticationMethod.ReadWrite.All"])))]
async fn delete_pass(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUserMethods>,
    Meta(meta): Meta,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.passes.delete(&grant, &meta, &id, &method_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The Temporary Access Pass method configuration.
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass", tag = "authentication methods",
    responses((status = 200, body = TapConfiguration)), security(("bearer" = ["Policy.Read.All"])))]
async fn get_tap_configuration(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let config = state.passes.read_configuration(&grant).await?;
    Ok(entity(
        &state,
        "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
        &config,
    ))
}

/// Change the Temporary Access Pass configuration (lifetimes 10–43200 minutes, length 8–48).
#[utoipa::path(patch, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass", tag = "authentication methods",
    request_body(content = Object),
    responses((status = 204, description = "Updated"), (status = 400, description = "Outside Entra's ranges"), (status = 409, description = "The lockout guard: administrators would be left with no way in (policyWouldLockOut; acknowledgeLockout=true to proceed)")), security(("bearer" = ["Policy.ReadWrite.AuthenticationMethod"])))]
async fn update_tap_configuration(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteAuthenticationMethodPolicy>,
    Meta(meta): Meta,
    GraphJson(patch): GraphJson<Value>,
) -> ApiResult<StatusCode> {
    state
        .passes
        .update_configuration(&grant, &meta, patch)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
