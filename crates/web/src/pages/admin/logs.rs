//! Sign-in logs and audit logs: filterable, paged tables (the filters live in the URL), and a
//! sign-in's details in three tabs — basic info, authentication details, Conditional Access.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use portcullis_core::Error;
use portcullis_core::directory::audit::{self, DirectoryAudit};
use portcullis_core::directory::authz::{
    Granted, ReadApplications, ReadAuditLogs, ReadGroups, ReadUsers,
};
use portcullis_core::logs::sign_in::SignInLogEntry;
use serde_json::{Value, json};
use time::{Date, Duration};

use super::{FieldErrors, PageResult, Portal, Query, when};
use crate::{AppState, PortalState};
use portcullis_core::store::{ListQuery, Op, Predicate, Value as QueryValue};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sign-ins", get(sign_ins))
        .route("/admin/sign-ins/{id}", get(sign_in))
        .route("/admin/audit-logs", get(audits))
        .route("/admin/audit-logs/{id}", get(audit))
}

/// Error codes that interrupt a sign-in to ask for more (Entra logs them as "Interrupted").
const INTERRUPTS: &[u32] = &[50055, 50072, 50074, 50076, 50079, 50125, 50140];

fn status_label(code: u32) -> (&'static str, &'static str) {
    match code {
        0 => ("Success", "state-on"),
        c if INTERRUPTS.contains(&c) => ("Interrupted", "state-report"),
        _ => ("Failure", "state-bad"),
    }
}

fn ca_label(status: &str) -> &'static str {
    match status {
        "success" => "Success",
        "failure" => "Failure",
        "notApplied" => "Not applied",
        _ => "Unknown",
    }
}

fn result_label(result: &str) -> (&'static str, &'static str) {
    match result {
        "success" => ("Success", "state-on"),
        "failure" => ("Failure", "state-bad"),
        "notApplied" => ("Not applied", "state-off"),
        "notEnabled" => ("Not enabled", "state-off"),
        "reportOnlySuccess" => ("Report-only: success", "state-report"),
        "reportOnlyFailure" => ("Report-only: failure", "state-report"),
        "reportOnlyNotApplied" => ("Report-only: not applied", "state-off"),
        "reportOnlyInterrupted" => ("Report-only: interrupted", "state-report"),
        _ => ("Unknown", "state-off"),
    }
}

/// A day typed into a date filter (`YYYY-MM-DD`, as a date input sends it).
fn day(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// The from/to filters as predicates on `column`: from the start of `from` to the end of `to`
/// (UTC), so a one-day range holds that whole day.
fn date_range(
    query: &Query,
    column: &'static str,
    filter: &mut Vec<Predicate>,
    errors: &mut FieldErrors,
) {
    for (name, op, shift) in [("from", Op::Ge, 0), ("to", Op::Lt, 1)] {
        let text = query.get(name);
        if text.is_empty() {
            continue;
        }
        match day(text) {
            Some(d) => filter.push(Predicate {
                field: column,
                op,
                value: QueryValue::Instant(d.midnight().assume_utc() + Duration::days(shift)),
            }),
            None => {
                errors.insert(
                    name.into(),
                    format!("'{text}' is not a date such as 2025-03-01."),
                );
            }
        }
    }
}

fn text_filter(filter: &mut Vec<Predicate>, column: &'static str, op: Op, value: &str) {
    if !value.is_empty() {
        filter.push(Predicate {
            field: column,
            op,
            value: QueryValue::Text(value.to_string()),
        });
    }
}

async fn sign_ins(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    query: Query,
) -> PageResult {
    let grant = portal.grant::<ReadAuditLogs>("sign-in logs")?;
    let mut filter = Vec::new();
    let mut errors = FieldErrors::new();
    text_filter(
        &mut filter,
        "user_principal_name",
        Op::StartsWith,
        query.get("user"),
    );
    text_filter(
        &mut filter,
        "app_display_name",
        Op::StartsWith,
        query.get("app"),
    );
    // A person's page links here for their own sign-ins, by id (a name may be reused).
    let user_id = query.get("userId");
    if !user_id.is_empty() {
        match uuid::Uuid::parse_str(user_id) {
            Ok(id) => text_filter(&mut filter, "user_id", Op::Eq, &id.to_string()),
            Err(_) => {
                errors.insert(
                    "form".into(),
                    "The link names no person. Open the sign-ins from the person's page again."
                        .into(),
                );
            }
        }
    }
    match query.get("status") {
        "" => {}
        "success" => filter.push(Predicate {
            field: "error_code",
            op: Op::Eq,
            value: QueryValue::Int(0),
        }),
        "failure" => filter.push(Predicate {
            field: "error_code",
            op: Op::Ne,
            value: QueryValue::Int(0),
        }),
        code => match code.parse::<i64>() {
            Ok(n) if n >= 0 => filter.push(Predicate {
                field: "error_code",
                op: Op::Eq,
                value: QueryValue::Int(n),
            }),
            _ => {
                errors.insert(
                    "status".into(),
                    "Choose success, failure, or type an error code such as 53003.".into(),
                );
            }
        },
    }
    match query.get("caStatus") {
        "" => {}
        s @ ("success" | "failure" | "notApplied") => {
            text_filter(&mut filter, "conditional_access_status", Op::Eq, s)
        }
        _ => {
            errors.insert(
                "caStatus".into(),
                "Choose a Conditional Access status.".into(),
            );
        }
    }
    date_range(&query, "created", &mut filter, &mut errors);
    let filters = json!({
        "user": query.get("user"), "app": query.get("app"), "status": query.get("status"),
        "caStatus": query.get("caStatus"), "from": query.get("from"), "to": query.get("to"),
        "userId": user_id,
    });
    if !errors.is_empty() {
        return Ok(portal.render(
            StatusCode::BAD_REQUEST,
            "admin/sign_ins.html",
            "sign-ins",
            json!({ "entries": [], "filters": filters, "errors": errors }),
        ));
    }
    if query.get("format") == "csv" {
        return export_csv(&state, &grant, filter).await;
    }
    let page = state
        .sign_in_logs
        .list(&grant, &query.list(filter)?)
        .await?;
    let entries: Vec<Value> = page
        .items
        .iter()
        .map(|e| {
            let (status, class) = status_label(e.status.error_code);
            json!({
                "id": e.id,
                "created": when_to_the_second(e.created_date_time),
                "user": e.user_display_name.clone().unwrap_or_else(|| e.user_principal_name.clone()),
                "upn": e.user_principal_name,
                "app": e.app_display_name,
                "ip": e.ip_address,
                "location": e.location.country_or_region,
                "device": device(e),
                "status": status,
                "statusClass": class,
                "errorCode": e.status.error_code,
                "failureReason": (e.status.error_code != 0).then_some(e.status.failure_reason.as_deref()).flatten(),
                "caStatus": ca_label(&e.conditional_access_status),
            })
        })
        .collect();
    portal.page(
        "admin/sign_ins.html",
        "sign-ins",
        json!({
            "entries": entries,
            "filters": filters,
            "errors": {},
            "pager": query.pager("/admin/sign-ins", page.next.as_ref()),
            "csv": query.link_with("/admin/sign-ins", &[("format", "csv")]),
        }),
    )
}

/// The device a sign-in came from, as the log's table shows it: "Windows 10 · Edge 131".
fn device(e: &SignInLogEntry) -> String {
    let parts: Vec<&str> = [
        e.device_detail.operating_system.as_str(),
        e.device_detail.browser.as_str(),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect();
    parts.join(" · ")
}

/// A sign-in's moment to the second (the log lists sign-ins that are seconds apart).
fn when_to_the_second(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How many sign-ins one export holds at most; a narrower filter gets the rest.
const CSV_MAX_ROWS: usize = 10_000;

/// The sign-ins the filters match, newest first, as a CSV file to download (at most
/// [`CSV_MAX_ROWS`]).
async fn export_csv(
    state: &PortalState,
    grant: &portcullis_core::directory::authz::Granted<ReadAuditLogs>,
    filter: Vec<Predicate>,
) -> PageResult {
    let mut out = String::new();
    csv::row(
        &mut out,
        &[
            "Date (UTC)",
            "Request ID",
            "Correlation ID",
            "User",
            "Username",
            "Application",
            "Application ID",
            "Status",
            "Sign-in error code",
            "Failure reason",
            "IP address",
            "Location",
            "Operating system",
            "Browser",
            "Client app",
            "Conditional Access",
        ],
    );
    let mut after = None;
    let mut written = 0;
    loop {
        let page = state
            .sign_in_logs
            .list(
                grant,
                &ListQuery {
                    filter: filter.clone(),
                    top: 500,
                    after,
                    count: false,
                },
            )
            .await?;
        for e in &page.items {
            if written == CSV_MAX_ROWS {
                break;
            }
            let (status, _) = status_label(e.status.error_code);
            csv::row(
                &mut out,
                &[
                    &format_rfc3339(e.created_date_time),
                    &e.id.to_string(),
                    &e.correlation_id.to_string(),
                    e.user_display_name.as_deref().unwrap_or(""),
                    &e.user_principal_name,
                    &e.app_display_name,
                    &e.app_id,
                    status,
                    &e.status.error_code.to_string(),
                    e.status.failure_reason.as_deref().unwrap_or(""),
                    e.ip_address.as_deref().unwrap_or(""),
                    e.location.country_or_region.as_deref().unwrap_or(""),
                    &e.device_detail.operating_system,
                    &e.device_detail.browser,
                    &e.client_app_used,
                    ca_label(&e.conditional_access_status),
                ],
            );
            written += 1;
        }
        match page.next {
            Some(next) if written < CSV_MAX_ROWS => after = Some(next),
            _ => break,
        }
    }
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"sign-ins.csv\"",
            ),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response())
}

/// `2026-03-01T09:30:12Z`: seconds, no fraction.
fn format_rfc3339(t: time::OffsetDateTime) -> String {
    when_to_the_second(t)
        .trim_end_matches(" UTC")
        .replacen(' ', "T", 1)
        + "Z"
}

/// CSV as spreadsheets read it (RFC 4180), safe to open: every field quoted, quotes doubled,
/// and a field a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return) kept as text with a leading apostrophe.
pub(crate) mod csv {
    pub fn field(value: &str) -> String {
        let starts_a_formula = value
            .chars()
            .next()
            .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
        let text = if starts_a_formula {
            format!("'{value}")
        } else {
            value.to_string()
        };
        format!("\"{}\"", text.replace('"', "\"\""))
    }

    /// Appends one line (CRLF-terminated, as RFC 4180 has it).
    pub fn row(out: &mut String, fields: &[&str]) {
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn fields_are_quoted_and_formulas_stay_text() {
            assert_eq!(field("Joni Sherman"), "\"Joni Sherman\"");
            assert_eq!(field("Doe, \"Jo\""), "\"Doe, \"\"Jo\"\"\"");
            assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
            assert_eq!(
                field("=HYPERLINK(\"http://evil\")"),
                "\"'=HYPERLINK(\"\"http://evil\"\")\""
            );
            for risky in ["+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
                assert!(field(risky).starts_with("\"'"), "{risky:?}");
            }
            assert_eq!(field(""), "\"\"");
            let mut out = String::new();
            row(&mut out, &["a", "b"]);
            assert_eq!(out, "\"a\",\"b\"\r\n");
        }
    }
}

async fn sign_in(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
    query: Query,
) -> PageResult {
    let grant = portal.grant::<ReadAuditLogs>("sign-in logs")?;
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| Error::not_found("signIn", &id))?;
    let entry = state
        .sign_in_logs
        .list(&grant, &the_entry(uuid))
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("signIn", &id))?;
    let tab = match query.get("tab") {
        "authentication" => "authentication",
        "conditional-access" => "conditional-access",
        _ => "basic",
    };
    portal.page(
        "admin/sign_in.html",
        "sign-ins",
        json!({ "tab": tab, "entry": entry_view(&entry) }),
    )
}

fn entry_view(e: &SignInLogEntry) -> Value {
    let (status, class) = status_label(e.status.error_code);
    let policies: Vec<Value> = e
        .applied_conditional_access_policies
        .iter()
        // An entry whose results do not read back shows none rather than failing the page.
        .filter_map(Result::ok)
        .map(|p| {
            let (result, result_class) = result_label(&p.result);
            json!({
                "id": p.id,
                "displayName": p.display_name,
                "result": result,
                "resultClass": result_class,
                "grantControls": p.enforced_grant_controls,
                "reason": p.result_reason,
                "notSatisfied": p.conditions_not_satisfied,
            })
        })
        .collect();
    json!({
        "id": e.id,
        "created": when(e.created_date_time),
        "correlationId": e.correlation_id,
        "user": e.user_display_name,
        "upn": e.user_principal_name,
        "userId": e.user_id,
        "app": e.app_display_name,
        "appId": e.app_id,
        "ip": e.ip_address,
        "country": e.location.country_or_region,
        "clientApp": e.client_app_used,
        "userAgent": e.user_agent,
        "os": e.device_detail.operating_system,
        "browser": e.device_detail.browser,
        "status": status,
        "statusClass": class,
        "errorCode": e.status.error_code,
        "failureReason": e.status.failure_reason,
        "additionalDetails": e.status.additional_details,
        "caStatus": ca_label(&e.conditional_access_status),
        "requirement": if e.authentication_requirement == "multiFactorAuthentication" { "Multifactor authentication" } else { "Single-factor authentication" },
        "strength": e.authentication_strength,
        "steps": e.authentication_details.iter().map(|d| json!({
            "method": d.authentication_method,
            "succeeded": d.succeeded,
            "detail": d.authentication_step_result_detail,
            "requirement": d.authentication_step_requirement,
            "at": when(d.authentication_step_date_time),
        })).collect::<Vec<_>>(),
        "policies": policies,
    })
}

async fn audits(State(state): State<Arc<PortalState>>, portal: Portal, query: Query) -> PageResult {
    let grant = portal.grant::<ReadAuditLogs>("audit logs")?;
    let mut filter = Vec::new();
    let mut errors = FieldErrors::new();
    text_filter(&mut filter, "category", Op::Eq, query.get("category"));
    text_filter(
        &mut filter,
        "activity_display_name",
        Op::StartsWith,
        query.get("activity"),
    );
    match query.get("result") {
        "" => {}
        r @ (audit::SUCCESS | audit::FAILURE) => text_filter(&mut filter, "result", Op::Eq, r),
        _ => {
            errors.insert("result".into(), "Choose success or failure.".into());
        }
    }
    // A person's, group's or application's page links here for the entries about it.
    let target = query.get("target").trim();
    let mut target_name = None;
    if !target.is_empty() {
        if target.chars().count() > 256 {
            errors.insert(
                "form".into(),
                "The link names no object. Open the audit log from its page again.".into(),
            );
        } else {
            text_filter(&mut filter, "target_id", Op::Eq, target);
            target_name = Some(object_name(&state, &portal, target).await);
        }
    }
    // A person's page links here for the changes they made.
    let initiated_by = query.get("initiatedBy");
    if !initiated_by.is_empty() {
        match uuid::Uuid::parse_str(initiated_by) {
            Ok(id) => text_filter(&mut filter, "initiated_by_id", Op::Eq, &id.to_string()),
            Err(_) => {
                errors.insert(
                    "form".into(),
                    "The link names no person. Open the audit log from the person's page again."
                        .into(),
                );
            }
        }
    }
    date_range(&query, "activity_date_time", &mut filter, &mut errors);
    let filters = json!({
        "category": query.get("category"), "activity": query.get("activity"),
        "result": query.get("result"), "from": query.get("from"), "to": query.get("to"),
        "initiatedBy": initiated_by, "target": target, "targetName": target_name,
    });
    if !errors.is_empty() {
        return Ok(portal.render(
            StatusCode::BAD_REQUEST,
            "admin/audits.html",
            "audit",
            json!({ "entries": [], "filters": filters, "errors": errors }),
        ));
    }
    let page = state
        .directory
        .list_audits(&grant, &query.list(filter)?)
        .await?;
    let entries: Vec<Value> = page.items.iter().map(audit_row).collect();
    portal.page(
        "admin/audits.html",
        "audit",
        json!({
            "entries": entries,
            "filters": filters,
            "errors": {},
            "pager": query.pager("/admin/audit-logs", page.next.as_ref()),
        }),
    )
}

/// One row of an audit table (the audit log, and the entries about an object on its page).
pub(super) fn audit_row(a: &DirectoryAudit) -> Value {
    let initiator = a
        .initiated_by
        .user
        .as_ref()
        .and_then(|u| u.user_principal_name.clone())
        .or_else(|| {
            a.initiated_by
                .app
                .as_ref()
                .and_then(|app| app.display_name.clone())
        })
        .unwrap_or_else(|| "System".into());
    let (result, result_class) = result_label(&a.result);
    json!({
        "id": a.id,
        "at": when(a.activity_date_time),
        "category": a.category,
        "activity": a.activity_display_name,
        "result": result,
        "resultClass": result_class,
        "failed": a.is_failure(),
        "resultReason": a.result_reason,
        "initiatedBy": initiator,
        "targets": a.target_resources.iter().map(|t| t.display_name.clone().unwrap_or_default()).collect::<Vec<_>>(),
        "correlationId": a.correlation_id,
        "service": a.logged_by_service,
    })
}

/// The newest `top` entries whose `field` is `id` (both logs list newest first).
fn latest_where(field: &'static str, id: uuid::Uuid, top: usize) -> ListQuery {
    ListQuery {
        filter: vec![Predicate {
            field,
            op: Op::Eq,
            value: QueryValue::Text(id.to_string()),
        }],
        top,
        after: None,
        count: false,
    }
}

/// The latest entries about the object `id` (their targets), newest first, for its page.
pub(super) async fn audits_about(
    state: &PortalState,
    grant: &Granted<ReadAuditLogs>,
    id: uuid::Uuid,
    top: usize,
) -> Result<Vec<Value>, Error> {
    let query = latest_where("target_id", id, top);
    let page = state.directory.list_audits(grant, &query).await?;
    Ok(page.items.iter().map(audit_row).collect())
}

/// The latest sign-ins of the person `id`, newest first, for their page.
pub(super) async fn sign_ins_of(
    state: &PortalState,
    grant: &Granted<ReadAuditLogs>,
    id: uuid::Uuid,
    top: usize,
) -> Result<Vec<Value>, Error> {
    let query = latest_where("user_id", id, top);
    let page = state.sign_in_logs.list(grant, &query).await?;
    Ok(page
        .items
        .iter()
        .map(|e| {
            let (status, class) = status_label(e.status.error_code);
            json!({
                "id": e.id,
                "created": when_to_the_second(e.created_date_time),
                "app": e.app_display_name,
                "ip": e.ip_address,
                "status": status,
                "statusClass": class,
                "failureReason": (e.status.error_code != 0).then_some(e.status.failure_reason.as_deref()).flatten(),
            })
        })
        .collect())
}

/// What the audit log's target filter shows for `id`: the person's, group's or application's
/// name where this administrator may read it, otherwise the id as given.
async fn object_name(state: &PortalState, portal: &Portal, id: &str) -> String {
    if uuid::Uuid::parse_str(id).is_ok() {
        if let Some(grant) = portal.maybe::<ReadUsers>()
            && let Ok(user) = state.directory.user(&grant, id).await
        {
            return format!("{} ({})", user.display_name, user.user_principal_name);
        }
        if let Some(grant) = portal.maybe::<ReadGroups>()
            && let Ok(group) = state.directory.group(&grant, id).await
        {
            return format!("the group {}", group.display_name);
        }
        if let Some(grant) = portal.maybe::<ReadApplications>()
            && let Ok(app) = state.directory.application(&grant, id).await
        {
            return format!("the application {}", app.display_name);
        }
    }
    id.to_string()
}

/// One audit entry opened: who did what to which objects, and each property's old and new
/// value as the entry recorded them.
async fn audit(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    Path(id): Path<String>,
) -> PageResult {
    let grant = portal.grant::<ReadAuditLogs>("audit logs")?;
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| Error::not_found("directoryAudit", &id))?;
    let entry = state
        .directory
        .list_audits(&grant, &the_entry(uuid))
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("directoryAudit", &id))?;
    let initiator = entry.initiated_by.user.as_ref().map_or_else(
        || {
            entry
                .initiated_by
                .app
                .as_ref()
                .and_then(|a| a.display_name.clone())
                .unwrap_or_else(|| "System".into())
        },
        |u| {
            u.user_principal_name
                .clone()
                .or_else(|| u.display_name.clone())
                .unwrap_or_else(|| u.id.clone())
        },
    );
    portal.page(
        "admin/audit.html",
        "audit",
        json!({
            "entry": {
                "id": entry.id,
                "at": when_to_the_second(entry.activity_date_time),
                "activity": entry.activity_display_name,
                "category": entry.category,
                "service": entry.logged_by_service,
                "operationType": entry.operation_type,
                "result": result_label(&entry.result).0,
                "resultClass": result_label(&entry.result).1,
                "failed": entry.is_failure(),
                "resultReason": entry.result_reason,
                "correlationId": entry.correlation_id,
                "initiatedBy": initiator,
                "ipAddress": entry.initiated_by.user.as_ref().and_then(|u| u.ip_address.clone()),
                "targets": entry.target_resources.iter().map(|t| json!({
                    "displayName": t.display_name.clone().or_else(|| t.user_principal_name.clone()).unwrap_or_else(|| t.id.clone()),
                    "type": t.resource_type,
                    "id": t.id,
                    "modified": t.modified_properties.iter().map(|p| json!({
                        "name": p.display_name,
                        "old": p.old_value,
                        "new": p.new_value,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "details": entry.additional_details.iter().map(|d| json!({"key": d.key, "value": d.value})).collect::<Vec<_>>(),
            },
        }),
    )
}

/// The list query that finds one log entry by its id (the sign-in and audit detail pages).
fn the_entry(id: uuid::Uuid) -> ListQuery {
    ListQuery {
        filter: vec![Predicate {
            field: "id",
            op: Op::Eq,
            value: QueryValue::Text(id.to_string()),
        }],
        top: 1,
        after: None,
        count: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_entra_shows_them() {
        assert_eq!(status_label(0).0, "Success");
        assert_eq!(status_label(50079).0, "Interrupted");
        assert_eq!(status_label(53003).0, "Failure");
        assert_eq!(day("2025-03-01").map(|d| d.day()), Some(1));
        assert_eq!(day("03/01/2025"), None);
    }
}
