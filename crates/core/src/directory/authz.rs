//! Who is acting, and what they may do — enforced by types.
//!
//! A handler states the permission it needs by asking for a [`Granted<P>`]; the only way to make
//! one is [`Granted::check`], which looks at the caller's granted permissions. Every operation
//! in [`crate::directory::Directory`] that reads or changes the directory takes the matching
//! `Granted<…>`, so an operation cannot be reached without its check.

use std::marker::PhantomData;

use serde::Serialize;
use uuid::Uuid;

use crate::directory::model::User;
use crate::directory::roles::{self, BuiltInRole};
use crate::{Error, Result};

/// Graph permission names used by the admin API.
pub mod perm {
    pub const DIRECTORY_READ_ALL: &str = "Directory.Read.All";
    pub const DIRECTORY_READ_WRITE_ALL: &str = "Directory.ReadWrite.All";
    pub const USER_READ_ALL: &str = "User.Read.All";
    pub const USER_READ_WRITE_ALL: &str = "User.ReadWrite.All";
    pub const USER_REVOKE_SESSIONS_ALL: &str = "User.RevokeSessions.All";
    pub const GROUP_READ_ALL: &str = "Group.Read.All";
    pub const GROUP_READ_WRITE_ALL: &str = "Group.ReadWrite.All";
    pub const GROUP_MEMBER_READ_WRITE_ALL: &str = "GroupMember.ReadWrite.All";
    pub const ROLE_MANAGEMENT_READ_DIRECTORY: &str = "RoleManagement.Read.Directory";
    pub const ROLE_MANAGEMENT_READ_WRITE_DIRECTORY: &str = "RoleManagement.ReadWrite.Directory";
    pub const APPLICATION_READ_ALL: &str = "Application.Read.All";
    pub const APPLICATION_READ_WRITE_ALL: &str = "Application.ReadWrite.All";
    pub const APP_ROLE_ASSIGNMENT_READ_WRITE_ALL: &str = "AppRoleAssignment.ReadWrite.All";
    pub const POLICY_READ_ALL: &str = "Policy.Read.All";
    pub const POLICY_READ_WRITE_CONDITIONAL_ACCESS: &str = "Policy.ReadWrite.ConditionalAccess";
    pub const POLICY_READ_WRITE_AUTHENTICATION_METHOD: &str =
        "Policy.ReadWrite.AuthenticationMethod";
    pub const AUDIT_LOG_READ_ALL: &str = "AuditLog.Read.All";
    pub const USER_AUTHENTICATION_METHOD_READ_ALL: &str = "UserAuthenticationMethod.Read.All";
    pub const USER_AUTHENTICATION_METHOD_READ_WRITE_ALL: &str =
        "UserAuthenticationMethod.ReadWrite.All";

    /// Every permission the admin API knows; what the bootstrap automation application holds.
    pub const ALL: &[&str] = &[
        DIRECTORY_READ_ALL,
        DIRECTORY_READ_WRITE_ALL,
        USER_READ_ALL,
        USER_READ_WRITE_ALL,
        USER_REVOKE_SESSIONS_ALL,
        GROUP_READ_ALL,
        GROUP_READ_WRITE_ALL,
        GROUP_MEMBER_READ_WRITE_ALL,
        ROLE_MANAGEMENT_READ_DIRECTORY,
        ROLE_MANAGEMENT_READ_WRITE_DIRECTORY,
        APPLICATION_READ_ALL,
        APPLICATION_READ_WRITE_ALL,
        APP_ROLE_ASSIGNMENT_READ_WRITE_ALL,
        POLICY_READ_ALL,
        POLICY_READ_WRITE_CONDITIONAL_ACCESS,
        POLICY_READ_WRITE_AUTHENTICATION_METHOD,
        AUDIT_LOG_READ_ALL,
        USER_AUTHENTICATION_METHOD_READ_ALL,
        USER_AUTHENTICATION_METHOD_READ_WRITE_ALL,
    ];

    pub fn is_known(name: &str) -> bool {
        ALL.contains(&name)
    }
}

/// A permission an operation needs, and the granted permissions that imply it (a ReadWrite
/// permission implies its Read; the Directory-wide ones imply the per-object ones).
pub trait Permission: Send + Sync + 'static {
    const NAME: &'static str;
    const SATISFIED_BY: &'static [&'static str];
}

macro_rules! permission {
    ($(#[$doc:meta])* $ty:ident = $name:expr, implied by [$($also:expr),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl Permission for $ty {
            const NAME: &'static str = $name;
            const SATISFIED_BY: &'static [&'static str] = &[$name, $($also),*];
        }
    };
}

permission!(
    /// Read users.
    ReadUsers = perm::USER_READ_ALL, implied by [perm::USER_READ_WRITE_ALL, perm::DIRECTORY_READ_ALL, perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Create, change and delete users.
    WriteUsers = perm::USER_READ_WRITE_ALL, implied by [perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// End a user's sessions and refresh tokens (`revokeSignInSessions`); Graph documents
    /// `User.ReadWrite.All` and `Directory.ReadWrite.All` as the higher-privileged ones.
    RevokeUserSessions = perm::USER_REVOKE_SESSIONS_ALL, implied by [perm::USER_READ_WRITE_ALL, perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Read groups and their members.
    ReadGroups = perm::GROUP_READ_ALL, implied by [perm::GROUP_READ_WRITE_ALL, perm::GROUP_MEMBER_READ_WRITE_ALL, perm::DIRECTORY_READ_ALL, perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Create, change and delete groups.
    WriteGroups = perm::GROUP_READ_WRITE_ALL, implied by [perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Add and remove group members.
    WriteGroupMembers = perm::GROUP_MEMBER_READ_WRITE_ALL, implied by [perm::GROUP_READ_WRITE_ALL, perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Read role definitions and assignments.
    ReadRoles = perm::ROLE_MANAGEMENT_READ_DIRECTORY, implied by [perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY, perm::DIRECTORY_READ_ALL, perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Assign and remove directory roles.
    WriteRoles = perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY, implied by []);
permission!(
    /// Read application registrations.
    ReadApplications = perm::APPLICATION_READ_ALL, implied by [perm::APPLICATION_READ_WRITE_ALL, perm::DIRECTORY_READ_ALL, perm::DIRECTORY_READ_WRITE_ALL]);
permission!(
    /// Create, change and delete applications and their secrets.
    WriteApplications = perm::APPLICATION_READ_WRITE_ALL, implied by []);
permission!(
    /// Give and take app roles of applications (app role assignments).
    WriteAppRoleAssignments = perm::APP_ROLE_ASSIGNMENT_READ_WRITE_ALL, implied by [perm::APPLICATION_READ_WRITE_ALL]);
permission!(
    /// Read Conditional Access policies, named locations, strengths and method policies.
    ReadPolicies = perm::POLICY_READ_ALL, implied by [perm::POLICY_READ_WRITE_CONDITIONAL_ACCESS, perm::POLICY_READ_WRITE_AUTHENTICATION_METHOD]);
permission!(
    /// Change Conditional Access policies, named locations and authentication strengths.
    WriteConditionalAccess = perm::POLICY_READ_WRITE_CONDITIONAL_ACCESS, implied by []);
permission!(
    /// Change the authentication methods policy.
    WriteAuthenticationMethodPolicy = perm::POLICY_READ_WRITE_AUTHENTICATION_METHOD, implied by []);
permission!(
    /// Read the audit and sign-in logs.
    ReadAuditLogs = perm::AUDIT_LOG_READ_ALL, implied by []);
permission!(
    /// Read users' authentication methods.
    ReadUserMethods = perm::USER_AUTHENTICATION_METHOD_READ_ALL, implied by [perm::USER_AUTHENTICATION_METHOD_READ_WRITE_ALL]);
permission!(
    /// Manage users' authentication methods (passkeys, Temporary Access Passes).
    WriteUserMethods = perm::USER_AUTHENTICATION_METHOD_READ_WRITE_ALL, implied by []);

/// Who is acting: a signed-in person, or an application using its own credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Actor {
    User {
        id: Uuid,
        user_principal_name: String,
    },
    App {
        /// Object id of the application.
        id: Uuid,
        app_id: Uuid,
        display_name: String,
    },
    /// The server itself (first start, scheduled work).
    System,
}

/// An authenticated caller with the permissions it was granted.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub permissions: Vec<String>,
}

impl Principal {
    pub fn system() -> Self {
        Principal {
            actor: Actor::System,
            permissions: perm::ALL.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// A signed-in person acting in the admin portal. What they may do is exactly what the
    /// built-in directory roles they actively hold carry (see [`crate::directory::roles`], the one place
    /// that maps roles to permissions), so the portal and the admin API enforce one set of
    /// rules. A disabled account holds nothing, whatever its roles: disabling someone must take
    /// effect on their open sessions too.
    pub fn for_user(user: &User, active_roles: &[Uuid]) -> Self {
        Principal {
            actor: Actor::User {
                id: user.id,
                user_principal_name: user.user_principal_name.clone(),
            },
            permissions: if user.account_enabled {
                roles::permissions_of_roles(active_roles)
            } else {
                Vec::new()
            },
        }
    }

    pub fn holds(&self, name: &str) -> bool {
        self.permissions.iter().any(|p| p == name)
    }

    /// Whether the caller holds permission `P`, without making the capability.
    pub fn may<P: Permission>(&self) -> bool {
        P::SATISFIED_BY.iter().any(|name| self.holds(name))
    }
}

/// The built-in roles whose holders are granted `P`, the one made for the job first, so that a
/// refusal names the role a person should ask for rather than sending everyone to Global
/// Administrator (which comes last): roles holding `P` itself (or its nearest implying permission) come before
/// roles that reach it through a directory-wide one, and fewer permissions before more.
pub fn roles_granting<P: Permission>() -> Vec<&'static BuiltInRole> {
    let closeness = |role: &BuiltInRole| {
        P::SATISFIED_BY
            .iter()
            .position(|name| role.permissions.contains(name))
    };
    let mut found: Vec<(usize, &'static BuiltInRole)> = roles::BUILT_IN_ROLES
        .iter()
        .filter_map(|role| closeness(role).map(|c| (c, role)))
        .collect();
    // A role holding every permission (Global Administrator) would always look closest.
    found.sort_by_key(|(c, role)| {
        let holds_all = role.permissions.len() == perm::ALL.len();
        (holds_all, *c, role.permissions.len(), role.display_name)
    });
    found.into_iter().map(|(_, role)| role).collect()
}

/// Proof that the caller holds permission `P`. Only [`Granted::check`] makes one.
#[derive(Debug, Clone)]
pub struct Granted<P: Permission> {
    actor: Actor,
    /// Everything the caller held when checked: rules about a target (see
    /// [`crate::directory::ladder`]) weigh the caller's whole standing, not only `P`.
    held: Vec<String>,
    _permission: PhantomData<fn() -> P>,
}

impl<P: Permission> Granted<P> {
    pub fn check(principal: &Principal) -> Result<Self> {
        if principal.may::<P>() {
            Ok(Granted {
                actor: principal.actor.clone(),
                held: principal.permissions.clone(),
                _permission: PhantomData,
            })
        } else {
            Err(Error::Forbidden(format!(
                "Insufficient privileges to complete the operation: it needs the {} permission.",
                P::NAME
            )))
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Every permission the caller held when the grant was made.
    pub fn held(&self) -> &[String] {
        &self.held
    }
}

/// The typed permissions with what implies each, looked up by name: a held permission covers a
/// needed one when it is the same or implies it.
const IMPLIED: &[(&str, &[&str])] = &[
    (ReadUsers::NAME, ReadUsers::SATISFIED_BY),
    (WriteUsers::NAME, WriteUsers::SATISFIED_BY),
    (ReadGroups::NAME, ReadGroups::SATISFIED_BY),
    (WriteGroups::NAME, WriteGroups::SATISFIED_BY),
    (WriteGroupMembers::NAME, WriteGroupMembers::SATISFIED_BY),
    (ReadRoles::NAME, ReadRoles::SATISFIED_BY),
    (WriteRoles::NAME, WriteRoles::SATISFIED_BY),
    (ReadApplications::NAME, ReadApplications::SATISFIED_BY),
    (WriteApplications::NAME, WriteApplications::SATISFIED_BY),
    (ReadPolicies::NAME, ReadPolicies::SATISFIED_BY),
    (
        WriteConditionalAccess::NAME,
        WriteConditionalAccess::SATISFIED_BY,
    ),
    (
        WriteAuthenticationMethodPolicy::NAME,
        WriteAuthenticationMethodPolicy::SATISFIED_BY,
    ),
    (ReadAuditLogs::NAME, ReadAuditLogs::SATISFIED_BY),
    (ReadUserMethods::NAME, ReadUserMethods::SATISFIED_BY),
    (WriteUserMethods::NAME, WriteUserMethods::SATISFIED_BY),
    (
        perm::DIRECTORY_READ_ALL,
        &[perm::DIRECTORY_READ_ALL, perm::DIRECTORY_READ_WRITE_ALL],
    ),
];

/// Whether the permissions in `held` cover `needed`: held itself, or implied by one held.
pub fn covers(held: &[String], needed: &str) -> bool {
    let implied_by = IMPLIED
        .iter()
        .find(|(name, _)| *name == needed)
        .map_or(&[][..], |(_, by)| *by);
    held.iter()
        .any(|h| h == needed || implied_by.contains(&h.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::UserType;
    use crate::directory::roles::*;

    fn person(enabled: bool) -> User {
        User {
            id: Uuid::new_v4(),
            user_principal_name: "joni@contoso.com".into(),
            display_name: "Joni".into(),
            mail: None,
            account_enabled: enabled,
            user_type: UserType::Member,
            created_date_time: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// What a holder of `roles` may do, one letter per capability the portal checks, so that a
    /// table of expectations reads at a glance.
    fn abilities(roles: &[Uuid]) -> String {
        let p = Principal::for_user(&person(true), roles);
        [
            ('u', p.may::<ReadUsers>()),
            ('U', p.may::<WriteUsers>()),
            ('g', p.may::<ReadGroups>()),
            ('G', p.may::<WriteGroups>()),
            ('M', p.may::<WriteGroupMembers>()),
            ('r', p.may::<ReadRoles>()),
            ('R', p.may::<WriteRoles>()),
            ('a', p.may::<ReadApplications>()),
            ('A', p.may::<WriteApplications>()),
            ('p', p.may::<ReadPolicies>()),
            ('C', p.may::<WriteConditionalAccess>()),
            ('P', p.may::<WriteAuthenticationMethodPolicy>()),
            ('l', p.may::<ReadAuditLogs>()),
            ('m', p.may::<ReadUserMethods>()),
            ('T', p.may::<WriteUserMethods>()),
        ]
        .iter()
        .map(|(c, ok)| if *ok { *c } else { '.' })
        .collect()
    }

    #[test]
    fn each_role_grants_what_its_holder_needs_and_no_more() {
        let table = [
            (GLOBAL_ADMINISTRATOR, "uUgGMrRaApCPlmT"),
            (USER_ADMINISTRATOR, "uUgGMr.a....l.."),
            (GROUPS_ADMINISTRATOR, "u.gGMr.a......."),
            (CONDITIONAL_ACCESS_ADMINISTRATOR, "u.g..r.a.pC.l.."),
            (AUTHENTICATION_POLICY_ADMINISTRATOR, "u.g..r.a.p.P..."),
            (SECURITY_ADMINISTRATOR, "u.g..r.a.pCPl.."),
            (SECURITY_READER, "u.g..r.a.p..lm."),
            (GLOBAL_READER, "u.g..r.a.p..lm."),
            (REPORTS_READER, "............l.."),
            (AUTHENTICATION_ADMINISTRATOR, "u.g..r.a....lmT"),
            (PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, "u.g..r.a....lmT"),
            (PRIVILEGED_ROLE_ADMINISTRATOR, "u.g..rRa......."),
            (APPLICATION_ADMINISTRATOR, "u.g..r.aA......"),
            (HELPDESK_ADMINISTRATOR, "u.g..r.a......."),
        ];
        for (role, expected) in table {
            let name = built_in_role(role).unwrap().display_name;
            assert_eq!(abilities(&[role]), expected, "{name}");
        }
        assert_eq!(
            table.len(),
            BUILT_IN_ROLES.len(),
            "every built-in role is in the table"
        );
    }

    #[test]
    fn no_role_and_disabled_accounts_hold_nothing() {
        assert_eq!(abilities(&[]), "...............");
        let disabled = Principal::for_user(&person(false), &[GLOBAL_ADMINISTRATOR]);
        assert!(disabled.permissions.is_empty());
        assert!(Granted::<ReadUsers>::check(&disabled).is_err());
    }

    #[test]
    fn roles_add_up_and_the_actor_is_the_person() {
        let user = person(true);
        let p = Principal::for_user(&user, &[REPORTS_READER, GROUPS_ADMINISTRATOR]);
        assert!(p.may::<ReadAuditLogs>() && p.may::<WriteGroups>());
        assert!(!p.may::<WriteUsers>());
        let grant = Granted::<ReadAuditLogs>::check(&p).unwrap();
        assert_eq!(
            grant.actor(),
            &Actor::User {
                id: user.id,
                user_principal_name: user.user_principal_name.clone()
            }
        );
    }

    #[test]
    fn refusals_name_the_least_privileged_role_first() {
        let names = |roles: Vec<&BuiltInRole>| -> Vec<&str> {
            roles.iter().map(|r| r.display_name).collect()
        };
        let ca = names(roles_granting::<WriteConditionalAccess>());
        assert_eq!(ca.first(), Some(&"Conditional Access Administrator"));
        assert_eq!(ca.last(), Some(&"Global Administrator"));
        assert_eq!(
            names(roles_granting::<ReadAuditLogs>()).first(),
            Some(&"Reports Reader")
        );
        assert_eq!(
            names(roles_granting::<WriteAuthenticationMethodPolicy>()).first(),
            Some(&"Authentication Policy Administrator")
        );
        assert_eq!(
            names(roles_granting::<WriteRoles>()).first(),
            Some(&"Privileged Role Administrator")
        );
        // Reading users is reached through Directory.Read.All by many roles; the one for the
        // job is named first.
        assert_eq!(
            names(roles_granting::<ReadUsers>()).first(),
            Some(&"User Administrator")
        );
        assert_eq!(
            names(roles_granting::<WriteUserMethods>()).first(),
            Some(&"Authentication Administrator")
        );
    }
}
