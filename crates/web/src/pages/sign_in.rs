//! The sign-in page, `/signin`: one server-rendered page whose panels (identify, first factor,
//! what Conditional Access asks for, the "More information required" wizard, blocked, granted)
//! are driven by `/assets/signin.js` over the `/signin/flows` JSON API.
//!
//! `GET /signin?flow=ID` continues a flow someone else started (the OIDC authorize endpoint);
//! `GET /signin[?returnTo=/local/path]` starts a flow for the first-party application that owns
//! the return path ([`portcullis_core::directory::first_party`]) and, once it is granted, goes back there.
//! Either way the server reads the flow first, so an unknown or expired flow, a malformed link
//! or a flow of another session gets a friendly page with a way to start again, never JSON.
//!
//! What it must never do: decide a step (core does), follow a return path that is not a local
//! path on this server (an open redirect), or put anything secret in a URL.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_core::Error;
use portcullis_core::directory::first_party;
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::signin::FlowState;
use portcullis_core::signin::Step;
use portcullis_core::signin::could_name_a_flow;
use serde::{Deserialize, Serialize};

use super::{failure_page_as, render};
use crate::extract::Facts;
use crate::passkeys::MaybeSession;
use crate::rate_limit::{WithinLimit, endpoint};
use crate::{AppState, SignInState};

pub(crate) const TEMPLATES: &[(&str, &str)] = &[(
    "signin/signin.html",
    include_str!("../../templates/signin/signin.html"),
)];

const SCRIPT: &str = include_str!("../../assets/signin.js");

/// Where a sign-in started from the pages goes when no return path is given.
pub const DEFAULT_RETURN_PATH: &str = "/my/security-info";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signin", get(page))
        .route("/assets/signin.js", get(script))
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SignInQuery {
    flow: Option<String>,
    return_to: Option<String>,
}

/// A return path is accepted only when it is a path on this server: it starts with one `/`, is
/// not protocol-relative (`//host`, `/\host`, which browsers treat as another site), and holds
/// no control characters or backslashes. Anything else is refused, not repaired.
pub fn local_return_path(candidate: &str) -> Option<&str> {
    let ok = candidate.len() <= 512
        && candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains('\\')
        && !candidate.chars().any(char::is_control);
    ok.then_some(candidate)
}

#[derive(Serialize)]
struct Page<'a> {
    flow: &'a FlowState,
    return_to: &'a str,
    /// The panel shown before any script runs.
    panel: &'static str,
    /// The other ways in the tenant's methods policy allows, offered beside the passkey.
    offer: Offer,
}

/// Which first factors besides a passkey the page offers: only the ones the tenant's
/// authentication methods policy has on. Decided for the tenant, never for the person typed
/// in, so the choices say nothing about whether an account exists or what it holds.
#[derive(Serialize)]
struct Offer {
    password: bool,
    temporary_access_pass: bool,
}

impl Offer {
    /// The methods policy as it stands; when it cannot be read, every way is offered and the
    /// step itself refuses what is off.
    async fn of_tenant(state: &SignInState) -> Offer {
        let password = state.passwords.configuration().await;
        let pass = state.passes.configuration().await;
        Offer {
            password: password.map(|c| c.state == "enabled").unwrap_or(true),
            temporary_access_pass: pass.map(|c| c.state == "enabled").unwrap_or(true),
        }
    }
}

fn bad_link(message: &str) -> Response {
    failure_page_as(
        &Error::invalid("flow", message),
        "This sign-in link isn't valid",
        message,
    )
}

/// The friendly page for a flow that cannot be continued. The status is core's, for the error
/// as the page sees it: this page's address names the flow, so a flow that is unknown or has
/// run out of time is the page not being found (404) — while the flow's JSON steps, which take
/// the id as an input, answer 400 `signInFlowNotFound`.
fn flow_error(error: &Error, flow_id: &str, return_to: &str) -> Response {
    let restart =
        format!("Start again from the application you were signing in to, or go to {return_to}.");
    match error {
        Error::Invalid {
            code: ErrorCode::SignInFlowNotFound,
            ..
        } => failure_page_as(
            &Error::not_found("sign-in", flow_id),
            "This sign-in has expired",
            &format!(
                "A sign-in has to be finished within 10 minutes, and this one is unknown or has run out of time. {restart}"
            ),
        ),
        Error::Conflict {
            code: ErrorCode::SignInFlowSessionMismatch,
            ..
        } => failure_page_as(
            error,
            "This sign-in belongs to another browser session",
            &format!("Someone started this sign-in in another session. {restart}"),
        ),
        other => failure_page_as(
            other,
            "We couldn't continue this sign-in",
            &other.public_message(),
        ),
    }
}

async fn page(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::SignInPage>,
    Facts(facts): Facts,
    MaybeSession(session): MaybeSession,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(query) = serde_urlencoded::from_str::<SignInQuery>(query.as_deref().unwrap_or(""))
    else {
        return bad_link("The address has a malformed query string.");
    };
    let return_to = match query.return_to.as_deref() {
        None | Some("") => DEFAULT_RETURN_PATH,
        Some(candidate) => match local_return_path(candidate) {
            Some(path) => path,
            None => {
                return bad_link(
                    "After signing in you can only be sent to a page of this site, and this link names another place.",
                );
            }
        },
    };
    let sign_ins = &state.sign_ins;
    let flow = match query.flow.as_deref() {
        Some(id) => {
            if !could_name_a_flow(id) {
                return bad_link("The sign-in named in this address does not exist.");
            }
            sign_ins.current(id, session.as_ref()).await
        }
        None => {
            let app = first_party::application_for_path(return_to);
            sign_ins.start(&app.to_string(), &facts).await
        }
    };
    let flow = match flow {
        Ok(flow) => flow,
        // As for a flow: the application this page was asked to sign in to is not found.
        Err(Error::Invalid {
            code: ErrorCode::UnknownClient,
            ..
        }) => {
            return failure_page_as(
                &Error::not_found("application", return_to),
                "This application isn't known here",
                "The application you are signing in to is not registered with this organization. Tell its owner or your administrator.",
            );
        }
        Err(e) => return flow_error(&e, query.flow.as_deref().unwrap_or_default(), return_to),
    };
    let panel = match flow.status {
        Step::Identify => "identify",
        Step::FirstFactor => "first-factor",
        Step::Requirements => "requirements",
        Step::RegistrationNeeded => "register-intro",
        Step::ProveRegistration => "prove",
        Step::Granted | Step::Completed => "granted",
        Step::Blocked => "blocked",
    };
    let status = if flow.status == Step::Blocked {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut response = render(
        "signin/signin.html",
        Page {
            flow: &flow,
            return_to,
            panel,
            offer: Offer::of_tenant(&state).await,
        },
    );
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::local_return_path;
    use serde_json::json;

    /// Every panel's template renders for the states the flow API gives (fields it omits
    /// included), and what a person typed is escaped.
    #[test]
    fn the_page_renders_for_every_state() {
        let template = super::super::TEMPLATES
            .get_template("signin/signin.html")
            .expect("the template exists");
        let states = [
            json!({"flowId": "f", "status": "identify", "appId": "a", "appDisplayName": "<b>App</b>"}),
            json!({"flowId": "f", "status": "requirements", "appId": "a", "appDisplayName": "App",
                   "userPrincipalName": "joni@contoso.com", "methods": ["fido2", "softwareOath"]}),
            json!({"flowId": "f", "status": "registrationNeeded", "appId": "a", "appDisplayName": "App",
                   "policies": [{"id": "p", "displayName": "Passkey test: enforcement"}]}),
            json!({"flowId": "f", "status": "blocked", "appId": "a", "appDisplayName": "App",
                   "policies": [{"id": "p", "displayName": "Passkey test: unsupported platforms"}],
                   "details": {"errorCode": 53003, "correlationId": "c", "timestamp": "t",
                               "appId": "a", "appDisplayName": "App", "platform": "Android", "ipAddress": null}}),
        ];
        for flow in states {
            let html = template
                .render(
                    json!({"flow": flow, "return_to": "/my/security-info", "panel": "identify",
                   "offer": {"password": true, "temporary_access_pass": true}}),
                )
                .unwrap_or_else(|e| panic!("{flow}: {e:#}"));
            assert!(!html.contains("<b>App</b>"), "escaped");
        }
    }

    #[test]
    fn only_local_paths_are_return_paths() {
        assert_eq!(
            local_return_path("/my/security-info"),
            Some("/my/security-info")
        );
        assert_eq!(
            local_return_path("/admin?tab=users"),
            Some("/admin?tab=users")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "my/security-info",
            "/a\nb",
        ] {
            assert_eq!(local_return_path(bad), None, "{bad}");
        }
    }
}
