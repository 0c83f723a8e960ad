//! Deleted users: the people deleted in the last 30 days, each restorable or deletable for
//! good. Who may restore or permanently delete whom is core's (`directory::deleted`); this page
//! only asks, through the same capabilities as the API.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use portcullis_core::directory::authz::{ReadUsers, WriteUsers};
use portcullis_core::directory::model::DeletedUser;
use serde_json::json;

use super::{Audit, Confirm, PageError, PageResult, Portal, Query, done, when};
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users/deleted", get(list))
        .route(
            "/admin/users/deleted/{id}/restore",
            get(confirm_restore).post(restore),
        )
        .route(
            "/admin/users/deleted/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

fn deleted_row(d: &DeletedUser, now: time::OffsetDateTime) -> serde_json::Value {
    let days = d.days_left(now);
    json!({
        "id": d.user.id,
        "displayName": d.user.display_name,
        "userPrincipalName": d.user.user_principal_name,
        "deleted": when(d.deleted_date_time),
        "daysLeft": match days {
            0 => "Less than a day".to_string(),
            1 => "1 day".to_string(),
            n => format!("{n} days"),
        },
    })
}

async fn list(State(state): State<Arc<PortalState>>, portal: Portal, query: Query) -> PageResult {
    let grant = portal.grant::<ReadUsers>("deleted users")?;
    let page = state
        .directory
        .list_deleted_users(&grant, &query.list(Vec::new())?)
        .await?;
    let now = state.directory.now();
    portal.page(
        "admin/deleted_users.html",
        "users",
        json!({
            "users": page.items.iter().map(|d| deleted_row(d, now)).collect::<Vec<_>>(),
            "pager": query.pager("/admin/users/deleted", page.next.as_ref()),
            "can_manage": portal.may::<WriteUsers>(),
        }),
    )
}

/// The deleted user a confirmation is about (an unknown id is the friendly 404).
async fn deleted(state: &PortalState, portal: &Portal, id: &str) -> Result<DeletedUser, PageError> {
    let grant = portal.grant::<ReadUsers>("deleted users")?;
    Ok(state.directory.deleted_user(&grant, id).await?)
}

async fn confirm_restore(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteUsers>("restoring users")?;
    let d = deleted(&state, &portal, &id).await?;
    portal.confirm_undoable(
        "users",
        Confirm {
            action: "Restore user",
            lead: format!("This brings back the account of {}:", d.user.display_name),
            name: d.user.user_principal_name.clone(),
            tail: String::new(),
            consequences: vec![
                "They can sign in again with the methods they had.".into(),
                "They are back in their groups and hold their directory roles and application access again, except for groups and applications deleted since.".into(),
            ],
            back_to: "/admin/users/deleted".to_string(),
        },
        false,
    )
}

async fn restore(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteUsers>("restoring users")?;
    let d = deleted(&state, &portal, &id).await?;
    let user = state
        .directory
        .restore_user(&grant, &request, &d.user.id.to_string())
        .await?;
    done(&format!("/admin/users/{}", user.id), "user-restored")
}

async fn confirm_delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteUsers>("deleting users")?;
    let d = deleted(&state, &portal, &id).await?;
    portal.confirm(
        "users",
        Confirm {
            action: "Delete permanently",
            lead: format!("This deletes for good the account of {}:", d.user.display_name),
            name: d.user.user_principal_name.clone(),
            tail: String::new(),
            consequences: vec![
                "It can no longer be restored: their passkeys and other sign-in methods, groups and roles are gone.".into(),
                "Sign-in and audit logs keep what they did.".into(),
            ],
            back_to: "/admin/users/deleted".to_string(),
        },
    )
}

async fn delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteUsers>("deleting users")?;
    let d = deleted(&state, &portal, &id).await?;
    state
        .directory
        .permanently_delete_user(&grant, &request, &d.user.id.to_string())
        .await?;
    done("/admin/users/deleted", "user-purged")
}
