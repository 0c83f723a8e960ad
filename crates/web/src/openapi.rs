//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/graph/v1.0/openapi.json`.
//!
//! Each handler documents its successes and the refusals particular to it (409 on a clash,
//! 403 for a tier rule…). The answers every operation shares are added here, once, from what
//! the operation takes, so that none is forgotten: 401 and 403 for every secured operation
//! (no or a bad token; a token without the permission), 400 for every one (a malformed query
//! string, an unsupported `$` option, a body that is not the expected JSON), 404 where the
//! path names an object, 413 where a body is read, and 503 when the database cannot be
//! reached. Every error answer carries Graph's error body (`GraphError`).

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Schema};

/// The name of Graph's error body in the document's components.
pub const GRAPH_ERROR: &str = "GraphError";

pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info.title = "Portcullis admin API (Microsoft Graph–compatible subset)".to_string();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api.info.description = Some(
        "Administer a Portcullis tenant: users, groups, roles, applications, policies and logs. \
         Authenticate with OAuth 2.0 client credentials at /oauth2/v2.0/token; each operation \
         lists the application permission it needs. Lists that page take $count=true and \
         answer @odata.count (the ConsistencyLevel: eventual header Graph asks for is \
         accepted and not needed). Every error is Graph's error body."
            .to_string(),
    );
    api.servers = Some(vec![utoipa::openapi::Server::new("/graph/v1.0")]);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
            ClientCredentials::new("/oauth2/v2.0/token", Scopes::new()),
        )])),
    );
    components
        .schemas
        .insert(GRAPH_ERROR.to_string(), graph_error_schema());
    let closed = closed_schemas(components);
    for (path, item) in api.paths.paths.iter_mut() {
        let names_an_object = path.contains('{');
        for operation in operations(item) {
            complete_responses(operation, names_an_object);
            annotate_entities(operation, &closed);
        }
    }
    api
}

/// The component schemas that allow no other properties (a body type that refuses unknown
/// fields), each as JSON with `@odata.context` added: the form an answer takes when the type
/// is sent back as an entity, which carries its `@odata.context`.
fn closed_schemas(
    components: &utoipa::openapi::Components,
) -> std::collections::BTreeMap<String, RefOr<Schema>> {
    let mut closed = std::collections::BTreeMap::new();
    for (name, schema) in &components.schemas {
        let Ok(mut json) = serde_json::to_value(schema) else {
            continue;
        };
        if json["additionalProperties"] != serde_json::Value::Bool(false) {
            continue;
        }
        if let Some(properties) = json["properties"].as_object_mut() {
            properties.insert(
                "@odata.context".to_string(),
                serde_json::json!({"type": "string"}),
            );
        }
        if let Ok(answer) = serde_json::from_value(json) {
            closed.insert(format!("#/components/schemas/{name}"), answer);
        }
    }
    closed
}

/// A success answer whose schema is a closed type gets that type with `@odata.context`.
fn annotate_entities(
    operation: &mut Operation,
    closed: &std::collections::BTreeMap<String, RefOr<Schema>>,
) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !status.starts_with('2') {
            continue;
        }
        for content in response.content.values_mut() {
            let RefOr::T(content) = content else {
                continue;
            };
            if let Some(RefOr::Ref(reference)) = &content.schema
                && let Some(answer) = closed.get(&reference.ref_location)
            {
                content.schema = Some(answer.clone());
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Adds the answers every operation of its kind can give, and Graph's error body to every
/// error answer a handler documented with a description only.
fn complete_responses(operation: &mut Operation, names_an_object: bool) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let reads_a_body = operation.request_body.is_some();
    let mut shared: Vec<(&str, &str)> = vec![(
        "400",
        "A malformed query string or query option, an unsupported `$` option, or a body that \
         is not the expected JSON (with `target` naming the field)",
    )];
    if secured {
        shared.push((
            "401",
            "No bearer token, or one that is expired, not issued here or revoked",
        ));
        shared.push((
            "403",
            "The token does not carry the permission this operation needs",
        ));
    }
    if names_an_object {
        shared.push(("404", "No such object"));
    }
    if reads_a_body {
        shared.push(("413", "The body is larger than 1 MiB"));
    }
    shared.push(("503", "The database cannot be reached; nothing was changed"));
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response)
            && response.content.is_empty()
        {
            response.content.insert(
                "application/json".to_string(),
                RefOr::T(Content::new(Some(Ref::from_schema_name(GRAPH_ERROR)))),
            );
        }
    }
}

/// Graph's error body: `{"error":{"code","message","target"?,"innerError":{…}}}` (see
/// [`crate::error::graph_error_body`]).
fn graph_error_schema() -> RefOr<Schema> {
    let json = serde_json::json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "target": {"type": "string"},
                    "errorCode": {"type": "integer"},
                    "finding": {"type": "object"},
                    "innerError": {
                        "type": "object",
                        "properties": {
                            "request-id": {"type": "string"},
                            "client-request-id": {"type": "string"},
                            "date": {"type": "string"}
                        }
                    }
                }
            }
        }
    });
    serde_json::from_value(json).expect("the error schema is a valid schema")
}
