//! The sign-in log's rows: writing an entry compact, reading either format back, and the policy
//! revisions the compact entries point at (`sign_in_policy_revisions`, migration 0012).
//!
//! An entry's statement is made whole on the caller's thread ([`prepare`]), so the one writer
//! only runs it. A revision is written in the transaction of an entry that names it, the first
//! time this store writes one that names it (and again at most hourly, to say it is still in
//! use), so no sign-in waits for a transaction of its own and the table gains a row only when
//! the policies change. Revisions are immutable and keyed by their content, so any node may keep
//! those it has read for as long as it likes.
//!
//! What it must never do: read back an entry with results it cannot vouch for (core's
//! `compact` refuses them), or purge a revision an entry still names (see [`purge`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use portcullis_core::Error;
use portcullis_core::kernel::clock::unix_millis;
use portcullis_core::kernel::query::{ListQuery, Page};
use portcullis_core::logs::compact::{self, EntryColumns, PolicyRevision};
use portcullis_core::logs::sign_in::SignInLogEntry;
use portcullis_core::store::Change;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::SqlStore;
use crate::db::{self, Query, Row};
use crate::list;
use crate::rows;

/// How long a store trusts that a revision it wrote or confirmed is still stored before it
/// confirms it again with the next entry that names it.
const CONFIRM_EVERY_MS: i64 = 60 * 60 * 1000;
/// A revision is purged only once it has gone unconfirmed this much longer than the entries
/// being purged: more than `CONFIRM_EVERY_MS`, so no entry written since still names it.
const PURGE_MARGIN_MS: i64 = 24 * 60 * 60 * 1000;
/// Revisions kept in memory once read (each is the names of one policy set).
const REVISIONS_KEPT: usize = 64;

/// What a store remembers of the revisions: those it knows to be stored (and since when), and
/// those it has read.
#[derive(Default)]
pub(crate) struct LogCache {
    confirmed: Mutex<HashMap<String, i64>>,
    read: Mutex<HashMap<String, Arc<PolicyRevision>>>,
}

/// The statements of the sign-in log entries of one commit, made before it is queued: each
/// with the index of its change (to name it in an error), and the revisions to mark stored
/// once the commit succeeds.
#[derive(Default)]
pub(crate) struct Prepared {
    pub statements: Vec<(usize, Query)>,
    pub revisions: Vec<String>,
}

impl LogCache {
    /// Marks revisions written by a commit that succeeded.
    pub(crate) fn confirmed(&self, revisions: Vec<String>, now: i64) {
        if revisions.is_empty() {
            return;
        }
        let mut confirmed = self.confirmed.lock().expect("revision cache");
        if confirmed.len() > REVISIONS_KEPT {
            confirmed.clear();
        }
        for key in revisions {
            confirmed.insert(key, now);
        }
    }

    fn needs_writing(&self, key: &str, now: i64) -> bool {
        let confirmed = self.confirmed.lock().expect("revision cache");
        !confirmed
            .get(key)
            .is_some_and(|at| now - at < CONFIRM_EVERY_MS && now >= *at)
    }
}

/// The statements for every sign-in log entry among `changes`.
pub(crate) fn prepare(cache: &LogCache, changes: &[Change]) -> Prepared {
    let now = unix_millis(OffsetDateTime::now_utc());
    let mut prepared = Prepared::default();
    for (index, change) in changes.iter().enumerate() {
        let Change::InsertSignInLogEntry(entry) = change else {
            continue;
        };
        let encoded = compact::encode_entry(entry);
        if let Some(revision) = &encoded.revision {
            let key = revision.key();
            if !prepared.revisions.contains(&key) && cache.needs_writing(&key, now) {
                prepared.statements.push((
                    index,
                    db::query(
                        "INSERT INTO sign_in_policy_revisions (revision, body, last_used) \
                         VALUES ($1, $2, $3) \
                         ON CONFLICT (revision) DO UPDATE SET last_used = excluded.last_used",
                    )
                    .bind(key.clone())
                    .bind(revision.bytes().to_vec())
                    .bind(now),
                ));
                prepared.revisions.push(key);
            }
        }
        prepared.statements.push((index, insert(entry, encoded)));
    }
    prepared
}

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn insert(entry: &SignInLogEntry, encoded: compact::EncodedEntry) -> Query {
    db::query(
        "INSERT INTO sign_ins (id, created, user_principal_name, user_id, app_id, app_display_name, \
         ip_address, error_code, conditional_access_status, correlation_id, client_app_used, body, \
         replay_context, policy_revision, entry) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', $12, $13, $14)",
    )
    .bind(id(entry.id))
    .bind(unix_millis(entry.created_date_time))
    .bind(entry.user_principal_name.clone())
    .bind(entry.user_id.map(id))
    .bind(entry.app_id.clone())
    .bind(entry.app_display_name.clone())
    .bind(entry.ip_address.clone())
    .bind(i64::from(entry.status.error_code))
    .bind(entry.conditional_access_status.clone())
    .bind(id(entry.correlation_id))
    .bind(entry.client_app_used.clone())
    .bind(entry.replay_context.as_ref().map(|c| c.encode()))
    .bind(encoded.revision.as_ref().map(|r| r.key()))
    .bind(encoded.bytes)
}

/// The columns a listing of sign-ins reads: every column but the replay context.
macro_rules! sign_in_columns {
    () => {
        "id, created, user_principal_name, user_id, app_id, app_display_name, ip_address, \
         error_code, conditional_access_status, correlation_id, client_app_used, body, \
         policy_revision, entry"
    };
}
pub(crate) use sign_in_columns;

fn columns(row: &Row) -> Result<EntryColumns, Error> {
    Ok(EntryColumns {
        id: rows::uuid(row, "id")?,
        created: rows::instant(row, "created")?,
        user_principal_name: rows::text(row, "user_principal_name")?,
        user_id: rows::opt_text(row, "user_id")?
            .map(|u| Uuid::parse_str(&u).map_err(|e| db::corrupt("user_id", e)))
            .transpose()?,
        app_id: rows::text(row, "app_id")?,
        app_display_name: rows::text(row, "app_display_name")?,
        ip_address: rows::opt_text(row, "ip_address")?,
        error_code: u32::try_from(rows::int(row, "error_code")?)
            .map_err(|e| db::corrupt("error_code", e))?,
        conditional_access_status: rows::text(row, "conditional_access_status")?,
        correlation_id: rows::uuid(row, "correlation_id")?,
        client_app_used: rows::text(row, "client_app_used")?,
    })
}

/// One row as an entry: compact when it has an `entry`, the previous format's JSON otherwise.
fn entry(
    row: &Row,
    revisions: &HashMap<String, Arc<PolicyRevision>>,
) -> Result<SignInLogEntry, Error> {
    match row.opt_blob("entry")? {
        Some(bytes) => {
            let revision = match row.opt_text("policy_revision")? {
                Some(key) => Some(revisions.get(&key).cloned().ok_or_else(|| {
                    Error::from(compact::CompactError::MissingRevision(key.clone()))
                })?),
                None => None,
            };
            Ok(compact::decode_entry(columns(row)?, &bytes, revision)?)
        }
        None => {
            let body = rows::text(row, "body")?;
            serde_json::from_str(&body)
                .map_err(|e| Error::Internal(format!("stored sign-in entry: {e}")))
        }
    }
}

impl SqlStore {
    /// A page of the sign-in log, newest first, each entry's policies still packed: they are
    /// expanded one at a time as the entry is written out.
    pub(crate) async fn sign_in_page(
        &self,
        query: &ListQuery,
    ) -> Result<Page<SignInLogEntry>, Error> {
        let (found, next) = list::page(self, &list::SIGN_INS, query).await?;
        let count = list::count(self, &list::SIGN_INS, query).await?;
        let mut keys: Vec<String> = Vec::new();
        for row in &found {
            if let Some(key) = row.opt_text("policy_revision")?
                && !keys.contains(&key)
            {
                keys.push(key);
            }
        }
        let revisions = self.policy_revisions(keys).await?;
        let items = found
            .iter()
            .map(|row| entry(row, &revisions))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Page { items, next, count })
    }

    /// The revisions named, from memory or in one read.
    async fn policy_revisions(
        &self,
        keys: Vec<String>,
    ) -> Result<HashMap<String, Arc<PolicyRevision>>, Error> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let read = self.log.read.lock().expect("revision cache");
            for key in keys {
                match read.get(&key) {
                    Some(revision) => {
                        found.insert(key, revision.clone());
                    }
                    None => missing.push(key),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let placeholders = (1..=missing.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut statement = db::assembled(format!(
            "SELECT revision, body FROM sign_in_policy_revisions WHERE revision IN ({placeholders})"
        ));
        for key in &missing {
            statement = statement.bind(key.clone());
        }
        let rows = self.fetch_all(statement).await?;
        let mut read = self.log.read.lock().expect("revision cache");
        if read.len() + rows.len() > REVISIONS_KEPT {
            read.clear();
        }
        for row in &rows {
            let key = rows::text(row, "revision")?;
            let revision = Arc::new(PolicyRevision::decode(&key, row.blob("body")?)?);
            read.insert(key.clone(), revision.clone());
            found.insert(key, revision);
        }
        Ok(found)
    }

    /// Deletes the entries created before `before`, and the revisions no entry names that have
    /// gone unconfirmed since well before `before` (a store confirms a revision it writes
    /// entries against at least hourly, so none is about to be named again).
    pub(crate) async fn purge_sign_in_log(&self, before: OffsetDateTime) -> Result<u64, Error> {
        let done = self
            .execute_write(
                db::query("DELETE FROM sign_ins WHERE created < $1").bind(unix_millis(before)),
            )
            .await?;
        // Both conditions: the margin covers a store that trusts its last confirmation; the
        // check for naming entries covers clocks that disagree. A revision is a candidate only
        // a day after its policies last decided a sign-in, so the check is rarely run.
        self.execute_write(
            db::query(
                "DELETE FROM sign_in_policy_revisions WHERE last_used < $1 AND NOT EXISTS \
                 (SELECT 1 FROM sign_ins WHERE sign_ins.policy_revision = sign_in_policy_revisions.revision)",
            )
            .bind(unix_millis(before) - PURGE_MARGIN_MS),
        )
        .await?;
        Ok(done)
    }
}
