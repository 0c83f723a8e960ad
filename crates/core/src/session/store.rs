//! What sessions keep in storage: the session row (the hash of its token's secret part, never
//! the token) and the methods satisfied in it.

use async_trait::async_trait;
use uuid::Uuid;

use crate::Result;
use crate::directory::store::{Commit, DirectoryStore};
use crate::kernel::split_token::TokenKey;
use crate::session::{AuthSession, SessionMethod};

/// One change to sessions.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionChange {
    InsertSession(AuthSession),
    /// Records one more method satisfied in a session.
    AddSessionMethod {
        session_id: Uuid,
        method: SessionMethod,
    },
    DeleteSession(Uuid),
}

#[async_trait]
pub trait SessionStore: DirectoryStore + Commit<SessionChange> {
    /// The session a token names, expired or not, without judging the token's secret (core
    /// does): by id for a split token, by the hash of the whole token for one from before; only
    /// while its person exists and their account is enabled (checked in the same read), so a
    /// session of an account that is disabled or gone is not found.
    async fn session_by_token(&self, key: &TokenKey) -> Result<Option<AuthSession>>;
}
