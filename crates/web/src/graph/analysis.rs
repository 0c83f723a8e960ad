//! The analyzer online: `POST identity/conditionalAccess/analyze` analyses the tenant's
//! policies, or a candidate set, against the real directory ([`portcullis_core::guard::analysis`]).
//! This module carries HTTP, and runs the walk where it cannot stall the server.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use portcullis_core::Error;
use portcullis_core::conditional_access::ConditionalAccess;
use portcullis_core::directory::authz::{Granted, ReadPolicies, ReadUserMethods};
use portcullis_core::guard::analysis::{AnalysisReport, PolicyAnalyzer};
use serde_json::Value;
use tokio::sync::Semaphore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{Authorized, OptionalGraphBody};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(analyze))
}

/// One analysis at a time on a node: each keeps a core busy for up to seconds, and sign-ins
/// need the others. A second request waits for the first rather than halving both.
static ANALYSES: Semaphore = Semaphore::const_new(1);

/// Reads what the analysis needs (async), then walks the space on a blocking thread, never on
/// the runtime's. The API and the portal's Analysis page both come through here.
pub(crate) async fn run(
    analyzer: &PolicyAnalyzer,
    grant: &Granted<ReadPolicies>,
    methods: &Granted<ReadUserMethods>,
    conditional_access: &ConditionalAccess,
    body: &[u8],
) -> Result<AnalysisReport, Error> {
    let prepared = analyzer
        .prepare(grant, methods, conditional_access, body)
        .await?;
    // The semaphore is never closed, so a permit always comes. The walk keeps it: a request
    // that goes away does not stop a walk already running, nor let another start beside it.
    let permit = ANALYSES.acquire().await;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        prepared.run()
    })
    .await
    .map_err(|e| Error::Internal(format!("the analysis did not finish: {e}")))
}

/// Analyse Conditional Access against the directory: the tenant's policies (no body, or `{}`),
/// a whole candidate set (`{"policies": [...]}`, Graph policy JSON validated as the policies API
/// validates it) or the tenant's changed (`{"changes": [{"id", "policy"}]}`, `"policy": null`
/// deletes). Nothing is stored. Every finding has a kind, a severity, the policies, a message
/// and a witness sign-in with What-If's decision for it.
#[utoipa::path(post, path = "/identity/conditionalAccess/analyze", tag = "conditionalAccess",
    request_body(content = Option<Object>, description = "policies | changes; the body may be left out"),
    responses((status = 200, description = "policies, findings (kind, severity, message, policies, witness, decision)"),
        (status = 400, description = "A member the request names is invalid, or the directory holds more people than one analysis covers")),
    security(("bearer" = ["Policy.Read.All", "UserAuthenticationMethod.Read.All"])))]
async fn analyze(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
    Authorized(methods): Authorized<ReadUserMethods>,
    OptionalGraphBody(body): OptionalGraphBody,
) -> ApiResult<Json<Value>> {
    let report = run(
        &state.analyzer,
        &grant,
        &methods,
        &state.conditional_access,
        &body,
    )
    .await?;
    Ok(Json(report.to_json()))
}
