//! Who is acting, and what they may do — enforced by types.
//!
//! A handler states the permission it needs by asking for a [`Granted<P>`]; the only way to make
//! one is [`Granted::check`], which looks at the caller's granted permissions. Every operation
//! in [`crate::directory::Directory`] that reads or changes the directory takes the matching
//! `Granted<…>`, so an operation cannot be reached without its check.

use std::marker::PhantomData;

use serde::Serialize;
use uuid::Uuid;

use crate::{Error, Result};

/// Graph permission names used by the admin API.
pub mod perm {
    pub const DIRECTORY_READ_ALL: &str = "Directory.Read.All";
    pub const DIRECTORY_READ_WRITE_ALL: &str = "Directory.ReadWrite.All";
    pub const USER_READ_ALL: &str = "User.Read.All";
    pub const USER_READ_WRITE_ALL: &str = "User.ReadWrite.All";
    pub const GROUP_READ_ALL: &str = "Group.Read.All";
    pub const GROUP_READ_WRITE_ALL: &str = "Group.ReadWrite.All";
    pub const GROUP_MEMBER_READ_WRITE_ALL: &str = "GroupMember.ReadWrite.All";
    pub const ROLE_MANAGEMENT_READ_DIRECTORY: &str = "RoleManagement.Read.Directory";
    pub const ROLE_MANAGEMENT_READ_WRITE_DIRECTORY: &str = "RoleManagement.ReadWrite.Directory";
    pub const APPLICATION_READ_ALL: &str = "Application.Read.All";
    pub const APPLICATION_READ_WRITE_ALL: &str = "Application.ReadWrite.All";
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
        GROUP_READ_ALL,
        GROUP_READ_WRITE_ALL,
        GROUP_MEMBER_READ_WRITE_ALL,
        ROLE_MANAGEMENT_READ_DIRECTORY,
        ROLE_MANAGEMENT_READ_WRITE_DIRECTORY,
        APPLICATION_READ_ALL,
        APPLICATION_READ_WRITE_ALL,
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

    pub fn holds(&self, name: &str) -> bool {
        self.permissions.iter().any(|p| p == name)
    }
}

/// Proof that the caller holds permission `P`. Only [`Granted::check`] makes one.
#[derive(Debug, Clone)]
pub struct Granted<P: Permission> {
    actor: Actor,
    _permission: PhantomData<fn() -> P>,
}

impl<P: Permission> Granted<P> {
    pub fn check(principal: &Principal) -> Result<Self> {
        if P::SATISFIED_BY.iter().any(|name| principal.holds(name)) {
            Ok(Granted {
                actor: principal.actor.clone(),
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
}
