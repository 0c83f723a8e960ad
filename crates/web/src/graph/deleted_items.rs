//! `/directory/deletedItems`: users deleted in the last 30 days, restorable (Entra's soft
//! delete). Core's `directory::deleted` decides who may restore or permanently delete whom.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{ReadUsers, WriteUsers};
use portcullis_core::directory::model::{DeletedUser, User};
use portcullis_core::kernel::odata::{self, DELETED_USER_FIELDS};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::collection;
use super::users::USER_PROPERTIES;
use crate::error::ApiResult;
use crate::extract::{Authorized, Meta, OData};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deleted_users))
        .routes(routes!(get_deleted_item, permanently_delete_item))
        .routes(routes!(restore_deleted_item))
}

/// A user's properties and `deletedDateTime`, for `$select`.
fn deleted_user_properties() -> Vec<&'static str> {
    let mut properties = USER_PROPERTIES.to_vec();
    properties.push("deletedDateTime");
    properties
}

fn typed(mut json: Value) -> Value {
    if let Value::Object(map) = &mut json {
        map.insert(
            "@odata.type".into(),
            Value::String("#microsoft.graph.user".into()),
        );
    }
    json
}

/// List deleted users, most recently deleted first. Supports `$filter` (as on `/users`, and
/// on deletedDateTime), `$top`, `$count`, `$select`.
#[utoipa::path(get, path = "/directory/deletedItems/microsoft.graph.user", tag = "users",
    params(("$filter" = Option<String>, Query), ("$top" = Option<u32>, Query), ("$count" = Option<bool>, Query), ("$select" = Option<String>, Query), ("$skiptoken" = Option<String>, Query)),
    responses((status = 200, description = "A page of deleted users"), (status = 400, description = "Unsupported or malformed query option")),
    security(("bearer" = ["User.Read.All"])))]
async fn list_deleted_users(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUsers>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let properties = deleted_user_properties();
    let list = odata::parse_list(&od.options, DELETED_USER_FIELDS, &properties)?;
    let page = state
        .directory
        .list_deleted_users(&grant, &list.query)
        .await?;
    Ok(collection(
        &state,
        "directory/deletedItems/microsoft.graph.user",
        page,
        &list,
        &od,
        typed,
    ))
}

/// Get a deleted user by object id.
#[utoipa::path(get, path = "/directory/deletedItems/{id}", tag = "users", params(("id" = String, Path, description = "Object id")),
    responses((status = 200, body = DeletedUser), (status = 404, description = "Nothing with this id in deleted items")),
    security(("bearer" = ["User.Read.All"])))]
async fn get_deleted_item(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUsers>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let properties = deleted_user_properties();
    let list = odata::parse_list(&od.options, &[], &properties)?;
    let deleted = state.directory.deleted_user(&grant, &id).await?;
    let Json(json) = super::entity(&state, "directory/deletedItems/$entity", &deleted);
    Ok(Json(odata::apply_select(
        typed(json),
        list.select.as_deref(),
    )))
}

/// Restore a deleted user, with its group memberships, roles and app role assignments.
#[utoipa::path(post, path = "/directory/deletedItems/{id}/restore", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, description = "Authorization_TargetPrivileged: the user would get back a role the caller's roles do not cover"), (status = 404, description = "Nothing with this id in deleted items"), (status = 409, description = "A live user now has the same userPrincipalName or mail")),
    security(("bearer" = ["User.ReadWrite.All"])))]
async fn restore_deleted_item(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUsers>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user: User = state.directory.restore_user(&grant, &meta, &id).await?;
    let Json(json) = super::entity(&state, "directoryObjects/$entity", &user);
    Ok(Json(typed(json)))
}

/// Delete a deleted user for good: it cannot be restored afterwards.
#[utoipa::path(delete, path = "/directory/deletedItems/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted for good"), (status = 403, description = "Authorization_TargetPrivileged: the user held a role the caller's roles do not cover"), (status = 404, description = "Nothing with this id in deleted items")),
    security(("bearer" = ["User.ReadWrite.All"])))]
async fn permanently_delete_item(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUsers>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .permanently_delete_user(&grant, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
