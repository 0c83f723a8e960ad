//! Directory roles: every built-in role with how many hold it, and one role's page listing who
//! holds it (people, role-assignable groups, applications), each a link to its own page.
//! Assigning and removing stay on the person's page, where the rules about who may act on whom
//! are shown beside the form.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use portcullis_core::Error;
use portcullis_core::directory::DirectoryObject;
use portcullis_core::directory::authz::ReadRoles;
use portcullis_core::directory::roles::{BUILT_IN_ROLES, built_in_role};
use serde_json::json;
use uuid::Uuid;

use super::{PageResult, Portal};
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/roles", get(list))
        .route("/admin/roles/{id}", get(show))
}

async fn list(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    let grant = portal.grant::<ReadRoles>("directory roles")?;
    let mut holders: HashMap<Uuid, usize> = HashMap::new();
    for a in state.directory.role_assignments(&grant, None).await? {
        *holders.entry(a.role_definition_id).or_default() += 1;
    }
    let roles: Vec<_> = BUILT_IN_ROLES
        .iter()
        .map(|r| {
            json!({
                "id": r.template_id,
                "displayName": r.display_name,
                "description": r.description,
                "privileged": r.is_privileged,
                "holders": holders.get(&r.template_id).copied().unwrap_or(0),
            })
        })
        .collect();
    portal.page("admin/roles.html", "roles", json!({ "roles": roles }))
}

async fn show(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<ReadRoles>("directory roles")?;
    let role = Uuid::parse_str(&id)
        .ok()
        .and_then(built_in_role)
        .ok_or_else(|| Error::not_found("role", &id))?;
    let holders: Vec<_> = state
        .directory
        .role_members(&grant, role.template_id)
        .await?
        .into_iter()
        .map(|holder| match holder {
            DirectoryObject::User(u) => json!({
                "kind": "User", "displayName": u.display_name,
                "detail": u.user_principal_name, "href": format!("/admin/users/{}", u.id),
            }),
            DirectoryObject::Group(g) => json!({
                "kind": "Group", "displayName": g.display_name,
                "detail": "Its members hold the role", "href": format!("/admin/groups/{}", g.id),
            }),
            DirectoryObject::Application(a) => json!({
                "kind": "Application", "displayName": a.display_name,
                "detail": a.app_id, "href": format!("/admin/applications/{}", a.id),
            }),
        })
        .collect();
    portal.page(
        "admin/role.html",
        "roles",
        json!({
            "role": {
                "id": role.template_id,
                "displayName": role.display_name,
                "description": role.description,
                "privileged": role.is_privileged,
            },
            "holders": holders,
        }),
    )
}
