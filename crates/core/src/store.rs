//! The storage contract. The store crate implements it once on SQLite and PostgreSQL; core
//! never sees SQL.
//!
//! Writes go through one door, [`Store::commit`]: a list of [`Change`]s and the audit entry that
//! describes them, applied in a single transaction. Either all of it lands or none of it does.
//! Uniqueness violations come back as [`Error::Conflict`](crate::Error::Conflict), updates and
//! deletes of rows that do not exist as [`Error::NotFound`](crate::Error::NotFound), an
//! unreachable database as [`Error::Unavailable`](crate::Error::Unavailable).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::audit::DirectoryAudit;
use crate::model::{
    Application, DocumentKind, Group, MemberRef, ObjectKind, PasswordCredential, PolicyDocument,
    RoleAssignment, SigningKey, Tenant, User,
};
use crate::oidc::{AuthorizationCode, OAuthGrant, RefreshToken, Taken};
use crate::session::{AuthSession, SessionMethod};
use crate::signin::{SignInFlow, Step};
use crate::signin_log::SignInLogEntry;
use crate::tap::TemporaryAccessPass;
use crate::totp::SoftwareOathMethod;

/// One row-level change. A change list is applied in order, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    InsertTenant(Tenant),
    InsertUser(User),
    UpdateUser(User),
    /// Also removes the user's memberships and role assignments.
    DeleteUser(Uuid),
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
    /// Also removes its credentials and role assignments.
    DeleteApplication(Uuid),
    InsertPasswordCredential {
        application_id: Uuid,
        credential: PasswordCredential,
    },
    DeletePasswordCredential {
        application_id: Uuid,
        key_id: Uuid,
    },
    InsertDocument(PolicyDocument),
    UpdateDocument(PolicyDocument),
    DeleteDocument {
        kind: DocumentKind,
        id: String,
    },
    InsertSigningKey(SigningKey),
    RetireSigningKey {
        kid: String,
        at: OffsetDateTime,
    },
    InsertSession(AuthSession),
    /// Records one more method satisfied in a session.
    AddSessionMethod {
        session_id: Uuid,
        method: SessionMethod,
    },
    DeleteSession(Uuid),
    /// Stores a user's Temporary Access Pass, replacing the one they had: one pass per person.
    PutTemporaryAccessPass(TemporaryAccessPass),
    DeleteTemporaryAccessPass {
        user_id: Uuid,
        id: Uuid,
    },
    /// Sets (or replaces) a user's password hash.
    SetPassword {
        user_id: Uuid,
        hash: String,
        changed: OffsetDateTime,
    },
    DeletePassword {
        user_id: Uuid,
    },
    InsertSoftwareOath(SoftwareOathMethod),
    /// Boxed: an entry is much larger than every other change.
    InsertSignInLogEntry(Box<SignInLogEntry>),
    DeleteSoftwareOath {
        user_id: Uuid,
        id: Uuid,
    },
    /// Boxed, like log entries: a flow is large next to most changes.
    InsertSignInFlow(Box<SignInFlow>),
    /// Stores the flow's new state if it is still at step `from`; otherwise the change fails
    /// with a conflict (`signInStepOutOfOrder`): another request moved it first.
    AdvanceSignInFlow {
        flow: Box<SignInFlow>,
        from: Step,
    },
    /// Uses up a passkey ceremony (its challenge) if it is still there; otherwise the change
    /// fails with a conflict (`passkeyChallengeNotFound`): another request used it first.
    TakeCeremony(Uuid),
    /// Records a passkey sign-in. The signature counter may only move forward (or stay at
    /// zero for authenticators that keep none); otherwise the change fails with a conflict
    /// (`passkeyCounterNotAdvanced`), so two nodes cannot both accept one counter value.
    RecordPasskeyUse(crate::passkeys::PasskeyUse),
    InsertOAuthGrant(Box<OAuthGrant>),
    InsertAuthorizationCode(AuthorizationCode),
    /// Marks an authorization code used if it is still unused; otherwise the change fails with
    /// a conflict (`authorizationCodeUsed`). Of any number of racing commits on any number of
    /// nodes, exactly one succeeds.
    TakeAuthorizationCode {
        code_hash: String,
        at: OffsetDateTime,
    },
    InsertRefreshToken(RefreshToken),
    /// Revokes a grant: its refresh tokens stop working and its access tokens stop being
    /// accepted by userinfo. Revoking a revoked grant keeps the first time.
    RevokeOAuthGrant {
        id: Uuid,
        at: OffsetDateTime,
    },
    /// Revokes every grant made in a session (logout).
    RevokeSessionGrants {
        session_id: Uuid,
        at: OffsetDateTime,
    },
}

/// See [`Store::revisions`].
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

/// Failed attempts counted under one key (an account's method, a source address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures in the current window, this one included.
    pub count: u32,
    pub window_start: OffsetDateTime,
    /// The latest failure (this one, when just recorded).
    pub last_failure: OffsetDateTime,
}

/// A comparison in a list query. `field` is a column name from core's per-resource whitelist
/// ([`crate::odata`]), never text from a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub field: &'static str,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Case-insensitive for text, as Graph's `eq` is for directory properties.
    Eq,
    Ne,
    /// Case-insensitive prefix match.
    StartsWith,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    Int(i64),
    Instant(OffsetDateTime),
}

/// Where the previous page ended: the sort key of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created: OffsetDateTime,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// All must hold.
    pub filter: Vec<Predicate>,
    pub top: usize,
    pub after: Option<Cursor>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: Vec::new(),
            top: 100,
            after: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more rows follow.
    pub next: Option<Cursor>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies every change and writes the audit entry, in one transaction.
    async fn commit(&self, changes: Vec<Change>, audit: Option<DirectoryAudit>) -> Result<()>;

    /// Whether the database answers; used by `/readyz`.
    async fn ping(&self) -> Result<()>;

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

    async fn document(&self, kind: DocumentKind, id: &str) -> Result<Option<PolicyDocument>>;
    /// All documents of a kind, ordered by creation time.
    async fn documents(&self, kind: DocumentKind) -> Result<Vec<PolicyDocument>>;

    /// Deletes sign-in log entries older than `before`; how many went.
    async fn purge_sign_ins(&self, before: OffsetDateTime) -> Result<u64>;

    /// Deletes what has expired by `now` and can no longer be used: sign-in flows, sessions,
    /// and grants with their codes and refresh tokens. How many rows went.
    async fn purge_expired_sign_in_state(&self, now: OffsetDateTime) -> Result<u64>;

    /// Newest first.
    async fn list_sign_ins(&self, query: &ListQuery) -> Result<Page<SignInLogEntry>>;

    /// Newest first.
    async fn list_audits(&self, query: &ListQuery) -> Result<Page<DirectoryAudit>>;

    /// Every key, retired ones included, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;

    /// The session whose token hashes to this, expired or not.
    async fn session_by_token_hash(&self, token_hash: &str) -> Result<Option<AuthSession>>;

    /// The user's pass, if one exists (used or not, valid or not).
    async fn temporary_access_pass(&self, user_id: Uuid) -> Result<Option<TemporaryAccessPass>>;

    /// Marks a one-time pass used. `true` for exactly one caller, however many nodes and tasks
    /// race: the pass must exist and be unused.
    async fn consume_temporary_access_pass(&self, id: Uuid, at: OffsetDateTime) -> Result<bool>;

    /// Counts a failure under `key`. A window older than `window` starts again at this failure.
    async fn record_failure(
        &self,
        key: &str,
        at: OffsetDateTime,
        window: time::Duration,
    ) -> Result<FailureCount>;

    /// The user's password hash and when it was set.
    async fn password(&self, user_id: Uuid) -> Result<Option<(String, OffsetDateTime)>>;

    /// The user's software OATH (TOTP) methods.
    async fn software_oath_methods(&self, user_id: Uuid) -> Result<Vec<SoftwareOathMethod>>;

    /// Records that a TOTP time step was used. `true` only if it is later than every step used
    /// before with this method: a code is accepted once, even by racing nodes.
    async fn use_software_oath_step(&self, id: Uuid, step: i64) -> Result<bool>;

    /// The failures counted under `key`, if any.
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>>;

    /// Forgets the failures under `key` (after a success).
    async fn clear_failures(&self, key: &str) -> Result<()>;

    /// The sign-in flow with this id, expired or not.
    async fn sign_in_flow(&self, id: Uuid) -> Result<Option<SignInFlow>>;

    /// An authorization code as it stands, without using it: [`Taken::Fresh`] while unused,
    /// [`Taken::Replayed`] once used. The token endpoint uses it up with
    /// [`Change::TakeAuthorizationCode`] in the transaction that stores what it issues.
    async fn authorization_code(&self, code_hash: &str) -> Result<Taken<AuthorizationCode>>;

    /// Marks a refresh token used, with the same guarantee as codes.
    async fn take_refresh_token(
        &self,
        token_hash: &str,
        at: OffsetDateTime,
    ) -> Result<Taken<RefreshToken>>;

    /// A refresh token, used or not.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;

    async fn oauth_grant(&self, id: Uuid) -> Result<Option<OAuthGrant>>;
}
