//! Sign-in logs and audit logs: filterable, paged tables (the filters live in the URL), and a
//! sign-in's details in three tabs — basic info, authentication details, Conditional Access.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use portcullis_core::Error;
use portcullis_core::directory::authz::ReadAuditLogs;
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
    });
    if !errors.is_empty() {
        return Ok(portal.render(
            StatusCode::BAD_REQUEST,
            "admin/sign_ins.html",
            "sign-ins",
            json!({ "entries": [], "filters": filters, "errors": errors }),
        ));
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
                "created": when(e.created_date_time),
                "user": e.user_display_name.clone().unwrap_or_else(|| e.user_principal_name.clone()),
                "upn": e.user_principal_name,
                "app": e.app_display_name,
                "ip": e.ip_address,
                "status": status,
                "statusClass": class,
                "errorCode": e.status.error_code,
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
        }),
    )
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
        .list(
            &grant,
            &ListQuery {
                filter: vec![Predicate {
                    field: "id",
                    op: Op::Eq,
                    value: QueryValue::Text(uuid.to_string()),
                }],
                top: 1,
                after: None,
                count: false,
            },
        )
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
    text_filter(&mut filter, "result", Op::Eq, query.get("result"));
    date_range(&query, "activity_date_time", &mut filter, &mut errors);
    let filters = json!({
        "category": query.get("category"), "activity": query.get("activity"),
        "result": query.get("result"), "from": query.get("from"), "to": query.get("to"),
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
    let entries: Vec<Value> = page
        .items
        .iter()
        .map(|a| {
            let initiator = a
                .initiated_by
                .user
                .as_ref()
                .and_then(|u| u.user_principal_name.clone())
                .or_else(|| a.initiated_by.app.as_ref().and_then(|app| app.display_name.clone()))
                .unwrap_or_else(|| "System".into());
            json!({
                "at": when(a.activity_date_time),
                "category": a.category,
                "activity": a.activity_display_name,
                "result": a.result,
                "initiatedBy": initiator,
                "targets": a.target_resources.iter().map(|t| t.display_name.clone().unwrap_or_default()).collect::<Vec<_>>(),
                "correlationId": a.correlation_id,
                "service": a.logged_by_service,
            })
        })
        .collect();
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
