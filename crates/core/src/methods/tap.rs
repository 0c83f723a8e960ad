//! Temporary Access Pass: a time-limited pass an administrator issues so that a person without
//! any method can sign in once (or for a while) and register a passkey.
//!
//! Rules kept here (Entra's, see the reference): one pass per person, a new one replaces the
//! old; the value is shown once, in the create response, and stored only as an argon2id hash
//! compared in constant time; lifetime, start time and one-time use obey the method policy's
//! limits; a one-time pass is redeemed atomically, exactly once across every node; wrong
//! guesses count toward a lockout of the account's pass sign-in; who may issue a pass to whom
//! follows the roles involved. A pass satisfies the Multifactor strength only — that rule lives
//! in the policy engine's built-in strengths, which know TAP as its own method.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::audit::{
    AuditActivityInitiator, DirectoryAudit, RequestContext, TargetResource,
};
use crate::directory::authz::{
    Actor, Granted, ReadPolicies, ReadUserMethods, WriteAuthenticationMethodPolicy,
    WriteUserMethods,
};
use crate::directory::model::{User, UserType};
use crate::directory::store::DirectoryChange;
use crate::directory::store::DirectoryStore;
use crate::directory::tiers::{self, SensitiveAction};
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::error::SignInErrorCode;
use crate::kernel::typed_secret::{self, DECOY_HASH};
use crate::methods::lockout::{self, LockoutKeys};
use crate::methods::store::{MethodChange as Change, MethodStore};
use crate::session::store::SessionChange;
use crate::session::{AuthSession, MethodKind, SessionMethod, new_session};
use crate::{Error, Result};

/// The configuration's id in the authentication methods policy.
pub const CONFIGURATION_ID: &str = "TemporaryAccessPass";
/// Entra's bounds for any lifetime setting: ten minutes to thirty days.
pub const LIFETIME_RANGE: std::ops::RangeInclusive<u32> = 10..=43_200;
pub const LENGTH_RANGE: std::ops::RangeInclusive<u32> = 8..=48;

/// A person's pass, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryAccessPass {
    pub id: Uuid,
    pub user_id: Uuid,
    /// argon2id PHC string.
    pub pass_hash: String,
    pub start: OffsetDateTime,
    pub lifetime_minutes: u32,
    pub is_usable_once: bool,
    pub created: OffsetDateTime,
    /// When a one-time pass was redeemed.
    pub used: Option<OffsetDateTime>,
}

impl TemporaryAccessPass {
    pub fn end(&self) -> OffsetDateTime {
        self.start + Duration::minutes(i64::from(self.lifetime_minutes))
    }
}

/// Graph's `includeTargets` / `excludeTargets` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodTarget {
    #[serde(default = "group_target")]
    pub target_type: String,
    /// A group id, or `all_users`.
    pub id: String,
    #[serde(default)]
    pub is_registration_required: bool,
}

fn group_target() -> String {
    "group".to_string()
}

/// `temporaryAccessPassAuthenticationMethodConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TapConfiguration {
    #[serde(rename = "@odata.type", default = "tap_odata_type")]
    pub odata_type: String,
    #[serde(default = "tap_id")]
    pub id: String,
    /// `enabled` or `disabled`.
    pub state: String,
    pub include_targets: Vec<MethodTarget>,
    #[serde(default)]
    pub exclude_targets: Vec<MethodTarget>,
    pub default_lifetime_in_minutes: u32,
    pub minimum_lifetime_in_minutes: u32,
    pub maximum_lifetime_in_minutes: u32,
    pub default_length: u32,
    pub is_usable_once: bool,
}

fn tap_odata_type() -> String {
    "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration".to_string()
}
fn tap_id() -> String {
    CONFIGURATION_ID.to_string()
}

impl Default for TapConfiguration {
    /// Entra's portal defaults, except that the method starts enabled for all users: first start
    /// hands the bootstrap administrator a pass, and it must work.
    fn default() -> Self {
        TapConfiguration {
            odata_type: tap_odata_type(),
            id: tap_id(),
            state: "enabled".to_string(),
            include_targets: vec![MethodTarget {
                target_type: "group".to_string(),
                id: "all_users".to_string(),
                is_registration_required: false,
            }],
            exclude_targets: Vec::new(),
            default_lifetime_in_minutes: 60,
            minimum_lifetime_in_minutes: 60,
            maximum_lifetime_in_minutes: 480,
            default_length: 8,
            is_usable_once: false,
        }
    }
}

impl TapConfiguration {
    fn validate(&self) -> Result<()> {
        if self.state != "enabled" && self.state != "disabled" {
            return Err(Error::invalid(
                "state",
                "state: must be enabled or disabled.",
            ));
        }
        for (field, value) in [
            ("defaultLifetimeInMinutes", self.default_lifetime_in_minutes),
            ("minimumLifetimeInMinutes", self.minimum_lifetime_in_minutes),
            ("maximumLifetimeInMinutes", self.maximum_lifetime_in_minutes),
        ] {
            if !LIFETIME_RANGE.contains(&value) {
                return Err(Error::invalid(
                    field,
                    format!("{field}: must be from 10 to 43200 minutes."),
                ));
            }
        }
        if self.minimum_lifetime_in_minutes > self.maximum_lifetime_in_minutes {
            return Err(Error::invalid(
                "minimumLifetimeInMinutes",
                "minimumLifetimeInMinutes: must not exceed maximumLifetimeInMinutes.",
            ));
        }
        if !(self.minimum_lifetime_in_minutes..=self.maximum_lifetime_in_minutes)
            .contains(&self.default_lifetime_in_minutes)
        {
            return Err(Error::invalid(
                "defaultLifetimeInMinutes",
                "defaultLifetimeInMinutes: must lie between minimumLifetimeInMinutes and maximumLifetimeInMinutes.",
            ));
        }
        if !LENGTH_RANGE.contains(&self.default_length) {
            return Err(Error::invalid(
                "defaultLength",
                "defaultLength: must be from 8 to 48 characters.",
            ));
        }
        for (field, targets) in [
            ("includeTargets", &self.include_targets),
            ("excludeTargets", &self.exclude_targets),
        ] {
            for t in targets {
                if t.target_type != "group" {
                    return Err(Error::invalid(
                        field,
                        format!("{field}: targetType must be group."),
                    ));
                }
                if t.id != "all_users" && Uuid::parse_str(&t.id).is_err() {
                    return Err(Error::invalid(
                        field,
                        format!("{field}: '{}' is neither all_users nor a group id.", t.id),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the policy lets this person sign in with a pass: enabled, targeted, not excluded.
    pub fn applies_to(&self, group_ids: &[Uuid]) -> bool {
        let in_targets = |targets: &[MethodTarget]| {
            targets.iter().any(|t| {
                t.id == "all_users" || Uuid::parse_str(&t.id).is_ok_and(|g| group_ids.contains(&g))
            })
        };
        self.state == "enabled"
            && in_targets(&self.include_targets)
            && !in_targets(&self.exclude_targets)
    }
}

/// Body of `POST /users/{id}/authentication/temporaryAccessPassMethods`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTemporaryAccessPass {
    #[serde(default, with = "graph_datetime::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub lifetime_in_minutes: Option<u32>,
    #[serde(default)]
    pub is_usable_once: Option<bool>,
    #[serde(default, rename = "@odata.type")]
    #[schema(ignore)]
    pub odata_type: Option<String>,
}

/// `temporaryAccessPassAuthenticationMethod` as Graph shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassMethod {
    pub id: Uuid,
    /// The pass itself: only in the response that created it, `null` everywhere else.
    pub temporary_access_pass: Option<String>,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub start_date_time: OffsetDateTime,
    pub lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    pub is_usable: bool,
    /// `EnabledByPolicy`, `DisabledByPolicy`, `Expired`, `NotYetValid`, `OneTimeUsed`.
    pub method_usability_reason: String,
}

/// Why a pass can or cannot be used now.
pub fn usability(
    tap: &TemporaryAccessPass,
    applies: bool,
    now: OffsetDateTime,
) -> (bool, &'static str) {
    if !applies {
        (false, "DisabledByPolicy")
    } else if tap.used.is_some() {
        (false, "OneTimeUsed")
    } else if now < tap.start {
        (false, "NotYetValid")
    } else if now >= tap.end() {
        (false, "Expired")
    } else {
        (true, "EnabledByPolicy")
    }
}

/// A pass's characters: letters, digits and a few symbols, without look-alikes (0/O, 1/l/I).
fn generate_pass<S: MethodStore + ?Sized>(deps: &Deps<S>, length: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789+=@#%";
    let limit = 256 - (256 % ALPHABET.len());
    let mut out = String::new();
    let mut buf = [0u8; 64];
    while out.len() < length as usize {
        deps.entropy.fill(&mut buf);
        for &b in &buf {
            if (b as usize) < limit && out.len() < length as usize {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

#[derive(Clone)]
pub struct TemporaryAccessPasses {
    deps: Deps<dyn MethodStore>,
    /// Asked before the method's configuration changes: the lockout guard, set by the
    /// composition root with [`TemporaryAccessPasses::with_policy_check`].
    policy_check: Option<std::sync::Arc<dyn crate::methods::config::MethodPolicyCheck>>,
}

impl TemporaryAccessPasses {
    pub fn new(deps: Deps<dyn MethodStore>) -> Self {
        TemporaryAccessPasses {
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

    pub async fn configuration(&self) -> Result<TapConfiguration> {
        crate::methods::config::load(&self.deps, CONFIGURATION_ID).await
    }

    pub async fn read_configuration(
        &self,
        _grant: &Granted<ReadPolicies>,
    ) -> Result<TapConfiguration> {
        self.configuration().await
    }

    pub async fn update_configuration(
        &self,
        grant: &Granted<WriteAuthenticationMethodPolicy>,
        request: &RequestContext,
        patch: Value,
    ) -> Result<TapConfiguration> {
        crate::methods::config::update(
            &self.deps,
            grant,
            request,
            (CONFIGURATION_ID, "Temporary Access Pass"),
            patch,
            TapConfiguration::validate,
            self.policy_check.as_deref(),
        )
        .await
    }

    async fn target_user(&self, key: &str) -> Result<User> {
        let found = match Uuid::parse_str(key) {
            Ok(id) => self.deps.store.user(id).await?,
            Err(_) => self.deps.store.user_by_upn(key).await?,
        };
        found.ok_or_else(|| Error::not_found("user", key))
    }

    async fn view(
        &self,
        tap: &TemporaryAccessPass,
        pass: Option<String>,
    ) -> Result<TemporaryAccessPassMethod> {
        let config = self.configuration().await?;
        let groups: Vec<Uuid> = self
            .deps
            .store
            .transitive_member_of(tap.user_id)
            .await?
            .iter()
            .map(|g| g.id)
            .collect();
        let (is_usable, reason) = usability(tap, config.applies_to(&groups), self.deps.clock.now());
        Ok(TemporaryAccessPassMethod {
            id: tap.id,
            temporary_access_pass: pass,
            created_date_time: tap.created,
            start_date_time: tap.start,
            lifetime_in_minutes: tap.lifetime_minutes,
            is_usable_once: tap.is_usable_once,
            is_usable,
            method_usability_reason: reason.to_string(),
        })
    }

    /// Who may issue (or delete) a pass for whom is one case of the directory's tier rule
    /// ([`tiers`]): nobody for themselves; a Privileged Authentication Administrator or Global
    /// Administrator for anyone; an Authentication Administrator for people without a role and
    /// the few roles Entra lists; an application by the roles its permissions stand for.
    async fn check_authority(
        &self,
        grant: &Granted<WriteUserMethods>,
        request: &RequestContext,
        action: SensitiveAction,
        target: &User,
    ) -> Result<()> {
        tiers::enforce(
            &crate::narrow!(self.deps, DirectoryStore),
            grant,
            request,
            action,
            target,
        )
        .await
    }

    /// Issues a pass, replacing any the person had. The returned method carries the pass: the
    /// only time it exists outside a hash.
    pub async fn issue(
        &self,
        grant: &Granted<WriteUserMethods>,
        request: &RequestContext,
        user_key: &str,
        input: NewTemporaryAccessPass,
    ) -> Result<TemporaryAccessPassMethod> {
        let user = self.target_user(user_key).await?;
        self.check_authority(
            grant,
            request,
            SensitiveAction::IssueTemporaryAccessPass,
            &user,
        )
        .await?;
        self.issue_unchecked(grant.actor(), request, &user, input)
            .await
    }

    /// Checks a new pass against the policy and makes it: the row to store and the pass itself,
    /// which exists only here and in the answer to the one who asked for it. Nothing is stored.
    async fn prepare(
        &self,
        user: &User,
        input: NewTemporaryAccessPass,
    ) -> Result<(TemporaryAccessPass, String)> {
        if user.user_type == UserType::Guest && user.user_principal_name.contains("#EXT#") {
            return Err(Error::invalid(
                "user",
                "Temporary Access Pass cannot be added to an external guest user.",
            ));
        }
        let config = self.configuration().await?;
        let now = self.deps.clock.now();
        let lifetime = input
            .lifetime_in_minutes
            .unwrap_or(config.default_lifetime_in_minutes);
        if !(config.minimum_lifetime_in_minutes..=config.maximum_lifetime_in_minutes)
            .contains(&lifetime)
        {
            return Err(Error::invalid(
                "lifetimeInMinutes",
                format!(
                    "lifetimeInMinutes: the policy allows {} to {} minutes.",
                    config.minimum_lifetime_in_minutes, config.maximum_lifetime_in_minutes
                ),
            ));
        }
        let is_usable_once = match input.is_usable_once {
            Some(false) if config.is_usable_once => {
                return Err(Error::invalid(
                    "isUsableOnce",
                    "isUsableOnce: the policy allows one-time passes only.",
                ));
            }
            Some(v) => v,
            None => config.is_usable_once,
        };
        let start = input.start_date_time.unwrap_or(now);
        if start + Duration::minutes(i64::from(lifetime)) <= now {
            return Err(Error::invalid(
                "startDateTime",
                "startDateTime: the pass would have expired already.",
            ));
        }
        if start > now + Duration::days(30) {
            return Err(Error::invalid(
                "startDateTime",
                "startDateTime: at most 30 days ahead.",
            ));
        }
        let pass = generate_pass(&self.deps, config.default_length);
        let tap = TemporaryAccessPass {
            id: self.deps.entropy.uuid(),
            user_id: user.id,
            pass_hash: typed_secret::hash(&self.deps, &pass).await?,
            start,
            lifetime_minutes: lifetime,
            is_usable_once,
            created: now,
            used: None,
        };
        Ok((tap, pass))
    }

    async fn issue_unchecked(
        &self,
        actor: &Actor,
        request: &RequestContext,
        user: &User,
        input: NewTemporaryAccessPass,
    ) -> Result<TemporaryAccessPassMethod> {
        let (tap, pass) = self.prepare(user, input).await?;
        let start = tap.start;
        let lifetime = tap.lifetime_minutes;
        let is_usable_once = tap.is_usable_once;
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name)
            .modified(
                "TemporaryAccessPass",
                None,
                Some(&serde_json::json!({
                    "startDateTime": graph_datetime::format(start),
                    "lifetimeInMinutes": lifetime,
                    "isUsableOnce": is_usable_once,
                })),
            );
        let audit = audit_entry(
            &self.deps,
            actor,
            request,
            "UserManagement",
            "Admin registered temporary access pass method for user",
            "Add",
            target,
        );
        self.deps
            .store
            .commit(
                vec![Change::PutTemporaryAccessPass(tap.clone())],
                Some(audit),
            )
            .await?;
        self.view(&tap, Some(pass)).await
    }

    /// First start: a one-time pass for the bootstrap administrator, for the longest lifetime the
    /// policy allows, not stored: [`crate::bootstrap`] commits it with the tenant, in one
    /// transaction, after the pass has been handed out.
    pub async fn prepare_bootstrap(&self, user: &User) -> Result<(TemporaryAccessPass, String)> {
        let config = self.configuration().await?;
        self.prepare(
            user,
            NewTemporaryAccessPass {
                is_usable_once: Some(true),
                lifetime_in_minutes: Some(config.maximum_lifetime_in_minutes),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn list(
        &self,
        _grant: &Granted<ReadUserMethods>,
        user_key: &str,
    ) -> Result<Vec<TemporaryAccessPassMethod>> {
        let user = self.target_user(user_key).await?;
        match self.deps.store.temporary_access_pass(user.id).await? {
            Some(tap) => Ok(vec![self.view(&tap, None).await?]),
            None => Ok(Vec::new()),
        }
    }

    pub async fn get(
        &self,
        grant: &Granted<ReadUserMethods>,
        user_key: &str,
        id: &str,
    ) -> Result<TemporaryAccessPassMethod> {
        self.list(grant, user_key)
            .await?
            .into_iter()
            .find(|m| m.id.to_string().eq_ignore_ascii_case(id.trim()))
            .ok_or_else(|| Error::not_found("temporaryAccessPassAuthenticationMethod", id))
    }

    pub async fn delete(
        &self,
        grant: &Granted<WriteUserMethods>,
        request: &RequestContext,
        user_key: &str,
        id: &str,
    ) -> Result<()> {
        let user = self.target_user(user_key).await?;
        self.check_authority(
            grant,
            request,
            SensitiveAction::DeleteTemporaryAccessPass,
            &user,
        )
        .await?;
        let tap = self
            .deps
            .store
            .temporary_access_pass(user.id)
            .await?
            .filter(|t| t.id.to_string().eq_ignore_ascii_case(id.trim()))
            .ok_or_else(|| Error::not_found("temporaryAccessPassAuthenticationMethod", id))?;
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name);
        let audit = audit_entry(
            &self.deps,
            grant.actor(),
            request,
            "UserManagement",
            "Admin deleted security info",
            "Delete",
            target,
        );
        self.deps
            .store
            .commit(
                vec![
                    Change::DeleteTemporaryAccessPass {
                        user_id: user.id,
                        id: tap.id,
                    },
                    // The sessions the pass opened end with it (and their grants).
                    DirectoryChange::EndSignIns {
                        user_id: user.id,
                        credential_id: Some(tap.id.to_string()),
                        at: self.deps.clock.now(),
                    }
                    .into(),
                ],
                Some(audit),
            )
            .await
    }

    /// Signs a person in, and writes the sign-in log entry for the attempt whatever its outcome.
    pub async fn sign_in(
        &self,
        user_principal_name: &str,
        pass: &str,
        facts: &crate::logs::sign_in::RequestFacts,
    ) -> Result<(User, AuthSession, String)> {
        let mut found = None;
        let outcome = self
            .attempt(user_principal_name, pass, facts, &mut found)
            .await;
        crate::methods::logged_first_factor(
            &self.deps,
            facts,
            user_principal_name,
            MethodKind::TemporaryAccessPass,
            found.as_ref(),
            outcome,
        )
        .await
    }

    /// Signs a person in with their pass. On success, a new session whose first method is the
    /// pass (and the token for its cookie). Unknown user and wrong pass look alike.
    async fn attempt(
        &self,
        user_principal_name: &str,
        pass: &str,
        facts: &crate::logs::sign_in::RequestFacts,
        found: &mut Option<User>,
    ) -> Result<(User, AuthSession, String)> {
        let refused = |code: SignInErrorCode, reason: &str| Error::sign_in_refused(code, reason);
        let wrong = "Your account or Temporary Access Pass is incorrect.";
        let user = self
            .deps
            .store
            .user_by_upn(user_principal_name.trim())
            .await?;
        let now = self.deps.clock.now();
        let keys = LockoutKeys::for_name(
            "tap",
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
            // As long as a wrong pass takes, so that timing does not tell which accounts exist.
            typed_secret::verify(&self.deps, pass, DECOY_HASH).await;
            return fail(attempt);
        };
        *found = Some(user.clone());
        let Some(tap) = self.deps.store.temporary_access_pass(user.id).await? else {
            typed_secret::verify(&self.deps, pass, DECOY_HASH).await;
            return fail(attempt);
        };
        if !typed_secret::verify(&self.deps, pass, &tap.pass_hash).await {
            return fail(attempt);
        }
        if !user.account_enabled {
            attempt.released(&self.deps).await?;
            return Err(refused(
                SignInErrorCode::AccountDisabled,
                "Your account has been disabled. Contact your administrator.",
            ));
        }
        let config = self.configuration().await?;
        let groups: Vec<Uuid> = self
            .deps
            .store
            .transitive_member_of(user.id)
            .await?
            .iter()
            .map(|g| g.id)
            .collect();
        let (usable, reason) = usability(&tap, config.applies_to(&groups), now);
        if !usable {
            let text = match reason {
                "Expired" => {
                    "Your Temporary Access Pass has expired. Ask your administrator for a new one."
                }
                "NotYetValid" => "Your Temporary Access Pass is not valid yet.",
                "OneTimeUsed" => "Your Temporary Access Pass was for one use and has been used.",
                _ => "Temporary Access Pass sign in was blocked due to User Credential Policy.",
            };
            attempt.released(&self.deps).await?;
            return Err(refused(SignInErrorCode::InvalidCredentials, text));
        }
        if tap.is_usable_once
            && !self
                .deps
                .store
                .consume_temporary_access_pass(tap.id, now)
                .await?
        {
            attempt.released(&self.deps).await?;
            return Err(refused(
                SignInErrorCode::InvalidCredentials,
                "Your Temporary Access Pass was for one use and has been used.",
            ));
        }
        attempt.succeeded(&self.deps).await?;
        let (session, token) = new_session(
            &self.deps,
            user.id,
            SessionMethod {
                method: MethodKind::TemporaryAccessPass,
                at: now,
                aaguid: None,
                credential_id: Some(tap.id.to_string()),
                one_time: tap.is_usable_once,
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

pub(crate) fn audit_entry<S: MethodStore + ?Sized>(
    deps: &Deps<S>,
    actor: &Actor,
    request: &RequestContext,
    category: &str,
    activity: &str,
    operation: &str,
    target: TargetResource,
) -> DirectoryAudit {
    DirectoryAudit {
        id: deps.entropy.uuid(),
        category: category.to_string(),
        correlation_id: request.correlation_id,
        result: "success".to_string(),
        result_reason: String::new(),
        activity_display_name: activity.to_string(),
        activity_date_time: deps.clock.now(),
        logged_by_service: "Authentication Methods".to_string(),
        operation_type: operation.to_string(),
        initiated_by: AuditActivityInitiator::from_actor(actor, request.ip_address.clone()),
        target_resources: vec![target],
        additional_details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn usability_reasons() {
        let start = datetime!(2026-01-01 12:00 UTC);
        let mut tap = TemporaryAccessPass {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            pass_hash: String::new(),
            start,
            lifetime_minutes: 60,
            is_usable_once: true,
            created: start,
            used: None,
        };
        assert_eq!(
            usability(&tap, true, start - Duration::minutes(1)).1,
            "NotYetValid"
        );
        assert_eq!(usability(&tap, true, start).1, "EnabledByPolicy");
        assert_eq!(
            usability(&tap, true, start + Duration::minutes(60)).1,
            "Expired"
        );
        assert_eq!(usability(&tap, false, start).1, "DisabledByPolicy");
        tap.used = Some(start);
        assert_eq!(usability(&tap, true, start).1, "OneTimeUsed");
    }

    #[test]
    fn configuration_ranges() {
        let ok = TapConfiguration::default();
        assert!(ok.validate().is_ok());
        for (mutate, field) in [
            (
                Box::new(|c: &mut TapConfiguration| c.minimum_lifetime_in_minutes = 5)
                    as Box<dyn Fn(&mut TapConfiguration)>,
                "minimumLifetimeInMinutes",
            ),
            (
                Box::new(|c: &mut TapConfiguration| c.maximum_lifetime_in_minutes = 50_000),
                "maximumLifetimeInMinutes",
            ),
            (
                Box::new(|c: &mut TapConfiguration| c.default_lifetime_in_minutes = 600),
                "defaultLifetimeInMinutes",
            ),
            (
                Box::new(|c: &mut TapConfiguration| c.default_length = 7),
                "defaultLength",
            ),
            (
                Box::new(|c: &mut TapConfiguration| c.state = "on".into()),
                "state",
            ),
        ] {
            let mut c = TapConfiguration::default();
            mutate(&mut c);
            assert_eq!(c.validate().unwrap_err().target(), Some(field));
        }
    }
}
