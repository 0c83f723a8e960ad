//! Extractors: the caller (from a bearer token), the capability a handler needs, Graph JSON
//! bodies with field-naming errors, and OData query options.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use portcullis_core::Error;
use portcullis_core::directory::audit::RequestContext;
use portcullis_core::directory::authz::{Granted, Permission, Principal};
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::kernel::odata::QueryOptions;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::RequestMeta;

/// The authenticated caller. Verified once per request and cached in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            Error::Unauthenticated(
                "Access token is empty: send Authorization: Bearer <token>.".into(),
            )
        })?;
        let text = header.to_str().map_err(|_| {
            Error::Unauthenticated("The Authorization header is not valid text.".into())
        })?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthenticated("The Authorization header must be 'Bearer <token>'.".into())
            })?;
        let claims = state.sign_in().tokens.verify_access_token(token).await?;
        let principal = state.sign_in().tokens.principal_for(&claims).await?;
        let caller = Caller(principal);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A handler that takes `Authorized<P>` can only run for a caller holding permission `P`; the
/// capability it carries is what core's operations demand.
pub struct Authorized<P: Permission>(pub Granted<P>);

impl<P: Permission> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        Ok(Authorized(Granted::<P>::check(&principal)?))
    }
}

/// Like [`Authorized`], but absent instead of refused when the caller lacks `P`: for operations
/// where an extra permission unlocks an extra part (granting API permissions to an application).
pub struct MaybeAuthorized<P: Permission>(pub Option<Granted<P>>);

impl<P: Permission> FromRequestParts<AppState> for MaybeAuthorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        Ok(MaybeAuthorized(Granted::<P>::check(&principal).ok()))
    }
}

/// The request's correlation id and source address, for audit entries, and whether it says it
/// knows the change may lock administrators out.
pub struct Meta(pub RequestContext);

/// `acknowledgeLockout=true` in the query string (the only value that acknowledges: a typo
/// must not switch the lockout guard off).
pub fn acknowledges_lockout(query: Option<&str>) -> bool {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| k == "acknowledgeLockout" && v.eq_ignore_ascii_case("true"))
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .ok_or_else(|| Error::Internal("request metadata missing".into()))?;
        Ok(Meta(RequestContext {
            correlation_id: meta.request_id,
            ip_address: meta.client_ip,
            acknowledge_lockout: acknowledges_lockout(parts.uri.query()),
        }))
    }
}

/// A JSON body in Graph's shape. Errors name the field at fault: a missing required field, an
/// unknown field, or a value of the wrong type.
pub struct GraphJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for GraphJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let GraphBody(bytes) = GraphBody::from_request(req, state).await?;
        parse_graph_json(&bytes).map(GraphJson).map_err(ApiError)
    }
}

/// A JSON body kept as bytes, for documents that core decodes itself (Graph exports may be
/// UTF-16 with a byte-order mark). Size limit and content type are checked here.
pub struct GraphBody(pub Bytes);

/// The body's bytes, refused when too large or not declared JSON; possibly empty.
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !is_json_media_type(&ct) {
            return Err(Error::Invalid {
                code: ErrorCode::InvalidRequest,
                target: Some("Content-Type".into()),
                message: format!("Expected Content-Type application/json, got '{ct}'."),
            }
            .into());
        }
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge {
                limit: crate::MAX_BODY_BYTES,
            }
        } else {
            Error::invalid(
                "body",
                format!("The request body could not be read: {rejection}"),
            )
        }
    })?;
    Ok(bytes)
}

impl<S: Send + Sync> FromRequest<S> for GraphBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        if portcullis_core::kernel::json::is_blank(&bytes) {
            return Err(Error::invalid(
                "body",
                "The request body is empty; a JSON object is expected.",
            )
            .into());
        }
        Ok(GraphBody(bytes))
    }
}

/// A JSON body that may be left out (an empty body reaches the handler as no bytes), checked
/// for size and content type like [`GraphBody`].
pub struct OptionalGraphBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for OptionalGraphBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(OptionalGraphBody(json_bytes(req, state).await?))
    }
}

/// Parses a Graph JSON body, naming the field at fault in any error.
pub fn parse_graph_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // serde would also fill a struct from a JSON array, field by field in order; Graph bodies
    // are objects, so anything else is refused before it can be misread.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::invalid(
            "body",
            "The request body must be a JSON object.",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        // serde names missing and unknown fields between backticks.
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| {
                message.starts_with("missing field") || message.starts_with("unknown field")
            })
            .map(str::to_string);
        // For an unknown field the path already ends with it; for a missing one it names the
        // parent object.
        let target = match (named, path.as_str()) {
            _ if inner.is_syntax() || inner.is_eof() => "body".to_string(),
            (Some(field), "." | "") => field,
            (Some(field), p) if p == field || p.ends_with(&format!(".{field}")) => p.to_string(),
            (Some(field), parent) => format!("{parent}.{field}"),
            (None, "." | "") => "body".to_string(),
            (None, p) => p.to_string(),
        };
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("The request body is not valid JSON: {message}")
        } else if message.starts_with("missing field") {
            format!("The required property '{target}' is missing.")
        } else if message.starts_with("unknown field") {
            format!("The property '{target}' does not exist on this type.")
        } else {
            format!("Invalid value for '{target}': {message}")
        };
        Error::invalid(target, message)
    })?;
    // One JSON value and nothing after it: `{…}garbage` or two objects back to back are not a
    // body anyone meant to send.
    de.end().map_err(|_| {
        Error::invalid(
            "body",
            "The request body has data after its JSON object; send exactly one object.",
        )
    })?;
    Ok(value)
}

/// Whether a `Content-Type` names JSON: the media type `application/json` in any case, with or
/// without parameters (`; charset=utf-8`). `application/jsonp`, `application/json-seq` and the
/// like are other formats and are refused.
pub fn is_json_media_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
}

/// The OData query options of a request (`$filter`, `$top`, `$select`, `$skiptoken`, `$count`; anything
/// else starting with `$` is reported as unsupported).
pub struct OData {
    pub options: QueryOptions,
    /// Every query parameter as sent, to rebuild `@odata.nextLink`.
    pub pairs: Vec<(String, String)>,
    /// The request path as the caller sent it.
    pub path: String,
}

/// For the lists that are returned whole (policies, named locations, strengths, role
/// definitions, directory roles: a tenant has at most a few hundred of each): any OData query
/// option is refused by name rather than silently ignored, so a script that filters gets told
/// instead of getting everything.
pub struct WholeList;

impl<S: Send + Sync> FromRequestParts<S> for WholeList {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // The same reading of the query string as every other list; only the answer differs.
        let OData { pairs, .. } = OData::from_request_parts(parts, state).await?;
        match pairs.iter().find(|(key, _)| key.starts_with('$')) {
            Some((key, _)) => Err(Error::bad_query(
                key.clone(),
                format!(
                    "The query option '{key}' is not supported on this list; it is returned whole."
                ),
            )
            .into()),
            None => Ok(WholeList),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OData {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|_| {
            Error::bad_query("query", "The query string is not valid URL encoding.")
        })?;
        let mut options = QueryOptions::default();
        for (key, value) in &pairs {
            let slot = match key.as_str() {
                "$filter" => &mut options.filter,
                "$top" => &mut options.top,
                "$select" => &mut options.select,
                "$skiptoken" => &mut options.skiptoken,
                "$count" => &mut options.count,
                "$search" => &mut options.search,
                "$orderby" => &mut options.orderby,
                k if k.starts_with('$') => {
                    options.unsupported.push(k.to_string());
                    continue;
                }
                _ => continue,
            };
            if slot.is_some() {
                return Err(Error::bad_query(
                    key.clone(),
                    format!("The query option '{key}' is given twice."),
                )
                .into());
            }
            *slot = Some(value.clone());
        }
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map(|u| u.0.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        Ok(OData {
            options,
            pairs,
            path,
        })
    }
}

/// The signed-in person's session, from the `portcullis_session` cookie. Refused with 401 when
/// there is none or it has expired.
pub struct CurrentSession {
    pub session: portcullis_core::session::AuthSession,
}

/// The value of a named cookie in a request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = cookie(parts, portcullis_core::session::SESSION_COOKIE)
            .ok_or_else(|| Error::Unauthenticated("You are not signed in.".into()))?;
        let session = state
            .sign_in()
            .sessions
            .for_token(token)
            .await?
            .ok_or_else(|| {
                Error::Unauthenticated("Your sign-in has expired; sign in again.".into())
            })?;
        Ok(CurrentSession { session })
    }
}

/// The signed-in person about to change their own security info (add, rename or remove a
/// method, change their password): the session, once core's one decision for that
/// ([`portcullis_core::signin::security_info::may_change`]) allowed it for this request. Refused with
/// 401 without a live session, and with 403 naming the policy when Conditional Access for My
/// Account or for registering security information does not grant.
pub struct SecurityInfoChange {
    pub session: portcullis_core::session::AuthSession,
}

impl FromRequestParts<AppState> for SecurityInfoChange {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentSession { session } = CurrentSession::from_request_parts(parts, state).await?;
        let Facts(facts) = Facts::from_request_parts(parts, state).await?;
        portcullis_core::signin::security_info::may_change(
            &state.sign_in().sign_ins,
            &session,
            &facts,
        )
        .await?;
        Ok(SecurityInfoChange { session })
    }
}

/// The plain facts of a sign-in request that core logs and decides on: correlation id, source
/// address, its country (from the configured country database) and user agent.
pub struct Facts(pub portcullis_core::logs::sign_in::RequestFacts);

impl FromRequestParts<AppState> for Facts {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Meta(meta) = Meta::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Facts(portcullis_core::logs::sign_in::RequestFacts {
            correlation_id: meta.correlation_id,
            country: state
                .countries()
                .country_of_text(meta.ip_address.as_deref()),
            ip_address: meta.ip_address,
            user_agent,
            application: None,
        }))
    }
}
