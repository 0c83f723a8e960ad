//! [`PasskeyStore`] on SQLite and PostgreSQL: the `passkeys` and `passkey_ceremonies` tables of
//! `0002_passkeys.sql`.
//!
//! The two rules that make the ceremonies safe live in single statements here: a ceremony is
//! taken with `DELETE … RETURNING`, so of any number of callers on any number of nodes exactly
//! one gets it; a sign-in's counter is written with a conditional `UPDATE` that only moves it
//! forward, so a replayed or cloned counter value cannot be accepted twice. The limit of
//! passkeys per person is checked inside the inserting transaction, with the person's row
//! locked on PostgreSQL (SQLite's write lock already serializes writers).
//!
//! What it must never do: decide anything about passkeys beyond keeping these rows consistent.

use async_trait::async_trait;
use portcullis_core::audit::DirectoryAudit;
use portcullis_core::clock::{from_unix_millis, unix_millis};
use portcullis_core::passkeys::{
    AttestationLevel, Ceremony, CeremonyKind, PasskeyStore, PasskeyUse, StoredPasskey,
};
use portcullis_core::store::Change;
use portcullis_core::{Error, Result};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{self, Violation};
use crate::rows::{int, opt_text, text, uuid};
use crate::write::{begin_write, insert_audit};
use crate::{Dialect, SqlStore};

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, display_name, aaguid, model, \
     attestation_level, backup_eligible, backup_state, sign_count, credential, created, last_used";

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn corrupt(column: &str, detail: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored column '{column}' cannot be read: {detail}"))
}

fn passkey(row: &AnyRow) -> Result<StoredPasskey> {
    let level = text(row, "attestation_level")?;
    let credential_id =
        hex::decode(text(row, "credential_id")?).map_err(|e| corrupt("credential_id", e))?;
    let last_used = row
        .try_get::<Option<i64>, _>("last_used")
        .map_err(|e| corrupt("last_used", e))?;
    Ok(StoredPasskey {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        credential_id,
        display_name: text(row, "display_name")?,
        aaguid: text(row, "aaguid")?,
        model: opt_text(row, "model")?,
        attestation_level: AttestationLevel::parse(&level)
            .ok_or_else(|| corrupt("attestation_level", &level))?,
        backup_eligible: int(row, "backup_eligible")? != 0,
        backup_state: int(row, "backup_state")? != 0,
        sign_count: u32::try_from(int(row, "sign_count")?).map_err(|e| corrupt("sign_count", e))?,
        credential: text(row, "credential")?,
        created: from_unix_millis(int(row, "created")?),
        last_used: last_used.map(from_unix_millis),
    })
}

fn ceremony(row: &AnyRow) -> Result<Ceremony> {
    let kind = text(row, "kind")?;
    let user_id = opt_text(row, "user_id")?
        .map(|u| Uuid::parse_str(&u).map_err(|e| corrupt("user_id", e)))
        .transpose()?;
    Ok(Ceremony {
        id: uuid(row, "id")?,
        kind: CeremonyKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        user_id,
        state: text(row, "state")?,
        expires: from_unix_millis(int(row, "expires")?),
    })
}

/// The counter update of a sign-in. The condition is the check: the counter must move forward,
/// except for authenticators that keep no counter at all (zero before and after).
fn record_use(
    used: &PasskeyUse,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "UPDATE passkeys SET sign_count = $2, backup_eligible = $3, backup_state = $4, \
         credential = $5, last_used = $6 \
         WHERE id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
    )
    .bind(id(used.id))
    .bind(i64::from(used.sign_count))
    .bind(i64::from(used.backup_eligible))
    .bind(i64::from(used.backup_state))
    .bind(used.credential.clone())
    .bind(unix_millis(used.at))
}

/// The passkey changes a sign-in commits with the rest of its step ([`Store::commit`]).
///
/// [`Store::commit`]: portcullis_core::store::Store::commit
pub(crate) async fn apply(conn: &mut sqlx::AnyConnection, change: &Change) -> Result<()> {
    match change {
        Change::TakeCeremony(ceremony_id) => {
            let done = sqlx::query("DELETE FROM passkey_ceremonies WHERE id = $1")
                .bind(id(*ceremony_id))
                .execute(&mut *conn)
                .await
                .map_err(error::storage)?;
            if done.rows_affected() == 0 {
                return Err(Error::Conflict {
                    code: "passkeyChallengeNotFound",
                    message: "This passkey challenge was already used; start again.".into(),
                });
            }
            Ok(())
        }
        Change::RecordPasskeyUse(used) => {
            let done = record_use(used)
                .execute(&mut *conn)
                .await
                .map_err(error::storage)?;
            if done.rows_affected() == 0 {
                return Err(Error::Conflict {
                    code: portcullis_core::passkeys::COUNTER_NOT_ADVANCED,
                    message: "The passkey's signature counter did not advance.".into(),
                });
            }
            Ok(())
        }
        other => Err(Error::Internal(format!(
            "passkeys::apply was handed {other:?}"
        ))),
    }
}

#[async_trait]
impl PasskeyStore for SqlStore {
    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<StoredPasskey>> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created, id"
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id(user_id))
            .fetch_all(&self.pool)
            .await
            .map_err(error::storage)?;
        found.iter().map(passkey).collect()
    }

    async fn passkey(&self, passkey_id: Uuid) -> Result<Option<StoredPasskey>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id(passkey_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(error::storage)?
            .as_ref()
            .map(passkey)
            .transpose()
    }

    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<StoredPasskey>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hex::encode(credential_id))
            .fetch_optional(&self.pool)
            .await
            .map_err(error::storage)?
            .as_ref()
            .map(passkey)
            .transpose()
    }

    async fn insert_passkey(
        &self,
        new: &StoredPasskey,
        limit: usize,
        audit: DirectoryAudit,
    ) -> Result<()> {
        let mut tx = begin_write(self).await?;
        // On PostgreSQL two registrations for one person would otherwise both count nine and
        // both insert; locking the person's row makes the second wait for the first.
        let lock = match self.dialect {
            Dialect::Postgres => "SELECT id FROM users WHERE id = $1 FOR UPDATE",
            Dialect::Sqlite => "SELECT id FROM users WHERE id = $1",
        };
        let owner = sqlx::query(lock)
            .bind(id(new.user_id))
            .fetch_optional(&mut *tx)
            .await
            .map_err(error::storage)?;
        if owner.is_none() {
            return Err(Error::not_found("user", new.user_id.to_string()));
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM passkeys WHERE user_id = $1")
            .bind(id(new.user_id))
            .fetch_one(&mut *tx)
            .await
            .map_err(error::storage)?
            .try_get("n")
            .map_err(|e| corrupt("n", e))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
            return Err(Error::Conflict {
                code: "passkeyLimitReached",
                message: format!(
                    "This account already has {limit} passkeys, the most allowed; remove one first."
                ),
            });
        }
        let sql = format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id(new.id))
            .bind(id(new.user_id))
            .bind(hex::encode(&new.credential_id))
            .bind(new.display_name.clone())
            .bind(new.aaguid.clone())
            .bind(new.model.clone())
            .bind(new.attestation_level.as_str())
            .bind(i64::from(new.backup_eligible))
            .bind(i64::from(new.backup_state))
            .bind(i64::from(new.sign_count))
            .bind(new.credential.clone())
            .bind(unix_millis(new.created))
            .bind(new.last_used.map(unix_millis))
            .execute(&mut *tx)
            .await;
        if let Err(err) = inserted {
            return Err(match error::classify(err) {
                Ok(Violation::Unique { .. }) => Error::Conflict {
                    code: "passkeyAlreadyRegistered",
                    message: "This passkey is already registered.".to_string(),
                },
                Ok(Violation::ForeignKey) => Error::not_found("user", new.user_id.to_string()),
                Err(other) => other,
            });
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(error::storage)
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        passkey_id: Uuid,
        display_name: &str,
        audit: DirectoryAudit,
    ) -> Result<()> {
        let mut tx = begin_write(self).await?;
        let done =
            sqlx::query("UPDATE passkeys SET display_name = $3 WHERE user_id = $1 AND id = $2")
                .bind(id(user_id))
                .bind(id(passkey_id))
                .bind(display_name.to_string())
                .execute(&mut *tx)
                .await
                .map_err(error::storage)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(
                "fido2AuthenticationMethod",
                passkey_id.to_string(),
            ));
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(error::storage)
    }

    async fn delete_passkey(
        &self,
        user_id: Uuid,
        passkey_id: Uuid,
        audit: DirectoryAudit,
    ) -> Result<()> {
        let mut tx = begin_write(self).await?;
        let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
            .bind(id(user_id))
            .bind(id(passkey_id))
            .execute(&mut *tx)
            .await
            .map_err(error::storage)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(
                "fido2AuthenticationMethod",
                passkey_id.to_string(),
            ));
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(error::storage)
    }

    async fn ceremony(&self, ceremony_id: Uuid) -> Result<Option<Ceremony>> {
        sqlx::query(
            "SELECT id, kind, user_id, state, expires FROM passkey_ceremonies WHERE id = $1",
        )
        .bind(id(ceremony_id))
        .fetch_optional(&self.pool)
        .await
        .map_err(error::storage)?
        .as_ref()
        .map(ceremony)
        .transpose()
    }

    async fn insert_ceremony(&self, ceremony: &Ceremony) -> Result<()> {
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id, kind, user_id, state, expires) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id(ceremony.id))
        .bind(ceremony.kind.as_str())
        .bind(ceremony.user_id.map(id))
        .bind(ceremony.state.clone())
        .bind(unix_millis(ceremony.expires))
        .execute(&self.writer)
        .await
        .map_err(error::storage)?;
        Ok(())
    }

    async fn take_ceremony(&self, ceremony_id: Uuid) -> Result<Option<Ceremony>> {
        sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE id = $1 \
             RETURNING id, kind, user_id, state, expires",
        )
        .bind(id(ceremony_id))
        .fetch_optional(&self.writer)
        .await
        .map_err(error::storage)?
        .as_ref()
        .map(ceremony)
        .transpose()
    }

    async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query("DELETE FROM passkey_ceremonies WHERE expires < $1")
            .bind(unix_millis(now))
            .execute(&self.writer)
            .await
            .map_err(error::storage)?;
        Ok(done.rows_affected())
    }
}
