//! The pages people see, rendered on the server from templates compiled into the binary: the
//! sign-in pages, security info and the admin portal. One layout (`layout.html`), one stylesheet
//! (`/assets/portcullis.css`), and JavaScript only where a browser API needs it (WebAuthn,
//! copying text).
//!
//! Pages call the same core services as the JSON endpoints and never decide anything themselves.
//! What they must never do: show a raw error (every core error becomes a page through
//! [`failure_page`] or [`failure_page_as`], which take its status from core and hide internal
//! details; [`error_page`] is only the template), decide an error's status themselves, put a
//! secret in a URL, or render text without escaping (templates end in `.html`, so minijinja
//! escapes every value).

pub mod admin;
pub mod labels;
pub mod security_info;
pub mod sign_in;

use std::sync::LazyLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;
use serde::Serialize;

use portcullis_core::Error;

use crate::AppState;
use crate::middleware::current_request_id;

/// The shared templates; each page module adds its own list in [`TEMPLATE_SETS`].
const SHARED_TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("message.html", include_str!("../../templates/message.html")),
];

const TEMPLATE_SETS: &[&[(&str, &str)]] = &[
    SHARED_TEMPLATES,
    sign_in::TEMPLATES,
    security_info::TEMPLATES,
    admin::TEMPLATES,
];

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_filter("moment", labels::moment);
    env.add_filter("combination", |c: String| labels::combination_name(&c));
    env.add_filter("method", |m: String| labels::method_name(&m));
    for set in TEMPLATE_SETS {
        for (name, source) in *set {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
        }
    }
    env
});

const STYLESHEET: &str = include_str!("../../assets/portcullis.css");
const SCRIPT: &str = include_str!("../../assets/portcullis.js");
/// The site's icon, drawn for Portcullis: a portcullis gate on the accent blue. Browsers ask
/// for `/favicon.ico` on their own; it answers with the same SVG (browsers go by the type).
const FAVICON: &str = include_str!("../../assets/favicon.svg");

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/assets/portcullis.css", get(stylesheet))
        .route("/assets/portcullis.js", get(script))
        .route("/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .merge(sign_in::router())
        .merge(security_info::router())
        .merge(admin::router(state))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// Renders a page with status 200. A template that fails to render is a bug; the person sees
/// the friendly error page, and the log has the details.
pub fn render<S: Serialize>(name: &str, context: S) -> Response {
    render_with_status(StatusCode::OK, name, context)
}

pub fn render_with_status<S: Serialize>(status: StatusCode, name: &str, context: S) -> Response {
    let rendered = TEMPLATES.get_template(name).and_then(|t| t.render(context));
    match rendered {
        Ok(html) => (status, no_store(), Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page did not render");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "This page could not be shown. Try again; if it keeps happening, give your administrator the details below.",
            )
        }
    }
}

/// Pages hold personal details and one-time secrets: never cached.
fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// A friendly error page with the request id a person quotes to support.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    coded_error_page(status, title, message, None)
}

/// [`error_page`] with the stable code of the failure, shown beside the status.
fn coded_error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    code: Option<&str>,
) -> Response {
    let context = minijinja::context! {
        title => title,
        message => message,
        status => status.as_u16(),
        code => code,
        request_id => current_request_id(),
    };
    let mut page = match TEMPLATES
        .get_template("error.html")
        .and_then(|t| t.render(context))
    {
        Ok(html) => (status, no_store(), Html(html)).into_response(),
        Err(_) => (status, no_store(), "Something went wrong.").into_response(),
    };
    page.extensions_mut().insert(FailureShown {
        title: title.to_string(),
        message: message.to_string(),
        code: code.map(str::to_string),
    });
    page
}

/// What an error page said, carried on its response so that an area with a frame of its own
/// (the admin portal, [`admin::keep_the_frame`]) can show the same words inside its navigation.
#[derive(Debug, Clone)]
pub struct FailureShown {
    pub title: String,
    pub message: String,
    pub code: Option<String>,
}

/// The friendly page for a core error, in the words this module gives each kind of failure.
/// See [`failure_page_as`].
pub fn failure_page(error: &Error) -> Response {
    render_failure(error, None)
}

/// The one renderer of a failure as a page: the status is core's
/// ([`Error::http_status`]; pages keep no list of their own), a server-side failure is logged
/// under the request id the page shows, and the page reads `title` and `message` — the words
/// a page area (the sign-in page, the portal) has for it. Callers word a fault only in
/// general terms or with [`Error::public_message`], which never describes internals.
pub fn failure_page_as(error: &Error, title: &str, message: &str) -> Response {
    render_failure(error, Some((title, message)))
}

fn render_failure(error: &Error, wording: Option<(&str, &str)>) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(request_id = %current_request_id(), error = %error, "page request failed");
    }
    // A refusal's code names the rule, so a person can quote it; a fault's code says nothing.
    let code = (!status.is_server_error()).then(|| error.code().as_str());
    let mut page = match wording {
        Some((title, message)) => coded_error_page(status, title, message, code),
        None => {
            let (title, message) = failure_wording(error);
            coded_error_page(status, title, &message, code)
        }
    };
    // A browser (or a script driving one) is told when to come back, as the JSON surfaces do.
    if let Error::TooManyRequests { retry_after_secs } = error {
        page.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(*retry_after_secs),
        );
    }
    page
}

/// The title and message for each kind of failure. No wildcard arm: a new kind of failure gets
/// its own words.
fn failure_wording(error: &Error) -> (&'static str, String) {
    match error {
        Error::Invalid { .. }
        | Error::Conflict { .. }
        | Error::PayloadTooLarge { .. }
        | Error::UnsupportedContentType { .. } => ("That did not work", error.public_message()),
        Error::NotFound { .. } => ("Not found", error.public_message()),
        Error::WouldLockOut { .. } => ("Not saved: administrators would be locked out", error.public_message()),
        Error::SignInRefused { .. } => ("We couldn't sign you in", error.public_message()),
        Error::Unauthenticated(_) => ("Sign in again", error.public_message()),
        Error::Forbidden(_) | Error::Denied { .. } => {
            ("You don't have access to this", error.public_message())
        }
        Error::TooManyRequests { .. } => (
            "Too many attempts",
            "There have been too many attempts. Wait a few minutes and try again.".into(),
        ),
        Error::Unavailable(_) => (
            "Portcullis is briefly unavailable",
            "The service can't be reached right now and nothing was changed. Try again in a moment.".into(),
        ),
        Error::Internal(_) => (
            "Something went wrong",
            "This page could not be shown. Try again; if it keeps happening, give your administrator the details below.".into(),
        ),
    }
}

/// Shown after signing out when no application asked to be returned to.
pub fn signed_out_page() -> Response {
    render(
        "message.html",
        minijinja::context! {
            title => "You have signed out",
            message => "You have signed out of your account. It's a good idea to close all browser windows.",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::kernel::error::{ErrorCode, SignInErrorCode};

    async fn received(response: Response) -> (u16, String, String) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    /// Every variant as a person sees it: core's status, an HTML page with a title for the
    /// kind of failure, and never an internal detail.
    #[tokio::test]
    async fn every_error_becomes_a_page_with_cores_status() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::invalid("name", "The name is too long."),
                400,
                "That did not work",
            ),
            (
                Error::sign_in_refused(
                    SignInErrorCode::AccountDisabled,
                    "Your account has been disabled.",
                ),
                403,
                "We couldn&#x27;t sign you in",
            ),
            (
                Error::Unauthenticated("Your session ended.".into()),
                401,
                "Sign in again",
            ),
            (
                Error::Forbidden("Needs a role.".into()),
                403,
                "You don&#x27;t have access to this",
            ),
            (Error::not_found("group", "g1"), 404, "Not found"),
            (
                Error::Conflict {
                    code: ErrorCode::NamedLocationInUse,
                    message: "A policy names it.".into(),
                },
                409,
                "That did not work",
            ),
            (
                Error::PayloadTooLarge { limit: 10 },
                413,
                "That did not work",
            ),
            (
                Error::UnsupportedContentType {
                    message: "Send the form.".into(),
                },
                415,
                "That did not work",
            ),
            (
                Error::TooManyRequests {
                    retry_after_secs: 60,
                },
                429,
                "Too many attempts",
            ),
            (
                Error::Unavailable("db-7 down".into()),
                503,
                "Portcullis is briefly unavailable",
            ),
            (
                Error::Internal("db-7 refused".into()),
                500,
                "Something went wrong",
            ),
        ];
        for (error, status, title) in cases {
            let page = failure_page(&error);
            let retry_after = page
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_string());
            let expected_retry = match &error {
                Error::TooManyRequests { retry_after_secs } => Some(retry_after_secs.to_string()),
                _ => None,
            };
            assert_eq!(retry_after, expected_retry, "{error:?}");
            let (got, content_type, html) = received(page).await;
            assert_eq!(got, status, "{error:?}");
            assert!(content_type.starts_with("text/html"), "{content_type}");
            assert!(html.contains(title), "{title} in {html}");
            assert!(!html.contains("db-7"), "no internal detail: {html}");
        }
    }

    /// A page area's own words replace the defaults and never change the status.
    #[tokio::test]
    async fn a_page_areas_words_keep_cores_status() {
        let (status, _, html) = received(failure_page_as(
            &Error::not_found("sign-in", "f"),
            "This sign-in has expired",
            "Start again.",
        ))
        .await;
        assert_eq!(status, 404);
        assert!(html.contains("This sign-in has expired"));
        let unavailable = Error::Unavailable("db-7 down".into());
        let (status, _, html) = received(failure_page_as(
            &unavailable,
            "Security info isn't available right now",
            &unavailable.public_message(),
        ))
        .await;
        assert_eq!(status, 503);
        assert!(html.contains("Security info isn"), "{html}");
    }
}
