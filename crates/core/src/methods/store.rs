//! What the authentication methods keep in storage: Temporary Access Passes, password hashes,
//! software OATH methods and their last used time step, smart lockout's failure counters, and
//! (through [`PasskeyStore`]) passkeys and their ceremonies.
//!
//! A method's change can travel with session, sign-in log and directory changes in one
//! transaction ([`MethodChange`] wraps them): a first factor creates its session and logs the
//! attempt atomically.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::store::{Commit, DirectoryChange};
use crate::logs::store::{LogChange, LogStore};
use crate::methods::passkeys::{PasskeyStore, PasskeyUse};
use crate::methods::tap::TemporaryAccessPass;
use crate::methods::totp::SoftwareOathMethod;
use crate::session::store::{SessionChange, SessionStore};

/// One change to a method, or to a layer below that must land with it.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodChange {
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
    DeleteSoftwareOath {
        user_id: Uuid,
        id: Uuid,
    },
    /// Uses up a passkey ceremony (its challenge) if it is still there; otherwise the change
    /// fails with a conflict (`passkeyChallengeNotFound`): another request used it first.
    TakeCeremony(Uuid),
    /// Records a passkey sign-in. The signature counter may only move forward (or stay at
    /// zero for authenticators that keep none); otherwise the change fails with a conflict
    /// (`passkeyCounterNotAdvanced`), so two nodes cannot both accept one counter value.
    RecordPasskeyUse(PasskeyUse),
    Directory(DirectoryChange),
    Session(SessionChange),
    Log(LogChange),
}

impl From<DirectoryChange> for MethodChange {
    fn from(change: DirectoryChange) -> Self {
        MethodChange::Directory(change)
    }
}

impl From<SessionChange> for MethodChange {
    fn from(change: SessionChange) -> Self {
        MethodChange::Session(change)
    }
}

impl From<LogChange> for MethodChange {
    fn from(change: LogChange) -> Self {
        MethodChange::Log(change)
    }
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

#[async_trait]
pub trait MethodStore: SessionStore + LogStore + PasskeyStore + Commit<MethodChange> {
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

    /// The failures counted under `key`, if any.
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>>;

    /// Forgets the failures under `key` (after a success).
    async fn clear_failures(&self, key: &str) -> Result<()>;

    /// The user's password hash and when it was set.
    async fn password(&self, user_id: Uuid) -> Result<Option<(String, OffsetDateTime)>>;

    /// The user's software OATH (TOTP) methods.
    async fn software_oath_methods(&self, user_id: Uuid) -> Result<Vec<SoftwareOathMethod>>;

    /// Records that a TOTP time step was used. `true` only if it is later than every step used
    /// before with this method: a code is accepted once, even by racing nodes.
    async fn use_software_oath_step(&self, id: Uuid, step: i64) -> Result<bool>;
}
