//! The pages people see, rendered on the server from templates compiled into the binary: the
//! sign-in pages, security info and the admin portal. One layout (`layout.html`), one stylesheet
//! (`/assets/portcullis.css`), and JavaScript only where a browser API needs it (WebAuthn,
//! copying text).
//!
//! Pages call the same core services as the JSON endpoints and never decide anything themselves.
//! What they must never do: show a raw error (every failure becomes [`error_page`]), put a
//! secret in a URL, or render text without escaping (templates end in `.html`, so minijinja
//! escapes every value).

pub mod admin;
pub mod security_info;
pub mod sign_in;

use std::sync::LazyLock;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;
use serde::Serialize;

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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/portcullis.css", get(stylesheet))
        .route("/assets/portcullis.js", get(script))
        .merge(sign_in::router())
        .merge(security_info::router())
        .merge(admin::router())
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
    let context = minijinja::context! {
        title => title,
        message => message,
        status => status.as_u16(),
        request_id => current_request_id(),
    };
    match TEMPLATES
        .get_template("error.html")
        .and_then(|t| t.render(context))
    {
        Ok(html) => (status, no_store(), Html(html)).into_response(),
        Err(_) => (status, no_store(), "Something went wrong.").into_response(),
    }
}

/// The friendly page for a core error: its status, and a message a person can act on. Internal
/// details never reach the page (the log has them, under the request id shown).
pub fn failure_page(error: &portcullis_core::Error) -> Response {
    use portcullis_core::Error;
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(request_id = %current_request_id(), error = %error, "page request failed");
    }
    let (title, message) = match error {
        Error::Invalid { .. } | Error::Conflict { .. } | Error::NotFound { .. } => {
            ("This request can't be completed", error.public_message())
        }
        Error::Unauthenticated(_) => ("Sign in again", error.public_message()),
        Error::Forbidden(_) => ("You don't have access to this", error.public_message()),
        Error::TooManyRequests { .. } => (
            "Too many attempts",
            "There have been too many attempts. Wait a few minutes and try again.".into(),
        ),
        Error::Unavailable(_) => (
            "Portcullis is briefly unavailable",
            "The service can't be reached right now and nothing was changed. Try again in a moment.".into(),
        ),
        _ => (
            "Something went wrong",
            "This page could not be shown. Try again; if it keeps happening, give your administrator the details below.".into(),
        ),
    };
    error_page(status, title, &message)
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
