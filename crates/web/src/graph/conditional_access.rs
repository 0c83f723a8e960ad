//! Conditional Access: `identity/conditionalAccess/policies`, `…/namedLocations`,
//! `…/evaluate` (What-If) and `policies/authenticationStrengthPolicies`. Bodies are taken as
//! bytes so that a policy exported from Entra (UTF-16 with a byte-order mark, `@odata`
//! annotations, fields this engine does not implement) is accepted as it is.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use portcullis_core::directory::authz::{ReadPolicies, ReadUsers, WriteConditionalAccess};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{context, plain_collection};
use crate::error::ApiResult;
use crate::extract::WholeList;
use crate::extract::{Authorized, GraphBody, Meta};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(list_locations, create_location))
        .routes(routes!(get_location, update_location, delete_location))
        .routes(routes!(list_strengths, create_strength))
        .routes(routes!(get_strength, update_strength, delete_strength))
        .routes(routes!(evaluate))
}

fn with_context(state: &GraphState, what: &str, mut body: Value) -> Json<Value> {
    if let Value::Object(map) = &mut body {
        map.insert("@odata.context".into(), Value::String(context(state, what)));
    }
    Json(body)
}

/// Conditional Access policies.
#[utoipa::path(get, path = "/identity/conditionalAccess/policies", tag = "conditionalAccess",
    responses((status = 200, description = "Policies")), security(("bearer" = ["Policy.Read.All"])))]
async fn list_policies(
    State(state): State<Arc<GraphState>>,
    _whole: WholeList,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let value = state.conditional_access.policies(&grant).await?;
    Ok(plain_collection(
        &state,
        "identity/conditionalAccess/policies",
        value,
    ))
}

/// Create a policy (Graph JSON; UTF-16 with BOM accepted). The users, groups, roles and
/// applications it names must exist, unless `portcullisImport=true` is in the query: then an
/// Entra export is taken as it is, and ids that do not resolve are kept and listed in
/// `portcullisUnresolvedReferences` (an enabled policy may not keep an unresolved exclusion).
#[utoipa::path(post, path = "/identity/conditionalAccess/policies", tag = "conditionalAccess", request_body(content = Object, description = "conditionalAccessPolicy"),
    params(("portcullisImport" = Option<bool>, Query, description = "Keep references that do not resolve (an imported export)")),
    responses((status = 201, description = "Created"), (status = 400, description = "Invalid field, unknown strength, location, user, group, role or application, mfa with a strength")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn create_policy(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    RawQuery(query): RawQuery,
    GraphBody(body): GraphBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let import = pairs
        .iter()
        .any(|(k, v)| k == "portcullisImport" && v.eq_ignore_ascii_case("true"));
    let created = if import {
        state
            .conditional_access
            .import_policy(&grant, &meta, &body)
            .await?
    } else {
        state
            .conditional_access
            .create_policy(&grant, &meta, &body)
            .await?
    };
    Ok((
        StatusCode::CREATED,
        with_context(
            &state,
            "identity/conditionalAccess/policies/$entity",
            created,
        ),
    ))
}

/// One policy.
#[utoipa::path(get, path = "/identity/conditionalAccess/policies/{id}", tag = "conditionalAccess", params(("id" = String, Path)),
    responses((status = 200, description = "Policy"), (status = 404, description = "No such policy")), security(("bearer" = ["Policy.Read.All"])))]
async fn get_policy(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let body = state.conditional_access.policy(&grant, &id).await?;
    Ok(with_context(
        &state,
        "identity/conditionalAccess/policies/$entity",
        body,
    ))
}

/// Update a policy (members given replace, objects merge).
#[utoipa::path(patch, path = "/identity/conditionalAccess/policies/{id}", tag = "conditionalAccess", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 204, description = "Updated"), (status = 400, description = "Invalid field"), (status = 404, description = "No such policy")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn update_policy(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphBody(body): GraphBody,
) -> ApiResult<StatusCode> {
    state
        .conditional_access
        .update_policy(&grant, &meta, &id, &body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a policy.
#[utoipa::path(delete, path = "/identity/conditionalAccess/policies/{id}", tag = "conditionalAccess", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such policy")), security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn delete_policy(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .conditional_access
        .delete_policy(&grant, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Named locations (IP ranges and countries).
#[utoipa::path(get, path = "/identity/conditionalAccess/namedLocations", tag = "conditionalAccess",
    responses((status = 200, description = "Named locations")), security(("bearer" = ["Policy.Read.All"])))]
async fn list_locations(
    State(state): State<Arc<GraphState>>,
    _whole: WholeList,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let value = state.conditional_access.named_locations(&grant).await?;
    Ok(plain_collection(
        &state,
        "identity/conditionalAccess/namedLocations",
        value,
    ))
}

/// Create an ipNamedLocation or countryNamedLocation.
#[utoipa::path(post, path = "/identity/conditionalAccess/namedLocations", tag = "conditionalAccess", request_body(content = Object),
    responses((status = 201, description = "Created"), (status = 400, description = "Invalid range, mask /8 or wider, too many")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn create_location(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    GraphBody(body): GraphBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = state
        .conditional_access
        .create_named_location(&grant, &meta, &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        with_context(
            &state,
            "identity/conditionalAccess/namedLocations/$entity",
            created,
        ),
    ))
}

/// One named location.
#[utoipa::path(get, path = "/identity/conditionalAccess/namedLocations/{id}", tag = "conditionalAccess", params(("id" = String, Path)),
    responses((status = 200, description = "Named location"), (status = 404, description = "No such location")), security(("bearer" = ["Policy.Read.All"])))]
async fn get_location(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let body = state.conditional_access.named_location(&grant, &id).await?;
    Ok(with_context(
        &state,
        "identity/conditionalAccess/namedLocations/$entity",
        body,
    ))
}

/// Update a named location.
#[utoipa::path(patch, path = "/identity/conditionalAccess/namedLocations/{id}", tag = "conditionalAccess", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 204, description = "Updated"), (status = 400, description = "Invalid field"), (status = 404, description = "No such location"), (status = 409, description = "The lockout guard: a policy naming the location would lock administrators out (policyWouldLockOut; acknowledgeLockout=true to proceed)")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn update_location(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphBody(body): GraphBody,
) -> ApiResult<StatusCode> {
    state
        .conditional_access
        .update_named_location(&grant, &meta, &id, &body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a named location no policy uses.
#[utoipa::path(delete, path = "/identity/conditionalAccess/namedLocations/{id}", tag = "conditionalAccess", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such location"), (status = 409, description = "A policy uses it")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn delete_location(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .conditional_access
        .delete_named_location(&grant, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Authentication strengths: the three built-ins and the tenant's custom ones.
#[utoipa::path(get, path = "/policies/authenticationStrengthPolicies", tag = "conditionalAccess",
    responses((status = 200, description = "Authentication strengths")), security(("bearer" = ["Policy.Read.All"])))]
async fn list_strengths(
    State(state): State<Arc<GraphState>>,
    _whole: WholeList,
    Authorized(grant): Authorized<ReadPolicies>,
) -> ApiResult<Json<Value>> {
    let value = state.conditional_access.strengths(&grant).await?;
    Ok(plain_collection(
        &state,
        "policies/authenticationStrengthPolicies",
        value,
    ))
}

/// Create a custom authentication strength.
#[utoipa::path(post, path = "/policies/authenticationStrengthPolicies", tag = "conditionalAccess", request_body(content = Object),
    responses((status = 201, description = "Created"), (status = 400, description = "Invalid field")), security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn create_strength(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    GraphBody(body): GraphBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = state
        .conditional_access
        .create_strength(&grant, &meta, &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        with_context(
            &state,
            "policies/authenticationStrengthPolicies/$entity",
            created,
        ),
    ))
}

/// One authentication strength.
#[utoipa::path(get, path = "/policies/authenticationStrengthPolicies/{id}", tag = "conditionalAccess", params(("id" = String, Path)),
    responses((status = 200, description = "Strength"), (status = 404, description = "No such strength")), security(("bearer" = ["Policy.Read.All"])))]
async fn get_strength(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let body = state.conditional_access.strength(&grant, &id).await?;
    Ok(with_context(
        &state,
        "policies/authenticationStrengthPolicies/$entity",
        body,
    ))
}

/// Update a custom strength (built-ins are read-only).
#[utoipa::path(patch, path = "/policies/authenticationStrengthPolicies/{id}", tag = "conditionalAccess", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 204, description = "Updated"), (status = 403, description = "Built-in"), (status = 404, description = "No such strength"), (status = 409, description = "The lockout guard: a policy requiring the strength would lock administrators out (policyWouldLockOut; acknowledgeLockout=true to proceed)")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn update_strength(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    GraphBody(body): GraphBody,
) -> ApiResult<StatusCode> {
    state
        .conditional_access
        .update_strength(&grant, &meta, &id, &body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a custom strength no policy requires.
#[utoipa::path(delete, path = "/policies/authenticationStrengthPolicies/{id}", tag = "conditionalAccess", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Built-in"), (status = 409, description = "A policy requires it")),
    security(("bearer" = ["Policy.ReadWrite.ConditionalAccess"])))]
async fn delete_strength(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<WriteConditionalAccess>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .conditional_access
        .delete_strength(&grant, &meta, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What If: evaluate the tenant's policies for a described sign-in (Graph's evaluate API).
#[utoipa::path(post, path = "/identity/conditionalAccess/evaluate", tag = "conditionalAccess", request_body(content = Object, description = "signInIdentity, signInContext, signInConditions, appliedPoliciesOnly"),
    responses((status = 200, description = "whatIfAnalysisResult collection"), (status = 400, description = "Invalid member")),
    security(("bearer" = ["Policy.Read.All", "User.Read.All"])))]
async fn evaluate(
    State(state): State<Arc<GraphState>>,
    Authorized(grant): Authorized<ReadPolicies>,
    _users: Authorized<ReadUsers>,
    GraphBody(body): GraphBody,
) -> ApiResult<Json<Value>> {
    let metadata = format!("{}/graph/v1.0/$metadata", state.public_url);
    let result = state
        .conditional_access
        .what_if(&grant, &state.directory, &body, &metadata)
        .await?;
    Ok(Json(result))
}
