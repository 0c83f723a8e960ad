//! # portcullis-store — the directory's storage on SQLite and PostgreSQL
//!
//! This crate owns one thing: keeping what core hands it, and giving it back. It implements
//! [`portcullis_core::store::Store`] once, so that every query is a single SQL text that SQLite
//! and PostgreSQL both run (`db.rs`); [`Dialect`] covers the few places where they differ.
//! PostgreSQL is reached through sqlx's `Any` driver, SQLite through rusqlite (`lite.rs`). It
//! also owns the schema: `migrations/sqlite` and `migrations/postgres` (same file names, same
//! tables), embedded in the binary and applied by [`SqlStore::migrate`].
//!
//! On SQLite, reads run on the calling thread and every write is a job for one writer thread,
//! which commits whatever has queued up in one transaction (a savepoint per job) and answers
//! each caller only after the commit; the write-ahead log is checkpointed by a thread beside
//! it, never by a committing writer (`lite.rs` says why). A sign-in step's writes arrive as one
//! [`Store::commit`]: the conditional changes (`TakeCeremony`, `RecordPasskeyUse`,
//! `TakeAuthorizationCode`, `AdvanceSignInFlow`) fail the whole list with a conflict when their
//! condition does not hold.
//!
//! Storage conventions, the same in both databases so that decoding is uniform: ids are TEXT
//! (lowercase hyphenated uuids), booleans are BIGINT 0/1, instants are BIGINT unix milliseconds
//! (core's clock truncates to milliseconds so a value reads back equal), JSON is TEXT.
//!
//! What it must never do: make a domain decision (who may do what, which values are valid,
//! what a policy means: core decides, this crate only keeps rows consistent and reports
//! conflicts), speak HTTP, or read configuration itself (the binary passes a URL and
//! [`StoreOptions`]). It never panics on bad data: every failure becomes a
//! [`portcullis_core::Error`].
//!
//! Where to look: [`connect`] and [`SqlStore`] here; `db.rs` for statements and rows on either
//! database; `lite.rs` for the SQLite engine; `write.rs` for [`Store::commit`] and how each
//! change and its cascades are applied; `list.rs` for filters and keyset paging;
//! [`testing`] for scratch databases used by tests across the workspace.
//!
//! [`Store::commit`]: portcullis_core::store::Store::commit

mod db;
mod error;
mod list;
mod lite;
mod oidc;
mod passkeys;
mod read;
mod rows;
mod sessions;
mod sign_ins;
pub mod testing;
mod write;

use std::sync::Arc;
use std::time::Duration;

use futures_core::future::BoxFuture;
use portcullis_core::Error;
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use crate::db::{Conn, Query, Row};

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Reads the dialect from a database URL's scheme.
    pub fn from_url(database_url: &str) -> Result<Dialect, Error> {
        if database_url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            Ok(Dialect::Postgres)
        } else {
            Err(Error::invalid(
                "database_url",
                "the database URL must start with sqlite: or postgres://",
            ))
        }
    }
}

/// Pool settings. The binary maps its configuration onto these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Upper bound of open PostgreSQL connections. (SQLite has one writing connection and opens
    /// reading ones as reads need them.)
    pub max_connections: u32,
    /// How long a request waits for a free PostgreSQL connection before it fails with 503.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            // Enough for a busy node; PostgreSQL's default limit of 100 leaves room for several.
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Connections in use and idle, for the Prometheus pool gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle ones included.
    pub size: u32,
    pub idle: u32,
}

/// The store. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqlStore {
    backend: Backend,
    /// The sign-in log's policy revisions this store has written and read (`sign_ins.rs`).
    log: Arc<sign_ins::LogCache>,
}

#[derive(Clone)]
enum Backend {
    Postgres(AnyPool),
    Sqlite(Arc<lite::Engine>),
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Opens the database at `database_url` (`sqlite://PATH?mode=rwc`, `sqlite::memory:`, or
/// `postgres://…`) and checks that it answers. It does not migrate; call
/// [`SqlStore::migrate`].
pub async fn connect(database_url: &str, options: &StoreOptions) -> Result<SqlStore, Error> {
    match Dialect::from_url(database_url)? {
        Dialect::Sqlite => {
            let engine = lite::Engine::open(lite::parse_url(database_url)?)?;
            Ok(SqlStore {
                backend: Backend::Sqlite(Arc::new(engine)),
                log: Arc::default(),
            })
        }
        Dialect::Postgres => {
            sqlx::any::install_default_drivers();
            let connect_options: AnyConnectOptions = database_url.parse().map_err(|e| {
                Error::invalid("database_url", format!("invalid database URL: {e}"))
            })?;
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect_options)
                .await
                .map_err(connect_error)?;
            Ok(SqlStore {
                backend: Backend::Postgres(pool),
                log: Arc::default(),
            })
        }
    }
}

fn connect_error(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Configuration(_) => {
            Error::invalid("database_url", format!("invalid database URL: {e}"))
        }
        other => Error::Unavailable(format!("cannot connect to the database: {other}")),
    }
}

impl SqlStore {
    /// Applies the embedded migrations of this store's dialect that have not run yet. Running
    /// it again is a no-op; several nodes may run it at once (sqlx takes a lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite(engine) => lite::migrate(engine, &SQLITE_MIGRATIONS),
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await.map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(inner) => error::storage(inner),
                other => Error::Internal(format!("migration failed: {other}")),
            }),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn pool_stats(&self) -> PoolStats {
        match &self.backend {
            Backend::Postgres(pool) => PoolStats {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            },
            Backend::Sqlite(engine) => {
                let idle = engine.idle_readers();
                // The idle readers and the writer's own connection.
                PoolStats {
                    size: idle + 1,
                    idle,
                }
            }
        }
    }

    /// Closes every connection; later calls fail with 503. Writes already queued on SQLite are
    /// committed first. For orderly shutdown and for tests that drop their scratch database.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Postgres(pool) => pool.close().await,
            Backend::Sqlite(engine) => engine.close().await,
        }
    }

    /// A read of at most one row (the first, if several match).
    pub(crate) async fn fetch_optional(&self, q: Query) -> Result<Option<Row>, Error> {
        match &self.backend {
            Backend::Postgres(pool) => db::pg_fetch_optional(pool, &q).await,
            Backend::Sqlite(engine) => {
                Ok(engine.read(|conn| lite::fetch(conn, &q, Some(1)))?.pop())
            }
        }
    }

    /// A read of every matching row; for reads by key or of short lists.
    pub(crate) async fn fetch_all(&self, q: Query) -> Result<Vec<Row>, Error> {
        match &self.backend {
            Backend::Postgres(pool) => db::pg_fetch_all(pool, &q).await,
            Backend::Sqlite(engine) => engine.read(|conn| lite::fetch(conn, &q, None)),
        }
    }

    /// A read that may scan (a filtered list page): on SQLite it runs on a blocking thread
    /// rather than hold up the requests of the thread that asked.
    pub(crate) async fn fetch_all_scanning(&self, q: Query) -> Result<Vec<Row>, Error> {
        match &self.backend {
            Backend::Postgres(pool) => db::pg_fetch_all(pool, &q).await,
            Backend::Sqlite(engine) => {
                engine
                    .read_blocking(move |conn| lite::fetch(conn, &q, None))
                    .await
            }
        }
    }

    /// Runs `body` as one write transaction: committed if it returns `Ok`, rolled back if it
    /// returns an error. On SQLite it runs on the writer thread, possibly committed together
    /// with other callers' transactions, and this returns only after the commit.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        body: impl for<'c> FnOnce(Conn<'c>) -> BoxFuture<'c, Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(error::storage)?;
                let value = body(Conn::Pg(&mut tx)).await?;
                tx.commit().await.map_err(error::storage)?;
                Ok(value)
            }
            Backend::Sqlite(engine) => engine.write(Box::new(body)).await,
        }
    }

    /// One writing statement on its own (its own transaction); how many rows it changed.
    pub(crate) async fn execute_write(&self, q: Query) -> Result<u64, Error> {
        match &self.backend {
            Backend::Postgres(pool) => db::pg_execute(pool, &q).await,
            Backend::Sqlite(_) => {
                self.write(move |mut conn| {
                    Box::pin(async move { conn.execute(q).await.map_err(error::storage) })
                })
                .await
            }
        }
    }

    /// One writing statement with `RETURNING`, on its own; the first row it returned.
    pub(crate) async fn fetch_optional_write(&self, q: Query) -> Result<Option<Row>, Error> {
        match &self.backend {
            Backend::Postgres(pool) => db::pg_fetch_optional(pool, &q).await,
            Backend::Sqlite(_) => {
                self.write(move |mut conn| {
                    Box::pin(async move {
                        Ok(conn
                            .fetch_all(q)
                            .await
                            .map_err(error::storage)?
                            .into_iter()
                            .next())
                    })
                })
                .await
            }
        }
    }
}
