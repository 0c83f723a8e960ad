//! Groups: the list, a new group, one group with its members.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use portcullis_core::Error;
use portcullis_core::directory::NewGroup;
use portcullis_core::directory::authz::{ReadGroups, ReadUsers, WriteGroupMembers, WriteGroups};
use portcullis_core::directory::model::ObjectKind;
use serde_json::json;

use super::users::find_group;
use super::{
    Audit, Confirm, FieldErrors, FormData, PageResult, Portal, Query, done, one_error, refusal,
    when,
};
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/groups", get(list).post(create))
        .route("/admin/groups/{id}", get(show))
        .route(
            "/admin/groups/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/admin/groups/{id}/members", post(add_member))
        .route(
            "/admin/groups/{id}/members/{member}/remove",
            get(confirm_remove_member).post(remove_member),
        )
}

async fn list(State(state): State<Arc<PortalState>>, portal: Portal, query: Query) -> PageResult {
    list_page(
        &state,
        &portal,
        &query,
        StatusCode::OK,
        json!({}),
        FieldErrors::new(),
    )
    .await
}

async fn list_page(
    state: &PortalState,
    portal: &Portal,
    query: &Query,
    status: StatusCode,
    values: serde_json::Value,
    errors: FieldErrors,
) -> PageResult {
    let grant = portal.grant::<ReadGroups>("groups")?;
    let filter = query.name_filter();
    let page = state
        .directory
        .list_groups(&grant, &query.list(filter)?)
        .await?;
    Ok(portal.render(
        status,
        "admin/groups.html",
        "groups",
        json!({
            "groups": page.items.iter().map(|g| json!({
                "id": g.id,
                "displayName": g.display_name,
                "description": g.description,
                "isAssignableToRole": g.is_assignable_to_role,
                "created": when(g.created_date_time),
            })).collect::<Vec<_>>(),
            "filters": { "name": query.get("name") },
            "pager": query.pager("/admin/groups", page.next.as_ref()),
            "can_create": portal.may::<WriteGroups>(),
            "values": values,
            "errors": errors,
        }),
    ))
}

async fn create(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    query: Query,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteGroups>("creating groups")?;
    let description = form.text("description");
    let input = NewGroup {
        display_name: form.text("displayName").to_string(),
        description: (!description.is_empty()).then(|| description.to_string()),
        mail_nickname: None,
        security_enabled: Some(true),
        mail_enabled: None,
        group_types: None,
        is_assignable_to_role: Some(form.checked("isAssignableToRole")),
        odata_type: None,
    };
    match state.directory.create_group(&grant, &request, input).await {
        Ok(group) => done(&format!("/admin/groups/{}", group.id), "group-created"),
        Err(e) => {
            let (status, errors) = refusal(e, &["displayName", "description"])?;
            let values = json!({
                "displayName": form.text("displayName"),
                "description": description,
                "isAssignableToRole": form.checked("isAssignableToRole"),
            });
            list_page(&state, &portal, &query, status, values, errors).await
        }
    }
}

async fn show(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    group_page(&state, &portal, &id, StatusCode::OK, FieldErrors::new()).await
}

async fn group_page(
    state: &PortalState,
    portal: &Portal,
    id: &str,
    status: StatusCode,
    errors: FieldErrors,
) -> PageResult {
    let grant = portal.grant::<ReadGroups>("groups")?;
    let group = state.directory.group(&grant, id).await?;
    let members = state.directory.members(&grant, id, false).await?;
    // Everyone the group's policies and roles reach, through nested groups too, and the groups
    // this one is in.
    let all_members = state.directory.members(&grant, id, true).await?;
    let member_of = state.directory.member_of(&grant, group.id, false).await?;
    let view = |m: &portcullis_core::directory::model::MemberRef| {
        json!({
            "id": m.id,
            "displayName": m.display_name,
            "userPrincipalName": m.user_principal_name,
            "isGroup": m.kind == ObjectKind::Group,
        })
    };
    let mut context = json!({
            "group": {
                "id": group.id,
                "displayName": group.display_name,
                "description": group.description,
                "isAssignableToRole": group.is_assignable_to_role,
                "created": when(group.created_date_time),
            },
            "members": members.iter().map(view).collect::<Vec<_>>(),
            "allMembers": all_members.iter().map(view).collect::<Vec<_>>(),
            "memberOf": member_of.iter().map(|g| json!({
                "id": g.id,
                "displayName": g.display_name,
            })).collect::<Vec<_>>(),
            "can": {
                "members": portal.may::<WriteGroupMembers>(),
                "write": portal.may::<WriteGroups>(),
            },
            "errors": errors,
    });
    if let Some(logs) = portal.maybe::<portcullis_core::directory::authz::ReadAuditLogs>() {
        context["about"] = json!(super::logs::audits_about(state, &logs, group.id, 10).await?);
    }
    Ok(portal.render(status, "admin/group.html", "groups", context))
}

/// Adds a member typed as a userPrincipalName, or as a group's name or id (nesting).
async fn add_member(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteGroupMembers>("group membership")?;
    let read_groups = portal.grant::<ReadGroups>("groups")?;
    let read_users = portal.grant::<ReadUsers>("users")?;
    let typed = form.text("member");
    let member_id = if typed.contains('@') {
        match state.directory.user(&read_users, typed).await {
            Ok(user) => user.id,
            Err(_) => {
                let errors = one_error("member", format!("No user signs in as '{typed}'."));
                return group_page(&state, &portal, &id, StatusCode::BAD_REQUEST, errors).await;
            }
        }
    } else if let Ok(user) = state.directory.user(&read_users, typed).await {
        user.id
    } else {
        match find_group(&state, &read_groups, typed).await {
            Ok(group) => group.id,
            Err(mut errors) => {
                let message = errors.remove("group").unwrap_or_default();
                let errors = one_error(
                    "member",
                    format!("{message} Type a user's sign-in name, or a group's name or id."),
                );
                return group_page(&state, &portal, &id, StatusCode::BAD_REQUEST, errors).await;
            }
        }
    };
    match state
        .directory
        .add_member(&grant, &request, &id, &member_id.to_string())
        .await
    {
        Ok(()) => done(&format!("/admin/groups/{id}"), "member-added"),
        Err(
            e @ Error::NotFound {
                resource: "group", ..
            },
        ) => Err(e.into()),
        Err(e) => {
            let (status, mut errors) = refusal(e, &[])?;
            if let Some(message) = errors.remove("form") {
                errors.insert("member".into(), message);
            }
            group_page(&state, &portal, &id, status, errors).await
        }
    }
}

async fn remove_member(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, member)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteGroupMembers>("group membership")?;
    state
        .directory
        .remove_member(&grant, &request, &id, &member)
        .await?;
    done(&format!("/admin/groups/{id}"), "member-removed")
}

async fn delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteGroups>("deleting groups")?;
    state.directory.delete_group(&grant, &request, &id).await?;
    done("/admin/groups", "group-deleted")
}

async fn confirm_delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteGroups>("deleting groups")?;
    let read = portal.grant::<ReadGroups>("groups")?;
    let group = state.directory.group(&read, &id).await?;
    let members = state.directory.members(&read, &id, false).await?;
    portal.confirm(
        "groups",
        Confirm {
            action: "Delete group",
            lead: "This deletes the group".into(),
            name: group.display_name.clone(),
            tail: String::new(),
            consequences: vec![
                format!(
                    "Its {} direct member{} stay in the directory but leave the group.",
                    members.len(),
                    if members.len() == 1 { "" } else { "s" }
                ),
                "Policies and roles that reach people through this group stop applying to them."
                    .into(),
            ],
            back_to: format!("/admin/groups/{}", group.id),
        },
    )
}

async fn confirm_remove_member(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, member)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteGroupMembers>("group membership")?;
    let read = portal.grant::<ReadGroups>("groups")?;
    let group = state.directory.group(&read, &id).await?;
    let found = state
        .directory
        .members(&read, &id, false)
        .await?
        .into_iter()
        .find(|m| m.id.to_string().eq_ignore_ascii_case(&member))
        .ok_or_else(|| Error::not_found("member", &member))?;
    portal.confirm(
        "groups",
        Confirm {
            action: "Remove member",
            lead: "This removes".into(),
            name: found
                .user_principal_name
                .clone()
                .unwrap_or_else(|| found.display_name.clone()),
            tail: format!("from the group {}", group.display_name),
            consequences: vec![
                "Policies and roles that reach them through this group stop applying to them."
                    .into(),
            ],
            back_to: format!("/admin/groups/{}", group.id),
        },
    )
}
