//! `/servicePrincipals/{id}/appRoleAssignedTo`: who holds an application's app roles (and
//! default access). Portcullis has no service principals apart from applications: `{id}` is
//! the application's object id or appId, and a principal that is an application is named by
//! its object id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::access::NewAppRoleAssignment;
use portcullis_core::directory::authz::{ReadApplications, WriteAppRoleAssignments};
use portcullis_core::directory::model::AppRoleAssignment;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{context, entity};
use crate::error::ApiResult;
use crate::extract::{Authorized, GraphJson, Meta};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_assigned_to, assign))
        .routes(routes!(remove_assignment))
}

/// Who holds the application's app roles: users, groups and applications.
#[utoipa::path(get, path = "/servicePrincipals/{id}/appRoleAssignedTo", tag = "applications", params(("id" = String, Path, description = "The application's object id or appId")),
    responses((status = 200, description = "App role assignments"), (status = 404, description = "No such application")),
    security(("bearer" = ["Application.Read.All"])))]
async fn list_assigned_to(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadApplications>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (app, assignments) = state.directory.app_role_assigned_to(&grant, &id).await?;
    Ok(Json(serde_json::json!({
        "@odata.context": context(&state, &format!("servicePrincipals('{}')/appRoleAssignedTo", app.id)),
        "value": assignments,
    })))
}

/// Give a user, group or application one of the application's app roles, or default access
/// (`appRoleId` `00000000-0000-0000-0000-000000000000`).
#[utoipa::path(post, path = "/servicePrincipals/{id}/appRoleAssignedTo", tag = "applications", request_body = NewAppRoleAssignment, params(("id" = String, Path, description = "The application's object id or appId")),
    responses((status = 201, body = AppRoleAssignment), (status = 400, description = "Invalid field"), (status = 403, description = "A first-party application (firstPartyApplicationProtected)"), (status = 404, description = "No such application"), (status = 409, description = "The principal already holds the role")),
    security(("bearer" = ["AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"])))]
async fn assign(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteAppRoleAssignments>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(input): GraphJson<NewAppRoleAssignment>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let assignment = state
        .directory
        .assign_app_role(&grant, &meta, &id, input)
        .await?;
    Ok((
        StatusCode::CREATED,
        entity(&state, "appRoleAssignments/$entity", &assignment),
    ))
}

/// Remove an app role assignment.
#[utoipa::path(delete, path = "/servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}", tag = "applications", params(("id" = String, Path), ("assignmentId" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such application or assignment")),
    security(("bearer" = ["AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"])))]
async fn remove_assignment(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteAppRoleAssignments>,
    Meta(meta): Meta,
    Path((id, assignment_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .remove_app_role_assignment(&grant, &meta, &id, &assignment_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
