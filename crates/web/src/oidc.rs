//! OpenID Connect over HTTP: discovery, the authorization endpoint, userinfo, revocation and
//! RP-initiated logout. The token endpoint's person grants (`authorization_code`,
//! `refresh_token`) are in [`crate::oauth`] beside client credentials.
//!
//! `/authorize` never redirects to an address it has not matched exactly against the
//! application's registration: an unknown client or redirect URI gets an error page. Once the
//! redirect URI is trusted, errors go back to it as OAuth errors with `state` untouched.
//!
//! What it must never do: decide (core's [`Oidc`] and the sign-in flow do), or put a code or a
//! token anywhere but the registered redirect URI and the token endpoint's response.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use portcullis_core::Error;
use portcullis_core::oidc::{
    AuthorizationResponse, AuthorizeNext, AuthorizeParams, AuthorizeRefusal, LogoutRequest,
    OAuthErrorCode, ResponseMode,
};
use portcullis_core::session::SESSION_COOKIE;
use portcullis_core::signin::FlowState;
use serde::Deserialize;

use crate::extract::Facts;
use crate::pages::failure_page_as;
use crate::passkeys::MaybeSession;
use crate::rate_limit::{WithinLimit, endpoint};
use crate::{AppState, SignInState};

/// The endpoints browsers navigate to: authorization and logout.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth2/v2.0/authorize",
            get(authorize).post(authorize_posted),
        )
        .route("/oauth2/v2.0/logout", get(logout).post(logout_posted))
}

/// Discovery, userinfo and revocation: called by single-page apps from their own origin, so
/// the caller puts them behind [`crate::cors`].
pub fn browser_router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oidc/userinfo", get(userinfo).post(userinfo))
        .route("/oauth2/v2.0/revoke", axum::routing::post(revoke))
}

async fn discovery(State(state): State<Arc<SignInState>>) -> Response {
    let mut r = Json(state.oidc.discovery(&state.public_url)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// Minimal HTML escaping for the one page built here without a template (the form_post
/// response must not depend on the page templates).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sends a code or an error to the application: a 303 to its redirect URI, or for
/// `response_mode=form_post` a page that posts the parameters there.
pub(crate) fn respond(response: &AuthorizationResponse) -> Response {
    let mut r = match response.response_mode {
        ResponseMode::Query => Redirect::to(&response.url()).into_response(),
        ResponseMode::FormPost => {
            let fields: String = response
                .params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            Html(format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Returning to the application</title></head>\
                 <body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{fields}\
                 <noscript><p>Select Continue to return to the application.</p><button type=\"submit\">Continue</button></noscript>\
                 </form></body></html>",
                escape(&response.redirect_uri)
            ))
            .into_response()
        }
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Where the browser goes to sign in for a flow.
pub fn sign_in_page(flow: &FlowState) -> String {
    format!("/signin?flow={}", flow.flow_id)
}

/// The page for a request whose query or body cannot be read (`target`).
fn unreadable(target: &'static str, title: &str, message: &'static str) -> Response {
    failure_page_as(&Error::invalid(target, message), title, message)
}

fn unreadable_request(target: &'static str) -> Response {
    unreadable(
        target,
        "This sign-in request is not valid",
        "The application sent a request Portcullis cannot read. Go back to the application and try again.",
    )
}

/// `GET /oauth2/v2.0/authorize`: the parameters in the query.
async fn authorize(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::Authorize>,
    Facts(facts): Facts,
    MaybeSession(session): MaybeSession,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return unreadable_request("query");
    };
    authorize_with(&state, facts, session, params).await
}

/// `POST /oauth2/v2.0/authorize`: the same parameters form-encoded in the body (OpenID Connect
/// Core §3.1.2.1 requires both). A cross-site POST carries no `SameSite=Lax` session cookie, so
/// such a request never signs anyone in silently: it finds no session and asks for a sign-in
/// (or answers `login_required` to `prompt=none`).
async fn authorize_posted(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::Authorize>,
    Facts(facts): Facts,
    MaybeSession(session): MaybeSession,
    form: Result<axum::Form<AuthorizeParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(params)) = form else {
        return unreadable_request("body");
    };
    authorize_with(&state, facts, session, params).await
}

async fn authorize_with(
    state: &SignInState,
    facts: portcullis_core::logs::sign_in::RequestFacts,
    session: Option<portcullis_core::session::AuthSession>,
    params: AuthorizeParams,
) -> Response {
    let provider = &state.oidc;
    let (app, request) = match provider.validate(&params).await {
        Ok(Ok(valid)) => valid,
        Ok(Err(AuthorizeRefusal::NoRedirect { code, message })) => {
            tracing::info!(
                code = code.as_str(),
                "authorization request refused without redirect"
            );
            let shown = format!("{message} Contact the application's owner. (Error: {code})");
            return failure_page_as(
                &Error::Invalid {
                    code,
                    target: None,
                    message,
                },
                "We can't sign you in to this application",
                &shown,
            );
        }
        Ok(Err(AuthorizeRefusal::Redirect(response))) => return respond(&response),
        Err(e) => return crate::pages::failure_page(&e),
    };
    let sign_ins = state.sign_ins.clone();
    match provider
        .authorize(&sign_ins, &app, request, session, &facts)
        .await
    {
        Ok(AuthorizeNext::Respond(response)) => respond(&response),
        Ok(AuthorizeNext::SignIn { flow }) => Redirect::to(&sign_in_page(&flow)).into_response(),
        Err(e) => crate::pages::failure_page(&e),
    }
}

/// The access token of a userinfo request: in the `Authorization: Bearer` header (RFC 6750
/// §2.1) or, for a form-encoded POST, as `access_token` in the body (§2.2). Using both at once
/// is refused (§2: "clients MUST NOT use more than one method").
enum Presented {
    Token(String),
    Missing,
    Invalid(&'static str),
}

fn presented_token(headers: &HeaderMap, body: &[u8]) -> Presented {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| {
            t.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let body_token = if form && !body.is_empty() {
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
            Ok(pairs) => {
                let mut tokens = pairs.into_iter().filter(|(k, _)| k == "access_token");
                match (tokens.next(), tokens.next()) {
                    (Some(_), Some(_)) => {
                        return Presented::Invalid("The parameter 'access_token' is repeated.");
                    }
                    (first, _) => first.map(|(_, v)| v),
                }
            }
            Err(_) => {
                return Presented::Invalid("The body must be application/x-www-form-urlencoded.");
            }
        }
    } else {
        None
    };
    match (header_token, body_token) {
        (Some(_), Some(_)) => Presented::Invalid(
            "The access token was sent both in the Authorization header and in the body; send it once.",
        ),
        (Some(t), None) | (None, Some(t)) => Presented::Token(t),
        (None, None) => Presented::Missing,
    }
}

async fn userinfo(
    State(state): State<Arc<SignInState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match presented_token(&headers, &body) {
        Presented::Token(token) => token,
        Presented::Missing => {
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        Presented::Invalid(message) => {
            return crate::oauth::refuse(OAuthErrorCode::InvalidRequest, message);
        }
    };
    match state.oidc.userinfo(token.trim()).await {
        Ok(Ok(info)) => Json(info).into_response(),
        Ok(Err(e)) => crate::oauth::oauth_error(&e),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

async fn revoke(
    State(state): State<Arc<SignInState>>,
    _: WithinLimit<endpoint::Token>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match crate::oauth::read_form(&body) {
        Ok(form) => form,
        Err(r) => return *r,
    };
    let client = match crate::oauth::client_auth(&headers, &form) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Err(refused) = state
        .rate_limits
        .admit_client(crate::oauth::named_client(&client))
    {
        return refused.response();
    }
    let Some(token) = form.get("token") else {
        return crate::oauth::refuse(
            OAuthErrorCode::InvalidRequest,
            "The parameter 'token' is missing.",
        );
    };
    match state.oidc.revoke(&client, token).await {
        Ok(Ok(())) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(e)) => crate::oauth::oauth_error(&e),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

fn unreadable_logout(target: &'static str) -> Response {
    unreadable(
        target,
        "This sign-out request is not valid",
        "The application sent a sign-out request Portcullis cannot read.",
    )
}

/// `GET /oauth2/v2.0/logout`.
async fn logout(
    State(state): State<Arc<SignInState>>,
    MaybeSession(session): MaybeSession,
    query: Result<Query<LogoutParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return unreadable_logout("query");
    };
    logout_with(&state, session, params).await
}

/// `POST /oauth2/v2.0/logout`: the same parameters form-encoded (RP-Initiated Logout 1.0 §2:
/// the end-session endpoint takes both).
async fn logout_posted(
    State(state): State<Arc<SignInState>>,
    MaybeSession(session): MaybeSession,
    form: Result<axum::Form<LogoutParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(params)) = form else {
        return unreadable_logout("body");
    };
    logout_with(&state, session, params).await
}

async fn logout_with(
    state: &SignInState,
    session: Option<portcullis_core::session::AuthSession>,
    params: LogoutParams,
) -> Response {
    let outcome = state
        .oidc
        .end_session(
            session.as_ref(),
            LogoutRequest {
                id_token_hint: params.id_token_hint.as_deref(),
                client_id: params.client_id.as_deref(),
                post_logout_redirect_uri: params.post_logout_redirect_uri.as_deref(),
                state: params.state.as_deref(),
            },
        )
        .await;
    let clear = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .expect("static cookie");
    let mut r = match outcome {
        Ok(Ok(Some(url))) => Redirect::to(&url).into_response(),
        Ok(Ok(None)) => crate::pages::signed_out_page(),
        Ok(Err(e)) => failure_page_as(
            &e,
            "You have been signed out",
            &format!(
                "{} Close this window, or go back to the application.",
                e.public_message()
            ),
        ),
        Err(e) => return crate::pages::failure_page(&e),
    };
    r.headers_mut().insert(header::SET_COOKIE, clear);
    r
}
