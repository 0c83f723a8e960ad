//! Security info: `/my/security-info` (and `/mysecurityinfo`, which redirects there) lists the
//! person's sign-in methods and lets them add a passkey (on this device, or on a phone or
//! tablet through "Having trouble?"), an authenticator app, change their password, and rename
//! or remove methods; `/my/sign-ins` lists their own recent sign-ins.
//!
//! The pages are rendered here from core's answers; changes go through the `/my/…` JSON
//! endpoints from `/assets/security-info.js`, where core enforces the recent-sign-in rule.
//!
//! Every visit needs a session that Conditional Access grants for the first-party "My Account"
//! application now, with this request's facts ([`SignIns::session_may_use`]): a session whose
//! sign-in ended blocked, or one that no longer meets a policy, is sent to sign in instead.
//!
//! What it must never do: show another person's data (everything is read by the session's user
//! id), or render a method, a name or a log field without escaping.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use portcullis_core::Error;
use portcullis_core::directory::first_party::MY_ACCOUNT_APP_ID;
use portcullis_core::directory::model::User;
use portcullis_core::logs::sign_in::SignInLogEntry;
use portcullis_core::session::AuthSession;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{failure_page_as, render};
use crate::extract::Facts;
use crate::passkeys::MaybeSession;
use crate::{AppState, SignInState};

pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    (
        "my/security-info.html",
        include_str!("../../templates/my/security-info.html"),
    ),
    (
        "my/sign-ins.html",
        include_str!("../../templates/my/sign-ins.html"),
    ),
    ("my/nav.html", include_str!("../../templates/my/nav.html")),
    ("my/tabs.html", include_str!("../../templates/my/tabs.html")),
];

const SCRIPT: &str = include_str!("../../assets/security-info.js");

pub const SECURITY_INFO_PATH: &str = "/my/security-info";
pub const MY_SIGN_INS_PATH: &str = "/my/sign-ins";
/// How many of their own sign-ins a person sees.
const MY_SIGN_INS_SHOWN: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/mysecurityinfo",
            get(|| async { Redirect::to(SECURITY_INFO_PATH) }),
        )
        .route(SECURITY_INFO_PATH, get(security_info))
        .route(MY_SIGN_INS_PATH, get(my_sign_ins))
        .route("/assets/security-info.js", get(script))
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

/// A moment as every page writes it (UTC, to the minute); the template's `moment` filter makes
/// it a `<time>` the browser shows in its own zone.
fn when(at: OffsetDateTime) -> String {
    super::admin::when(at)
}

fn sign_in_again(path: &str) -> Response {
    Redirect::to(&format!("/signin?returnTo={path}")).into_response()
}

/// Whatever failed reading security info (the cause is logged where it happened), the page
/// says the service is unavailable: nothing was changed, and trying again is the person's move.
fn unavailable() -> Response {
    failure_page_as(
        &Error::Unavailable("security info could not be read".into()),
        "Security info isn't available right now",
        "We couldn't read your sign-in methods. Try again in a moment.",
    )
}

/// The signed-in person, or the response that sends them to sign in.
async fn signed_in(
    state: &SignInState,
    facts: &portcullis_core::logs::sign_in::RequestFacts,
    session: Option<AuthSession>,
    path: &str,
) -> Result<(AuthSession, User), Response> {
    let Some(session) = session else {
        return Err(sign_in_again(path));
    };
    match state
        .sign_ins
        .session_may_use(&session, facts, MY_ACCOUNT_APP_ID)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(sign_in_again(path)),
        Err(e) => {
            tracing::error!(error = %e, "could not check access to security info");
            return Err(unavailable());
        }
    }
    match state.sessions.person(&session).await {
        Ok(Some(user)) => Ok((session, user)),
        Ok(None) => Err(sign_in_again(path)),
        Err(_) => Err(unavailable()),
    }
}

#[derive(Serialize)]
struct Method {
    /// `passkey`, `authenticatorApp` or `password`.
    kind: &'static str,
    id: String,
    name: String,
    /// What it is: the passkey's model, "Authenticator app", "Password".
    detail: String,
    created: String,
    last_used: Option<String>,
}

#[derive(Deserialize, Default)]
struct SecurityInfoQuery {
    done: Option<String>,
}

#[derive(Serialize)]
struct SecurityInfoPage {
    user: User,
    methods: Vec<Method>,
    has_password: bool,
    /// What the person just did, for the confirmation at the top; only known words are shown.
    done: Option<&'static str>,
    /// Whether the session may add methods now (a recent passkey sign-in or a pass).
    may_add: bool,
    /// Why Conditional Access does not let this session change its methods from here, if it
    /// does not: the same decision the `/my/…` endpoints apply.
    policy_refusal: Option<String>,
}

async fn security_info(
    State(state): State<Arc<SignInState>>,
    Facts(facts): Facts,
    MaybeSession(session): MaybeSession,
    RawQuery(query): RawQuery,
) -> Response {
    let (session, user) = match signed_in(&state, &facts, session, SECURITY_INFO_PATH).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let passkeys = state.passkeys.my_passkeys(&session).await;
    let apps = state.software_oath.list(user.id).await;
    let password = state.passwords.last_set(user.id).await;
    let (Ok(passkeys), Ok(apps), Ok(password)) = (passkeys, apps, password) else {
        return unavailable();
    };
    let mut methods: Vec<Method> = passkeys
        .iter()
        .map(|p| Method {
            kind: "passkey",
            id: p.id.to_string(),
            name: p.display_name.clone(),
            // The model from the configured metadata (or the well-known list), so two passkeys
            // of one person read apart; "Unknown model" when neither names it.
            detail: format!(
                "{} · {}",
                if p.passkey_type == "synced" {
                    "Passkey (synced)"
                } else {
                    "Passkey (device-bound)"
                },
                p.model.as_deref().unwrap_or("Unknown model")
            ),
            created: when(p.created_date_time),
            last_used: p.last_used_date_time.map(when),
        })
        .collect();
    methods.extend(apps.iter().map(|a| Method {
        kind: "authenticatorApp",
        id: a.id.to_string(),
        name: a.display_name.clone(),
        detail: "Authenticator app (time-based code)".to_string(),
        created: when(a.created_date_time),
        last_used: None,
    }));
    if let Some(set) = &password {
        methods.push(Method {
            kind: "password",
            id: String::new(),
            name: "Password".to_string(),
            detail: "Password".to_string(),
            created: when(*set),
            last_used: None,
        });
    }
    // An unreadable query only loses the confirmation; the page itself is still right.
    let done = serde_urlencoded::from_str::<SecurityInfoQuery>(query.as_deref().unwrap_or(""))
        .ok()
        .and_then(|q| q.done)
        .and_then(|d| match d.as_str() {
            "added" => Some("Your passkey was added. You can use it to sign in now."),
            "renamed" => Some("The passkey was renamed."),
            "deleted" => Some("The sign-in method was removed."),
            "app" => Some("Your authenticator app was added."),
            "password" => Some("Your password was changed."),
            _ => None,
        });
    let may_add = session.may_register_methods(state.sessions.now()).is_ok();
    let decision =
        portcullis_core::signin::security_info::may_change(&state.sign_ins, &session, &facts).await;
    let policy_refusal = match decision {
        Ok(()) => None,
        Err(portcullis_core::Error::Forbidden(message)) => Some(message),
        Err(_) => return unavailable(),
    };
    render(
        "my/security-info.html",
        SecurityInfoPage {
            user,
            methods,
            has_password: password.is_some(),
            done,
            may_add,
            policy_refusal,
        },
    )
}

#[derive(Serialize)]
struct SignInRow {
    when: String,
    app: String,
    /// `success`, `interrupted` or `failure`.
    result: &'static str,
    reason: Option<String>,
    methods: String,
    device: String,
    ip_address: String,
    correlation_id: String,
}

fn row(entry: &SignInLogEntry) -> SignInRow {
    let code = entry.status.error_code;
    let result = match code {
        0 => "success",
        signin_log_codes::STRONG_AUTH | signin_log_codes::MORE_INFO => "interrupted",
        _ => "failure",
    };
    let mut methods: Vec<&str> = Vec::new();
    for d in &entry.authentication_details {
        if !methods.contains(&d.authentication_method.as_str()) {
            methods.push(&d.authentication_method);
        }
    }
    let device = [
        entry.device_detail.operating_system.as_str(),
        entry.device_detail.browser.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" · ");
    SignInRow {
        when: when(entry.created_date_time),
        app: entry.app_display_name.clone(),
        result,
        reason: entry.status.failure_reason.clone(),
        methods: methods.join(", "),
        device,
        ip_address: entry.ip_address.clone().unwrap_or_default(),
        correlation_id: entry.correlation_id.to_string(),
    }
}

/// Entra's interrupt codes, which a person should read as "asked for more", not "failed".
mod signin_log_codes {
    pub const STRONG_AUTH: u32 = portcullis_core::signin::step::STRONG_AUTH_REQUIRED;
    pub const MORE_INFO: u32 = portcullis_core::signin::step::MORE_INFORMATION_REQUIRED;
}

#[derive(Serialize)]
struct SignInsPage {
    user: User,
    sign_ins: Vec<SignInRow>,
}

async fn my_sign_ins(
    State(state): State<Arc<SignInState>>,
    Facts(facts): Facts,
    MaybeSession(session): MaybeSession,
) -> Response {
    let (_session, user) = match signed_in(&state, &facts, session, MY_SIGN_INS_PATH).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(entries) = state
        .sign_in_logs
        .recent_for_user(user.id, MY_SIGN_INS_SHOWN)
        .await
    else {
        return unavailable();
    };
    render(
        "my/sign-ins.html",
        SignInsPage {
            user,
            sign_ins: entries.iter().map(row).collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_pages_render_with_and_without_methods() {
        let user =
            json!({"displayName": "Grady <Archie>", "userPrincipalName": "grady@contoso.com"});
        let info = super::super::TEMPLATES
            .get_template("my/security-info.html")
            .expect("template");
        for methods in [
            json!([]),
            json!([{"kind": "passkey", "id": "1", "name": "<i>Pixel</i>", "detail": "Passkey", "created": "x", "last_used": null},
                   {"kind": "password", "id": "", "name": "Password", "detail": "Password", "created": "x", "last_used": null}]),
        ] {
            let html = info
                .render(json!({"user": user, "methods": methods, "has_password": true, "done": null, "may_add": false, "policy_refusal": null}))
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert!(!html.contains("<i>Pixel</i>") && !html.contains("<Archie>"));
        }
        let sign_ins = super::super::TEMPLATES
            .get_template("my/sign-ins.html")
            .expect("template");
        let row = json!({"when": "x", "app": "My Account", "result": "interrupted", "reason": "r",
                         "methods": "Passkey", "device": "Windows", "ip_address": "", "correlation_id": "c"});
        sign_ins
            .render(json!({"user": user, "sign_ins": [row]}))
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}
