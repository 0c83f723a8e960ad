//! Conditional Access: the policy list, the policy form (new and edit), a policy's JSON, the
//! import of an exported policy file, named locations and authentication strengths.
//!
//! The pages never judge a policy themselves: they turn the form into Graph JSON and core
//! validates it with the same rules (and lint) as the API and `portcullis policy lint`. An edit
//! is reviewed before it is saved (core's dry run of the same replacement: the diff of the
//! JSON, the lockout guard, the replayed impact), and an import is reviewed per policy before
//! anything is stored.

use std::sync::Arc;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use portcullis_core::conditional_access::kept;
use portcullis_core::conditional_access::references::UNRESOLVED_PROPERTY;
use portcullis_core::conditional_access::{ImportCandidate, PolicyReview};
use portcullis_core::directory::authz::{
    Granted, ReadApplications, ReadAuditLogs, ReadGroups, ReadPolicies, ReadUserMethods, ReadUsers,
    WriteConditionalAccess,
};
use portcullis_core::directory::first_party::FIRST_PARTY_APPLICATIONS;
use portcullis_core::directory::roles::BUILT_IN_ROLES;
use portcullis_core::kernel::query::ListQuery;
use serde_json::{Value, json};

use super::line_diff;
use super::policy_form::{self, CLIENT_APPS, Lookups, PLATFORMS, PolicyForm, USER_ACTIONS};
use super::{
    Audit, Confirm, FieldErrors, FormData, PageError, PageResult, Portal, done, one_error, refusal,
};
use crate::{AppState, PortalState};
use portcullis_core::Error;
use portcullis_core::directory::audit::RequestContext;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/conditional-access", get(list))
        .route("/admin/conditional-access/policies", post(create))
        .route("/admin/conditional-access/policies/new", get(new_form))
        .route(
            "/admin/conditional-access/policies/{id}",
            get(edit_form).post(save),
        )
        .route(
            "/admin/conditional-access/policies/{id}/json",
            get(json_view),
        )
        .route(
            "/admin/conditional-access/policies/{id}/download",
            get(download),
        )
        .route(
            "/admin/conditional-access/policies/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route(
            "/admin/conditional-access/import",
            get(import_form).post(import),
        )
        .route(
            "/admin/conditional-access/import/reviewed",
            post(import_reviewed),
        )
        .route(
            "/admin/conditional-access/named-locations",
            get(locations).post(create_location),
        )
        .route(
            "/admin/conditional-access/named-locations/{id}",
            edit_route(Editable::Location),
        )
        .route(
            "/admin/conditional-access/named-locations/{id}/delete",
            get(confirm_delete_location).post(delete_location),
        )
        .route(
            "/admin/conditional-access/authentication-strengths",
            get(strengths).post(create_strength),
        )
        .route(
            "/admin/conditional-access/authentication-strengths/{id}",
            edit_route(Editable::Strength),
        )
        .route(
            "/admin/conditional-access/authentication-strengths/{id}/delete",
            get(confirm_delete_strength).post(delete_strength),
        )
}

pub fn state_label(state: &str) -> (&'static str, &'static str) {
    match state {
        "enabled" => ("On", "state-on"),
        "disabled" => ("Off", "state-off"),
        "enabledForReportingButNotEnforced" => ("Report-only", "state-report"),
        _ => ("Unknown", "state-bad"),
    }
}

/// One line on what a policy's grant asks for.
fn grant_summary(policy: &Value, strengths: &HashMap<String, String>) -> String {
    let grant = &policy["grantControls"];
    if grant.is_null() {
        return "Session controls only".into();
    }
    let controls: Vec<&str> = grant["builtInControls"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if controls.contains(&"block") {
        return "Block access".into();
    }
    let mut parts: Vec<String> = controls
        .iter()
        .map(|c| match *c {
            "mfa" => "Multifactor authentication".to_string(),
            other => other.to_string(),
        })
        .collect();
    if let Some(id) = grant["authenticationStrength"]["id"].as_str() {
        parts.push(format!(
            "Authentication strength: {}",
            strengths.get(id).map_or(id, String::as_str)
        ));
    }
    let joiner = if grant["operator"] == "AND" {
        " and "
    } else {
        " or "
    };
    format!("Require {}", parts.join(joiner))
}

async fn strength_names(
    state: &PortalState,
    grant: &Granted<ReadPolicies>,
) -> Result<HashMap<String, String>, PageError> {
    Ok(state
        .conditional_access
        .strengths(grant)
        .await?
        .iter()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_string(),
                s["displayName"].as_str()?.to_string(),
            ))
        })
        .collect())
}

fn subnav(current: &str) -> Value {
    json!({ "current": current })
}

async fn list(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let policies = state.conditional_access.policies(&grant).await?;
    let strengths = strength_names(&state, &grant).await?;
    let findings = state.conditional_access.findings(&grant).await?;
    let mut rows: Vec<Value> = policies
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap_or_default();
            let (label, class) = state_label(p["state"].as_str().unwrap_or_default());
            json!({
                "id": id,
                "displayName": p["displayName"],
                "state": label,
                "stateClass": class,
                "grant": grant_summary(p, &strengths),
                "modified": p["modifiedDateTime"].as_str().or(p["createdDateTime"].as_str()).unwrap_or_default(),
                "findings": findings.iter().filter(|f| f.object_id.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(id))).count(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        a["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .cmp(&b["displayName"].as_str().unwrap_or_default().to_lowercase())
    });
    portal.page(
        "admin/policies.html",
        "conditional-access",
        json!({
            "policies": rows,
            "can_write": portal.may::<WriteConditionalAccess>(),
            "subnav": subnav("policies"),
        }),
    )
}

/// The choices the form's pickers offer, as `[id, name]` pairs: people (what the caller may
/// read of them), groups, roles, applications, named locations and strengths.
async fn form_options(state: &PortalState, portal: &Portal) -> Result<Value, PageError> {
    let grant = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let everything = ListQuery {
        top: 999,
        ..ListQuery::default()
    };
    let mut users: Vec<Value> = vec![json!([policy_form::GUESTS, "All guest and external users"])];
    if let Some(g) = portal.maybe::<ReadUsers>() {
        users.extend(
            state
                .directory
                .list_users(&g, &everything)
                .await?
                .items
                .iter()
                .map(|u| {
                    json!([
                        u.id,
                        format!("{} ({})", u.display_name, u.user_principal_name)
                    ])
                }),
        );
    }
    let groups: Vec<Value> = match portal.maybe::<ReadGroups>() {
        Some(g) => state
            .directory
            .list_groups(&g, &everything)
            .await?
            .items
            .iter()
            .map(|g| json!([g.id, g.display_name]))
            .collect(),
        None => Vec::new(),
    };
    let mut applications: Vec<Value> = policy_form::APPLICATION_GROUPS
        .iter()
        .map(|(word, name)| json!([word, name]))
        .collect();
    applications.extend(
        FIRST_PARTY_APPLICATIONS
            .iter()
            .map(|(id, name)| json!([id, name])),
    );
    if let Some(g) = portal.maybe::<ReadApplications>() {
        for a in state
            .directory
            .list_applications(&g, &everything)
            .await?
            .items
        {
            if !FIRST_PARTY_APPLICATIONS
                .iter()
                .any(|(id, _)| *id == a.app_id)
            {
                applications.push(json!([a.app_id, a.display_name]));
            }
        }
    }
    let locations: Vec<Value> = state
        .conditional_access
        .named_locations(&grant)
        .await?
        .iter()
        .map(|l| json!([l["id"], l["displayName"]]))
        .collect();
    let strengths: Vec<Value> = state
        .conditional_access
        .strengths(&grant)
        .await?
        .iter()
        .map(|s| json!([s["id"], s["displayName"]]))
        .collect();
    Ok(json!({
        "users": users,
        "groups": groups,
        "roles": BUILT_IN_ROLES.iter().map(|r| json!([r.template_id, r.display_name])).collect::<Vec<_>>(),
        "applications": applications,
        "locations": locations,
        "strengths": strengths,
        "platforms": PLATFORMS,
        "clientApps": CLIENT_APPS,
        "userActions": USER_ACTIONS,
    }))
}

/// `[id, name]` pairs of one of the options' lists.
fn pairs_of(options: &Value, key: &str) -> Vec<(String, String)> {
    options[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
        .collect()
}

/// What the form shows beside the fields after a review, a save or a preview.
#[derive(Default, Clone, Copy)]
struct Notices<'a> {
    /// The lockout guard's finding, with the checkbox that acknowledges it.
    lockout: Option<&'a Value>,
    /// What the form's policy would have done to the last 7 days' sign-ins.
    impact: Option<&'a Value>,
    /// The review of an edit: the diff of the stored JSON against what would be saved.
    review: Option<&'a Value>,
    /// What the analyzer finds about the policy with the change made.
    analysis: Option<&'a Value>,
}

/// What the analyzer finds about policy `id` in the tenant's set with `body` in its place:
/// shown in the review, before Save, beside the guard and the impact. The whole tenant's
/// findings are the Analysis page's; this keeps those that name the policy. An analysis that
/// cannot run (the caller may not read people's methods, a directory too large to analyse
/// online) says so and stops nothing.
async fn analysis_of_change(state: &PortalState, portal: &Portal, id: &str, body: &Value) -> Value {
    let Some(methods) = portal.maybe::<ReadUserMethods>() else {
        return json!({ "unavailable": "The analyzer was not run: it reads people's authentication methods, which your roles do not allow." });
    };
    let Some(grant) = portal.maybe::<ReadPolicies>() else {
        return json!({ "unavailable": "The analyzer was not run." });
    };
    let candidate = json!({ "changes": [{ "id": id, "policy": body }] });
    let report = match crate::graph::analysis::run(
        &state.analyzer,
        &grant,
        &methods,
        &state.conditional_access,
        candidate.to_string().as_bytes(),
    )
    .await
    {
        Ok(report) => report,
        Err(e) => {
            return json!({ "unavailable": format!("The analyzer could not run: {}", super::analysis::reason(&e)) });
        }
    };
    let findings: Vec<Value> = report
        .analysis
        .findings
        .iter()
        .filter(|f| f.policies.iter().any(|p| p.id.eq_ignore_ascii_case(id)))
        .map(|f| super::analysis::summary(f, &report.names))
        .collect();
    json!({ "findings": findings })
}

/// The pickers of the form, by the name each posts under, with the Graph property it writes.
const PICKERS: &[(&str, &str, &str)] = &[
    ("includeUsers", "users", "conditions.users.includeUsers"),
    ("includeGroups", "groups", "conditions.users.includeGroups"),
    ("includeRoles", "roles", "conditions.users.includeRoles"),
    ("excludeUsers", "users", "conditions.users.excludeUsers"),
    ("excludeGroups", "groups", "conditions.users.excludeGroups"),
    ("excludeRoles", "roles", "conditions.users.excludeRoles"),
    (
        "includeApplications",
        "applications",
        "conditions.applications.includeApplications",
    ),
    (
        "excludeApplications",
        "applications",
        "conditions.applications.excludeApplications",
    ),
];

/// Each picker's chosen values as chips: the value it posts, its name, and whether it names
/// nothing here (`unresolved`, kept from an import) or nothing known (`unknown`: typed, or
/// outside what the caller may read).
fn chips(form: &PolicyForm, options: &Value, unresolved: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (name, list, property) in PICKERS {
        let values = match *name {
            "includeUsers" => &form.include.users,
            "includeGroups" => &form.include.groups,
            "includeRoles" => &form.include.roles,
            "excludeUsers" => &form.exclude.users,
            "excludeGroups" => &form.exclude.groups,
            "excludeRoles" => &form.exclude.roles,
            "includeApplications" => &form.include_apps,
            _ => &form.exclude_apps,
        };
        let known = pairs_of(options, list);
        let chips: Vec<Value> = values
            .iter()
            .map(|value| {
                let is_unresolved = unresolved.as_array().into_iter().flatten().any(|r| {
                    r["property"] == *property
                        && r["id"]
                            .as_str()
                            .is_some_and(|id| id.eq_ignore_ascii_case(value))
                });
                let label = known
                    .iter()
                    .find(|(id, _)| id.eq_ignore_ascii_case(value))
                    .map(|(_, l)| l.clone());
                let flag = if is_unresolved {
                    "unresolved"
                } else if label.is_none() {
                    "unknown"
                } else {
                    ""
                };
                json!({
                    "value": value,
                    "label": label.unwrap_or_else(|| value.clone()),
                    "flag": flag,
                })
            })
            .collect();
        out.insert(name.to_string(), Value::Array(chips));
    }
    Value::Object(out)
}

/// The members of a stored policy this editor shows but does not edit, each with its value,
/// the section it belongs to and what Portcullis does with it. Saving keeps every one.
fn kept_rows(stored: &Value) -> Vec<Value> {
    let engine = kept::kept_fields(stored);
    let mut rows = Vec::new();
    walk_kept(stored, "", &engine, &mut rows);
    rows
}

/// Paths the form edits (and so shows as fields), and paths it walks into.
const EDITED: &[&str] = &[
    "id",
    "displayName",
    "state",
    "createdDateTime",
    "modifiedDateTime",
    "conditions.users.includeUsers",
    "conditions.users.excludeUsers",
    "conditions.users.includeGroups",
    "conditions.users.excludeGroups",
    "conditions.users.includeRoles",
    "conditions.users.excludeRoles",
    "conditions.applications.includeApplications",
    "conditions.applications.excludeApplications",
    "conditions.applications.includeUserActions",
    "conditions.applications.includeAuthenticationContextClassReferences",
    "conditions.platforms.includePlatforms",
    "conditions.platforms.excludePlatforms",
    "conditions.locations.includeLocations",
    "conditions.locations.excludeLocations",
    "conditions.clientAppTypes",
    "grantControls.operator",
    "grantControls.authenticationStrength",
    "sessionControls.signInFrequency.isEnabled",
    "sessionControls.signInFrequency.value",
    "sessionControls.signInFrequency.type",
    "sessionControls.signInFrequency.frequencyInterval",
    "sessionControls.signInFrequency.authenticationType",
    "sessionControls.persistentBrowser.isEnabled",
    "sessionControls.persistentBrowser.mode",
];
const WALKED: &[&str] = &[
    "conditions",
    "conditions.users",
    "conditions.applications",
    "conditions.platforms",
    "conditions.locations",
    "grantControls",
    "sessionControls",
    "sessionControls.signInFrequency",
    "sessionControls.persistentBrowser",
];

/// Whether a value holds a setting: `null`, `""`, `[]`, `{}` are what Graph writes for "not
/// configured".
fn meaningful(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| !k.starts_with('@') && !k.contains("@odata.") && meaningful(v)),
        _ => true,
    }
}

fn walk_kept(value: &Value, prefix: &str, engine: &[kept::KeptField], rows: &mut Vec<Value>) {
    let Some(map) = value.as_object() else {
        return;
    };
    for (key, member) in map {
        if key.starts_with('@') || key.contains("@odata.") || key == UNRESOLVED_PROPERTY {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if WALKED.contains(&path.as_str()) {
            walk_kept(member, &path, engine, rows);
            continue;
        }
        if path == "grantControls.builtInControls" {
            for control in member.as_array().into_iter().flatten() {
                let Some(control) = control.as_str() else {
                    continue;
                };
                if !matches!(control, "mfa" | "block") {
                    rows.push(kept_row(&path, json!(control), engine));
                }
            }
            continue;
        }
        if EDITED.contains(&path.as_str()) || !meaningful(member) {
            continue;
        }
        rows.push(kept_row(&path, member.clone(), engine));
    }
}

fn kept_row(path: &str, value: Value, engine: &[kept::KeptField]) -> Value {
    let section = if path.starts_with("conditions.users") {
        "users"
    } else if path.starts_with("conditions.applications") {
        "target"
    } else if path.starts_with("conditions") {
        "conditions"
    } else if path.starts_with("grantControls") {
        "grant"
    } else if path.starts_with("sessionControls") {
        "session"
    } else {
        "other"
    };
    let from_engine = engine
        .iter()
        .find(|k| path == k.path || path.starts_with(&format!("{}.", k.path)));
    let (flag, note) = match from_engine {
        Some(k) => (k.effect, k.note),
        None => kept_note(path, &value),
    };
    json!({
        "path": path,
        "label": entra_label(path, &value),
        "value": match &value { Value::String(s) => s.clone(), other => other.to_string() },
        "section": section,
        "flag": flag,
        "note": note,
    })
}

/// The name Entra's admin center gives a member the editor keeps but does not edit, so a
/// person who knows Entra recognises it beside its Graph name.
fn entra_label(path: &str, value: &Value) -> String {
    let label = match path {
        "grantControls.builtInControls" => match value.as_str().unwrap_or_default() {
            "compliantDevice" => "Require device to be marked as compliant",
            "domainJoinedDevice" => "Require Microsoft Entra hybrid joined device",
            "approvedApplication" => "Require approved client app",
            "compliantApplication" => "Require app protection policy",
            "passwordChange" => "Require password change",
            "riskRemediation" => "Require risk remediation",
            _ => "Grant control",
        },
        "grantControls.termsOfUse" => "Terms of use",
        "grantControls.customAuthenticationFactors" => "Custom controls",
        "conditions.userRiskLevels" => "User risk",
        "conditions.signInRiskLevels" => "Sign-in risk",
        "conditions.servicePrincipalRiskLevels" => "Service principal risk",
        "conditions.insiderRiskLevels" => "Insider risk",
        "conditions.devices" => "Filter for devices",
        "conditions.authenticationFlows" => "Authentication flows",
        "conditions.clientApplications" => "Workload identities (client applications)",
        "conditions.times" => "Times",
        "conditions.users.includeGuestsOrExternalUsers" => "Include guest or external users",
        "conditions.users.excludeGuestsOrExternalUsers" => "Exclude guest or external users",
        "conditions.applications.applicationFilter" => "Filter for applications",
        "conditions.applications.networkAccess" | "conditions.applications.globalSecureAccess" => {
            "Global Secure Access traffic"
        }
        "sessionControls.applicationEnforcedRestrictions" => "Use app enforced restrictions",
        "sessionControls.cloudAppSecurity" => "Use Conditional Access App Control",
        "sessionControls.continuousAccessEvaluation" => "Customize continuous access evaluation",
        "sessionControls.disableResilienceDefaults" => "Disable resilience defaults",
        "sessionControls.secureSignInSession" => "Require token protection for sign-in sessions",
        "sessionControls.globalSecureAccessFilteringProfile" => {
            "Global Secure Access security profile"
        }
        "templateId" => "Created from a template",
        "description" => "Description",
        p if p.starts_with("sessionControls.signInFrequency.") => "Sign-in frequency",
        p if p.starts_with("sessionControls.persistentBrowser.") => "Persistent browser session",
        p if p.starts_with("conditions.platforms.") => "Device platforms",
        p if p.starts_with("conditions.locations.") => "Locations",
        p if p.starts_with("conditions.users.") => "Users",
        p if p.starts_with("conditions.applications.") => "Target resources",
        p if p.starts_with("conditions.") => "Condition",
        p if p.starts_with("grantControls.") => "Grant",
        p if p.starts_with("sessionControls.") => "Session control",
        _ => "Not shown in the editor",
    };
    label.to_string()
}

/// What Portcullis does with a member the engine models but this editor does not edit.
fn kept_note(path: &str, value: &Value) -> (&'static str, &'static str) {
    match path {
        "grantControls.builtInControls" => match value.as_str().unwrap_or_default() {
            "compliantDevice" | "domainJoinedDevice" => (
                "notEvaluated",
                "Kept, not evaluated by Portcullis: it has no device management, so no sign-in meets this control (with “require one of”, another control can).",
            ),
            _ => (
                "notEvaluated",
                "Kept, not evaluated by Portcullis: no sign-in meets this control here (with “require one of”, another control can).",
            ),
        },
        "grantControls.termsOfUse" | "grantControls.customAuthenticationFactors" => (
            "notEvaluated",
            "Kept, not evaluated by Portcullis: it shows no terms of use or custom controls, so no sign-in meets this (with “require one of”, another control can).",
        ),
        "conditions.signInRiskLevels" | "conditions.userRiskLevels" => (
            "notEvaluated",
            "Kept: Portcullis detects no risk, so no sign-in has these risk levels and the policy does not apply to any.",
        ),
        "templateId" | "description" => (
            "informational",
            "Kept as it is; informational, it changes no decision.",
        ),
        _ => (
            "kept",
            "Kept as it is; evaluated by the engine, not editable here.",
        ),
    }
}

async fn render_form(
    state: &PortalState,
    portal: &Portal,
    status: StatusCode,
    policy_id: Option<&str>,
    form: &PolicyForm,
    errors: FieldErrors,
    notices: Notices<'_>,
) -> PageResult {
    let options = form_options(state, portal).await?;
    let grant = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let (findings, stored) = match policy_id {
        Some(id) => (
            state
                .conditional_access
                .findings(&grant)
                .await?
                .into_iter()
                .filter(|f| {
                    f.object_id
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(id))
                })
                .collect(),
            state.conditional_access.policy(&grant, id).await?,
        ),
        None => (Vec::new(), Value::Null),
    };
    // Ids an imported export named that do not exist here: kept, and shown where they sit.
    let unresolved = stored
        .get(UNRESOLVED_PROPERTY)
        .cloned()
        .unwrap_or(Value::Null);
    let strengths = strength_names(state, &grant).await?;
    let (state_label_text, state_class) = state_label(&form.state);
    Ok(portal.render(
        status,
        "admin/policy_form.html",
        "conditional-access",
        json!({
            "policy_id": policy_id,
            "stored_name": stored["displayName"],
            "form": form,
            "state_label": state_label_text,
            "state_class": state_class,
            "summaries": form.summaries(&strengths),
            "chips": chips(form, &options, &unresolved),
            "kept": kept_rows(&stored),
            "options": options,
            "errors": errors,
            "findings": findings,
            "unresolved": unresolved,
            "lockout": notices.lockout,
            "impact": notices.impact,
            "review": notices.review,
            "analysis": notices.analysis,
            "can_write": portal.may::<WriteConditionalAccess>(),
            "subnav": subnav("policies"),
        }),
    ))
}

async fn new_form(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    portal.grant::<WriteConditionalAccess>("creating Conditional Access policies")?;
    render_form(
        &state,
        &portal,
        StatusCode::OK,
        None,
        &PolicyForm::new_policy(),
        FieldErrors::new(),
        Notices::default(),
    )
    .await
}

async fn edit_form(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let policy = state.conditional_access.policy(&grant, &id).await?;
    let form = PolicyForm::from_policy(&policy);
    render_form(
        &state,
        &portal,
        StatusCode::OK,
        Some(&id),
        &form,
        FieldErrors::new(),
        Notices::default(),
    )
    .await
}

/// What the pickers' typed names turn into: sign-in names looked up (those not found are left
/// out, and the form reports them), and the groups, roles and applications the pickers offer.
async fn lookups(
    state: &PortalState,
    portal: &Portal,
    form: &PolicyForm,
) -> Result<Lookups, PageError> {
    let options = form_options(state, portal).await?;
    let mut users = HashMap::new();
    if let Some(grant) = portal.maybe::<ReadUsers>() {
        for typed in form.typed_users() {
            if let Ok(user) = state.directory.user(&grant, &typed).await {
                users.insert(typed, user.id.to_string());
            }
        }
    }
    Ok(Lookups {
        users,
        groups: pairs_of(&options, "groups"),
        roles: pairs_of(&options, "roles"),
        applications: pairs_of(&options, "applications"),
    })
}

/// The form again, with what the policy as typed would have done to the last 7 days.
async fn preview(
    state: &PortalState,
    portal: &Portal,
    policy_id: Option<&str>,
    form: &PolicyForm,
    body: Value,
) -> PageResult {
    let impact = impact(state, portal, policy_id, body).await;
    let notices = Notices {
        impact: Some(&impact),
        ..Notices::default()
    };
    render_form(
        state,
        portal,
        StatusCode::OK,
        policy_id,
        form,
        FieldErrors::new(),
        notices,
    )
    .await
}

/// What the policy as the form now stands would have done to the last 7 days' sign-ins: the
/// tenant's policies with this one changed (or added), replayed over the sign-in log. Nothing
/// is saved. Reading the log takes the audit-log reading permission as well.
async fn impact(
    state: &PortalState,
    portal: &Portal,
    id: Option<&str>,
    mut policy: Value,
) -> Value {
    let (Some(policies), Some(logs)) = (
        portal.maybe::<ReadPolicies>(),
        portal.maybe::<ReadAuditLogs>(),
    ) else {
        return json!({"unavailable": "Previewing against past sign-ins reads the sign-in log, which your roles do not allow (Reports Reader, Security Reader or Global Reader do)."});
    };
    // A new policy has no id yet; any id that names no stored policy adds it.
    let id = id
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    policy["id"] = json!(id);
    let request = json!({"changes": [{"id": id, "policy": policy}], "days": 7, "top": 10});
    match state
        .sign_in_logs
        .replay(
            &policies,
            &logs,
            &state.conditional_access,
            request.to_string().as_bytes(),
        )
        .await
    {
        Ok(report) => {
            let mut view = serde_json::to_value(&report).unwrap_or_default();
            let sum = |key: &str| -> u64 {
                report
                    .by_user
                    .iter()
                    .map(|u| match key {
                        "blocked" => u.counts.now_blocked,
                        "challenged" => u.counts.now_challenged,
                        _ => u.counts.now_granted,
                    })
                    .sum()
            };
            view["nowBlocked"] = json!(sum("blocked"));
            view["nowChallenged"] = json!(sum("challenged"));
            view["nowGranted"] = json!(sum("granted"));
            view
        }
        Err(e) => json!({"error": e.public_message()}),
    }
}

/// The form's "I understand this may lock administrators out" checkbox.
fn acknowledged(mut request: RequestContext, form: &FormData) -> RequestContext {
    request.acknowledge_lockout = form.text("acknowledgeLockout") == "true";
    request
}

/// The lockout guard's finding, when that is why a change was refused: the form shows it with
/// the checkbox that acknowledges it.
fn lockout_finding(e: &Error) -> Option<Value> {
    match e {
        Error::WouldLockOut { finding, .. } => Some(finding.as_ref().clone()),
        _ => None,
    }
}

async fn create(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("creating Conditional Access policies")?;
    let request = acknowledged(request, &form);
    let previewing = form.text("intent") == "preview";
    let form = PolicyForm::from_form(&form);
    let lookups = lookups(&state, &portal, &form).await?;
    let body = match form.apply(&policy_form::empty_policy(), &lookups) {
        Ok(body) => body,
        Err(errors) => {
            return render_form(
                &state,
                &portal,
                StatusCode::BAD_REQUEST,
                None,
                &form,
                errors,
                Notices::default(),
            )
            .await;
        }
    };
    if previewing {
        return preview(&state, &portal, None, &form, body).await;
    }
    match state
        .conditional_access
        .create_policy(&grant, &request, body.to_string().as_bytes())
        .await
    {
        Ok(created) => done(
            &format!(
                "/admin/conditional-access/policies/{}",
                created["id"].as_str().unwrap_or_default()
            ),
            "policy-created",
        ),
        Err(e) => {
            let lockout = lockout_finding(&e);
            let (status, errors) = refusal(e, policy_form::SECTIONS)?;
            render_form(
                &state,
                &portal,
                status,
                None,
                &form,
                errors,
                Notices {
                    lockout: lockout.as_ref(),
                    ..Notices::default()
                },
            )
            .await
        }
    }
}

/// A policy's JSON as the review compares it: what a save always changes (the modification
/// time) and what the server adds when reading (unresolved references) left out.
/// Members are sorted by name, at every depth: the order of a JSON object's members means
/// nothing, and the diff shows only what changes a value.
fn comparable(policy: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut policy = policy.clone();
    if let Some(map) = policy.as_object_mut() {
        map.remove("modifiedDateTime");
        map.remove(UNRESOLVED_PROPERTY);
    }
    serde_json::to_string_pretty(&sorted(&policy)).unwrap_or_default()
}

/// The review of an edit as the page shows it: the diff, whether it changes anything, and a
/// digest of both documents that the Save button carries, so a save stores only what was
/// reviewed (the form changed since, or someone else saved the policy: review again).
fn review_view(review: &PolicyReview) -> Value {
    let before = comparable(&review.before);
    let after = comparable(&review.after);
    let lines = line_diff::diff(&before, &after, 3);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(before.as_str(), after.as_str()), &mut hasher);
    json!({
        "changed": line_diff::changes(&lines),
        "added": lines.iter().filter(|l| l.change == line_diff::Change::Added).count(),
        "removed": lines.iter().filter(|l| l.change == line_diff::Change::Removed).count(),
        "lines": lines,
        "digest": format!("{:016x}", std::hash::Hasher::finish(&hasher)),
    })
}

/// An edit is reviewed before it is saved: the first submit shows the diff of the policy's
/// JSON, the lockout guard's finding and what the change would have done in the last 7 days;
/// Save then stores exactly what was reviewed. Saving an unchanged policy stores nothing.
async fn save(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("changing Conditional Access policies")?;
    let read = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let mut stored = state.conditional_access.policy(&read, &id).await?;
    if let Some(map) = stored.as_object_mut() {
        map.remove(UNRESOLVED_PROPERTY);
    }
    let saving = acknowledged(request.clone(), &form);
    let intent = form.text("intent").to_string();
    let reviewed = form.text("reviewed").to_string();
    let form = PolicyForm::from_form(&form);
    let lookups = lookups(&state, &portal, &form).await?;
    let body = match form.apply(&stored, &lookups) {
        Ok(body) => body,
        Err(errors) => {
            return render_form(
                &state,
                &portal,
                StatusCode::BAD_REQUEST,
                Some(&id),
                &form,
                errors,
                Notices::default(),
            )
            .await;
        }
    };
    if intent == "preview" {
        return preview(&state, &portal, Some(&id), &form, body).await;
    }
    // The review runs before every save too: the guard is asked without the acknowledgement,
    // so its finding shows even when the box is ticked.
    let review = match state
        .conditional_access
        .review_replacement(&grant, &request, &id, body.to_string().as_bytes())
        .await
    {
        Ok(review) => review,
        Err(e) => return refused_edit(&state, &portal, &id, &form, e).await,
    };
    let mut view = review_view(&review);
    let changed = view["changed"] == true;
    if intent == "save" && reviewed == view["digest"] {
        if !changed {
            return done(
                &format!("/admin/conditional-access/policies/{id}"),
                "policy-unchanged",
            );
        }
        return match state
            .conditional_access
            .replace_policy(&grant, &saving, &id, body.to_string().as_bytes())
            .await
        {
            Ok(_) => done(
                &format!("/admin/conditional-access/policies/{id}"),
                "policy-saved",
            ),
            Err(e) => refused_edit(&state, &portal, &id, &form, e).await,
        };
    }
    // A save of something other than what was reviewed is reviewed again.
    view["stale"] = json!(intent == "save");
    let analysis = if changed {
        Some(analysis_of_change(&state, &portal, &id, &body).await)
    } else {
        None
    };
    let impact = if changed {
        Some(impact(&state, &portal, Some(&id), body).await)
    } else {
        None
    };
    render_form(
        &state,
        &portal,
        StatusCode::OK,
        Some(&id),
        &form,
        FieldErrors::new(),
        Notices {
            lockout: review.lockout.as_ref(),
            impact: impact.as_ref(),
            review: Some(&view),
            analysis: analysis.as_ref(),
        },
    )
    .await
}

/// The edit form again after core refused the change, the refusal beside its section (and
/// the guard's finding with its checkbox, when that is why).
async fn refused_edit(
    state: &PortalState,
    portal: &Portal,
    id: &str,
    form: &PolicyForm,
    e: Error,
) -> PageResult {
    let lockout = lockout_finding(&e);
    let (status, errors) = refusal(e, policy_form::SECTIONS)?;
    render_form(
        state,
        portal,
        status,
        Some(id),
        form,
        errors,
        Notices {
            lockout: lockout.as_ref(),
            ..Notices::default()
        },
    )
    .await
}

async fn json_view(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let policy = state.conditional_access.policy(&grant, &id).await?;
    portal.page(
        "admin/policy_json.html",
        "conditional-access",
        json!({
            "policy_id": id,
            "displayName": policy["displayName"],
            "json": serde_json::to_string_pretty(&policy).unwrap_or_default(),
            "subnav": subnav("policies"),
        }),
    )
}

/// The policy as a file, in the shape Graph exports (and this portal imports).
async fn download(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let policy = state.conditional_access.policy(&grant, &id).await?;
    let id = policy["id"].as_str().unwrap_or("policy").to_string();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"conditional-access-policy-{id}.json\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        serde_json::to_string_pretty(&policy).unwrap_or_default(),
    )
        .into_response())
}

async fn confirm_delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteConditionalAccess>("deleting Conditional Access policies")?;
    let read = portal.grant::<ReadPolicies>("Conditional Access policies")?;
    let policy = state.conditional_access.policy(&read, &id).await?;
    let (state_text, _) = state_label(policy["state"].as_str().unwrap_or_default());
    portal.confirm(
        "conditional-access",
        Confirm {
            action: "Delete policy",
            lead: "This deletes the Conditional Access policy".into(),
            name: policy["displayName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            tail: format!("(now {state_text})"),
            consequences: vec![
                "Sign-ins are no longer checked against it, from the next one on.".into(),
                "To stop it for a while instead, set it to Off or Report-only.".into(),
            ],
            back_to: format!("/admin/conditional-access/policies/{id}"),
        },
    )
}

async fn delete(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("deleting Conditional Access policies")?;
    state
        .conditional_access
        .delete_policy(&grant, &request, &id)
        .await?;
    done("/admin/conditional-access", "policy-deleted")
}

// --- import ------------------------------------------------------------------------------

/// The most policies one review carries (Entra's limit per tenant is 240; a review of more
/// would not fit a page a person can check).
const MAX_REVIEWED: usize = 50;

async fn import_form(portal: Portal) -> PageResult {
    portal.grant::<WriteConditionalAccess>("importing Conditional Access policies")?;
    portal.page(
        "admin/policy_import.html",
        "conditional-access",
        json!({ "errors": {}, "subnav": subnav("policies") }),
    )
}

fn import_again(portal: &Portal, status: StatusCode, errors: FieldErrors) -> PageResult {
    Ok(portal.render(
        status,
        "admin/policy_import.html",
        "conditional-access",
        json!({ "errors": errors, "subnav": subnav("policies") }),
    ))
}

/// What an unresolved reference is, in words, by the Graph property that names it.
fn unresolved_label(property: &str) -> &'static str {
    match property {
        "conditions.users.includeUsers" => "Included user",
        "conditions.users.excludeUsers" => "Excluded user",
        "conditions.users.includeGroups" => "Included group",
        "conditions.users.excludeGroups" => "Excluded group",
        "conditions.users.includeRoles" => "Included directory role",
        "conditions.users.excludeRoles" => "Excluded directory role",
        "conditions.applications.includeApplications" => "Included application",
        "conditions.applications.excludeApplications" => "Excluded application",
        "conditions.locations.includeLocations" => "Included named location",
        "conditions.locations.excludeLocations" => "Excluded named location",
        "grantControls.authenticationStrength.id" => "Authentication strength",
        _ => "Reference",
    }
}

/// One policy on the review page: what the file says, what core found, and the choices.
fn review_item(candidate: &ImportCandidate, file: &str, error: Option<String>) -> Value {
    let has_unresolved_exclusion = candidate.unresolved.iter().any(|r| r.exclusion);
    // Everything the editor will show but not edit, as the editor lists it (its Graph name,
    // Entra's label and what Portcullis does with it): the engine's unsupported members and
    // the ones it evaluates that have no field in the form alike.
    let kept = kept_rows(&candidate.document);
    json!({
        "file": file,
        "displayName": candidate.document["displayName"],
        "id": candidate.document["id"],
        "fileState": state_label(candidate.document["state"].as_str().unwrap_or_default()).0,
        "document": candidate.document.to_string(),
        "exists": candidate.exists,
        "unresolved": candidate.unresolved.iter().map(|r| {
            let mut row = json!(r);
            row["label"] = json!(unresolved_label(r.property));
            row
        }).collect::<Vec<_>>(),
        "kept": kept,
        "canEnable": !has_unresolved_exclusion,
        "canImport": !candidate.unresolved.iter().any(|r| r.blocks_import),
        "error": error,
    })
}

/// Reads the uploaded files (one or many, each a policy or a collection of them, as Entra or
/// this portal exports them) and shows each policy for review. Nothing is stored: the
/// reviewed documents travel in the review form itself (bounded by the request size limit),
/// so any node can take the confirmation and nothing lingers when a review is abandoned.
async fn import(State(state): State<Arc<PortalState>>, portal: Portal, req: Request) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("importing Conditional Access policies")?;
    let Some(boundary) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(super::multipart::boundary)
    else {
        return import_again(
            &portal,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            one_error("file", "Choose a file and send it with the form."),
        );
    };
    let body = super::read_body(req, &state).await?;
    let files: Vec<(String, Vec<u8>)> = super::multipart::parts(&body, &boundary)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.name == "file" && !p.body.iter().all(u8::is_ascii_whitespace))
        .map(|p| (p.file_name.unwrap_or_default(), p.body.to_vec()))
        .collect();
    if files.is_empty() {
        return import_again(
            &portal,
            StatusCode::BAD_REQUEST,
            one_error("file", "Choose one or more policy files (JSON) to import."),
        );
    }
    let mut items = Vec::new();
    for (name, bytes) in &files {
        let shown = if name.is_empty() { "the file" } else { name };
        match state.conditional_access.review_import(&grant, bytes).await {
            Ok(candidates) => items.extend(candidates.iter().map(|c| review_item(c, shown, None))),
            Err(e) => {
                let (status, errors) = refusal(e, &[])?;
                let message = errors.into_values().next().unwrap_or_default();
                return import_again(
                    &portal,
                    status,
                    one_error("file", format!("{shown}: {message}")),
                );
            }
        }
    }
    if items.len() > MAX_REVIEWED {
        return import_again(
            &portal,
            StatusCode::BAD_REQUEST,
            one_error(
                "file",
                format!(
                    "These files hold {} policies; review at most {MAX_REVIEWED} at a time.",
                    items.len()
                ),
            ),
        );
    }
    review_page(&portal, StatusCode::OK, &items, &[])
}

fn review_page(
    portal: &Portal,
    status: StatusCode,
    items: &[Value],
    imported: &[Value],
) -> PageResult {
    Ok(portal.render(
        status,
        "admin/policy_import_review.html",
        "conditional-access",
        json!({
            "items": items,
            "imported": imported,
            "subnav": subnav("policies"),
        }),
    ))
}

/// Imports the policies the review kept ticked, each in the state chosen for it and, when
/// asked, as a copy with a new id. Each is its own change: those core refuses come back for
/// review with the reason, the others are imported and linked.
async fn import_reviewed(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("importing Conditional Access policies")?;
    let count = form
        .text("count")
        .parse::<usize>()
        .unwrap_or(0)
        .min(MAX_REVIEWED);
    let mut imported = Vec::new();
    let mut again = Vec::new();
    for i in 0..count {
        let field = |name: &str| form.text(&format!("{name}-{i}")).to_string();
        if !form.checked(&format!("import-{i}")) {
            continue;
        }
        let file = field("file");
        let Ok(Value::Object(mut document)) = serde_json::from_str::<Value>(&field("document"))
        else {
            return Err(Error::invalid(
                "document",
                "The review could not be read. Upload the files again.",
            )
            .into());
        };
        let chosen = field("state");
        if !matches!(
            chosen.as_str(),
            "enabled" | "disabled" | "enabledForReportingButNotEnforced"
        ) {
            return Err(
                Error::invalid("state", "Choose On, Off or Report-only for each policy.").into(),
            );
        }
        document.insert("state".into(), json!(chosen));
        if form.checked(&format!("copy-{i}")) {
            document.remove("id");
        }
        let document = Value::Object(document);
        let body = document.to_string();
        match state
            .conditional_access
            .import_policy(&grant, &request, body.as_bytes())
            .await
        {
            Ok(created) => imported.push(json!({
                "id": created["id"],
                "displayName": created["displayName"],
                "state": state_label(created["state"].as_str().unwrap_or_default()).0,
            })),
            Err(e) => {
                let (_, errors) = refusal(e, &[])?;
                let message = errors.into_values().next().unwrap_or_default();
                let candidates = state
                    .conditional_access
                    .review_import(&grant, body.as_bytes())
                    .await?;
                let mut item = candidates
                    .first()
                    .map(|c| review_item(c, &file, Some(message)))
                    .unwrap_or_default();
                item["proposedState"] = json!(chosen);
                again.push(item);
            }
        }
    }
    if imported.is_empty() && again.is_empty() {
        return Err(Error::invalid("import", "Tick at least one policy to import.").into());
    }
    let status = if again.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    review_page(&portal, status, &again, &imported)
}

// --- named locations ---------------------------------------------------------------------

async fn locations(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    locations_page(
        &state,
        &portal,
        StatusCode::OK,
        json!({}),
        FieldErrors::new(),
    )
    .await
}

async fn locations_page(
    state: &PortalState,
    portal: &Portal,
    status: StatusCode,
    values: Value,
    errors: FieldErrors,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("named locations")?;
    let locations: Vec<Value> = state
        .conditional_access
        .named_locations(&grant)
        .await?
        .iter()
        .map(|l| {
            let ranges: Vec<&str> = l["ipRanges"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r["cidrAddress"].as_str()).collect())
                .unwrap_or_default();
            let countries: Vec<&str> = l["countriesAndRegions"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            json!({
                "id": l["id"],
                "displayName": l["displayName"],
                "isTrusted": l["isTrusted"].as_bool().unwrap_or(false),
                "ranges": ranges,
                "countries": countries,
            })
        })
        .collect();
    Ok(portal.render(
        status,
        "admin/locations.html",
        "conditional-access",
        json!({
            "locations": locations,
            "country_database": country_database(state),
            "values": values,
            "errors": errors,
            "can_write": portal.may::<WriteConditionalAccess>(),
            "subnav": subnav("locations"),
        }),
    ))
}

/// What the location pages say about the country database: which one places addresses, or
/// that none does and country locations therefore never match a country.
fn country_database(state: &PortalState) -> Value {
    match state.conditional_access.countries().database() {
        Some(db) => json!({
            "configured": true,
            "type": db.database_type,
            "built": db.built.date().to_string(),
        }),
        None => json!({ "configured": false }),
    }
}

/// Which of the two Conditional Access objects with an edit form a request is about: a named
/// location or a custom authentication strength. One form page and one save for both; this
/// says where they differ.
#[derive(Clone, Copy)]
enum Editable {
    Location,
    Strength,
}

impl Editable {
    /// The template's name for it, its list's address, its tab in the subnavigation, and the
    /// words a refusal uses for it.
    fn names(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Editable::Location => (
                "location",
                "/admin/conditional-access/named-locations",
                "locations",
                "named locations",
            ),
            Editable::Strength => (
                "strength",
                "/admin/conditional-access/authentication-strengths",
                "strengths",
                "authentication strengths",
            ),
        }
    }

    /// The object as stored; a built-in strength is refused (it cannot be changed).
    async fn stored(
        self,
        state: &PortalState,
        portal: &Portal,
        id: &str,
    ) -> Result<Value, PageError> {
        match self {
            Editable::Location => {
                let grant = portal.grant::<ReadPolicies>(self.names().3)?;
                Ok(state.conditional_access.named_location(&grant, id).await?)
            }
            Editable::Strength => custom_strength(state, portal, id).await,
        }
    }

    /// The stored object as its form shows it.
    fn values(self, stored: &Value) -> Value {
        match self {
            Editable::Location => location_values(stored),
            Editable::Strength => json!({
                "displayName": stored["displayName"],
                "description": stored["description"],
                "allowedCombinations": stored["allowedCombinations"],
            }),
        }
    }

    /// The form as it was sent, to show again beside its errors.
    fn typed(self, form: &FormData, stored: &Value) -> Value {
        match self {
            Editable::Location => typed_location(form, location_kind(stored)),
            Editable::Strength => typed_strength(form),
        }
    }

    /// Saves the form over the stored object; core validates it, and refuses without changing
    /// anything. A location keeps its kind (core refuses a change of type, so the form offers
    /// none).
    async fn save(
        self,
        state: &PortalState,
        grant: &Granted<WriteConditionalAccess>,
        request: &portcullis_core::directory::audit::RequestContext,
        stored: &Value,
        form: &FormData,
    ) -> Result<(), portcullis_core::Error> {
        let id = stored["id"].as_str().unwrap_or_default();
        let ca = &state.conditional_access;
        match self {
            Editable::Location => {
                let body = location_body(form, location_kind(stored)).to_string();
                ca.update_named_location(grant, request, id, body.as_bytes())
                    .await?;
            }
            Editable::Strength => {
                let body = strength_body(form).to_string();
                ca.update_strength(grant, request, id, body.as_bytes())
                    .await?;
            }
        }
        Ok(())
    }
}

/// The form of one stored named location or custom strength: `values` as the form shows them
/// (stored, or as typed when refused) and `errors` beside their fields.
fn edit_page(
    state: &PortalState,
    portal: &Portal,
    status: StatusCode,
    what: Editable,
    stored: &Value,
    values: Value,
    errors: FieldErrors,
) -> PageResult {
    let (kind, list, current, _) = what.names();
    Ok(portal.render(
        status,
        "admin/ca_edit.html",
        "conditional-access",
        json!({
            "kind": kind,
            "list": list,
            "id": stored["id"],
            "name": stored["displayName"],
            "combinations": COMBINATIONS,
            "country_database": country_database(state),
            "values": values,
            "errors": errors,
            "can_write": portal.may::<WriteConditionalAccess>(),
            "subnav": subnav(current),
        }),
    ))
}

/// The form of one editable object (GET) and its save (POST), at the object's address.
fn edit_route(what: Editable) -> MethodRouter<AppState> {
    get(
        move |state: State<Arc<PortalState>>, portal: Portal, id: Path<String>| {
            edit_form_of(what, state, portal, id)
        },
    )
    .post(
        move |state: State<Arc<PortalState>>,
              portal: Portal,
              audit: Audit,
              id: Path<String>,
              form: FormData| { save_edit(what, state, portal, audit, id, form) },
    )
}

async fn edit_form_of(
    what: Editable,
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    let stored = what.stored(&state, &portal, &id).await?;
    let values = what.values(&stored);
    edit_page(
        &state,
        &portal,
        StatusCode::OK,
        what,
        &stored,
        values,
        FieldErrors::new(),
    )
}

async fn save_edit(
    what: Editable,
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let (kind, list, _, area) = what.names();
    let grant = portal.grant::<WriteConditionalAccess>(area)?;
    let stored = what.stored(&state, &portal, &id).await?;
    match what.save(&state, &grant, &request, &stored, &form).await {
        Ok(()) => done(list, &format!("{kind}-saved")),
        Err(e) => {
            let (status, errors) = refusal(e, EDIT_FIELDS)?;
            let values = what.typed(&form, &stored);
            edit_page(&state, &portal, status, what, &stored, values, errors)
        }
    }
}

/// The fields of both edit forms that core's refusals can name.
const EDIT_FIELDS: &[&str] = &[
    "displayName",
    "description",
    "ipRanges",
    "countriesAndRegions",
    "allowedCombinations",
];

/// Whether a stored named location is a countries-and-regions one (the rest are IP ranges).
fn is_country(location: &Value) -> bool {
    location["@odata.type"] == "#microsoft.graph.countryNamedLocation"
}

/// `country` or `ip`: what kind of named location is stored.
fn location_kind(location: &Value) -> &'static str {
    if is_country(location) {
        "country"
    } else {
        "ip"
    }
}

/// A stored named location as its form shows it.
fn location_values(location: &Value) -> Value {
    let lines = |key: &str, inner: Option<&str>| -> String {
        location[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| match inner {
                        Some(field) => v[field].as_str(),
                        None => v.as_str(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    json!({
        "kind": location_kind(location),
        "displayName": location["displayName"],
        "ipRanges": lines("ipRanges", Some("cidrAddress")),
        "countriesAndRegions": lines("countriesAndRegions", None),
        "isTrusted": location["isTrusted"].as_bool().unwrap_or(false),
        "includeUnknownCountriesAndRegions": location["includeUnknownCountriesAndRegions"].as_bool().unwrap_or(false),
    })
}

/// The form as it was sent, to show it again beside its errors.
fn typed_location(form: &FormData, kind: &str) -> Value {
    json!({
        "kind": kind,
        "displayName": form.text("displayName"),
        "ipRanges": form.text("ipRanges"),
        "countriesAndRegions": form.text("countriesAndRegions"),
        "isTrusted": form.checked("isTrusted"),
        "includeUnknownCountriesAndRegions": form.checked("includeUnknownCountriesAndRegions"),
    })
}

/// The Graph body for a named location of `kind` from the form; core validates it.
fn location_body(form: &FormData, kind: &str) -> Value {
    if kind == "country" {
        json!({
            "@odata.type": "#microsoft.graph.countryNamedLocation",
            "displayName": form.text("displayName"),
            "countriesAndRegions": form.lines("countriesAndRegions").iter().map(|c| c.to_uppercase()).collect::<Vec<_>>(),
            "includeUnknownCountriesAndRegions": form.checked("includeUnknownCountriesAndRegions"),
        })
    } else {
        json!({
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "displayName": form.text("displayName"),
            "isTrusted": form.checked("isTrusted"),
            "ipRanges": form.lines("ipRanges").iter().map(|r| json!({
                "@odata.type": if r.contains(':') { "#microsoft.graph.iPv6CidrRange" } else { "#microsoft.graph.iPv4CidrRange" },
                "cidrAddress": r,
            })).collect::<Vec<_>>(),
        })
    }
}

const LOCATION_FIELDS: &[&str] = &["displayName", "ipRanges", "countriesAndRegions"];

async fn create_location(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("named locations")?;
    let kind = if form.text("kind") == "country" {
        "country"
    } else {
        "ip"
    };
    let body = location_body(&form, kind);
    match state
        .conditional_access
        .create_named_location(&grant, &request, body.to_string().as_bytes())
        .await
    {
        Ok(_) => done(
            "/admin/conditional-access/named-locations",
            "location-created",
        ),
        Err(e) => {
            let (status, errors) = refusal(e, LOCATION_FIELDS)?;
            locations_page(&state, &portal, status, typed_location(&form, kind), errors).await
        }
    }
}

async fn confirm_delete_location(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteConditionalAccess>("named locations")?;
    let read = portal.grant::<ReadPolicies>("named locations")?;
    let stored = state.conditional_access.named_location(&read, &id).await?;
    portal.confirm(
        "conditional-access",
        Confirm {
            action: "Delete named location",
            lead: "This deletes the named location".into(),
            name: stored["displayName"].as_str().unwrap_or_default().to_string(),
            tail: String::new(),
            consequences: vec![
                "A location that a policy still names cannot be deleted: take it out of those policies first.".into(),
            ],
            back_to: "/admin/conditional-access/named-locations".into(),
        },
    )
}

async fn delete_location(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("named locations")?;
    match state
        .conditional_access
        .delete_named_location(&grant, &request, &id)
        .await
    {
        Ok(()) => done(
            "/admin/conditional-access/named-locations",
            "location-deleted",
        ),
        Err(e) => {
            let (status, errors) = refusal(e, &[])?;
            locations_page(&state, &portal, status, json!({}), errors).await
        }
    }
}

// --- authentication strengths ------------------------------------------------------------

/// The method combinations a custom strength may allow, in Graph's names, with the portal's
/// words for them.
const COMBINATIONS: &[(&str, &str)] = &[
    ("fido2", "Passkey (FIDO2)"),
    ("windowsHelloForBusiness", "Windows Hello for Business"),
    (
        "x509CertificateMultiFactor",
        "Certificate-based authentication (multifactor)",
    ),
    (
        "temporaryAccessPassOneTime",
        "Temporary Access Pass (one-time use)",
    ),
    (
        "temporaryAccessPassMultiUse",
        "Temporary Access Pass (multi-use)",
    ),
    (
        "password,microsoftAuthenticatorPush",
        "Password + Microsoft Authenticator (push)",
    ),
    ("password,softwareOath", "Password + software OATH token"),
    ("password,hardwareOath", "Password + hardware OATH token"),
    ("password,sms", "Password + SMS"),
    (
        "microsoftAuthenticatorPush,federatedSingleFactor",
        "Federated single-factor + Microsoft Authenticator (push)",
    ),
    ("deviceBasedPush", "Microsoft Authenticator (phone sign-in)"),
];

async fn strengths(State(state): State<Arc<PortalState>>, portal: Portal) -> PageResult {
    strengths_page(
        &state,
        &portal,
        StatusCode::OK,
        json!({}),
        FieldErrors::new(),
    )
    .await
}

async fn strengths_page(
    state: &PortalState,
    portal: &Portal,
    status: StatusCode,
    values: Value,
    errors: FieldErrors,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("authentication strengths")?;
    let strengths: Vec<Value> = state
        .conditional_access
        .strengths(&grant)
        .await?
        .iter()
        .map(|s| {
            json!({
                "id": s["id"],
                "displayName": s["displayName"],
                "description": s["description"],
                "builtIn": s["policyType"] == "builtIn",
                "combinations": s["allowedCombinations"],
            })
        })
        .collect();
    Ok(portal.render(
        status,
        "admin/strengths.html",
        "conditional-access",
        json!({
            "strengths": strengths,
            "combinations": COMBINATIONS,
            "values": values,
            "errors": errors,
            "can_write": portal.may::<WriteConditionalAccess>(),
            "subnav": subnav("strengths"),
        }),
    ))
}

/// The Graph body for a custom strength from the form; core validates it.
fn strength_body(form: &FormData) -> Value {
    let description = form.text("description");
    json!({
        "displayName": form.text("displayName"),
        "description": (!description.is_empty()).then_some(description),
        "allowedCombinations": form.all("allowedCombinations"),
    })
}

/// The form as it was sent, to show it again beside its errors.
fn typed_strength(form: &FormData) -> Value {
    json!({
        "displayName": form.text("displayName"),
        "description": form.text("description"),
        "allowedCombinations": form.all("allowedCombinations"),
    })
}

const STRENGTH_FIELDS: &[&str] = &["displayName", "description", "allowedCombinations"];

async fn create_strength(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    form: FormData,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("authentication strengths")?;
    match state
        .conditional_access
        .create_strength(
            &grant,
            &request,
            strength_body(&form).to_string().as_bytes(),
        )
        .await
    {
        Ok(_) => done(
            "/admin/conditional-access/authentication-strengths",
            "strength-created",
        ),
        Err(e) => {
            let (status, errors) = refusal(e, STRENGTH_FIELDS)?;
            strengths_page(&state, &portal, status, typed_strength(&form), errors).await
        }
    }
}

/// A custom strength stored in the tenant; the built-in ones cannot be changed, and their
/// address answers so.
async fn custom_strength(
    state: &PortalState,
    portal: &Portal,
    id: &str,
) -> Result<Value, PageError> {
    let grant = portal.grant::<ReadPolicies>("authentication strengths")?;
    let stored = state.conditional_access.strength(&grant, id).await?;
    if stored["policyType"] == "builtIn" {
        return Err(portcullis_core::Error::Forbidden(format!(
            "'{}' is a built-in authentication strength: it cannot be changed or deleted. Make a custom one instead.",
            stored["displayName"].as_str().unwrap_or_default()
        ))
        .into());
    }
    Ok(stored)
}

async fn confirm_delete_strength(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    portal.grant::<WriteConditionalAccess>("authentication strengths")?;
    let stored = custom_strength(&state, &portal, &id).await?;
    portal.confirm(
        "conditional-access",
        Confirm {
            action: "Delete authentication strength",
            lead: "This deletes the authentication strength".into(),
            name: stored["displayName"].as_str().unwrap_or_default().to_string(),
            tail: String::new(),
            consequences: vec![
                "A strength that a policy still requires cannot be deleted: change those policies first.".into(),
            ],
            back_to: "/admin/conditional-access/authentication-strengths".into(),
        },
    )
}

async fn delete_strength(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Audit(request): Audit,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<WriteConditionalAccess>("authentication strengths")?;
    match state
        .conditional_access
        .delete_strength(&grant, &request, &id)
        .await
    {
        Ok(()) => done(
            "/admin/conditional-access/authentication-strengths",
            "strength-deleted",
        ),
        Err(e) => {
            let (status, errors) = refusal(e, &[])?;
            strengths_page(&state, &portal, status, json!({}), errors).await
        }
    }
}
