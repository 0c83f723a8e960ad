//! Authentication sessions, Temporary Access Passes, failure counters and familiar sources: the
//! rows a sign-in needs on every node.

use crate::db::{self, Conn, Row};
use portcullis_core::kernel::clock::{from_unix_millis, unix_millis};
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::kernel::split_token::TokenKey;
use portcullis_core::methods::store::{FailureCount, LockRule, SlotTaking};
use portcullis_core::methods::tap::TemporaryAccessPass;
use portcullis_core::methods::totp::SoftwareOathMethod;
use portcullis_core::session::{AuthSession, SessionMethod};
use portcullis_core::signin::SignInFlow;
use portcullis_core::store::Change;
use portcullis_core::{Error, Result};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{instant, int, json_or, opt_text, text, to_json, uuid};
use crate::{SqlStore, error, write};

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn failure_count(row: &Row) -> Result<FailureCount> {
    let window_start = instant(row, "window_start")?;
    Ok(FailureCount {
        count: u32::try_from(int(row, "failures")?).unwrap_or(u32::MAX),
        window_start,
        // Counters written before 0007 have no latest failure; their start stands in.
        last_failure: crate::rows::opt_instant(row, "last_failure")?.unwrap_or(window_start),
    })
}

fn session(row: &Row) -> Result<AuthSession> {
    let methods: Vec<SessionMethod> = serde_json::from_str(&text(row, "methods")?)
        .map_err(|e| Error::Internal(format!("stored session methods are not readable: {e}")))?;
    Ok(AuthSession {
        id: uuid(row, "id")?,
        secret_hash: opt_text(row, "secret_hash")?,
        user_id: uuid(row, "user_id")?,
        methods,
        created: instant(row, "created")?,
        expires: instant(row, "expires")?,
    })
}

fn pass(row: &Row) -> Result<TemporaryAccessPass> {
    let used = match opt_text(row, "used_text")? {
        Some(ms) => Some(from_unix_millis(
            ms.parse()
                .map_err(|_| Error::Internal("bad used instant".into()))?,
        )),
        None => None,
    };
    Ok(TemporaryAccessPass {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        pass_hash: text(row, "pass_hash")?,
        start: instant(row, "start_date_time")?,
        lifetime_minutes: u32::try_from(int(row, "lifetime_minutes")?).unwrap_or(0),
        is_usable_once: int(row, "is_usable_once")? != 0,
        created: instant(row, "created")?,
        used,
    })
}

/// Applies the changes of this module inside `commit`'s transaction.
pub(crate) async fn apply(
    conn: &mut Conn<'_>,
    change: &Change,
    body: Option<String>,
) -> Result<()> {
    match change {
        Change::InsertSession(s) => async {
            let query = db::query(
                "INSERT INTO auth_sessions (id, secret_hash, user_id, methods, created, expires) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id(s.id))
            .bind(s.secret_hash.clone())
            .bind(id(s.user_id))
            .bind(json_or(body, &s.methods)?)
            .bind(unix_millis(s.created))
            .bind(unix_millis(s.expires));
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::AddSessionMethod { session_id, method } => async {
            // Read and write in the same transaction, holding the row from the read on: SQLite's
            // IMMEDIATE transaction holds the write lock already; PostgreSQL needs FOR UPDATE,
            // or two steps of one session both read the old list and the later write drops the
            // earlier one's method (the contract test `sessions` races them).
            let select = match conn.dialect() {
                crate::Dialect::Postgres => "SELECT id, secret_hash, user_id, methods, created, expires FROM auth_sessions WHERE id = $1 FOR UPDATE",
                crate::Dialect::Sqlite => "SELECT id, secret_hash, user_id, methods, created, expires FROM auth_sessions WHERE id = $1",
            };
            let row = conn.fetch_optional(db::query(select)
                .bind(id(*session_id))).await.map_err(error::storage)?
                .ok_or_else(|| Error::not_found("session", session_id.to_string()))?;
            let mut current = session(&row)?;
            current.methods.push(method.clone());
            let query = db::query("UPDATE auth_sessions SET methods = $2 WHERE id = $1")
                .bind(id(*session_id))
                .bind(to_json(&current.methods)?);
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::DeleteSession(session_id) => async {
            let query = db::query("DELETE FROM auth_sessions WHERE id = $1").bind(id(*session_id));
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::PutTemporaryAccessPass(tap) => async {
            let query = db::query("DELETE FROM temporary_access_passes WHERE user_id = $1").bind(id(tap.user_id));
            write::run(conn, change, query).await?;
            let query = db::query(
                "INSERT INTO temporary_access_passes (id, user_id, pass_hash, start_date_time, \
                 lifetime_minutes, is_usable_once, created, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id(tap.id))
            .bind(id(tap.user_id))
            .bind(tap.pass_hash.clone())
            .bind(unix_millis(tap.start))
            .bind(i64::from(tap.lifetime_minutes))
            .bind(i64::from(tap.is_usable_once))
            .bind(unix_millis(tap.created))
            .bind(tap.used.map(unix_millis));
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::DeleteTemporaryAccessPass { user_id, id: tap_id } => async {
            let query = db::query("DELETE FROM temporary_access_passes WHERE user_id = $1 AND id = $2")
                .bind(id(*user_id))
                .bind(id(*tap_id));
            let done = write::run(conn, change, query).await?;
            if done == 0 {
                return Err(Error::not_found("temporaryAccessPassAuthenticationMethod", tap_id.to_string()));
            }
            Ok(())
        }
        .await,
        Change::SetPassword { user_id, hash, changed } => async {
            let query = db::query("DELETE FROM passwords WHERE user_id = $1").bind(id(*user_id));
            write::run(conn, change, query).await?;
            let query = db::query("INSERT INTO passwords (user_id, hash, changed) VALUES ($1, $2, $3)")
                .bind(id(*user_id))
                .bind(hash.clone())
                .bind(unix_millis(*changed));
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::DeletePassword { user_id } => async {
            let query = db::query("DELETE FROM passwords WHERE user_id = $1").bind(id(*user_id));
            let done = write::run(conn, change, query).await?;
            if done == 0 {
                return Err(Error::not_found("passwordAuthenticationMethod", user_id.to_string()));
            }
            Ok(())
        }
        .await,
        Change::InsertSoftwareOath(m) => async {
            let query = db::query(
                "INSERT INTO software_oath_methods (id, user_id, display_name, sealed_secret, created, last_used_step) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id(m.id))
            .bind(id(m.user_id))
            .bind(m.display_name.clone())
            .bind(m.sealed_secret.clone())
            .bind(unix_millis(m.created))
            .bind(m.last_used_step);
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::DeleteSoftwareOath { user_id, id: method_id } => async {
            let query = db::query("DELETE FROM software_oath_methods WHERE user_id = $1 AND id = $2")
                .bind(id(*user_id))
                .bind(id(*method_id));
            let done = write::run(conn, change, query).await?;
            if done == 0 {
                return Err(Error::not_found("softwareOathAuthenticationMethod", method_id.to_string()));
            }
            Ok(())
        }
        .await,
        Change::InsertSignInFlow(flow) => async {
            let query = db::query(
                "INSERT INTO sign_in_flows (id, step, state, created, expires, secret_hash) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id(flow.id))
            .bind(flow.step.kind().as_str().to_string())
            .bind(json_or(body, flow.as_ref())?)
            .bind(unix_millis(flow.created))
            .bind(unix_millis(flow.expires))
            .bind(flow.secret_hash.clone());
            write::run(conn, change, query).await.map(|_| ())
        }
        .await,
        Change::AdvanceSignInFlow { flow, from } => async {
            // Compare-and-set on the step: of two requests that read the flow at the same step,
            // only the first write lands; the other is told the flow moved on.
            let query = db::query(
                "UPDATE sign_in_flows SET step = $2, state = $3 WHERE id = $1 AND step = $4",
            )
            .bind(id(flow.id))
            .bind(flow.step.kind().as_str().to_string())
            .bind(json_or(body, flow.as_ref())?)
            .bind(from.as_str().to_string());
            let done = write::run(conn, change, query).await?;
            if done == 0 {
                return Err(Error::Conflict {
                    code: ErrorCode::SignInStepOutOfOrder,
                    message: "This sign-in moved on while this step was being submitted; reload it.".into(),
                });
            }
            Ok(())
        }
        .await,
        other => Err(Error::Internal(format!("sessions::apply was handed {other:?}"))),
    }
}

/// The user's sessions, methods and familiar sources go with them.
pub(crate) async fn remove_user(conn: &mut Conn<'_>, change: &Change, user_id: Uuid) -> Result<()> {
    for sql in [
        "DELETE FROM auth_sessions WHERE user_id = $1",
        "DELETE FROM temporary_access_passes WHERE user_id = $1",
        "DELETE FROM passwords WHERE user_id = $1",
        "DELETE FROM software_oath_methods WHERE user_id = $1",
        "DELETE FROM familiar_sources WHERE user_id = $1",
    ] {
        write::run(conn, change, db::query(sql).bind(id(user_id))).await?;
    }
    Ok(())
}

impl SqlStore {
    pub(crate) async fn read_sign_in_flow(&self, flow_id: Uuid) -> Result<Option<SignInFlow>> {
        let row = self
            .fetch_optional(
                db::query("SELECT state, secret_hash FROM sign_in_flows WHERE id = $1")
                    .bind(id(flow_id)),
            )
            .await?;
        row.map(|row| {
            let mut flow: SignInFlow =
                serde_json::from_str(&text(&row, "state")?).map_err(|e| {
                    Error::Internal(format!("stored sign-in flow is not readable: {e}"))
                })?;
            // Kept beside the JSON, never in it (the JSON is rewritten at every step).
            flow.secret_hash = opt_text(&row, "secret_hash")?;
            Ok(flow)
        })
        .transpose()
    }

    /// By id for a split token; by the whole token's hash for a session begun before them,
    /// through an index that holds those sessions only (`0013_split_tokens.sql`).
    pub(crate) async fn read_session_by_token(
        &self,
        key: &TokenKey,
    ) -> Result<Option<AuthSession>> {
        // The person's account is checked in the same statement: a session is live only while
        // its person exists and is enabled, and reading the user after the session was one
        // more read on every request that carries a session (BENCHMARKS.md).
        let sql = match key {
            TokenKey::Id(_) => {
                "SELECT s.id, s.secret_hash, s.user_id, s.methods, s.created, s.expires \
                 FROM auth_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id = $1 AND u.account_enabled = 1 AND u.deleted IS NULL"
            }
            TokenKey::Legacy(_) => {
                "SELECT s.id, s.secret_hash, s.user_id, s.methods, s.created, s.expires \
                 FROM auth_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.legacy_token_hash = $1 AND u.account_enabled = 1 AND u.deleted IS NULL"
            }
        };
        let row = self
            .fetch_optional(db::query(sql).bind(key.as_text()))
            .await?;
        row.as_ref().map(session).transpose()
    }

    pub(crate) async fn read_temporary_access_pass(
        &self,
        user_id: Uuid,
    ) -> Result<Option<TemporaryAccessPass>> {
        // `used` is read as text so that a NULL decodes the same way through Any on both
        // databases.
        let row = self.fetch_optional(db::query(
            "SELECT id, user_id, pass_hash, start_date_time, lifetime_minutes, is_usable_once, created, \
             CAST(used AS TEXT) AS used_text FROM temporary_access_passes WHERE user_id = $1",
        )
        .bind(id(user_id))).await?;
        row.as_ref().map(pass).transpose()
    }

    /// One statement, so the database decides the race: only an unused pass is marked, and
    /// only one caller sees a row change.
    pub(crate) async fn consume_pass(&self, tap_id: Uuid, at: OffsetDateTime) -> Result<bool> {
        let done = self.execute_write(db::query("UPDATE temporary_access_passes SET used = $2 WHERE id = $1 AND used IS NULL AND is_usable_once = 1")
            .bind(id(tap_id))
            .bind(unix_millis(at))).await?;
        Ok(done == 1)
    }

    /// Takes a failure slot in one upsert. Its `WHERE` is the lock: when the stored count
    /// locks the key at `at`, nothing changes and no row comes back. PostgreSQL holds the row
    /// lock while it decides, and SQLite's one writer runs one statement at a time, so racing
    /// takers are judged one after another, each on the count the last one left.
    pub(crate) async fn take_slot(
        &self,
        key: &str,
        at: OffsetDateTime,
        rule: &LockRule,
    ) -> Result<SlotTaking> {
        if rule.locks.is_empty() {
            return Err(Error::Internal(
                "a lock rule needs at least one lock".into(),
            ));
        }
        let now = unix_millis(at);
        let stale_before = now - rule.window.whole_milliseconds() as i64;
        // The lock each count brings, past the threshold, as `CASE` arms over bound values
        // ($5 onwards): the schedule is core's, the statement only applies it.
        let mut arms = String::new();
        let last = rule.locks.len().saturating_sub(1);
        for i in 0..last {
            arms.push_str(&format!("WHEN {i} THEN ${} ", i + 5));
        }
        let sql = format!(
            "INSERT INTO failure_counters (counter_key, failures, window_start, last_failure, previous_failure) \
             VALUES ($1, 1, $2, $2, NULL) \
             ON CONFLICT (counter_key) DO UPDATE SET \
               failures = CASE WHEN failure_counters.window_start < $3 THEN 1 ELSE failure_counters.failures + 1 END, \
               window_start = CASE WHEN failure_counters.window_start < $3 THEN $2 ELSE failure_counters.window_start END, \
               previous_failure = failure_counters.last_failure, \
               last_failure = $2 \
             WHERE NOT (failure_counters.failures >= $4 AND \
               $2 < COALESCE(failure_counters.last_failure, failure_counters.window_start) + \
                 CASE failure_counters.failures - $4 {arms}ELSE ${} END) \
             RETURNING failures, window_start, last_failure",
            last + 5
        );
        let mut query = db::assembled(sql)
            .bind(key.to_string())
            .bind(now)
            .bind(stale_before)
            .bind(i64::from(rule.threshold));
        for lock in &rule.locks {
            query = query.bind(lock.whole_milliseconds() as i64);
        }
        match self.fetch_optional_write(query).await? {
            Some(row) => Ok(SlotTaking::Taken(failure_count(&row)?)),
            None => Ok(SlotTaking::Locked(self.read_failures(key).await?)),
        }
    }

    /// Gives a slot back: one fewer, and the failure before the slot's is the latest again if
    /// no slot was taken since (the count is still the one the take left). A count that
    /// reaches nothing is removed.
    pub(crate) async fn return_slot(&self, key: &str, taken: &FailureCount) -> Result<()> {
        let key = key.to_string();
        let taken = i64::from(taken.count);
        self.write(move |mut conn| {
            Box::pin(async move {
                conn.execute(
                    db::query(
                        "UPDATE failure_counters SET failures = failures - 1, \
                         last_failure = CASE WHEN failures = $2 \
                           THEN COALESCE(previous_failure, last_failure) ELSE last_failure END \
                         WHERE counter_key = $1 AND failures > 0",
                    )
                    .bind(key.clone())
                    .bind(taken),
                )
                .await
                .map_err(error::storage)?;
                conn.execute(
                    db::query(
                        "DELETE FROM failure_counters WHERE counter_key = $1 AND failures <= 0",
                    )
                    .bind(key),
                )
                .await
                .map_err(error::storage)?;
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn read_familiar_source(&self, user_id: Uuid, source: &str) -> Result<bool> {
        let row = self
            .fetch_optional(
                db::query(
                    "SELECT 1 AS known FROM familiar_sources WHERE user_id = $1 AND source = $2",
                )
                .bind(id(user_id))
                .bind(source.to_string()),
            )
            .await?;
        Ok(row.is_some())
    }

    /// Upserts the source's latest success and drops all but the `keep` most recent, in one
    /// transaction so that concurrent successes cannot leave more.
    pub(crate) async fn put_familiar_source(
        &self,
        user_id: Uuid,
        source: &str,
        at: OffsetDateTime,
        keep: u32,
    ) -> Result<()> {
        let user = id(user_id);
        let source = source.to_string();
        let at = unix_millis(at);
        self.write(move |mut conn| {
            Box::pin(async move {
                conn.execute(
                    db::query(
                        "INSERT INTO familiar_sources (user_id, source, last_success) VALUES ($1, $2, $3) \
                         ON CONFLICT (user_id, source) DO UPDATE SET last_success = \
                           CASE WHEN familiar_sources.last_success > $3 THEN familiar_sources.last_success ELSE $3 END",
                    )
                    .bind(user.clone())
                    .bind(source)
                    .bind(at),
                )
                .await
                .map_err(error::storage)?;
                conn.execute(
                    db::query(
                        "DELETE FROM familiar_sources WHERE user_id = $1 AND source NOT IN \
                         (SELECT source FROM familiar_sources WHERE user_id = $1 \
                          ORDER BY last_success DESC, source LIMIT $2)",
                    )
                    .bind(user)
                    .bind(i64::from(keep)),
                )
                .await
                .map_err(error::storage)?;
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn read_password(
        &self,
        user_id: Uuid,
    ) -> Result<Option<(String, OffsetDateTime)>> {
        let row = self
            .fetch_optional(
                db::query("SELECT hash, changed FROM passwords WHERE user_id = $1")
                    .bind(id(user_id)),
            )
            .await?;
        row.map(|r| Ok((text(&r, "hash")?, instant(&r, "changed")?)))
            .transpose()
    }

    pub(crate) async fn read_software_oath(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<SoftwareOathMethod>> {
        let rows = self.fetch_all(db::query(
            "SELECT id, user_id, display_name, sealed_secret, created, last_used_step FROM software_oath_methods \
             WHERE user_id = $1 ORDER BY created, id",
        )
        .bind(id(user_id))).await?;
        rows.iter()
            .map(|r| {
                Ok(SoftwareOathMethod {
                    id: uuid(r, "id")?,
                    user_id: uuid(r, "user_id")?,
                    display_name: text(r, "display_name")?,
                    sealed_secret: r.blob("sealed_secret")?,
                    created: instant(r, "created")?,
                    last_used_step: int(r, "last_used_step")?,
                })
            })
            .collect()
    }

    /// One statement: only a step later than the last one used moves it, so a code counts once.
    pub(crate) async fn advance_oath_step(&self, method_id: Uuid, step: i64) -> Result<bool> {
        let done = self.execute_write(db::query("UPDATE software_oath_methods SET last_used_step = $2 WHERE id = $1 AND last_used_step < $2")
            .bind(id(method_id))
            .bind(step)).await?;
        Ok(done == 1)
    }

    /// Replay's batches: in `(created, id)` order, which the `sign_ins_created_id` index
    /// serves, resuming after the previous batch's last row.
    pub(crate) async fn read_logged_decisions(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&portcullis_core::kernel::query::Cursor>,
        limit: usize,
    ) -> Result<Vec<portcullis_core::logs::store::LoggedDecision>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = match after {
            None => db::query(
                "SELECT id, created, user_principal_name, user_id, app_id, replay_context FROM sign_ins \
                 WHERE created >= $1 AND created <= $2 ORDER BY created, id LIMIT $3",
            )
            .bind(unix_millis(from))
            .bind(unix_millis(to))
            .bind(limit),
            Some(cursor) => db::query(
                "SELECT id, created, user_principal_name, user_id, app_id, replay_context FROM sign_ins \
                 WHERE created <= $2 AND (created > $3 OR (created = $3 AND id > $4)) AND created >= $1 \
                 ORDER BY created, id LIMIT $5",
            )
            .bind(unix_millis(from))
            .bind(unix_millis(to))
            .bind(unix_millis(cursor.created))
            .bind(cursor.id.clone())
            .bind(limit),
        };
        let rows = self.fetch_all(query).await?;
        rows.iter()
            .map(|r| {
                Ok(portcullis_core::logs::store::LoggedDecision {
                    id: uuid(r, "id")?,
                    created: instant(r, "created")?,
                    user_principal_name: text(r, "user_principal_name")?,
                    user_id: opt_text(r, "user_id")?
                        .map(|u| Uuid::parse_str(&u).map_err(|e| db::corrupt("user_id", e)))
                        .transpose()?,
                    app_id: text(r, "app_id")?,
                    context: r.opt_blob("replay_context")?,
                })
            })
            .collect()
    }

    pub(crate) async fn delete_expired_sign_in_state(&self, now: OffsetDateTime) -> Result<u64> {
        // Children before their grant: SQLite enforces foreign keys only when asked to.
        let statements = [
            "DELETE FROM sign_in_flows WHERE expires < $1",
            "DELETE FROM auth_sessions WHERE expires < $1",
            "DELETE FROM oauth_codes WHERE expires < $1",
            "DELETE FROM oauth_refresh_tokens WHERE expires < $1",
            "DELETE FROM oauth_codes WHERE grant_id IN (SELECT id FROM oauth_grants WHERE expires < $1)",
            "DELETE FROM oauth_refresh_tokens WHERE grant_id IN (SELECT id FROM oauth_grants WHERE expires < $1)",
            "DELETE FROM oauth_grants WHERE expires < $1",
        ];
        let mut removed = 0;
        for sql in statements {
            let done = self
                .execute_write(db::query(sql).bind(unix_millis(now)))
                .await?;
            removed += done;
        }
        Ok(removed)
    }

    pub(crate) async fn read_failures(&self, key: &str) -> Result<Option<FailureCount>> {
        let row = self.fetch_optional(db::query(
            "SELECT failures, window_start, last_failure FROM failure_counters WHERE counter_key = $1",
        )
        .bind(key.to_string())).await?;
        row.map(|r| failure_count(&r)).transpose()
    }

    pub(crate) async fn forget_failures(&self, key: &str) -> Result<()> {
        self.execute_write(
            db::query("DELETE FROM failure_counters WHERE counter_key = $1").bind(key.to_string()),
        )
        .await?;
        Ok(())
    }
}
