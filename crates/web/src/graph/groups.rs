//! `/groups`: security groups, their members and nesting.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{ReadGroups, WriteGroupMembers, WriteGroups};
use portcullis_core::directory::model::{Group, MemberRef};
use portcullis_core::directory::{GroupPatch, NewGroup};
use portcullis_core::kernel::odata::{self, GROUP_FIELDS};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{collection, entity, whole_collection};
use crate::error::ApiResult;
use crate::extract::{Authorized, GraphJson, Meta, OData};
use crate::{AppState, GraphState};

const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "securityEnabled",
    "isAssignableToRole",
    "createdDateTime",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(count_groups))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(list_members))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
        .routes(routes!(transitive_members))
        .routes(routes!(group_member_of))
}

/// Body of `POST /groups/{id}/members/$ref`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberReference {
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
}

pub(super) fn member_json(m: &MemberRef) -> Value {
    let mut v = serde_json::json!({
        "@odata.type": m.kind.odata_type(),
        "id": m.id,
        "displayName": m.display_name,
    });
    if let Some(upn) = &m.user_principal_name {
        v["userPrincipalName"] = Value::String(upn.clone());
    }
    v
}

/// List groups.
#[utoipa::path(get, path = "/groups", tag = "groups",
    params(("$filter" = Option<String>, Query), ("$top" = Option<u32>, Query), ("$select" = Option<String>, Query), ("$skiptoken" = Option<String>, Query)),
    responses((status = 200, description = "A page of groups")),
    security(("bearer" = ["Group.Read.All"])))]
async fn list_groups(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadGroups>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(&od.options, GROUP_FIELDS, GROUP_PROPERTIES)?;
    let page = state.directory.list_groups(&grant, &list.query).await?;
    Ok(collection(&state, "groups", page, &list, &od, |v| v))
}

/// Create a security group.
#[utoipa::path(post, path = "/groups", tag = "groups", request_body = NewGroup,
    responses((status = 201, body = Group), (status = 400, description = "Invalid field"), (status = 403, description = "isAssignableToRole without RoleManagement.ReadWrite.Directory (roleAssignableGroupNeedsRoleManagement)")),
    security(("bearer" = ["Group.ReadWrite.All"])))]
async fn create_group(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteGroups>,
    Meta(meta): Meta,
    GraphJson(input): GraphJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let group = state.directory.create_group(&grant, &meta, input).await?;
    Ok((
        StatusCode::CREATED,
        entity(&state, "groups/$entity", &group),
    ))
}

/// Get a group.
#[utoipa::path(get, path = "/groups/{id}", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, body = Group), (status = 404, description = "No such group")),
    security(("bearer" = ["Group.Read.All"])))]
async fn get_group(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadGroups>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(&od.options, &[], GROUP_PROPERTIES)?;
    let group = state.directory.group(&grant, &id).await?;
    let Json(json) = entity(&state, "groups/$entity", &group);
    Ok(Json(odata::apply_select(json, list.select.as_deref())))
}

/// Update a group.
#[utoipa::path(patch, path = "/groups/{id}", tag = "groups", request_body = GroupPatch, params(("id" = String, Path)),
    responses((status = 204, description = "Updated"), (status = 400, description = "Invalid field, or isAssignableToRole changed"), (status = 404, description = "No such group")),
    security(("bearer" = ["Group.ReadWrite.All"])))]
async fn update_group(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteGroups>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(patch): GraphJson<GroupPatch>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .update_group(&grant, &meta, &id, patch)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a group and its memberships.
#[utoipa::path(delete, path = "/groups/{id}", tag = "groups", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such group"), (status = 409, description = "A policy names the group, or deleting it would leave no enabled Global Administrator (lastGlobalAdministrator)")),
    security(("bearer" = ["Group.ReadWrite.All"])))]
async fn delete_group(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteGroups>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.delete_group(&grant, &meta, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Direct members of a group.
#[utoipa::path(get, path = "/groups/{id}/members", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, description = "Members"), (status = 404, description = "No such group")),
    security(("bearer" = ["Group.Read.All"])))]
async fn list_members(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadGroups>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let members = state.directory.members(&grant, &id, false).await?;
    whole_collection(
        &state,
        "directoryObjects",
        members.iter().map(member_json).collect(),
        &od,
    )
}

/// Members of a group and of every group nested in it.
#[utoipa::path(get, path = "/groups/{id}/transitiveMembers", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, description = "Members"), (status = 404, description = "No such group")),
    security(("bearer" = ["Group.Read.All"])))]
async fn transitive_members(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadGroups>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let members = state.directory.members(&grant, &id, true).await?;
    whole_collection(
        &state,
        "directoryObjects",
        members.iter().map(member_json).collect(),
        &od,
    )
}

/// Groups this group is a direct member of.
#[utoipa::path(get, path = "/groups/{id}/memberOf", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, description = "Groups"), (status = 404, description = "No such group")),
    security(("bearer" = ["Group.Read.All"])))]
async fn group_member_of(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadGroups>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let group = state.directory.group(&grant, &id).await?;
    let groups = state.directory.member_of(&grant, group.id, false).await?;
    whole_collection(
        &state,
        "directoryObjects",
        groups.iter().map(super::users::group_json).collect(),
        &od,
    )
}

/// Add a user or a group as a member: `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`.
#[utoipa::path(post, path = "/groups/{id}/members/$ref", tag = "groups", request_body = MemberReference, params(("id" = String, Path)),
    responses((status = 204, description = "Added"), (status = 400, description = "Bad reference, circular nesting, or a group into a role-assignable group (roleAssignableGroupCannotNest)"), (status = 403, description = "A role-assignable group without RoleManagement.ReadWrite.Directory (roleAssignableGroupNeedsRoleManagement)"), (status = 404, description = "No such group or member"), (status = 409, description = "Already a member")),
    security(("bearer" = ["GroupMember.ReadWrite.All"])))]
async fn add_member(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteGroupMembers>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphJson(body): GraphJson<MemberReference>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .add_member(&grant, &meta, &id, &body.odata_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member.
#[utoipa::path(delete, path = "/groups/{id}/members/{member_id}/$ref", tag = "groups", params(("id" = String, Path), ("member_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, description = "A role-assignable group without RoleManagement.ReadWrite.Directory (roleAssignableGroupNeedsRoleManagement)"), (status = 404, description = "No such group or membership"), (status = 409, description = "The member is the last enabled Global Administrator (lastGlobalAdministrator)")),
    security(("bearer" = ["GroupMember.ReadWrite.All"])))]
async fn remove_member(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteGroupMembers>,
    Meta(meta): Meta,
    Path((id, member_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .remove_member(&grant, &meta, &id, &member_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The number of groups (that `$filter` matches), as plain text, as Graph's `/groups/$count`
/// answers. `ConsistencyLevel: eventual` is accepted and not needed.
#[utoipa::path(get, path = "/groups/$count", tag = "groups",
    params(("$filter" = Option<String>, Query)),
    responses((status = 200, description = "The count", body = String, content_type = "text/plain")),
    security(("bearer" = ["Group.Read.All"])))]
async fn count_groups(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadGroups>,
    od: OData,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let mut list = odata::parse_list(&od.options, GROUP_FIELDS, GROUP_PROPERTIES)?;
    list.query.count = true;
    list.query.top = 1;
    let page = state.directory.list_groups(&grant, &list.query).await?;
    Ok((
        [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        page.count.unwrap_or(0).to_string(),
    )
        .into_response())
}
