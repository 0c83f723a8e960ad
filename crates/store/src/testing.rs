//! Scratch databases for tests, here and in other crates (the in-process server testkit).
//!
//! Every test gets a database of its own, so tests run in parallel without seeing each other's
//! rows: a file in the temp folder for SQLite, a uniquely named database on the server for
//! PostgreSQL. [`ScratchDatabase::remove`] deletes it; if a test panics before that, dropping
//! the guard deletes it instead, and databases left behind by killed runs are swept the next
//! time one is created, so repeated CI runs do not pile them up.
//!
//! Which database: [`ScratchDatabase::from_env`] uses PostgreSQL when the variable named by
//! [`TEST_DATABASE_URL_ENV`] is set, SQLite otherwise. When the variable is set and PostgreSQL
//! cannot be reached, creating the scratch database fails: a test run that was asked to cover
//! PostgreSQL must not pass without it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_core::Error;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};
use uuid::Uuid;

/// The environment variable holding the base PostgreSQL URL for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Scratch databases are created next to the one it
/// names (its user must be allowed to create databases).
pub const TEST_DATABASE_URL_ENV: &str = "PORTCULLIS_TEST_DATABASE_URL";

/// Scratch database names start with this, followed by the creation time in unix seconds and a
/// random suffix; the sweep reads the time back from the name.
const PREFIX: &str = "portcullis_scratch_";

/// Scratch databases older than this are taken to be left over by a run that was killed.
const STALE_AFTER: Duration = Duration::from_secs(6 * 60 * 60);

/// How the database would read one page of the list `table` (`users`, `groups`,
/// `applications`, `directory_audits`, `sign_ins`) for `query`: the plan of the very statement
/// the store runs, one line per step (see `SqlStore::plan`). For tests that check that a
/// filter is served from an index.
pub async fn list_plan(
    store: &crate::SqlStore,
    table: &str,
    query: &portcullis_core::kernel::query::ListQuery,
) -> Result<String, Error> {
    let listing = crate::list::listing(table)
        .ok_or_else(|| Error::Internal(format!("'{table}' is not a listable table")))?;
    let (statement, _) = crate::list::statement(store.dialect(), listing, query)?;
    store.plan(statement, listing.table).await
}

/// A database that exists for one test. Remove it with [`ScratchDatabase::remove`]; dropping
/// it does the same (blocking briefly) if the test did not get that far.
#[derive(Debug)]
pub struct ScratchDatabase {
    url: String,
    place: Place,
    removed: bool,
}

#[derive(Debug, Clone)]
enum Place {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl ScratchDatabase {
    /// PostgreSQL when [`TEST_DATABASE_URL_ENV`] is set, SQLite otherwise.
    pub async fn from_env() -> Result<ScratchDatabase, Error> {
        match std::env::var(TEST_DATABASE_URL_ENV) {
            Ok(base) if !base.trim().is_empty() => ScratchDatabase::postgres(base.trim()).await,
            _ => Ok(ScratchDatabase::sqlite()),
        }
    }

    /// A new SQLite database file in the system temp folder (created on first connect).
    pub fn sqlite() -> ScratchDatabase {
        let path = std::env::temp_dir().join(format!("portcullis-scratch-{}.db", Uuid::new_v4()));
        ScratchDatabase {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            place: Place::Sqlite { path },
            removed: false,
        }
    }

    /// A new, empty database on the PostgreSQL server that `base_url` points at. Fails with
    /// [`Error::Unavailable`] when the server cannot be reached.
    pub async fn postgres(base_url: &str) -> Result<ScratchDatabase, Error> {
        sqlx::any::install_default_drivers();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!("{PREFIX}{created}_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(base_url).await?;
        sweep_stale(&mut admin, created).await;
        // The name is generated above from digits and hex: safe to interpolate, and identifiers
        // cannot be bound.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot create scratch database: {e}")))?;
        let _ = admin.close().await;
        Ok(ScratchDatabase {
            url: with_database(base_url, &name)?,
            place: Place::Postgres {
                admin_url: base_url.to_string(),
                name,
            },
            removed: false,
        })
    }

    /// The URL to pass to [`crate::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Deletes the database. Close pools on it first where possible; on PostgreSQL remaining
    /// connections are ended by the server.
    pub async fn remove(mut self) -> Result<(), Error> {
        self.removed = true;
        remove_place(&self.place).await
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let place = self.place.clone();
        // Drop cannot await; a thread with its own small runtime can, whether or not the
        // caller is inside a runtime (and without blocking that runtime's other tasks on it).
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                let _ = runtime.block_on(remove_place(&place));
            }
        });
        let _ = cleanup.join();
    }
}

async fn remove_place(place: &Place) -> Result<(), Error> {
    match place {
        Place::Sqlite { path } => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Internal(format!(
                            "cannot remove {}: {e}",
                            PathBuf::from(file).display()
                        )));
                    }
                }
            }
            Ok(())
        }
        Place::Postgres { admin_url, name } => {
            let mut admin = admin_connection(admin_url).await?;
            drop_database(&mut admin, name).await
        }
    }
}

async fn admin_connection(base_url: &str) -> Result<AnyConnection, Error> {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(base_url)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot reach PostgreSQL at {base_url}: {e}")))
}

/// `WITH (FORCE)` (PostgreSQL 13+) ends connections a test's pool still holds.
async fn drop_database(admin: &mut AnyConnection, name: &str) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin)
    .await
    .map_err(|e| Error::Internal(format!("cannot drop scratch database {name}: {e}")))?;
    Ok(())
}

/// Drops scratch databases whose creation time (from their name) is long past. Best effort: a
/// failure here must not fail the test that happened to trigger it.
async fn sweep_stale(admin: &mut AnyConnection, now: u64) {
    let found =
        sqlx::query("SELECT CAST(datname AS TEXT) AS name FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{}%", PREFIX.replace('_', "\\_")))
            .fetch_all(&mut *admin)
            .await;
    let Ok(found) = found else {
        return;
    };
    for row in found {
        let Ok(name) = row.try_get::<String, _>("name") else {
            continue;
        };
        let stale = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok())
            .is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs());
        // Only names this module generates reach the DROP: prefix, digits, '_', hex.
        let generated = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if stale && generated {
            let _ = drop_database(admin, &name).await;
        }
    }
}

/// `base_url` with its path (the database name) replaced by `name`.
fn with_database(base_url: &str, name: &str) -> Result<String, Error> {
    let invalid = || Error::invalid(TEST_DATABASE_URL_ENV, "not a postgres:// URL");
    let (scheme, rest) = base_url.split_once("://").ok_or_else(invalid)?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let authority = rest.split('/').next().ok_or_else(invalid)?;
    let mut url = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// Rows of sign-in state in the database, expired or not: what an anonymous caller can make
/// the server store, and what the purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInStateRows {
    pub passkey_ceremonies: u64,
    pub sign_in_flows: u64,
}

impl crate::SqlStore {
    /// Counts the rows of sign-in state, for tests that check a bound or a purge.
    pub async fn sign_in_state_rows(&self) -> Result<SignInStateRows, Error> {
        Ok(SignInStateRows {
            passkey_ceremonies: self
                .count_rows("SELECT COUNT(*) AS n FROM passkey_ceremonies")
                .await?,
            sign_in_flows: self
                .count_rows("SELECT COUNT(*) AS n FROM sign_in_flows")
                .await?,
        })
    }

    async fn count_rows(&self, sql: &'static str) -> Result<u64, Error> {
        let n = self
            .fetch_optional(crate::db::query(sql))
            .await?
            .ok_or_else(|| Error::Internal(format!("{sql} returned no row")))?
            .int("n")?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://h", "x").unwrap(),
            "postgresql://h/x"
        );
    }
}
