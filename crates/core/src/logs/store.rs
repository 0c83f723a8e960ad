//! What the sign-in log keeps in storage: one entry per attempt, purged after its retention.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::Result;
use crate::directory::store::{Commit, DirectoryStore};
use crate::kernel::query::{ListQuery, Page};
use crate::logs::sign_in::SignInLogEntry;

/// One change to the sign-in log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogChange {
    /// Boxed: an entry is much larger than every other change.
    InsertSignInLogEntry(Box<SignInLogEntry>),
}

#[async_trait]
pub trait LogStore: DirectoryStore + Commit<LogChange> {
    /// Newest first.
    async fn list_sign_ins(&self, query: &ListQuery) -> Result<Page<SignInLogEntry>>;

    /// Deletes sign-in log entries older than `before`; how many went.
    async fn purge_sign_ins(&self, before: OffsetDateTime) -> Result<u64>;
}
