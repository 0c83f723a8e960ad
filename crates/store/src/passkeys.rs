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
use portcullis_core::directory::audit::DirectoryAudit;
use portcullis_core::directory::model::User;
use portcullis_core::kernel::clock::{from_unix_millis, unix_millis};
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::methods::passkeys::{
    AttestationLevel, Ceremony, CeremonyKind, PasskeyStore, PasskeyUse, StoredPasskey,
};
use portcullis_core::store::Change;
use portcullis_core::{Error, Result};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{self, Conn, Query, Row};
use crate::error::{self, Violation};
use crate::rows::{corrupt, int, opt_text, text, uuid};
use crate::write::insert_audit;
use crate::{Dialect, SqlStore};

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, display_name, aaguid, model, \
     attestation_level, backup_eligible, backup_state, sign_count, credential, created, last_used";

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn passkey(row: &Row) -> Result<StoredPasskey> {
    let level = text(row, "attestation_level")?;
    let credential_id =
        hex::decode(text(row, "credential_id")?).map_err(|e| corrupt("credential_id", e))?;
    let last_used = row.opt_int("last_used")?;
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

fn ceremony(row: &Row) -> Result<Ceremony> {
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
fn record_use(used: &PasskeyUse) -> Query {
    db::query(
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
pub(crate) async fn apply(conn: &mut Conn<'_>, change: &Change) -> Result<()> {
    match change {
        Change::TakeCeremony(ceremony_id) => {
            let done = conn
                .execute(
                    db::query("DELETE FROM passkey_ceremonies WHERE id = $1")
                        .bind(id(*ceremony_id)),
                )
                .await
                .map_err(error::storage)?;
            if done == 0 {
                return Err(Error::Conflict {
                    code: ErrorCode::PasskeyChallengeNotFound,
                    message: "This passkey challenge was already used; start again.".into(),
                });
            }
            Ok(())
        }
        Change::RecordPasskeyUse(used) => {
            let done = conn
                .execute(record_use(used))
                .await
                .map_err(error::storage)?;
            if done == 0 {
                return Err(Error::Conflict {
                    code: portcullis_core::methods::passkeys::COUNTER_NOT_ADVANCED,
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

impl SqlStore {
    /// Runs `change`, which must touch the one passkey, with its audit entry; 404 when the
    /// person has no such passkey.
    async fn change_one_passkey(
        &self,
        change: Query,
        passkey_id: Uuid,
        audit: DirectoryAudit,
    ) -> Result<()> {
        self.write(move |mut tx| {
            Box::pin(async move {
                let done = tx.execute(change).await.map_err(error::storage)?;
                if done == 0 {
                    return Err(Error::not_found(
                        "fido2AuthenticationMethod",
                        passkey_id.to_string(),
                    ));
                }
                insert_audit(&mut tx, &audit, None).await
            })
        })
        .await
    }
}

#[async_trait]
impl PasskeyStore for SqlStore {
    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<StoredPasskey>> {
        let sql = format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created, id"
        );
        let found = self.fetch_all(db::assembled(sql).bind(id(user_id))).await?;
        found.iter().map(passkey).collect()
    }

    async fn passkey_models(&self) -> Result<Vec<(Uuid, String)>> {
        let found = self
            .fetch_all(db::assembled(
                "SELECT user_id, aaguid FROM passkeys ORDER BY user_id".to_string(),
            ))
            .await?;
        found
            .iter()
            .map(|row| Ok((uuid(row, "user_id")?, text(row, "aaguid")?)))
            .collect()
    }

    async fn passkey(&self, passkey_id: Uuid) -> Result<Option<StoredPasskey>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = $1");
        self.fetch_optional(db::assembled(sql).bind(id(passkey_id)))
            .await?
            .as_ref()
            .map(passkey)
            .transpose()
    }

    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<StoredPasskey>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        self.fetch_optional(db::assembled(sql).bind(hex::encode(credential_id)))
            .await?
            .as_ref()
            .map(passkey)
            .transpose()
    }

    async fn passkey_and_owner(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(StoredPasskey, Option<User>)>> {
        let Some(row) = self
            .fetch_optional(
                db::query(
                    "SELECT p.id, p.user_id, p.credential_id, p.display_name, p.aaguid, p.model, \
                     p.attestation_level, p.backup_eligible, p.backup_state, p.sign_count, \
                     p.credential, p.created, p.last_used, \
                     u.user_principal_name AS owner_upn, u.display_name AS owner_display_name, \
                     u.mail AS owner_mail, u.account_enabled AS owner_enabled, \
                     u.user_type AS owner_user_type, u.created AS owner_created \
                     FROM passkeys p LEFT JOIN users u ON u.id = p.user_id AND u.deleted IS NULL \
                     WHERE p.credential_id = $1",
                )
                .bind(hex::encode(credential_id)),
            )
            .await?
        else {
            return Ok(None);
        };
        let stored = passkey(&row)?;
        let owner = crate::rows::owner(&row, stored.user_id)?;
        Ok(Some((stored, owner)))
    }

    async fn insert_passkey(
        &self,
        new: &StoredPasskey,
        limit: usize,
        audit: DirectoryAudit,
    ) -> Result<()> {
        let new = new.clone();
        self.write(move |mut tx| {
            Box::pin(async move {
                // On PostgreSQL two registrations for one person would otherwise both count
                // nine and both insert; locking the person's row makes the second wait for the
                // first. (SQLite's one writer already serializes them.)
                let lock = match tx.dialect() {
                    Dialect::Postgres => "SELECT id FROM users WHERE id = $1 AND deleted IS NULL FOR UPDATE",
                    Dialect::Sqlite => "SELECT id FROM users WHERE id = $1 AND deleted IS NULL",
                };
                let owner = tx
                    .fetch_optional(db::query(lock).bind(id(new.user_id)))
                    .await
                    .map_err(error::storage)?;
                if owner.is_none() {
                    return Err(Error::not_found("user", new.user_id.to_string()));
                }
                let count = tx
                    .fetch_optional(
                        db::query("SELECT COUNT(*) AS n FROM passkeys WHERE user_id = $1")
                            .bind(id(new.user_id)),
                    )
                    .await
                    .map_err(error::storage)?
                    .ok_or_else(|| corrupt("n", "COUNT returned no row"))?
                    .int("n")?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
                    return Err(Error::Conflict {
                        code: ErrorCode::PasskeyLimitReached,
                        message: format!(
                            "This account already has {limit} passkeys, the most allowed; remove one first."
                        ),
                    });
                }
                let sql = format!(
                    "INSERT INTO passkeys ({PASSKEY_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                );
                let inserted = tx
                    .execute(
                        db::assembled(sql)
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
                            .bind(new.last_used.map(unix_millis)),
                    )
                    .await;
                if let Err(err) = inserted {
                    return Err(match error::classify(err) {
                        Ok(Violation::Unique { .. }) => Error::Conflict {
                            code: ErrorCode::PasskeyAlreadyRegistered,
                            message: "This passkey is already registered.".to_string(),
                        },
                        Ok(Violation::ForeignKey) => {
                            Error::not_found("user", new.user_id.to_string())
                        }
                        Err(other) => other,
                    });
                }
                insert_audit(&mut tx, &audit, None).await
            })
        })
        .await
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        passkey_id: Uuid,
        display_name: &str,
        audit: DirectoryAudit,
    ) -> Result<()> {
        let rename =
            db::query("UPDATE passkeys SET display_name = $3 WHERE user_id = $1 AND id = $2")
                .bind(id(user_id))
                .bind(id(passkey_id))
                .bind(display_name.to_string());
        self.change_one_passkey(rename, passkey_id, audit).await
    }

    async fn delete_passkey(
        &self,
        user_id: Uuid,
        passkey_id: Uuid,
        at: OffsetDateTime,
        audit: DirectoryAudit,
    ) -> Result<()> {
        let delete = db::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
            .bind(id(user_id))
            .bind(id(passkey_id));
        let end = Change::EndSignIns {
            user_id,
            credential_id: Some(passkey_id.to_string()),
            at,
        };
        self.write(move |mut tx| {
            Box::pin(async move {
                let done = tx.execute(delete).await.map_err(error::storage)?;
                if done == 0 {
                    return Err(Error::not_found(
                        "fido2AuthenticationMethod",
                        passkey_id.to_string(),
                    ));
                }
                crate::oidc::apply(&mut tx, &end, None).await?;
                insert_audit(&mut tx, &audit, None).await
            })
        })
        .await
    }

    async fn ceremony(&self, ceremony_id: Uuid) -> Result<Option<Ceremony>> {
        self.fetch_optional(
            db::query(
                "SELECT id, kind, user_id, state, expires FROM passkey_ceremonies WHERE id = $1",
            )
            .bind(id(ceremony_id)),
        )
        .await?
        .as_ref()
        .map(ceremony)
        .transpose()
    }

    async fn insert_ceremony(&self, ceremony: &Ceremony) -> Result<()> {
        self.execute_write(
            db::query(
                "INSERT INTO passkey_ceremonies (id, kind, user_id, state, expires) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id(ceremony.id))
            .bind(ceremony.kind.as_str())
            .bind(ceremony.user_id.map(id))
            .bind(ceremony.state.clone())
            .bind(unix_millis(ceremony.expires)),
        )
        .await?;
        Ok(())
    }

    async fn take_ceremony(&self, ceremony_id: Uuid) -> Result<Option<Ceremony>> {
        self.fetch_optional_write(
            db::query(
                "DELETE FROM passkey_ceremonies WHERE id = $1 \
             RETURNING id, kind, user_id, state, expires",
            )
            .bind(id(ceremony_id)),
        )
        .await?
        .as_ref()
        .map(ceremony)
        .transpose()
    }

    async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64> {
        let done = self
            .execute_write(
                db::query("DELETE FROM passkey_ceremonies WHERE expires < $1")
                    .bind(unix_millis(now)),
            )
            .await?;
        Ok(done)
    }
}
