//! Replay and the report-only summary: `POST identity/conditionalAccess/replay` decides the
//! logged sign-ins of a window again under a candidate policy set, and `GET
//! identity/conditionalAccess/reportOnlySummary` counts what each report-only policy would have
//! done. Both read policies and sign-in logs, so both permissions are needed; core does the
//! work ([`portcullis_core::logs::replay`]), this module only carries HTTP.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use portcullis_core::Error;
use portcullis_core::directory::authz::{ReadAuditLogs, ReadPolicies};
use portcullis_core::logs::replay::{ReplayReport, ReportOnlySummary};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{Authorized, GraphBody};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(replay))
        .routes(routes!(report_only_summary))
}

/// Replay the sign-in log against a candidate policy set: `{"policies": [...]}` (a whole set)
/// or `{"changes": [{"id", "policy"}]}` (the tenant's, changed; `"policy": null` deletes), with
/// optional `from` or `days`, `to` (default: the last 7 days) and `top` (changed sign-ins listed, default
/// 1000). Lists the sign-ins whose outcome changes, with counts by user and application.
#[utoipa::path(post, path = "/identity/conditionalAccess/replay", tag = "conditionalAccess",
    request_body(content = Object, description = "policies | changes, from, to, top"),
    responses((status = 200, description = "evaluated, changed, skipped, signIns, byUser, byApplication"),
        (status = 400, description = "A member the request names is invalid")),
    security(("bearer" = ["Policy.Read.All", "AuditLog.Read.All"])))]
async fn replay(
    State(state): State<Arc<GraphState>>,
    Authorized(policies): Authorized<ReadPolicies>,
    Authorized(logs): Authorized<ReadAuditLogs>,
    GraphBody(body): GraphBody,
) -> ApiResult<Json<ReplayReport>> {
    let report = state
        .sign_in_logs
        .replay(&policies, &logs, &state.conditional_access, &body)
        .await?;
    Ok(Json(report))
}

/// What each report-only policy would have done in the window (`from` or `days`, `to`; default
/// the last 7 days), from the results the sign-in log recorded: Entra's report-only workbook.
#[utoipa::path(get, path = "/identity/conditionalAccess/reportOnlySummary", tag = "conditionalAccess",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("days" = Option<u32>, Query)),
    responses((status = 200, description = "evaluated, policies with wouldBlock, wouldChallenge, satisfied, notApplied")),
    security(("bearer" = ["Policy.Read.All", "AuditLog.Read.All"])))]
async fn report_only_summary(
    State(state): State<Arc<GraphState>>,
    Authorized(policies): Authorized<ReadPolicies>,
    Authorized(logs): Authorized<ReadAuditLogs>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ReportOnlySummary>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| {
        Error::bad_query("query", format!("The query string cannot be read: {e}"))
    })?;
    let (mut from, mut to, mut days) = (None, None, None);
    for (key, value) in &pairs {
        match key.as_str() {
            "from" if from.is_none() => from = Some(value.as_str()),
            "to" if to.is_none() => to = Some(value.as_str()),
            "days" if days.is_none() => days = Some(value.as_str()),
            "from" | "to" | "days" => {
                return Err(Error::bad_query(key.clone(), format!("{key}: given twice")).into());
            }
            other => {
                return Err(Error::bad_query(
                    other.to_owned(),
                    format!("{other}: not a parameter of the report-only summary (from, to, days)"),
                )
                .into());
            }
        }
    }
    let summary = state
        .sign_in_logs
        .report_only_summary(&policies, &logs, &state.conditional_access, from, to, days)
        .await?;
    Ok(Json(summary))
}
