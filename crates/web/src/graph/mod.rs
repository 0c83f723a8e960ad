//! The Microsoft Graph–compatible admin API under `/graph/v1.0/`.

pub(crate) mod analysis;
mod applications;
mod audit;
mod conditional_access;
mod deleted_items;
mod groups;
mod methods;
mod passkeys;
mod replay;
mod roles;
mod service_principals;
mod users;

use std::sync::Arc;

use axum::Json;
use portcullis_core::kernel::odata::{self, ListRequest};
use portcullis_core::kernel::query::Page;
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{Authorized, OData};
use crate::{AppState, GraphState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(organization))
        .merge(users::router())
        .merge(deleted_items::router())
        .merge(groups::router())
        .merge(roles::router())
        .merge(applications::router())
        .merge(service_principals::router())
        .merge(audit::router())
        .merge(conditional_access::router())
        .merge(methods::router())
        .merge(passkeys::router())
        .merge(replay::router())
        .merge(analysis::router())
}

/// Graph's `@odata.context` for a collection or entity set.
pub(crate) fn context(state: &GraphState, what: &str) -> String {
    format!("{}/graph/v1.0/$metadata#{what}", state.public_url)
}

/// A collection response: `@odata.context`, `value`, and `@odata.nextLink` when more follow.
pub(crate) fn collection<T: Serialize>(
    state: &GraphState,
    what: &str,
    page: Page<T>,
    list: &ListRequest,
    odata: &OData,
    annotate: impl Fn(Value) -> Value,
) -> Json<Value> {
    let count = page.count;
    let value: Vec<Value> = page
        .items
        .into_iter()
        .map(|item| {
            let json = annotate(serde_json::to_value(item).unwrap_or(Value::Null));
            odata::apply_select(json, list.select.as_deref())
        })
        .collect();
    let mut body = serde_json::json!({ "@odata.context": context(state, what) });
    // Before `value`, where Graph writes it.
    if let Some(n) = count {
        body["@odata.count"] = Value::from(n);
    }
    body["value"] = Value::Array(value);
    if let Some(next) = page.next {
        let mut pairs: Vec<(String, String)> = odata
            .pairs
            .iter()
            .filter(|(k, _)| k != "$skiptoken")
            .cloned()
            .collect();
        pairs.push(("$skiptoken".to_string(), odata::encode_skiptoken(&next)));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        body["@odata.nextLink"] =
            Value::String(format!("{}{}?{}", state.public_url, odata.path, query));
    }
    Json(body)
}

/// A page of a collection written out as it is sent, a chunk of about [`CHUNK`] bytes at a time,
/// for the lists whose entries are large (a sign-in log entry with 240 policies' results is
/// about 62 KB of JSON, so a page of 100 is 6 MB). The page's rows are held, compact, until the
/// last chunk; each entry's JSON exists only while its chunk is on its way. Written whole into
/// one buffer, five such pages at once lifted the server from 52 to 117 MB (BENCHMARKS.md).
pub(crate) fn collection_text<T: Serialize + Send + 'static>(
    state: &GraphState,
    what: &str,
    page: Page<T>,
    list: &ListRequest,
    odata: &OData,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let failed = |e: serde_json::Error| {
        portcullis_core::Error::Internal(format!("cannot write the answer: {e}"))
    };
    let mut head: Vec<u8> = Vec::with_capacity(256);
    head.extend_from_slice(b"{\"@odata.context\":");
    serde_json::to_writer(&mut head, &context(state, what)).map_err(failed)?;
    if let Some(n) = page.count {
        head.extend_from_slice(format!(",\"@odata.count\":{n}").as_bytes());
    }
    head.extend_from_slice(b",\"value\":[");
    let mut tail: Vec<u8> = vec![b']'];
    if let Some(next) = page.next {
        let mut pairs: Vec<(String, String)> = odata
            .pairs
            .iter()
            .filter(|(k, _)| k != "$skiptoken")
            .cloned()
            .collect();
        pairs.push(("$skiptoken".to_string(), odata::encode_skiptoken(&next)));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        tail.extend_from_slice(b",\"@odata.nextLink\":");
        serde_json::to_writer(
            &mut tail,
            &format!("{}{}?{}", state.public_url, odata.path, query),
        )
        .map_err(failed)?;
    }
    tail.push(b'}');

    let select = list.select.clone();
    let mut items = page.items.into_iter().enumerate();
    let mut head = Some(head);
    let mut tail = Some(tail);
    let chunks = std::iter::from_fn(move || {
        if let Some(head) = head.take() {
            return Some(Ok(axum::body::Bytes::from(head)));
        }
        let mut chunk: Vec<u8> = Vec::new();
        while chunk.len() < CHUNK {
            let Some((n, item)) = items.next() else { break };
            if n > 0 {
                chunk.push(b',');
            }
            let written = match select.as_deref() {
                None => serde_json::to_writer(&mut chunk, &item),
                Some(names) => serde_json::to_value(&item).and_then(|json| {
                    serde_json::to_writer(&mut chunk, &odata::apply_select(json, Some(names)))
                }),
            };
            if let Err(e) = written {
                // The status has gone out: the answer can only stop short, which a client sees
                // as a broken body rather than a complete wrong one.
                tracing::error!(error = %e, "a collection could not be written out");
                return Some(Err(e));
            }
        }
        if !chunk.is_empty() {
            return Some(Ok(axum::body::Bytes::from(chunk)));
        }
        tail.take().map(|tail| Ok(axum::body::Bytes::from(tail)))
    });
    Ok((
        [(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        )],
        axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response())
}

/// How much of a streamed collection is written before it is handed to the connection.
const CHUNK: usize = 64 * 1024;

/// An entity response with its `@odata.context`.
pub(crate) fn entity<T: Serialize>(state: &GraphState, what: &str, item: &T) -> Json<Value> {
    let mut json = serde_json::to_value(item).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut json {
        map.insert("@odata.context".into(), Value::String(context(state, what)));
    }
    Json(json)
}

/// A plain list (no paging) as a Graph collection.
pub(crate) fn plain_collection(state: &GraphState, what: &str, value: Vec<Value>) -> Json<Value> {
    Json(serde_json::json!({ "@odata.context": context(state, what), "value": value }))
}

/// A list returned whole (a group's members, a user's groups) that takes `$count` and
/// `$select` like a paged one; `$filter`, `$top` and other options are refused by name, never
/// ignored.
pub(crate) fn whole_collection(
    state: &GraphState,
    what: &str,
    value: Vec<Value>,
    odata: &OData,
) -> ApiResult<Json<Value>> {
    if let Some(option) = odata.options.unsupported.first().cloned().or_else(|| {
        [
            ("$filter", odata.options.filter.is_some()),
            ("$top", odata.options.top.is_some()),
            ("$skiptoken", odata.options.skiptoken.is_some()),
            ("$search", odata.options.search.is_some()),
            ("$orderby", odata.options.orderby.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
        .map(|(name, _)| name.to_string())
    }) {
        return Err(portcullis_core::Error::bad_query(
            option.clone(),
            format!(
                "The query option '{option}' is not supported on this list; it is returned whole."
            ),
        )
        .into());
    }
    let count = odata::parse_count(odata.options.count.as_deref())?;
    let select = match odata.options.select.as_deref() {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(str::trim)
                .map(|name| {
                    if name.is_empty() {
                        Err(portcullis_core::Error::bad_query(
                            "$select",
                            "$select has an empty property name.",
                        ))
                    } else {
                        Ok(name.to_string())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let value = value
        .into_iter()
        .map(|v| odata::apply_select(v, select.as_deref()))
        .collect();
    Ok(counted_collection(state, what, value, count))
}

/// A whole list as a Graph collection, with `@odata.count` when `$count=true` asked for it.
pub(crate) fn counted_collection(
    state: &GraphState,
    what: &str,
    value: Vec<Value>,
    count: bool,
) -> Json<Value> {
    let mut body = serde_json::json!({ "@odata.context": context(state, what) });
    if count {
        body["@odata.count"] = Value::from(value.len());
    }
    body["value"] = Value::Array(value);
    Json(body)
}

/// The tenant this server serves.
#[utoipa::path(get, path = "/organization", tag = "organization",
    responses((status = 200, description = "The tenant, as a one-item collection")),
    security(("bearer" = ["Directory.Read.All"])))]
async fn organization(
    axum::extract::State(state): axum::extract::State<Arc<GraphState>>,
    _auth: Authorized<portcullis_core::directory::authz::ReadUsers>,
    _whole: crate::extract::WholeList,
) -> ApiResult<Json<Value>> {
    let tenant = state.directory.tenant().await?;
    Ok(plain_collection(
        &state,
        "organization",
        vec![serde_json::json!({
            "id": tenant.id,
            "displayName": tenant.display_name,
            "createdDateTime": portcullis_core::kernel::clock::graph_datetime::format(tenant.created_date_time),
        })],
    ))
}
