//! # portcullis-store — the directory's storage on SQLite and PostgreSQL
//!
//! This crate owns one thing: keeping what core hands it, and giving it back. It implements
//! [`portcullis_core::store::Store`] once, so that every query is a single SQL text that SQLite
//! and PostgreSQL both run (`db.rs`); [`Dialect`] covers the few places where they differ.
//! PostgreSQL is reached through sqlx's native driver on the store's own pool (`pg.rs`: no
//! round trip to check a connection that was just used, prepared statements cached per
//! connection, round trips counted: [`SqlStore::round_trips`]), SQLite through rusqlite
//! (`lite.rs`). It
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

mod counts;
mod db;
mod error;
mod list;
mod lite;
mod oidc;
mod passkeys;
mod pg;
mod read;
mod rows;
mod sessions;
mod sign_ins;
pub mod snapshot;
pub mod testing;
mod write;

use std::sync::Arc;
use std::time::Duration;

use futures_core::future::BoxFuture;
use portcullis_core::Error;
use sqlx::postgres::PgConnectOptions;

use crate::counts::Counters;
pub use crate::counts::StatementCounts;
use crate::db::{Conn, Query, Row};
use crate::pg::PgPool;
pub use crate::pg::RoundTrips;

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
    /// What this store and its clones have run (see [`SqlStore::statement_counts`]).
    counters: Arc<Counters>,
    /// The sign-in log's policy revisions this store has written and read (`sign_ins.rs`).
    log: Arc<sign_ins::LogCache>,
    /// Told of each commit's sign-in log and audit entries after it commits (events out).
    observer: Option<Arc<dyn portcullis_core::store::CommitObserver>>,
    /// Bounds the failure entries each initiator adds to the audit log (`write::commit`).
    failures: Arc<portcullis_core::directory::audit::FailureBudget>,
}

#[derive(Clone)]
enum Backend {
    Postgres(PgPool),
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
                counters: Arc::default(),
                log: Arc::default(),
                observer: None,
                failures: Arc::default(),
            })
        }
        Dialect::Postgres => {
            let connect_options: PgConnectOptions = database_url.parse().map_err(|e| {
                Error::invalid("database_url", format!("invalid database URL: {e}"))
            })?;
            let pool = PgPool::connect(
                connect_options,
                options.max_connections,
                options.acquire_timeout,
            )
            .await
            .map_err(connect_error)?;
            Ok(SqlStore {
                backend: Backend::Postgres(pool),
                counters: Arc::default(),
                log: Arc::default(),
                observer: None,
                failures: Arc::default(),
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
    /// This store, telling `observer` of each commit's sign-in log and audit entries once the
    /// commit is durable. Clones made after this share the observer.
    pub fn observed_by(
        mut self,
        observer: Arc<dyn portcullis_core::store::CommitObserver>,
    ) -> SqlStore {
        self.observer = Some(observer);
        self
    }

    /// Applies the embedded migrations of this store's dialect that have not run yet. Running
    /// it again is a no-op; several nodes may run it at once (sqlx takes a lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite(engine) => lite::migrate(engine, &SQLITE_MIGRATIONS),
            Backend::Postgres(pool) => {
                // On a connection of its own, through sqlx's pool, which sqlx's migrator is
                // made for (it takes an advisory lock on it while it runs).
                let migrating = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(pool.connect_options().clone())
                    .await
                    .map_err(connect_error)?;
                let outcome = POSTGRES_MIGRATIONS.run(&migrating).await;
                migrating.close().await;
                outcome.map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(inner) => error::storage(inner),
                    other => Error::Internal(format!("migration failed: {other}")),
                })
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The statements and write transactions this store (and every clone of it) has run
    /// since it was opened. Tests take it before and after a request to pin what the request
    /// costs; see `counts.rs`.
    pub fn statement_counts(&self) -> StatementCounts {
        self.counters.snapshot()
    }

    pub fn pool_stats(&self) -> PoolStats {
        match &self.backend {
            Backend::Postgres(pool) => {
                let (size, idle) = pool.stats();
                PoolStats { size, idle }
            }
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

    /// Round trips to PostgreSQL since [`connect`], by kind; all zero on SQLite, which has no
    /// server to go to. For tests and benchmarks that count what a piece of work costs.
    pub fn round_trips(&self) -> RoundTrips {
        match &self.backend {
            Backend::Postgres(pool) => pool.round_trips(),
            Backend::Sqlite(_) => RoundTrips::default(),
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

    /// The database's plan for `q`, one line per step: SQLite's `EXPLAIN QUERY PLAN`;
    /// PostgreSQL's `EXPLAIN` after `ANALYZE` of `table`, so that its statistics are those of a
    /// database autovacuum has looked at.
    pub(crate) async fn plan(&self, q: Query, table: &str) -> Result<String, Error> {
        match &self.backend {
            Backend::Sqlite(engine) => {
                let q = Query {
                    sql: format!("EXPLAIN QUERY PLAN {}", q.sql).into(),
                    params: q.params,
                };
                let steps = engine.read(|conn| lite::fetch(conn, &q, None))?;
                let lines = steps
                    .iter()
                    .map(|row| row.text("detail"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(lines.join("\n"))
            }
            Backend::Postgres(pool) => {
                // The table name comes from the store's own list of tables, never from input.
                db::pg_execute(pool, &db::assembled(format!("ANALYZE {table}"))).await?;
                let q = Query {
                    sql: format!("EXPLAIN {}", q.sql).into(),
                    params: q.params,
                };
                let steps = db::pg_fetch_all(pool, &q).await?;
                let lines = steps
                    .iter()
                    .map(|row| row.text("QUERY PLAN"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(lines.join("\n"))
            }
        }
    }

    /// A read of at most one row (the first, if several match).
    pub(crate) async fn fetch_optional(&self, q: Query) -> Result<Option<Row>, Error> {
        self.counters.read();
        match &self.backend {
            Backend::Postgres(pool) => db::pg_fetch_optional(pool, &q).await,
            Backend::Sqlite(engine) => {
                Ok(engine.read(|conn| lite::fetch(conn, &q, Some(1)))?.pop())
            }
        }
    }

    /// A read of every matching row; for reads by key or of short lists.
    pub(crate) async fn fetch_all(&self, q: Query) -> Result<Vec<Row>, Error> {
        self.counters.read();
        match &self.backend {
            Backend::Postgres(pool) => db::pg_fetch_all(pool, &q).await,
            Backend::Sqlite(engine) => engine.read(|conn| lite::fetch(conn, &q, None)),
        }
    }

    /// A read that may scan (a filtered list page): on SQLite it runs on a blocking thread
    /// rather than hold up the requests of the thread that asked.
    pub(crate) async fn fetch_all_scanning(&self, q: Query) -> Result<Vec<Row>, Error> {
        self.counters.read();
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
        self.counters.write_transaction();
        let counters = self.counters.clone();
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                if let Err(e) = conn.begin().await {
                    // Nothing was written: a connection found gone is replaced once.
                    if !db::connection_lost(&e) {
                        return Err(error::storage(e));
                    }
                    drop(conn);
                    conn = pool.acquire().await?;
                    conn.begin().await.map_err(error::storage)?;
                }
                match body(Conn::pg(&mut conn).counted(counters)).await {
                    Ok(value) => {
                        conn.commit().await.map_err(error::storage)?;
                        Ok(value)
                    }
                    Err(e) => {
                        // A failed ROLLBACK leaves the connection unclean: it is closed, and
                        // the server rolls back.
                        let _ = conn.rollback().await;
                        Err(e)
                    }
                }
            }
            Backend::Sqlite(engine) => {
                engine
                    .write(Box::new(move |conn: Conn<'_>| body(conn.counted(counters))))
                    .await
            }
        }
    }

    /// One writing statement on its own (its own transaction); how many rows it changed.
    pub(crate) async fn execute_write(&self, q: Query) -> Result<u64, Error> {
        match &self.backend {
            Backend::Postgres(pool) => {
                self.counters.write_transaction();
                self.counters.written_statement();
                db::pg_execute(pool, &q).await
            }
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
            Backend::Postgres(pool) => {
                self.counters.write_transaction();
                self.counters.written_statement();
                db::pg_fetch_optional(pool, &q).await
            }
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
