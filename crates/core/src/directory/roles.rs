//! The built-in directory roles, with Entra's role template ids, and what each may do through
//! the admin API. Built-in roles use their template id as their definition id, as in Entra.

use uuid::{Uuid, uuid};

use crate::directory::authz::perm;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltInRole {
    pub template_id: Uuid,
    pub display_name: &'static str,
    pub description: &'static str,
    /// Whether Entra counts this role as privileged (Graph's `isPrivileged`). Who may act on a
    /// holder is decided by the tables in [`crate::directory::tiers`], not by this flag.
    pub is_privileged: bool,
    /// The Graph permissions the role carries in this product's admin API and portal.
    pub permissions: &'static [&'static str],
}

const ALL_READ: &[&str] = &[
    perm::DIRECTORY_READ_ALL,
    perm::POLICY_READ_ALL,
    perm::AUDIT_LOG_READ_ALL,
    perm::ROLE_MANAGEMENT_READ_DIRECTORY,
    perm::USER_AUTHENTICATION_METHOD_READ_ALL,
];

pub const GLOBAL_ADMINISTRATOR: Uuid = uuid!("62e90394-69f5-4237-9190-012177145e10");
pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: Uuid =
    uuid!("7be44c8a-adaf-4e2a-84d6-ab2649e08a13");
pub const AUTHENTICATION_ADMINISTRATOR: Uuid = uuid!("c4e39bd9-1100-46d3-8c65-fb160da0071f");
pub const CONDITIONAL_ACCESS_ADMINISTRATOR: Uuid = uuid!("b1be1c3e-b65d-4f19-8427-f6fa0d97feb9");
pub const SECURITY_ADMINISTRATOR: Uuid = uuid!("194ae4cb-b126-40b2-bd5b-6091b380977d");
pub const SECURITY_READER: Uuid = uuid!("5d6b6bb7-de71-4623-b4af-96380a352509");
pub const GLOBAL_READER: Uuid = uuid!("f2ef992c-3afb-46b9-b7cf-a126ee74c451");
pub const USER_ADMINISTRATOR: Uuid = uuid!("fe930be7-5e62-47db-91af-98c3a49a38b1");
pub const GROUPS_ADMINISTRATOR: Uuid = uuid!("fdd7a751-b60b-444a-984c-02652fe8fa1c");
pub const APPLICATION_ADMINISTRATOR: Uuid = uuid!("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3");
pub const PRIVILEGED_ROLE_ADMINISTRATOR: Uuid = uuid!("e8611ab8-c189-46e8-94e1-60213ab1f814");
pub const AUTHENTICATION_POLICY_ADMINISTRATOR: Uuid = uuid!("0526716b-113d-4c15-b2c8-68e3c22b9f80");
pub const REPORTS_READER: Uuid = uuid!("4a5d8f65-41da-4de4-8968-e035b65339cf");
pub const HELPDESK_ADMINISTRATOR: Uuid = uuid!("729827e3-9c14-49f7-bb1b-9608f156bbb8");

pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    BuiltInRole {
        template_id: GLOBAL_ADMINISTRATOR,
        display_name: "Global Administrator",
        description: "Can manage all aspects of the directory and the services that use it.",
        is_privileged: true,
        permissions: perm::ALL,
    },
    BuiltInRole {
        template_id: PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        display_name: "Privileged Authentication Administrator",
        description: "Can manage authentication methods, including Temporary Access Passes, of any user, administrators included.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::USER_AUTHENTICATION_METHOD_READ_WRITE_ALL,
            perm::AUDIT_LOG_READ_ALL,
        ],
    },
    BuiltInRole {
        template_id: AUTHENTICATION_ADMINISTRATOR,
        display_name: "Authentication Administrator",
        description: "Can manage authentication methods, including Temporary Access Passes, of users who hold no administrator role.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::USER_AUTHENTICATION_METHOD_READ_WRITE_ALL,
            perm::AUDIT_LOG_READ_ALL,
        ],
    },
    BuiltInRole {
        template_id: CONDITIONAL_ACCESS_ADMINISTRATOR,
        display_name: "Conditional Access Administrator",
        description: "Can manage Conditional Access policies, named locations and authentication strengths.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::POLICY_READ_ALL,
            perm::POLICY_READ_WRITE_CONDITIONAL_ACCESS,
            perm::AUDIT_LOG_READ_ALL,
        ],
    },
    BuiltInRole {
        template_id: SECURITY_ADMINISTRATOR,
        display_name: "Security Administrator",
        description: "Can manage security policies, Conditional Access and authentication method policies.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::POLICY_READ_ALL,
            perm::POLICY_READ_WRITE_CONDITIONAL_ACCESS,
            perm::POLICY_READ_WRITE_AUTHENTICATION_METHOD,
            perm::AUDIT_LOG_READ_ALL,
        ],
    },
    BuiltInRole {
        template_id: SECURITY_READER,
        display_name: "Security Reader",
        description: "Can read security information, policies and logs.",
        is_privileged: true,
        permissions: ALL_READ,
    },
    BuiltInRole {
        template_id: GLOBAL_READER,
        display_name: "Global Reader",
        description: "Can read everything a Global Administrator can, but not change it.",
        is_privileged: true,
        permissions: ALL_READ,
    },
    BuiltInRole {
        template_id: USER_ADMINISTRATOR,
        display_name: "User Administrator",
        description: "Can manage users and groups.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::USER_READ_WRITE_ALL,
            perm::GROUP_READ_WRITE_ALL,
            perm::AUDIT_LOG_READ_ALL,
        ],
    },
    BuiltInRole {
        template_id: GROUPS_ADMINISTRATOR,
        display_name: "Groups Administrator",
        description: "Can manage groups and their members.",
        is_privileged: false,
        permissions: &[perm::DIRECTORY_READ_ALL, perm::GROUP_READ_WRITE_ALL],
    },
    BuiltInRole {
        template_id: APPLICATION_ADMINISTRATOR,
        display_name: "Application Administrator",
        description: "Can manage application registrations and their secrets.",
        is_privileged: true,
        permissions: &[perm::DIRECTORY_READ_ALL, perm::APPLICATION_READ_WRITE_ALL],
    },
    BuiltInRole {
        template_id: PRIVILEGED_ROLE_ADMINISTRATOR,
        display_name: "Privileged Role Administrator",
        description: "Can assign directory roles.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY,
        ],
    },
    BuiltInRole {
        template_id: AUTHENTICATION_POLICY_ADMINISTRATOR,
        display_name: "Authentication Policy Administrator",
        description: "Can manage the authentication methods policy and authentication strengths.",
        is_privileged: true,
        permissions: &[
            perm::DIRECTORY_READ_ALL,
            perm::POLICY_READ_ALL,
            perm::POLICY_READ_WRITE_AUTHENTICATION_METHOD,
        ],
    },
    BuiltInRole {
        template_id: REPORTS_READER,
        display_name: "Reports Reader",
        description: "Can read sign-in and audit reports.",
        is_privileged: false,
        permissions: &[perm::AUDIT_LOG_READ_ALL],
    },
    BuiltInRole {
        template_id: HELPDESK_ADMINISTRATOR,
        display_name: "Helpdesk Administrator",
        description: "Can read users and reset non-administrators' authentication.",
        is_privileged: true,
        permissions: &[perm::DIRECTORY_READ_ALL],
    },
];

pub fn built_in_role(template_id: Uuid) -> Option<&'static BuiltInRole> {
    BUILT_IN_ROLES.iter().find(|r| r.template_id == template_id)
}

/// The union of the permissions that a set of roles carries.
pub fn permissions_of_roles(template_ids: &[Uuid]) -> Vec<String> {
    let mut out: Vec<String> = template_ids
        .iter()
        .filter_map(|id| built_in_role(*id))
        .flat_map(|r| r.permissions.iter().map(|p| p.to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}
