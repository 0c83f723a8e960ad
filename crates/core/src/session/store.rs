//! What sessions keep in storage: the session row (its token's hash, never the token) and the
//! methods satisfied in it.

use async_trait::async_trait;
use uuid::Uuid;

use crate::Result;
use crate::directory::store::{Commit, DirectoryStore};
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
    /// The session whose token hashes to this, expired or not, while its person exists and
    /// their account is enabled (checked in the same read): a session of an account that is
    /// disabled or gone is not found.
    async fn session_by_token_hash(&self, token_hash: &str) -> Result<Option<AuthSession>>;
}
