//! The one error type of the domain. Each variant documents the HTTP status the web layer gives
//! it; `portcullis_web::error` holds the single mapping, shared by the JSON and HTML renderers.

use std::borrow::Cow;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// HTTP 400: The request is malformed or a field is invalid; `target` names the field (or query
    /// option) at fault so that a caller can fix it without reading prose.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        target: Option<Cow<'static, str>>,
        message: String,
    },
    /// HTTP 401: No credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// HTTP 403: Authenticated, but the caller lacks the permission the operation states.
    #[error("{0}")]
    Forbidden(String),
    /// HTTP 404: The addressed object does not exist.
    #[error("{resource} '{id}' does not exist")]
    NotFound { resource: &'static str, id: String },
    /// HTTP 409: The change would break a uniqueness rule (a userPrincipalName, an appId, a membership
    /// that already exists).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// HTTP 413: The request body is larger than the server accepts.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// HTTP 429: Too many attempts from one account or source; retry after the given seconds.
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// HTTP 503: A dependency (the database) cannot be reached right now; nothing was changed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// HTTP 500: A defect or an unexpected storage failure. The message is for logs; the web layer
    /// never shows it to a caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A 400 naming the field at fault.
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Invalid {
            code: "invalidRequest",
            target: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 400 for a malformed or unsupported OData query option.
    pub fn bad_query(option: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Invalid {
            code: "Request_UnsupportedQuery",
            target: Some(option.into()),
            message: message.into(),
        }
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            code: "Request_MultipleObjectsWithSameKeyValue",
            message: message.into(),
        }
    }

    /// The HTTP status this error maps to. The web crate uses this and nothing else.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid { .. } => 400,
            Error::Unauthenticated(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::TooManyRequests { .. } => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The stable, machine-readable code (Graph's spelling where Graph has one).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { code, .. } => code,
            Error::Unauthenticated(_) => "InvalidAuthenticationToken",
            Error::Forbidden(_) => "Authorization_RequestDenied",
            Error::NotFound { .. } => "Request_ResourceNotFound",
            Error::Conflict { code, .. } => code,
            Error::PayloadTooLarge { .. } => "Request_EntityTooLarge",
            Error::TooManyRequests { .. } => "TooManyRequests",
            Error::Unavailable(_) => "serviceNotAvailable",
            Error::Internal(_) => "generalException",
        }
    }

    /// The field or query option at fault, when there is one.
    pub fn target(&self) -> Option<&str> {
        match self {
            Error::Invalid { target, .. } => target.as_deref(),
            _ => None,
        }
    }

    /// The message safe to show a caller. Internal errors are not described to callers.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => {
                "An unexpected error occurred; the request changed nothing. Quote the request id to the administrator.".to_string()
            }
            other => other.to_string(),
        }
    }
}
