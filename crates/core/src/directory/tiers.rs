//! Who may act on whom: the one rule for sensitive actions on a person, after Entra's tiers.
//!
//! Some actions on a user hand the caller that user's access, or take it away: disabling,
//! enabling or deleting the account, changing its sign-in name or mail, resetting its password,
//! adding or deleting its sign-in methods, issuing or revoking its Temporary Access Pass, and
//! revoking its sessions ([`SensitiveAction`]). If anyone allowed to do these to *someone* could
//! do them to *everyone*, a User Administrator could disable the Global Administrators, or an
//! Authentication Administrator could take over one by replacing their passkey. So each action
//! also asks whether the caller's roles *cover* every role the target holds.
//!
//! The tables are Entra's, from its built-in roles reference ("Who can perform sensitive
//! actions" and "Who can reset passwords"), kept to the roles Portcullis has:
//!
//! - Global Administrator and Privileged Authentication Administrator cover every target.
//! - User, Helpdesk and Authentication Administrators cover a person who holds no role, and
//!   the few roles Entra lists for each ([`covered_roles`]); any other role, and any role this
//!   module does not know, is covered by the top two only.
//! - Which roles perform an action at all follows the same tables' columns
//!   ([`SensitiveAction::performers`]); the methods actions (passkeys, passes) belong to the
//!   Authentication Administrators and Global Administrator, as in Entra.
//! - Nobody issues or revokes their own Temporary Access Pass, or resets their own password
//!   here (they use their security info).
//!
//! Applications have no roles; they are judged by the roles their Graph permissions stand for
//! ([`application_standing`]). Entra does not publish this mapping; Portcullis keeps it
//! conservative: `User.ReadWrite.All` and `Directory.ReadWrite.All` stand for User
//! Administrator, `UserAuthenticationMethod.ReadWrite.All` for Authentication Administrator,
//! `User.RevokeSessions.All` for Helpdesk Administrator (whose reach is sessions), and
//! only `RoleManagement.ReadWrite.Directory` — with which an application can already make anyone
//! a Global Administrator — stands for Global Administrator and so reaches privileged targets.
//!
//! This rule comes *after* the permission an operation states ([`Granted`]): the tables say
//! whom a role may act on, the permission says whether the caller may do the operation at all.
//! [`decide`] is pure; [`enforce`] reads the roles involved, and writes each refusal to the
//! audit log as a failure. What this module must never do: let a caller's own standing be read
//! from anything the caller sent.

use uuid::Uuid;

use crate::directory::audit::{
    self, AuditActivityInitiator, DirectoryAudit, RequestContext, TargetResource,
};
use crate::directory::authz::{Actor, Granted, Permission, perm};
use crate::directory::model::User;
use crate::directory::roles::{
    AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GROUPS_ADMINISTRATOR,
    HELPDESK_ADMINISTRATOR, PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, REPORTS_READER,
    USER_ADMINISTRATOR, built_in_role,
};
use crate::directory::store::DirectoryStore;
use crate::kernel::Deps;
use crate::kernel::error::ErrorCode;
use crate::{Error, Result};

/// An action on a user that only a caller of a high enough tier may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensitiveAction {
    Disable,
    Enable,
    /// Moving a user to deleted items.
    Delete,
    /// Bringing a deleted user back, with the roles set aside with them.
    Restore,
    /// Removing a deleted user for good.
    HardDelete,
    ChangeUserPrincipalName,
    ChangeMail,
    ResetPassword,
    RevokeSessions,
    AddMethod,
    DeleteMethod,
    IssueTemporaryAccessPass,
    DeleteTemporaryAccessPass,
}

/// Which of Entra's two tables an action follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// "Who can perform sensitive actions": the account itself.
    SensitiveActions,
    /// "Who can reset passwords": credentials and refresh tokens; Entra's Authentication
    /// Administrator entry sends the methods to this table too.
    PasswordReset,
}

/// Roles that cover every target, in every table.
const TOP_TIER: &[Uuid] = &[
    GLOBAL_ADMINISTRATOR,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
];

impl SensitiveAction {
    pub const ALL: &'static [SensitiveAction] = &[
        SensitiveAction::Disable,
        SensitiveAction::Enable,
        SensitiveAction::Delete,
        SensitiveAction::Restore,
        SensitiveAction::HardDelete,
        SensitiveAction::ChangeUserPrincipalName,
        SensitiveAction::ChangeMail,
        SensitiveAction::ResetPassword,
        SensitiveAction::RevokeSessions,
        SensitiveAction::AddMethod,
        SensitiveAction::DeleteMethod,
        SensitiveAction::IssueTemporaryAccessPass,
        SensitiveAction::DeleteTemporaryAccessPass,
    ];

    fn table(self) -> Table {
        use SensitiveAction::*;
        match self {
            Disable
            | Enable
            | Delete
            | Restore
            | HardDelete
            | ChangeUserPrincipalName
            | ChangeMail => Table::SensitiveActions,
            ResetPassword
            | RevokeSessions
            | AddMethod
            | DeleteMethod
            | IssueTemporaryAccessPass
            | DeleteTemporaryAccessPass => Table::PasswordReset,
        }
    }

    /// The roles that take this action at all (a table's columns).
    pub fn performers(self) -> &'static [Uuid] {
        use SensitiveAction::*;
        match self {
            Disable
            | Enable
            | Delete
            | Restore
            | HardDelete
            | ChangeUserPrincipalName
            | ChangeMail => &[
                AUTHENTICATION_ADMINISTRATOR,
                USER_ADMINISTRATOR,
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
                GLOBAL_ADMINISTRATOR,
            ],
            ResetPassword | RevokeSessions => &[
                HELPDESK_ADMINISTRATOR,
                AUTHENTICATION_ADMINISTRATOR,
                USER_ADMINISTRATOR,
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
                GLOBAL_ADMINISTRATOR,
            ],
            AddMethod | DeleteMethod | IssueTemporaryAccessPass | DeleteTemporaryAccessPass => &[
                AUTHENTICATION_ADMINISTRATOR,
                PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
                GLOBAL_ADMINISTRATOR,
            ],
        }
    }

    /// Whether a person may not do this to their own account.
    fn refused_on_yourself(self) -> bool {
        matches!(
            self,
            SensitiveAction::ResetPassword
                | SensitiveAction::IssueTemporaryAccessPass
                | SensitiveAction::DeleteTemporaryAccessPass
        )
    }

    /// The words an audit entry and a refusal use.
    pub fn activity(self) -> &'static str {
        use SensitiveAction::*;
        match self {
            Disable => "Disable account",
            Enable => "Enable account",
            Delete => "Delete user",
            Restore => "Restore user",
            HardDelete => "Hard delete user",
            ChangeUserPrincipalName | ChangeMail => "Update user",
            ResetPassword => "Reset user password",
            RevokeSessions => "Invalidate all refresh tokens for user",
            AddMethod => "Admin registered security info",
            DeleteMethod => "Admin deleted security info",
            IssueTemporaryAccessPass => "Admin registered temporary access pass method for user",
            DeleteTemporaryAccessPass => "Admin deleted temporary access pass method for user",
        }
    }

    fn operation_type(self) -> &'static str {
        use SensitiveAction::*;
        match self {
            Delete | HardDelete | DeleteMethod | DeleteTemporaryAccessPass => "Delete",
            Restore => "Restore",
            AddMethod | IssueTemporaryAccessPass => "Add",
            _ => "Update",
        }
    }

    /// What the action is, in a sentence's middle ("may not … this person").
    fn verb(self) -> &'static str {
        use SensitiveAction::*;
        match self {
            Disable => "disable",
            Enable => "enable",
            Delete => "delete",
            Restore => "restore",
            HardDelete => "permanently delete",
            ChangeUserPrincipalName => "change the sign-in name of",
            ChangeMail => "change the mail of",
            ResetPassword => "reset the password of",
            RevokeSessions => "revoke the sessions of",
            AddMethod => "add sign-in methods for",
            DeleteMethod => "delete sign-in methods of",
            IssueTemporaryAccessPass => "issue a Temporary Access Pass to",
            DeleteTemporaryAccessPass => "delete the Temporary Access Pass of",
        }
    }
}

/// The roles below the top tier that a performing role covers in a table (Entra's rows with a
/// tick in that role's column, kept to the roles Portcullis has). A person with no role is
/// covered by every performer and is not listed.
pub fn covered_roles(table_of: SensitiveAction, performer: Uuid) -> &'static [Uuid] {
    match (table_of.table(), performer) {
        (Table::SensitiveActions, AUTHENTICATION_ADMINISTRATOR) => {
            &[AUTHENTICATION_ADMINISTRATOR, REPORTS_READER]
        }
        (Table::SensitiveActions, USER_ADMINISTRATOR) => &[
            GROUPS_ADMINISTRATOR,
            HELPDESK_ADMINISTRATOR,
            REPORTS_READER,
            USER_ADMINISTRATOR,
        ],
        (Table::PasswordReset, HELPDESK_ADMINISTRATOR) => &[HELPDESK_ADMINISTRATOR, REPORTS_READER],
        (Table::PasswordReset, AUTHENTICATION_ADMINISTRATOR) => {
            &[AUTHENTICATION_ADMINISTRATOR, REPORTS_READER]
        }
        (Table::PasswordReset, USER_ADMINISTRATOR) => &[
            GROUPS_ADMINISTRATOR,
            HELPDESK_ADMINISTRATOR,
            REPORTS_READER,
            USER_ADMINISTRATOR,
        ],
        _ => &[],
    }
}

/// Whether `performer` (taking `action`) covers a target holding `target_role`.
fn covers(action: SensitiveAction, performer: Uuid, target_role: Uuid) -> bool {
    TOP_TIER.contains(&performer) || covered_roles(action, performer).contains(&target_role)
}

/// Who is asking, as the rule sees them.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// The server itself (first start): not bound by tiers.
    System,
    /// A person, with the roles they actively hold now.
    Person { id: Uuid, roles: &'a [Uuid] },
    /// An application, judged by the roles its permissions stand for.
    Application { permissions: &'a [String] },
}

/// The built-in roles an application's Graph permissions stand for in this rule (see the
/// module's documentation for why these and no more).
pub fn application_standing(permissions: &[String]) -> Vec<Uuid> {
    let holds = |name: &str| permissions.iter().any(|p| p == name);
    let mut roles = Vec::new();
    if holds(perm::ROLE_MANAGEMENT_READ_WRITE_DIRECTORY) {
        roles.push(GLOBAL_ADMINISTRATOR);
    }
    if holds(perm::USER_AUTHENTICATION_METHOD_READ_WRITE_ALL) {
        roles.push(AUTHENTICATION_ADMINISTRATOR);
    }
    if holds(perm::USER_READ_WRITE_ALL) || holds(perm::DIRECTORY_READ_WRITE_ALL) {
        roles.push(USER_ADMINISTRATOR);
    }
    // Revoking sessions on its own is the Helpdesk Administrator's reach: people without a
    // role, Helpdesk Administrators and Reports Readers.
    if holds(perm::USER_REVOKE_SESSIONS_ALL) {
        roles.push(HELPDESK_ADMINISTRATOR);
    }
    roles
}

/// Why the rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The action is not one a person takes on their own account.
    OnYourself,
    /// None of the caller's roles takes this action.
    NoPerformingRole,
    /// The target holds `role`, which none of the caller's performing roles covers.
    TargetPrivileged { role: Uuid },
}

/// The rule itself: may `caller` take `action` on the user `target_id`, who holds
/// `target_roles`? Pure: the roles are read by whoever calls it ([`enforce`]).
pub fn decide(
    caller: Caller<'_>,
    action: SensitiveAction,
    target_id: Uuid,
    target_roles: &[Uuid],
) -> std::result::Result<(), Refusal> {
    let standing: Vec<Uuid> = match caller {
        Caller::System => return Ok(()),
        Caller::Person { id, roles } => {
            if id == target_id && action.refused_on_yourself() {
                return Err(Refusal::OnYourself);
            }
            roles.to_vec()
        }
        Caller::Application { permissions } => application_standing(permissions),
    };
    let performing: Vec<Uuid> = standing
        .into_iter()
        .filter(|r| action.performers().contains(r))
        .collect();
    if performing.is_empty() {
        return Err(Refusal::NoPerformingRole);
    }
    match target_roles
        .iter()
        .find(|held| !performing.iter().any(|p| covers(action, *p, **held)))
    {
        Some(role) => Err(Refusal::TargetPrivileged { role: *role }),
        None => Ok(()),
    }
}

fn role_name(id: Uuid) -> String {
    built_in_role(id)
        .map(|r| r.display_name.to_string())
        .unwrap_or_else(|| format!("role {id}"))
}

impl Refusal {
    /// The error a caller sees: 403, with a code naming the rule.
    pub fn to_error(self, action: SensitiveAction) -> Error {
        match self {
            Refusal::OnYourself => Error::Forbidden(match action {
                SensitiveAction::ResetPassword => {
                    "Change your own password from your security info, with your current password."
                        .to_string()
                }
                _ => "Nobody may issue or delete their own Temporary Access Pass.".to_string(),
            }),
            Refusal::NoPerformingRole => {
                let roles: Vec<String> =
                    action.performers().iter().map(|r| role_name(*r)).collect();
                Error::Forbidden(format!(
                    "Only these roles may {} a user: {}.",
                    action.verb(),
                    roles.join(", ")
                ))
            }
            Refusal::TargetPrivileged { role } => Error::Denied {
                code: ErrorCode::TargetPrivileged,
                message: format!(
                    "You may not {} this user: they hold the {} role, which your roles do not cover. Ask a Privileged Authentication Administrator or a Global Administrator.",
                    action.verb(),
                    role_name(role)
                ),
            },
        }
    }
}

/// Applies the rule to a caller holding `grant`, acting on `target`: reads the caller's and the
/// target's roles now (so a role just removed counts at once), and on refusal writes the attempt
/// to the audit log as a failure and returns the 403.
pub async fn enforce<P: Permission>(
    deps: &Deps<dyn DirectoryStore>,
    grant: &Granted<P>,
    request: &RequestContext,
    action: SensitiveAction,
    target: &User,
) -> Result<()> {
    let target_roles = deps.store.role_definitions_held(target.id).await?;
    enforce_on(deps, grant, request, action, target, &target_roles).await
}

/// [`enforce`] for a target whose roles the caller has read already: a deleted user, whose
/// roles are set aside (`DirectoryStore::deleted_user_role_definitions`) and would come back
/// with a restore. Restoring someone needs the standing that deleting them did.
pub async fn enforce_on<P: Permission>(
    deps: &Deps<dyn DirectoryStore>,
    grant: &Granted<P>,
    request: &RequestContext,
    action: SensitiveAction,
    target: &User,
    target_roles: &[Uuid],
) -> Result<()> {
    let caller_roles;
    let caller = match grant.actor() {
        Actor::System => Caller::System,
        Actor::User { id, .. } => {
            caller_roles = deps.store.role_definitions_held(*id).await?;
            Caller::Person {
                id: *id,
                roles: &caller_roles,
            }
        }
        Actor::App { .. } => Caller::Application {
            permissions: grant.held(),
        },
    };
    let Err(refusal) = decide(caller, action, target.id, target_roles) else {
        return Ok(());
    };
    let error = refusal.to_error(action);
    let audit = DirectoryAudit {
        id: deps.entropy.uuid(),
        category: "UserManagement".to_string(),
        correlation_id: request.correlation_id,
        result: audit::SUCCESS.to_string(),
        result_reason: String::new(),
        activity_display_name: action.activity().to_string(),
        activity_date_time: deps.clock.now(),
        logged_by_service: "Core Directory".to_string(),
        operation_type: action.operation_type().to_string(),
        initiated_by: AuditActivityInitiator::from_actor(grant.actor(), request.ip_address.clone()),
        target_resources: vec![
            TargetResource::new("User", target.id, &target.display_name)
                .with_upn(&target.user_principal_name),
        ],
        additional_details: Vec::new(),
    };
    Err(audit::record_refusal(deps.store.as_ref(), audit, error).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::roles::{self, BUILT_IN_ROLES};
    use SensitiveAction::*;

    /// The spec: for each caller role, whom it may act on, per action group. `A` = accounts
    /// (disable, enable, delete, sign-in name, mail: Entra's "sensitive actions" table); `P` =
    /// password reset and session revocation; `M` = sign-in methods and Temporary Access
    /// Passes ("who can reset passwords", Authentication Administrators' columns). Each cell
    /// lists the target roles covered, by short name; `none` = a person with no role; `*` =
    /// everyone. A caller role not in this table takes none of these actions.
    const SPEC: &[(&str, &str, &str, &str)] = &[
        // caller, accounts, passwords and sessions, methods and passes
        ("GA", "*", "*", "*"),
        ("PAA", "*", "*", "*"),
        ("AuthA", "none AuthA RR", "none AuthA RR", "none AuthA RR"),
        ("UA", "none GrpA HDA RR UA", "none GrpA HDA RR UA", "-"),
        ("HDA", "-", "none HDA RR", "-"),
    ];

    fn short(id: Uuid) -> &'static str {
        match id {
            roles::GLOBAL_ADMINISTRATOR => "GA",
            roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR => "PAA",
            roles::AUTHENTICATION_ADMINISTRATOR => "AuthA",
            roles::CONDITIONAL_ACCESS_ADMINISTRATOR => "CAA",
            roles::SECURITY_ADMINISTRATOR => "SecA",
            roles::SECURITY_READER => "SecR",
            roles::GLOBAL_READER => "GR",
            roles::USER_ADMINISTRATOR => "UA",
            roles::GROUPS_ADMINISTRATOR => "GrpA",
            roles::APPLICATION_ADMINISTRATOR => "AppA",
            roles::PRIVILEGED_ROLE_ADMINISTRATOR => "PRA",
            roles::AUTHENTICATION_POLICY_ADMINISTRATOR => "APA",
            roles::REPORTS_READER => "RR",
            roles::HELPDESK_ADMINISTRATOR => "HDA",
            _ => panic!("a built-in role without a short name: {id}"),
        }
    }

    fn column(action: SensitiveAction) -> usize {
        match action {
            Disable
            | Enable
            | Delete
            | Restore
            | HardDelete
            | ChangeUserPrincipalName
            | ChangeMail => 1,
            ResetPassword | RevokeSessions => 2,
            AddMethod | DeleteMethod | IssueTemporaryAccessPass | DeleteTemporaryAccessPass => 3,
        }
    }

    /// What the spec says for a caller holding `caller` taking `action` on someone holding
    /// `target` (`None`: no role).
    fn expected(caller: Uuid, action: SensitiveAction, target: Option<Uuid>) -> bool {
        let Some(row) = SPEC.iter().find(|row| row.0 == short(caller)) else {
            return false;
        };
        let cell = [row.1, row.2, row.3][column(action) - 1];
        if cell == "-" {
            return false;
        }
        if cell == "*" {
            return true;
        }
        let name = target.map(short).unwrap_or("none");
        cell.split_whitespace().any(|n| n == name)
    }

    fn person(roles: &[Uuid]) -> Caller<'_> {
        Caller::Person {
            id: Uuid::from_u128(1),
            roles,
        }
    }

    const TARGET: Uuid = Uuid::from_u128(2);

    #[test]
    fn every_role_pair_and_action_agrees_with_the_spec() {
        let mut targets: Vec<Option<Uuid>> = vec![None];
        targets.extend(BUILT_IN_ROLES.iter().map(|r| Some(r.template_id)));
        let mut checked = 0;
        for caller in BUILT_IN_ROLES.iter().map(|r| r.template_id) {
            for &action in SensitiveAction::ALL {
                for target in &targets {
                    let held: Vec<Uuid> = target.iter().copied().collect();
                    let got = decide(person(&[caller]), action, TARGET, &held).is_ok();
                    assert_eq!(
                        got,
                        expected(caller, action, *target),
                        "{} {:?} a target holding {}",
                        short(caller),
                        action,
                        target.map(short).unwrap_or("no role")
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(
            checked,
            BUILT_IN_ROLES.len() * SensitiveAction::ALL.len() * (BUILT_IN_ROLES.len() + 1)
        );
    }

    #[test]
    fn a_target_with_several_roles_needs_every_one_covered() {
        let ua = [roles::USER_ADMINISTRATOR];
        let target = [roles::HELPDESK_ADMINISTRATOR, roles::GLOBAL_ADMINISTRATOR];
        assert_eq!(
            decide(person(&ua), Disable, TARGET, &target),
            Err(Refusal::TargetPrivileged {
                role: roles::GLOBAL_ADMINISTRATOR
            })
        );
        // Two caller roles together cover what neither covers alone.
        let both = [
            roles::USER_ADMINISTRATOR,
            roles::AUTHENTICATION_ADMINISTRATOR,
        ];
        let target = [
            roles::HELPDESK_ADMINISTRATOR,
            roles::AUTHENTICATION_ADMINISTRATOR,
        ];
        assert!(decide(person(&both), ResetPassword, TARGET, &target).is_ok());
        assert!(decide(person(&ua), ResetPassword, TARGET, &target).is_err());
        // But only roles that take the action count: a User Administrator does not manage
        // passkeys, so their role adds nothing to an Authentication Administrator's there.
        assert_eq!(
            decide(person(&both), DeleteMethod, TARGET, &target),
            Err(Refusal::TargetPrivileged {
                role: roles::HELPDESK_ADMINISTRATOR
            })
        );
        // A role this build does not know is covered by the top tier only.
        let unknown = [Uuid::from_u128(99)];
        assert!(decide(person(&ua), Disable, TARGET, &unknown).is_err());
        assert!(
            decide(
                person(&[roles::GLOBAL_ADMINISTRATOR]),
                Disable,
                TARGET,
                &unknown
            )
            .is_ok()
        );
    }

    #[test]
    fn nobody_issues_their_own_pass_or_resets_their_own_password() {
        let me = Uuid::from_u128(1);
        let ga = [roles::GLOBAL_ADMINISTRATOR];
        for action in [
            IssueTemporaryAccessPass,
            DeleteTemporaryAccessPass,
            ResetPassword,
        ] {
            assert_eq!(
                decide(person(&ga), action, me, &ga),
                Err(Refusal::OnYourself),
                "{action:?}"
            );
        }
        assert!(decide(person(&ga), DeleteMethod, me, &ga).is_ok());
    }

    #[test]
    fn applications_stand_for_the_roles_their_permissions_match() {
        let perms = |list: &[&str]| -> Vec<String> { list.iter().map(|p| p.to_string()).collect() };
        fn app(permissions: &[String]) -> Caller<'_> {
            Caller::Application { permissions }
        }
        let ga = [roles::GLOBAL_ADMINISTRATOR];
        let users = perms(&[perm::USER_READ_WRITE_ALL]);
        assert!(decide(app(&users), Disable, TARGET, &[]).is_ok());
        assert!(
            decide(
                app(&users),
                Disable,
                TARGET,
                &[roles::HELPDESK_ADMINISTRATOR]
            )
            .is_ok()
        );
        assert!(decide(app(&users), Disable, TARGET, &ga).is_err());
        assert_eq!(
            decide(app(&users), IssueTemporaryAccessPass, TARGET, &[]),
            Err(Refusal::NoPerformingRole)
        );
        let methods = perms(&[perm::USER_AUTHENTICATION_METHOD_READ_WRITE_ALL]);
        assert!(decide(app(&methods), IssueTemporaryAccessPass, TARGET, &[]).is_ok());
        assert!(decide(app(&methods), IssueTemporaryAccessPass, TARGET, &ga).is_err());
        assert!(decide(app(&methods), DeleteMethod, TARGET, &ga).is_err());
        let directory = perms(&[perm::DIRECTORY_READ_WRITE_ALL]);
        assert!(decide(app(&directory), Delete, TARGET, &ga).is_err());
        // Reading does not stand for anything.
        let readers = perms(&[perm::DIRECTORY_READ_ALL, perm::USER_READ_ALL]);
        assert_eq!(
            decide(app(&readers), Disable, TARGET, &[]),
            Err(Refusal::NoPerformingRole)
        );
        // Role management reaches every target, and nothing is "yourself" for an application.
        let all = perms(perm::ALL);
        for &action in SensitiveAction::ALL {
            assert!(decide(app(&all), action, TARGET, &ga).is_ok(), "{action:?}");
        }
        assert!(decide(Caller::System, Delete, TARGET, &ga).is_ok());
    }

    #[test]
    fn refusals_are_403s_and_the_tier_one_names_its_rule() {
        let e = Refusal::TargetPrivileged {
            role: roles::GLOBAL_ADMINISTRATOR,
        }
        .to_error(Disable);
        assert_eq!(e.http_status(), 403);
        assert_eq!(e.code().as_str(), "Authorization_TargetPrivileged");
        assert!(e.public_message().contains("Global Administrator"));
        for refusal in [Refusal::OnYourself, Refusal::NoPerformingRole] {
            assert_eq!(refusal.to_error(ResetPassword).http_status(), 403);
        }
    }
}
