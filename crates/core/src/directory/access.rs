//! Applications as APIs, and who may use an application.
//!
//! An application exposes an API through its identifier URIs (`api://…`), delegated scopes
//! (`api.oauth2PermissionScopes`) and app roles (`appRoles`); this module checks them as Entra
//! does. App role assignments give a user, a group or an application one of a resource
//! application's roles (or its default access, the nil role id); with
//! `appRoleAssignmentRequired` only assigned people may sign in to it.
//!
//! What it decides for the layers above, reading the store directly so that the sign-in and the
//! token endpoint need no permission of their own: whether a person is assigned
//! ([`is_assigned`]), which app roles they or a calling application hold ([`user_roles`],
//! [`application_roles`]), and which groups a token names ([`groups_claim`]). A group's
//! assignment counts for its direct members, as in Entra (nested groups do not pass it on).
//!
//! What it must never do: treat an app role as a permission of the admin API. Those are
//! `apiPermissions`, and assigning an app role never grants one, so assignments are no ladder
//! to the admin API; the first-party applications (Admin Portal, My Account) take no
//! assignments and expose nothing.

use std::collections::HashSet;

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::Directory;
use crate::directory::audit::{RequestContext, TargetResource};
use crate::directory::authz::{Granted, ReadApplications, WriteAppRoleAssignments};
use crate::directory::ladder::is_first_party;
use crate::directory::model::{
    AppRole, AppRoleAssignment, AppRoleMemberType, Application, ApplicationAccess,
    AssignedPrincipalType, DEFAULT_ACCESS_ROLE, GroupMembershipClaims, PermissionScope,
};
use crate::directory::store::{DirectoryChange as Change, DirectoryStore};
use crate::kernel::error::ErrorCode;
use crate::{Error, Result};

/// The longest scope or app role value (Entra's limit for app role values).
const MAX_VALUE: usize = 120;
/// The longest identifier URI.
const MAX_IDENTIFIER_URI: usize = 255;
/// At most this many identifier URIs, scopes or app roles on one application.
const MAX_ENTRIES: usize = 50;

/// Body of `POST /servicePrincipals/{id}/appRoleAssignedTo`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAppRoleAssignment {
    /// The user, group or application (object id) given the role.
    pub principal_id: String,
    /// The resource application's object id: the one named in the path.
    pub resource_id: String,
    /// One of the resource's enabled app roles, or `00000000-0000-0000-0000-000000000000` for
    /// default access.
    pub app_role_id: String,
    #[serde(default, rename = "@odata.type")]
    #[schema(ignore)]
    pub odata_type: Option<String>,
}

/// Whether a scope or app role value is one Entra takes: printable ASCII without spaces or
/// quotes, not starting with a dot. Scope values also may not hold `/`, which separates them
/// from the identifier URI in a request's `scope`.
fn valid_value(value: &str, scope: bool) -> bool {
    !value.is_empty()
        && value.len() <= MAX_VALUE
        && !value.starts_with('.')
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b"!#$%&'()*+,-./:;<=>?@[]^_`{|}~".contains(&b) && !(scope && b == b'/')
        })
}

/// An identifier URI Portcullis takes: `api://…` or `https://…`, with something after the
/// scheme, no whitespace, wildcard, query or fragment, and no trailing `/` (a scope is asked for
/// as `<uri>/<value>`).
fn valid_identifier_uri(uri: &str) -> bool {
    // Schemes are case-insensitive (RFC 3986 §3.1), as is the uniqueness of the whole URI.
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("api://")
        .or_else(|| lower.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && uri.len() <= MAX_IDENTIFIER_URI
            && !uri.ends_with('/')
            && !uri
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '#' | '?'))
    })
}

/// Checks what an application exposes, as Entra would: identifier URIs well formed and
/// distinct, scope and role values well formed and distinct, every id a distinct GUID (scopes
/// and roles share one id space), and an enabled scope or role removed only once disabled.
/// `old` is what the application exposed before (none for a new one). Each refusal is a 400
/// naming the property.
pub fn check_access(old: Option<&ApplicationAccess>, new: &ApplicationAccess) -> Result<()> {
    const URIS: &str = "identifierUris";
    const SCOPES: &str = "api.oauth2PermissionScopes";
    const ROLES: &str = "appRoles";
    if new.identifier_uris.len() > MAX_ENTRIES {
        return Err(Error::invalid(
            URIS,
            format!("An application has at most {MAX_ENTRIES} identifier URIs."),
        ));
    }
    let mut seen = HashSet::new();
    for uri in &new.identifier_uris {
        if !valid_identifier_uri(uri) {
            return Err(Error::invalid(
                URIS,
                format!(
                    "'{uri}' is not a valid identifier URI: use api://<name> or https://<host>/<path>, without spaces, '*', '?', '#' or a trailing '/' ({MAX_IDENTIFIER_URI} characters at most)."
                ),
            ));
        }
        if !seen.insert(uri.to_lowercase()) {
            return Err(Error::invalid(URIS, format!("'{uri}' is listed twice.")));
        }
    }
    let scopes = &new.api.oauth2_permission_scopes;
    if scopes.len() > MAX_ENTRIES || new.app_roles.len() > MAX_ENTRIES {
        return Err(Error::invalid(
            if scopes.len() > MAX_ENTRIES {
                SCOPES
            } else {
                ROLES
            },
            format!(
                "An application defines at most {MAX_ENTRIES} scopes and {MAX_ENTRIES} app roles."
            ),
        ));
    }
    let mut ids = HashSet::new();
    let mut values = HashSet::new();
    for scope in scopes {
        if !valid_value(&scope.value, true) {
            return Err(Error::invalid(
                SCOPES,
                format!(
                    "The scope value '{}' is not valid: 1 to {MAX_VALUE} characters of letters, digits and !#$%&'()*+,-.:;<=>?@[]^_`{{|}}~ (no spaces or '/'), not starting with '.'.",
                    scope.value
                ),
            ));
        }
        if scope.admin_consent_display_name.trim().is_empty() {
            return Err(Error::invalid(
                SCOPES,
                format!(
                    "The scope '{}' needs an adminConsentDisplayName.",
                    scope.value
                ),
            ));
        }
        if scope.id == Uuid::nil() || !ids.insert(scope.id) {
            return Err(Error::invalid(
                SCOPES,
                format!(
                    "The scope '{}' needs an id of its own: a GUID no other scope or app role of this application uses.",
                    scope.value
                ),
            ));
        }
        if !values.insert(scope.value.to_lowercase()) {
            return Err(Error::invalid(
                SCOPES,
                format!("Two scopes have the value '{}'.", scope.value),
            ));
        }
    }
    let mut values = HashSet::new();
    for role in &new.app_roles {
        if !valid_value(&role.value, false) {
            return Err(Error::invalid(
                ROLES,
                format!(
                    "The app role value '{}' is not valid: 1 to {MAX_VALUE} characters of letters, digits and !#$%&'()*+,-./:;<=>?@[]^_`{{|}}~ (no spaces), not starting with '.'.",
                    role.value
                ),
            ));
        }
        if role.display_name.trim().is_empty() {
            return Err(Error::invalid(
                ROLES,
                format!("The app role '{}' needs a displayName.", role.value),
            ));
        }
        let kinds: HashSet<_> = role.allowed_member_types.iter().collect();
        if kinds.is_empty() || kinds.len() != role.allowed_member_types.len() {
            return Err(Error::invalid(
                ROLES,
                format!(
                    "The app role '{}' needs allowedMemberTypes: User, Application or both, each once.",
                    role.value
                ),
            ));
        }
        if role.id == DEFAULT_ACCESS_ROLE || !ids.insert(role.id) {
            return Err(Error::invalid(
                ROLES,
                format!(
                    "The app role '{}' needs an id of its own: a GUID no other scope or app role of this application uses.",
                    role.value
                ),
            ));
        }
        if !values.insert(role.value.to_lowercase()) {
            return Err(Error::invalid(
                ROLES,
                format!("Two app roles have the value '{}'.", role.value),
            ));
        }
    }
    if let Some(old) = old {
        let removed_enabled_scope = old
            .api
            .oauth2_permission_scopes
            .iter()
            .find(|s| s.is_enabled && !scopes.iter().any(|n| n.id == s.id));
        if let Some(scope) = removed_enabled_scope {
            return Err(Error::invalid(
                SCOPES,
                format!(
                    "The scope '{}' is enabled: disable it (isEnabled: false) before removing it.",
                    scope.value
                ),
            ));
        }
        let removed_enabled_role = old
            .app_roles
            .iter()
            .find(|r| r.is_enabled && !new.app_roles.iter().any(|n| n.id == r.id));
        if let Some(role) = removed_enabled_role {
            return Err(Error::invalid(
                ROLES,
                format!(
                    "The app role '{}' is enabled: disable it (isEnabled: false) before removing it.",
                    role.value
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses exposing anything on a first-party application, or requiring assignment to it:
/// the Admin Portal and My Account are how administrators and people reach the directory.
pub fn check_first_party_access(app: &Application, new: &ApplicationAccess) -> Result<()> {
    if is_first_party(app) && *new != app.access {
        return Err(Error::denied(
            ErrorCode::FirstPartyApplicationProtected,
            format!(
                "'{}' is one of Portcullis's own applications: it exposes no API, defines no app roles and cannot require assignment.",
                app.display_name
            ),
        ));
    }
    Ok(())
}

/// An enabled scope of `api` by its value (case-insensitively, as Entra compares them).
pub fn enabled_scope<'a>(api: &'a Application, value: &str) -> Option<&'a PermissionScope> {
    api.access
        .api
        .oauth2_permission_scopes
        .iter()
        .find(|s| s.is_enabled && s.value.eq_ignore_ascii_case(value))
}

/// The enabled app role `id` of `app` that principals of `kind` may hold.
fn enabled_role(app: &Application, id: Uuid, kind: AppRoleMemberType) -> Option<&AppRole> {
    app.access
        .app_roles
        .iter()
        .find(|r| r.id == id && r.is_enabled && r.admits(kind))
}

/// The ids an assignment to the person counts under: theirs and their direct groups'.
async fn person_and_groups(store: &dyn DirectoryStore, user_id: Uuid) -> Result<HashSet<Uuid>> {
    let mut ids: HashSet<Uuid> = store
        .member_of(user_id)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    ids.insert(user_id);
    Ok(ids)
}

/// Whether the person holds any assignment to the application `resource_id` (object id) — a
/// role or default access — themselves or through a group they are a direct member of.
pub async fn is_assigned(
    store: &dyn DirectoryStore,
    resource_id: Uuid,
    user_id: Uuid,
) -> Result<bool> {
    let assignments = store.app_role_assignments(resource_id).await?;
    if assignments.is_empty() {
        return Ok(false);
    }
    let ids = person_and_groups(store, user_id).await?;
    Ok(assignments.iter().any(|a| ids.contains(&a.principal_id)))
}

/// The values of the enabled app roles of `app` the person holds, themselves or through a
/// group they are a direct member of, each once. Nothing is read when `app` defines no roles.
pub async fn user_roles(
    store: &dyn DirectoryStore,
    app: &Application,
    user_id: Uuid,
) -> Result<Vec<String>> {
    if app.access.app_roles.is_empty() {
        return Ok(Vec::new());
    }
    let assignments = store.app_role_assignments(app.id).await?;
    let ids = person_and_groups(store, user_id).await?;
    Ok(role_values(
        app,
        assignments.iter().filter(|a| ids.contains(&a.principal_id)),
        AppRoleMemberType::User,
    ))
}

/// The values of the enabled app roles of `resource` assigned to the application `caller`
/// (object id), each once.
pub async fn application_roles(
    store: &dyn DirectoryStore,
    resource: &Application,
    caller: Uuid,
) -> Result<Vec<String>> {
    if resource.access.app_roles.is_empty() {
        return Ok(Vec::new());
    }
    let assignments = store.app_role_assignments(resource.id).await?;
    Ok(role_values(
        resource,
        assignments.iter().filter(|a| a.principal_id == caller),
        AppRoleMemberType::Application,
    ))
}

fn role_values<'a>(
    app: &Application,
    assignments: impl Iterator<Item = &'a AppRoleAssignment>,
    kind: AppRoleMemberType,
) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for assignment in assignments {
        if let Some(role) = enabled_role(app, assignment.app_role_id, kind)
            && !values.contains(&role.value)
        {
            values.push(role.value.clone());
        }
    }
    values
}

/// The object ids of the groups `app`'s tokens name for the person (`groupMembershipClaims`),
/// or `None` when the application asks for no `groups` claim. Membership is transitive
/// (nested groups count); `ApplicationGroup` keeps only groups assigned to the application.
pub async fn groups_claim(
    store: &dyn DirectoryStore,
    app: &Application,
    user_id: Uuid,
) -> Result<Option<Vec<Uuid>>> {
    let Some(which) = app.access.group_membership_claims else {
        return Ok(None);
    };
    let groups = match which {
        GroupMembershipClaims::None => return Ok(None),
        GroupMembershipClaims::All | GroupMembershipClaims::ApplicationGroup => {
            store.transitive_member_of(user_id).await?
        }
        GroupMembershipClaims::SecurityGroup => store
            .transitive_member_of(user_id)
            .await?
            .into_iter()
            .filter(|g| g.security_enabled)
            .collect(),
    };
    let mut ids: Vec<Uuid> = groups.into_iter().map(|g| g.id).collect();
    if which == GroupMembershipClaims::ApplicationGroup {
        let assigned: HashSet<Uuid> = store
            .app_role_assignments(app.id)
            .await?
            .into_iter()
            .filter(|a| a.principal_type == AssignedPrincipalType::Group)
            .map(|a| a.principal_id)
            .collect();
        ids.retain(|id| assigned.contains(id));
    }
    Ok(Some(ids))
}

impl Directory {
    /// `GET /servicePrincipals/{id}/appRoleAssignedTo`: who holds the application's roles.
    pub async fn app_role_assigned_to(
        &self,
        _grant: &Granted<ReadApplications>,
        id: &str,
    ) -> Result<(Application, Vec<AppRoleAssignment>)> {
        let app = self.find_application(id).await?;
        let assignments = self.store().app_role_assignments(app.id).await?;
        Ok((app, assignments))
    }

    /// `POST /servicePrincipals/{id}/appRoleAssignedTo`: gives a user, group or application
    /// one of the application's enabled roles that admits it, or default access. The first-party
    /// applications take no assignments (403, audited).
    pub async fn assign_app_role(
        &self,
        grant: &Granted<WriteAppRoleAssignments>,
        request: &RequestContext,
        id: &str,
        input: NewAppRoleAssignment,
    ) -> Result<AppRoleAssignment> {
        let app = self.find_application(id).await?;
        let resource_id = Uuid::parse_str(input.resource_id.trim()).map_err(|_| {
            Error::invalid(
                "resourceId",
                "resourceId must be the application's object id.",
            )
        })?;
        if resource_id != app.id {
            return Err(Error::invalid(
                "resourceId",
                format!(
                    "resourceId must be '{}', the object id of the application in the path.",
                    app.id
                ),
            ));
        }
        let app_role_id = Uuid::parse_str(input.app_role_id.trim())
            .map_err(|_| Error::invalid("appRoleId", "appRoleId must be a GUID."))?;
        let principal_id = Uuid::parse_str(input.principal_id.trim())
            .map_err(|_| Error::invalid("principalId", "principalId must be an object id."))?;
        let store = self.store();
        let (principal_type, principal_display_name) =
            if let Some(user) = store.user(principal_id).await? {
                (AssignedPrincipalType::User, user.display_name)
            } else if let Some(group) = store.group(principal_id).await? {
                (AssignedPrincipalType::Group, group.display_name)
            } else if let Some(other) = store.application(principal_id).await? {
                (AssignedPrincipalType::ServicePrincipal, other.display_name)
            } else {
                return Err(Error::invalid(
                    "principalId",
                    format!("No user, group or application has the object id '{principal_id}'."),
                ));
            };
        let assignment = AppRoleAssignment {
            id: self.deps.entropy.uuid(),
            app_role_id,
            principal_id,
            principal_type,
            principal_display_name,
            resource_id: app.id,
            resource_display_name: app.display_name.clone(),
            created_date_time: self.now(),
        };
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            &format!(
                "Add app role assignment to {}",
                assignment_noun(principal_type)
            ),
            "Assign",
            assignment_targets(&assignment),
        );
        if is_first_party(&app) {
            return Err(self
                .refused(
                    audit,
                    Error::denied(
                        ErrorCode::FirstPartyApplicationProtected,
                        format!(
                            "'{}' is one of Portcullis's own applications: who may use it is decided by directory roles and Conditional Access, not app role assignments.",
                            app.display_name
                        ),
                    ),
                )
                .await);
        }
        if app_role_id != DEFAULT_ACCESS_ROLE
            && enabled_role(&app, app_role_id, principal_type.member_type()).is_none()
        {
            let kind = match principal_type.member_type() {
                AppRoleMemberType::User => "users and groups",
                AppRoleMemberType::Application => "applications",
            };
            return Err(Error::invalid(
                "appRoleId",
                format!(
                    "'{app_role_id}' is not an enabled app role of '{}' that may be assigned to {kind} (or 00000000-0000-0000-0000-000000000000 for default access).",
                    app.display_name
                ),
            ));
        }
        store
            .commit(
                vec![Change::InsertAppRoleAssignment(assignment.clone())],
                Some(audit),
            )
            .await?;
        Ok(assignment)
    }

    /// `DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}`.
    pub async fn remove_app_role_assignment(
        &self,
        grant: &Granted<WriteAppRoleAssignments>,
        request: &RequestContext,
        id: &str,
        assignment_id: &str,
    ) -> Result<()> {
        let app = self.find_application(id).await?;
        let wanted = Uuid::parse_str(assignment_id)
            .map_err(|_| Error::not_found("appRoleAssignment", assignment_id))?;
        let found = self
            .store()
            .app_role_assignments(app.id)
            .await?
            .into_iter()
            .find(|a| a.id == wanted);
        let Some(assignment) = found else {
            return Err(Error::not_found("appRoleAssignment", assignment_id));
        };
        let audit = self.audit(
            grant.actor(),
            request,
            "ApplicationManagement",
            &format!(
                "Remove app role assignment from {}",
                assignment_noun(assignment.principal_type)
            ),
            "Unassign",
            assignment_targets(&assignment),
        );
        self.store()
            .commit(
                vec![Change::DeleteAppRoleAssignment(assignment.id)],
                Some(audit),
            )
            .await
    }
}

fn assignment_noun(kind: AssignedPrincipalType) -> &'static str {
    match kind {
        AssignedPrincipalType::User => "user",
        AssignedPrincipalType::Group => "group",
        AssignedPrincipalType::ServicePrincipal => "service principal",
    }
}

fn assignment_targets(assignment: &AppRoleAssignment) -> Vec<TargetResource> {
    let principal = TargetResource::new(
        assignment.principal_type.as_str(),
        assignment.principal_id,
        assignment.principal_display_name.clone(),
    );
    let role = serde_json::Value::String(assignment.app_role_id.to_string());
    vec![
        principal.modified("AppRole.Id", None, Some(&role)),
        TargetResource::new(
            "Application",
            assignment.resource_id,
            assignment.resource_display_name.clone(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::{ApiApplication, PermissionScopeType};

    fn scope(value: &str, id: u128) -> PermissionScope {
        PermissionScope {
            id: Uuid::from_u128(id),
            value: value.to_string(),
            admin_consent_display_name: "Read".to_string(),
            admin_consent_description: None,
            user_consent_display_name: None,
            user_consent_description: None,
            is_enabled: true,
            kind: PermissionScopeType::User,
        }
    }

    fn role(value: &str, id: u128) -> AppRole {
        AppRole {
            id: Uuid::from_u128(id),
            value: value.to_string(),
            display_name: value.to_string(),
            description: None,
            allowed_member_types: vec![AppRoleMemberType::User],
            is_enabled: true,
        }
    }

    fn exposing(
        uris: &[&str],
        scopes: Vec<PermissionScope>,
        roles: Vec<AppRole>,
    ) -> ApplicationAccess {
        ApplicationAccess {
            identifier_uris: uris.iter().map(|u| u.to_string()).collect(),
            api: ApiApplication {
                oauth2_permission_scopes: scopes,
            },
            app_roles: roles,
            ..ApplicationAccess::default()
        }
    }

    fn target(result: Result<()>) -> Option<String> {
        match result {
            Err(Error::Invalid { target, .. }) => target.map(|t| t.to_string()),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn identifier_uris_are_api_or_https_without_wildcards_or_trailing_slash() {
        for ok in [
            "api://orders",
            "api://7f0c/x",
            "https://api.contoso.com/orders",
        ] {
            assert!(valid_identifier_uri(ok), "{ok}");
        }
        for bad in [
            "api://",
            "http://x",
            "orders",
            "api://x/",
            "api://*",
            "api://a b",
            "api://x?y",
            "api://x#y",
        ] {
            assert!(!valid_identifier_uri(bad), "{bad}");
        }
    }

    #[test]
    fn values_take_entra_characters_and_scopes_no_slash() {
        assert!(valid_value("Orders.Read", true));
        assert!(valid_value("a/b", false));
        assert!(!valid_value("a/b", true));
        for bad in ["", ".hidden", "has space", "quote\"", "é"] {
            assert!(!valid_value(bad, false), "{bad}");
        }
        assert!(!valid_value(&"a".repeat(MAX_VALUE + 1), false));
    }

    #[test]
    fn refusals_name_the_property() {
        let dup_uri = exposing(&["api://x", "API://X"], vec![], vec![]);
        assert_eq!(
            target(check_access(None, &dup_uri)).as_deref(),
            Some("identifierUris")
        );
        let dup_scope = exposing(&[], vec![scope("Read", 1), scope("read", 2)], vec![]);
        assert_eq!(
            target(check_access(None, &dup_scope)).as_deref(),
            Some("api.oauth2PermissionScopes")
        );
        let shared_id = exposing(&[], vec![scope("Read", 1)], vec![role("Admin", 1)]);
        assert_eq!(
            target(check_access(None, &shared_id)).as_deref(),
            Some("appRoles")
        );
        let mut no_kinds = role("Admin", 3);
        no_kinds.allowed_member_types.clear();
        let no_kinds = exposing(&[], vec![], vec![no_kinds]);
        assert_eq!(
            target(check_access(None, &no_kinds)).as_deref(),
            Some("appRoles")
        );
        let good = exposing(&["api://x"], vec![scope("Read", 1)], vec![role("Admin", 2)]);
        assert!(check_access(None, &good).is_ok());
    }

    #[test]
    fn an_enabled_scope_or_role_is_disabled_before_it_is_removed() {
        let old = exposing(&[], vec![scope("Read", 1)], vec![role("Admin", 2)]);
        let without_scope = exposing(&[], vec![], vec![role("Admin", 2)]);
        assert_eq!(
            target(check_access(Some(&old), &without_scope)).as_deref(),
            Some("api.oauth2PermissionScopes")
        );
        let mut disabled = old.clone();
        disabled.api.oauth2_permission_scopes[0].is_enabled = false;
        disabled.app_roles[0].is_enabled = false;
        assert!(check_access(Some(&disabled), &exposing(&[], vec![], vec![])).is_ok());
        assert_eq!(
            target(check_access(
                Some(&old),
                &exposing(&[], vec![scope("Read", 1)], vec![])
            ))
            .as_deref(),
            Some("appRoles")
        );
    }
}
