//! # portcullis-web — Portcullis over HTTP
//!
//! This crate owns the HTTP surface: the Microsoft Graph–compatible admin API under
//! `/graph/v1.0/`, the OAuth 2.0 token endpoint and key set, health and readiness probes,
//! Prometheus metrics and the OpenAPI document.
//!
//! Handlers are thin. They extract plain facts from the request (body, query options, the
//! caller's verified token, the correlation id) and call core; core decides. A handler states
//! the permission it needs by the type of its [`extract::Authorized`] argument, and core's
//! operations cannot be called without that capability.
//!
//! What it must never do: decide policy or validate domain rules itself (core does), speak SQL,
//! or show a caller an internal error's details. Every failure goes through
//! [`error::ApiError`], which uses core's one status mapping.

pub mod auth;
pub mod error;
pub mod extract;
pub mod graph;
pub mod health;
pub mod middleware;
pub mod my;
pub mod oauth;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod passkeys;
pub mod signin;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use portcullis_core::conditional_access::ConditionalAccess;
use portcullis_core::directory::Directory;
use portcullis_core::logs::sign_in::SignInLogs;
use portcullis_core::methods::passkeys::Passkeys;
use portcullis_core::methods::password::Passwords;
use portcullis_core::methods::tap::TemporaryAccessPasses;
use portcullis_core::methods::totp::SoftwareOath;
use portcullis_core::oidc::Oidc;
use portcullis_core::oidc::tokens::TokenService;
use portcullis_core::session::Sessions;
use portcullis_core::signin::SignIns;
use portcullis_core::store::Readiness;

/// The largest request body accepted (a Graph export of 240 policies fits easily).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Database connection pool figures, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

pub struct Services {
    pub directory: Directory,
    pub sessions: Sessions,
    pub sign_ins: SignIns,
    pub oidc: Oidc,
    pub sign_in_logs: SignInLogs,
    pub readiness: Readiness,
    pub conditional_access: ConditionalAccess,
    pub passes: TemporaryAccessPasses,
    pub passwords: Passwords,
    pub software_oath: SoftwareOath,
    pub tokens: Arc<TokenService>,
    pub passkeys: Passkeys,
    /// The address people and applications reach this server at, without a trailing slash.
    pub public_url: String,
    pub metrics: Option<PrometheusHandle>,
    pub pool_stats: Arc<dyn Fn() -> PoolStats + Send + Sync>,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (graph, api) = graph::router().split_for_parts();
    let api = openapi::finish(api);
    Router::new()
        .nest(
            "/graph/v1.0",
            graph.route(
                "/openapi.json",
                axum::routing::get(move || async move { axum::Json(api) }),
            ),
        )
        .merge(oauth::router())
        .merge(oidc::router())
        .merge(
            // The endpoints a browser calls with the session cookie.
            auth::router()
                .merge(my::router())
                .merge(passkeys::router())
                .merge(signin::router())
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::same_origin,
                )),
        )
        .merge(
            // The pages, whose forms post HTML form bodies.
            pages::router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                middleware::same_origin_forms,
            )),
        )
        .merge(health::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}
