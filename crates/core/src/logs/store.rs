//! What the sign-in log keeps in storage: one entry per attempt, purged after its retention.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::store::{Commit, DirectoryStore};
use crate::kernel::query::{Cursor, ListQuery, Page};
use crate::logs::sign_in::SignInLogEntry;

/// One change to the sign-in log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogChange {
    /// Boxed: an entry is much larger than every other change.
    InsertSignInLogEntry(Box<SignInLogEntry>),
}

/// What replay reads of one entry: who, what, when, and the stored replay context (the bytes
/// of a [`ReplayContext`](crate::logs::replay_context::ReplayContext); `None` for an entry
/// logged without one).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedDecision {
    pub id: Uuid,
    pub created: OffsetDateTime,
    pub user_principal_name: String,
    pub user_id: Option<Uuid>,
    pub app_id: String,
    pub context: Option<Vec<u8>>,
}

#[async_trait]
pub trait LogStore: DirectoryStore + Commit<LogChange> {
    /// Newest first.
    async fn list_sign_ins(&self, query: &ListQuery) -> Result<Page<SignInLogEntry>>;

    /// Entries created in `[from, to]`, oldest first, after `after` (the created time and id
    /// of the last entry of the previous batch), at most `limit`: replay reads the log in
    /// batches without the entries' bodies.
    async fn logged_decisions(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<LoggedDecision>>;

    /// Deletes sign-in log entries older than `before`; how many went.
    async fn purge_sign_ins(&self, before: OffsetDateTime) -> Result<u64>;
}
