//! How a sign-in for an application ends: the grant that records who signed in to which
//! application and how, and the one-use authorization code the browser carries back to it.
//!
//! The sign-in flow commits the grant and code in the same transaction that completes it, so a
//! code exists exactly when the flow says it was issued. The OAuth protocol around it (the
//! authorize request's validation, the token endpoint, refresh tokens, keys) is
//! [`crate::oidc`]'s, which stands on this module and never the reverse.

use portcullis_policy::{
    MULTIFACTOR_STRENGTH_ID, PASSWORDLESS_STRENGTH_ID, PHISHING_RESISTANT_STRENGTH_ID,
    SatisfiedMethod, built_in_strength, built_in_strengths,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::split_token::{self, TokenKey};
use crate::session::AuthSession;
use crate::signin::flow::{SignInFlow, satisfied_methods};
use crate::signin::store::SignInChange as Change;
use crate::signin::store::SignInStore;

/// An authorization code is redeemable for this long (RFC 6749 §4.1.2 recommends at most 10
/// minutes; the code travels through the browser, so shorter is better).
pub const CODE_LIFETIME: Duration = Duration::minutes(5);

/// However often it is refreshed, an authorization ends after this long.
pub const GRANT_LIFETIME: Duration = Duration::days(90);

/// How the code is handed back to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// A validated authorization request, kept with the sign-in flow until the code is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRequest {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// `prompt=login` (or `select_account`): do not reuse a session.
    #[serde(default)]
    pub fresh_sign_in: bool,
    /// `prompt=none`: never show a page; answer with an error instead.
    #[serde(default)]
    pub no_prompt: bool,
    /// `max_age` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Authentication contexts (`c1` … `c99`) asked for with `acr_values`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_contexts: Vec<String>,
    /// The person `id_token_hint` names: only their session is reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hinted_user: Option<Uuid>,
}

/// A response sent back to the application's redirect URI: a code, or an OAuth error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

/// The grant and code for a flow from `/authorize` that Conditional Access has just granted:
/// the changes to store and the response for the application. The sign-in flow commits them
/// in the transaction that moves it to `completed` and logs the sign-in, so the code exists
/// exactly when the flow says it was issued, and issuing it costs no further round trip.
/// `None` for a flow that no application's authorization request started.
pub(crate) fn issue_code<S: SignInStore + ?Sized>(
    deps: &Deps<S>,
    flow: &SignInFlow,
    session: &AuthSession,
) -> Option<(Vec<Change>, AuthorizationResponse)> {
    let request = flow.authorization.as_ref()?;
    let now = deps.clock.now();
    let methods = satisfied_methods(session);
    let grant = OAuthGrant {
        id: deps.entropy.ordered_uuid(now),
        client_id: flow.client_id,
        user_id: session.user_id,
        session_id: Some(session.id),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        auth_time: auth_time(session),
        amr: amr_for(session),
        acr: acr_for(&methods),
        // The contexts asked for were evaluated with the application and met, or the flow
        // would not be granted.
        acrs: request.auth_contexts.clone(),
        created: now,
        expires: now + GRANT_LIFETIME,
        revoked: None,
    };
    let code = split_token::issue(deps.entropy.as_ref(), now, 43);
    let stored = AuthorizationCode {
        key: TokenKey::Id(code.id),
        secret_hash: Some(code.secret_hash),
        grant_id: grant.id,
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        expires: now + CODE_LIFETIME,
    };
    let mut params = vec![("code".to_string(), code.text)];
    if let Some(state) = &request.state {
        params.push(("state".into(), state.clone()));
    }
    Some((
        vec![
            Change::InsertOAuthGrant(Box::new(grant)),
            Change::InsertAuthorizationCode(stored),
        ],
        AuthorizationResponse {
            redirect_uri: request.redirect_uri.clone(),
            response_mode: request.response_mode,
            params,
        },
    ))
}

impl AuthorizationResponse {
    /// The redirect URI with the parameters in its query, for `response_mode=query`.
    pub fn url(&self) -> String {
        let query = serde_urlencoded::to_string(&self.params).unwrap_or_default();
        let separator = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{query}", self.redirect_uri)
    }
}

/// One authorization: the person, the application, and how the person signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthGrant {
    pub id: Uuid,
    pub client_id: Uuid,
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(with = "graph_datetime")]
    pub auth_time: OffsetDateTime,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    #[serde(with = "graph_datetime")]
    pub created: OffsetDateTime,
    #[serde(with = "graph_datetime")]
    pub expires: OffsetDateTime,
    #[serde(default, with = "graph_datetime::option")]
    pub revoked: Option<OffsetDateTime>,
}

/// An authorization code as stored (the hash of its secret part, never the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The code's id; for a code issued before split tokens, the hash of the whole code.
    pub key: TokenKey,
    /// SHA-256 (hex) of the code's secret part; `None` for a code issued before split tokens.
    pub secret_hash: Option<String>,
    pub grant_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires: OffsetDateTime,
}

/// RFC 8176 method references for a session, and whether it amounts to multi-factor.
pub fn amr_for(session: &AuthSession) -> Vec<String> {
    let mut amr: Vec<String> = Vec::new();
    let mut push = |v: &str| {
        if !amr.iter().any(|a| a == v) {
            amr.push(v.to_string());
        }
    };
    for m in &session.methods {
        for reference in m.amr() {
            push(reference);
        }
    }
    let methods = satisfied_methods(session);
    if built_in_strength(MULTIFACTOR_STRENGTH_ID).is_some_and(|s| s.is_satisfied_by(&methods)) {
        push("mfa");
    }
    amr
}

/// The strongest built-in authentication strength the session meets, by its Graph name
/// (`phishingResistantMfa`…); `None` for single-factor.
pub fn acr_for(methods: &[SatisfiedMethod]) -> Option<String> {
    built_in_strengths()
        .iter()
        .rev()
        .find(|s| s.is_satisfied_by(methods))
        .map(|s| acr_name(&s.id).to_string())
}

fn acr_name(strength_id: &str) -> &'static str {
    if strength_id == PHISHING_RESISTANT_STRENGTH_ID {
        "phishingResistantMfa"
    } else if strength_id == PASSWORDLESS_STRENGTH_ID {
        "passwordlessMfa"
    } else {
        "mfa"
    }
}

/// When the person last proved who they are in this session.
pub fn auth_time(session: &AuthSession) -> OffsetDateTime {
    session
        .methods
        .iter()
        .map(|m| m.at)
        .max()
        .unwrap_or(session.created)
}
