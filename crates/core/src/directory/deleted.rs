//! Deleted users: Entra's soft delete, Graph's `directory/deletedItems`.
//!
//! Deleting a user ([`Directory::delete_user`]) moves it to deleted items for
//! [`DELETED_USER_RETENTION`] (30 days): it is gone from every read of live users and cannot sign
//! in, but its methods are kept, and its memberships, role assignments and app role assignments
//! are set aside so that a restore brings the person back as they were (less what was deleted
//! meanwhile: a group, an application). After the retention the purge removes it for good.
//!
//! Roles: a deleted user holds none while deleted (its assignments are set aside, so the lockout
//! guard and every role holder list count live people only), and a restore gives them back. So a
//! restore is a sensitive action judged against the roles it would give back
//! ([`tiers::enforce_on`] with [`SensitiveAction::Restore`]): restoring someone needs the standing
//! that deleting them did, and nobody gets a role back for a user through a restore that they
//! could not have taken away. A permanent delete is judged the same way.
//!
//! A new user may take a deleted user's userPrincipalName (as in Entra); restoring the deleted
//! one is then a conflict, as it is when a live user has its mail.
//!
//! What this module must never do: show a deleted user to a read of live users, or restore
//! anything without an audit entry.

use uuid::Uuid;

use crate::directory::Directory;
use crate::directory::audit::{DirectoryAudit, RequestContext, TargetResource};
use crate::directory::authz::{Actor, Granted, ReadUsers, WriteUsers};
use crate::directory::model::{DELETED_USER_RETENTION, DeletedUser, User};
use crate::directory::store::DirectoryChange as Change;
use crate::directory::tiers::{self, SensitiveAction};
use crate::kernel::query::{ListQuery, Page};
use crate::{Error, Result};

/// How many deleted users one purge pass removes at most; the next pass takes the rest.
const PURGE_BATCH: u32 = 100;

fn target(user: &User) -> TargetResource {
    TargetResource::new("User", user.id, &user.display_name).with_upn(&user.user_principal_name)
}

impl Directory {
    /// A user in deleted items, by object id (a deleted user has no name to be found by: a
    /// live user may hold it).
    pub async fn deleted_user(
        &self,
        _grant: &Granted<ReadUsers>,
        key: &str,
    ) -> Result<DeletedUser> {
        self.find_deleted_user(key).await
    }

    async fn find_deleted_user(&self, key: &str) -> Result<DeletedUser> {
        let Ok(id) = Uuid::parse_str(key) else {
            return Err(Error::not_found("deletedItem", key));
        };
        self.store()
            .deleted_user(id)
            .await?
            .ok_or_else(|| Error::not_found("deletedItem", key))
    }

    /// Deleted users, most recently deleted first.
    pub async fn list_deleted_users(
        &self,
        _grant: &Granted<ReadUsers>,
        query: &ListQuery,
    ) -> Result<Page<DeletedUser>> {
        self.store().list_deleted_users(query).await
    }

    /// Brings a deleted user back, with its memberships, roles and app role assignments; a
    /// conflict (and nothing changed) when a live user now has its userPrincipalName or mail.
    pub async fn restore_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        key: &str,
    ) -> Result<User> {
        let deleted = self.find_deleted_user(key).await?;
        let user = deleted.user;
        let roles = self.store().deleted_user_role_definitions(user.id).await?;
        tiers::enforce_on(
            &self.deps,
            grant,
            request,
            SensitiveAction::Restore,
            &user,
            &roles,
        )
        .await?;
        if let Some(other) = self.store().user_by_upn(&user.user_principal_name).await? {
            return Err(Error::conflict(format!(
                "Cannot restore '{}': another user ({}) now has the userPrincipalName '{}'. \
                 Rename or delete that user first.",
                user.display_name, other.id, user.user_principal_name
            )));
        }
        if let Some(mail) = &user.mail
            && let Some(other) = self.store().users_by_mail(mail).await?.first()
        {
            return Err(Error::conflict(format!(
                "Cannot restore '{}': another user ({}) now has the mail '{}'. \
                 Change that user's mail first.",
                user.display_name, other.user_principal_name, mail
            )));
        }
        let audit = self.audit(
            grant.actor(),
            request,
            "UserManagement",
            SensitiveAction::Restore.activity(),
            "Restore",
            vec![target(&user)],
        );
        self.store()
            .commit(vec![Change::RestoreUser(user.id)], Some(audit))
            .await?;
        Ok(user)
    }

    /// Removes a deleted user for good, with everything set aside for its restore and its
    /// sign-in methods.
    pub async fn permanently_delete_user(
        &self,
        grant: &Granted<WriteUsers>,
        request: &RequestContext,
        key: &str,
    ) -> Result<()> {
        let deleted = self.find_deleted_user(key).await?;
        let user = deleted.user;
        let roles = self.store().deleted_user_role_definitions(user.id).await?;
        tiers::enforce_on(
            &self.deps,
            grant,
            request,
            SensitiveAction::HardDelete,
            &user,
            &roles,
        )
        .await?;
        let audit = self.audit(
            grant.actor(),
            request,
            "UserManagement",
            SensitiveAction::HardDelete.activity(),
            "Delete",
            vec![target(&user)],
        );
        self.store()
            .commit(vec![Change::DeleteUser(user.id)], Some(audit))
            .await
    }

    /// Removes for good the users deleted more than [`DELETED_USER_RETENTION`] ago, each with
    /// its own audit entry by the server. Returns how many it removed. Every node may run it:
    /// a user another node purged first is simply not found again.
    pub async fn purge_deleted_users(&self) -> Result<u64> {
        let cutoff = self.now() - DELETED_USER_RETENTION;
        let mut purged = 0;
        loop {
            let due = self
                .store()
                .deleted_users_before(cutoff, PURGE_BATCH)
                .await?;
            let batch = due.len();
            for id in due {
                let Some(deleted) = self.store().deleted_user(id).await? else {
                    continue;
                };
                let audit = DirectoryAudit {
                    result_reason: "Deleted more than 30 days ago".to_string(),
                    ..self.audit(
                        &Actor::System,
                        &RequestContext::new(self.deps.entropy.uuid()),
                        "UserManagement",
                        SensitiveAction::HardDelete.activity(),
                        "Delete",
                        vec![target(&deleted.user)],
                    )
                };
                match self
                    .store()
                    .commit(vec![Change::DeleteUser(id)], Some(audit))
                    .await
                {
                    Ok(()) => purged += 1,
                    // Another node purged it (or someone restored it) meanwhile.
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if batch < PURGE_BATCH as usize {
                return Ok(purged);
            }
        }
    }
}
