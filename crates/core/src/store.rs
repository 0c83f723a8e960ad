//! The whole storage contract, composed: what a server needs of its store, as the sum of every
//! capability's storage trait, and the flat list of row changes the store crate applies.
//!
//! Each capability writes and reads through its own trait ([`DirectoryStore`],
//! [`SessionStore`](crate::session::store::SessionStore), [`LogStore`](crate::logs::store::LogStore),
//! [`MethodStore`](crate::methods::store::MethodStore),
//! [`SignInStore`](crate::signin::store::SignInStore), [`OidcStore`]) with its own change type;
//! this module is the only place that names them all. A store implements [`Store`] and applies
//! [`Change`]s; a capability's change converts into the flat list with `Change::flatten`, so a
//! store needs one `Commit` implementation for them all.
//!
//! What it must never be: imported by a capability. It sits above all of them.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::model::{
    AppRoleAssignment, Application, DocumentKind, Group, ObjectKind, PasswordCredential,
    PolicyDocument, RoleAssignment, SigningKey, Tenant, User,
};
use crate::directory::store::DirectoryChange;
use crate::kernel::split_token::TokenKey;
use crate::logs::sign_in::SignInLogEntry;
use crate::logs::store::LogChange;
use crate::methods::passkeys::PasskeyUse;
use crate::methods::store::MethodChange;
use crate::methods::tap::TemporaryAccessPass;
use crate::methods::totp::SoftwareOathMethod;
use crate::oidc::store::{OidcChange, OidcStore, RefreshToken};
use crate::session::store::SessionChange;
use crate::session::{AuthSession, SessionMethod};
use crate::signin::authorization::{AuthorizationCode, OAuthGrant};
use crate::signin::store::SignInChange;
use crate::signin::{SignInFlow, Step};

pub use crate::directory::store::{Commit, DirectoryStore, Revisions};
pub use crate::kernel::query::{Cursor, ListQuery, Op, Order, Page, Predicate, Taken, Value};
pub use crate::methods::store::{FailureCount, LockRule, SlotTaking};

/// Everything a server needs of its store.
#[async_trait]
pub trait Store: OidcStore {
    /// Whether the database answers; used by `/readyz`.
    async fn ping(&self) -> Result<()>;
}

/// One row-level change. A change list is applied in order, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    InsertTenant(Tenant),
    InsertUser(User),
    UpdateUser(User),
    /// See [`DirectoryChange::DeleteUser`].
    DeleteUser(Uuid),
    /// See [`DirectoryChange::SoftDeleteUser`].
    SoftDeleteUser {
        user_id: Uuid,
        at: OffsetDateTime,
    },
    /// See [`DirectoryChange::RestoreUser`].
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
    /// Also removes its credentials and role assignments.
    DeleteApplication(Uuid),
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
    InsertDocument(PolicyDocument),
    UpdateDocument(PolicyDocument),
    DeleteDocument {
        kind: DocumentKind,
        id: String,
    },
    /// See [`DirectoryChange::EndSignIns`]: deletes the person's sessions (those that used the
    /// credential, when one is named) and revokes the grants made to applications (in those
    /// sessions, or all of them).
    EndSignIns {
        user_id: Uuid,
        credential_id: Option<String>,
        at: OffsetDateTime,
    },
    /// See [`DirectoryChange::ExpectRevisions`]: checked after the other changes of the list
    /// and before the revisions move, holding the revision rows until the commit.
    ExpectRevisions(Revisions),
    /// See [`DirectoryChange::MoveMembershipsRevision`].
    MoveMembershipsRevision,
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
    RecordPasskeyUse(PasskeyUse),
    InsertOAuthGrant(Box<OAuthGrant>),
    InsertAuthorizationCode(AuthorizationCode),
    /// Marks an authorization code used if it is still unused; otherwise the change fails with
    /// a conflict (`authorizationCodeUsed`). Of any number of racing commits on any number of
    /// nodes, exactly one succeeds.
    TakeAuthorizationCode {
        key: TokenKey,
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

/// What a commit stored that leaves the server as an event: the sign-in log entries and the
/// audit entry of one transaction, handed to a [`CommitObserver`] after the transaction
/// committed (never inside it, so an event is never sent for a change that rolled back).
#[derive(Debug, Clone, PartialEq)]
pub enum CommittedEvent {
    /// Graph's `signIn`.
    SignIn(Box<SignInLogEntry>),
    /// Graph's `directoryAudit`.
    DirectoryAudit(Box<crate::directory::audit::DirectoryAudit>),
}

/// Told what each commit stored once it is durable (see [`CommittedEvent`]).
///
/// It is called on the committing request's task, so it must return at once: queue and go.
/// Nothing it does can fail or slow the commit it is told about.
pub trait CommitObserver: Send + Sync {
    fn committed(&self, events: Vec<CommittedEvent>);
}

/// Turns one capability's change (and the changes of the layers it wraps) into flat [`Change`]s.
pub trait Flatten {
    fn flatten_into(self, out: &mut Vec<Change>);
}

impl Change {
    /// The flat changes of a capability's change list, in order.
    pub fn flatten<C: Flatten>(changes: Vec<C>) -> Vec<Change> {
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            change.flatten_into(&mut out);
        }
        out
    }
}

impl Flatten for Change {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(self);
    }
}

impl Flatten for DirectoryChange {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(match self {
            DirectoryChange::InsertTenant(t) => Change::InsertTenant(t),
            DirectoryChange::InsertUser(u) => Change::InsertUser(u),
            DirectoryChange::UpdateUser(u) => Change::UpdateUser(u),
            DirectoryChange::DeleteUser(id) => Change::DeleteUser(id),
            DirectoryChange::SoftDeleteUser { user_id, at } => {
                Change::SoftDeleteUser { user_id, at }
            }
            DirectoryChange::RestoreUser(id) => Change::RestoreUser(id),
            DirectoryChange::InsertGroup(g) => Change::InsertGroup(g),
            DirectoryChange::UpdateGroup(g) => Change::UpdateGroup(g),
            DirectoryChange::DeleteGroup(id) => Change::DeleteGroup(id),
            DirectoryChange::AddMember {
                group_id,
                member_id,
                member_kind,
            } => Change::AddMember {
                group_id,
                member_id,
                member_kind,
            },
            DirectoryChange::RemoveMember {
                group_id,
                member_id,
            } => Change::RemoveMember {
                group_id,
                member_id,
            },
            DirectoryChange::InsertRoleAssignment(a) => Change::InsertRoleAssignment(a),
            DirectoryChange::DeleteRoleAssignment(id) => Change::DeleteRoleAssignment(id),
            DirectoryChange::InsertApplication(a) => Change::InsertApplication(a),
            DirectoryChange::UpdateApplication(a) => Change::UpdateApplication(a),
            DirectoryChange::DeleteApplication(id) => Change::DeleteApplication(id),
            DirectoryChange::InsertAppRoleAssignment(a) => Change::InsertAppRoleAssignment(a),
            DirectoryChange::DeleteAppRoleAssignment(id) => Change::DeleteAppRoleAssignment(id),
            DirectoryChange::InsertPasswordCredential {
                application_id,
                credential,
            } => Change::InsertPasswordCredential {
                application_id,
                credential,
            },
            DirectoryChange::DeletePasswordCredential {
                application_id,
                key_id,
            } => Change::DeletePasswordCredential {
                application_id,
                key_id,
            },
            DirectoryChange::InsertDocument(d) => Change::InsertDocument(d),
            DirectoryChange::UpdateDocument(d) => Change::UpdateDocument(d),
            DirectoryChange::DeleteDocument { kind, id } => Change::DeleteDocument { kind, id },
            DirectoryChange::EndSignIns {
                user_id,
                credential_id,
                at,
            } => Change::EndSignIns {
                user_id,
                credential_id,
                at,
            },
            DirectoryChange::ExpectRevisions(r) => Change::ExpectRevisions(r),
            DirectoryChange::MoveMembershipsRevision => Change::MoveMembershipsRevision,
        })
    }
}

impl Flatten for SessionChange {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(match self {
            SessionChange::InsertSession(s) => Change::InsertSession(s),
            SessionChange::AddSessionMethod { session_id, method } => {
                Change::AddSessionMethod { session_id, method }
            }
            SessionChange::DeleteSession(id) => Change::DeleteSession(id),
        })
    }
}

impl Flatten for LogChange {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(match self {
            LogChange::InsertSignInLogEntry(e) => Change::InsertSignInLogEntry(e),
        })
    }
}

impl Flatten for MethodChange {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(match self {
            MethodChange::PutTemporaryAccessPass(p) => Change::PutTemporaryAccessPass(p),
            MethodChange::DeleteTemporaryAccessPass { user_id, id } => {
                Change::DeleteTemporaryAccessPass { user_id, id }
            }
            MethodChange::SetPassword {
                user_id,
                hash,
                changed,
            } => Change::SetPassword {
                user_id,
                hash,
                changed,
            },
            MethodChange::DeletePassword { user_id } => Change::DeletePassword { user_id },
            MethodChange::InsertSoftwareOath(m) => Change::InsertSoftwareOath(m),
            MethodChange::DeleteSoftwareOath { user_id, id } => {
                Change::DeleteSoftwareOath { user_id, id }
            }
            MethodChange::TakeCeremony(id) => Change::TakeCeremony(id),
            MethodChange::RecordPasskeyUse(u) => Change::RecordPasskeyUse(u),
            MethodChange::Directory(c) => return c.flatten_into(out),
            MethodChange::Session(c) => return c.flatten_into(out),
            MethodChange::Log(c) => return c.flatten_into(out),
        })
    }
}

impl Flatten for SignInChange {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(match self {
            SignInChange::InsertSignInFlow(f) => Change::InsertSignInFlow(f),
            SignInChange::AdvanceSignInFlow { flow, from } => {
                Change::AdvanceSignInFlow { flow, from }
            }
            SignInChange::InsertOAuthGrant(g) => Change::InsertOAuthGrant(g),
            SignInChange::InsertAuthorizationCode(c) => Change::InsertAuthorizationCode(c),
            SignInChange::Method(c) => return c.flatten_into(out),
        })
    }
}

impl Flatten for OidcChange {
    fn flatten_into(self, out: &mut Vec<Change>) {
        out.push(match self {
            OidcChange::TakeAuthorizationCode { key, at } => {
                Change::TakeAuthorizationCode { key, at }
            }
            OidcChange::InsertRefreshToken(t) => Change::InsertRefreshToken(t),
            OidcChange::RevokeOAuthGrant { id, at } => Change::RevokeOAuthGrant { id, at },
            OidcChange::RevokeSessionGrants { session_id, at } => {
                Change::RevokeSessionGrants { session_id, at }
            }
            OidcChange::InsertSigningKey(k) => Change::InsertSigningKey(k),
            OidcChange::RetireSigningKey { kid, at } => Change::RetireSigningKey { kid, at },
            OidcChange::SignIn(c) => return c.flatten_into(out),
        })
    }
}

/// Every storage trait, for code that holds a concrete store and calls it directly (the store
/// crate's own tests and benchmarks): `use portcullis_core::store::prelude::*;`.
pub mod prelude {
    pub use crate::directory::store::{Commit, DirectoryStore};
    pub use crate::logs::store::LogStore;
    pub use crate::methods::passkeys::PasskeyStore;
    pub use crate::methods::store::MethodStore;
    pub use crate::oidc::store::OidcStore;
    pub use crate::session::store::SessionStore;
    pub use crate::signin::store::SignInStore;

    pub use super::Store;
}

/// Whether the database answers, for `/readyz`: the one read the web layer makes of the store
/// as a whole.
#[derive(Clone)]
pub struct Readiness(std::sync::Arc<dyn Store>);

impl Readiness {
    pub fn new(store: std::sync::Arc<dyn Store>) -> Self {
        Readiness(store)
    }

    pub async fn check(&self) -> Result<()> {
        self.0.ping().await
    }
}
