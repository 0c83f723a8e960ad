//! What the authentication methods keep in storage: Temporary Access Passes, password hashes,
//! software OATH methods and their last used time step, smart lockout's failure counters and
//! the sources each account has signed in from, and (through [`PasskeyStore`]) passkeys and
//! their ceremonies.
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

/// How a failure counter locks, handed to the store so that it can refuse a slot in the same
/// statement that takes one (the store decides nothing: the numbers are core's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRule {
    /// The count at which the key locks.
    pub threshold: u32,
    /// A count restarts this long after its window began.
    pub window: time::Duration,
    /// How long the key stays locked after its latest failure: `locks[0]` at the threshold,
    /// `locks[i]` at `i` failures past it, the last entry for every count beyond. Never empty.
    pub locks: Vec<time::Duration>,
}

impl LockRule {
    /// The lock a count brings, counted from its latest failure, if it brings one.
    pub fn lock_for(&self, count: u32) -> Option<time::Duration> {
        let past = usize::try_from(count.checked_sub(self.threshold)?).unwrap_or(usize::MAX);
        self.locks.get(past).or(self.locks.last()).copied()
    }
}

/// What taking a failure slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotTaking {
    /// The slot is taken: the count, this attempt included.
    Taken(FailureCount),
    /// The key is locked and nothing was counted. The count as read just after (absent, or no
    /// longer locking, if the lock ended or was cleared in between).
    Locked(Option<FailureCount>),
}

#[async_trait]
pub trait MethodStore: SessionStore + LogStore + PasskeyStore + Commit<MethodChange> {
    /// The user's pass, if one exists (used or not, valid or not).
    async fn temporary_access_pass(&self, user_id: Uuid) -> Result<Option<TemporaryAccessPass>>;

    /// Marks a one-time pass used. `true` for exactly one caller, however many nodes and tasks
    /// race: the pass must exist and be unused.
    async fn consume_temporary_access_pass(&self, id: Uuid, at: OffsetDateTime) -> Result<bool>;

    /// Takes a failure slot under `key` before a secret is compared, in one conditional
    /// statement: unless `rule` says the key is locked at `at`, the count goes up by one (a
    /// window older than `rule.window` starts again at this attempt) and the count with this
    /// attempt in it comes back. However many callers race on however many nodes, each sees
    /// its own count, and none is let through while a lock holds.
    async fn take_failure_slot(
        &self,
        key: &str,
        at: OffsetDateTime,
        rule: &LockRule,
    ) -> Result<SlotTaking>;

    /// Gives back a slot taken by [`MethodStore::take_failure_slot`] that did not end in a
    /// failure: the count goes down by one and, if no other slot was taken since (`taken` is
    /// what the take returned), the latest failure is again the one before it, so giving back
    /// never starts or lengthens a lock.
    async fn return_failure_slot(&self, key: &str, taken: &FailureCount) -> Result<()>;

    /// The failures counted under `key`, if any.
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>>;

    /// Forgets the failures under `key` (after a success).
    async fn clear_failures(&self, key: &str) -> Result<()>;

    /// Whether `user_id` has signed in successfully from `source` (one of the sources kept
    /// for them by [`MethodStore::remember_familiar_source`]).
    async fn is_familiar_source(&self, user_id: Uuid, source: &str) -> Result<bool>;

    /// Records a successful sign-in of `user_id` from `source` at `at`, keeping only the
    /// `keep` sources they succeeded from most recently.
    async fn remember_familiar_source(
        &self,
        user_id: Uuid,
        source: &str,
        at: OffsetDateTime,
        keep: u32,
    ) -> Result<()>;

    /// The user's password hash and when it was set.
    async fn password(&self, user_id: Uuid) -> Result<Option<(String, OffsetDateTime)>>;

    /// The user's software OATH (TOTP) methods.
    async fn software_oath_methods(&self, user_id: Uuid) -> Result<Vec<SoftwareOathMethod>>;

    /// Records that a TOTP time step was used. `true` only if it is later than every step used
    /// before with this method: a code is accepted once, even by racing nodes.
    async fn use_software_oath_step(&self, id: Uuid, step: i64) -> Result<bool>;
}
