//! # portcullis-store — the directory's storage on SQLite and PostgreSQL
//!
//! This crate owns one thing: keeping what core hands it, and giving it back. It implements
//! [`portcullis_core::store::Store`] once, on sqlx's `Any` driver, so that every query is a single
//! SQL text that SQLite and PostgreSQL both run; [`Dialect`] covers the few places where they
//! differ. It also owns the schema: `migrations/sqlite` and `migrations/postgres` (same file
//! names, same tables), embedded in the binary and applied by [`SqlStore::migrate`].
//!
//! On a SQLite file, every write goes through one writer connection (SQLite admits one writer
//! anyway; queueing in the pool beats sleeping in SQLite's busy handler) and the write-ahead log
//! is checkpointed by a background task beside it, never by a committing writer. A sign-in
//! step's writes arrive as one [`Store::commit`]: the conditional changes (`TakeCeremony`,
//! `RecordPasskeyUse`, `TakeAuthorizationCode`, `AdvanceSignInFlow`) fail the whole list with
//! a conflict when their condition does not hold.
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
//! Where to look: [`connect`] and [`SqlStore`] here; `write.rs` for [`Store::commit`] and how
//! each change and its cascades are applied; `list.rs` for filters and keyset paging;
//! [`testing`] for scratch databases used by tests across the workspace.
//!
//! [`Store::commit`]: portcullis_core::store::Store::commit

mod error;
mod list;
mod oidc;
mod passkeys;
mod read;
mod rows;
mod sessions;
pub mod testing;
mod write;

use std::time::Duration;

use portcullis_core::Error;
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

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
    /// Upper bound of open connections. Ignored for in-memory SQLite, which needs exactly one
    /// (each connection would otherwise open its own empty database).
    pub max_connections: u32,
    /// How long a request waits for a free connection before it fails with 503.
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

/// The store on a sqlx pool. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    /// Reads (and, on PostgreSQL and in-memory SQLite, everything).
    pool: AnyPool,
    /// Every statement that writes. On a SQLite file this is its own pool of exactly one
    /// connection: SQLite admits one writer at a time anyway, and a second writer waiting on
    /// the file lock sleeps in SQLite's busy handler (in steps of up to 100 ms) even when the
    /// lock was freed a microsecond later, which is where the sign-in p99 came from
    /// (BENCHMARKS.md). Waiting for the one connection in the pool's queue instead is
    /// first-come first-served and wakes as soon as the previous writer commits. Elsewhere it
    /// is a clone of `pool`.
    writer: AnyPool,
    own_writer: bool,
    dialect: Dialect,
    /// Held by every clone; background work for this store stops when the last one is gone.
    _alive: std::sync::Arc<()>,
}

/// Opens a pool on `database_url` (`sqlite://PATH?mode=rwc`, `sqlite::memory:`, or
/// `postgres://…`) and checks that one connection works. It does not migrate; call
/// [`SqlStore::migrate`].
pub async fn connect(database_url: &str, options: &StoreOptions) -> Result<SqlStore, Error> {
    let dialect = Dialect::from_url(database_url)?;
    sqlx::any::install_default_drivers();
    let connect_options: AnyConnectOptions = database_url
        .parse()
        .map_err(|e| Error::invalid("database_url", format!("invalid database URL: {e}")))?;

    let in_memory = dialect == Dialect::Sqlite
        && (database_url.contains(":memory:") || database_url.contains("mode=memory"));
    let mut pool_options = AnyPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout);
    if in_memory {
        // Through the Any driver every new connection parses the URL again and gets a fresh
        // private in-memory database; one long-lived connection keeps one database.
        pool_options = pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let file_sqlite = dialect == Dialect::Sqlite && !in_memory;
    if dialect == Dialect::Sqlite {
        // A pool pings a connection before lending it, to find one a network dropped. A SQLite
        // connection has no network; the ping was one more round trip to the connection's
        // thread for every statement (BENCHMARKS.md).
        pool_options = pool_options
            .test_before_acquire(false)
            .after_connect(|conn, _meta| Box::pin(sqlite_pragmas(conn)));
    }
    let pool = pool_options
        .connect_with(connect_options.clone())
        .await
        .map_err(connect_error)?;
    let writer = if file_sqlite {
        AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlite_pragmas(conn).await?;
                    // The writer never checkpoints as it commits; `checkpoint_in_background`
                    // does, beside it.
                    sqlx::raw_sql("PRAGMA wal_autocheckpoint = 0;")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(connect_error)?
    } else {
        pool.clone()
    };
    let alive = std::sync::Arc::new(());
    if file_sqlite {
        tokio::spawn(checkpoint_in_background(
            pool.clone(),
            std::sync::Arc::downgrade(&alive),
        ));
    }
    Ok(SqlStore {
        pool,
        writer,
        own_writer: file_sqlite,
        dialect,
        _alive: alive,
    })
}

/// Settings every SQLite connection gets. WAL lets readers run beside the writer; NORMAL is
/// durable across application crashes in WAL mode; SQLite leaves foreign keys off unless asked;
/// the busy timeout makes a connection wait for the lock (a checkpoint, another process)
/// instead of failing at once. (Memory-mapped reads were tried and left off: they saved
/// some read system calls, but every mapped page of the database counts in the server's
/// resident memory, which then grows with the sign-in log; see BENCHMARKS.md.)
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Copies the write-ahead log back into the database file, beside the writer rather than in
/// its way. Left to SQLite, the connection whose commit crosses 1,000 log pages checkpoints
/// there and then, file synchronisation included, while every other writer queues behind it;
/// under sign-in load that was the writer's longest stall (BENCHMARKS.md). A passive
/// checkpoint from a reading connection takes no lock a writer needs. It runs twice a second,
/// and ends when the pool is closed or the store dropped.
async fn checkpoint_in_background(pool: AnyPool, alive: std::sync::Weak<()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() || alive.upgrade().is_none() {
            break;
        }
        if let Err(e) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE);")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "background checkpoint of the SQLite log failed");
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
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("../../migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("../../migrations/postgres"),
        };
        migrator.run(&self.writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => error::storage(inner),
            other => Error::Internal(format!("migration failed: {other}")),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool_stats(&self) -> PoolStats {
        let mut size = self.pool.size();
        let mut idle = self.pool.num_idle();
        if self.own_writer {
            size += self.writer.size();
            idle += self.writer.num_idle();
        }
        PoolStats {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
        }
    }

    /// Closes every connection; later calls fail with 503. For orderly shutdown and for tests
    /// that drop their scratch database.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}
