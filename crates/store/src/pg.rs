//! PostgreSQL connections: a pool of sqlx's native `PgConnection`s, and the count of round
//! trips the store makes to the server.
//!
//! Why not sqlx's own pool: it checks a connection with a round trip (`Sync` → `ReadyForQuery`)
//! when lending it and again when it comes back, so a read by key cost three round trips instead
//! of one, and under load the server answered twice as many messages as it ran statements
//! (BENCHMARKS.md has the counts). This pool lends a connection without a check when it was
//! used recently, checks one that sat idle longer than [`CHECK_IDLE_AFTER`] (the server or the
//! network may have dropped it; a read or a `BEGIN` that still finds its connection gone is
//! asked once more on another, `db.rs`), and takes back only a connection whose last exchange finished
//! cleanly: one dropped mid-statement or mid-transaction (a cancelled request) is closed, so
//! the server rolls back whatever it held and no later caller inherits a half-read reply or an
//! open transaction.
//!
//! Each connection keeps its own cache of prepared statements (sqlx's, by SQL text), so a
//! statement is parsed and planned once per connection and then costs one round trip.
//!
//! What it must never do: hand out a connection in an unknown state, wait forever for one, or
//! hide a failure (every failure is the caller's [`Error`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_core::Error;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgQueryResult, PgRow};
use sqlx::{Connection, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::DbError;

/// A connection idle longer than this is checked with a round trip before it is lent: long
/// enough that a busy node never pays for the check, short enough that a connection the server
/// ended while the node was quiet fails the check rather than the caller's statement.
pub(crate) const CHECK_IDLE_AFTER: Duration = Duration::from_secs(20);

/// Prepared statements kept per connection. The store has about a hundred fixed statements
/// and list reads assembled from filters; more than that are evicted least recently used.
pub(crate) const STATEMENT_CACHE: usize = 400;

/// Round trips to the server since the pool was made, by what they were for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundTrips {
    /// Statements run (each one request and its reply).
    pub statements: u64,
    /// Statements seen for the first time on their connection: parsed and described first, one
    /// more round trip each. Steady state: zero.
    pub prepares: u64,
    /// `BEGIN`, `COMMIT` and `ROLLBACK`.
    pub transaction_bounds: u64,
    /// Checks of connections that sat idle (see [`CHECK_IDLE_AFTER`]).
    pub checks: u64,
    /// Times a connection was lent (to a read, a write, or a transaction). Not a round trip:
    /// sqlx's pool spent two on each (a check when lending, one on return).
    pub lendings: u64,
}

impl RoundTrips {
    /// Every exchange with the server.
    pub fn total(&self) -> u64 {
        self.statements + self.prepares + self.transaction_bounds + self.checks
    }

    /// What changed between an earlier reading and this one.
    pub fn since(&self, earlier: &RoundTrips) -> RoundTrips {
        RoundTrips {
            statements: self.statements - earlier.statements,
            prepares: self.prepares - earlier.prepares,
            transaction_bounds: self.transaction_bounds - earlier.transaction_bounds,
            checks: self.checks - earlier.checks,
            lendings: self.lendings - earlier.lendings,
        }
    }
}

#[derive(Default)]
struct Counters {
    statements: AtomicU64,
    prepares: AtomicU64,
    transaction_bounds: AtomicU64,
    checks: AtomicU64,
    lendings: AtomicU64,
}

struct Idle {
    conn: PgConnection,
    since: Instant,
}

struct Inner {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    /// Connections open, idle ones included.
    open: AtomicU32,
    closed: AtomicBool,
    counters: Counters,
}

/// The pool. Cheap to clone.
#[derive(Clone)]
pub(crate) struct PgPool {
    inner: Arc<Inner>,
}

impl PgPool {
    /// Makes the pool and opens its first connection, so that a wrong URL or an unreachable
    /// server fails here rather than at the first request.
    pub(crate) async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<PgPool, sqlx::Error> {
        let options = options.statement_cache_capacity(STATEMENT_CACHE);
        let first = PgConnection::connect_with(&options).await?;
        let pool = PgPool {
            inner: Arc::new(Inner {
                options,
                idle: Mutex::new(vec![Idle {
                    conn: first,
                    since: Instant::now(),
                }]),
                permits: Arc::new(Semaphore::new(max_connections.max(1) as usize)),
                acquire_timeout,
                open: AtomicU32::new(1),
                closed: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        };
        Ok(pool)
    }

    /// A connection for one read, one write or one transaction; waits at most the acquire
    /// timeout for one to be free.
    pub(crate) async fn acquire(&self) -> Result<PgConn, Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Unavailable("the database is closed".to_string()));
        }
        let permit =
            tokio::time::timeout(inner.acquire_timeout, inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| {
                    Error::Unavailable(
                        "no database connection became free in time; the pool is busy".to_string(),
                    )
                })?
                .map_err(|_| Error::Unavailable("the database is closed".to_string()))?;
        inner.counters.lendings.fetch_add(1, Ordering::Relaxed);
        // Most recently used first: it is the least likely to have been dropped.
        loop {
            let idle = inner.idle.lock().map_err(poisoned)?.pop();
            let Some(Idle { mut conn, since }) = idle else {
                break;
            };
            if since.elapsed() < CHECK_IDLE_AFTER {
                return Ok(PgConn::lent(self.inner.clone(), conn, permit));
            }
            inner.counters.checks.fetch_add(1, Ordering::Relaxed);
            if conn.ping().await.is_ok() {
                return Ok(PgConn::lent(self.inner.clone(), conn, permit));
            }
            // Gone while idle: forget it and try the next one.
            inner.open.fetch_sub(1, Ordering::Relaxed);
        }
        let conn = PgConnection::connect_with(&inner.options)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot connect to the database: {e}")))?;
        inner.open.fetch_add(1, Ordering::Relaxed);
        Ok(PgConn::lent(self.inner.clone(), conn, permit))
    }

    /// How the pool's connections are opened (for the migrations' own short-lived pool).
    pub(crate) fn connect_options(&self) -> &PgConnectOptions {
        &self.inner.options
    }

    /// Open connections, and how many of them are idle.
    pub(crate) fn stats(&self) -> (u32, u32) {
        let idle = self
            .inner
            .idle
            .lock()
            .map(|idle| u32::try_from(idle.len()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        (self.inner.open.load(Ordering::Relaxed), idle)
    }

    pub(crate) fn round_trips(&self) -> RoundTrips {
        let c = &self.inner.counters;
        RoundTrips {
            statements: c.statements.load(Ordering::Relaxed),
            prepares: c.prepares.load(Ordering::Relaxed),
            transaction_bounds: c.transaction_bounds.load(Ordering::Relaxed),
            checks: c.checks.load(Ordering::Relaxed),
            lendings: c.lendings.load(Ordering::Relaxed),
        }
    }

    /// Closes the idle connections; connections in use are closed when they come back, and
    /// later acquisitions fail with 503.
    pub(crate) async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.permits.close();
        let idle = match self.inner.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => Vec::new(),
        };
        for Idle { conn, .. } in idle {
            self.inner.open.fetch_sub(1, Ordering::Relaxed);
            let _ = conn.close().await;
        }
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Internal("the connection pool's lock was poisoned".to_string())
}

/// A lent connection. It goes back to the pool when dropped if its last exchange finished
/// and no transaction is open; otherwise it is closed.
pub(crate) struct PgConn {
    pool: Arc<Inner>,
    conn: Option<PgConnection>,
    /// False from the moment a request is sent until its reply has been read in full.
    clean: bool,
    /// From `BEGIN` being sent until `COMMIT` or `ROLLBACK` has been answered.
    in_transaction: bool,
    _permit: OwnedSemaphorePermit,
}

impl PgConn {
    fn lent(pool: Arc<Inner>, conn: PgConnection, permit: OwnedSemaphorePermit) -> PgConn {
        PgConn {
            pool,
            conn: Some(conn),
            clean: true,
            in_transaction: false,
            _permit: permit,
        }
    }

    fn raw(&mut self) -> Result<&mut PgConnection, DbError> {
        self.conn.as_mut().ok_or(DbError::Closed)
    }

    /// Marks the connection busy before a statement is sent; the prepared statements it
    /// holds, to tell afterwards whether the statement had to be prepared.
    fn start(&mut self) -> Result<usize, DbError> {
        self.clean = false;
        Ok(self.raw()?.cached_statements_size())
    }

    /// Counts a statement's round trips. A failure the server reported (a constraint, a syntax
    /// error) leaves the connection usable; any other leaves it unclean, to be closed.
    fn finish<T>(&mut self, cached: usize, outcome: Result<T, sqlx::Error>) -> Result<T, DbError> {
        let counters = &self.pool.counters;
        counters.statements.fetch_add(1, Ordering::Relaxed);
        if self
            .conn
            .as_ref()
            .is_some_and(|conn| conn.cached_statements_size() > cached)
        {
            counters.prepares.fetch_add(1, Ordering::Relaxed);
        }
        self.clean = matches!(&outcome, Ok(_) | Err(sqlx::Error::Database(_)));
        outcome.map_err(DbError::Sqlx)
    }

    pub(crate) async fn execute(
        &mut self,
        statement: sqlx::query::Query<'_, sqlx::Postgres, PgArguments>,
    ) -> Result<PgQueryResult, DbError> {
        let cached = self.start()?;
        let outcome = statement.execute(self.raw()?).await;
        self.finish(cached, outcome)
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        statement: sqlx::query::Query<'_, sqlx::Postgres, PgArguments>,
    ) -> Result<Option<PgRow>, DbError> {
        let cached = self.start()?;
        let outcome = statement.fetch_optional(self.raw()?).await;
        self.finish(cached, outcome)
    }

    pub(crate) async fn fetch_all(
        &mut self,
        statement: sqlx::query::Query<'_, sqlx::Postgres, PgArguments>,
    ) -> Result<Vec<PgRow>, DbError> {
        let cached = self.start()?;
        let outcome = statement.fetch_all(self.raw()?).await;
        self.finish(cached, outcome)
    }

    /// Opens a transaction. The connection is unclean until [`PgConn::commit`] or
    /// [`PgConn::rollback`] finishes: dropped before that, it is closed and the server rolls
    /// the transaction back.
    pub(crate) async fn begin(&mut self) -> Result<(), DbError> {
        self.in_transaction = true;
        self.bound("BEGIN").await
    }

    pub(crate) async fn commit(&mut self) -> Result<(), DbError> {
        self.bound("COMMIT").await?;
        self.in_transaction = false;
        Ok(())
    }

    pub(crate) async fn rollback(&mut self) -> Result<(), DbError> {
        self.bound("ROLLBACK").await?;
        self.in_transaction = false;
        Ok(())
    }

    async fn bound(&mut self, sql: &'static str) -> Result<(), DbError> {
        self.pool
            .counters
            .transaction_bounds
            .fetch_add(1, Ordering::Relaxed);
        self.clean = false;
        let outcome = sqlx::raw_sql(sql).execute(self.raw()?).await;
        self.clean = matches!(&outcome, Ok(_) | Err(sqlx::Error::Database(_)));
        outcome?;
        Ok(())
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.clean
            && !self.in_transaction
            && !self.pool.closed.load(Ordering::Acquire)
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
            return;
        }
        // Unclean, or the pool is closing: the socket closes with the connection, and the
        // server ends its session (rolling back an open transaction).
        self.pool.open.fetch_sub(1, Ordering::Relaxed);
        drop(conn);
    }
}
