//! Users: the list (searched by any part of a name, sorted, counted), a new account, and one
//! person's page — their profile and its editing, account state, groups, roles, passkeys and
//! their Temporary Access Pass.
//!
//! What it must never do: decide who may change whom. Editing a profile is Graph's
//! `PATCH /users/{id}`, the same core call, permission, audit entry and privileged-target rule.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use portcullis_core::Error;
use portcullis_core::directory::authz::{
    ReadGroups, ReadRoles, ReadUserMethods, ReadUsers, RevokeUserSessions, WriteGroupMembers,
    WriteRoles, WriteUserMethods, WriteUsers,
};
use portcullis_core::directory::model::{User, UserType};
use portcullis_core::directory::roles::{BUILT_IN_ROLES, built_in_role};
use portcullis_core::directory::{NewRoleAssignment, NewUser, UserPatch};
use portcullis_core::kernel::odata::USER_ANY_NAME;
use portcullis_core::kernel::query::Order;
use portcullis_core::methods::tap::NewTemporaryAccessPass;
use serde_json::json;
use time::OffsetDateTime;

use super::{
    Audit, Confirm, FieldErrors, FormData, PageError, PageResult, Portal, Query, done, one_error,
    refusal, when,
};
use crate::{AppState, PortalState};
use portcullis_core::store::{ListQuery, Op, Predicate, Value as QueryValue};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/new", get(new_form))
        .route("/admin/users/{id}", get(show))
        .route("/admin/users/{id}/edit", get(edit_form).post(edit))
        .route("/admin/users/{id}/delete", get(confirm_delete).post(delete))
        .route("/admin/users/{id}/state", post(set_state))
        .route(
            "/admin/users/{id}/revoke-sessions",
            get(confirm_revoke_sessions).post(revoke_sessions),
        )
        .route("/admin/users/{id}/groups", post(add_to_group))
        .route(
            "/admin/users/{id}/groups/{group}/remove",
            get(confirm_remove_from_group).post(remove_from_group),
        )
        .route("/admin/users/{id}/roles", post(assign_role))
        .route(
            "/admin/users/{id}/roles/{assignment}/remove",
            get(confirm_remove_role).post(remove_role),
        )
        .route(
            "/admin/users/{id}/passkeys/{passkey}/delete",
            get(confirm_delete_passkey).post(delete_passkey),
        )
        .route("/admin/users/{id}/pass", post(issue_pass))
        .route(
            "/admin/users/{id}/pass/{pass}/delete",
            get(confirm_delete_pass).post(delete_pass),
        )
}

fn user_row(u: &User) -> serde_json::Value {
    json!({
        "id": u.id,
        "displayName": u.display_name,
        "userPrincipalName": u.user_principal_name,
        "mail": u.mail,
        "accountEnabled": u.account_enabled,
        "userType": u.user_type,
        "created": when(u.created_date_time),
    })
}

/// A column the list can be sorted by, as the URL names it (`sort=`), with `dir=asc|desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortColumn {
    Name,
    PrincipalName,
    Created,
}

impl SortColumn {
    const ALL: [SortColumn; 3] = [
        SortColumn::Name,
        SortColumn::PrincipalName,
        SortColumn::Created,
    ];

    fn param(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::PrincipalName => "upn",
            SortColumn::Created => "created",
        }
    }

    /// The column core's whitelist names for it.
    fn column(self) -> &'static str {
        match self {
            SortColumn::Name => "display_name",
            SortColumn::PrincipalName => "user_principal_name",
            SortColumn::Created => "created",
        }
    }
}

/// The order the URL asks for: a column and whether it runs descending. Without `sort` the
/// list is in the order people were created, oldest first, as it always was.
fn sort_of(query: &Query) -> Result<(SortColumn, bool), &'static str> {
    let column = match query.get("sort") {
        "" => SortColumn::Created,
        asked => SortColumn::ALL
            .into_iter()
            .find(|c| c.param() == asked)
            .ok_or("Sort by name, user principal name or created.")?,
    };
    let descending = match query.get("dir") {
        "" | "asc" => false,
        "desc" => true,
        _ => return Err("Sort ascending or descending."),
    };
    Ok((column, descending))
}

/// The links of the sortable column headers, filters kept and paging restarted: the sorted
/// column's link turns its direction around, the others sort ascending. With `aria-sort`.
fn sort_headers(query: &Query, current: (SortColumn, bool)) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for column in SortColumn::ALL {
        let is_current = column == current.0;
        let descending = is_current && !current.1;
        let link = query.link_with(
            "/admin/users",
            &[
                ("sort", column.param()),
                ("dir", if descending { "desc" } else { "asc" }),
            ],
        );
        let aria = match (is_current, current.1) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        headers.insert(
            column.param().to_string(),
            json!({ "link": link, "ariaSort": aria }),
        );
    }
    serde_json::Value::Object(headers)
}

/// The list: searched by any part of the display name, user principal name or mail, filtered
/// by account state (and, from older links, by name or userPrincipalName prefix), sorted by a
/// column, counted; the search, the order and the page live in the URL.
async fn list(State(state): State<Arc<PortalState>>, portal: Portal, query: Query) -> PageResult {
    let grant = portal.grant::<ReadUsers>("users")?;
    let mut filter = Vec::new();
    let mut errors = FieldErrors::new();
    if !query.get("q").is_empty() {
        filter.push(Predicate {
            field: USER_ANY_NAME,
            op: Op::Contains,
            value: QueryValue::Text(query.get("q").to_string()),
        });
    }
    if !query.get("name").is_empty() {
        filter.push(Predicate {
            field: "display_name",
            op: Op::StartsWith,
            value: QueryValue::Text(query.get("name").to_string()),
        });
    }
    if !query.get("upn").is_empty() {
        filter.push(Predicate {
            field: "user_principal_name",
            op: Op::StartsWith,
            value: QueryValue::Text(query.get("upn").to_string()),
        });
    }
    match query.get("state") {
        "" => {}
        "enabled" | "disabled" => filter.push(Predicate {
            field: "account_enabled",
            op: Op::Eq,
            value: QueryValue::Bool(query.get("state") == "enabled"),
        }),
        _ => {
            errors.insert("state".into(), "Choose enabled, disabled or any.".into());
        }
    }
    let sort = sort_of(&query).unwrap_or_else(|message| {
        errors.insert("form".into(), message.into());
        (SortColumn::Created, false)
    });
    if !errors.is_empty() {
        return Ok(portal.render(
            StatusCode::BAD_REQUEST,
            "admin/users.html",
            "users",
            json!({
                "users": [],
                "errors": errors,
                "filters": filters(&query),
                "sort": sort_headers(&query, (SortColumn::Created, false)),
            }),
        ));
    }
    let mut list = query.list(filter)?;
    // "N users" above the table: every user the search matches, not only this page's.
    list.count = true;
    let order = Order {
        by: sort.0.column(),
        descending: sort.1,
    };
    let page = state
        .directory
        .list_users_in_order(&grant, &list, Some(order))
        .await?;
    portal.page(
        "admin/users.html",
        "users",
        json!({
            "users": page.items.iter().map(user_row).collect::<Vec<_>>(),
            "count": page.count,
            "filters": filters(&query),
            "sort": sort_headers(&query, sort),
            "pager": query.pager("/admin/users", page.next.as_ref()),
            "can_create": portal.may::<WriteUsers>(),
            "errors": {},
        }),
    )
}

fn filters(query: &Query) -> serde_json::Value {
    json!({
        "q": query.get("q"),
        "name": query.get("name"),
        "upn": query.get("upn"),
        "state": query.get("state"),
    })
}

async fn new_form(portal: Portal) -> PageResult {
    portal.grant::<WriteUsers>("creating users")?;
    portal.page(
        "admin/user_new.html",
        "users",
        json!({ "values": { "accountEnabled": true }, "errors": {} }),
    )
}

async fn create(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteUsers>("creating users")?;
    let mail = form.text("mail");
    let input = NewUser {
        user_principal_name: form.text("userPrincipalName").to_string(),
        display_name: form.text("displayName").to_string(),
        mail: (!mail.is_empty()).then(|| mail.to_string()),
        account_enabled: Some(form.checked("accountEnabled")),
        user_type: None,
        mail_nickname: None,
        odata_type: None,
        password_profile: None,
    };
    match state.directory.create_user(&grant, &request, input).await {
        Ok(user) => done(&format!("/admin/users/{}", user.id), "user-created"),
        Err(e) => {
            let (status, mut errors) = refusal(e, &["userPrincipalName", "displayName", "mail"])?;
            // A taken userPrincipalName is a conflict with no field named; it is that field's.
            if status == StatusCode::CONFLICT
                && let Some(message) = errors.remove("form")
            {
                errors.insert("userPrincipalName".into(), message);
            }
            Ok(portal.render(
                status,
                "admin/user_new.html",
                "users",
                json!({
                    "values": {
                        "userPrincipalName": form.text("userPrincipalName"),
                        "displayName": form.text("displayName"),
                        "mail": mail,
                        "accountEnabled": form.checked("accountEnabled"),
                    },
                    "errors": errors,
                }),
            ))
        }
    }
}

/// How many audit entries and sign-ins a person's page shows.
const RECENT: usize = 10;

async fn show(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    user_page(&state, &portal, &id, StatusCode::OK, None).await
}

/// The fields of the "Edit profile" form, by the API's property names.
const PROFILE_FIELDS: &[&str] = &["displayName", "userPrincipalName", "mail", "userType"];

/// The edit form, filled from the person as they are.
async fn edit_form(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteUsers>("changing users")?;
    // User.ReadWrite.All implies User.Read.All: whoever may save the form may read the person.
    let read = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&read, &id).await?;
    let values = json!({
        "displayName": user.display_name,
        "userPrincipalName": user.user_principal_name,
        "mail": user.mail,
        "userType": user.user_type.as_str(),
    });
    Ok(edit_page(
        &portal,
        StatusCode::OK,
        &user,
        values,
        FieldErrors::new(),
    ))
}

fn edit_page(
    portal: &Portal,
    status: StatusCode,
    user: &User,
    values: serde_json::Value,
    errors: FieldErrors,
) -> axum::response::Response {
    portal.render(
        status,
        "admin/user_edit.html",
        "users",
        json!({
            "user": user_row(user),
            "values": values,
            "user_types": [["Member", "Member"], ["Guest", "Guest"]],
            "errors": errors,
        }),
    )
}

/// Saves the profile through Graph's PATCH: only what changed is written and audited, and a
/// change the privileged-target rule refuses is shown at the top of the form, input kept.
async fn edit(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteUsers>("changing users")?;
    let read = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&read, &id).await?;
    let mail = form.text("mail");
    let typed = json!({
        "displayName": form.text("displayName"),
        "userPrincipalName": form.text("userPrincipalName"),
        "mail": mail,
        "userType": form.text("userType"),
    });
    let user_type = match form.text("userType") {
        "Member" => UserType::Member,
        "Guest" => UserType::Guest,
        _ => {
            let errors = one_error("userType", "Choose Member or Guest.");
            return Ok(edit_page(
                &portal,
                StatusCode::BAD_REQUEST,
                &user,
                typed,
                errors,
            ));
        }
    };
    // Every field as typed: core compares them with the profile and changes, audits and
    // judges (the privileged-target rule) only those that differ.
    let patch = UserPatch {
        display_name: Some(form.text("displayName").to_string()),
        user_principal_name: Some(form.text("userPrincipalName").to_string()),
        mail: Some((!mail.is_empty()).then(|| mail.to_string())),
        user_type: Some(user_type),
        ..UserPatch::default()
    };
    match state
        .directory
        .update_user(&grant, &request, &user.id.to_string(), patch)
        .await
    {
        Ok(saved) => done(&format!("/admin/users/{}", saved.id), "profile-saved"),
        Err(e) => {
            let (status, mut errors) = refusal(e, PROFILE_FIELDS)?;
            // A taken userPrincipalName is a conflict with no field named; it is that field's.
            if status == StatusCode::CONFLICT
                && let Some(message) = errors.remove("form")
            {
                errors.insert("userPrincipalName".into(), message);
            }
            Ok(edit_page(&portal, status, &user, typed, errors))
        }
    }
}

/// One person's page. `problem` is a refused action: which section it belongs to and the
/// errors to show there.
async fn user_page(
    state: &PortalState,
    portal: &Portal,
    id: &str,
    status: StatusCode,
    problem: Option<(&str, FieldErrors)>,
) -> PageResult {
    let grant = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&grant, id).await?;
    let (section, errors) = problem.unwrap_or(("", FieldErrors::new()));
    let mut context = json!({
        "user": user_row(&user),
        "problem_section": section,
        "errors": errors,
        "is_me": user.id == portal.user.id,
        "can": {
            "write": portal.may::<WriteUsers>(),
            "revoke": portal.may::<RevokeUserSessions>(),
            "members": portal.may::<WriteGroupMembers>(),
            "roles": portal.may::<WriteRoles>(),
            "methods": portal.may::<WriteUserMethods>(),
            "logs": portal.may::<portcullis_core::directory::authz::ReadAuditLogs>(),
        },
        // The logs filtered to this person: their sign-ins, and the changes they made.
        "links": {
            "signIns": format!("/admin/sign-ins?{}", serde_urlencoded::to_string([("user", user.user_principal_name.as_str())]).unwrap_or_default()),
            "audits": format!("/admin/audit-logs?initiatedBy={}", user.id),
            "about": format!("/admin/audit-logs?target={}", user.id),
            "recentSignIns": format!("/admin/sign-ins?userId={}", user.id),
        },
    });
    // The latest changes to this person and their latest sign-ins, each with a link to the
    // whole log filtered to them.
    if let Some(logs_grant) = portal.maybe::<portcullis_core::directory::authz::ReadAuditLogs>() {
        context["about"] =
            json!(super::logs::audits_about(state, &logs_grant, user.id, RECENT).await?);
        context["sign_ins"] =
            json!(super::logs::sign_ins_of(state, &logs_grant, user.id, RECENT).await?);
    }
    if let Some(groups_grant) = portal.maybe::<ReadGroups>() {
        let groups = state
            .directory
            .member_of(&groups_grant, user.id, false)
            .await?;
        context["groups"] = json!(
            groups
                .iter()
                .map(|g| json!({ "id": g.id, "displayName": g.display_name }))
                .collect::<Vec<_>>()
        );
    }
    if let Some(roles_grant) = portal.maybe::<ReadRoles>() {
        let assignments = state
            .directory
            .role_assignments(&roles_grant, Some(user.id))
            .await?;
        context["roles"] = json!(
            assignments
                .iter()
                .map(|a| json!({
                    "id": a.id,
                    "name": built_in_role(a.role_definition_id).map_or("Unknown role", |r| r.display_name),
                }))
                .collect::<Vec<_>>()
        );
        context["role_options"] = json!(
            BUILT_IN_ROLES
                .iter()
                .map(|r| json!([r.template_id, r.display_name]))
                .collect::<Vec<_>>()
        );
    }
    if let Some(methods_grant) = portal.maybe::<ReadUserMethods>() {
        let passkeys = state
            .passkeys
            .user_methods(&methods_grant, &user.id.to_string())
            .await?;
        context["passkeys"] = json!(
            passkeys
                .iter()
                .map(|p| json!({
                    "id": p.id,
                    "displayName": p.display_name,
                    "model": p.model,
                    "aaGuid": p.aa_guid,
                    "attested": p.attestation_level == "attested",
                    "passkeyType": p.passkey_type,
                    "created": when(p.created_date_time),
                    "lastUsed": p.last_used_date_time.map(when),
                }))
                .collect::<Vec<_>>()
        );
        let passes = state
            .passes
            .list(&methods_grant, &user.id.to_string())
            .await?;
        context["passes"] = json!(
            passes
                .iter()
                .map(|p| json!({
                    "id": p.id,
                    "start": when(p.start_date_time),
                    "end": when(p.start_date_time + time::Duration::minutes(i64::from(p.lifetime_in_minutes))),
                    "isUsableOnce": p.is_usable_once,
                    "isUsable": p.is_usable,
                    "reason": usability_label(&p.method_usability_reason),
                }))
                .collect::<Vec<_>>()
        );
        let config = state.passes.configuration().await?;
        context["pass_policy"] = json!({
            "default": config.default_lifetime_in_minutes,
            "min": config.minimum_lifetime_in_minutes,
            "max": config.maximum_lifetime_in_minutes,
            "oneTimeOnly": config.is_usable_once,
            "enabled": config.state == "enabled",
        });
    }
    Ok(portal.render(status, "admin/user.html", "users", context))
}

fn usability_label(reason: &str) -> &'static str {
    match reason {
        "EnabledByPolicy" => "Usable",
        "DisabledByPolicy" => {
            "Not usable: the Temporary Access Pass policy does not cover this person"
        }
        "Expired" => "Expired",
        "NotYetValid" => "Not valid yet",
        "OneTimeUsed" => "Used (one-time pass)",
        _ => "Unknown",
    }
}

/// Answers a refused action on a person's page: the page again, the error in the section.
async fn refused_on_page(
    state: &PortalState,
    portal: &Portal,
    id: &str,
    section: &str,
    e: Error,
    fields: &[&str],
) -> PageResult {
    let (status, errors) = refusal(e, fields)?;
    user_page(state, portal, id, status, Some((section, errors))).await
}

async fn set_state(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteUsers>("changing users")?;
    let enable = match form.text("accountEnabled") {
        "true" => true,
        "false" => false,
        _ => {
            return user_page(
                &state,
                &portal,
                &id,
                StatusCode::BAD_REQUEST,
                Some(("state", one_error("form", "Choose to enable or disable."))),
            )
            .await;
        }
    };
    // Disabling yourself would end your own access to the portal mid-task.
    if !enable && id.eq_ignore_ascii_case(&portal.user.id.to_string()) {
        return user_page(
            &state,
            &portal,
            &id,
            StatusCode::BAD_REQUEST,
            Some((
                "state",
                one_error("form", "You cannot disable your own account."),
            )),
        )
        .await;
    }
    let patch = UserPatch {
        account_enabled: Some(enable),
        ..UserPatch::default()
    };
    match state
        .directory
        .update_user(&grant, &request, &id, patch)
        .await
    {
        Ok(user) => done(
            &format!("/admin/users/{}", user.id),
            if enable {
                "user-enabled"
            } else {
                "user-disabled"
            },
        ),
        Err(e) => refused_on_page(&state, &portal, &id, "state", e, &[]).await,
    }
}

/// Finds a group by id or by exact display name, as typed into the "add to group" field.
pub async fn find_group(
    state: &PortalState,
    grant: &portcullis_core::directory::authz::Granted<ReadGroups>,
    typed: &str,
) -> Result<portcullis_core::directory::model::Group, FieldErrors> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(one_error("group", "Type the group's name or id."));
    }
    if uuid::Uuid::parse_str(typed).is_ok()
        && let Ok(g) = state.directory.group(grant, typed).await
    {
        return Ok(g);
    }
    let query = ListQuery {
        filter: vec![Predicate {
            field: "display_name",
            op: Op::Eq,
            value: QueryValue::Text(typed.to_string()),
        }],
        top: 2,
        after: None,
        count: false,
    };
    let found = state
        .directory
        .list_groups(grant, &query)
        .await
        .map_err(|e| one_error("group", e.public_message()))?
        .items;
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one group")),
        0 => Err(one_error("group", format!("No group is named '{typed}'."))),
        _ => Err(one_error(
            "group",
            format!("More than one group is named '{typed}'; use its id."),
        )),
    }
}

async fn add_to_group(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteGroupMembers>("group membership")?;
    let read = portal.grant::<ReadGroups>("groups")?;
    let users = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&users, &id).await?;
    let group = match find_group(&state, &read, form.text("group")).await {
        Ok(g) => g,
        Err(errors) => {
            return user_page(
                &state,
                &portal,
                &id,
                StatusCode::BAD_REQUEST,
                Some(("groups", errors)),
            )
            .await;
        }
    };
    match state
        .directory
        .add_member(
            &grant,
            &request,
            &group.id.to_string(),
            &user.id.to_string(),
        )
        .await
    {
        Ok(()) => done(&format!("/admin/users/{}", user.id), "group-added"),
        Err(e) => refused_on_page(&state, &portal, &id, "groups", e, &[]).await,
    }
}

async fn remove_from_group(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, group)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteGroupMembers>("group membership")?;
    let users = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&users, &id).await?;
    match state
        .directory
        .remove_member(&grant, &request, &group, &user.id.to_string())
        .await
    {
        Ok(()) => done(&format!("/admin/users/{}", user.id), "group-removed"),
        Err(e) => refused_on_page(&state, &portal, &id, "groups", e, &[]).await,
    }
}

async fn assign_role(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteRoles>("role assignments")?;
    let users = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&users, &id).await?;
    let input = NewRoleAssignment {
        principal_id: user.id.to_string(),
        role_definition_id: form.text("role").to_string(),
        directory_scope_id: None,
        odata_type: None,
    };
    match state.directory.assign_role(&grant, &request, input).await {
        Ok(_) => done(&format!("/admin/users/{}", user.id), "role-assigned"),
        Err(e) => {
            let e = match e {
                Error::Invalid {
                    target: Some(t), ..
                } if t == "roleDefinitionId" => Error::invalid("role", "Choose a role."),
                other => other,
            };
            refused_on_page(&state, &portal, &id, "roles", e, &["role"]).await
        }
    }
}

async fn remove_role(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, assignment)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteRoles>("role assignments")?;
    let read = portal.grant::<ReadRoles>("role assignments")?;
    let users = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&users, &id).await?;
    // The assignment must be this person's: a form on their page removes only their roles.
    let found = state.directory.role_assignment(&read, &assignment).await?;
    if found.principal_id != user.id {
        return Err(Error::not_found("roleAssignment", assignment).into());
    }
    match state
        .directory
        .remove_role_assignment(&grant, &request, &assignment)
        .await
    {
        Ok(()) => done(&format!("/admin/users/{}", user.id), "role-removed"),
        Err(e) => refused_on_page(&state, &portal, &id, "roles", e, &[]).await,
    }
}

async fn delete_passkey(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, passkey)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteUserMethods>("users' sign-in methods")?;
    match state
        .passkeys
        .delete_user_method(&grant, &request, &id, &passkey)
        .await
    {
        Ok(()) => done(&format!("/admin/users/{id}"), "passkey-deleted"),
        Err(e) => refused_on_page(&state, &portal, &id, "passkeys", e, &[]).await,
    }
}

/// Issues a pass and shows it, once, in this answer: it is never stored in clear, never put in
/// a URL, and reloading the page cannot show it again.
async fn issue_pass(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteUserMethods>("Temporary Access Passes")?;
    let users = portal.grant::<ReadUsers>("users")?;
    let user = state.directory.user(&users, &id).await?;
    let fields = ["lifetimeInMinutes", "isUsableOnce", "startDateTime"];
    let lifetime = match form.text("lifetimeInMinutes") {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return refused_on_page(
                    &state,
                    &portal,
                    &id,
                    "pass",
                    Error::invalid("lifetimeInMinutes", "Give the lifetime in whole minutes."),
                    &fields,
                )
                .await;
            }
        },
    };
    let start = match parse_local_utc(form.text("startDateTime")) {
        Ok(start) => start,
        Err(message) => {
            return refused_on_page(
                &state,
                &portal,
                &id,
                "pass",
                Error::invalid("startDateTime", message),
                &fields,
            )
            .await;
        }
    };
    let input = NewTemporaryAccessPass {
        start_date_time: start,
        lifetime_in_minutes: lifetime,
        is_usable_once: Some(form.checked("isUsableOnce")),
        odata_type: None,
    };
    match state
        .passes
        .issue(&grant, &request, &user.id.to_string(), input)
        .await
    {
        Ok(pass) => {
            let end =
                pass.start_date_time + time::Duration::minutes(i64::from(pass.lifetime_in_minutes));
            portal.page(
                "admin/tap_issued.html",
                "users",
                json!({
                    "user": user_row(&user),
                    "pass": pass.temporary_access_pass,
                    "start": when(pass.start_date_time),
                    "end": when(end),
                    "lifetime": pass.lifetime_in_minutes,
                    "isUsableOnce": pass.is_usable_once,
                }),
            )
        }
        Err(e) => refused_on_page(&state, &portal, &id, "pass", e, &fields).await,
    }
}

/// A `datetime-local` value, read as UTC (the form says so); empty means "now".
fn parse_local_utc(text: &str) -> Result<Option<OffsetDateTime>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let with_seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, format)
        .or_else(|_| time::PrimitiveDateTime::parse(text, with_seconds))
        .map(|t| Some(t.assume_utc()))
        .map_err(|_| format!("'{text}' is not a date and time such as 2025-03-01T09:00."))
}

async fn delete_pass(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, pass)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteUserMethods>("Temporary Access Passes")?;
    match state.passes.delete(&grant, &request, &id, &pass).await {
        Ok(()) => done(&format!("/admin/users/{id}"), "pass-deleted"),
        Err(e) => refused_on_page(&state, &portal, &id, "pass", e, &[]).await,
    }
}

// --- confirmations -----------------------------------------------------------------------

/// The person a confirmation is about, read with the reader's own grant (an unknown id is the
/// friendly 404 before anything is asked).
async fn person(state: &PortalState, portal: &Portal, id: &str) -> Result<User, PageError> {
    let grant = portal.grant::<ReadUsers>("users")?;
    Ok(state.directory.user(&grant, id).await?)
}

/// A person's own account is not theirs to delete from the portal: it would end their access
/// mid-task, and a tenant must keep an administrator.
fn not_yourself(portal: &Portal, user: &User) -> Result<(), PageError> {
    if user.id == portal.user.id {
        let message = "Ask another administrator to delete it, if it has to go.";
        return Err(PageError::from(super::failure_page_as(
            &Error::invalid("id", message),
            "You cannot delete your own account",
            message,
        )));
    }
    Ok(())
}

async fn confirm_delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteUsers>("deleting users")?;
    let user = person(&state, &portal, &id).await?;
    not_yourself(&portal, &user)?;
    portal.confirm_undoable(
        "users",
        Confirm {
            action: "Delete user",
            lead: format!("This deletes the account of {}:", user.display_name),
            name: user.user_principal_name.clone(),
            tail: String::new(),
            consequences: vec![
                "They can no longer sign in: their sessions end at once, everywhere.".into(),
                "They leave every group and hold no directory role while deleted.".into(),
                "They can be restored from Deleted users for 30 days, with their groups, roles and sign-in methods; after that they are deleted permanently.".into(),
            ],
            back_to: format!("/admin/users/{}", user.id),
        },
        true,
    )
}

async fn delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteUsers>("deleting users")?;
    let user = person(&state, &portal, &id).await?;
    not_yourself(&portal, &user)?;
    state
        .directory
        .delete_user(&grant, &request, &user.id.to_string())
        .await?;
    done("/admin/users", "user-deleted")
}

async fn confirm_revoke_sessions(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<RevokeUserSessions>("revoking sessions")?;
    let user = person(&state, &portal, &id).await?;
    portal.confirm(
        "users",
        Confirm {
            action: "Revoke sessions",
            lead: format!("This signs {} out everywhere:", user.display_name),
            name: user.user_principal_name.clone(),
            tail: String::new(),
            consequences: vec![
                "Every browser session of theirs ends at once, on every server.".into(),
                "Applications they signed in to can no longer refresh their tokens.".into(),
                "They can sign in again with their methods.".into(),
            ],
            back_to: format!("/admin/users/{}", user.id),
        },
    )
}

async fn revoke_sessions(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<RevokeUserSessions>("revoking sessions")?;
    let user = person(&state, &portal, &id).await?;
    match state
        .directory
        .revoke_sign_in_sessions(&grant, &request, &user.id.to_string())
        .await
    {
        Ok(()) => done(&format!("/admin/users/{}", user.id), "sessions-revoked"),
        Err(e) => refused_on_page(&state, &portal, &id, "state", e, &[]).await,
    }
}

async fn confirm_remove_from_group(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, group)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteGroupMembers>("group membership")?;
    let user = person(&state, &portal, &id).await?;
    let read = portal.grant::<ReadGroups>("groups")?;
    let group = state.directory.group(&read, &group).await?;
    portal.confirm(
        "users",
        Confirm {
            action: "Remove from group",
            lead: "This removes".into(),
            name: user.user_principal_name.clone(),
            tail: format!("from the group {}", group.display_name),
            consequences: vec![
                "Policies and roles that reach them through this group stop applying to them."
                    .into(),
            ],
            back_to: format!("/admin/users/{}", user.id),
        },
    )
}

async fn confirm_remove_role(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, assignment)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteRoles>("role assignments")?;
    let read = portal.grant::<ReadRoles>("role assignments")?;
    let user = person(&state, &portal, &id).await?;
    let found = state.directory.role_assignment(&read, &assignment).await?;
    if found.principal_id != user.id {
        return Err(Error::not_found("roleAssignment", assignment).into());
    }
    let role = built_in_role(found.role_definition_id).map_or("Unknown role", |r| r.display_name);
    portal.confirm(
        "users",
        Confirm {
            action: "Remove role",
            lead: "This removes the role".into(),
            name: role.to_string(),
            tail: format!("from {}", user.user_principal_name),
            consequences: vec![
                "What the role let them do in the portal and the admin API stops at once.".into(),
            ],
            back_to: format!("/admin/users/{}", user.id),
        },
    )
}

async fn confirm_delete_passkey(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, passkey)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteUserMethods>("users' sign-in methods")?;
    let read = portal.grant::<ReadUserMethods>("users' sign-in methods")?;
    let user = person(&state, &portal, &id).await?;
    let found = state
        .passkeys
        .user_methods(&read, &user.id.to_string())
        .await?
        .into_iter()
        .find(|p| p.id.to_string().eq_ignore_ascii_case(&passkey))
        .ok_or_else(|| Error::not_found("fido2AuthenticationMethod", &passkey))?;
    portal.confirm(
        "users",
        Confirm {
            action: "Delete passkey",
            lead: "This deletes the passkey".into(),
            name: found.display_name.clone(),
            tail: format!("of {}", user.user_principal_name),
            consequences: vec![
                "They can no longer sign in with it; the copy on their device stays but is refused."
                    .into(),
            ],
            back_to: format!("/admin/users/{}", user.id),
        },
    )
}

async fn confirm_delete_pass(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, pass)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteUserMethods>("Temporary Access Passes")?;
    let read = portal.grant::<ReadUserMethods>("Temporary Access Passes")?;
    let user = person(&state, &portal, &id).await?;
    let found = state
        .passes
        .list(&read, &user.id.to_string())
        .await?
        .into_iter()
        .find(|p| p.id.to_string().eq_ignore_ascii_case(&pass))
        .ok_or_else(|| Error::not_found("temporaryAccessPassAuthenticationMethod", &pass))?;
    let end = found.start_date_time + time::Duration::minutes(i64::from(found.lifetime_in_minutes));
    portal.confirm(
        "users",
        Confirm {
            action: "Revoke Temporary Access Pass",
            lead: "This revokes the Temporary Access Pass of".into(),
            name: user.user_principal_name.clone(),
            tail: format!("(valid until {})", when(end)),
            consequences: vec![
                "The pass stops working at once, also for a sign-in that has not finished.".into(),
            ],
            back_to: format!("/admin/users/{}", user.id),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_read_as_utc() {
        assert_eq!(parse_local_utc(""), Ok(None));
        let t = parse_local_utc("2025-03-01T09:30").unwrap().unwrap();
        assert_eq!(
            (t.hour(), t.minute(), t.offset()),
            (9, 30, time::UtcOffset::UTC)
        );
        assert!(parse_local_utc("tomorrow").is_err());
    }
}
