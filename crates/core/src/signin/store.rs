//! What the sign-in flow keeps in storage: flows in progress, and the grant and code a completed
//! flow issues to its application. A step's change travels with the method, session, log and
//! directory changes it causes, in one transaction ([`SignInChange`] wraps them).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::store::{Commit, DirectoryChange};
use crate::logs::store::LogChange;
use crate::methods::store::{MethodChange, MethodStore};
use crate::session::store::SessionChange;
use crate::signin::authorization::{AuthorizationCode, OAuthGrant};
use crate::signin::flow::SignInFlow;
use crate::signin::step::Step;

/// One change a sign-in step makes, or one of a layer below that must land with it.
#[derive(Debug, Clone, PartialEq)]
pub enum SignInChange {
    /// Boxed, like log entries: a flow is large next to most changes.
    InsertSignInFlow(Box<SignInFlow>),
    /// Stores the flow's new state if it is still at step `from`; otherwise the change fails
    /// with a conflict (`signInStepOutOfOrder`): another request moved it first.
    AdvanceSignInFlow {
        flow: Box<SignInFlow>,
        from: Step,
    },
    InsertOAuthGrant(Box<OAuthGrant>),
    InsertAuthorizationCode(AuthorizationCode),
    Method(MethodChange),
}

impl From<MethodChange> for SignInChange {
    fn from(change: MethodChange) -> Self {
        SignInChange::Method(change)
    }
}

impl From<DirectoryChange> for SignInChange {
    fn from(change: DirectoryChange) -> Self {
        SignInChange::Method(change.into())
    }
}

impl From<SessionChange> for SignInChange {
    fn from(change: SessionChange) -> Self {
        SignInChange::Method(change.into())
    }
}

impl From<LogChange> for SignInChange {
    fn from(change: LogChange) -> Self {
        SignInChange::Method(change.into())
    }
}

#[async_trait]
pub trait SignInStore: MethodStore + Commit<SignInChange> {
    /// The sign-in flow with this id, expired or not.
    async fn sign_in_flow(&self, id: Uuid) -> Result<Option<SignInFlow>>;

    /// Deletes what has expired by `now` and can no longer be used: sign-in flows, sessions,
    /// and grants with their codes and refresh tokens. How many rows went.
    async fn purge_expired_sign_in_state(&self, now: OffsetDateTime) -> Result<u64>;
}
