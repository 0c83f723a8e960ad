//! `/applications`: application registrations and their client secrets.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{ReadApplications, WriteApplications, WriteRoles};
use portcullis_core::directory::model::Application;
use portcullis_core::directory::{
    AddPassword, ApplicationPatch, NewApplication, NewSecret, RemovePassword,
};
use portcullis_core::kernel::odata::{self, APPLICATION_FIELDS};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{collection, entity};
use crate::error::ApiResult;
use crate::extract::{Authorized, GraphJson, MaybeAuthorized, Meta, OData};
use crate::{AppState, GraphState};

const APPLICATION_PROPERTIES: &[&str] = &[
    "id",
    "appId",
    "displayName",
    "isFallbackPublicClient",
    "web",
    "publicClient",
    "spa",
    "apiPermissions",
    "identifierUris",
    "api",
    "appRoles",
    "appRoleAssignmentRequired",
    "groupMembershipClaims",
    "passwordCredentials",
    "createdDateTime",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(
            get_application,
            update_application,
            delete_application
        ))
        .routes(routes!(add_password))
        .routes(routes!(remove_password))
}

/// List applications.
#[utoipa::path(get, path = "/applications", tag = "applications",
    params(("$filter" = Option<String>, Query), ("$top" = Option<u32>, Query), ("$select" = Option<String>, Query), ("$skiptoken" = Option<String>, Query)),
    responses((status = 200, description = "A page of applications")), security(("bearer" = ["Application.Read.All"])))]
async fn list_applications(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadApplications>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(&od.options, APPLICATION_FIELDS, APPLICATION_PROPERTIES)?;
    let page = state
        .directory
        .list_applications(&grant, &list.query)
        .await?;
    Ok(collection(&state, "applications", page, &list, &od, |v| v))
}

/// Register an application. Granting `apiPermissions` also needs RoleManagement.ReadWrite.Directory (admin consent).
#[utoipa::path(post, path = "/applications", tag = "applications", request_body = NewApplication,
    responses((status = 201, body = Application), (status = 400, description = "Invalid field"), (status = 403, description = "Granting permissions without consent rights"), (status = 409, description = "appId already in use")),
    security(("bearer" = ["Application.ReadWrite.All"])))]
async fn create_application(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteApplications>,
    MaybeAuthorized(consent): MaybeAuthorized<WriteRoles>,
    Meta(meta): Meta,
    GraphJson(input): GraphJson<NewApplication>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app = state
        .directory
        .create_application(&grant, consent.as_ref(), &meta, input)
        .await?;
    Ok((
        StatusCode::CREATED,
        entity(&state, "applications/$entity", &app),
    ))
}

/// Get an application by object id or appId.
#[utoipa::path(get, path = "/applications/{id}", tag = "applications", params(("id" = String, Path)),
    responses((status = 200, body = Application), (status = 404, description = "No such application")), security(("bearer" = ["Application.Read.All"])))]
async fn get_application(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadApplications>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(&od.options, &[], APPLICATION_PROPERTIES)?;
    let app = state.directory.application(&grant, &id).await?;
    let Json(json) = entity(&state, "applications/$entity", &app);
    Ok(Json(odata::apply_select(json, list.select.as_deref())))
}

/// Update an application.
#[utoipa::path(patch, path = "/applications/{id}", tag = "applications", request_body = ApplicationPatch, params(("id" = String, Path)),
    responses((status = 204, description = "Updated"), (status = 400, description = "Invalid field"), (status = 403, description = "The caller does not hold every permission the application holds, nor RoleManagement.ReadWrite.Directory (applicationPermissionsNotCovered, automationApplicationProtected, firstPartyApplicationProtected)"), (status = 404, description = "No such application")),
    security(("bearer" = ["Application.ReadWrite.All"])))]
async fn update_application(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteApplications>,
    MaybeAuthorized(consent): MaybeAuthorized<WriteRoles>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(patch): GraphJson<ApplicationPatch>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .update_application(&grant, consent.as_ref(), &meta, &id, patch)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an application and its secrets.
#[utoipa::path(delete, path = "/applications/{id}", tag = "applications", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "The caller does not hold every permission the application holds, nor RoleManagement.ReadWrite.Directory (applicationPermissionsNotCovered, automationApplicationProtected, firstPartyApplicationProtected)"), (status = 404, description = "No such application")), security(("bearer" = ["Application.ReadWrite.All"])))]
async fn delete_application(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteApplications>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .delete_application(&grant, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a client secret. The response is the only time `secretText` is shown.
#[utoipa::path(post, path = "/applications/{id}/addPassword", tag = "applications", request_body = AddPassword, params(("id" = String, Path)),
    responses((status = 200, body = NewSecret), (status = 400, description = "Invalid field"), (status = 403, description = "The caller does not hold every permission the application holds, nor RoleManagement.ReadWrite.Directory (applicationPermissionsNotCovered, automationApplicationProtected, firstPartyApplicationProtected)"), (status = 404, description = "No such application")),
    security(("bearer" = ["Application.ReadWrite.All"])))]
async fn add_password(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteApplications>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(input): GraphJson<AddPassword>,
) -> ApiResult<Json<Value>> {
    let secret = state
        .directory
        .add_password(&grant, &meta, &id, input)
        .await?;
    Ok(entity(
        &state,
        "microsoft.graph.passwordCredential",
        &secret,
    ))
}

/// Remove a client secret by keyId.
#[utoipa::path(post, path = "/applications/{id}/removePassword", tag = "applications", request_body = RemovePassword, params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, description = "The caller does not hold every permission the application holds, nor RoleManagement.ReadWrite.Directory (applicationPermissionsNotCovered, automationApplicationProtected, firstPartyApplicationProtected)"), (status = 404, description = "No such application or secret")),
    security(("bearer" = ["Application.ReadWrite.All"])))]
async fn remove_password(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteApplications>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(input): GraphJson<RemovePassword>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .remove_password(&grant, &meta, &id, input)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
