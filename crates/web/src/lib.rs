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
//! Each part of the surface takes only the services it needs, as an axum sub-state: the Graph
//! API [`GraphState`], the sign-in endpoints, pages and OAuth [`SignInState`], the admin portal
//! [`PortalState`], the probes [`OperationsState`]. None of them holds a store: web reaches the
//! database only through core's services.
//!
//! What it must never do: decide policy or validate domain rules itself (core does), speak SQL,
//! or show a caller an internal error's details. Failures render through one function per
//! surface, all on core's one status mapping: [`error::ApiError`] for JSON,
//! [`oauth::oauth_error`] for the OAuth endpoints, [`pages::failure_page`] for pages.

pub mod auth;
pub mod client_address;
pub mod cors;
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
pub mod rate_limit;
pub mod signin;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use metrics_exporter_prometheus::PrometheusHandle;
use portcullis_core::conditional_access::ConditionalAccess;
use portcullis_core::conditional_access::countries::Countries;
use portcullis_core::directory::Directory;
use portcullis_core::guard::analysis::PolicyAnalyzer;
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

/// Everything the server composed, handed over once at start. [`AppState::new`] splits it into
/// the sub-states each part of the HTTP surface may reach.
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
    /// The analyzer against the directory (`…/conditionalAccess/analyze`, the Analysis page).
    pub analyzer: PolicyAnalyzer,
    /// The address people and applications reach this server at, without a trailing slash.
    pub public_url: String,
    pub metrics: Option<PrometheusHandle>,
    pub pool_stats: Arc<dyn Fn() -> PoolStats + Send + Sync>,
    /// Whose forwarding headers name the client (see [`client_address`]).
    pub trusted_proxies: client_address::TrustedProxies,
    /// The anonymous endpoints' limits (see [`rate_limit`]).
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// The country of the client's address, for the facts of sign-in requests.
    pub countries: Countries,
}

/// What the Graph admin API's handlers may reach: the directory and the policies, never a
/// session or a sign-in flow.
pub struct GraphState {
    pub directory: Directory,
    pub conditional_access: ConditionalAccess,
    pub passes: TemporaryAccessPasses,
    pub passkeys: Passkeys,
    pub passwords: Passwords,
    pub sign_in_logs: SignInLogs,
    pub analyzer: PolicyAnalyzer,
    pub public_url: String,
}

/// What the sign-in endpoints and pages, security info and the OAuth/OIDC endpoints may reach.
pub struct SignInState {
    pub sign_ins: SignIns,
    pub sessions: Sessions,
    /// Signing in with a pass outside a flow (`/auth/tap`).
    pub passes: TemporaryAccessPasses,
    /// A person's own recent sign-ins.
    pub sign_in_logs: SignInLogs,
    pub passkeys: Passkeys,
    pub passwords: Passwords,
    pub software_oath: SoftwareOath,
    pub oidc: Oidc,
    pub tokens: Arc<TokenService>,
    pub public_url: String,
    /// Every endpoint here that an anonymous caller reaches is limited (see [`rate_limit`]).
    pub rate_limits: Arc<rate_limit::RateLimits>,
}

/// What the admin portal's pages may reach (the portal's own sign-in check goes through
/// [`SignInState`]).
pub struct PortalState {
    pub directory: Directory,
    pub conditional_access: ConditionalAccess,
    pub passes: TemporaryAccessPasses,
    pub passkeys: Passkeys,
    pub sign_in_logs: SignInLogs,
    pub analyzer: PolicyAnalyzer,
    pub public_url: String,
}

/// Probes and metrics.
pub struct OperationsState {
    pub readiness: Readiness,
    pub metrics: Option<PrometheusHandle>,
    pub pool_stats: Arc<dyn Fn() -> PoolStats + Send + Sync>,
}

/// The router's state: one sub-state per part of the HTTP surface, each behind an `Arc` so that
/// a handler's `State<Arc<GraphState>>` (axum's `FromRef`) costs one reference count.
pub struct Parts {
    pub graph: Arc<GraphState>,
    pub sign_in: Arc<SignInState>,
    pub portal: Arc<PortalState>,
    pub operations: Arc<OperationsState>,
    /// Read by the request middleware, before any part of the surface is reached.
    pub trusted_proxies: client_address::TrustedProxies,
    /// Read when a sign-in request's facts are taken ([`extract::Facts`]).
    pub countries: Countries,
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(s: Services) -> Self {
        AppState(Arc::new(Parts {
            graph: Arc::new(GraphState {
                directory: s.directory.clone(),
                conditional_access: s.conditional_access.clone(),
                passes: s.passes.clone(),
                passkeys: s.passkeys.clone(),
                passwords: s.passwords.clone(),
                sign_in_logs: s.sign_in_logs.clone(),
                analyzer: s.analyzer.clone(),
                public_url: s.public_url.clone(),
            }),
            portal: Arc::new(PortalState {
                directory: s.directory,
                conditional_access: s.conditional_access,
                passes: s.passes.clone(),
                passkeys: s.passkeys.clone(),
                sign_in_logs: s.sign_in_logs.clone(),
                analyzer: s.analyzer,
                public_url: s.public_url.clone(),
            }),
            sign_in: Arc::new(SignInState {
                sign_ins: s.sign_ins,
                sessions: s.sessions,
                passes: s.passes,
                sign_in_logs: s.sign_in_logs,
                passkeys: s.passkeys,
                passwords: s.passwords,
                software_oath: s.software_oath,
                oidc: s.oidc,
                tokens: s.tokens,
                public_url: s.public_url,
                rate_limits: s.rate_limits,
            }),
            operations: Arc::new(OperationsState {
                readiness: s.readiness,
                metrics: s.metrics,
                pool_stats: s.pool_stats,
            }),
            trusted_proxies: s.trusted_proxies,
            countries: s.countries,
        }))
    }

    pub fn graph(&self) -> &GraphState {
        &self.0.graph
    }

    pub fn sign_in(&self) -> &SignInState {
        &self.0.sign_in
    }

    pub fn portal(&self) -> &PortalState {
        &self.0.portal
    }

    pub fn trusted_proxies(&self) -> &client_address::TrustedProxies {
        &self.0.trusted_proxies
    }

    pub fn countries(&self) -> &Countries {
        &self.0.countries
    }
}

impl FromRef<AppState> for Arc<GraphState> {
    fn from_ref(state: &AppState) -> Self {
        state.0.graph.clone()
    }
}

impl FromRef<AppState> for Arc<SignInState> {
    fn from_ref(state: &AppState) -> Self {
        state.0.sign_in.clone()
    }
}

impl FromRef<AppState> for Arc<PortalState> {
    fn from_ref(state: &AppState) -> Self {
        state.0.portal.clone()
    }
}

impl FromRef<AppState> for Arc<OperationsState> {
    fn from_ref(state: &AppState) -> Self {
        state.0.operations.clone()
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
        .merge(
            // What a single-page app calls from its own origin.
            oauth::browser_router()
                .merge(oidc::browser_router())
                .layer(cors::layer(&state)),
        )
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
            pages::router(&state).layer(axum::middleware::from_fn_with_state(
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
