//! The directory's storage contract, and the one door every capability writes through.
//!
//! [`Commit`] applies a list of one capability's changes and the audit entry that describes them
//! in a single transaction: all of it lands or none of it does. Each capability names its own
//! change type (this module's [`DirectoryChange`], `MethodChange`, `SignInChange`, …); a layer's
//! change type wraps the layers below it, so one step can change a session, a method and the
//! sign-in log at once. The store crate implements `Commit` once for every change type.
//!
//! Uniqueness violations come back as [`Error::Conflict`](crate::Error::Conflict), updates and
//! deletes of rows that do not exist as [`Error::NotFound`](crate::Error::NotFound), an
//! unreachable database as [`Error::Unavailable`](crate::Error::Unavailable).
//!
//! What it must never name: a type of a capability above the directory.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::audit::DirectoryAudit;
use crate::directory::model::DeletedUser;
use crate::directory::model::{
    AppRoleAssignment, Application, DocumentKind, Group, MemberRef, ObjectKind, PasswordCredential,
    PolicyDocument, RoleAssignment, Tenant, User,
};
use crate::kernel::query::{ListQuery, Order, Page};

/// Applies changes of type `C` with their audit entry, in one transaction.
#[async_trait]
pub trait Commit<C: Send + 'static>: Send + Sync {
    async fn commit(&self, changes: Vec<C>, audit: Option<DirectoryAudit>) -> Result<()>;
}

/// One row-level change to the directory. A change list is applied in order, in one
/// transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryChange {
    InsertTenant(Tenant),
    InsertUser(User),
    UpdateUser(User),
    /// Removes the user for good, live or deleted: with their memberships, role assignments,
    /// app role assignments (live or kept for a restore) and sign-in methods.
    DeleteUser(Uuid),
    /// Moves a live user to deleted items (Entra's soft delete): the row stays, marked deleted
    /// at `at`, with its methods; its memberships, role assignments and app role assignments are
    /// set aside for a restore, so no read of live principals sees them.
    SoftDeleteUser {
        user_id: Uuid,
        at: OffsetDateTime,
    },
    /// Brings a deleted user back with what was set aside at deletion, except memberships of
    /// groups and assignments of applications deleted since. A live user now holding the same
    /// userPrincipalName is a conflict.
    RestoreUser(Uuid),
    InsertGroup(Group),
    UpdateGroup(Group),
    /// Also removes the group's memberships (as container and as member) and role assignments.
    DeleteGroup(Uuid),
    AddMember {
        group_id: Uuid,
        member_id: Uuid,
        member_kind: ObjectKind,
    },
    RemoveMember {
        group_id: Uuid,
        member_id: Uuid,
    },
    InsertRoleAssignment(RoleAssignment),
    DeleteRoleAssignment(Uuid),
    /// Inserts the application and its password credentials.
    InsertApplication(Application),
    /// Updates the application's own fields; its credentials are left as they are.
    UpdateApplication(Application),
    /// Also removes its credentials, identifier URIs, role assignments, and app role
    /// assignments both of its roles and held by it.
    DeleteApplication(Uuid),
    /// A principal is given an app role of a resource application. A second assignment of
    /// the same role to the same principal is a conflict.
    InsertAppRoleAssignment(AppRoleAssignment),
    DeleteAppRoleAssignment(Uuid),
    InsertPasswordCredential {
        application_id: Uuid,
        credential: PasswordCredential,
    },
    DeletePasswordCredential {
        application_id: Uuid,
        key_id: Uuid,
    },
    /// Policy documents: Conditional Access policies, named locations, authentication
    /// strengths and method configurations, kept as Graph JSON.
    InsertDocument(PolicyDocument),
    UpdateDocument(PolicyDocument),
    DeleteDocument {
        kind: DocumentKind,
        id: String,
    },
    /// Ends what a person's past sign-ins still hold: their sessions, and the grants (refresh
    /// tokens) made to applications. With `credential_id`, only the sessions in which that
    /// credential was used, and the grants made in them; without, every session and every
    /// grant of the person. The directory names the event (trust in this person ended) so that
    /// disabling or deleting them ends their sign-ins in the same transaction; the store knows
    /// the rows it touches.
    EndSignIns {
        user_id: Uuid,
        credential_id: Option<String>,
        at: OffsetDateTime,
    },
    /// A precondition: the commit fails with a conflict (`revisionMoved`) unless the store's
    /// revisions are still these when the rest of the list has been applied. A write that
    /// checked other objects first (a policy naming a group, a deletion that no policy names
    /// what it deletes) carries the revisions it read before checking, so that a concurrent
    /// change on any node cannot slip between the check and the write.
    ExpectRevisions(Revisions),
    /// Moves the memberships revision without changing a membership: an account enabled or
    /// disabled changes who effectively holds a role (the last-administrator rule and the
    /// lockout guard count enabled holders), so checks made against the revision must see it.
    MoveMembershipsRevision,
}

/// See [`DirectoryStore::revisions`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revisions {
    /// Moves with every change to a policy document (policies, named locations, strengths,
    /// method configurations).
    pub documents: String,
    /// Moves with every change to who is in which group and who holds which role: memberships,
    /// role assignments, and deletions of users, groups and applications (which take theirs
    /// with them).
    pub memberships: String,
}

/// What the directory reads.
#[async_trait]
pub trait DirectoryStore: Commit<DirectoryChange> + Send + Sync + 'static {
    /// Tokens that change, in the same transaction, whenever what they cover changes: a node
    /// may keep what it derived from that data for as long as the token stays the same, and
    /// every node sees a change at its next read. `None`: this store keeps no such tokens, and
    /// nothing derived may be kept.
    async fn revisions(&self) -> Result<Option<Revisions>> {
        Ok(None)
    }

    async fn tenant(&self) -> Result<Option<Tenant>>;

    async fn user(&self, id: Uuid) -> Result<Option<User>>;
    /// Case-insensitive, as userPrincipalName is in Entra.
    async fn user_by_upn(&self, upn: &str) -> Result<Option<User>>;
    /// Ordered by creation time, then id.
    async fn list_users(&self, query: &ListQuery) -> Result<Page<User>>;
    /// Ordered by `order` (display name, user principal name or creation time, either way),
    /// then id; by creation time without one. A cursor made under another order is refused.
    async fn list_users_in_order(
        &self,
        query: &ListQuery,
        order: Option<Order>,
    ) -> Result<Page<User>>;
    /// Live users whose mail is this one (case-insensitively).
    async fn users_by_mail(&self, mail: &str) -> Result<Vec<User>>;
    /// A user in deleted items (never a live one).
    async fn deleted_user(&self, id: Uuid) -> Result<Option<DeletedUser>>;
    /// Deleted users, most recently deleted first.
    async fn list_deleted_users(&self, query: &ListQuery) -> Result<Page<DeletedUser>>;
    /// Deleted users deleted at or before `cutoff`, at most `limit` of them: the purge's work.
    async fn deleted_users_before(&self, cutoff: OffsetDateTime, limit: u32) -> Result<Vec<Uuid>>;
    /// The role definitions a deleted user would hold again if restored: those set aside with
    /// them, directly or through the groups (set aside too) whose assignments still stand.
    async fn deleted_user_role_definitions(&self, user_id: Uuid) -> Result<Vec<Uuid>>;

    async fn group(&self, id: Uuid) -> Result<Option<Group>>;
    async fn list_groups(&self, query: &ListQuery) -> Result<Page<Group>>;
    /// Direct members, users and groups, ordered by display name.
    async fn members(&self, group_id: Uuid) -> Result<Vec<MemberRef>>;
    /// Members of the group and of every group nested in it, each once.
    async fn transitive_members(&self, group_id: Uuid) -> Result<Vec<MemberRef>>;
    /// Groups the object is a direct member of.
    async fn member_of(&self, object_id: Uuid) -> Result<Vec<Group>>;
    /// Groups the object is a member of directly or through nesting, each once.
    async fn transitive_member_of(&self, object_id: Uuid) -> Result<Vec<Group>>;

    async fn role_assignment(&self, id: Uuid) -> Result<Option<RoleAssignment>>;
    /// All assignments, or those of one principal.
    async fn role_assignments(&self, principal_id: Option<Uuid>) -> Result<Vec<RoleAssignment>>;
    /// The role definitions assigned to the user directly or to any group they are in
    /// (through nesting), each once, in one statement: read on every sign-in decision.
    async fn role_definitions_held(&self, user_id: Uuid) -> Result<Vec<Uuid>>;

    /// With its password credentials.
    async fn application(&self, id: Uuid) -> Result<Option<Application>>;
    async fn application_by_app_id(&self, app_id: Uuid) -> Result<Option<Application>>;
    async fn list_applications(&self, query: &ListQuery) -> Result<Page<Application>>;
    /// The application one of whose identifier URIs this is (compared case-insensitively).
    async fn application_by_identifier_uri(&self, uri: &str) -> Result<Option<Application>>;
    /// The assignments of a resource application's app roles (and default access), oldest
    /// first, with the names of their principals.
    async fn app_role_assignments(&self, resource_id: Uuid) -> Result<Vec<AppRoleAssignment>>;

    async fn document(&self, kind: DocumentKind, id: &str) -> Result<Option<PolicyDocument>>;
    /// All documents of a kind, ordered by creation time.
    async fn documents(&self, kind: DocumentKind) -> Result<Vec<PolicyDocument>>;

    /// Newest first.
    async fn list_audits(&self, query: &ListQuery) -> Result<Page<DirectoryAudit>>;
}
