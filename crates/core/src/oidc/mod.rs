//! The OpenID Connect provider: what an application asks for at the authorization endpoint, the
//! code it gets back once the sign-in flow is granted, and the tokens it exchanges that code
//! for (ID token, access token, rotating refresh tokens), userinfo, revocation and logout.
//!
//! One authorization is one [`OAuthGrant`]: the person, the application, the scopes and how the
//! person proved who they are (`amr`, `acr`, `auth_time`). The code and every refresh token
//! point at it, so revoking the grant (a replayed code, a reused refresh token, a logout)
//! revokes everything issued under it at once, on every node.
//!
//! Codes and refresh tokens are split tokens ([`crate::kernel::split_token`]): found by their
//! time-ordered id, their secret part kept only as a SHA-256 hash and checked in constant time
//! before anything else happens (a wrong secret is an unknown token: nothing is used up or
//! revoked), then taken once by a conditional update
//! ([`OidcStore::authorization_code`](crate::oidc::store::OidcStore::authorization_code)), so
//! two racing exchanges of one code cannot both succeed.
//!
//! What this module owns: validating authorization requests (exact redirect URIs, PKCE S256,
//! scopes, prompt, max_age, acr_values), the single-sign-on decision to reuse a session, and
//! issuing and redeeming codes and tokens. What it must never do: decide Conditional Access
//! (the sign-in flow does, through the engine), check a credential, or redirect anywhere that
//! is not registered for the application.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::directory::Directory;
use crate::directory::model::{Application, User};
use crate::kernel::Deps;
use crate::kernel::clock::unix_millis;
use crate::kernel::error::ErrorCode;
pub use crate::kernel::query::Taken;
use crate::kernel::split_token::{self, LegacyLookup, PresentedToken, TokenKey};
use crate::logs::sign_in::RequestFacts;
pub use crate::oidc::store::RefreshToken;
use crate::oidc::store::{OidcChange as Change, OidcStore};
use crate::oidc::tokens::TokenService;
use crate::session::AuthSession;
use crate::session::store::SessionChange;
use crate::signin::{FlowState, SignIns};

pub mod audience;
pub mod browser_origins;
pub mod store;
pub mod tokens;

pub use crate::signin::authorization::{
    AuthorizationCode, AuthorizationRequest, AuthorizationResponse, CODE_LIFETIME, GRANT_LIFETIME,
    OAuthGrant, ResponseMode, acr_for, amr_for, auth_time,
};
use crate::{Error, Result};

/// ID and access tokens for people.
pub const USER_TOKEN_LIFETIME: Duration = Duration::hours(1);
/// One refresh token; each use replaces it with a new one.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::days(14);
/// The scopes this provider grants. Others are ignored, as OpenID Connect Core §3.1.2.1 asks
/// ("scope values used that are not understood by an implementation SHOULD be ignored"): the
/// grant and the token response's `scope` list only these.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// What an application sends to the end-session endpoint (RP-Initiated Logout 1.0 §2).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogoutRequest<'a> {
    pub id_token_hint: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// The query parameters of `/authorize`, as received.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    /// An ID token this server issued, naming the person the application expects (OpenID
    /// Connect Core §3.1.2.1): a session of anyone else is not reused.
    pub id_token_hint: Option<String>,
    /// A request object (OpenID Connect Core §6.1); not supported, refused by name.
    pub request: Option<String>,
    /// A request object by reference (§6.2); not supported, refused by name.
    pub request_uri: Option<String>,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    /// The client or its redirect URI cannot be trusted: show an error page, never redirect.
    NoRedirect { code: ErrorCode, message: String },
    /// The redirect URI is registered; the error goes back to the application.
    Redirect(AuthorizationResponse),
}

/// What `/authorize` does next.
#[derive(Debug, Clone)]
pub enum AuthorizeNext {
    /// Send the person to the sign-in pages for this flow.
    SignIn { flow: Box<FlowState> },
    /// Answer the application now (single sign-on granted, or `prompt=none` refused).
    Respond(AuthorizationResponse),
}

/// How the client authenticated at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    Secret {
        client_id: String,
        secret: String,
    },
    /// A public client names itself only.
    Public {
        client_id: String,
    },
}

/// OAuth 2.0's own error codes, which client libraries match on: the token endpoint's (RFC 6749
/// §5.2), the authorization endpoint's (§4.1.2.1, OpenID Connect Core §3.1.2.6) and a bearer
/// token's (RFC 6750 §3.1). Distinct from [`ErrorCode`]: these are OAuth's spelling and shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    InvalidToken,
    UnsupportedGrantType,
    UnsupportedResponseType,
    /// `prompt=none`, and the person is not signed in.
    LoginRequired,
    /// `prompt=none`, and Conditional Access asks the person for more.
    InteractionRequired,
    /// Too many requests: a rate limit refused the call (RFC 6749 §4.1.2.1's name for a server
    /// that cannot take the request now), answered 429 with `Retry-After`.
    TemporarilyUnavailable,
    /// The request carried a request object (`request=`), which Portcullis does not accept.
    RequestNotSupported,
    /// The request named a request object by reference (`request_uri=`).
    RequestUriNotSupported,
}

impl OAuthErrorCode {
    pub const ALL: &'static [OAuthErrorCode] = &[
        OAuthErrorCode::InvalidRequest,
        OAuthErrorCode::InvalidClient,
        OAuthErrorCode::InvalidGrant,
        OAuthErrorCode::InvalidScope,
        OAuthErrorCode::InvalidToken,
        OAuthErrorCode::UnsupportedGrantType,
        OAuthErrorCode::UnsupportedResponseType,
        OAuthErrorCode::LoginRequired,
        OAuthErrorCode::InteractionRequired,
        OAuthErrorCode::TemporarilyUnavailable,
        OAuthErrorCode::RequestNotSupported,
        OAuthErrorCode::RequestUriNotSupported,
    ];

    /// The code as it appears in `error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::InvalidToken => "invalid_token",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthErrorCode::LoginRequired => "login_required",
            OAuthErrorCode::InteractionRequired => "interaction_required",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthErrorCode::RequestNotSupported => "request_not_supported",
            OAuthErrorCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }

    /// The status when the error is the answer of an endpoint (token, revocation, userinfo):
    /// 401 when the client or the token failed to authenticate (RFC 6749 §5.2, RFC 6750 §3.1),
    /// 429 when a rate limit refused the call, 400 otherwise. The one place an OAuth error's status is decided. (At the authorization
    /// endpoint the error travels in the redirect instead, and has no status of its own.)
    pub const fn http_status(self) -> u16 {
        match self {
            OAuthErrorCode::InvalidClient | OAuthErrorCode::InvalidToken => 401,
            OAuthErrorCode::InvalidRequest
            | OAuthErrorCode::InvalidGrant
            | OAuthErrorCode::InvalidScope
            | OAuthErrorCode::UnsupportedGrantType
            | OAuthErrorCode::UnsupportedResponseType
            | OAuthErrorCode::LoginRequired
            | OAuthErrorCode::InteractionRequired
            | OAuthErrorCode::RequestNotSupported
            | OAuthErrorCode::RequestUriNotSupported => 400,
            OAuthErrorCode::TemporarilyUnavailable => 429,
        }
    }
}

/// An OAuth error for the token, revocation and userinfo endpoints (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }
    fn grant(description: impl Into<String>) -> Self {
        OAuthError::new(OAuthErrorCode::InvalidGrant, description)
    }
    fn client(description: impl Into<String>) -> Self {
        OAuthError::new(OAuthErrorCode::InvalidClient, description)
    }
    /// The HTTP status, from the code.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

/// Tokens for a person.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub token_type: &'static str,
    pub access_token: String,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

/// The claims of an ID token (OpenID Connect Core §2) with Entra's extras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    /// The session, for RP-initiated logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub oid: String,
    pub tid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The person's app roles on the application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// `groups`, or the overage indicator, when the application asks for them.
    #[serde(flatten)]
    pub group_claims: audience::GroupClaims,
    pub ver: String,
}

/// The claims of an access token issued to an application on a person's behalf.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserAccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub scp: String,
    pub oid: String,
    pub tid: String,
    pub azp: String,
    /// The application the token was issued to (RFC 9068 §2.2, which JWT access-token
    /// validators require). Tokens issued before it was added lack it.
    #[serde(default)]
    pub client_id: String,
    /// The grant it was issued under; revoking the grant revokes the token.
    pub gid: String,
    pub idtyp: String,
    pub jti: String,
    /// The person's app roles on the audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// `groups`, or the overage indicator, when the audience asks for them.
    #[serde(flatten)]
    pub group_claims: audience::GroupClaims,
}

/// Whether the client must prove PKCE: public clients always (OAuth 2.1), confidential ones
/// when they started with a challenge.
fn is_public(app: &Application, redirect_uri: &str) -> bool {
    app.is_fallback_public_client
        || app
            .spa
            .redirect_uris
            .iter()
            .chain(&app.public_client.redirect_uris)
            .any(|u| u == redirect_uri)
}

fn is_auth_context(value: &str) -> bool {
    value
        .strip_prefix('c')
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=99).contains(&n) && !value[1..].starts_with('0'))
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.6.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn valid_pkce_text(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The OpenID Connect provider. Cheap to clone.
#[derive(Clone)]
pub struct Oidc {
    deps: Deps<dyn OidcStore>,
    directory: Directory,
    tokens: Arc<TokenService>,
    browser_origins: Arc<browser_origins::BrowserOrigins>,
    /// Past this many groups a token carries the overage indicator instead of `groups`.
    groups_claim_limit: usize,
}

impl Oidc {
    pub fn new(deps: Deps<dyn OidcStore>, tokens: Arc<TokenService>) -> Self {
        Oidc {
            directory: Directory::new(crate::narrow!(
                deps,
                crate::directory::store::DirectoryStore
            )),
            deps,
            tokens,
            browser_origins: Arc::new(browser_origins::BrowserOrigins::new(&[])),
            groups_claim_limit: audience::DEFAULT_GROUPS_CLAIM_LIMIT,
        }
    }

    /// Lists at most `limit` groups in a token's `groups` claim; past that, the token carries
    /// Entra's overage indicator (see [`audience::group_claims`]).
    pub fn with_groups_claim_limit(mut self, limit: usize) -> Self {
        self.groups_claim_limit = limit;
        self
    }

    fn directory_store(&self) -> &dyn crate::directory::store::DirectoryStore {
        &*self.deps.store
    }

    /// Where tokens' overage indicators send an application for the person's groups.
    fn graph_url(&self) -> String {
        format!("{}/graph/v1.0", self.tokens.issuer().trim_end_matches('/'))
    }

    /// Allows browser pages at `origins` to call the endpoints a single-page app uses, beside
    /// the origins of the registered single-page-application redirect URIs.
    pub fn with_browser_origins(mut self, origins: &[String]) -> Self {
        self.browser_origins = Arc::new(browser_origins::BrowserOrigins::new(origins));
        self
    }

    /// Whether a browser page at `origin` (an `Origin` header) may call the token, userinfo,
    /// revocation, discovery and key endpoints (see [`browser_origins`]).
    pub async fn allows_browser_origin(&self, origin: &str) -> Result<bool> {
        let store: &dyn crate::directory::store::DirectoryStore = &*self.deps.store;
        self.browser_origins.allows(store, origin).await
    }

    fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }

    /// The application whose client id and secret these are (client credentials, and a
    /// confidential client at the token endpoint).
    pub async fn authenticate_client(&self, client_id: &str, secret: &str) -> Result<Application> {
        self.directory.authenticate_client(client_id, secret).await
    }

    /// Checks an authorization request. The client and redirect URI are checked first, and
    /// until both are known good nothing is sent to the redirect URI.
    pub async fn validate(
        &self,
        params: &AuthorizeParams,
    ) -> Result<std::result::Result<(Application, AuthorizationRequest), AuthorizeRefusal>> {
        let no_redirect = |code: ErrorCode, message: String| {
            Ok(Err(AuthorizeRefusal::NoRedirect { code, message }))
        };
        let Some(client_id) = params.client_id.as_deref().map(str::trim) else {
            return no_redirect(
                ErrorCode::MissingClientId,
                "The request names no application (client_id is missing).".into(),
            );
        };
        let app = match Uuid::parse_str(client_id) {
            Ok(app_id) => self.deps.store.application_by_app_id(app_id).await?,
            Err(_) => None,
        };
        let Some(app) = app else {
            return no_redirect(
                ErrorCode::UnknownClient,
                format!("No application is registered with the client id '{client_id}'."),
            );
        };
        let Some(redirect_uri) = params.redirect_uri.clone() else {
            return no_redirect(
                ErrorCode::MissingRedirectUri,
                format!(
                    "The application '{}' did not say where to return (redirect_uri is missing).",
                    app.display_name
                ),
            );
        };
        // Exact comparison (RFC 9700 §4.1.3): no prefix, wildcard or normalisation.
        if !app.all_redirect_uris().any(|u| u == redirect_uri) {
            return no_redirect(
                ErrorCode::RedirectUriMismatch,
                format!(
                    "The address '{redirect_uri}' is not registered for the application '{}'.",
                    app.display_name
                ),
            );
        }
        let response_mode = match params.response_mode.as_deref() {
            None | Some("query") => ResponseMode::Query,
            Some("form_post") => ResponseMode::FormPost,
            Some(_) => ResponseMode::Query,
        };
        let mut request = AuthorizationRequest {
            redirect_uri: redirect_uri.clone(),
            response_mode,
            scopes: Vec::new(),
            state: params.state.clone(),
            nonce: None,
            code_challenge: None,
            fresh_sign_in: false,
            no_prompt: false,
            max_age: None,
            auth_contexts: Vec::new(),
            hinted_user: None,
        };
        let refuse = |request: &AuthorizationRequest, error: OAuthErrorCode, description: &str| {
            Ok(Err(AuthorizeRefusal::Redirect(error_response(
                request,
                error,
                description,
            ))))
        };
        if let Some(mode) = params.response_mode.as_deref()
            && !matches!(mode, "query" | "form_post")
        {
            return refuse(
                &request,
                OAuthErrorCode::InvalidRequest,
                "response_mode must be query or form_post.",
            );
        }
        // Request objects are checked before anything the object could have overridden.
        if params.request.is_some() {
            return refuse(
                &request,
                OAuthErrorCode::RequestNotSupported,
                "Request objects (the request parameter) are not supported; send the parameters themselves.",
            );
        }
        if params.request_uri.is_some() {
            return refuse(
                &request,
                OAuthErrorCode::RequestUriNotSupported,
                "Request objects by reference (the request_uri parameter) are not supported; send the parameters themselves.",
            );
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => {
                return refuse(
                    &request,
                    OAuthErrorCode::InvalidRequest,
                    "response_type is missing.",
                );
            }
            Some(_) => {
                return refuse(
                    &request,
                    OAuthErrorCode::UnsupportedResponseType,
                    "Only response_type=code is supported.",
                );
            }
        }
        let mut scopes: Vec<String> = Vec::new();
        // One access token has one audience: the scopes asked for may name one API at most.
        let mut api: Option<Uuid> = None;
        for scope in params.scope.as_deref().unwrap_or("").split_whitespace() {
            if SUPPORTED_SCOPES.contains(&scope) {
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_string());
                }
                continue;
            }
            match audience::requested(self.directory_store(), scope).await? {
                audience::RequestedScope::NotAnApi => {}
                audience::RequestedScope::Refused(why) => {
                    return refuse(&request, OAuthErrorCode::InvalidScope, &why);
                }
                audience::RequestedScope::Api {
                    api: named,
                    granted,
                } => {
                    if api.is_some_and(|id| id != named.id) {
                        return refuse(
                            &request,
                            OAuthErrorCode::InvalidScope,
                            "AADSTS70011: the scopes asked for belong to more than one API; ask for one API's scopes per request.",
                        );
                    }
                    api = Some(named.id);
                    for text in granted {
                        if !scopes.contains(&text) {
                            scopes.push(text);
                        }
                    }
                }
            }
        }
        if !scopes.iter().any(|s| s == "openid") {
            return refuse(
                &request,
                OAuthErrorCode::InvalidScope,
                "The scope must include openid.",
            );
        }
        request.scopes = scopes;
        if let Some(nonce) = &params.nonce {
            if nonce.len() > 512 {
                return refuse(
                    &request,
                    OAuthErrorCode::InvalidRequest,
                    "nonce is longer than 512.",
                );
            }
            request.nonce = Some(nonce.clone());
        }
        match (
            params.code_challenge.as_deref(),
            params.code_challenge_method.as_deref(),
        ) {
            (Some(challenge), Some("S256")) => {
                if !valid_pkce_text(challenge) {
                    return refuse(
                        &request,
                        OAuthErrorCode::InvalidRequest,
                        "code_challenge must be 43 to 128 characters of base64url.",
                    );
                }
                request.code_challenge = Some(challenge.to_string());
            }
            (Some(_), _) | (None, Some(_)) => {
                return refuse(
                    &request,
                    OAuthErrorCode::InvalidRequest,
                    "Only code_challenge_method=S256 is supported, with a code_challenge.",
                );
            }
            (None, None) => {
                if is_public(&app, &redirect_uri) {
                    return refuse(
                        &request,
                        OAuthErrorCode::InvalidRequest,
                        "This application is a public client: PKCE (code_challenge with S256) is required.",
                    );
                }
            }
        }
        for prompt in params.prompt.as_deref().unwrap_or("").split_whitespace() {
            match prompt {
                "login" | "select_account" => request.fresh_sign_in = true,
                "none" => request.no_prompt = true,
                "consent" => {}
                other => {
                    return refuse(
                        &request,
                        OAuthErrorCode::InvalidRequest,
                        &format!("prompt '{other}' is not supported."),
                    );
                }
            }
        }
        if request.no_prompt && request.fresh_sign_in {
            return refuse(
                &request,
                OAuthErrorCode::InvalidRequest,
                "prompt=none cannot be combined with another prompt.",
            );
        }
        if let Some(hint) = params.id_token_hint.as_deref() {
            // Expired hints are fine (the point of a hint is an earlier sign-in); one this server
            // did not sign, or for another application, is refused: it names nobody here.
            let claims = match self.tokens.verify_hint(hint).await {
                Ok(claims) => Some(claims),
                Err(Error::Unauthenticated(_)) => None,
                Err(other) => return Err(other),
            };
            match claims {
                Some(claims) if claims.aud == app.app_id.to_string() => {
                    request.hinted_user = Uuid::parse_str(&claims.sub).ok();
                }
                _ => {
                    return refuse(
                        &request,
                        OAuthErrorCode::InvalidRequest,
                        "id_token_hint is not an ID token this server issued to this application.",
                    );
                }
            }
        }
        if let Some(max_age) = &params.max_age {
            match max_age.trim().parse::<i64>() {
                Ok(v) if v >= 0 => request.max_age = Some(v),
                _ => {
                    return refuse(
                        &request,
                        OAuthErrorCode::InvalidRequest,
                        "max_age must be a number of seconds.",
                    );
                }
            }
        }
        // acr_values is a voluntary request (OpenID Connect Core §3.1.2.1, §5.5.1.1): values
        // that name no authentication context are ignored, not refused; c1 to c99 make the
        // sign-in pass the policies that target those contexts.
        for value in params
            .acr_values
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
        {
            if !is_auth_context(value) {
                continue;
            }
            if !request.auth_contexts.iter().any(|c| c == value) {
                request.auth_contexts.push(value.to_string());
            }
        }
        Ok(Ok((app, request)))
    }

    /// Starts (or, with single sign-on, finishes) the sign-in for a validated request.
    pub async fn authorize(
        &self,
        sign_ins: &SignIns,
        app: &Application,
        request: AuthorizationRequest,
        session: Option<AuthSession>,
        facts: &RequestFacts,
    ) -> Result<AuthorizeNext> {
        let now = self.now();
        let reusable = session.filter(|s| {
            !request.fresh_sign_in
                && request
                    .max_age
                    .is_none_or(|max| now - auth_time(s) <= Duration::seconds(max))
                // The application expects the person its ID token hint names: another person's
                // session answers nothing for it (login_required with prompt=none, else a sign-in).
                && request.hinted_user.is_none_or(|hinted| hinted == s.user_id)
        });
        match reusable {
            Some(session) => {
                let flow = sign_ins
                    .start_with_session(app, facts, request.clone(), &session)
                    .await?;
                let mut flow = flow;
                if let Some(response) = flow.completion.take() {
                    return Ok(AuthorizeNext::Respond(response));
                }
                if request.no_prompt {
                    return Ok(AuthorizeNext::Respond(error_response(
                        &request,
                        OAuthErrorCode::InteractionRequired,
                        "Conditional Access needs the person to do more before signing in.",
                    )));
                }
                Ok(AuthorizeNext::SignIn {
                    flow: Box::new(flow),
                })
            }
            None if request.no_prompt => Ok(AuthorizeNext::Respond(error_response(
                &request,
                OAuthErrorCode::LoginRequired,
                "The person is not signed in (or must sign in again).",
            ))),
            None => {
                let flow = sign_ins
                    .start_for_application(app, facts, Some(request))
                    .await?;
                Ok(AuthorizeNext::SignIn {
                    flow: Box::new(flow),
                })
            }
        }
    }

    /// Client credentials for an API registered here (`scope=<resource>/.default`): a token
    /// whose `roles` are the API's app roles assigned to `app`. An API that requires assignment
    /// refuses an application holding none of its roles or default access.
    pub async fn api_application_token(
        &self,
        app: &Application,
        resource: &str,
    ) -> Result<std::result::Result<(String, i64), OAuthError>> {
        let store = self.directory_store();
        let Some(api) = audience::resource(store, resource).await? else {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                format!("AADSTS500011: no application named '{resource}' is registered here."),
            )));
        };
        if api.access.app_role_assignment_required
            && !crate::directory::access::is_assigned(store, api.id, app.id).await?
        {
            return Ok(Err(OAuthError::new(
                OAuthErrorCode::InvalidGrant,
                format!(
                    "AADSTS501051: the application '{}' is not assigned to a role of '{}', which requires assignment.",
                    app.display_name, api.display_name
                ),
            )));
        }
        let roles = crate::directory::access::application_roles(store, &api, app.id).await?;
        self.tokens.issue_api_app_token(app, &api, roles).map(Ok)
    }

    /// Who the client is. A confidential client must prove its secret; a public client may
    /// only name itself when it is one.
    async fn client(
        &self,
        auth: &ClientAuth,
        redirect_uri: Option<&str>,
    ) -> Result<std::result::Result<Application, OAuthError>> {
        match auth {
            ClientAuth::Secret { client_id, secret } => {
                match self.directory.authenticate_client(client_id, secret).await {
                    Ok(app) => Ok(Ok(app)),
                    Err(Error::Unauthenticated(m)) => Ok(Err(OAuthError::client(m))),
                    Err(e) => Err(e),
                }
            }
            ClientAuth::Public { client_id } => {
                let app = match Uuid::parse_str(client_id.trim()) {
                    Ok(id) => self.deps.store.application_by_app_id(id).await?,
                    Err(_) => None,
                };
                let Some(app) = app else {
                    return Ok(Err(OAuthError::client("The client id is not valid.")));
                };
                // Without a redirect URI to judge by (refresh, revocation), an application with
                // public redirect URIs and no secret is public.
                let public = app.is_fallback_public_client
                    || match redirect_uri {
                        Some(uri) => is_public(&app, uri),
                        None => {
                            app.password_credentials.is_empty()
                                && (!app.spa.redirect_uris.is_empty()
                                    || !app.public_client.redirect_uris.is_empty())
                        }
                    };
                if public {
                    Ok(Ok(app))
                } else {
                    Ok(Err(OAuthError::client(
                        "This application is a confidential client: authenticate with its secret.",
                    )))
                }
            }
        }
    }

    async fn revoke_grant(&self, grant_id: Uuid) -> Result<()> {
        self.deps
            .store
            .commit(
                vec![Change::RevokeOAuthGrant {
                    id: grant_id,
                    at: self.now(),
                }],
                None,
            )
            .await
    }

    /// A live grant: present, not revoked, not past its lifetime, its person still enabled;
    /// with that person, whom every caller needs next.
    async fn live_grant(
        &self,
        grant_id: Uuid,
    ) -> Result<std::result::Result<(OAuthGrant, User), OAuthError>> {
        let Some((grant, person)) = self.deps.store.oauth_grant_and_person(grant_id).await? else {
            return Ok(Err(OAuthError::grant(
                "The authorization no longer exists.",
            )));
        };
        if grant.revoked.is_some() {
            return Ok(Err(OAuthError::grant("The authorization was revoked.")));
        }
        if grant.expires <= self.now() {
            return Ok(Err(OAuthError::grant("The authorization has expired.")));
        }
        match person {
            Some(user) if user.account_enabled => Ok(Ok((grant, user))),
            _ => Ok(Err(OAuthError::grant(
                "The account is disabled or no longer exists.",
            ))),
        }
    }

    /// `grant_type=authorization_code`.
    pub async fn redeem_code(
        &self,
        auth: &ClientAuth,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<std::result::Result<TokenResponse, OAuthError>> {
        let app = match self.client(auth, redirect_uri).await? {
            Ok(app) => app,
            Err(e) => return Ok(Err(e)),
        };
        let presented = PresentedToken::parse(code, LegacyLookup::HashOfWholeToken);
        let found = self.deps.store.authorization_code(presented.key()).await?;
        // The secret is judged before whether the code was used: only its bearer can replay
        // it, so a wrong secret (even on a used code's id) revokes nothing.
        let stored = match found {
            Taken::Fresh(stored) if presented.matches(stored.secret_hash.as_deref()) => stored,
            Taken::Replayed(stored) if presented.matches(stored.secret_hash.as_deref()) => {
                return self.code_replayed(stored.grant_id).await;
            }
            Taken::Fresh(_) | Taken::Replayed(_) | Taken::Unknown => {
                return Ok(Err(OAuthError::grant(
                    "The authorization code is not valid.",
                )));
            }
        };
        // The code is used up in the transaction that stores what it issues, or by the refusal
        // below: either way it is good for one attempt.
        let take = Change::TakeAuthorizationCode {
            key: presented.key().clone(),
            at: self.now(),
        };
        let (grant, user) = match self
            .check_code(&app, &stored, redirect_uri, code_verifier)
            .await?
        {
            Ok(found) => found,
            Err(refusal) => {
                match self.deps.store.commit(vec![take], None).await {
                    Ok(()) | Err(Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
                return Ok(Err(refusal));
            }
        };
        match self.issue(&app, &grant, &user, true, Some(take)).await {
            Ok(response) => Ok(Ok(response)),
            Err(Error::Conflict {
                code: ErrorCode::AuthorizationCodeUsed,
                ..
            }) => self.code_replayed(grant.id).await,
            Err(e) => Err(e),
        }
    }

    /// RFC 6749 §4.1.2: a code used twice revokes what it issued.
    async fn code_replayed(
        &self,
        grant_id: Uuid,
    ) -> Result<std::result::Result<TokenResponse, OAuthError>> {
        tracing::warn!(grant = %grant_id, "authorization code replayed; revoking its tokens");
        self.revoke_grant(grant_id).await?;
        Ok(Err(OAuthError::grant(
            "The authorization code was already used; the tokens issued with it are revoked.",
        )))
    }

    /// Whether this client may redeem this unused code now: unexpired, its grant live, issued
    /// to this client for this redirect URI, and its PKCE challenge met.
    async fn check_code(
        &self,
        app: &Application,
        stored: &AuthorizationCode,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<std::result::Result<(OAuthGrant, User), OAuthError>> {
        if stored.expires <= self.now() {
            return Ok(Err(OAuthError::grant(
                "The authorization code has expired.",
            )));
        }
        let (grant, user) = match self.live_grant(stored.grant_id).await? {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        if grant.client_id != app.app_id {
            return Ok(Err(OAuthError::grant(
                "The authorization code was issued to another application.",
            )));
        }
        if redirect_uri != Some(stored.redirect_uri.as_str()) {
            return Ok(Err(OAuthError::grant(
                "redirect_uri must be the one the authorization request used.",
            )));
        }
        match (&stored.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) => {
                let computed = s256_challenge(verifier);
                if !valid_pkce_text(verifier)
                    || !bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
                {
                    return Ok(Err(OAuthError::grant(
                        "The code_verifier does not match the code_challenge.",
                    )));
                }
            }
            (Some(_), None) => {
                return Ok(Err(OAuthError::grant("code_verifier is missing.")));
            }
            // A verifier for a code issued without a challenge is a downgrade attempt.
            (None, Some(_)) => {
                return Ok(Err(OAuthError::grant(
                    "This code was issued without a code_challenge; a code_verifier is not expected.",
                )));
            }
            (None, None) => {}
        }
        Ok(Ok((grant, user)))
    }

    /// `grant_type=refresh_token`: the token is replaced; a token used twice revokes the
    /// whole family (RFC 9700 §4.14.2).
    pub async fn refresh(
        &self,
        auth: &ClientAuth,
        refresh_token: &str,
    ) -> Result<std::result::Result<TokenResponse, OAuthError>> {
        let app = match self.client(auth, None).await? {
            Ok(app) => app,
            Err(e) => return Ok(Err(e)),
        };
        let presented = PresentedToken::parse(refresh_token, LegacyLookup::HashOfWholeToken);
        // The secret is checked before the token is taken: a wrong one neither uses the token
        // up nor counts as its reuse (which would revoke the family).
        if self.known_refresh_token(&presented).await?.is_none() {
            return Ok(Err(OAuthError::grant("The refresh token is not valid.")));
        }
        let stored = match self
            .deps
            .store
            .take_refresh_token(presented.key(), self.now())
            .await?
        {
            Taken::Fresh(stored) => stored,
            Taken::Replayed(stored) => {
                tracing::warn!(grant = %stored.grant_id, "refresh token reused; revoking its family");
                self.revoke_grant(stored.grant_id).await?;
                return Ok(Err(OAuthError::grant(
                    "The refresh token was already used; every token of this sign-in is revoked.",
                )));
            }
            Taken::Unknown => {
                return Ok(Err(OAuthError::grant("The refresh token is not valid.")));
            }
        };
        if stored.expires <= self.now() {
            return Ok(Err(OAuthError::grant("The refresh token has expired.")));
        }
        let (grant, user) = match self.live_grant(stored.grant_id).await? {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        if grant.client_id != app.app_id {
            return Ok(Err(OAuthError::grant(
                "The refresh token was issued to another application.",
            )));
        }
        self.issue(&app, &grant, &user, false, None).await.map(Ok)
    }

    /// The refresh token `presented` names, if its secret is the one issued (used or not).
    async fn known_refresh_token(
        &self,
        presented: &PresentedToken<'_>,
    ) -> Result<Option<RefreshToken>> {
        Ok(self
            .deps
            .store
            .refresh_token(presented.key())
            .await?
            .filter(|t| presented.matches(t.secret_hash.as_deref())))
    }

    async fn issue(
        &self,
        app: &Application,
        grant: &OAuthGrant,
        user: &User,
        first: bool,
        take_code: Option<Change>,
    ) -> Result<TokenResponse> {
        let now = self.now();
        let iat = unix_millis(now) / 1000;
        let exp = iat + USER_TOKEN_LIFETIME.whole_seconds();
        let tid = self.tokens.tenant_id().to_string();
        let profile = grant.scopes.iter().any(|s| s == "profile");
        // The access token is the API's when the grant named one, the application's own
        // otherwise; each says what its audience asks for of the person.
        let store = self.directory_store();
        let graph_url = self.graph_url();
        let limit = self.groups_claim_limit;
        let api = audience::granted_api(store, &grant.scopes).await?;
        let id_roles = crate::directory::access::user_roles(store, app, user.id).await?;
        let id_groups = audience::group_claims(store, app, user.id, limit, &graph_url).await?;
        let (audience_app, scp, access_roles, access_groups) = match &api {
            Some((api, values)) => (
                api,
                values.join(" "),
                crate::directory::access::user_roles(store, api, user.id).await?,
                audience::group_claims(store, api, user.id, limit, &graph_url).await?,
            ),
            None => (
                app,
                grant.scopes.join(" "),
                id_roles.clone(),
                id_groups.clone(),
            ),
        };
        let email = grant.scopes.iter().any(|s| s == "email");
        let id_claims = IdTokenClaims {
            iss: self.tokens.issuer().to_string(),
            sub: user.id.to_string(),
            aud: app.app_id.to_string(),
            exp,
            iat,
            nbf: iat,
            auth_time: unix_millis(grant.auth_time) / 1000,
            // The nonce belongs to the authentication: only the first ID token carries it.
            nonce: if first { grant.nonce.clone() } else { None },
            amr: grant.amr.clone(),
            acr: grant.acr.clone(),
            acrs: grant.acrs.clone(),
            sid: grant.session_id.map(|s| s.to_string()),
            oid: user.id.to_string(),
            tid: tid.clone(),
            name: profile.then(|| user.display_name.clone()),
            preferred_username: profile.then(|| user.user_principal_name.clone()),
            email: email
                .then(|| {
                    user.mail
                        .clone()
                        .unwrap_or(user.user_principal_name.clone())
                })
                .filter(|m| m.contains('@')),
            roles: id_roles,
            group_claims: id_groups,
            ver: "2.0".into(),
        };
        let access_claims = UserAccessTokenClaims {
            iss: self.tokens.issuer().to_string(),
            sub: user.id.to_string(),
            aud: audience_app.app_id.to_string(),
            exp,
            iat,
            nbf: iat,
            scp,
            oid: user.id.to_string(),
            tid,
            azp: app.app_id.to_string(),
            client_id: app.app_id.to_string(),
            gid: grant.id.to_string(),
            idtyp: "user".into(),
            jti: self.deps.entropy.uuid().to_string(),
            roles: access_roles,
            group_claims: access_groups,
        };
        // Each token is signed as the application that verifies it asked
        // (`idTokenSignedResponseAlg`): the ID token as the client asked, the access token as its
        // audience asked — the client itself, or the API it was issued for.
        let id_token = self
            .tokens
            .sign(&id_claims, "JWT", app.id_token_signed_response_alg)?;
        let access_token = self.tokens.sign(
            &access_claims,
            "at+jwt",
            audience_app.id_token_signed_response_alg,
        )?;
        // The code (when redeeming one) is used up in the same transaction that stores the
        // refresh token: both or neither.
        let mut changes: Vec<Change> = take_code.into_iter().collect();
        let refresh_token = grant.scopes.iter().any(|s| s == "offline_access").then(|| {
            let token = split_token::issue(self.deps.entropy.as_ref(), now, 64);
            changes.push(Change::InsertRefreshToken(RefreshToken {
                key: TokenKey::Id(token.id),
                secret_hash: Some(token.secret_hash),
                grant_id: grant.id,
                created: now,
                expires: (now + REFRESH_TOKEN_LIFETIME).min(grant.expires),
            }));
            token.text
        });
        self.deps.store.commit(changes, None).await?;
        Ok(TokenResponse {
            token_type: "Bearer",
            access_token,
            id_token,
            refresh_token,
            expires_in: USER_TOKEN_LIFETIME.whole_seconds(),
            scope: grant.scopes.join(" "),
        })
    }

    /// The person behind an access token, for `/userinfo`; refused once its grant is revoked.
    pub async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<std::result::Result<serde_json::Value, OAuthError>> {
        let invalid = |m: &str| OAuthError::new(OAuthErrorCode::InvalidToken, m);
        let claims: UserAccessTokenClaims = match self.tokens.verify(access_token, None).await {
            Ok(c) => c,
            Err(Error::Unauthenticated(m)) => return Ok(Err(invalid(&m))),
            Err(e) => return Err(e),
        };
        if claims.idtyp != "user" {
            return Ok(Err(invalid("This token was not issued for a person.")));
        }
        // A token issued for an API is that API's to read, not a key to the person's profile:
        // userinfo takes only the token a client received for itself (as Entra's userinfo takes
        // only tokens for its own audience), so an API a person's token is sent to cannot turn
        // it into their name and address.
        if claims.aud != claims.azp {
            return Ok(Err(invalid(
                "This token was issued for an API; userinfo takes the access token the client                  received for itself.",
            )));
        }
        let Ok(grant_id) = Uuid::parse_str(&claims.gid) else {
            return Ok(Err(invalid("This token names no authorization.")));
        };
        let (grant, user) = match self.live_grant(grant_id).await? {
            Ok(g) => g,
            Err(e) => return Ok(Err(invalid(&e.description))),
        };
        let mut info =
            serde_json::json!({ "sub": user.id, "oid": user.id, "tid": self.tokens.tenant_id() });
        if grant.scopes.iter().any(|s| s == "profile") {
            info["name"] = user.display_name.clone().into();
            info["preferred_username"] = user.user_principal_name.clone().into();
        }
        if grant.scopes.iter().any(|s| s == "email") {
            let mail = user
                .mail
                .clone()
                .unwrap_or(user.user_principal_name.clone());
            if mail.contains('@') {
                info["email"] = mail.into();
            }
        }
        Ok(Ok(info))
    }

    /// RFC 7009 revocation: a refresh token or an access token revokes its grant. Unknown
    /// tokens are not an error (the answer must not tell a guesser anything).
    pub async fn revoke(
        &self,
        auth: &ClientAuth,
        token: &str,
    ) -> Result<std::result::Result<(), OAuthError>> {
        let app = match self.client(auth, None).await? {
            Ok(app) => app,
            Err(e) => return Ok(Err(e)),
        };
        let presented = PresentedToken::parse(token, LegacyLookup::HashOfWholeToken);
        let grant_id = match self.known_refresh_token(&presented).await? {
            Some(stored) => Some(stored.grant_id),
            None => match self
                .tokens
                .verify::<UserAccessTokenClaims>(token, None)
                .await
            {
                Ok(claims) => Uuid::parse_str(&claims.gid).ok(),
                Err(_) => None,
            },
        };
        if let Some(grant_id) = grant_id
            && let Some(grant) = self.deps.store.oauth_grant(grant_id).await?
            && grant.client_id == app.app_id
            && grant.revoked.is_none()
        {
            self.revoke_grant(grant_id).await?;
        }
        Ok(Ok(()))
    }

    /// RP-initiated logout: ends the session and revokes what was issued in it. Returns where
    /// to send the browser: the application's post-logout address only if it is registered for
    /// the application named by the ID token hint or, without one, by `client_id`
    /// (RP-Initiated Logout 1.0 §2; when both are given they must name the same application).
    pub async fn end_session(
        &self,
        session: Option<&AuthSession>,
        logout: LogoutRequest<'_>,
    ) -> Result<std::result::Result<Option<String>, Error>> {
        let LogoutRequest {
            id_token_hint,
            client_id,
            post_logout_redirect_uri,
            state,
        } = logout;
        let hint = match id_token_hint {
            Some(token) => match self.tokens.verify_hint(token).await {
                Ok(claims) => Some(claims),
                Err(_) => {
                    return Ok(Err(Error::invalid(
                        "id_token_hint",
                        "The ID token hint is not one this server issued.",
                    )));
                }
            },
            None => None,
        };
        let now = self.now();
        let mut changes = Vec::new();
        if let Some(session) = session {
            changes.push(Change::RevokeSessionGrants {
                session_id: session.id,
                at: now,
            });
            changes.push(Change::from(SessionChange::DeleteSession(session.id)));
        } else if let Some(sid) = hint
            .as_ref()
            .and_then(|h| h.sid.as_deref())
            .and_then(|s| Uuid::parse_str(s).ok())
        {
            changes.push(Change::RevokeSessionGrants {
                session_id: sid,
                at: now,
            });
        }
        if !changes.is_empty() {
            self.deps.store.commit(changes, None).await?;
        }
        let client_id = client_id.map(str::trim).filter(|c| !c.is_empty());
        if let (Some(hint), Some(client_id)) = (&hint, client_id)
            && !hint.aud.eq_ignore_ascii_case(client_id)
        {
            return Ok(Err(Error::invalid(
                "client_id",
                "The client_id is not the application the ID token hint was issued to.",
            )));
        }
        let Some(target) = post_logout_redirect_uri else {
            return Ok(Ok(None));
        };
        let Some(named) = hint.as_ref().map(|h| h.aud.as_str()).or(client_id) else {
            return Ok(Err(Error::invalid(
                "post_logout_redirect_uri",
                "A post-logout address needs an id_token_hint or a client_id naming the application.",
            )));
        };
        let app = match Uuid::parse_str(named) {
            Ok(app_id) => self.deps.store.application_by_app_id(app_id).await?,
            Err(_) => None,
        };
        match app {
            Some(app) if app.all_redirect_uris().any(|u| u == target) => {
                let mut url = target.to_string();
                if let Some(state) = state {
                    let q = serde_urlencoded::to_string([("state", state)]).unwrap_or_default();
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&q);
                }
                Ok(Ok(Some(url)))
            }
            _ => Ok(Err(Error::invalid(
                "post_logout_redirect_uri",
                "The post-logout address is not registered for the application.",
            ))),
        }
    }

    /// The discovery document (OpenID Connect Discovery 1.0 §3).
    pub fn discovery(&self, public_url: &str) -> serde_json::Value {
        let base = public_url.trim_end_matches('/');
        serde_json::json!({
            "issuer": self.tokens.issuer(),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "revocation_endpoint": format!("{base}/oauth2/v2.0/revoke"),
            "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": crate::directory::model::SigningAlgorithm::ALL.map(|a| a.as_str()),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SUPPORTED_SCOPES,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "acrs", "sid", "oid", "tid", "name", "preferred_username", "email", "roles", "groups"],
            "acr_values_supported": (1..=99).map(|n| format!("c{n}")).collect::<Vec<_>>(),
            "prompt_values_supported": ["none", "login", "select_account", "consent"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })
    }
}

/// An OAuth error sent back to the application's redirect URI (RFC 6749 §4.1.2.1), with the
/// request's `state`.
fn error_response(
    request: &AuthorizationRequest,
    error: OAuthErrorCode,
    description: &str,
) -> AuthorizationResponse {
    let mut params = vec![
        ("error".to_string(), error.as_str().to_string()),
        ("error_description".to_string(), description.to_string()),
    ];
    if let Some(state) = &request.state {
        params.push(("state".into(), state.clone()));
    }
    AuthorizationResponse {
        redirect_uri: request.redirect_uri.clone(),
        response_mode: request.response_mode,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_contexts_are_c1_to_c99() {
        for ok in ["c1", "c9", "c10", "c99"] {
            assert!(is_auth_context(ok), "{ok}");
        }
        for bad in ["c0", "c100", "c01", "C1", "c", "1", "c1x", "urn:c1"] {
            assert!(!is_auth_context(bad), "{bad}");
        }
    }

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn pkce_text_is_43_to_128_unreserved_characters() {
        assert!(valid_pkce_text(&"a".repeat(43)));
        assert!(valid_pkce_text(&"-._~".repeat(32)));
        assert!(!valid_pkce_text(&"a".repeat(42)));
        assert!(!valid_pkce_text(&"a".repeat(129)));
        assert!(!valid_pkce_text(&format!("{}+", "a".repeat(43))));
    }
}
