//! Passkeys in the admin API: the FIDO2 method policy
//! (`policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2`) and each
//! person's passkeys (`users/{id}/authentication/fido2Methods`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{
    ReadPolicies, ReadUserMethods, WriteAuthenticationMethodPolicy, WriteUserMethods,
};
use portcullis_core::methods::passkeys::Fido2Method;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{context, entity, plain_collection};
use crate::error::ApiResult;
use crate::extract::{Authorized, GraphJson, Meta};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_fido2_configuration, update_fido2_configuration))
        .routes(routes!(list_fido2_methods))
        .routes(routes!(
            get_fido2_method,
            update_fido2_method,
            delete_fido2_method
        ))
}

/// Body of `PATCH /users/{id}/authentication/fido2Methods/{methodId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fido2MethodPatch {
    pub display_name: String,
}

/// The passkey (FIDO2) method policy; Entra's defaults when it was never changed.
#[utoipa::path(get, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
    tag = "authenticationMethods",
    responses((status = 200, description = "fido2AuthenticationMethodConfiguration")),
    security(("bearer" = ["Policy.Read.All"])))]
async fn get_fido2_configuration(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let mut body = state.passkeys.configuration(&grant).await?;
    body["@odata.context"] = Value::String(context(
        &state,
        "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity",
    ));
    Ok(Json(body))
}

/// Change the passkey method policy: properties given replace the current ones.
#[utoipa::path(patch, path = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
    tag = "authenticationMethods", request_body(content = Object, description = "fido2AuthenticationMethodConfiguration"),
    responses((status = 204, description = "Updated"), (status = 400, description = "Invalid or unsupported property, unknown group")),
    security(("bearer" = ["Policy.ReadWrite.AuthenticationMethod"])))]
async fn update_fido2_configuration(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteAuthenticationMethodPolicy>,
    Meta(meta): Meta,
    GraphJson(patch): GraphJson<Value>,
) -> ApiResult<StatusCode> {
    state
        .passkeys
        .update_configuration(&grant, &meta, &patch)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A person's passkeys.
#[utoipa::path(get, path = "/users/{id}/authentication/fido2Methods", tag = "authenticationMethods",
    params(("id" = String, Path, description = "Object id or userPrincipalName")),
    responses((status = 200, description = "fido2AuthenticationMethod collection"), (status = 404, description = "No such user")),
    security(("bearer" = ["UserAuthenticationMethod.Read.All"])))]
async fn list_fido2_methods(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUserMethods>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let methods = state.passkeys.user_methods(&grant, &id).await?;
    let value = methods
        .iter()
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect();
    Ok(plain_collection(
        &state,
        &format!("users('{id}')/authentication/fido2Methods"),
        value,
    ))
}

/// One of a person's passkeys.
#[utoipa::path(get, path = "/users/{id}/authentication/fido2Methods/{methodId}", tag = "authenticationMethods",
    params(("id" = String, Path), ("methodId" = String, Path)),
    responses((status = 200, body = Fido2Method), (status = 404, description = "No such user or passkey")),
    security(("bearer" = ["UserAuthenticationMethod.Read.All"])))]
async fn get_fido2_method(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUserMethods>,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let method = state.passkeys.user_method(&grant, &id, &method_id).await?;
    Ok(entity(
        &state,
        &format!("users('{id}')/authentication/fido2Methods/$entity"),
        &method,
    ))
}

/// Rename a person's passkey.
#[utoipa::path(patch, path = "/users/{id}/authentication/fido2Methods/{methodId}", tag = "authenticationMethods",
    params(("id" = String, Path), ("methodId" = String, Path)), request_body = Fido2MethodPatch,
    responses((status = 204, description = "Renamed"), (status = 400, description = "Invalid name"), (status = 404, description = "No such user or passkey")),
    security(("bearer" = ["UserAuthenticationMethod.ReadWrite.All"])))]
async fn update_fido2_method(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUserMethods>,
    Meta(meta): Meta,
    Path((id, method_id)): Path<(String, String)>,
    GraphJson(patch): GraphJson<Fido2MethodPatch>,
) -> ApiResult<StatusCode> {
    state
        .passkeys
        .rename_user_method(&grant, &meta, &id, &method_id, &patch.display_name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a person's passkey. (The passkey stays on the authenticator; it just no longer
/// signs in here.)
#[utoipa::path(delete, path = "/users/{id}/authentication/fido2Methods/{methodId}", tag = "authenticationMethods",
    params(("id" = String, Path), ("methodId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Authorization_TargetPrivileged: the user holds a role the caller's roles do not cover"), (status = 404, description = "No such user or passkey")),
    security(("bearer" = ["UserAuthenticationMethod.ReadWrite.All"])))]
async fn delete_fido2_method(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUserMethods>,
    Meta(meta): Meta,
    Path((id, method_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .passkeys
        .delete_user_method(&grant, &meta, &id, &method_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
