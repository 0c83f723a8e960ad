//! Passwords: optional per tenant (off by default — passkeys are the way in), hashed with
//! argon2id, changed by their owner, reset by an administrator, and counted toward a lockout on
//! wrong guesses like every other sign-in secret.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::audit::{KeyValue, RequestContext, TargetResource};
use crate::directory::authz::{
    Actor, Granted, ReadPolicies, WriteAuthenticationMethodPolicy, WriteUserMethods, WriteUsers,
};
use crate::directory::model::User;
use crate::directory::store::DirectoryChange;
use crate::directory::store::DirectoryStore;
use crate::directory::tiers::{self, SensitiveAction};
use crate::directory::{Directory, NewUser};
use crate::kernel::Deps;
use crate::kernel::error::SignInErrorCode;
use crate::kernel::typed_secret::{self, DECOY_HASH};
use crate::methods::lockout::{self, LockoutKeys};
use crate::methods::store::{MethodChange as Change, MethodStore};
use crate::methods::tap::audit_entry;
use crate::session::store::SessionChange;
use crate::session::{AuthSession, MethodKind, SessionMethod, new_session};
use crate::{Error, Result};

pub const CONFIGURATION_ID: &str = "Password";
/// Graph's fixed id of the password method.
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 256;

/// Whether the tenant allows passwords (a Portcullis setting in the methods policy's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordConfiguration {
    #[serde(rename = "@odata.type", default = "odata_type")]
    pub odata_type: String,
    #[serde(default = "config_id")]
    pub id: String,
    /// `enabled` or `disabled` (the default).
    pub state: String,
}

fn odata_type() -> String {
    "#portcullis.passwordAuthenticationMethodConfiguration".to_string()
}
fn config_id() -> String {
    CONFIGURATION_ID.to_string()
}

impl Default for PasswordConfiguration {
    fn default() -> Self {
        PasswordConfiguration {
            odata_type: odata_type(),
            id: config_id(),
            state: "disabled".to_string(),
        }
    }
}

/// Length and a few obvious refusals; no composition rules (they make passwords worse).
pub fn check_new_password(user: &User, password: &str) -> Result<()> {
    check_password_in(user, password, "newPassword")
}

/// [`check_new_password`] for a password given in the field `field`.
fn check_password_in(user: &User, password: &str, field: &'static str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Error::invalid(
            field,
            format!("{field}: at least {MIN_LENGTH} characters."),
        ));
    }
    if length > MAX_LENGTH {
        return Err(Error::invalid(
            field,
            format!("{field}: at most {MAX_LENGTH} characters."),
        ));
    }
    let lower = password.to_lowercase();
    let local = user
        .user_principal_name
        .split('@')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if lower == user.user_principal_name.to_lowercase()
        || (!local.is_empty() && lower.contains(&local))
    {
        return Err(Error::invalid(
            field,
            format!("{field}: must not contain the user name."),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetPassword {
    pub new_password: String,
}

#[derive(Clone)]
pub struct Passwords {
    deps: Deps<dyn MethodStore>,
    /// Asked before the method's configuration changes: the lockout guard, set by the
    /// composition root with [`Passwords::with_policy_check`].
    policy_check: Option<std::sync::Arc<dyn crate::methods::config::MethodPolicyCheck>>,
}

impl Passwords {
    pub fn new(deps: Deps<dyn MethodStore>) -> Self {
        Passwords {
            deps,
            policy_check: None,
        }
    }

    pub fn with_policy_check(
        mut self,
        check: std::sync::Arc<dyn crate::methods::config::MethodPolicyCheck>,
    ) -> Self {
        self.policy_check = Some(check);
        self
    }

    /// When the person's password was last set; `None` when they have none.
    pub async fn last_set(&self, user_id: Uuid) -> Result<Option<time::OffsetDateTime>> {
        Ok(self.deps.store.password(user_id).await?.map(|(_, at)| at))
    }

    pub async fn configuration(&self) -> Result<PasswordConfiguration> {
        crate::methods::config::load(&self.deps, CONFIGURATION_ID).await
    }

    pub async fn read_configuration(
        &self,
        _grant: &Granted<ReadPolicies>,
    ) -> Result<PasswordConfiguration> {
        self.configuration().await
    }

    pub async fn update_configuration(
        &self,
        grant: &Granted<WriteAuthenticationMethodPolicy>,
        request: &RequestContext,
        patch: Value,
    ) -> Result<PasswordConfiguration> {
        crate::methods::config::update(
            &self.deps,
            grant,
            request,
            (CONFIGURATION_ID, "Password"),
            patch,
            |new: &PasswordConfiguration| {
                if new.state != "enabled" && new.state != "disabled" {
                    return Err(Error::invalid(
                        "state",
                        "state: must be enabled or disabled.",
                    ));
                }
                Ok(())
            },
            self.policy_check.as_deref(),
        )
        .await
    }

    async fn user(&self, key: &str) -> Result<User> {
        let found = match Uuid::parse_str(key) {
            Ok(id) => self.deps.store.user(id).await?,
            Err(_) => self.deps.store.user_by_upn(key).await?,
        };
        found.ok_or_else(|| Error::not_found("user", key))
    }

    async fn set(
        &self,
        actor: &Actor,
        request: &RequestContext,
        user: &User,
        new_password: &str,
        activity: &str,
    ) -> Result<()> {
        if self.configuration().await?.state != "enabled" {
            return Err(Error::invalid(
                "newPassword",
                "Passwords are turned off in this tenant's authentication methods policy.",
            ));
        }
        check_new_password(user, new_password)?;
        let hash = typed_secret::hash(&self.deps, new_password).await?;
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name);
        let audit = audit_entry(
            &self.deps,
            actor,
            request,
            "UserManagement",
            activity,
            "Update",
            target,
        );
        let now = self.deps.clock.now();
        let mut changes = vec![Change::SetPassword {
            user_id: user.id,
            hash,
            changed: now,
        }];
        // Someone else setting the password (a reset) means the old one is no longer trusted:
        // whatever was signed in with it ends. A person changing their own keeps the session
        // they are changing it from.
        if !matches!(actor, Actor::User { id, .. } if *id == user.id) {
            changes.push(
                DirectoryChange::EndSignIns {
                    user_id: user.id,
                    credential_id: None,
                    at: now,
                }
                .into(),
            );
        }
        self.deps.store.commit(changes, Some(audit)).await
    }

    /// An administrator sets a new password for someone.
    pub async fn reset(
        &self,
        grant: &Granted<WriteUserMethods>,
        request: &RequestContext,
        user_key: &str,
        input: ResetPassword,
    ) -> Result<()> {
        let user = self.user(user_key).await?;
        tiers::enforce(
            &crate::narrow!(self.deps, DirectoryStore),
            grant,
            request,
            SensitiveAction::ResetPassword,
            &user,
        )
        .await?;
        self.set(
            grant.actor(),
            request,
            &user,
            &input.new_password,
            "Reset user password",
        )
        .await
    }

    /// `POST /users` with Graph's `passwordProfile`: the user and their password in one
    /// transaction, so a refused password creates nobody. The password method must be enabled
    /// and the password passes the rules of [`Passwords::reset`]. A new user holds no role, so
    /// the tiers of who may set whose password allow any caller who may create users.
    pub async fn create_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        input: NewUser,
    ) -> Result<User> {
        const FIELD: &str = "passwordProfile";
        let Some(profile) = input.password_profile.clone() else {
            return Err(Error::invalid(FIELD, "passwordProfile: required here."));
        };
        if profile.force_change_password_next_sign_in == Some(true)
            || profile.force_change_password_next_sign_in_with_mfa == Some(true)
        {
            return Err(Error::invalid(
                FIELD,
                "passwordProfile: Portcullis cannot require a password change at the next \
                 sign-in; send forceChangePasswordNextSignIn false, or create the user without a \
                 password and issue a Temporary Access Pass for the first sign-in.",
            ));
        }
        if self.configuration().await?.state != "enabled" {
            return Err(Error::invalid(
                FIELD,
                "passwordProfile: passwords are turned off in this tenant's authentication \
                 methods policy; enable the Password method first, or create the user without \
                 passwordProfile.",
            ));
        }
        let directory = Directory::new(crate::narrow!(self.deps, DirectoryStore));
        let (user, mut audit) = directory.stage_new_user(grant, request, &input)?;
        if let Err(e) = directory.check_mail_free(&user).await {
            return Err(directory.refused(audit, e).await);
        }
        check_password_in(&user, &profile.password, "passwordProfile.password")?;
        let hash = typed_secret::hash(&self.deps, &profile.password).await?;
        audit.additional_details.push(KeyValue {
            key: "passwordSet".to_string(),
            value: "true".to_string(),
        });
        let changes: Vec<Change> = vec![
            DirectoryChange::InsertUser(user.clone()).into(),
            Change::SetPassword {
                user_id: user.id,
                hash,
                changed: self.deps.clock.now(),
            },
        ];
        self.deps.store.commit(changes, Some(audit)).await?;
        Ok(user)
    }

    /// The owner changes their password, proving the current one.
    pub async fn change(
        &self,
        session: &AuthSession,
        request: &RequestContext,
        current: &str,
        new_password: &str,
    ) -> Result<()> {
        let user = self
            .deps
            .store
            .user(session.user_id)
            .await?
            .ok_or_else(|| Error::not_found("user", session.user_id.to_string()))?;
        let (stored, _) = self.deps.store.password(user.id).await?.ok_or_else(|| {
            Error::invalid(
                "currentPassword",
                "You have no password to change; ask an administrator to set one.",
            )
        })?;
        if !typed_secret::verify(&self.deps, current, &stored).await {
            return Err(Error::invalid(
                "currentPassword",
                "currentPassword: that is not your current password.",
            ));
        }
        let actor = Actor::User {
            id: user.id,
            user_principal_name: user.user_principal_name.clone(),
        };
        self.set(&actor, request, &user, new_password, "Change user password")
            .await
    }

    /// Signs a person in, and writes the sign-in log entry for the attempt whatever its outcome.
    pub async fn sign_in(
        &self,
        user_principal_name: &str,
        password: &str,
        facts: &crate::logs::sign_in::RequestFacts,
    ) -> Result<(User, AuthSession, String)> {
        let mut found = None;
        let outcome = self
            .attempt(user_principal_name, password, facts, &mut found)
            .await;
        crate::methods::logged_first_factor(
            &self.deps,
            facts,
            user_principal_name,
            MethodKind::Password,
            found.as_ref(),
            outcome,
        )
        .await
    }

    /// Signs a person in with their password: a new session whose first method is the password.
    async fn attempt(
        &self,
        user_principal_name: &str,
        password: &str,
        facts: &crate::logs::sign_in::RequestFacts,
        found: &mut Option<User>,
    ) -> Result<(User, AuthSession, String)> {
        let refused = |code: SignInErrorCode, reason: &str| Error::sign_in_refused(code, reason);
        let wrong = "Your account or password is incorrect.";
        if self.configuration().await?.state != "enabled" {
            return Err(refused(
                SignInErrorCode::InvalidCredentials,
                "Passwords are not accepted here; sign in with a passkey.",
            ));
        }
        let user = self
            .deps
            .store
            .user_by_upn(user_principal_name.trim())
            .await?;
        let now = self.deps.clock.now();
        let keys = LockoutKeys::for_name(
            "password",
            user.as_ref().map(|u| u.id),
            user_principal_name,
            facts.ip_address.as_deref(),
        );
        // The guess is counted before it is compared; only an attempt holding its slots compares.
        let attempt = match lockout::begin(&self.deps, &keys).await? {
            Ok(attempt) => attempt,
            Err(lock) => return Err(refused(SignInErrorCode::AccountLocked, &lock.message(now))),
        };
        let fail = |attempt: lockout::Attempt| match attempt.failed() {
            Some(lock) => Err(refused(SignInErrorCode::AccountLocked, &lock.message(now))),
            None => Err(refused(SignInErrorCode::InvalidCredentials, wrong)),
        };
        let Some(user) = user else {
            typed_secret::verify(&self.deps, password, DECOY_HASH).await;
            return fail(attempt);
        };
        *found = Some(user.clone());
        let stored = self.deps.store.password(user.id).await?;
        let matches = match &stored {
            Some((hash, _)) => typed_secret::verify(&self.deps, password, hash).await,
            None => {
                typed_secret::verify(&self.deps, password, DECOY_HASH).await;
                false
            }
        };
        if !matches {
            return fail(attempt);
        }
        if !user.account_enabled {
            attempt.released(&self.deps).await?;
            return Err(refused(
                SignInErrorCode::AccountDisabled,
                "Your account has been disabled. Contact your administrator.",
            ));
        }
        attempt.succeeded(&self.deps).await?;
        let (session, token) = new_session(
            &self.deps,
            user.id,
            SessionMethod {
                method: MethodKind::Password,
                at: now,
                aaguid: None,
                credential_id: None,
                one_time: false,
                backup_eligible: false,
            },
        );
        self.deps
            .store
            .commit(
                vec![Change::from(SessionChange::InsertSession(session.clone()))],
                None,
            )
            .await?;
        Ok((user, session, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_password_rules() {
        let user = User {
            id: Uuid::new_v4(),
            user_principal_name: "joni@contoso.com".into(),
            display_name: "Joni".into(),
            mail: None,
            account_enabled: true,
            user_type: crate::directory::model::UserType::Member,
            created_date_time: time::OffsetDateTime::UNIX_EPOCH,
        };
        assert!(check_new_password(&user, "correct horse battery").is_ok());
        assert!(check_new_password(&user, "short").is_err());
        assert!(check_new_password(&user, "JONI1234567").is_err());
        assert!(check_new_password(&user, &"x".repeat(257)).is_err());
    }
}
