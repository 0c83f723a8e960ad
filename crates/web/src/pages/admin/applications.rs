//! Applications: the list, registering one, its redirect URIs, and its client secrets — a new
//! secret is shown once, in the answer to the form that made it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use portcullis_core::Error;
use portcullis_core::directory::access::NewAppRoleAssignment;
use portcullis_core::directory::authz::{
    ReadApplications, ReadGroups, ReadUsers, WriteAppRoleAssignments, WriteApplications,
};
use portcullis_core::directory::model::{
    AppRoleMemberType, Application, DEFAULT_ACCESS_ROLE, RedirectUris, SigningAlgorithm,
};
use portcullis_core::directory::{
    AddPassword, ApplicationPatch, NewApplication, PasswordCredentialRequest, RemovePassword,
};
use serde_json::{Value, json};
use time::Duration;

use super::{
    Audit, Confirm, FieldErrors, FormData, PageResult, Portal, Query, done, refusal, when,
};
use crate::pages::labels::client_kind;
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/applications", get(list).post(create))
        .route("/admin/applications/{id}", get(show).post(save))
        .route(
            "/admin/applications/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/admin/applications/{id}/secrets", post(add_secret))
        .route("/admin/applications/{id}/assignments", post(add_assignment))
        .route(
            "/admin/applications/{id}/assignments/{assignment}/remove",
            get(confirm_remove_assignment).post(remove_assignment),
        )
        .route(
            "/admin/applications/{id}/secrets/{key}/remove",
            get(confirm_remove_secret).post(remove_secret),
        )
}

const FIELDS: &[&str] = &[
    "displayName",
    "web.redirectUris",
    "spa.redirectUris",
    "publicClient.redirectUris",
    "isFallbackPublicClient",
    "appRoleAssignmentRequired",
    "idTokenSignedResponseAlg",
];

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
    values: Value,
    errors: FieldErrors,
) -> PageResult {
    let grant = portal.grant::<ReadApplications>("applications")?;
    let filter = query.name_filter();
    let page = state
        .directory
        .list_applications(&grant, &query.list(filter)?)
        .await?;
    Ok(portal.render(
        status,
        "admin/applications.html",
        "applications",
        json!({
            "applications": page.items.iter().map(|a| json!({
                "id": a.id,
                "appId": a.app_id,
                "displayName": a.display_name,
                "kind": client_kind(a.is_fallback_public_client, !a.spa.redirect_uris.is_empty()),
                "created": when(a.created_date_time),
            })).collect::<Vec<_>>(),
            "filters": { "name": query.get("name") },
            "pager": query.pager("/admin/applications", page.next.as_ref()),
            "can_write": portal.may::<WriteApplications>(),
            "values": values,
            "errors": errors,
        }),
    ))
}

fn uris(form: &FormData, name: &str) -> Option<RedirectUris> {
    Some(RedirectUris {
        redirect_uris: form.lines(name),
    })
}

fn form_values(form: &FormData) -> Value {
    json!({
        "displayName": form.text("displayName"),
        "web": form.text("web.redirectUris"),
        "spa": form.text("spa.redirectUris"),
        "publicClient": form.text("publicClient.redirectUris"),
        "isFallbackPublicClient": form.checked("isFallbackPublicClient"),
        "appRoleAssignmentRequired": form.checked("appRoleAssignmentRequired"),
        "idTokenSignedResponseAlg": form.text("idTokenSignedResponseAlg"),
    })
}

/// The algorithm chosen on the form: none chosen keeps the application's.
fn chosen_algorithm(form: &FormData) -> Result<Option<SigningAlgorithm>, Error> {
    match form.text("idTokenSignedResponseAlg") {
        "" => Ok(None),
        name => SigningAlgorithm::parse(name).map(Some).ok_or_else(|| {
            Error::invalid(
                "idTokenSignedResponseAlg",
                "Choose ES256 or RS256 to sign ID tokens with.",
            )
        }),
    }
}

/// Registers an application. Admin-API permissions are not granted here: that is admin consent,
/// a role-management act, kept to the API where it is checked as such.
async fn create(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    query: Query,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteApplications>("registering applications")?;
    let input = NewApplication {
        display_name: form.text("displayName").to_string(),
        app_id: None,
        is_fallback_public_client: Some(form.checked("isFallbackPublicClient")),
        web: uris(&form, "web.redirectUris"),
        public_client: uris(&form, "publicClient.redirectUris"),
        spa: uris(&form, "spa.redirectUris"),
        api_permissions: None,
        identifier_uris: None,
        api: None,
        app_roles: None,
        app_role_assignment_required: None,
        group_membership_claims: None,
        id_token_signed_response_alg: None,
        sign_in_audience: None,
        odata_type: None,
    };
    match state
        .directory
        .create_application(&grant, None, &request, input)
        .await
    {
        Ok(app) => done(
            &format!("/admin/applications/{}", app.id),
            "application-created",
        ),
        Err(e) => {
            let (status, errors) = refusal(e, FIELDS)?;
            list_page(&state, &portal, &query, status, form_values(&form), errors).await
        }
    }
}

fn app_view(app: &Application) -> Value {
    json!({
        "id": app.id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "isFallbackPublicClient": app.is_fallback_public_client,
        "kind": client_kind(app.is_fallback_public_client, !app.spa.redirect_uris.is_empty()),
        "web": app.web.redirect_uris.join("\n"),
        "spa": app.spa.redirect_uris.join("\n"),
        "publicClient": app.public_client.redirect_uris.join("\n"),
        "apiPermissions": app.api_permissions,
        "appRoleAssignmentRequired": app.access.app_role_assignment_required,
        "idTokenSignedResponseAlg": app.id_token_signed_response_alg.as_str(),
        "created": when(app.created_date_time),
    })
}

/// The name of an app role of `app` as the portal shows it.
fn role_name(app: &Application, id: uuid::Uuid) -> String {
    if id == DEFAULT_ACCESS_ROLE {
        return "Default access".to_string();
    }
    app.access
        .app_roles
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.display_name.clone())
        .unwrap_or_else(|| id.to_string())
}

async fn show(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    app_page(
        &state,
        &portal,
        &id,
        StatusCode::OK,
        None,
        FieldErrors::new(),
    )
    .await
}

/// The application's page; `values` are the redirect URIs as typed when a save was refused.
async fn app_page(
    state: &PortalState,
    portal: &Portal,
    id: &str,
    status: StatusCode,
    values: Option<Value>,
    errors: FieldErrors,
) -> PageResult {
    let grant = portal.grant::<ReadApplications>("applications")?;
    let app = state.directory.application(&grant, id).await?;
    let secrets: Vec<Value> = app
        .password_credentials
        .iter()
        .map(|c| {
            json!({
                "keyId": c.key_id,
                "displayName": c.display_name,
                "hint": c.hint,
                "start": when(c.start_date_time),
                "end": when(c.end_date_time),
            })
        })
        .collect();
    let (_, assigned) = state.directory.app_role_assigned_to(&grant, id).await?;
    let assignments: Vec<Value> = assigned
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "principalId": a.principal_id,
                "principalDisplayName": a.principal_display_name,
                "principalType": a.principal_type.as_str(),
                "role": role_name(&app, a.app_role_id),
            })
        })
        .collect();
    let mut roles = vec![json!([DEFAULT_ACCESS_ROLE.to_string(), "Default access"])];
    roles.extend(
        app.access
            .app_roles
            .iter()
            .filter(|r| r.is_enabled && r.admits(AppRoleMemberType::User))
            .map(|r| json!([r.id.to_string(), r.display_name])),
    );
    let view = app_view(&app);
    let mut context = json!({
            "app": view,
            "values": values.unwrap_or_else(|| view.clone()),
            "secrets": secrets,
            "assignments": assignments,
            "roles": roles,
            "can_assign": portal.may::<WriteAppRoleAssignments>(),
            "errors": errors,
            "can_write": portal.may::<WriteApplications>(),
    });
    if let Some(logs) = portal.maybe::<portcullis_core::directory::authz::ReadAuditLogs>() {
        context["about"] = json!(super::logs::audits_about(state, &logs, app.id, 10).await?);
    }
    Ok(portal.render(status, "admin/application.html", "applications", context))
}

async fn save(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteApplications>("changing applications")?;
    let saved = match chosen_algorithm(&form) {
        Ok(algorithm) => {
            let patch = ApplicationPatch {
                display_name: Some(form.text("displayName").to_string()),
                is_fallback_public_client: Some(form.checked("isFallbackPublicClient")),
                web: uris(&form, "web.redirectUris"),
                public_client: uris(&form, "publicClient.redirectUris"),
                spa: uris(&form, "spa.redirectUris"),
                id_token_signed_response_alg: algorithm,
                app_role_assignment_required: Some(form.checked("appRoleAssignmentRequired")),
                ..ApplicationPatch::default()
            };
            state
                .directory
                .update_application(&grant, None, &request, &id, patch)
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(app) => done(
            &format!("/admin/applications/{}", app.id),
            "application-updated",
        ),
        Err(e) => {
            let (status, errors) = refusal(e, FIELDS)?;
            app_page(
                &state,
                &portal,
                &id,
                status,
                Some(form_values(&form)),
                errors,
            )
            .await
        }
    }
}

async fn add_secret(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteApplications>("client secrets")?;
    let months: i64 = match form.text("months") {
        "" => 6,
        text => match text.parse() {
            Ok(n @ 1..=24) => n,
            _ => {
                let errors = super::one_error("months", "Choose 1 to 24 months.");
                return app_page(&state, &portal, &id, StatusCode::BAD_REQUEST, None, errors).await;
            }
        },
    };
    let description = form.text("description");
    let input = AddPassword {
        password_credential: Some(PasswordCredentialRequest {
            display_name: (!description.is_empty()).then(|| description.to_string()),
            end_date_time: Some(state.directory.now() + Duration::days(30 * months)),
        }),
    };
    let read = portal.grant::<ReadApplications>("applications")?;
    let app = state.directory.application(&read, &id).await?;
    match state
        .directory
        .add_password(&grant, &request, &id, input)
        .await
    {
        Ok(secret) => portal.page(
            "admin/secret_issued.html",
            "applications",
            json!({
                "app": app_view(&app),
                "secret": secret.secret_text,
                "keyId": secret.credential.key_id,
                "end": when(secret.credential.end_date_time),
            }),
        ),
        Err(e) => {
            let (status, mut errors) = refusal(e, &["passwordCredential"])?;
            if let Some(message) = errors.remove("passwordCredential") {
                errors.insert("months".into(), message);
            }
            app_page(&state, &portal, &id, status, None, errors).await
        }
    }
}

async fn remove_secret(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, key)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteApplications>("client secrets")?;
    state
        .directory
        .remove_password(&grant, &request, &id, RemovePassword { key_id: key })
        .await?;
    done(&format!("/admin/applications/{id}"), "secret-removed")
}

async fn confirm_delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteApplications>("deleting applications")?;
    let read = portal.grant::<ReadApplications>("applications")?;
    let app = state.directory.application(&read, &id).await?;
    portal.confirm(
        "applications",
        Confirm {
            action: "Delete application",
            lead: "This deletes the application".into(),
            name: app.display_name.clone(),
            tail: format!("(client id {})", app.app_id),
            consequences: vec![
                "People can no longer sign in to it, and its client secrets stop working.".into(),
                "Conditional Access policies that name it keep its id until you change them."
                    .into(),
            ],
            back_to: format!("/admin/applications/{}", app.id),
        },
    )
}

async fn delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteApplications>("deleting applications")?;
    state
        .directory
        .delete_application(&grant, &request, &id)
        .await?;
    done("/admin/applications", "application-deleted")
}

async fn confirm_remove_secret(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, key)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteApplications>("client secrets")?;
    let read = portal.grant::<ReadApplications>("applications")?;
    let app = state.directory.application(&read, &id).await?;
    let secret = app
        .password_credentials
        .iter()
        .find(|c| c.key_id.to_string().eq_ignore_ascii_case(&key))
        .ok_or_else(|| portcullis_core::Error::not_found("passwordCredential", &key))?;
    let name = match &secret.display_name {
        Some(description) => format!("{description} ({}…)", secret.hint),
        None => format!("{}…", secret.hint),
    };
    portal.confirm(
        "applications",
        Confirm {
            action: "Remove client secret",
            lead: "This removes the client secret".into(),
            name,
            tail: format!("of {}", app.display_name),
            consequences: vec![
                "Anything that still uses it can no longer get tokens as this application.".into(),
            ],
            back_to: format!("/admin/applications/{}", app.id),
        },
    )
}

/// Assigns a user (by sign-in name or id) or a group (by name or id) to the application, with
/// one of its roles for people or default access.
async fn add_assignment(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteAppRoleAssignments>("application assignments")?;
    let read = portal.grant::<ReadApplications>("applications")?;
    let read_users = portal.grant::<ReadUsers>("users")?;
    let read_groups = portal.grant::<ReadGroups>("groups")?;
    let app = state.directory.application(&read, &id).await?;
    let typed = form.text("principal").trim();
    let principal = match state.directory.user(&read_users, typed).await {
        Ok(user) => user.id,
        Err(_) => match super::users::find_group(&state, &read_groups, typed).await {
            Ok(group) => group.id,
            Err(_) => {
                let errors = super::one_error(
                    "principal",
                    format!(
                        "No user signs in as '{typed}' and no group has that name. Type a user's sign-in name, or a group's name or id."
                    ),
                );
                return app_page(&state, &portal, &id, StatusCode::BAD_REQUEST, None, errors).await;
            }
        },
    };
    let input = NewAppRoleAssignment {
        principal_id: principal.to_string(),
        resource_id: app.id.to_string(),
        app_role_id: form.text("appRoleId").to_string(),
        odata_type: None,
    };
    match state
        .directory
        .assign_app_role(&grant, &request, &id, input)
        .await
    {
        Ok(_) => done(
            &format!("/admin/applications/{}", app.id),
            "assignment-added",
        ),
        Err(portcullis_core::Error::Conflict { .. }) => {
            let errors =
                super::one_error("principal", format!("'{typed}' already holds that role."));
            app_page(&state, &portal, &id, StatusCode::CONFLICT, None, errors).await
        }
        Err(e) => {
            let (status, mut errors) = refusal(e, &["principalId", "appRoleId"])?;
            if let Some(message) = errors.remove("principalId") {
                errors.insert("principal".into(), message);
            }
            app_page(&state, &portal, &id, status, None, errors).await
        }
    }
}

async fn confirm_remove_assignment(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path((id, assignment)): Path<(String, String)>,
) -> PageResult {
    portal.grant::<WriteAppRoleAssignments>("application assignments")?;
    let read = portal.grant::<ReadApplications>("applications")?;
    let (app, assigned) = state.directory.app_role_assigned_to(&read, &id).await?;
    let found = assigned
        .iter()
        .find(|a| a.id.to_string().eq_ignore_ascii_case(&assignment))
        .ok_or_else(|| portcullis_core::Error::not_found("appRoleAssignment", &assignment))?;
    portal.confirm(
        "applications",
        Confirm {
            action: "Remove assignment",
            lead: "This removes".into(),
            name: format!(
                "{} ({})",
                found.principal_display_name,
                role_name(&app, found.app_role_id)
            ),
            tail: format!("from {}", app.display_name),
            consequences: vec![if app.access.app_role_assignment_required {
                "Unless assigned another way, they can no longer sign in to this application."
                    .into()
            } else {
                "Their tokens for this application no longer carry this role.".into()
            }],
            back_to: format!("/admin/applications/{}", app.id),
        },
    )
}

async fn remove_assignment(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path((id, assignment)): Path<(String, String)>,
) -> PageResult {
    let grant = portal.grant::<WriteAppRoleAssignments>("application assignments")?;
    state
        .directory
        .remove_app_role_assignment(&grant, &request, &id, &assignment)
        .await?;
    done(&format!("/admin/applications/{id}"), "assignment-removed")
}
