//! No privilege ladder through groups or applications: the one place that decides whether a
//! caller who may manage groups or applications may make *this* change to *this* group or
//! application.
//!
//! A permission to manage groups must not become a way to hold a role, and a permission to
//! manage applications must not become a way to act as a more privileged application. So:
//!
//! - Only a role-assignable group (Graph's `isAssignableToRole`, fixed when the group is made)
//!   may hold a directory role, and it may not contain groups. Making one, and adding or
//!   removing its members, needs `RoleManagement.ReadWrite.Directory` (Privileged Role
//!   Administrator, Global Administrator) besides the usual permission.
//! - Adding or removing an application's credential, or changing its `apiPermissions`, needs
//!   every permission the application holds, or `RoleManagement.ReadWrite.Directory`. This goes
//!   beyond Entra, where `Application.ReadWrite.All` is a known escalation path.
//! - The first-party applications (My Account, Admin Portal) are never deleted nor given a
//!   credential, whoever asks.
//! - The automation application made at first start is protected like a Global
//!   Administrator: changing its credentials or permissions, or deleting it, needs
//!   `RoleManagement.ReadWrite.Directory` or every permission it holds.
//!
//! The rules are pure: they read the caller's permissions (as [`Granted::held`] gives them)
//! and the target, and answer. The directory service calls them before every such change, so
//! the Graph API and the portal are judged alike. What this module must never do: read or
//! write storage, or know which surface asked.
//!
//! [`Granted::held`]: crate::directory::authz::Granted::held

use crate::directory::authz::{covers, perm};
use crate::directory::first_party::FIRST_PARTY_APPLICATIONS;
use crate::directory::model::{Application, Group};
use crate::kernel::error::ErrorCode;
use crate::{Error, Result};

/// Whether the caller holds the permission that manages who holds roles.
pub fn manages_roles(held: &[String]) -> bool {
    covers(held, perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY)
}

/// A change to a group that decides who holds the roles of a role-assignable group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupChange {
    /// Making a group with `isAssignableToRole: true`.
    CreateRoleAssignable,
    AddMember,
    RemoveMember,
    /// Deleting the group: its members lose every role it holds at once, so it is a removal of
    /// each of them.
    Delete,
    /// Changing its name, description or mail nickname.
    Update,
}

/// Refuses a change to a role-assignable group's membership (or making one) by a caller who
/// does not manage roles. `containing` are the groups `group` is in, directly or through
/// nesting: a group nested in a role-assignable one (possible only in a database made before
/// role-assignable groups existed) passes its members the roles too, so it is guarded alike.
/// Changes to other groups are not this rule's business.
pub fn check_group_change(
    held: &[String],
    group: &Group,
    containing: &[Group],
    change: GroupChange,
) -> Result<()> {
    let guarded = match change {
        GroupChange::CreateRoleAssignable => true,
        GroupChange::AddMember
        | GroupChange::RemoveMember
        | GroupChange::Delete
        | GroupChange::Update => {
            group.is_assignable_to_role || containing.iter().any(|g| g.is_assignable_to_role)
        }
    };
    if !guarded || manages_roles(held) {
        return Ok(());
    }
    let kind = if group.is_assignable_to_role {
        "a role-assignable group"
    } else {
        "a group nested in a role-assignable group"
    };
    let what = match change {
        GroupChange::CreateRoleAssignable => "Making a role-assignable group".to_string(),
        GroupChange::AddMember => format!("Adding a member to '{}', {kind},", group.display_name),
        GroupChange::RemoveMember => {
            format!("Removing a member from '{}', {kind},", group.display_name)
        }
        GroupChange::Delete => format!("Deleting '{}', {kind},", group.display_name),
        GroupChange::Update => format!("Changing '{}', {kind},", group.display_name),
    };
    Err(Error::denied(
        ErrorCode::RoleAssignableGroupNeedsRoleManagement,
        format!(
            "{what} needs the {} permission (Privileged Role Administrator or Global Administrator) as well: its members hold its roles.",
            perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY
        ),
    ))
}

/// Only a role-assignable group may be given a role.
pub fn check_group_may_hold_role(group: &Group) -> Result<()> {
    if group.is_assignable_to_role {
        return Ok(());
    }
    Err(Error::invalid_by_rule(
        ErrorCode::GroupNotAssignableToRole,
        "principalId",
        format!(
            "The group '{}' is not role-assignable: only a group made with isAssignableToRole true may hold a directory role.",
            group.display_name
        ),
    ))
}

/// A role-assignable group holds users only: a nested group's members would hold its roles
/// without anyone managing roles having chosen them.
pub fn check_may_contain_group(container: &Group) -> Result<()> {
    if !container.is_assignable_to_role {
        return Ok(());
    }
    Err(Error::invalid_by_rule(
        ErrorCode::RoleAssignableGroupCannotNest,
        "@odata.id",
        format!(
            "'{}' is a role-assignable group: it cannot contain groups.",
            container.display_name
        ),
    ))
}

/// `isAssignableToRole` is fixed when the group is made, as in Graph.
pub fn check_assignable_unchanged(group: &Group, requested: Option<bool>) -> Result<()> {
    match requested {
        Some(value) if value != group.is_assignable_to_role => Err(Error::invalid(
            "isAssignableToRole",
            "isAssignableToRole is set when a group is made and cannot be changed afterwards.",
        )),
        _ => Ok(()),
    }
}

/// A change to an application that could give someone what the application holds, or take
/// away something Portcullis itself needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationChange {
    AddCredential,
    RemoveCredential,
    ChangePermissions,
    /// Any other property: its name, redirect URIs, public-client setting, token algorithm, the
    /// API it exposes. These decide where a person's sign-in to the application ends up.
    ChangeSettings,
    Delete,
}

impl ApplicationChange {
    fn describe(self) -> &'static str {
        match self {
            ApplicationChange::AddCredential => "Adding a credential to",
            ApplicationChange::RemoveCredential => "Removing a credential of",
            ApplicationChange::ChangePermissions => "Changing the apiPermissions of",
            ApplicationChange::ChangeSettings => "Changing",
            ApplicationChange::Delete => "Deleting",
        }
    }
}

/// Whether the application is one of Portcullis's own (My Account, Admin Portal).
pub fn is_first_party(app: &Application) -> bool {
    FIRST_PARTY_APPLICATIONS
        .iter()
        .any(|(app_id, _)| *app_id == app.app_id)
}

/// The permissions `app` holds that `held` does not cover.
fn uncovered<'a>(held: &[String], app: &'a Application) -> Vec<&'a str> {
    app.api_permissions
        .iter()
        .map(String::as_str)
        .filter(|p| !covers(held, p))
        .collect()
}

/// Decides whether a caller holding `held` may make `change` to `app`.
pub fn check_application_change(
    held: &[String],
    app: &Application,
    change: ApplicationChange,
) -> Result<()> {
    if is_first_party(app)
        && matches!(
            change,
            ApplicationChange::AddCredential
                | ApplicationChange::ChangeSettings
                | ApplicationChange::Delete
        )
    {
        // Their redirect URIs and names are Portcullis's own: an application writer who could
        // point the Admin Portal's at an address of theirs would receive the codes of every
        // administrator who signs in there.
        return Err(Error::denied(
            ErrorCode::FirstPartyApplicationProtected,
            format!(
                "{} '{}' is not possible: it is one of Portcullis's own applications, which have no credentials, keep their own name and addresses, and cannot be deleted.",
                change.describe(),
                app.display_name
            ),
        ));
    }
    if manages_roles(held) {
        return Ok(());
    }
    let missing = uncovered(held, app);
    if app.bootstrap_automation {
        if missing.is_empty() {
            return Ok(());
        }
        return Err(Error::denied(
            ErrorCode::AutomationApplicationProtected,
            format!(
                "{} '{}', the automation application made at first start, needs the {} permission (Privileged Role Administrator or Global Administrator): it is protected like a Global Administrator.",
                change.describe(),
                app.display_name,
                perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY
            ),
        ));
    }
    if matches!(
        change,
        ApplicationChange::Delete | ApplicationChange::ChangeSettings
    ) || missing.is_empty()
    {
        return Ok(());
    }
    Err(Error::denied(
        ErrorCode::ApplicationPermissionsNotCovered,
        format!(
            "{} '{}' needs every permission it holds, or {}: you do not hold {}.",
            change.describe(),
            app.display_name,
            perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY,
            missing.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::first_party::{ADMIN_PORTAL_APP_ID, MY_ACCOUNT_APP_ID};
    use crate::directory::model::RedirectUris;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn held(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn group(assignable: bool) -> Group {
        Group {
            id: Uuid::new_v4(),
            display_name: "Tier 0".into(),
            description: None,
            mail_nickname: None,
            security_enabled: true,
            is_assignable_to_role: assignable,
            created_date_time: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn app(permissions: &[&str], automation: bool) -> Application {
        Application {
            id: Uuid::new_v4(),
            app_id: Uuid::new_v4(),
            display_name: "Payroll sync".into(),
            is_fallback_public_client: false,
            web: RedirectUris::default(),
            public_client: RedirectUris::default(),
            spa: RedirectUris::default(),
            api_permissions: held(permissions),
            password_credentials: Vec::new(),
            access: Default::default(),
            created_date_time: OffsetDateTime::UNIX_EPOCH,
            bootstrap_automation: automation,
            id_token_signed_response_alg: Default::default(),
        }
    }

    fn code(result: Result<()>) -> Option<&'static str> {
        result.err().map(|e| e.code().as_str())
    }

    #[test]
    fn role_assignable_group_members_need_role_management() {
        let members_only = held(&[perm::GROUP_MEMBER_READ_WRITE_ALL]);
        let everything_but = held(&[
            perm::GROUP_READ_WRITE_ALL,
            perm::DIRECTORY_READ_WRITE_ALL,
            perm::USER_READ_WRITE_ALL,
        ]);
        let roles = held(&[perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY]);
        let in_tier0 = [group(false), group(true)];
        let plain = [group(false)];
        for change in [GroupChange::AddMember, GroupChange::RemoveMember] {
            for caller in [&members_only, &everything_but] {
                // The group itself is role-assignable, or is nested in one.
                for (target, containing) in [(group(true), &[][..]), (group(false), &in_tier0)] {
                    assert_eq!(
                        code(check_group_change(caller, &target, containing, change)),
                        Some("roleAssignableGroupNeedsRoleManagement"),
                        "{change:?} by {caller:?}"
                    );
                }
                let other = check_group_change(caller, &group(false), &plain, change);
                assert_eq!(code(other), None);
            }
            let own = check_group_change(&roles, &group(true), &[], change);
            assert_eq!(code(own), None);
            let nested = check_group_change(&roles, &group(false), &in_tier0, change);
            assert_eq!(code(nested), None);
        }
        let create = GroupChange::CreateRoleAssignable;
        assert!(check_group_change(&everything_but, &group(true), &[], create).is_err());
        assert!(check_group_change(&roles, &group(true), &[], create).is_ok());
    }

    #[test]
    fn only_role_assignable_groups_hold_roles_and_they_hold_no_groups() {
        assert!(check_group_may_hold_role(&group(true)).is_ok());
        let refused = check_group_may_hold_role(&group(false)).unwrap_err();
        assert_eq!(refused.http_status(), 400);
        assert_eq!(refused.code().as_str(), "groupNotAssignableToRole");
        assert_eq!(refused.target(), Some("principalId"));
        assert!(check_may_contain_group(&group(false)).is_ok());
        let refused = check_may_contain_group(&group(true)).unwrap_err();
        assert_eq!(refused.http_status(), 400);
        assert_eq!(refused.code().as_str(), "roleAssignableGroupCannotNest");
    }

    #[test]
    fn is_assignable_to_role_is_fixed() {
        for assignable in [true, false] {
            let g = group(assignable);
            assert!(check_assignable_unchanged(&g, None).is_ok());
            assert!(check_assignable_unchanged(&g, Some(assignable)).is_ok());
            let e = check_assignable_unchanged(&g, Some(!assignable)).unwrap_err();
            assert_eq!(e.target(), Some("isAssignableToRole"));
        }
    }

    #[test]
    fn an_application_is_changed_only_by_someone_holding_what_it_holds() {
        let target = app(&[perm::USER_READ_ALL, perm::GROUP_READ_WRITE_ALL], false);
        let apps_only = held(&[perm::APPLICATION_READ_WRITE_ALL]);
        // ReadWrite covers Read; Directory.ReadWrite.All covers Group.ReadWrite.All.
        let covering = held(&[
            perm::APPLICATION_READ_WRITE_ALL,
            perm::USER_READ_WRITE_ALL,
            perm::DIRECTORY_READ_WRITE_ALL,
        ]);
        let partly = held(&[perm::APPLICATION_READ_WRITE_ALL, perm::USER_READ_ALL]);
        let roles = held(&[
            perm::APPLICATION_READ_WRITE_ALL,
            perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY,
        ]);
        for change in [
            ApplicationChange::AddCredential,
            ApplicationChange::RemoveCredential,
            ApplicationChange::ChangePermissions,
        ] {
            for caller in [&apps_only, &partly] {
                assert_eq!(
                    code(check_application_change(caller, &target, change)),
                    Some("applicationPermissionsNotCovered"),
                    "{change:?} by {caller:?}"
                );
            }
            for caller in [&covering, &roles] {
                assert_eq!(
                    code(check_application_change(caller, &target, change)),
                    None
                );
            }
            // An application holding nothing gives nothing away.
            assert_eq!(
                code(check_application_change(
                    &apps_only,
                    &app(&[], false),
                    change
                )),
                None
            );
        }
        assert_eq!(
            code(check_application_change(
                &apps_only,
                &target,
                ApplicationChange::Delete
            )),
            None
        );
    }

    #[test]
    fn the_automation_application_is_protected_like_a_global_administrator() {
        let automation = app(perm::ALL, true);
        let all_but_roles: Vec<String> = perm::ALL
            .iter()
            .filter(|p| **p != perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY)
            .map(|p| p.to_string())
            .collect();
        let apps_only = held(&[perm::APPLICATION_READ_WRITE_ALL]);
        let roles = held(&[
            perm::APPLICATION_READ_WRITE_ALL,
            perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY,
        ]);
        for change in [
            ApplicationChange::AddCredential,
            ApplicationChange::RemoveCredential,
            ApplicationChange::ChangePermissions,
            ApplicationChange::Delete,
        ] {
            for caller in [&apps_only, &all_but_roles] {
                assert_eq!(
                    code(check_application_change(caller, &automation, change)),
                    Some("automationApplicationProtected"),
                    "{change:?}"
                );
            }
            assert_eq!(
                code(check_application_change(&roles, &automation, change)),
                None
            );
        }
        // Even with its permissions narrowed, it stays protected from deletion.
        let narrowed = app(&[perm::USER_READ_ALL], true);
        assert!(
            check_application_change(&held(&[]), &narrowed, ApplicationChange::Delete).is_err()
        );
    }

    #[test]
    fn first_party_applications_are_never_deleted_nor_given_credentials() {
        let everything = held(perm::ALL);
        for app_id in [MY_ACCOUNT_APP_ID, ADMIN_PORTAL_APP_ID] {
            let mut first_party = app(&[], false);
            first_party.app_id = app_id;
            for change in [ApplicationChange::AddCredential, ApplicationChange::Delete] {
                assert_eq!(
                    code(check_application_change(&everything, &first_party, change)),
                    Some("firstPartyApplicationProtected")
                );
            }
            assert!(
                check_application_change(
                    &everything,
                    &first_party,
                    ApplicationChange::ChangePermissions
                )
                .is_ok()
            );
        }
    }
}
