//! Errors on the wire. Every failure a handler or extractor returns is an [`ApiError`]; its
//! status comes from core's one mapping ([`portcullis_core::Error::http_status`]) and its body
//! is Graph's error shape:
//! `{"error":{"code","message","target"?,"innerError":{"request-id","date"}}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::Error;

use crate::middleware::current_request_id;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Graph's error body for an error, with the request id a caller quotes to an administrator.
pub fn graph_error_body(error: &Error, request_id: &str) -> serde_json::Value {
    let mut body = serde_json::json!({
        "code": error.code(),
        "message": error.public_message(),
        "innerError": {
            "request-id": request_id,
            "client-request-id": request_id,
            "date": portcullis_core::kernel::clock::graph_datetime::format(time::OffsetDateTime::now_utc()),
        }
    });
    if let Some(target) = error.target() {
        body["target"] = serde_json::Value::String(target.to_string());
    }
    serde_json::json!({ "error": body })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = current_request_id();
        if status.is_server_error() {
            tracing::error!(request_id = %request_id, error = %self.0, "request failed");
        } else {
            tracing::debug!(request_id = %request_id, error = %self.0, "request refused");
        }
        let mut response = (status, Json(graph_error_body(&self.0, &request_id))).into_response();
        if let Error::TooManyRequests { retry_after_secs } = self.0
            && let Ok(v) = retry_after_secs.to_string().parse()
        {
            response.headers_mut().insert("retry-after", v);
        }
        response
    }
}
