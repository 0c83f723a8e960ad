//! The one error type of the client, and the parsing of the two error shapes the server speaks:
//! Graph's `{"error":{"code","message","target"?,"innerError":{"request-id","date"}}}` on the
//! admin API, and RFC 6749's `{"error","error_description"}` on the token endpoint.

use std::fmt;

use serde_json::Value;

/// Everything that can go wrong talking to Portcullis. The `Display` text is what the binary
/// prints before exiting non-zero, so each variant reads as a sentence a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The admin API refused the request with Graph's error body.
    #[error("{}", ApiDisplay { status: *status, code, message, target: target.as_deref(), request_id: request_id.as_deref() })]
    Api {
        status: u16,
        code: String,
        message: String,
        target: Option<String>,
        request_id: Option<String>,
    },
    /// The token endpoint refused the client credentials.
    #[error("{}", OAuthDisplay { status: *status, error, description: description.as_deref() })]
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The server could not be reached, or the connection failed mid-request.
    #[error("{message}")]
    Transport { url: String, message: String },
    /// The server answered with something that is not the JSON the API promises.
    #[error("unexpected response from {url}: {message}")]
    Decode { url: String, message: String },
    /// No usable credentials (missing or malformed bootstrap.json, half-set environment).
    #[error("{0}")]
    Credentials(String),
    /// A command's arguments cannot be turned into a request (an unknown role name, an
    /// ambiguous group name…).
    #[error("{0}")]
    Usage(String),
    /// Writing the command's output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// A command that acts on several things did some and the server refused others; what
    /// happened to each was printed before this.
    #[error("{0}")]
    PartlyRefused(String),
}

/// The exit status of every admin command, decided here once (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Success,
    /// The server refused (its message was printed), could not be reached or answered what
    /// the API does not; or a check found what it looks for.
    Refused,
    /// The command line, a file it names, a name it gives (none or several match), or the
    /// local credentials are wrong: nothing was changed.
    Usage,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Refused => 1,
            Exit::Usage => 2,
        }
    }
}

struct ApiDisplay<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
    target: Option<&'a str>,
    request_id: Option<&'a str>,
}

impl fmt::Display for ApiDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The server's message first: it is the sentence written for a person. The code and
        // request id follow because they are what an administrator quotes when asking why.
        write!(f, "{} (HTTP {}, {}", self.message, self.status, self.code)?;
        if let Some(target) = self.target {
            write!(f, ", target {target}")?;
        }
        if let Some(id) = self.request_id {
            write!(f, ", request id {id}")?;
        }
        f.write_str(")")
    }
}

struct OAuthDisplay<'a> {
    status: u16,
    error: &'a str,
    description: Option<&'a str>,
}

impl fmt::Display for OAuthDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token endpoint refused the client credentials: ")?;
        match self.description {
            Some(d) => write!(f, "{d} ({}, HTTP {})", self.error, self.status),
            None => write!(f, "{} (HTTP {})", self.error, self.status),
        }
    }
}

impl ClientError {
    /// The HTTP status of an API or OAuth refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::OAuth { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph's stable error code (or the OAuth `error`), for callers that branch on it.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// How the binary exits after this error.
    pub fn exit(&self) -> Exit {
        match self {
            ClientError::Usage(_) | ClientError::Credentials(_) => Exit::Usage,
            ClientError::Api { .. }
            | ClientError::OAuth { .. }
            | ClientError::Transport { .. }
            | ClientError::Decode { .. }
            | ClientError::Output(_)
            | ClientError::PartlyRefused(_) => Exit::Refused,
        }
    }

    /// Turns a transport failure into a message that says what to check, rather than
    /// reqwest's chain of "error sending request" causes.
    pub(crate) fn transport(url: &str, err: &reqwest::Error) -> Self {
        let origin = origin_of(url);
        let message = if err.is_connect() {
            format!(
                "could not reach {origin}: is the server running? ({})",
                root_cause(err)
            )
        } else if err.is_timeout() {
            format!("{origin} did not answer in time ({url})")
        } else {
            format!("request to {url} failed: {}", root_cause(err))
        };
        ClientError::Transport {
            url: url.to_string(),
            message,
        }
    }
}

/// The innermost cause of a reqwest error ("Connection refused (os error 111)"), which is the
/// part that tells a person what happened.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// `http://host:port` of a URL, for messages about reaching the server.
fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let mut origin = u.origin().ascii_serialization();
            if origin == "null" {
                origin = url.to_string();
            }
            origin
        }
        Err(_) => url.to_string(),
    }
}

/// Builds the error for a refused request from its status, body and `request-id` header.
///
/// Graph's shape wins when present; then the OAuth shape; anything else (a proxy's HTML page,
/// an empty body) still becomes an [`ClientError::Api`] with a code derived from the status, so
/// the caller always gets the status and whatever text there was.
pub fn parse_error(status: u16, body: &[u8], header_request_id: Option<&str>) -> ClientError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(err) = json.as_ref().and_then(|v| v.get("error")) {
        if let Some(obj) = err.as_object() {
            let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
            let inner = obj.get("innerError").or_else(|| obj.get("innererror"));
            let request_id = inner
                .and_then(|i| i.get("request-id"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| header_request_id.map(str::to_string));
            return ClientError::Api {
                status,
                code: text("code").unwrap_or_else(|| status_code_name(status)),
                message: text("message").unwrap_or_else(|| reason(status)),
                target: text("target"),
                request_id,
            };
        }
        if let Some(error) = err.as_str() {
            let description = json
                .as_ref()
                .and_then(|v| v.get("error_description"))
                .and_then(Value::as_str)
                .map(str::to_string);
            return ClientError::OAuth {
                status,
                error: error.to_string(),
                description,
            };
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    // A long body is usually an HTML page from something in front of the server: its first
    // line is enough to recognise it, and the rest would bury the status.
    let message = match text.lines().next() {
        Some(first) if !first.is_empty() => truncate(first, 200),
        _ => reason(status),
    };
    ClientError::Api {
        status,
        code: status_code_name(status),
        message,
        target: None,
        request_id: header_request_id.map(str::to_string),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unexpected status")
        .to_string()
}

fn status_code_name(status: u16) -> String {
    format!("HTTP{status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_error_body_is_parsed() {
        let body = br#"{"error":{"code":"Request_BadRequest","message":"Invalid value for 'displayName'.","target":"displayName","innerError":{"request-id":"6f1c","client-request-id":"6f1c","date":"2026-01-31T12:00:00"}}}"#;
        let err = parse_error(400, body, Some("header-id"));
        match &err {
            ClientError::Api {
                status,
                code,
                message,
                target,
                request_id,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(code, "Request_BadRequest");
                assert_eq!(message, "Invalid value for 'displayName'.");
                assert_eq!(target.as_deref(), Some("displayName"));
                // The body's id is the one the server logged; it wins over the header.
                assert_eq!(request_id.as_deref(), Some("6f1c"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "Invalid value for 'displayName'. (HTTP 400, Request_BadRequest, target displayName, request id 6f1c)"
        );
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.code(), Some("Request_BadRequest"));
    }

    #[test]
    fn graph_error_without_inner_error_uses_the_header_request_id() {
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"No user 'x'."}}"#;
        let err = parse_error(404, body, Some("abc"));
        assert_eq!(
            err.to_string(),
            "No user 'x'. (HTTP 404, Request_ResourceNotFound, request id abc)"
        );
    }

    #[test]
    fn oauth_error_body_is_parsed() {
        let body =
            br#"{"error":"invalid_client","error_description":"The client secret is wrong."}"#;
        let err = parse_error(401, body, None);
        match &err {
            ClientError::OAuth {
                status,
                error,
                description,
            } => {
                assert_eq!(*status, 401);
                assert_eq!(error, "invalid_client");
                assert_eq!(description.as_deref(), Some("The client secret is wrong."));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "the token endpoint refused the client credentials: The client secret is wrong. (invalid_client, HTTP 401)"
        );
        assert_eq!(err.code(), Some("invalid_client"));
    }

    #[test]
    fn oauth_error_without_description() {
        let err = parse_error(400, br#"{"error":"unsupported_grant_type"}"#, None);
        assert_eq!(
            err.to_string(),
            "the token endpoint refused the client credentials: unsupported_grant_type (HTTP 400)"
        );
    }

    #[test]
    fn non_json_body_keeps_status_and_first_line() {
        let err = parse_error(
            502,
            b"<html>Bad Gateway</html>\n<body>...</body>",
            Some("r1"),
        );
        assert_eq!(
            err.to_string(),
            "<html>Bad Gateway</html> (HTTP 502, HTTP502, request id r1)"
        );
        let empty = parse_error(503, b"", None);
        assert_eq!(empty.to_string(), "Service Unavailable (HTTP 503, HTTP503)");
    }

    #[test]
    fn graph_error_missing_fields_falls_back_to_status() {
        let err = parse_error(403, br#"{"error":{}}"#, None);
        assert_eq!(err.to_string(), "Forbidden (HTTP 403, HTTP403)");
    }

    #[test]
    fn long_body_is_truncated() {
        let long = "x".repeat(500);
        let ClientError::Api { message, .. } = parse_error(500, long.as_bytes(), None) else {
            panic!("expected Api");
        };
        assert_eq!(message.chars().count(), 201);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn origin_is_scheme_host_port() {
        assert_eq!(
            origin_of("http://localhost:8080/graph/v1.0/users"),
            "http://localhost:8080"
        );
        assert_eq!(origin_of("not a url"), "not a url");
    }
}
