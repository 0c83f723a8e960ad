//! `/auditLogs/directoryAudits`: the record of every administrative change, newest first.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use portcullis_core::Error;
use portcullis_core::directory::audit::DirectoryAudit;
use portcullis_core::directory::authz::ReadAuditLogs;
use portcullis_core::kernel::odata::{self, AUDIT_FIELDS};
use portcullis_core::store::{ListQuery, Op, Predicate, Value as QueryValue};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{collection, collection_text, entity};
use crate::error::ApiResult;
use crate::extract::{Authorized, OData};
use crate::{AppState, GraphState};

const AUDIT_PROPERTIES: &[&str] = &[
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "initiatedBy",
    "targetResources",
    "additionalDetails",
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audits))
        .routes(routes!(get_audit))
        .routes(routes!(list_sign_ins))
        .routes(routes!(get_sign_in))
}

/// Directory audit entries, newest first. `$filter` on activityDateTime (ge/le), category, activityDisplayName, result, correlationId, operationType, initiatedBy/user/id, initiatedBy/app/appId, and the entries about one object: `targetResources/any(t: t/id eq '…')`.
#[utoipa::path(get, path = "/auditLogs/directoryAudits", tag = "audit",
    params(("$filter" = Option<String>, Query), ("$top" = Option<u32>, Query), ("$select" = Option<String>, Query), ("$skiptoken" = Option<String>, Query)),
    responses((status = 200, description = "A page of audit entries")), security(("bearer" = ["AuditLog.Read.All"])))]
async fn list_audits(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadAuditLogs>,
    od: OData,
) -> ApiResult<Json<Value>> {
    let list = odata::parse_list(&od.options, AUDIT_FIELDS, AUDIT_PROPERTIES)?;
    let page = state.directory.list_audits(&grant, &list.query).await?;
    Ok(collection(
        &state,
        "auditLogs/directoryAudits",
        page,
        &list,
        &od,
        |v| v,
    ))
}

/// One audit entry.
#[utoipa::path(get, path = "/auditLogs/directoryAudits/{id}", tag = "audit", params(("id" = String, Path)),
    responses((status = 200, body = DirectoryAudit), (status = 404, description = "No such entry")), security(("bearer" = ["AuditLog.Read.All"])))]
async fn get_audit(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadAuditLogs>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| Error::not_found("directoryAudit", &id))?;
    let query = ListQuery {
        filter: vec![Predicate {
            field: "id",
            op: Op::Eq,
            value: QueryValue::Text(uuid.to_string()),
        }],
        top: 1,
        after: None,
        count: false,
    };
    let entry = state
        .directory
        .list_audits(&grant, &query)
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("directoryAudit", &id))?;
    Ok(entity(&state, "auditLogs/directoryAudits/$entity", &entry))
}

const SIGN_IN_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "userPrincipalName",
    "userId",
    "userDisplayName",
    "appDisplayName",
    "appId",
    "ipAddress",
    "clientAppUsed",
    "correlationId",
    "isInteractive",
    "userAgent",
    "deviceDetail",
    "status",
    "conditionalAccessStatus",
    "appliedConditionalAccessPolicies",
    "authenticationDetails",
    "authenticationRequirement",
    "authenticationStrength",
];

/// Sign-in log entries, newest first. `$filter` on createdDateTime (ge/le), userPrincipalName, userId, appId, appDisplayName, ipAddress, status/errorCode, conditionalAccessStatus, correlationId, clientAppUsed.
#[utoipa::path(get, path = "/auditLogs/signIns", tag = "audit",
    params(("$filter" = Option<String>, Query), ("$top" = Option<u32>, Query), ("$select" = Option<String>, Query), ("$skiptoken" = Option<String>, Query)),
    responses((status = 200, description = "A page of sign-ins")), security(("bearer" = ["AuditLog.Read.All"])))]
async fn list_sign_ins(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadAuditLogs>,
    od: OData,
) -> ApiResult<axum::response::Response> {
    let list = odata::parse_list(&od.options, odata::SIGN_IN_FIELDS, SIGN_IN_PROPERTIES)?;
    let page = state.sign_in_logs.list(&grant, &list.query).await?;
    // Each entry's policies are expanded as it is written out, never a page of them at once.
    collection_text(&state, "auditLogs/signIns", page, &list, &od)
}

/// One sign-in log entry.
#[utoipa::path(get, path = "/auditLogs/signIns/{id}", tag = "audit", params(("id" = String, Path)),
    responses((status = 200, description = "Sign-in"), (status = 404, description = "No such entry")), security(("bearer" = ["AuditLog.Read.All"])))]
async fn get_sign_in(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadAuditLogs>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| Error::not_found("signIn", &id))?;
    let query = ListQuery {
        filter: vec![Predicate {
            field: "id",
            op: Op::Eq,
            value: QueryValue::Text(uuid.to_string()),
        }],
        top: 1,
        after: None,
        count: false,
    };
    let entry = state
        .sign_in_logs
        .list(&grant, &query)
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("signIn", &id))?;
    Ok(entity(&state, "auditLogs/signIns/$entity", &entry))
}
