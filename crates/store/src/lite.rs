//! SQLite, run through rusqlite: reads on the calling thread, every write on one writer thread
//! that commits whatever has queued up together.
//!
//! Why not through sqlx like PostgreSQL: sqlx drives each SQLite connection from a thread of
//! its own and every statement is a message there and a message back, so a sign-in's thirty-odd
//! statements cost sixty-odd thread switches. Under load that was over half of the server's
//! CPU (kernel scheduling, futexes, channel wake-ups; BENCHMARKS.md). Here:
//!
//! - **Reads** run where they are asked for. A read by key from SQLite's page cache takes a
//!   few microseconds, less than one thread switch; connections wait in a small pool of idle
//!   ones and a read that finds none opens another. List pages (whose filters may scan a
//!   table) go to tokio's blocking threads instead ([`Engine::read_blocking`]).
//! - **Writes** are jobs for the writer thread, which owns the one writing connection. It takes
//!   every job that has queued, runs each in a savepoint of one `BEGIN IMMEDIATE` transaction
//!   (a failing job rolls back only its own savepoint), commits once, and only then answers each
//!   caller: nothing is acknowledged before it is committed. One commit for many sign-in steps
//!   is where the throughput comes from; a job runs alone when nothing else is waiting.
//! - **Checkpoints** of the write-ahead log run on a thread of their own, beside the writer
//!   rather than inside its commits (BENCHMARKS.md tells what that was worth). When the log
//!   is long, the writer copies the last few frames itself right after a commit, so that the
//!   log can start again from its beginning: under constant load a log only checkpointed from
//!   beside the writer is never entirely copied at the moment the writer begins, and grows
//!   without end.
//!
//! The transaction code is the same `async` code that runs on PostgreSQL ([`Conn`]); on SQLite
//! its statements finish without waiting, so the writer polls it once with a no-op waker. A
//! job that would wait is a defect and fails with an internal error, never hangs the writer.
//!
//! An in-memory database (`sqlite::memory:`, for tests) is one connection behind a mutex that
//! readers and the writer take in turn: each connection would otherwise be a database of its
//! own.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_core::future::BoxFuture;
use portcullis_core::Error;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use crate::db::{Conn, DbError, LiteRow, Param, Query, Row};
use crate::error;

/// Jobs committed in one transaction at most; a bound on how long the first of them waits.
const MAX_BATCH: usize = 128;

/// Idle reading connections kept for the next reads.
const IDLE_READERS: usize = 8;

/// How often the checkpoint thread copies the log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// A log this long (64 MiB of 4 KiB pages) is started again: the checkpoint thread asks the
/// writer to finish the copy. Each time holds every write up for the writer's copy and two file
/// synchronisations, 10 to 50 ms under full load on the machines here (the sign-in p99 rose by
/// about 15 ms); shorter logs mean more of those stalls (throughput fell 12% at 1,000 frames),
/// longer ones more disk (BENCHMARKS.md).
const LONG_LOG_FRAMES: i64 = 16_384;

/// Frames the checkpoint thread leaves for the writer to copy when the log starts again.
const SMALL_REST_FRAMES: i64 = 512;

/// Prepared statements kept per connection: every fixed query of the store fits.
const STATEMENT_CACHE: usize = 256;

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    File { path: PathBuf, create: bool },
    Memory,
}

/// Reads `sqlite://PATH?mode=rwc`, `sqlite:PATH`, `sqlite::memory:` and `mode=memory`, as
/// sqlx did: a missing file is created only with `mode=rwc`.
pub(crate) fn parse_url(url: &str) -> Result<Target, Error> {
    let invalid =
        |why: &str| Error::invalid("database_url", format!("invalid database URL: {why}"));
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| invalid("it must start with sqlite:"))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, options) = match rest.split_once('?') {
        Some((path, options)) => (path, options),
        None => (rest, ""),
    };
    let mut mode = None;
    for option in options.split('&').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("mode", value)) => mode = Some(value),
            _ => return Err(invalid(&format!("unknown option '{option}'"))),
        }
    }
    if path == ":memory:" || mode == Some("memory") {
        return Ok(Target::Memory);
    }
    if path.is_empty() {
        return Err(invalid("no file named"));
    }
    let create = match mode {
        None | Some("rw") => false,
        Some("rwc") => true,
        Some(other) => return Err(invalid(&format!("mode '{other}' is not supported"))),
    };
    Ok(Target::File {
        path: PathBuf::from(path),
        create,
    })
}

/// Opens a connection with the settings every connection gets. WAL lets readers run beside
/// the writer; NORMAL is durable across application crashes in WAL mode; SQLite leaves foreign
/// keys off unless asked; the busy timeout makes a connection wait for a lock another process
/// holds instead of failing at once. (Memory-mapped reads were tried and left off: every mapped
/// page counts in the server's resident memory, which then grows with the sign-in log.)
fn open(target: &Target, create: bool) -> Result<Connection, DbError> {
    let conn = match target {
        Target::Memory => Connection::open_in_memory()?,
        Target::File { path, .. } => {
            let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            if create {
                flags |= OpenFlags::SQLITE_OPEN_CREATE;
            }
            Connection::open_with_flags(path, flags)?
        }
    };
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Without the planner's stability guarantee SQLite marks a prepared statement stale
    // whenever a new value is bound where it compares a parameter with an indexed expression,
    // and prepares it again at its next step: a fifth of all read time under sign-in load
    // (BENCHMARKS.md). The store's plans never depend on the values bound.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// Binds `q`'s values by the number in each placeholder's name (`$3` takes the third), so a
/// text may use its placeholders in any order and more than once.
fn bind(statement: &mut rusqlite::Statement<'_>, params: &[Param]) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                rusqlite::Error::InvalidParameterName(format!("placeholder {index} is not $n"))
            })?;
        let param = params.get(number.wrapping_sub(1)).ok_or_else(|| {
            rusqlite::Error::InvalidParameterName(format!("nothing bound to ${number}"))
        })?;
        match param {
            Param::Int(Some(n)) => statement.raw_bind_parameter(index, n)?,
            Param::Text(Some(text)) => statement.raw_bind_parameter(index, text.as_str())?,
            Param::Blob(Some(bytes)) => statement.raw_bind_parameter(index, bytes.as_slice())?,
            Param::Int(None) | Param::Text(None) | Param::Blob(None) => {
                statement.raw_bind_parameter(index, rusqlite::types::Null)?
            }
        }
    }
    Ok(())
}

/// Runs `q` and returns its rows (all of them, or the first `limit`).
pub(crate) fn fetch(
    conn: &Connection,
    q: &Query,
    limit: Option<usize>,
) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare_cached(&q.sql)?;
    bind(&mut statement, &q.params)?;
    let names: Arc<[String]> = statement.column_names().map(str::to_string).collect();
    let width = names.len();
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for at in 0..width {
            values.push(match row.get_ref(at)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => Value::Integer(n),
                rusqlite::types::ValueRef::Real(r) => Value::Real(r),
                rusqlite::types::ValueRef::Text(bytes) => Value::Text(
                    std::str::from_utf8(bytes)
                        .map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                at,
                                rusqlite::types::Type::Text,
                                Box::new(e),
                            )
                        })?
                        .to_string(),
                ),
                rusqlite::types::ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
            });
        }
        out.push(Row::Lite(LiteRow {
            names: names.clone(),
            values,
        }));
        if limit.is_some_and(|limit| out.len() >= limit) {
            break;
        }
    }
    Ok(out)
}

/// Runs a statement that returns no rows; how many rows it changed.
pub(crate) fn execute(conn: &Connection, q: &Query) -> rusqlite::Result<u64> {
    let mut statement = conn.prepare_cached(&q.sql)?;
    bind(&mut statement, &q.params)?;
    Ok(statement.raw_execute()? as u64)
}

/// Polls a future once; on SQLite every statement completes during that poll.
fn finish_now<T>(future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => Err(error::storage(DbError::Waited)),
    }
}

/// A write queued for the writer thread.
trait Job: Send {
    /// Runs inside the batch's transaction and says how it went; the answer waits for the
    /// commit.
    fn run(self: Box<Self>, conn: &mut Connection) -> Box<dyn Answer>;
    /// The job never ran: the transaction could not be started.
    fn refuse(self: Box<Self>, why: Error);
}

/// A job's result, held until its batch is committed (or is not).
trait Answer: Send {
    fn succeeded(&self) -> bool;
    /// `lost`: the batch was not committed, so a success did not last.
    fn send(self: Box<Self>, lost: Option<Error>);
}

/// The body of a write transaction, as [`crate::SqlStore::write`] takes it.
pub(crate) type Body<T> =
    Box<dyn for<'c> FnOnce(Conn<'c>) -> BoxFuture<'c, Result<T, Error>> + Send + 'static>;

struct WriteJob<T> {
    body: Body<T>,
    reply: tokio::sync::oneshot::Sender<Result<T, Error>>,
}

struct WriteAnswer<T> {
    result: Result<T, Error>,
    reply: tokio::sync::oneshot::Sender<Result<T, Error>>,
}

impl<T: Send + 'static> Job for WriteJob<T> {
    fn run(self: Box<Self>, conn: &mut Connection) -> Box<dyn Answer> {
        let WriteJob { body, reply } = *self;
        let result = finish_now(body(Conn::lite(conn)));
        Box::new(WriteAnswer { result, reply })
    }

    fn refuse(self: Box<Self>, why: Error) {
        let _ = self.reply.send(Err(why));
    }
}

impl<T: Send + 'static> Answer for WriteAnswer<T> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn send(self: Box<Self>, lost: Option<Error>) {
        let result = match (self.result, lost) {
            (Ok(_), Some(lost)) => Err(lost),
            (result, _) => result,
        };
        // The caller may have gone (a dropped request); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// The writing connection: its own, or (in memory) the one shared with readers.
enum WriterConn {
    Own(Box<Connection>),
    Shared(Arc<Mutex<Connection>>),
}

fn writer_thread(
    mut conn: WriterConn,
    jobs: mpsc::Receiver<Box<dyn Job>>,
    finish: Arc<AtomicBool>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match &mut conn {
            WriterConn::Own(conn) => {
                commit_batch(conn, batch);
                if finish.swap(false, Ordering::AcqRel) {
                    finish_checkpoint(conn);
                }
            }
            WriterConn::Shared(shared) => {
                let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
                commit_batch(&mut guard, batch);
            }
        }
    }
}

/// Runs a batch of jobs in one transaction, a savepoint each, and answers them after the
/// commit.
fn commit_batch(conn: &mut Connection, batch: Vec<Box<dyn Job>>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let why = error::storage(e);
        for job in batch {
            job.refuse(why.clone());
        }
        return;
    }
    let mut answers: Vec<Box<dyn Answer>> = Vec::with_capacity(batch.len());
    let mut broken = None;
    let mut pending = batch.into_iter();
    for job in pending.by_ref() {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            broken = Some((error::storage(e), Some(job)));
            break;
        }
        let answer = job.run(conn);
        let close = if answer.succeeded() {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        answers.push(answer);
        if let Err(e) = conn.execute_batch(close) {
            broken = Some((error::storage(e), None));
            break;
        }
    }
    let lost = match broken {
        None => match conn.execute_batch("COMMIT") {
            Ok(()) => None,
            Err(e) => Some(error::storage(e)),
        },
        Some((why, unrun)) => {
            if let Some(job) = unrun {
                job.refuse(why.clone());
            }
            for job in pending {
                job.refuse(why.clone());
            }
            Some(why)
        }
    };
    if lost.is_some() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer.send(lost.clone());
    }
}

/// A passive checkpoint: copies what it can of the log into the database file without waiting
/// for anyone. How many frames the log holds and how many of them are now copied.
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// The writer's part in keeping the log short: right after a commit, copy the few frames the
/// checkpoint thread has not copied yet. With every frame copied when the writer next begins,
/// SQLite starts the log again from its beginning instead of growing it (it grew by 2 GB in 12
/// seconds of sign-ins without this: BENCHMARKS.md).
fn finish_checkpoint(conn: &Connection) {
    if let Err(e) = checkpoint(conn) {
        tracing::warn!(error = %e, "checkpoint of the SQLite log failed");
    }
}

/// Copies the write-ahead log back into the database file, from a connection of its own, so
/// that the writer never does the bulk of that work: a passive checkpoint takes no lock the
/// writer needs. Once the log is long, it asks the writer to copy the rest (`finish`) so that
/// the log can start again. Ends when the engine goes.
fn checkpoint_thread(conn: Connection, stop: mpsc::Receiver<()>, finish: Arc<AtomicBool>) {
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        match checkpoint(&conn) {
            Ok((frames, _)) if frames >= LONG_LOG_FRAMES => {
                // Copy again while much remains: the writer holds every write up while it
                // copies and synchronises the rest, so the rest should be what one
                // checkpoint's time lets through.
                for _ in 0..4 {
                    match checkpoint(&conn) {
                        Ok((frames, copied)) if frames - copied > SMALL_REST_FRAMES => {}
                        _ => break,
                    }
                }
                finish.store(true, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background checkpoint of the SQLite log failed"),
        }
    }
}

/// Idle reading connections, or the one shared connection of an in-memory database.
enum Readers {
    Pool {
        target: Target,
        idle: Mutex<Vec<Connection>>,
    },
    Shared(Arc<Mutex<Connection>>),
}

/// The SQLite side of a [`crate::SqlStore`]. Dropping the last handle stops its threads once
/// the queued writes are done.
pub(crate) struct Engine {
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    readers: Readers,
    closed: AtomicBool,
    stop_checkpoints: Mutex<Option<mpsc::Sender<()>>>,
    /// The writer and checkpoint threads, joined by [`Engine::close`].
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Engine {
    /// Opens the database (creating the file when the URL says so) and starts the writer and
    /// checkpoint threads.
    pub(crate) fn open(target: Target) -> Result<Engine, Error> {
        let create = matches!(target, Target::File { create: true, .. });
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let spawn_error =
            |e: std::io::Error| Error::Internal(format!("cannot start a thread: {e}"));
        let engine = match &target {
            Target::Memory => {
                let shared = Arc::new(Mutex::new(open(&target, true).map_err(error::storage)?));
                let writer = WriterConn::Shared(shared.clone());
                let finish = Arc::new(AtomicBool::new(false));
                let writing = std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || writer_thread(writer, queue, finish))
                    .map_err(spawn_error)?;
                Engine {
                    jobs: Mutex::new(Some(jobs)),
                    readers: Readers::Shared(shared),
                    closed: AtomicBool::new(false),
                    stop_checkpoints: Mutex::new(None),
                    threads: Mutex::new(vec![writing]),
                }
            }
            Target::File { .. } => {
                let writer = open(&target, create).map_err(open_error)?;
                // The writer never checkpoints as it commits; the checkpoint thread does.
                // Each job of a batch runs in its own SAVEPOINT, and SQLite keeps what a
                // savepoint may have to undo in a statement journal: a temporary file unless
                // told otherwise, written page by page (two thirds of the writer's writes
                // under sign-in load were to it). In memory, it is a few pages per job.
                writer
                    .execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;")
                    .map_err(error::storage)?;
                let checkpointer = open(&target, false).map_err(open_error)?;
                let reader = open(&target, false).map_err(open_error)?;
                let writer = WriterConn::Own(Box::new(writer));
                let finish = Arc::new(AtomicBool::new(false));
                let asked = finish.clone();
                let writing = std::thread::Builder::new()
                    .name("sqlite-writer".into())
                    .spawn(move || writer_thread(writer, queue, finish))
                    .map_err(spawn_error)?;
                let (stop, stopped) = mpsc::channel();
                let checkpointing = std::thread::Builder::new()
                    .name("sqlite-checkpoint".into())
                    .spawn(move || checkpoint_thread(checkpointer, stopped, asked))
                    .map_err(spawn_error)?;
                Engine {
                    jobs: Mutex::new(Some(jobs)),
                    readers: Readers::Pool {
                        target,
                        idle: Mutex::new(vec![reader]),
                    },
                    closed: AtomicBool::new(false),
                    stop_checkpoints: Mutex::new(Some(stop)),
                    threads: Mutex::new(vec![checkpointing, writing]),
                }
            }
        };
        Ok(engine)
    }

    /// Runs `read` on a reading connection, on this thread.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(error::storage(DbError::Closed));
        }
        match &self.readers {
            Readers::Shared(shared) => {
                let conn = shared.lock().unwrap_or_else(|e| e.into_inner());
                read(&conn).map_err(error::storage)
            }
            Readers::Pool { target, idle } => {
                let spare = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let conn = match spare {
                    Some(conn) => conn,
                    None => open(target, false).map_err(open_error)?,
                };
                let result = read(&conn).map_err(error::storage);
                let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < IDLE_READERS && !self.closed.load(Ordering::Acquire) {
                    idle.push(conn);
                }
                result
            }
        }
    }

    /// Runs `read` on one of tokio's blocking threads: for reads that may take long.
    pub(crate) async fn read_blocking<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.read(read))
            .await
            .map_err(|e| Error::Internal(format!("a database read did not finish: {e}")))?
    }

    /// Queues a write transaction and waits for its commit.
    pub(crate) async fn write<T: Send + 'static>(&self, body: Body<T>) -> Result<T, Error> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn Job> = Box::new(WriteJob { body, reply });
        {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            let sent = match jobs.as_ref() {
                Some(jobs) if !self.closed.load(Ordering::Acquire) => jobs.send(job).is_ok(),
                _ => false,
            };
            if !sent {
                return Err(error::storage(DbError::Closed));
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(error::storage(DbError::Closed)))
    }

    /// Idle reading connections, for the pool gauges.
    pub(crate) fn idle_readers(&self) -> u32 {
        match &self.readers {
            Readers::Pool { idle, .. } => {
                let idle = idle.lock().unwrap_or_else(|e| e.into_inner()).len();
                u32::try_from(idle).unwrap_or(u32::MAX)
            }
            Readers::Shared(_) => 0,
        }
    }

    /// Stops taking work (later reads and writes fail with 503) and waits until the writes
    /// already queued are committed and answered and every connection is closed; the last one
    /// to close copies the write-ahead log back and removes it, so the next start has none to
    /// recover.
    pub(crate) async fn close(&self) {
        self.stop();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if threads.is_empty() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }

    /// Stops taking work; the threads end on their own once the queued writes are done.
    fn stop(&self) {
        self.closed.store(true, Ordering::Release);
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.stop_checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Readers::Pool { idle, .. } = &self.readers {
            idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn open_error(e: DbError) -> Error {
    match e {
        DbError::Lite(rusqlite::Error::SqliteFailure(failure, message))
            if failure.code == rusqlite::ErrorCode::CannotOpen =>
        {
            Error::Unavailable(format!(
                "cannot open the SQLite database: {}",
                message.unwrap_or_else(|| failure.to_string())
            ))
        }
        other => error::storage(other),
    }
}

/// Applies the embedded migrations that have not run yet, keeping sqlx's bookkeeping table
/// (`_sqlx_migrations`, checksums included) so that databases migrated by earlier releases,
/// through sqlx, carry on. Each migration and its row commit together.
pub(crate) fn migrate(
    engine: &Engine,
    migrator: &'static sqlx::migrate::Migrator,
) -> Result<(), Error> {
    let run = |conn: &mut Connection| -> Result<(), Error> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (\
             version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
             success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);",
        )
        .map_err(error::storage)?;
        let applied: Vec<(i64, bool, Vec<u8>)> = {
            let mut statement = conn
                .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
                .map_err(error::storage)?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .map_err(error::storage)?
                .collect::<rusqlite::Result<_>>()
                .map_err(error::storage)?
        };
        let failed = |why: String| Error::Internal(format!("migration failed: {why}"));
        if let Some((version, _, _)) = applied.iter().find(|(_, success, _)| !success) {
            return Err(failed(format!(
                "migration {version} is partially applied; repair the database by hand"
            )));
        }
        let known: Vec<_> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .collect();
        for (version, _, _) in &applied {
            if !known.iter().any(|m| m.version == *version) {
                return Err(failed(format!(
                    "the database has migration {version}, which this release does not know: \
                     it was migrated by a newer Portcullis"
                )));
            }
        }
        for migration in known {
            if let Some((_, _, checksum)) = applied.iter().find(|(v, _, _)| *v == migration.version)
            {
                if checksum.as_slice() != &*migration.checksum {
                    return Err(failed(format!(
                        "migration {} was changed after it was applied",
                        migration.version
                    )));
                }
                continue;
            }
            let started = Instant::now();
            let tx = conn.transaction().map_err(error::storage)?;
            tx.execute_batch(migration.sql.as_str()).map_err(|e| {
                failed(format!(
                    "migration {} ({}): {e}",
                    migration.version, migration.description
                ))
            })?;
            tx.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (?1, ?2, TRUE, ?3, ?4)",
                rusqlite::params![
                    migration.version,
                    migration.description.as_ref(),
                    migration.checksum.as_ref(),
                    i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
                ],
            )
            .map_err(error::storage)?;
            tx.commit().map_err(error::storage)?;
        }
        Ok(())
    };
    // Through the writer's queue would need the writer's connection; a migration runs before
    // anything else, so it takes a connection of its own (or the shared one).
    match &engine.readers {
        Readers::Shared(shared) => run(&mut shared.lock().unwrap_or_else(|e| e.into_inner())),
        Readers::Pool { target, .. } => {
            let mut conn = open(target, false).map_err(open_error)?;
            run(&mut conn)
        }
    }
}
