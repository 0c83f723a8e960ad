//! Directory roles: the built-in role definitions, their assignments, and Graph's older
//! `/directoryRoles` view of the same facts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_core::directory::DirectoryObject;
use portcullis_core::directory::NewRoleAssignment;
use portcullis_core::directory::authz::{ReadRoles, WriteRoles};
use portcullis_core::directory::model::RoleAssignment;
use portcullis_core::directory::roles::{BUILT_IN_ROLES, BuiltInRole, built_in_role};
use portcullis_core::kernel::odata::{self, FieldKind, FilterField};
use portcullis_core::kernel::query::Value as QueryValue;
use portcullis_core::{Error, store::Op};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{counted_collection, entity, plain_collection, whole_collection};
use crate::error::ApiResult;
use crate::extract::WholeList;
use crate::extract::{Authorized, GraphJson, Meta, OData};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_role_definitions))
        .routes(routes!(get_role_definition))
        .routes(routes!(list_role_assignments, create_role_assignment))
        .routes(routes!(get_role_assignment, delete_role_assignment))
        .routes(routes!(list_directory_roles))
        .routes(routes!(directory_role_members))
}

fn definition_json(role: &BuiltInRole) -> Value {
    json!({
        "id": role.template_id,
        "displayName": role.display_name,
        "description": role.description,
        "isBuiltIn": true,
        "isEnabled": true,
        "isPrivileged": role.is_privileged,
        "templateId": role.template_id,
        "rolePermissions": [{ "allowedResourceActions": role.permissions }],
    })
}

fn find_role(id: &str) -> Result<&'static BuiltInRole, Error> {
    Uuid::parse_str(id)
        .ok()
        .and_then(built_in_role)
        .ok_or_else(|| Error::not_found("roleDefinition", id))
}

/// The built-in role definitions.
#[utoipa::path(get, path = "/roleManagement/directory/roleDefinitions", tag = "roles",
    responses((status = 200, description = "Role definitions")), security(("bearer" = ["RoleManagement.Read.Directory"])))]
async fn list_role_definitions(
    State(state): State<Arc<GraphState>>,
    _whole: WholeList,
    _auth: Authorized<ReadRoles>,
) -> Json<Value> {
    plain_collection(
        &state,
        "roleManagement/directory/roleDefinitions",
        BUILT_IN_ROLES.iter().map(definition_json).collect(),
    )
}

/// One built-in role definition.
#[utoipa::path(get, path = "/roleManagement/directory/roleDefinitions/{id}", tag = "roles", params(("id" = String, Path)),
    responses((status = 200, description = "Role definition"), (status = 404, description = "No such role")), security(("bearer" = ["RoleManagement.Read.Directory"])))]
async fn get_role_definition(
    State(state): State<Arc<GraphState>>,
    _auth: Authorized<ReadRoles>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let role = find_role(&id)?;
    Ok(entity(
        &state,
        "roleManagement/directory/roleDefinitions/$entity",
        &definition_json(role),
    ))
}

const ASSIGNMENT_FIELDS: &[FilterField] = &[
    FilterField {
        property: "principalId",
        column: "principal_id",
        kind: FieldKind::Guid,
    },
    FilterField {
        property: "roleDefinitionId",
        column: "role_definition_id",
        kind: FieldKind::Guid,
    },
];

/// Role assignments; `$filter` on principalId and roleDefinitionId (eq).
#[utoipa::path(get, path = "/roleManagement/directory/roleAssignments", tag = "roles",
    params(("$filter" = Option<String>, Query)),
    responses((status = 200, description = "Role assignments")), security(("bearer" = ["RoleManagement.Read.Directory"])))]
async fn list_role_assignments(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadRoles>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(
        &od.options,
        ASSIGNMENT_FIELDS,
        &["id", "principalId", "roleDefinitionId", "directoryScopeId"],
    )?;
    let mut principal = None;
    let mut role = None;
    for p in &list.query.filter {
        let QueryValue::Text(v) = &p.value else {
            continue;
        };
        if p.op != Op::Eq {
            return Err(Error::bad_query(
                "$filter",
                "Role assignments can be filtered with eq only.",
            )
            .into());
        }
        let id = Uuid::parse_str(v).map_err(|_| Error::bad_query("$filter", "Expected a GUID."))?;
        match p.field {
            "principal_id" => principal = Some(id),
            _ => role = Some(id),
        }
    }
    let assignments = state.directory.role_assignments(&grant, principal).await?;
    let value = assignments
        .iter()
        .filter(|a| role.is_none_or(|r| a.role_definition_id == r))
        .map(|a| {
            odata::apply_select(
                serde_json::to_value(a).unwrap_or(Value::Null),
                list.select.as_deref(),
            )
        })
        .collect();
    Ok(counted_collection(
        &state,
        "roleManagement/directory/roleAssignments",
        value,
        list.query.count,
    ))
}

/// Assign a built-in role to a user, group or application, tenant-wide.
#[utoipa::path(post, path = "/roleManagement/directory/roleAssignments", tag = "roles", request_body = NewRoleAssignment,
    responses((status = 201, body = RoleAssignment), (status = 400, description = "Unknown role or principal, or a group that is not role-assignable (groupNotAssignableToRole)"), (status = 409, description = "Already assigned")),
    security(("bearer" = ["RoleManagement.ReadWrite.Directory"])))]
async fn create_role_assignment(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteRoles>,
    Meta(meta): Meta,
    GraphJson(input): GraphJson<NewRoleAssignment>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = state.directory.assign_role(&grant, &meta, input).await?;
    Ok((
        StatusCode::CREATED,
        entity(
            &state,
            "roleManagement/directory/roleAssignments/$entity",
            &a,
        ),
    ))
}

/// One role assignment.
#[utoipa::path(get, path = "/roleManagement/directory/roleAssignments/{id}", tag = "roles", params(("id" = String, Path)),
    responses((status = 200, body = RoleAssignment), (status = 404, description = "No such assignment")), security(("bearer" = ["RoleManagement.Read.Directory"])))]
async fn get_role_assignment(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadRoles>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = state.directory.role_assignment(&grant, &id).await?;
    Ok(entity(
        &state,
        "roleManagement/directory/roleAssignments/$entity",
        &a,
    ))
}

/// Remove a role assignment.
#[utoipa::path(delete, path = "/roleManagement/directory/roleAssignments/{id}", tag = "roles", params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such assignment"), (status = 409, description = "The last enabled Global Administrator's assignment (lastGlobalAdministrator)")), security(("bearer" = ["RoleManagement.ReadWrite.Directory"])))]
async fn delete_role_assignment(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteRoles>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .remove_role_assignment(&grant, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The directory roles (every built-in role is activated here; its id is its template id).
#[utoipa::path(get, path = "/directoryRoles", tag = "roles",
    responses((status = 200, description = "Directory roles")), security(("bearer" = ["RoleManagement.Read.Directory"])))]
async fn list_directory_roles(
    State(state): State<Arc<GraphState>>,
    _whole: WholeList,
    _auth: Authorized<ReadRoles>,
) -> Json<Value> {
    plain_collection(
        &state,
        "directoryRoles",
        BUILT_IN_ROLES
            .iter()
            .map(|r| json!({ "id": r.template_id, "displayName": r.display_name, "description": r.description, "roleTemplateId": r.template_id }))
            .collect(),
    )
}

/// The principals holding a directory role.
#[utoipa::path(get, path = "/directoryRoles/{id}/members", tag = "roles", params(("id" = String, Path)),
    responses((status = 200, description = "Members"), (status = 404, description = "No such role")), security(("bearer" = ["RoleManagement.Read.Directory"])))]
async fn directory_role_members(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadRoles>,
    Path(id): Path<String>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let role = find_role(&id)?;
    let value = state
        .directory
        .role_members(&grant, role.template_id)
        .await?
        .into_iter()
        .map(|member| match member {
            DirectoryObject::User(u) => json!({"@odata.type": "#microsoft.graph.user", "id": u.id, "displayName": u.display_name, "userPrincipalName": u.user_principal_name}),
            DirectoryObject::Group(g) => json!({"@odata.type": "#microsoft.graph.group", "id": g.id, "displayName": g.display_name}),
            DirectoryObject::Application(app) => json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": app.id, "appId": app.app_id, "displayName": app.display_name}),
        })
        .collect();
    whole_collection(&state, "directoryObjects", value, &od)
}
