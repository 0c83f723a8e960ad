//! Authentication sessions: who proved what, and when. A session is created by a first factor
//! (a passkey, a Temporary Access Pass, a password) and remembers every method satisfied in it,
//! so later steps — registering a passkey, Conditional Access, single sign-on — can ask what this
//! person has proved and how recently.
//!
//! The browser holds a split token ([`crate::kernel::split_token`]): the session's id and a
//! random secret, of which the database keeps only the SHA-256. The session is found by its id,
//! so any node can serve any step, a new session appends at the end of its table's key, and a
//! stolen database row cannot be replayed as a cookie.

use portcullis_policy::{AuthenticationMethodMode, SatisfiedMethod};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::directory::audit::{
    AuditActivityInitiator, DirectoryAudit, RequestContext, TargetResource,
};
use crate::directory::authz::Actor;
use crate::directory::store::{Commit, DirectoryChange};
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::split_token::{self, LegacyLookup, PresentedToken};
use crate::session::store::SessionStore;

pub mod store;
use crate::{Error, Result};

/// The name of the cookie that carries a session token.
pub const SESSION_COOKIE: &str = "portcullis_session";
/// How long a session lives without a new sign-in.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
/// "Registering a passkey needs a recent strong sign-in (5 minutes)…"
pub const RECENT_STRONG_SIGN_IN: Duration = Duration::minutes(5);
/// "…or a TAP session (10 minutes for a one-time TAP)."
pub const ONE_TIME_TAP_REGISTRATION_WINDOW: Duration = Duration::minutes(10);

/// A way a person proved who they are, in Graph's method names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodKind {
    /// A passkey (FIDO2): phishing-resistant, passwordless.
    Fido2,
    TemporaryAccessPass,
    Password,
    /// Software OATH (TOTP).
    SoftwareOath,
}

impl MethodKind {
    /// The name the sign-in log and the pages give it.
    pub fn label(self) -> &'static str {
        match self {
            MethodKind::Fido2 => "Passkey",
            MethodKind::TemporaryAccessPass => "Temporary Access Pass",
            MethodKind::Password => "Password",
            MethodKind::SoftwareOath => "Software OATH token",
        }
    }
}

/// How long after its use a method lets the session register new methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationWindow {
    /// This method alone never lets a person add methods.
    Never,
    /// Within this long of its use.
    Within(Duration),
    /// For as long as the session lasts (a multi-use Temporary Access Pass).
    WholeSession,
}

/// One method satisfied in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMethod {
    pub method: MethodKind,
    #[serde(with = "graph_datetime")]
    pub at: OffsetDateTime,
    /// The passkey's AAGUID, for authentication strengths that restrict models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<String>,
    /// The id of the credential or pass used (passkey method id, TAP id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// For a passkey: whether it may be synced (backup eligible), which decides `amr` `swk`
    /// rather than `hwk`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backup_eligible: bool,
    /// For a Temporary Access Pass: whether it was a one-time pass.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_time: bool,
}

impl SessionMethod {
    /// RFC 8176 method references this method contributes to `amr`.
    pub fn amr(&self) -> &'static [&'static str] {
        match self.method {
            // A synced passkey's key lives in software the provider syncs (`swk`); a
            // device-bound one in the authenticator's hardware (`hwk`). User verification is
            // required of every passkey here: presence and a PIN or biometric were both
            // checked by the authenticator.
            MethodKind::Fido2 if self.backup_eligible => &["swk", "user", "pin"],
            MethodKind::Fido2 => &["hwk", "user", "pin"],
            MethodKind::Password => &["pwd"],
            MethodKind::SoftwareOath => &["otp"],
            MethodKind::TemporaryAccessPass => &["tap"],
        }
    }

    /// The method as the engine's authentication strengths read it. Whether a mode meets a
    /// strength is the engine's business, never decided here.
    pub fn strength_mode(&self) -> SatisfiedMethod {
        match self.method {
            MethodKind::Fido2 => SatisfiedMethod {
                mode: AuthenticationMethodMode::Fido2,
                aaguid: self.aaguid.clone(),
            },
            MethodKind::TemporaryAccessPass if self.one_time => {
                SatisfiedMethod::new(AuthenticationMethodMode::TemporaryAccessPassOneTime)
            }
            MethodKind::TemporaryAccessPass => {
                SatisfiedMethod::new(AuthenticationMethodMode::TemporaryAccessPassMultiUse)
            }
            MethodKind::Password => SatisfiedMethod::new(AuthenticationMethodMode::Password),
            MethodKind::SoftwareOath => {
                SatisfiedMethod::new(AuthenticationMethodMode::SoftwareOath)
            }
        }
    }

    /// "Registering a passkey needs a recent strong sign-in (5 minutes) or a TAP session (10
    /// minutes for a one-time TAP)."
    pub fn registration_window(&self) -> RegistrationWindow {
        match self.method {
            MethodKind::Fido2 => RegistrationWindow::Within(RECENT_STRONG_SIGN_IN),
            MethodKind::TemporaryAccessPass if self.one_time => {
                RegistrationWindow::Within(ONE_TIME_TAP_REGISTRATION_WINDOW)
            }
            MethodKind::TemporaryAccessPass => RegistrationWindow::WholeSession,
            MethodKind::Password | MethodKind::SoftwareOath => RegistrationWindow::Never,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub id: Uuid,
    /// SHA-256 (hex) of the secret part of the token the browser holds. `None` for a session
    /// begun before split tokens (migration 0013), whose cookie is found by the hash of the
    /// whole of it until the session expires.
    pub secret_hash: Option<String>,
    pub user_id: Uuid,
    pub methods: Vec<SessionMethod>,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

impl AuthSession {
    pub fn latest(&self, kind: MethodKind) -> Option<&SessionMethod> {
        self.methods
            .iter()
            .filter(|m| m.method == kind)
            .max_by_key(|m| m.at)
    }

    /// Whether this session may register a new passkey now: a passkey sign-in in the last five
    /// minutes, or a Temporary Access Pass (a one-time pass only within ten minutes of use).
    /// Any other answer names what is missing.
    pub fn may_register_methods(&self, now: OffsetDateTime) -> Result<()> {
        let open = |m: &SessionMethod| match m.registration_window() {
            RegistrationWindow::Never => false,
            RegistrationWindow::Within(window) => now - m.at <= window,
            RegistrationWindow::WholeSession => true,
        };
        if self.methods.iter().any(open) {
            return Ok(());
        }
        if self.latest(MethodKind::TemporaryAccessPass).is_some() {
            return Err(Error::Forbidden(
                "The one-time Temporary Access Pass was used more than 10 minutes ago; sign in again to add a passkey or an authenticator app.".into(),
            ));
        }
        Err(Error::Forbidden(
            "Adding a passkey or an authenticator app needs a sign-in with a passkey in the last 5 minutes, or a Temporary Access Pass; sign in again.".into(),
        ))
    }
}

/// Starts a session for `user_id` with its first method. Returns the session and the token to
/// hand to the browser (shown nowhere else).
pub fn new_session<S: SessionStore + ?Sized>(
    deps: &Deps<S>,
    user_id: Uuid,
    first: SessionMethod,
) -> (AuthSession, String) {
    let now = deps.clock.now();
    let token = split_token::issue(deps.entropy.as_ref(), now, 43);
    (
        AuthSession {
            id: token.id,
            secret_hash: Some(token.secret_hash),
            user_id,
            methods: vec![first],
            created: now,
            expires: now + SESSION_LIFETIME,
        },
        token.text,
    )
}

/// The live session a token names, if any.
pub async fn session_for_token<S: SessionStore + ?Sized>(
    deps: &Deps<S>,
    token: &str,
) -> Result<Option<AuthSession>> {
    let presented = PresentedToken::parse(token, LegacyLookup::HashOfWholeToken);
    // The store's read finds no session of an account that is disabled or gone (checked in the
    // same statement): disabling or deleting a person ends their sessions in the same
    // transaction, and this keeps that true for a row that outlived it anyway (a commit that
    // predates the rule, a restored backup).
    let session = deps.store.session_by_token(presented.key()).await?;
    // A wrong secret is refused as an unknown token is: same answer, nothing changed.
    Ok(session
        .filter(|s| presented.matches(s.secret_hash.as_deref()))
        .filter(|s| s.expires > deps.clock.now()))
}

/// Sessions as the web layer meets them: the live session behind a cookie, who it belongs to,
/// and signing out. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    deps: Deps<dyn SessionStore>,
}

impl Sessions {
    pub fn new(deps: Deps<dyn SessionStore>) -> Self {
        Sessions { deps }
    }

    /// The live session a token names, if any.
    pub async fn for_token(&self, token: &str) -> Result<Option<AuthSession>> {
        session_for_token(&self.deps, token).await
    }

    /// The person a session belongs to; `None` once their account is gone.
    pub async fn person(
        &self,
        session: &AuthSession,
    ) -> Result<Option<crate::directory::model::User>> {
        self.deps.store.user(session.user_id).await
    }

    /// Ends a session (signing out): its token stops working on every node at once.
    pub async fn end(&self, session: &AuthSession) -> Result<()> {
        self.deps
            .store
            .commit(vec![store::SessionChange::DeleteSession(session.id)], None)
            .await
    }

    /// Signs the session's person out everywhere: every session of theirs and every refresh
    /// token issued to them end, on every node, in one transaction with its audit entry.
    pub async fn end_everywhere(
        &self,
        session: &AuthSession,
        request: &RequestContext,
    ) -> Result<()> {
        let Some(user) = self.deps.store.user(session.user_id).await? else {
            return Err(Error::Unauthenticated("Sign in again.".into()));
        };
        let now = self.deps.clock.now();
        let actor = Actor::User {
            id: user.id,
            user_principal_name: user.user_principal_name.clone(),
        };
        let audit = DirectoryAudit {
            id: self.deps.entropy.uuid(),
            category: "UserManagement".to_string(),
            correlation_id: request.correlation_id,
            result: "success".to_string(),
            result_reason: String::new(),
            activity_display_name: "Invalidate all refresh tokens for user".to_string(),
            activity_date_time: now,
            logged_by_service: "Core Directory".to_string(),
            operation_type: "Update".to_string(),
            initiated_by: AuditActivityInitiator::from_actor(&actor, request.ip_address.clone()),
            target_resources: vec![
                TargetResource::new("User", user.id, &user.display_name)
                    .with_upn(&user.user_principal_name),
            ],
            additional_details: Vec::new(),
        };
        Commit::<DirectoryChange>::commit(
            self.deps.store.as_ref(),
            vec![DirectoryChange::EndSignIns {
                user_id: user.id,
                credential_id: None,
                at: now,
            }],
            Some(audit),
        )
        .await
    }

    /// The current time on the server's clock (a session's recency is judged against it).
    pub fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(method: MethodKind, at: OffsetDateTime) -> SessionMethod {
        SessionMethod {
            method,
            at,
            aaguid: None,
            credential_id: None,
            backup_eligible: false,
            one_time: false,
        }
    }

    fn session(methods: Vec<SessionMethod>) -> AuthSession {
        AuthSession {
            id: Uuid::nil(),
            secret_hash: None,
            user_id: Uuid::nil(),
            methods,
            created: OffsetDateTime::UNIX_EPOCH,
            expires: OffsetDateTime::UNIX_EPOCH + SESSION_LIFETIME,
        }
    }

    #[test]
    fn each_method_names_its_own_references() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let mut synced = used(MethodKind::Fido2, t);
        synced.backup_eligible = true;
        assert_eq!(synced.amr(), ["swk", "user", "pin"]);
        assert_eq!(used(MethodKind::Fido2, t).amr(), ["hwk", "user", "pin"]);
        assert_eq!(used(MethodKind::Password, t).amr(), ["pwd"]);
        assert_eq!(used(MethodKind::SoftwareOath, t).amr(), ["otp"]);
        assert_eq!(used(MethodKind::TemporaryAccessPass, t).amr(), ["tap"]);
    }

    #[test]
    fn a_one_time_pass_reads_as_one_time_to_the_strengths() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let mut pass = used(MethodKind::TemporaryAccessPass, t);
        assert_eq!(
            pass.strength_mode().mode,
            AuthenticationMethodMode::TemporaryAccessPassMultiUse
        );
        pass.one_time = true;
        assert_eq!(
            pass.strength_mode().mode,
            AuthenticationMethodMode::TemporaryAccessPassOneTime
        );
    }

    #[test]
    fn registering_needs_a_recent_passkey_or_a_pass_within_its_window() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let passkey = session(vec![used(MethodKind::Fido2, t)]);
        assert!(
            passkey
                .may_register_methods(t + Duration::minutes(5))
                .is_ok()
        );
        assert!(
            passkey
                .may_register_methods(t + Duration::minutes(6))
                .is_err()
        );

        let mut one_time = used(MethodKind::TemporaryAccessPass, t);
        one_time.one_time = true;
        let one_time = session(vec![one_time]);
        assert!(
            one_time
                .may_register_methods(t + Duration::minutes(10))
                .is_ok()
        );
        assert!(
            one_time
                .may_register_methods(t + Duration::minutes(11))
                .is_err()
        );

        let multi_use = session(vec![used(MethodKind::TemporaryAccessPass, t)]);
        assert!(
            multi_use
                .may_register_methods(t + Duration::hours(11))
                .is_ok()
        );

        let password = session(vec![
            used(MethodKind::Password, t),
            used(MethodKind::SoftwareOath, t),
        ]);
        assert!(password.may_register_methods(t).is_err());
    }
}
