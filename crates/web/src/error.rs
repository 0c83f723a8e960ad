//! Errors on the JSON surfaces (the Graph API, the sign-in and security-info JSON). Every failure
//! a handler or extractor returns is an [`ApiError`], rendered by [`ApiError::into_response`]
//! and nothing else: its status is core's one map ([`portcullis_core::Error::http_status`]) and
//! its body is Graph's error shape,
//! `{"error":{"code","message","target"?,"errorCode"?,"innerError":{"request-id","date"}}}`,
//! where `errorCode` is Entra's number for a refused sign-in.
//!
//! What this module must never do: decide a status itself, or show an internal error's
//! details (core's [`portcullis_core::Error::public_message`] hides them; the log keeps them
//! under the request id). The OAuth endpoints render their own shape in [`crate::oauth`], the
//! pages theirs in [`crate::pages::failure_page`].

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
        "code": error.code().as_str(),
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
    // The lockout guard's proof: who would be locked out, by which policies, on which sign-in.
    if let Error::WouldLockOut { finding, .. } = error {
        body["finding"] = finding.as_ref().clone();
    }
    // Entra's number beside Graph's code, as Entra's own sign-in endpoints report it.
    if let Some(code) = error.sign_in_code() {
        body["errorCode"] = code.code().into();
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
        if let Some(code) = self.0.sign_in_code() {
            tracing::info!(error_code = code.code(), "sign-in refused");
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

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::kernel::error::{ErrorCode, SignInErrorCode};
    use serde_json::Value;

    /// What a client receives for an error: the status, the `retry-after` header, and the body.
    async fn received(error: Error) -> (u16, Option<String>, Value) {
        let response = ApiError(error).into_response();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, retry_after, serde_json::from_slice(&bytes).unwrap())
    }

    fn refused(code: SignInErrorCode) -> Error {
        Error::sign_in_refused(code, "Your account or password is incorrect.")
    }

    /// Every variant, as a Graph client sees it: status, `error.code`, `target`, Entra's
    /// `errorCode` for a refused sign-in, and the shape of `innerError`.
    #[tokio::test]
    async fn every_error_renders_in_graphs_shape_with_its_one_status() {
        use SignInErrorCode as S;
        // The error, then what the client sees: status, code, target, Entra's errorCode.
        type Case = (Error, u16, &'static str, Option<&'static str>, Option<u32>);
        let cases: Vec<Case> = vec![
            (
                Error::invalid("displayName", "Too long."),
                400,
                "invalidRequest",
                Some("displayName"),
                None,
            ),
            (
                Error::bad_query("$top", "1–999."),
                400,
                "Request_UnsupportedQuery",
                Some("$top"),
                None,
            ),
            (
                Error::Invalid {
                    code: ErrorCode::SignInFlowNotFound,
                    target: Some("flowId".into()),
                    message: "Start again.".into(),
                },
                400,
                "signInFlowNotFound",
                Some("flowId"),
                None,
            ),
            (
                Error::Unauthenticated("No token.".into()),
                401,
                "InvalidAuthenticationToken",
                None,
                None,
            ),
            (
                refused(S::InvalidCredentials),
                401,
                "signInRefused",
                None,
                Some(50126),
            ),
            (
                refused(S::AccountLocked),
                429,
                "signInRefused",
                None,
                Some(50053),
            ),
            (
                refused(S::AccountDisabled),
                403,
                "signInRefused",
                None,
                Some(50057),
            ),
            (
                refused(S::StrongAuthRequired),
                401,
                "signInRefused",
                None,
                Some(50074),
            ),
            (
                refused(S::MoreInformationRequired),
                401,
                "signInRefused",
                None,
                Some(50079),
            ),
            (
                refused(S::BlockedByConditionalAccess),
                403,
                "signInRefused",
                None,
                Some(53003),
            ),
            (
                refused(S::PasskeySignInFailed),
                401,
                "signInRefused",
                None,
                Some(500121),
            ),
            (
                Error::Forbidden("Needs User.Read.All.".into()),
                403,
                "Authorization_RequestDenied",
                None,
                None,
            ),
            (
                Error::not_found("user", "u1"),
                404,
                "Request_ResourceNotFound",
                None,
                None,
            ),
            (
                Error::conflict("Taken."),
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                None,
                None,
            ),
            (
                Error::Conflict {
                    code: ErrorCode::SignInStepOutOfOrder,
                    message: "Not now.".into(),
                },
                409,
                "signInStepOutOfOrder",
                None,
                None,
            ),
            (
                Error::PayloadTooLarge { limit: 1 },
                413,
                "Request_EntityTooLarge",
                None,
                None,
            ),
            (
                Error::UnsupportedContentType {
                    message: "Send JSON.".into(),
                },
                415,
                "unsupportedContentType",
                Some("Content-Type"),
                None,
            ),
            (
                Error::TooManyRequests {
                    retry_after_secs: 60,
                },
                429,
                "TooManyRequests",
                None,
                None,
            ),
            (
                Error::Unavailable("db down".into()),
                503,
                "serviceNotAvailable",
                None,
                None,
            ),
            (
                Error::Internal("db-7 refused".into()),
                500,
                "generalException",
                None,
                None,
            ),
        ];
        for (error, status, code, target, entra) in cases {
            let expected_message = error.public_message();
            let (got_status, _, body) = received(error.clone()).await;
            assert_eq!(got_status, status, "{error:?}");
            let e = &body["error"];
            assert_eq!(e["code"], code, "{error:?}");
            assert_eq!(e["message"], expected_message.as_str(), "{error:?}");
            assert_eq!(e["target"].as_str(), target, "{error:?}");
            assert_eq!(e["errorCode"].as_u64(), entra.map(u64::from), "{error:?}");
            let inner = &e["innerError"];
            assert!(
                inner["request-id"].as_str().is_some_and(|s| !s.is_empty()),
                "{body}"
            );
            assert_eq!(inner["client-request-id"], inner["request-id"]);
            assert!(
                inner["date"].as_str().is_some_and(|d| d.ends_with('Z')),
                "{body}"
            );
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["error"], "nothing beside `error`");
        }
    }

    #[tokio::test]
    async fn only_too_many_requests_says_when_to_retry() {
        let (_, retry, _) = received(Error::TooManyRequests {
            retry_after_secs: 120,
        })
        .await;
        assert_eq!(retry.as_deref(), Some("120"));
        // A locked account's refusal keeps the person-facing message and no header (as before
        // the refusal became an error variant).
        let (status, retry, body) = received(refused(SignInErrorCode::AccountLocked)).await;
        assert_eq!((status, retry), (429, None));
        assert_eq!(body["error"]["errorCode"], 50053);
    }

    #[tokio::test]
    async fn internal_details_never_reach_the_body() {
        let (_, _, body) = received(Error::Internal("password=hunter2 at db-7".into())).await;
        let text = body.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("db-7"),
            "{text}"
        );
    }
}
