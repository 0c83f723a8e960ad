//! The directory service: every read and change of users, groups, roles and applications.
//!
//! Each operation takes the [`Granted`] capability for its permission, validates its input into
//! domain values, and commits the change with its audit entry through [`Store::commit`].

use serde::{Deserialize, Deserializer, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::access;
use crate::directory::audit::{
    AuditActivityInitiator, DirectoryAudit, RequestContext, TargetResource,
};
use crate::directory::authz::{
    Actor, Granted, Principal, ReadApplications, ReadAuditLogs, ReadGroups, ReadRoles, ReadUsers,
    RevokeUserSessions, WriteApplications, WriteGroupMembers, WriteGroups, WriteRoles, WriteUsers,
    perm,
};
use crate::directory::ladder::{self, ApplicationChange, GroupChange};
use crate::directory::last_admin::{self, Without};
use crate::directory::model::{
    ApiApplication, AppRole, Application, ApplicationAccess, Group, GroupMembershipClaims,
    MemberRef, ObjectKind, PasswordCredential, RedirectUris, RoleAssignment, SigningAlgorithm,
    Tenant, User, UserType,
};
use crate::directory::references;
use crate::directory::roles::built_in_role;
use crate::directory::store::{DirectoryChange as Change, DirectoryStore};
use crate::directory::tiers::{self, SensitiveAction};
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::crypto::{hash_secret, verify_secret};
use crate::kernel::query::{ListQuery, Order, Page};
use crate::{Error, Result};

/// The audit activity of adding or removing a client secret, as Entra names it.
const SECRETS_ACTIVITY: &str = "Update application – Certificates and secrets management";
/// The longest a client secret may live, as in Entra's recommendation (two years).
pub const MAX_SECRET_LIFETIME: Duration = Duration::days(730);
const MAX_DISPLAY_NAME: usize = 256;
/// Entra's limit: 64 characters before the `@`, 113 in all.
const MAX_UPN: usize = 113;

#[derive(Clone)]
pub struct Directory {
    pub(crate) deps: Deps<dyn DirectoryStore>,
}

/// A user, group or application, as a role's member list names them.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryObject {
    User(User),
    Group(Group),
    Application(Box<Application>),
}

/// Distinguishes "absent" from "null" in a PATCH body.
fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST /users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    /// `name@domain`; at most 64 characters before the `@` and 113 in all.
    #[schema(min_length = 3, max_length = 113)]
    pub user_principal_name: String,
    #[schema(min_length = 1, max_length = 256)]
    pub display_name: String,
    #[serde(default)]
    #[schema(max_length = 254)]
    pub mail: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub user_type: Option<UserType>,
    /// Accepted for compatibility with Graph clients; not used.
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default, rename = "@odata.type")]
    #[schema(ignore)]
    pub odata_type: Option<String>,
    /// Graph's `passwordProfile`: sets the new user's password, when the tenant's
    /// authentication methods policy allows passwords (otherwise a 400 naming it).
    #[serde(default)]
    pub password_profile: Option<PasswordProfile>,
}

/// Graph's `passwordProfile` on `POST /users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordProfile {
    /// The password rules of `resetPassword` apply: 8 to 256 characters, not containing the
    /// user name.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// Only `false` (or absent): Portcullis cannot require a change at the next sign-in;
    /// issue a Temporary Access Pass for a first sign-in instead.
    #[serde(default)]
    pub force_change_password_next_sign_in: Option<bool>,
    /// Only `false` (or absent), as `forceChangePasswordNextSignIn`.
    #[serde(default)]
    pub force_change_password_next_sign_in_with_mfa: Option<bool>,
}

/// Body of `PATCH /users/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[schema(min_length = 3, max_length = 113)]
    pub user_principal_name: Option<String>,
    #[schema(min_length = 1, max_length = 256)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 254)]
    pub mail: Option<Option<String>>,
    pub account_enabled: Option<bool>,
    pub user_type: Option<UserType>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
}

/// Body of `POST /groups`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGroup {
    #[schema(min_length = 1, max_length = 256)]
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    /// Mail-enabled groups do not exist here; `true` is refused.
    #[serde(default)]
    pub mail_enabled: Option<bool>,
    /// Only security groups (`[]`) exist here.
    #[serde(default)]
    pub group_types: Option<Vec<String>>,
    /// Whether the group may hold directory roles; fixed once the group is made. `true` needs
    /// RoleManagement.ReadWrite.Directory as well.
    #[serde(default)]
    pub is_assignable_to_role: Option<bool>,
    #[serde(default, rename = "@odata.type")]
    #[schema(ignore)]
    pub odata_type: Option<String>,
}

/// Body of `PATCH /groups/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupPatch {
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub mail_nickname: Option<Option<String>>,
    pub security_enabled: Option<bool>,
    /// Fixed when the group is made: a different value is refused.
    pub is_assignable_to_role: Option<bool>,
}

/// Body of `POST /roleManagement/directory/roleAssignments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRoleAssignment {
    pub principal_id: String,
    pub role_definition_id: String,
    #[serde(default)]
    pub directory_scope_id: Option<String>,
    #[serde(default, rename = "@odata.type")]
    #[schema(ignore)]
    pub odata_type: Option<String>,
}

/// Body of `POST /applications`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApplication {
    pub display_name: String,
    /// The client id. Normally generated; given when an application moves here from another
    /// identity provider and must keep its client id.
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub is_fallback_public_client: Option<bool>,
    #[serde(default)]
    pub web: Option<RedirectUris>,
    #[serde(default)]
    pub public_client: Option<RedirectUris>,
    #[serde(default)]
    pub spa: Option<RedirectUris>,
    #[serde(default)]
    pub api_permissions: Option<Vec<String>>,
    /// `api://…` or `https://…` names of the API, unique in the tenant.
    #[serde(default)]
    pub identifier_uris: Option<Vec<String>>,
    #[serde(default)]
    pub api: Option<ApiApplication>,
    #[serde(default)]
    pub app_roles: Option<Vec<AppRole>>,
    /// Only assigned people may sign in (Entra keeps this on the service principal).
    #[serde(default)]
    pub app_role_assignment_required: Option<bool>,
    #[serde(default)]
    pub group_membership_claims: Option<GroupMembershipClaims>,
    /// `ES256` (the default) or `RS256`: how its ID tokens are signed.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<SigningAlgorithm>,
    /// Only `AzureADMyOrg` (this tenant) exists here.
    #[serde(default)]
    pub sign_in_audience: Option<String>,
    #[serde(default, rename = "@odata.type")]
    #[schema(ignore)]
    pub odata_type: Option<String>,
}

/// Body of `PATCH /applications/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationPatch {
    pub display_name: Option<String>,
    pub is_fallback_public_client: Option<bool>,
    pub web: Option<RedirectUris>,
    pub public_client: Option<RedirectUris>,
    pub spa: Option<RedirectUris>,
    pub api_permissions: Option<Vec<String>>,
    pub identifier_uris: Option<Vec<String>>,
    pub api: Option<ApiApplication>,
    pub app_roles: Option<Vec<AppRole>>,
    pub app_role_assignment_required: Option<bool>,
    /// `null` removes the claim.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<GroupMembershipClaims>)]
    pub group_membership_claims: Option<Option<GroupMembershipClaims>>,
    pub id_token_signed_response_alg: Option<SigningAlgorithm>,
}

/// Body of `POST /applications/{id}/addPassword`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddPassword {
    #[serde(default, deserialize_with = "object_or_null")]
    pub password_credential: Option<PasswordCredentialRequest>,
}

/// An optional object that must be written as a JSON object (or `null`): serde would also
/// fill a struct from an array, field by field in order, which no Graph client means.
fn object_or_null<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        value @ serde_json::Value::Object(_) => serde_json::from_value(value)
            .map(Some)
            .map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected a JSON object")),
    }
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordCredentialRequest {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, with = "graph_datetime::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_date_time: Option<OffsetDateTime>,
}

/// Body of `POST /applications/{id}/removePassword`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemovePassword {
    pub key_id: String,
}

/// A secret just created: the only time its text exists outside the caller's hands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSecret {
    #[serde(flatten)]
    pub credential: PasswordCredential,
    pub secret_text: String,
}

fn check_display_name(field: &'static str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty.")));
    }
    // The limit is on what was sent, as the OpenAPI document's maxLength says: spaces trimmed
    // afterwards do not buy room for a longer name.
    if value.chars().count() > MAX_DISPLAY_NAME {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_DISPLAY_NAME} characters."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters."),
        ));
    }
    Ok(trimmed.to_string())
}

fn check_upn(value: &str) -> Result<String> {
    let field = "userPrincipalName";
    let upn = value.trim();
    let Some((local, domain)) = upn.split_once('@') else {
        return Err(Error::invalid(
            field,
            "userPrincipalName must look like name@domain.",
        ));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c));
    let domain_ok = !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !local_ok || !domain_ok || value.chars().count() > MAX_UPN {
        return Err(Error::invalid(
            field,
            format!(
                "'{upn}' is not a valid userPrincipalName: use name@domain with letters, digits and . - _ ' ! # ^ ~ before the @, at most 64 characters there and {MAX_UPN} in all."
            ),
        ));
    }
    Ok(upn.to_string())
}

fn check_mail(value: Option<String>) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(m) => {
            let sent = m.chars().count();
            let m = m.trim().to_string();
            let valid = sent <= 254
                && m.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.ends_with('.'))
                && !m.chars().any(|c| c.is_whitespace() || c.is_control());
            if valid {
                Ok(Some(m))
            } else {
                Err(Error::invalid(
                    "mail",
                    format!("'{m}' is not a valid email address."),
                ))
            }
        }
    }
}

fn parse_id(field: &'static str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim())
        .map_err(|_| Error::invalid(field, format!("{field} '{value}' is not a GUID.")))
}

/// A redirect URI must be absolute, without a fragment, and over https unless it points at the
/// local machine (native apps and development) or uses a private scheme (public clients only).
fn check_redirect_uris(field: &'static str, uris: &[String], public: bool) -> Result<Vec<String>> {
    if uris.len() > 256 {
        return Err(Error::invalid(
            field,
            "At most 256 redirect URIs per platform.",
        ));
    }
    let mut out = Vec::with_capacity(uris.len());
    for uri in uris {
        let bad =
            |why: &str| Error::invalid(field, format!("{field}: the redirect URI '{uri}' {why}."));
        if uri.len() > 1000 {
            return Err(bad("is longer than 1000 characters"));
        }
        if uri.contains('#') {
            return Err(bad("must not contain a fragment (#)"));
        }
        if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not contain spaces"));
        }
        let Some((scheme, rest)) = uri.split_once("://") else {
            if public && uri.contains(':') && !uri.starts_with("http") {
                out.push(uri.clone());
                continue;
            }
            return Err(bad("is not an absolute URI"));
        };
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host_name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let local = matches!(host_name, "localhost" | "127.0.0.1" | "[::1]");
        match scheme {
            "https" => {}
            "http" if local => {}
            "http" => return Err(bad("must use https unless it points at localhost")),
            _ if public => {}
            _ => {
                return Err(bad(
                    "must use https (private schemes are for public clients)",
                ));
            }
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

fn check_api_permissions(list: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in list {
        if !perm::is_known(p) {
            return Err(Error::invalid(
                "apiPermissions",
                format!(
                    "apiPermissions: '{p}' is not a permission of this admin API; known: {}.",
                    perm::ALL.join(", ")
                ),
            ));
        }
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// The object id at the end of an `@odata.id` reference such as
/// `https://graph.microsoft.com/v1.0/directoryObjects/{id}`.
pub fn parse_odata_reference(reference: &str) -> Result<Uuid> {
    let field = "@odata.id";
    let trimmed = reference.trim().trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or("");
    // Also accept `directoryObjects('id')`.
    let last = last
        .strip_prefix("directoryObjects('")
        .or_else(|| last.strip_prefix("users('"))
        .or_else(|| last.strip_prefix("groups('"))
        .and_then(|s| s.strip_suffix("')"))
        .unwrap_or(last);
    Uuid::parse_str(last).map_err(|_| {
        Error::invalid(
            field,
            format!("@odata.id: '{reference}' is not a reference such as https://graph.microsoft.com/v1.0/directoryObjects/{{id}}."),
        )
    })
}

/// The sensitive actions (see [`tiers`]) an update from `old` to `new` takes.
fn sensitive_actions_of(old: &User, new: &User) -> Vec<SensitiveAction> {
    let mut actions = Vec::new();
    match (old.account_enabled, new.account_enabled) {
        (true, false) => actions.push(SensitiveAction::Disable),
        (false, true) => actions.push(SensitiveAction::Enable),
        _ => {}
    }
    if old.user_principal_name != new.user_principal_name {
        actions.push(SensitiveAction::ChangeUserPrincipalName);
    }
    if old.mail != new.mail {
        actions.push(SensitiveAction::ChangeMail);
    }
    actions
}

impl Directory {
    pub fn new(deps: Deps<dyn DirectoryStore>) -> Self {
        Directory { deps }
    }

    pub(crate) fn store(&self) -> &dyn DirectoryStore {
        self.deps.store.as_ref()
    }

    /// The current time on the server's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }

    pub(crate) fn audit(
        &self,
        actor: &Actor,
        request: &RequestContext,
        category: &str,
        activity: &str,
        operation_type: &str,
        targets: Vec<TargetResource>,
    ) -> DirectoryAudit {
        DirectoryAudit {
            id: self.deps.entropy.uuid(),
            category: category.to_string(),
            correlation_id: request.correlation_id,
            result: "success".to_string(),
            result_reason: String::new(),
            activity_display_name: activity.to_string(),
            activity_date_time: self.now(),
            logged_by_service: "Core Directory".to_string(),
            operation_type: operation_type.to_string(),
            initiated_by: AuditActivityInitiator::from_actor(actor, request.ip_address.clone()),
            target_resources: targets,
            additional_details: Vec::new(),
        }
    }

    /// Records a refusal by a rule of [`ladder`] as a failed audit entry and hands the error
    /// back. The entry describes what was attempted; nothing else is written.
    pub(crate) async fn refused(&self, audit: DirectoryAudit, error: Error) -> Error {
        crate::directory::audit::record_refusal(self.store(), audit, error).await
    }

    // --- users --------------------------------------------------------------------------

    pub async fn create_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        input: NewUser,
    ) -> Result<User> {
        if input.password_profile.is_some() {
            // A password is a method: `Passwords::create_user` checks the policy and the
            // rules and stores it in the same transaction as the user.
            return Err(Error::invalid(
                "passwordProfile",
                "passwordProfile: a user with a password is created through the password method.",
            ));
        }
        let (user, audit) = self.stage_new_user(grant, request, &input)?;
        if let Err(e) = self.check_mail_free(&user).await {
            return Err(self.refused(audit, e).await);
        }
        self.store()
            .commit(vec![Change::InsertUser(user.clone())], Some(audit))
            .await?;
        Ok(user)
    }

    /// Refuses a `mail` another live user already has (compared without case): applications
    /// that know people by their `email` claim would take one for the other (found by an
    /// attacker's script: an ordinary account given a Global Administrator's address). Entra
    /// refuses the same through `proxyAddresses`.
    pub async fn check_mail_free(&self, user: &User) -> Result<()> {
        let Some(mail) = user.mail.as_deref() else {
            return Ok(());
        };
        if self
            .store()
            .users_by_mail(mail)
            .await?
            .iter()
            .any(|other| other.id != user.id)
        {
            return Err(Error::conflict(format!(
                "Another user already has the mail '{mail}'."
            )));
        }
        Ok(())
    }

    /// A new user from `input`, checked, and its audit entry; nothing is stored. For a caller
    /// that stores the user with more in one transaction (a password).
    pub fn stage_new_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        input: &NewUser,
    ) -> Result<(User, DirectoryAudit)> {
        let user = User {
            id: self.deps.entropy.uuid(),
            user_principal_name: check_upn(&input.user_principal_name)?,
            display_name: check_display_name("displayName", &input.display_name)?,
            mail: check_mail(input.mail.clone())?,
            account_enabled: input.account_enabled.unwrap_or(true),
            user_type: input.user_type.unwrap_or_default(),
            created_date_time: self.now(),
        };
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "UserManagement",
            "Add user",
            "Add",
            vec![target],
        );
        Ok((user, audit))
    }

    /// Finds a user by object id or by userPrincipalName, as Graph's `/users/{id | upn}` does.
    pub async fn user(&self, _grant: &Granted<ReadUsers>, key: &str) -> Result<User> {
        self.find_user(key).await
    }

    async fn find_user(&self, key: &str) -> Result<User> {
        let found = match Uuid::parse_str(key) {
            Ok(id) => self.store().user(id).await?,
            Err(_) => self.store().user_by_upn(key).await?,
        };
        found.ok_or_else(|| Error::not_found("user", key))
    }

    pub async fn list_users(
        &self,
        _grant: &Granted<ReadUsers>,
        query: &ListQuery,
    ) -> Result<Page<User>> {
        self.store().list_users(query).await
    }

    /// A page of users in `order` (by creation time without one): Graph's `$orderby`, the
    /// portal's sortable columns.
    pub async fn list_users_in_order(
        &self,
        _grant: &Granted<ReadUsers>,
        query: &ListQuery,
        order: Option<Order>,
    ) -> Result<Page<User>> {
        self.store().list_users_in_order(query, order).await
    }

    pub async fn update_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        key: &str,
        patch: UserPatch,
    ) -> Result<User> {
        references::retrying(|| self.try_update_user(grant, request, key, patch.clone())).await
    }

    async fn try_update_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        key: &str,
        patch: UserPatch,
    ) -> Result<User> {
        let precondition = references::precondition(self.store()).await?;
        let old = self.find_user(key).await?;
        let mut new = old.clone();
        let mut target = TargetResource::new("User", old.id, &old.display_name)
            .with_upn(&old.user_principal_name);
        if let Some(upn) = patch.user_principal_name {
            new.user_principal_name = check_upn(&upn)?;
        }
        if let Some(name) = patch.display_name {
            new.display_name = check_display_name("displayName", &name)?;
        }
        if let Some(mail) = patch.mail {
            new.mail = check_mail(mail)?;
        }
        if let Some(enabled) = patch.account_enabled {
            new.account_enabled = enabled;
        }
        if let Some(t) = patch.user_type {
            new.user_type = t;
        }
        let old_json = serde_json::to_value(&old).unwrap_or_default();
        let new_json = serde_json::to_value(&new).unwrap_or_default();
        for name in [
            "userPrincipalName",
            "displayName",
            "mail",
            "accountEnabled",
            "userType",
        ] {
            if old_json.get(name) != new_json.get(name) {
                target = target.modified(name, old_json.get(name), new_json.get(name));
            }
        }
        if target.modified_properties.is_empty() {
            return Ok(old);
        }
        for action in sensitive_actions_of(&old, &new) {
            tiers::enforce(&self.deps, grant, request, action, &old).await?;
        }
        let activity = if old.account_enabled && !new.account_enabled {
            "Disable account"
        } else if !old.account_enabled && new.account_enabled {
            "Enable account"
        } else {
            "Update user"
        };
        let audit = self.audit(
            grant.actor(),
            request,
            "UserManagement",
            activity,
            "Update",
            vec![target],
        );
        let mail_changed = new.mail.as_deref().map(str::to_lowercase)
            != old.mail.as_deref().map(str::to_lowercase);
        if mail_changed && let Err(e) = self.check_mail_free(&new).await {
            return Err(self.refused(audit, e).await);
        }
        let mut changes = vec![Change::UpdateUser(new.clone())];
        if old.account_enabled != new.account_enabled {
            // Who effectively holds a role changed: a check racing this one must see it.
            changes.push(Change::MoveMembershipsRevision);
        }
        if old.account_enabled && !new.account_enabled {
            match last_admin::check(self.store(), Without::User(old.id)).await {
                Ok(true) => changes.extend(precondition),
                Ok(false) => {}
                Err(e) => return Err(self.refused(audit, e).await),
            }
            // Trust ends at once: the sessions and refresh tokens of a disabled account end
            // in the same transaction, so no node serves them after this commit.
            changes.push(Change::EndSignIns {
                user_id: new.id,
                credential_id: None,
                at: self.now(),
            });
        }
        self.store().commit(changes, Some(audit)).await?;
        Ok(new)
    }

    /// Moves the user to deleted items, restorable for 30 days (see `directory::deleted`).
    /// Refused while a policy names the user; ends their sessions and grants with them.
    pub async fn delete_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        key: &str,
    ) -> Result<()> {
        references::retrying(|| self.try_delete_user(grant, request, key)).await
    }

    async fn try_delete_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        key: &str,
    ) -> Result<()> {
        let precondition = references::precondition(self.store()).await?;
        let user = self.find_user(key).await?;
        tiers::enforce(&self.deps, grant, request, SensitiveAction::Delete, &user).await?;
        references::refuse_if_named(self.store(), "user", &[user.id.to_string()]).await?;
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "UserManagement",
            "Delete user",
            "Delete",
            vec![target],
        );
        if let Err(e) = last_admin::check(self.store(), Without::User(user.id)).await {
            return Err(self.refused(audit, e).await);
        }
        let mut changes = vec![
            Change::EndSignIns {
                user_id: user.id,
                credential_id: None,
                at: self.now(),
            },
            Change::SoftDeleteUser {
                user_id: user.id,
                at: self.now(),
            },
        ];
        changes.extend(precondition);
        self.store().commit(changes, Some(audit)).await
    }

    /// Graph's `revokeSignInSessions`: ends every session of the user and revokes every refresh
    /// token issued to them, on every node, with an audit entry.
    pub async fn revoke_sign_in_sessions(
        &self,
        grant: &Granted<RevokeUserSessions>,
        request: &RequestContext,
        key: &str,
    ) -> Result<()> {
        let user = self.find_user(key).await?;
        tiers::enforce(
            &self.deps,
            grant,
            request,
            SensitiveAction::RevokeSessions,
            &user,
        )
        .await?;
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "UserManagement",
            "Invalidate all refresh tokens for user",
            "Update",
            vec![target],
        );
        self.store()
            .commit(
                vec![Change::EndSignIns {
                    user_id: user.id,
                    credential_id: None,
                    at: self.now(),
                }],
                Some(audit),
            )
            .await
    }

    /// Groups the user (or group) is in, directly or, with `transitive`, through nesting.
    pub async fn member_of(
        &self,
        _grant: &Granted<ReadGroups>,
        object_id: Uuid,
        transitive: bool,
    ) -> Result<Vec<Group>> {
        if transitive {
            self.store().transitive_member_of(object_id).await
        } else {
            self.store().member_of(object_id).await
        }
    }

    // --- groups -------------------------------------------------------------------------

    pub async fn create_group(
        &self,
        grant: &Granted<WriteGroups>,
        request: &RequestContext,
        input: NewGroup,
    ) -> Result<Group> {
        if input.mail_enabled == Some(true) {
            return Err(Error::invalid(
                "mailEnabled",
                "Mail-enabled groups are not supported; set mailEnabled to false.",
            ));
        }
        if input.group_types.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::invalid(
                "groupTypes",
                "Only security groups are supported; set groupTypes to [].",
            ));
        }
        if input.security_enabled == Some(false) {
            return Err(Error::invalid(
                "securityEnabled",
                "Only security groups are supported; set securityEnabled to true.",
            ));
        }
        let group = Group {
            id: self.deps.entropy.uuid(),
            display_name: check_display_name("displayName", &input.display_name)?,
            description: input
                .description
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            mail_nickname: input
                .mail_nickname
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            security_enabled: true,
            is_assignable_to_role: input.is_assignable_to_role.unwrap_or(false),
            created_date_time: self.now(),
        };
        if group
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1024)
        {
            return Err(Error::invalid(
                "description",
                "description must be at most 1024 characters.",
            ));
        }
        let target = TargetResource::new("Group", group.id, &group.display_name);
        if group.is_assignable_to_role
            && let Err(e) = ladder::check_group_change(
                grant.held(),
                &group,
                &[],
                GroupChange::CreateRoleAssignable,
            )
        {
            return Err(self
                .refused(
                    self.audit(
                        grant.actor(),
                        request,
                        "GroupManagement",
                        "Add group",
                        "Add",
                        vec![target],
                    ),
                    e,
                )
                .await);
        }
        let audit = self.audit(
            grant.actor(),
            request,
            "GroupManagement",
            "Add group",
            "Add",
            vec![target],
        );
        self.store()
            .commit(vec![Change::InsertGroup(group.clone())], Some(audit))
            .await?;
        Ok(group)
    }

    pub async fn group(&self, _grant: &Granted<ReadGroups>, id: &str) -> Result<Group> {
        self.find_group(id).await
    }

    async fn find_group(&self, id: &str) -> Result<Group> {
        let uuid = Uuid::parse_str(id).map_err(|_| Error::not_found("group", id))?;
        self.store()
            .group(uuid)
            .await?
            .ok_or_else(|| Error::not_found("group", id))
    }

    pub async fn list_groups(
        &self,
        _grant: &Granted<ReadGroups>,
        query: &ListQuery,
    ) -> Result<Page<Group>> {
        self.store().list_groups(query).await
    }

    pub async fn update_group(
        &self,
        grant: &Granted<WriteGroups>,
        request: &RequestContext,
        id: &str,
        patch: GroupPatch,
    ) -> Result<Group> {
        let old = self.find_group(id).await?;
        let mut new = old.clone();
        if let Some(name) = patch.display_name {
            new.display_name = check_display_name("displayName", &name)?;
        }
        if let Some(d) = patch.description {
            new.description = d.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        }
        if let Some(n) = patch.mail_nickname {
            new.mail_nickname = n.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        }
        if patch.security_enabled == Some(false) {
            return Err(Error::invalid(
                "securityEnabled",
                "Only security groups are supported.",
            ));
        }
        ladder::check_assignable_unchanged(&old, patch.is_assignable_to_role)?;
        if new == old {
            return Ok(old);
        }
        let old_json = serde_json::to_value(&old).unwrap_or_default();
        let new_json = serde_json::to_value(&new).unwrap_or_default();
        let mut target = TargetResource::new("Group", old.id, &old.display_name);
        for name in ["displayName", "description", "mailNickname"] {
            if old_json.get(name) != new_json.get(name) {
                target = target.modified(name, old_json.get(name), new_json.get(name));
            }
        }
        let audit = self.audit(
            grant.actor(),
            request,
            "GroupManagement",
            "Update group",
            "Update",
            vec![target],
        );
        // A role-assignable group is managed whole by those who manage roles, as in Entra: a
        // writer of groups renaming the group that grants Global Administrator could pass it
        // off as another.
        let containing = self.store().transitive_member_of(old.id).await?;
        if let Err(e) =
            ladder::check_group_change(grant.held(), &old, &containing, GroupChange::Update)
        {
            return Err(self.refused(audit, e).await);
        }
        self.store()
            .commit(vec![Change::UpdateGroup(new.clone())], Some(audit))
            .await?;
        Ok(new)
    }

    /// Refused while a policy names the group.
    pub async fn delete_group(
        &self,
        grant: &Granted<WriteGroups>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        references::retrying(|| self.try_delete_group(grant, request, id)).await
    }

    async fn try_delete_group(
        &self,
        grant: &Granted<WriteGroups>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        let precondition = references::precondition(self.store()).await?;
        let group = self.find_group(id).await?;
        let target = TargetResource::new("Group", group.id, &group.display_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "GroupManagement",
            "Delete group",
            "Delete",
            vec![target],
        );
        // Deleting a role-assignable group takes its roles from every member at once: the
        // same rule as removing them one by one.
        let containing = self.store().transitive_member_of(group.id).await?;
        if let Err(e) =
            ladder::check_group_change(grant.held(), &group, &containing, GroupChange::Delete)
        {
            return Err(self.refused(audit, e).await);
        }
        references::refuse_if_named(self.store(), "group", &[group.id.to_string()]).await?;
        if let Err(e) = last_admin::check(self.store(), Without::Group(group.id)).await {
            return Err(self.refused(audit, e).await);
        }
        let mut changes = vec![Change::DeleteGroup(group.id)];
        changes.extend(precondition);
        self.store().commit(changes, Some(audit)).await
    }

    pub async fn members(
        &self,
        _grant: &Granted<ReadGroups>,
        group_id: &str,
        transitive: bool,
    ) -> Result<Vec<MemberRef>> {
        let group = self.find_group(group_id).await?;
        if transitive {
            self.store().transitive_members(group.id).await
        } else {
            self.store().members(group.id).await
        }
    }

    /// Adds a user or a group to a group. Nesting that would make a group contain itself is
    /// refused: Entra has no circular membership, and a cycle would make every member of it a
    /// member of every group in it.
    pub async fn add_member(
        &self,
        grant: &Granted<WriteGroupMembers>,
        request: &RequestContext,
        group_id: &str,
        reference: &str,
    ) -> Result<()> {
        let group = self.find_group(group_id).await?;
        let member_id = parse_odata_reference(reference)?;
        let containing = self.store().transitive_member_of(group.id).await?;
        if let Err(e) =
            ladder::check_group_change(grant.held(), &group, &containing, GroupChange::AddMember)
        {
            let target = TargetResource::new("Group", group.id, &group.display_name);
            return Err(self
                .refused(
                    self.audit(
                        grant.actor(),
                        request,
                        "GroupManagement",
                        "Add member to group",
                        "Assign",
                        vec![target],
                    ),
                    e,
                )
                .await);
        }
        let (kind, name, upn) = if let Some(user) = self.store().user(member_id).await? {
            (
                ObjectKind::User,
                user.display_name,
                Some(user.user_principal_name),
            )
        } else if let Some(member) = self.store().group(member_id).await? {
            ladder::check_may_contain_group(&group)?;
            if member.id == group.id {
                return Err(Error::invalid(
                    "@odata.id",
                    "A group cannot be a member of itself.",
                ));
            }
            if containing.iter().any(|g| g.id == member.id) {
                return Err(Error::invalid(
                    "@odata.id",
                    format!(
                        "Adding '{}' to '{}' would make a circular membership: '{}' already contains '{}'.",
                        member.display_name,
                        group.display_name,
                        member.display_name,
                        group.display_name
                    ),
                ));
            }
            (ObjectKind::Group, member.display_name, None)
        } else {
            return Err(Error::not_found("directoryObject", member_id.to_string()));
        };
        let existing = self.store().members(group.id).await?;
        let already_member = existing.iter().any(|m| m.id == member_id);
        let mut member_target = TargetResource::new(
            if kind == ObjectKind::User {
                "User"
            } else {
                "Group"
            },
            member_id,
            &name,
        );
        member_target.user_principal_name = upn;
        let group_target = TargetResource::new("Group", group.id, &group.display_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "GroupManagement",
            "Add member to group",
            "Assign",
            vec![member_target, group_target],
        );
        if already_member {
            let error = Error::conflict(format!(
                "One or more added object references already exist: '{name}' is already a member of '{}'.",
                group.display_name
            ));
            return Err(self.refused(audit, error).await);
        }
        self.store()
            .commit(
                vec![Change::AddMember {
                    group_id: group.id,
                    member_id,
                    member_kind: kind,
                }],
                Some(audit),
            )
            .await
    }

    pub async fn remove_member(
        &self,
        grant: &Granted<WriteGroupMembers>,
        request: &RequestContext,
        group_id: &str,
        member_id: &str,
    ) -> Result<()> {
        references::retrying(|| self.try_remove_member(grant, request, group_id, member_id)).await
    }

    async fn try_remove_member(
        &self,
        grant: &Granted<WriteGroupMembers>,
        request: &RequestContext,
        group_id: &str,
        member_id: &str,
    ) -> Result<()> {
        let precondition = references::precondition(self.store()).await?;
        let group = self.find_group(group_id).await?;
        let member_uuid =
            Uuid::parse_str(member_id).map_err(|_| Error::not_found("member", member_id))?;
        let member = self
            .store()
            .members(group.id)
            .await?
            .into_iter()
            .find(|m| m.id == member_uuid)
            .ok_or_else(|| Error::not_found("member", member_id))?;
        let containing = self.store().transitive_member_of(group.id).await?;
        if let Err(e) =
            ladder::check_group_change(grant.held(), &group, &containing, GroupChange::RemoveMember)
        {
            let target = TargetResource::new("Group", group.id, &group.display_name);
            return Err(self
                .refused(
                    self.audit(
                        grant.actor(),
                        request,
                        "GroupManagement",
                        "Remove member from group",
                        "Unassign",
                        vec![target],
                    ),
                    e,
                )
                .await);
        }
        let audit = self.audit(
            grant.actor(),
            request,
            "GroupManagement",
            "Remove member from group",
            "Unassign",
            vec![
                TargetResource::new(
                    if member.kind == ObjectKind::User {
                        "User"
                    } else {
                        "Group"
                    },
                    member.id,
                    &member.display_name,
                ),
                TargetResource::new("Group", group.id, &group.display_name),
            ],
        );
        let mut changes = vec![Change::RemoveMember {
            group_id: group.id,
            member_id: member.id,
        }];
        match last_admin::check(
            self.store(),
            Without::Membership {
                group: group.id,
                member: member.id,
            },
        )
        .await
        {
            Ok(true) => changes.extend(precondition),
            Ok(false) => {}
            Err(e) => return Err(self.refused(audit, e).await),
        }
        self.store().commit(changes, Some(audit)).await
    }

    // --- roles --------------------------------------------------------------------------

    pub async fn role_assignments(
        &self,
        _grant: &Granted<ReadRoles>,
        principal_id: Option<Uuid>,
    ) -> Result<Vec<RoleAssignment>> {
        self.store().role_assignments(principal_id).await
    }

    /// Who holds a role: the users, groups and applications assigned it directly, each with
    /// its assignment, in assignment order. Principals deleted meanwhile are left out.
    pub async fn role_members(
        &self,
        _grant: &Granted<ReadRoles>,
        role_template_id: Uuid,
    ) -> Result<Vec<DirectoryObject>> {
        let mut members = Vec::new();
        for a in self.store().role_assignments(None).await? {
            if a.role_definition_id != role_template_id {
                continue;
            }
            if let Some(u) = self.store().user(a.principal_id).await? {
                members.push(DirectoryObject::User(u));
            } else if let Some(g) = self.store().group(a.principal_id).await? {
                members.push(DirectoryObject::Group(g));
            } else if let Some(app) = self.store().application(a.principal_id).await? {
                members.push(DirectoryObject::Application(Box::new(app)));
            }
        }
        Ok(members)
    }

    /// The tenant, for Graph's `organization` and the pages' header. Every caller may read it.
    pub async fn tenant(&self) -> Result<Tenant> {
        self.store()
            .tenant()
            .await?
            .ok_or_else(|| Error::Internal("the tenant is missing".into()))
    }

    pub async fn role_assignment(
        &self,
        _grant: &Granted<ReadRoles>,
        id: &str,
    ) -> Result<RoleAssignment> {
        let uuid = Uuid::parse_str(id).map_err(|_| Error::not_found("roleAssignment", id))?;
        self.store()
            .role_assignment(uuid)
            .await?
            .ok_or_else(|| Error::not_found("roleAssignment", id))
    }

    /// The display name and kind of a principal that can hold a role.
    async fn principal(&self, id: Uuid) -> Result<Option<(String, &'static str, Option<String>)>> {
        if let Some(u) = self.store().user(id).await? {
            return Ok(Some((u.display_name, "User", Some(u.user_principal_name))));
        }
        if let Some(g) = self.store().group(id).await? {
            return Ok(Some((g.display_name, "Group", None)));
        }
        if let Some(a) = self.store().application(id).await? {
            return Ok(Some((a.display_name, "ServicePrincipal", None)));
        }
        Ok(None)
    }

    pub async fn assign_role(
        &self,
        grant: &Granted<WriteRoles>,
        request: &RequestContext,
        input: NewRoleAssignment,
    ) -> Result<RoleAssignment> {
        let principal_id = parse_id("principalId", &input.principal_id)?;
        let role_id = parse_id("roleDefinitionId", &input.role_definition_id)?;
        let scope = input.directory_scope_id.unwrap_or_else(|| "/".to_string());
        if scope != "/" {
            return Err(Error::invalid(
                "directoryScopeId",
                "Only tenant-wide assignments (directoryScopeId \"/\") are supported.",
            ));
        }
        let role = built_in_role(role_id).ok_or_else(|| {
            Error::invalid(
                "roleDefinitionId",
                format!("'{role_id}' is not a built-in directory role template id."),
            )
        })?;
        if let Some(group) = self.store().group(principal_id).await? {
            ladder::check_group_may_hold_role(&group)?;
        }
        let (name, kind, upn) = self.principal(principal_id).await?.ok_or_else(|| {
            Error::invalid(
                "principalId",
                format!("No user, group or application has id '{principal_id}'."),
            )
        })?;
        let assignment = RoleAssignment {
            id: self.deps.entropy.uuid(),
            principal_id,
            role_definition_id: role.template_id,
            directory_scope_id: scope,
        };
        let mut target = TargetResource::new(kind, principal_id, name);
        target.user_principal_name = upn;
        let role_target = TargetResource::new("Role", role.template_id, role.display_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "RoleManagement",
            "Add member to role",
            "Assign",
            vec![target, role_target],
        );
        self.store()
            .commit(
                vec![Change::InsertRoleAssignment(assignment.clone())],
                Some(audit),
            )
            .await
            .map_err(|e| match e {
                Error::Conflict { .. } => Error::conflict(format!(
                    "The principal already holds the role '{}'.",
                    role.display_name
                )),
                other => other,
            })?;
        Ok(assignment)
    }

    pub async fn remove_role_assignment(
        &self,
        grant: &Granted<WriteRoles>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        references::retrying(|| self.try_remove_role_assignment(grant, request, id)).await
    }

    async fn try_remove_role_assignment(
        &self,
        grant: &Granted<WriteRoles>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        let precondition = references::precondition(self.store()).await?;
        let uuid = Uuid::parse_str(id).map_err(|_| Error::not_found("roleAssignment", id))?;
        let assignment = self
            .store()
            .role_assignment(uuid)
            .await?
            .ok_or_else(|| Error::not_found("roleAssignment", id))?;
        let role_name = built_in_role(assignment.role_definition_id)
            .map(|r| r.display_name)
            .unwrap_or("role");
        let (name, kind, upn) = self
            .principal(assignment.principal_id)
            .await?
            .unwrap_or_else(|| (String::new(), "User", None));
        let mut target = TargetResource::new(kind, assignment.principal_id, name);
        target.user_principal_name = upn;
        let audit = self.audit(
            grant.actor(),
            request,
            "RoleManagement",
            "Remove member from role",
            "Unassign",
            vec![
                target,
                TargetResource::new("Role", assignment.role_definition_id, role_name),
            ],
        );
        let mut changes = vec![Change::DeleteRoleAssignment(assignment.id)];
        match last_admin::check(self.store(), Without::Assignment(assignment.id)).await {
            Ok(true) => changes.extend(precondition),
            Ok(false) => {}
            Err(e) => return Err(self.refused(audit, e).await),
        }
        self.store().commit(changes, Some(audit)).await
    }

    /// The role template ids a user holds, directly or through a group.
    pub async fn active_roles_of_user(&self, user_id: Uuid) -> Result<Vec<Uuid>> {
        self.store().role_definitions_held(user_id).await
    }

    /// The principal a signed-in person acts as (in the admin portal): their account and the
    /// permissions of the roles they actively hold now. Looked up on every request, so a role
    /// removed or an account disabled takes effect at once, on every node.
    pub async fn principal_for_user(&self, user_id: Uuid) -> Result<(User, Principal)> {
        let user = self.store().user(user_id).await?.ok_or_else(|| {
            Error::Unauthenticated("The signed-in account no longer exists.".into())
        })?;
        let roles = self.active_roles_of_user(user.id).await?;
        let principal = Principal::for_user(&user, &roles);
        Ok((user, principal))
    }

    // --- applications -------------------------------------------------------------------

    /// Granting admin-API permissions to an application is a privileged act (Entra's admin
    /// consent): without it, anyone who may manage applications could mint themselves a
    /// Global-Administrator-equivalent client. So it needs the role-management capability too.
    fn check_permission_grant(
        consent: Option<&Granted<WriteRoles>>,
        permissions: &[String],
    ) -> Result<()> {
        if !permissions.is_empty() && consent.is_none() {
            return Err(Error::Forbidden(format!(
                "Granting apiPermissions needs the {} permission as well.",
                perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY
            )));
        }
        Ok(())
    }

    pub async fn create_application(
        &self,
        grant: &Granted<WriteApplications>,
        consent: Option<&Granted<WriteRoles>>,
        request: &RequestContext,
        input: NewApplication,
    ) -> Result<Application> {
        if let Some(aud) = &input.sign_in_audience
            && aud != "AzureADMyOrg"
        {
            return Err(Error::invalid(
                "signInAudience",
                "signInAudience: only AzureADMyOrg (this tenant) is supported.",
            ));
        }
        let public = input.is_fallback_public_client.unwrap_or(false);
        let api_permissions = check_api_permissions(&input.api_permissions.unwrap_or_default())?;
        Self::check_permission_grant(consent, &api_permissions)?;
        let app_id = match &input.app_id {
            Some(text) => parse_id("appId", text)?,
            None => self.deps.entropy.uuid(),
        };
        let access = ApplicationAccess {
            identifier_uris: input.identifier_uris.unwrap_or_default(),
            api: input.api.unwrap_or_default(),
            app_roles: input.app_roles.unwrap_or_default(),
            app_role_assignment_required: input.app_role_assignment_required.unwrap_or(false),
            group_membership_claims: input.group_membership_claims,
        };
        access::check_access(None, &access)?;
        let app = Application {
            id: self.deps.entropy.uuid(),
            app_id,
            display_name: check_display_name("displayName", &input.display_name)?,
            is_fallback_public_client: public,
            web: RedirectUris {
                redirect_uris: check_redirect_uris(
                    "web.redirectUris",
                    &input.web.unwrap_or_default().redirect_uris,
                    false,
                )?,
            },
            public_client: RedirectUris {
                redirect_uris: check_redirect_uris(
                    "publicClient.redirectUris",
                    &input.public_client.unwrap_or_default().redirect_uris,
                    true,
                )?,
            },
            spa: RedirectUris {
                redirect_uris: check_redirect_uris(
                    "spa.redirectUris",
                    &input.spa.unwrap_or_default().redirect_uris,
                    false,
                )?,
            },
            api_permissions,
            password_credentials: Vec::new(),
            access,
            created_date_time: self.now(),
            bootstrap_automation: false,
            id_token_signed_response_alg: input.id_token_signed_response_alg.unwrap_or_default(),
        };
        let target = TargetResource::new("Application", app.id, &app.display_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            "Add application",
            "Add",
            vec![target],
        );
        self.store()
            .commit(vec![Change::InsertApplication(app.clone())], Some(audit))
            .await?;
        Ok(app)
    }

    /// By object id or, failing that, by appId (client id).
    pub async fn application(
        &self,
        _grant: &Granted<ReadApplications>,
        id: &str,
    ) -> Result<Application> {
        self.find_application(id).await
    }

    pub(crate) async fn find_application(&self, id: &str) -> Result<Application> {
        let uuid = Uuid::parse_str(id).map_err(|_| Error::not_found("application", id))?;
        if let Some(app) = self.store().application(uuid).await? {
            return Ok(app);
        }
        self.store()
            .application_by_app_id(uuid)
            .await?
            .ok_or_else(|| Error::not_found("application", id))
    }

    pub async fn list_applications(
        &self,
        _grant: &Granted<ReadApplications>,
        query: &ListQuery,
    ) -> Result<Page<Application>> {
        self.store().list_applications(query).await
    }

    pub async fn update_application(
        &self,
        grant: &Granted<WriteApplications>,
        consent: Option<&Granted<WriteRoles>>,
        request: &RequestContext,
        id: &str,
        patch: ApplicationPatch,
    ) -> Result<Application> {
        let old = self.find_application(id).await?;
        let mut new = old.clone();
        if let Some(name) = patch.display_name {
            new.display_name = check_display_name("displayName", &name)?;
        }
        if let Some(p) = patch.is_fallback_public_client {
            new.is_fallback_public_client = p;
        }
        if let Some(w) = patch.web {
            new.web.redirect_uris =
                check_redirect_uris("web.redirectUris", &w.redirect_uris, false)?;
        }
        if let Some(p) = patch.public_client {
            new.public_client.redirect_uris =
                check_redirect_uris("publicClient.redirectUris", &p.redirect_uris, true)?;
        }
        if let Some(s) = patch.spa {
            new.spa.redirect_uris =
                check_redirect_uris("spa.redirectUris", &s.redirect_uris, false)?;
        }
        if let Some(alg) = patch.id_token_signed_response_alg {
            new.id_token_signed_response_alg = alg;
        }
        if let Some(p) = patch.api_permissions {
            new.api_permissions = check_api_permissions(&p)?;
            if new.api_permissions != old.api_permissions {
                self.check_application_change(
                    grant,
                    request,
                    &old,
                    ApplicationChange::ChangePermissions,
                    "Update application",
                )
                .await?;
                let added: Vec<String> = new
                    .api_permissions
                    .iter()
                    .filter(|p| !old.api_permissions.contains(p))
                    .cloned()
                    .collect();
                Self::check_permission_grant(consent, &added)?;
            }
        }
        if let Some(uris) = patch.identifier_uris {
            new.access.identifier_uris = uris;
        }
        if let Some(api) = patch.api {
            new.access.api = api;
        }
        if let Some(roles) = patch.app_roles {
            new.access.app_roles = roles;
        }
        if let Some(required) = patch.app_role_assignment_required {
            new.access.app_role_assignment_required = required;
        }
        if let Some(claims) = patch.group_membership_claims {
            new.access.group_membership_claims = claims;
        }
        if new.access != old.access {
            access::check_access(Some(&old.access), &new.access)?;
            if let Err(e) = access::check_first_party_access(&old, &new.access) {
                let target = TargetResource::new("Application", old.id, &old.display_name);
                let audit = self.audit(
                    grant.actor(),
                    request,
                    "ApplicationManagement",
                    "Update application",
                    "Update",
                    vec![target],
                );
                return Err(self.refused(audit, e).await);
            }
        }
        if new == old {
            return Ok(old);
        }
        // Whatever else changed: the first-party applications refuse it, and the automation
        // application takes it only from a caller who could change its permissions.
        let mut settings = new.clone();
        settings.api_permissions = old.api_permissions.clone();
        if settings != old {
            self.check_application_change(
                grant,
                request,
                &old,
                ApplicationChange::ChangeSettings,
                "Update application",
            )
            .await?;
        }
        let old_json = serde_json::to_value(&old).unwrap_or_default();
        let new_json = serde_json::to_value(&new).unwrap_or_default();
        let mut target = TargetResource::new("Application", old.id, &old.display_name);
        for name in [
            "displayName",
            "isFallbackPublicClient",
            "web",
            "publicClient",
            "spa",
            "apiPermissions",
            "identifierUris",
            "api",
            "appRoles",
            "appRoleAssignmentRequired",
            "groupMembershipClaims",
            "idTokenSignedResponseAlg",
        ] {
            if old_json.get(name) != new_json.get(name) {
                target = target.modified(name, old_json.get(name), new_json.get(name));
            }
        }
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            "Update application",
            "Update",
            vec![target],
        );
        self.store()
            .commit(vec![Change::UpdateApplication(new.clone())], Some(audit))
            .await?;
        Ok(new)
    }

    /// Refused while a policy names the application (by its appId or its object id).
    pub async fn delete_application(
        &self,
        grant: &Granted<WriteApplications>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        references::retrying(|| self.try_delete_application(grant, request, id)).await
    }

    async fn try_delete_application(
        &self,
        grant: &Granted<WriteApplications>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        let precondition = references::precondition(self.store()).await?;
        let app = self.find_application(id).await?;
        self.check_application_change(
            grant,
            request,
            &app,
            ApplicationChange::Delete,
            "Delete application",
        )
        .await?;
        references::refuse_if_named(
            self.store(),
            "application",
            &[app.id.to_string(), app.app_id.to_string()],
        )
        .await?;
        let target = TargetResource::new("Application", app.id, &app.display_name);
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            "Delete application",
            "Delete",
            vec![target],
        );
        let mut changes = vec![Change::DeleteApplication(app.id)];
        changes.extend(precondition);
        self.store().commit(changes, Some(audit)).await
    }

    /// Applies [`ladder::check_application_change`]; a refusal is audited as a failure of
    /// `activity`.
    async fn check_application_change(
        &self,
        grant: &Granted<WriteApplications>,
        request: &RequestContext,
        app: &Application,
        change: ApplicationChange,
        activity: &str,
    ) -> Result<()> {
        let Err(e) = ladder::check_application_change(grant.held(), app, change) else {
            return Ok(());
        };
        let operation = if change == ApplicationChange::Delete {
            "Delete"
        } else {
            "Update"
        };
        let target = TargetResource::new("Application", app.id, &app.display_name);
        Err(self
            .refused(
                self.audit(
                    grant.actor(),
                    request,
                    "ApplicationManagement",
                    activity,
                    operation,
                    vec![target],
                ),
                e,
            )
            .await)
    }

    /// Makes a new client secret. Its text is returned here once and stored only as a hash.
    pub fn new_secret(
        &self,
        display_name: Option<String>,
        end: Option<OffsetDateTime>,
    ) -> Result<NewSecret> {
        let now = self.now();
        let end = end.unwrap_or(now + MAX_SECRET_LIFETIME);
        if end <= now {
            return Err(Error::invalid(
                "passwordCredential.endDateTime",
                "endDateTime must be in the future.",
            ));
        }
        if end > now + MAX_SECRET_LIFETIME {
            return Err(Error::invalid(
                "passwordCredential.endDateTime",
                "A client secret may live at most two years.",
            ));
        }
        let display_name = display_name
            .map(|d| check_display_name("passwordCredential.displayName", &d))
            .transpose()?;
        let secret_text = self.deps.entropy.secret_text(40);
        Ok(NewSecret {
            credential: PasswordCredential {
                key_id: self.deps.entropy.uuid(),
                display_name,
                hint: secret_text.chars().take(3).collect(),
                start_date_time: now,
                end_date_time: end,
                secret_hash: hash_secret(&secret_text),
            },
            secret_text,
        })
    }

    pub async fn add_password(
        &self,
        grant: &Granted<WriteApplications>,
        request: &RequestContext,
        id: &str,
        input: AddPassword,
    ) -> Result<NewSecret> {
        let app = self.find_application(id).await?;
        self.check_application_change(
            grant,
            request,
            &app,
            ApplicationChange::AddCredential,
            SECRETS_ACTIVITY,
        )
        .await?;
        if app.is_fallback_public_client {
            return Err(Error::invalid(
                "passwordCredential",
                "A public client has no secrets: it cannot keep one. Set isFallbackPublicClient to false first.",
            ));
        }
        if app.password_credentials.len() >= 10 {
            return Err(Error::invalid(
                "passwordCredential",
                "An application may have at most 10 secrets; remove one first.",
            ));
        }
        let req = input.password_credential.unwrap_or_default();
        let secret = self.new_secret(req.display_name, req.end_date_time)?;
        let target = TargetResource::new("Application", app.id, &app.display_name).modified(
            "KeyDescription",
            None,
            Some(&serde_json::json!({
                "keyId": secret.credential.key_id,
                "displayName": secret.credential.display_name,
                "endDateTime": graph_datetime::format(secret.credential.end_date_time),
            })),
        );
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            SECRETS_ACTIVITY,
            "Update",
            vec![target],
        );
        self.store()
            .commit(
                vec![Change::InsertPasswordCredential {
                    application_id: app.id,
                    credential: secret.credential.clone(),
                }],
                Some(audit),
            )
            .await?;
        Ok(secret)
    }

    pub async fn remove_password(
        &self,
        grant: &Granted<WriteApplications>,
        request: &RequestContext,
        id: &str,
        input: RemovePassword,
    ) -> Result<()> {
        let app = self.find_application(id).await?;
        let key_id = parse_id("keyId", &input.key_id)?;
        self.check_application_change(
            grant,
            request,
            &app,
            ApplicationChange::RemoveCredential,
            SECRETS_ACTIVITY,
        )
        .await?;
        if !app.password_credentials.iter().any(|c| c.key_id == key_id) {
            return Err(Error::not_found("passwordCredential", key_id.to_string()));
        }
        let target = TargetResource::new("Application", app.id, &app.display_name).modified(
            "KeyDescription",
            Some(&serde_json::json!({ "keyId": key_id })),
            None,
        );
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            SECRETS_ACTIVITY,
            "Update",
            vec![target],
        );
        self.store()
            .commit(
                vec![Change::DeletePasswordCredential {
                    application_id: app.id,
                    key_id,
                }],
                Some(audit),
            )
            .await
    }

    /// Checks an application's client id and secret (client credentials grant). Unknown client
    /// and wrong secret give the same answer, so the endpoint does not reveal which client ids
    /// exist.
    pub async fn authenticate_client(&self, client_id: &str, secret: &str) -> Result<Application> {
        let refused =
            || Error::Unauthenticated("The client id or client secret is not valid.".into());
        let app_id = Uuid::parse_str(client_id.trim()).map_err(|_| refused())?;
        let app = self
            .store()
            .application_by_app_id(app_id)
            .await?
            .ok_or_else(refused)?;
        let now = self.now();
        let valid = app
            .password_credentials
            .iter()
            .filter(|c| c.start_date_time <= now && now < c.end_date_time)
            .fold(false, |ok, c| verify_secret(secret, &c.secret_hash) | ok);
        if valid { Ok(app) } else { Err(refused()) }
    }

    // --- logs ---------------------------------------------------------------------------

    pub async fn list_audits(
        &self,
        _grant: &Granted<ReadAuditLogs>,
        query: &ListQuery,
    ) -> Result<Page<DirectoryAudit>> {
        self.store().list_audits(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_rules() {
        assert!(check_upn("joni@contoso.com").is_ok());
        assert!(check_upn("o'neil.x@a-b.example").is_ok());
        for bad in [
            "joni",
            "@contoso.com",
            "joni@",
            "jo ni@contoso.com",
            "joni@contoso..com",
            ".joni@c.com",
        ] {
            assert_eq!(
                check_upn(bad).unwrap_err().target(),
                Some("userPrincipalName"),
                "{bad}"
            );
        }
        let long = format!("{}@contoso.com", "a".repeat(65));
        assert!(check_upn(&long).is_err());
        // 113 characters sent, as the document allows, then one more hidden in a space.
        let at_limit = format!("{}@{}.example", "a".repeat(64), "b".repeat(40));
        assert_eq!(at_limit.chars().count(), MAX_UPN);
        assert!(check_upn(&at_limit).is_ok());
        assert!(check_upn(&format!(" {at_limit}")).is_err());
    }

    /// The limits are on what was sent (the OpenAPI document's maxLength): trimming spaces
    /// afterwards must not make a too-long value acceptable.
    #[test]
    fn lengths_count_what_was_sent() {
        let name = "n".repeat(MAX_DISPLAY_NAME);
        assert_eq!(check_display_name("displayName", &name).unwrap(), name);
        assert_eq!(
            check_display_name("displayName", &format!(" {}", &name[1..])).unwrap(),
            name[1..]
        );
        for padded in [
            format!("\t{name}"),
            format!("{name} "),
            format!(" {name}\n"),
        ] {
            assert_eq!(
                check_display_name("displayName", &padded)
                    .unwrap_err()
                    .target(),
                Some("displayName")
            );
        }
        let mail = format!("{}@contoso.com", "m".repeat(254 - 12));
        assert_eq!(mail.chars().count(), 254);
        assert!(check_mail(Some(mail.clone())).is_ok());
        assert!(check_mail(Some(format!(" {mail}"))).is_err());
    }

    #[test]
    fn redirect_uri_rules() {
        let ok = |u: &str, public| {
            check_redirect_uris("web.redirectUris", &[u.to_string()], public).is_ok()
        };
        assert!(ok("https://app.example/cb", false));
        assert!(ok("http://localhost:3000/cb", false));
        assert!(ok("http://127.0.0.1/cb", false));
        assert!(!ok("http://app.example/cb", false));
        assert!(!ok("https://app.example/cb#frag", false));
        assert!(!ok("com.example.app:/cb", false));
        assert!(ok("com.example.app:/cb", true));
        assert!(!ok("/relative", false));
    }

    #[test]
    fn odata_references() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse_odata_reference(&format!(
                "https://graph.microsoft.com/v1.0/directoryObjects/{id}"
            ))
            .unwrap(),
            id
        );
        assert_eq!(
            parse_odata_reference(&format!("directoryObjects('{id}')")).unwrap(),
            id
        );
        assert!(parse_odata_reference("https://x/directoryObjects/nope").is_err());
    }
}
