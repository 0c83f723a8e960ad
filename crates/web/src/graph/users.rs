//! `/users`: people in the directory.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{ReadGroups, ReadUsers, RevokeUserSessions, WriteUsers};
use portcullis_core::directory::model::{Group, User};
use portcullis_core::directory::{NewUser, UserPatch};
use portcullis_core::kernel::odata::{self, USER_FIELDS, USER_ORDER_FIELDS, USER_SEARCH_FIELDS};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{collection, entity, whole_collection};
use crate::error::ApiResult;
use crate::extract::{Authorized, GraphJson, Meta, OData};
use crate::{AppState, GraphState};

pub(super) const USER_PROPERTIES: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "accountEnabled",
    "userType",
    "createdDateTime",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(count_users))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(revoke_sign_in_sessions))
        .routes(routes!(user_member_of))
        .routes(routes!(user_transitive_member_of))
        .routes(routes!(get_member_objects))
}

pub(super) fn group_json(g: &Group) -> Value {
    let mut v = serde_json::to_value(g).unwrap_or(Value::Null);
    v["@odata.type"] = Value::String("#microsoft.graph.group".into());
    v
}

/// List users. Supports `$filter` (eq, ne, startswith, ge/le on createdDateTime), `$top`,
/// `$select`, `$count`, `$search` (`"displayName:jo"`, `"userPrincipalName:…"`, `"mail:…"`,
/// joined by AND: any part of the property, case-insensitive) and `$orderby` (displayName,
/// userPrincipalName or createdDateTime, asc or desc). `ConsistencyLevel: eventual`, which
/// Graph asks for beside `$search` and `$count`, is accepted and not needed.
#[utoipa::path(get, path = "/users", tag = "users",
    params(("$filter" = Option<String>, Query), ("$search" = Option<String>, Query), ("$orderby" = Option<String>, Query), ("$count" = Option<bool>, Query), ("$top" = Option<u32>, Query), ("$select" = Option<String>, Query), ("$skiptoken" = Option<String>, Query)),
    responses((status = 200, description = "A page of users"), (status = 400, description = "Unsupported or malformed query option")),
    security(("bearer" = ["User.Read.All"])))]
async fn list_users(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUsers>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_ordered_list(
        &od.options,
        USER_FIELDS,
        USER_PROPERTIES,
        USER_SEARCH_FIELDS,
        USER_ORDER_FIELDS,
    )?;
    let page = state
        .directory
        .list_users_in_order(&grant, &list.query, list.order)
        .await?;
    Ok(collection(&state, "users", page, &list, &od, |v| v))
}

/// Create a user. With `passwordProfile` the user gets that password in the same transaction,
/// when the tenant's authentication methods policy enables passwords (otherwise a 400 naming
/// `passwordProfile`); the password rules of `resetPassword` apply.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, description = "Invalid field, or passwordProfile while passwords are off or breaking the password rules"), (status = 409, description = "userPrincipalName already in use")),
    security(("bearer" = ["User.ReadWrite.All"])))]
async fn create_user(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUsers>,
    Meta(meta): Meta,
    GraphJson(input): GraphJson<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = if input.password_profile.is_some() {
        state.passwords.create_user(&grant, &meta, input).await?
    } else {
        state.directory.create_user(&grant, &meta, input).await?
    };
    Ok((StatusCode::CREATED, entity(&state, "users/$entity", &user)))
}

/// Get a user by id or userPrincipalName.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "Object id or userPrincipalName")),
    responses((status = 200, body = User), (status = 404, description = "No such user")),
    security(("bearer" = ["User.Read.All"])))]
async fn get_user(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUsers>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(&od.options, &[], USER_PROPERTIES)?;
    let user = state.directory.user(&grant, &id).await?;
    let Json(json) = entity(&state, "users/$entity", &user);
    Ok(Json(odata::apply_select(json, list.select.as_deref())))
}

/// Update a user.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UserPatch, params(("id" = String, Path)),
    responses((status = 204, description = "Updated"), (status = 400, description = "Invalid field"), (status = 403, description = "Authorization_TargetPrivileged: the user holds a role the caller's roles do not cover"), (status = 404, description = "No such user"), (status = 409, description = "userPrincipalName already in use, or disabling the last enabled Global Administrator (lastGlobalAdministrator)")),
    security(("bearer" = ["User.ReadWrite.All"])))]
async fn update_user(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUsers>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(patch): GraphJson<UserPatch>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .update_user(&grant, &meta, &id, patch)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user: it moves to `directory/deletedItems`, restorable for 30 days, and its
/// sessions and refresh tokens end at once.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Authorization_TargetPrivileged: the user holds a role the caller's roles do not cover"), (status = 404, description = "No such user"), (status = 409, description = "A policy names the user, or they are the last enabled Global Administrator (lastGlobalAdministrator)")),
    security(("bearer" = ["User.ReadWrite.All"])))]
async fn delete_user(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteUsers>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.delete_user(&grant, &meta, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of a user and revoke every refresh token issued to them, on every node
/// at once; Graph's action, which answers `{"value": true}`.
#[utoipa::path(post, path = "/users/{id}/revokeSignInSessions", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "Revoked"), (status = 404, description = "No such user")),
    security(("bearer" = ["User.RevokeSessions.All"])))]
async fn revoke_sign_in_sessions(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<RevokeUserSessions>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .directory
        .revoke_sign_in_sessions(&grant, &meta, &id)
        .await?;
    Ok(Json(serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
        "value": true
    })))
}

/// Body of `POST /users/{id}/getMemberObjects`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GetMemberObjects {
    /// Only security groups (every group Portcullis has is one unless made otherwise).
    security_enabled_only: bool,
}

/// The ids of the groups the user is a member of, directly or through nesting: Graph's
/// action, and where a token's groups overage indicator (`_claim_sources`) points.
#[utoipa::path(post, path = "/users/{id}/getMemberObjects", tag = "users", params(("id" = String, Path)),
    request_body = GetMemberObjects,
    responses((status = 200, description = "Group ids"), (status = 400, description = "Invalid field"), (status = 404, description = "No such user")),
    security(("bearer" = ["User.Read.All", "Group.Read.All"])))]
async fn get_member_objects(
    State(state): State<Arc<GraphState>>,
    Authorized(users): Authorized<ReadUsers>,
    Authorized(groups): Authorized<ReadGroups>,
    Path(id): Path<String>,
    GraphJson(input): GraphJson<GetMemberObjects>,
) -> ApiResult<Json<Value>> {
    let user = state.directory.user(&users, &id).await?;
    let found = state.directory.member_of(&groups, user.id, true).await?;
    let ids: Vec<Value> = found
        .iter()
        .filter(|g| g.security_enabled || !input.security_enabled_only)
        .map(|g| Value::String(g.id.to_string()))
        .collect();
    Ok(Json(serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
        "value": ids
    })))
}

async fn member_of(
    state: &GraphState,
    read_users: &portcullis_core::directory::authz::Granted<ReadUsers>,
    grant: &portcullis_core::directory::authz::Granted<ReadGroups>,
    id: &str,
    transitive: bool,
    od: &OData,
) -> ApiResult<Json<Value>> {
    let user = state.directory.user(read_users, id).await?;
    let groups = state
        .directory
        .member_of(grant, user.id, transitive)
        .await?;
    whole_collection(
        state,
        "directoryObjects",
        groups.iter().map(group_json).collect(),
        od,
    )
}

/// Groups the user is a direct member of.
#[utoipa::path(get, path = "/users/{id}/memberOf", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "Groups"), (status = 404, description = "No such user")),
    security(("bearer" = ["User.Read.All", "Group.Read.All"])))]
async fn user_member_of(
    State(state): State<Arc<GraphState>>,
    Authorized(users): Authorized<ReadUsers>,
    Authorized(groups): Authorized<ReadGroups>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    member_of(&state, &users, &groups, &id, false, &od).await
}

/// Groups the user is a member of directly or through nested groups.
#[utoipa::path(get, path = "/users/{id}/transitiveMemberOf", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "Groups"), (status = 404, description = "No such user")),
    security(("bearer" = ["User.Read.All", "Group.Read.All"])))]
async fn user_transitive_member_of(
    State(state): State<Arc<GraphState>>,
    Authorized(users): Authorized<ReadUsers>,
    Authorized(groups): Authorized<ReadGroups>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    member_of(&state, &users, &groups, &id, true, &od).await
}

/// The number of users (that `$filter` and `$search` match), as plain text, as Graph's
/// `/users/$count` answers. `ConsistencyLevel: eventual` is accepted and not needed.
#[utoipa::path(get, path = "/users/$count", tag = "users",
    params(("$filter" = Option<String>, Query), ("$search" = Option<String>, Query)),
    responses((status = 200, description = "The count", body = String, content_type = "text/plain")),
    security(("bearer" = ["User.Read.All"])))]
async fn count_users(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadUsers>,
    od: OData,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    // `$search` narrows the count as it narrows the list; an order changes nothing here.
    let mut list = odata::parse_ordered_list(
        &od.options,
        USER_FIELDS,
        USER_PROPERTIES,
        USER_SEARCH_FIELDS,
        USER_ORDER_FIELDS,
    )?;
    list.query.count = true;
    list.query.top = 1;
    let page = state.directory.list_users(&grant, &list.query).await?;
    Ok((
        [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        page.count.unwrap_or(0).to_string(),
    )
        .into_response())
}
