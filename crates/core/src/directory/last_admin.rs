//! The last Global Administrator: a directory change that would leave the tenant with no enabled
//! Global Administrator is refused with 409 `lastGlobalAdministrator`, as Entra refuses to
//! remove the last one (`CannotDeleteLastAdminAssignment`). The lockout guard (`crate::guard`)
//! asks whether administrators can still *sign in*; this rule asks the plainer question of
//! whether anyone still *holds* the role, for the changes that take it away: removing a role
//! assignment, deleting or disabling a person, deleting a group that holds the role, removing a
//! member from such a group.
//!
//! What it owns: counting the enabled holders of Global Administrator as they would be without
//! one assignment, person, group or membership. What it must never do: refuse a change because
//! the tenant *already* has no enabled holder (that state is reached only by an acknowledged
//! or older change, and repairing it must stay possible), or be overridable: there is no
//! reason to have none, and assigning the successor first is always possible.
//!
//! Two such changes racing on two nodes could each leave one holder and together none, so the
//! callers commit a change this rule looked at with the directory's revision precondition
//! read before it counted (a race fails one commit with `revisionMoved`).

use uuid::Uuid;

use crate::directory::model::ObjectKind;
use crate::directory::roles::GLOBAL_ADMINISTRATOR;
use crate::directory::store::DirectoryStore;
use crate::kernel::error::ErrorCode;
use crate::{Error, Result};

/// What a change takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Without {
    /// A role assignment removed.
    Assignment(Uuid),
    /// A person deleted or disabled.
    User(Uuid),
    /// A group deleted.
    Group(Uuid),
    /// A direct member taken out of a group.
    Membership { group: Uuid, member: Uuid },
}

/// The enabled people holding Global Administrator, directly or through a group (at any
/// depth), once `without` is taken away (`None`: as things are).
async fn holders<S: DirectoryStore + ?Sized>(
    store: &S,
    without: Option<Without>,
) -> Result<Vec<Uuid>> {
    let mut people: Vec<Uuid> = Vec::new();
    for assignment in store.role_assignments(None).await? {
        if assignment.role_definition_id != GLOBAL_ADMINISTRATOR
            || without == Some(Without::Assignment(assignment.id))
            || without == Some(Without::Group(assignment.principal_id))
        {
            continue;
        }
        if store.group(assignment.principal_id).await?.is_none() {
            people.push(assignment.principal_id);
            continue;
        }
        // Walk the group's members, leaving out a deleted group or a removed membership.
        let mut groups = vec![assignment.principal_id];
        let mut seen = Vec::new();
        while let Some(group) = groups.pop() {
            if seen.contains(&group) || without == Some(Without::Group(group)) {
                continue;
            }
            seen.push(group);
            for member in store.members(group).await? {
                if without
                    == Some(Without::Membership {
                        group,
                        member: member.id,
                    })
                {
                    continue;
                }
                match member.kind {
                    ObjectKind::User => people.push(member.id),
                    ObjectKind::Group => groups.push(member.id),
                    ObjectKind::ServicePrincipal => {}
                }
            }
        }
    }
    people.sort();
    people.dedup();
    let mut enabled = Vec::new();
    for id in people {
        if without == Some(Without::User(id)) {
            continue;
        }
        if store.user(id).await?.is_some_and(|u| u.account_enabled) {
            enabled.push(id);
        }
    }
    Ok(enabled)
}

/// Refuses a change that would take Global Administrator from its last enabled holder. Returns
/// whether the change touched a holder at all, so that the caller commits it under the
/// revision precondition it read before calling.
pub async fn check<S: DirectoryStore + ?Sized>(store: &S, without: Without) -> Result<bool> {
    let before = holders(store, None).await?;
    let after = holders(store, Some(without)).await?;
    if before.len() == after.len() {
        return Ok(false);
    }
    if after.is_empty() {
        return Err(Error::Conflict {
            code: ErrorCode::LastGlobalAdministrator,
            message: "This would leave no enabled Global Administrator. Assign the role to someone else first.".into(),
        });
    }
    Ok(true)
}
