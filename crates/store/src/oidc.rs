//! OpenID Connect grants, authorization codes and refresh tokens: `0006_oauth_grants.sql`,
//! and `0013_split_tokens.sql` for how codes and refresh tokens are keyed: by the token's id
//! (or, for one issued before split tokens, by the hash of the whole token) in `id`, with the
//! hash of the secret part beside it for core to check.
//!
//! The rule that makes codes and refresh tokens single-use lives in one statement here: a
//! conditional `UPDATE … SET used = $2 WHERE … AND used IS NULL`, so of any number of callers on
//! any number of nodes exactly one sees a row change; the others find the row used and report
//! a replay, which core answers by revoking the grant.
//!
//! What it must never do: decide what a replay means or whether a grant is still good (core
//! does); it only keeps the rows and says who came first.

use crate::db::{self, Conn, Row};
use portcullis_core::directory::model::User;
use portcullis_core::kernel::clock::unix_millis;
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::kernel::query::Taken;
use portcullis_core::kernel::split_token::TokenKey;
use portcullis_core::oidc::store::RefreshToken;
use portcullis_core::signin::authorization::{AuthorizationCode, OAuthGrant};
use portcullis_core::store::Change;
use portcullis_core::{Error, Result};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{instant, json_or, opt_text, text, uuid};
use crate::{SqlStore, write};

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn code(row: &Row) -> Result<AuthorizationCode> {
    Ok(AuthorizationCode {
        key: TokenKey::from_text(&text(row, "id")?),
        secret_hash: opt_text(row, "secret_hash")?,
        grant_id: uuid(row, "grant_id")?,
        redirect_uri: text(row, "redirect_uri")?,
        code_challenge: opt_text(row, "code_challenge")?,
        expires: instant(row, "expires")?,
    })
}

fn refresh(row: &Row) -> Result<RefreshToken> {
    Ok(RefreshToken {
        key: TokenKey::from_text(&text(row, "id")?),
        secret_hash: opt_text(row, "secret_hash")?,
        grant_id: uuid(row, "grant_id")?,
        created: instant(row, "created")?,
        expires: instant(row, "expires")?,
    })
}

pub(crate) async fn apply(
    conn: &mut Conn<'_>,
    change: &Change,
    body: Option<String>,
) -> Result<()> {
    match change {
        Change::InsertOAuthGrant(grant) => {
            let query = db::query(
                "INSERT INTO oauth_grants (id, client_id, user_id, session_id, state, created, expires, revoked) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
            )
            .bind(id(grant.id))
            .bind(id(grant.client_id))
            .bind(id(grant.user_id))
            .bind(grant.session_id.map(id))
            .bind(json_or(body, grant.as_ref())?)
            .bind(unix_millis(grant.created))
            .bind(unix_millis(grant.expires));
            write::run(conn, change, query).await.map(|_| ())
        }
        Change::InsertAuthorizationCode(c) => {
            let query = db::query(
                "INSERT INTO oauth_codes (id, secret_hash, grant_id, redirect_uri, code_challenge, expires, used) \
                 VALUES ($1, $6, $2, $3, $4, $5, NULL)",
            )
            .bind(c.key.as_text())
            .bind(id(c.grant_id))
            .bind(c.redirect_uri.clone())
            .bind(c.code_challenge.clone())
            .bind(unix_millis(c.expires))
            .bind(c.secret_hash.clone());
            write::run(conn, change, query).await.map(|_| ())
        }
        Change::TakeAuthorizationCode { key, at } => {
            let query =
                db::query("UPDATE oauth_codes SET used = $2 WHERE id = $1 AND used IS NULL")
                    .bind(key.as_text())
                    .bind(unix_millis(*at));
            let done = write::run(conn, change, query).await?;
            if done == 0 {
                return Err(Error::Conflict {
                    code: ErrorCode::AuthorizationCodeUsed,
                    message: "The authorization code was already used.".into(),
                });
            }
            Ok(())
        }
        Change::InsertRefreshToken(t) => {
            let query = db::query(
                "INSERT INTO oauth_refresh_tokens (id, secret_hash, grant_id, created, expires, used) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(t.key.as_text())
            .bind(t.secret_hash.clone())
            .bind(id(t.grant_id))
            .bind(unix_millis(t.created))
            .bind(unix_millis(t.expires));
            write::run(conn, change, query).await.map(|_| ())
        }
        Change::RevokeOAuthGrant { id: grant_id, at } => {
            let query =
                db::query("UPDATE oauth_grants SET revoked = $2 WHERE id = $1 AND revoked IS NULL")
                    .bind(id(*grant_id))
                    .bind(unix_millis(*at));
            write::run(conn, change, query).await.map(|_| ())
        }
        Change::RevokeSessionGrants { session_id, at } => {
            let query = db::query(
                "UPDATE oauth_grants SET revoked = $2 WHERE session_id = $1 AND revoked IS NULL",
            )
            .bind(id(*session_id))
            .bind(unix_millis(*at));
            write::run(conn, change, query).await.map(|_| ())
        }
        Change::EndSignIns {
            user_id,
            credential_id: None,
            at,
        } => {
            let revoke = db::query(
                "UPDATE oauth_grants SET revoked = $2 WHERE user_id = $1 AND revoked IS NULL",
            )
            .bind(id(*user_id))
            .bind(unix_millis(*at));
            write::run(conn, change, revoke).await?;
            let end = db::query("DELETE FROM auth_sessions WHERE user_id = $1").bind(id(*user_id));
            write::run(conn, change, end).await.map(|_| ())
        }
        Change::EndSignIns {
            user_id,
            credential_id: Some(credential),
            at,
        } => {
            // A session's methods are JSON text; the credential's id appears in it as its
            // `credentialId` member. Ids are UUIDs or base64url, which hold no LIKE wildcard
            // but `_`, so that one is escaped.
            let escaped = credential
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%\"credentialId\":\"{escaped}\"%");
            let revoke = db::query(
                "UPDATE oauth_grants SET revoked = $3 WHERE revoked IS NULL AND session_id IN \
                 (SELECT id FROM auth_sessions WHERE user_id = $1 AND methods LIKE $2 ESCAPE '\\')",
            )
            .bind(id(*user_id))
            .bind(pattern.clone())
            .bind(unix_millis(*at));
            write::run(conn, change, revoke).await?;
            let end = db::query(
                "DELETE FROM auth_sessions WHERE user_id = $1 AND methods LIKE $2 ESCAPE '\\'",
            )
            .bind(id(*user_id))
            .bind(pattern);
            write::run(conn, change, end).await.map(|_| ())
        }
        other => Err(Error::Internal(format!("oidc::apply was handed {other:?}"))),
    }
}

impl SqlStore {
    /// One statement decides who is first; a second read tells a replay from a guess.
    async fn take(
        &self,
        update: &'static str,
        select: &'static str,
        key: &TokenKey,
        at: OffsetDateTime,
    ) -> Result<Taken<Row>> {
        let fresh = self
            .fetch_optional_write(db::query(update).bind(key.as_text()).bind(unix_millis(at)))
            .await?;
        if let Some(row) = fresh {
            return Ok(Taken::Fresh(row));
        }
        let used = self
            .fetch_optional(db::query(select).bind(key.as_text()))
            .await?;
        Ok(match used {
            Some(row) => Taken::Replayed(row),
            None => Taken::Unknown,
        })
    }

    pub(crate) async fn read_code(&self, key: &TokenKey) -> Result<Taken<AuthorizationCode>> {
        let row = self
            .fetch_optional(
                db::query(
                    "SELECT id, secret_hash, grant_id, redirect_uri, code_challenge, expires, used \
             FROM oauth_codes WHERE id = $1",
                )
                .bind(key.as_text()),
            )
            .await?;
        Ok(match row {
            None => Taken::Unknown,
            Some(row) => {
                let used = row.opt_int("used")?;
                match used {
                    None => Taken::Fresh(code(&row)?),
                    Some(_) => Taken::Replayed(code(&row)?),
                }
            }
        })
    }

    pub(crate) async fn take_refresh(
        &self,
        key: &TokenKey,
        at: OffsetDateTime,
    ) -> Result<Taken<RefreshToken>> {
        let taken = self
            .take(
                "UPDATE oauth_refresh_tokens SET used = $2 WHERE id = $1 AND used IS NULL \
                 RETURNING id, secret_hash, grant_id, created, expires",
                "SELECT id, secret_hash, grant_id, created, expires \
                 FROM oauth_refresh_tokens WHERE id = $1",
                key,
                at,
            )
            .await?;
        Ok(match taken {
            Taken::Fresh(row) => Taken::Fresh(refresh(&row)?),
            Taken::Replayed(row) => Taken::Replayed(refresh(&row)?),
            Taken::Unknown => Taken::Unknown,
        })
    }

    pub(crate) async fn read_refresh_token(&self, key: &TokenKey) -> Result<Option<RefreshToken>> {
        self.fetch_optional(
            db::query(
                "SELECT id, secret_hash, grant_id, created, expires FROM oauth_refresh_tokens WHERE id = $1",
            )
            .bind(key.as_text()),
        )
        .await?
        .as_ref()
        .map(refresh)
        .transpose()
    }

    /// A grant and its person in one statement (see [`OidcStore::oauth_grant_and_person`]).
    ///
    /// [`OidcStore::oauth_grant_and_person`]: portcullis_core::oidc::store::OidcStore::oauth_grant_and_person
    pub(crate) async fn read_grant_and_person(
        &self,
        grant_id: Uuid,
    ) -> Result<Option<(OAuthGrant, Option<User>)>> {
        let row = self
            .fetch_optional(
                db::query(
                    "SELECT g.state, g.revoked, u.user_principal_name AS owner_upn, \
                     u.display_name AS owner_display_name, u.mail AS owner_mail, \
                     u.account_enabled AS owner_enabled, u.user_type AS owner_user_type, \
                     u.created AS owner_created \
                     FROM oauth_grants g LEFT JOIN users u ON u.id = g.user_id AND u.deleted IS NULL \
                     WHERE g.id = $1",
                )
                .bind(id(grant_id)),
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let grant = grant_from(&row)?;
        let person = crate::rows::owner(&row, grant.user_id)?;
        Ok(Some((grant, person)))
    }

    pub(crate) async fn read_grant(&self, grant_id: Uuid) -> Result<Option<OAuthGrant>> {
        let row = self
            .fetch_optional(
                db::query("SELECT state, revoked FROM oauth_grants WHERE id = $1")
                    .bind(id(grant_id)),
            )
            .await?;
        row.as_ref().map(grant_from).transpose()
    }
}

/// A grant from its `state` and `revoked` columns.
fn grant_from(row: &Row) -> Result<OAuthGrant> {
    let mut grant: OAuthGrant = serde_json::from_str(&text(row, "state")?)
        .map_err(|e| Error::Internal(format!("stored grant is not readable: {e}")))?;
    // The column is the truth: revocation updates it, not the JSON.
    grant.revoked = crate::rows::opt_instant(row, "revoked")?;
    Ok(grant)
}
