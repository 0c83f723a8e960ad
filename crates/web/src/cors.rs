//! Cross-origin access for browser-based applications (CORS) to the endpoints a single-page
//! app calls from its own origin: discovery, the key set, token, userinfo and revocation.
//!
//! Which origins may call is core's decision ([`portcullis_core::oidc::Oidc::allows_browser_origin`]:
//! the origins of registered single-page-application redirect URIs and the configured extra
//! ones); this module only speaks the protocol, through `tower-http`'s CORS layer, which
//! answers preflights and sets `Vary: Origin`. What it must never do: answer `*`, allow
//! credentials (these endpoints take tokens and client authentication, never the session
//! cookie), or reach the endpoints that use the cookie (the sign-in flow, the pages, the
//! authorization endpoint, which is a navigation and needs no CORS).

use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::AppState;

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for the browser-facing OAuth and OpenID Connect endpoints.
pub fn layer(state: &AppState) -> CorsLayer {
    let sign_in = state.0.sign_in.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, _parts: &axum::http::request::Parts| {
                let sign_in = sign_in.clone();
                async move {
                    let Ok(origin) = origin.to_str() else {
                        return false;
                    };
                    match sign_in.oidc.allows_browser_origin(origin).await {
                        Ok(allowed) => allowed,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not read the allowed browser origins");
                            false
                        }
                    }
                }
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(PREFLIGHT_MAX_AGE)
}
