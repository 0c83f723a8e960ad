//! One way to state a statement and read its rows, whichever database runs it.
//!
//! The store's queries are written once, as SQL text with `$1`-style placeholders that SQLite
//! and PostgreSQL both accept, plus the values bound to them ([`Query`]). PostgreSQL runs them
//! through sqlx's native driver on the store's own pool (`pg.rs`), each statement prepared once
//! per connection; SQLite runs them through rusqlite on the calling thread or on the store's
//! writer thread (`lite.rs` says why). Rows come back as one [`Row`] type, read by
//! column name, so the decoding in `rows.rs` is shared as well.
//!
//! Inside a write transaction the statements go through a [`Conn`]. Its methods are `async`
//! for PostgreSQL's sake; on SQLite they finish without ever waiting, which is what lets the
//! writer thread run the same transaction code without an async runtime.

use std::borrow::Cow;
use std::sync::Arc;

use portcullis_core::Error;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row as _};

use crate::Dialect;
use crate::counts::Counters;
use crate::error;
use crate::pg::{PgConn, PgPool};

/// A value bound to a placeholder. The store keeps only BIGINT, TEXT and (for sealed keys)
/// binary columns; a NULL keeps its type, which PostgreSQL needs to plan the statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(Some(value))
    }
}

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        Param::Int(value)
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_string()))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<Vec<u8>> for Param {
    fn from(value: Vec<u8>) -> Self {
        Param::Blob(Some(value))
    }
}

impl From<Option<Vec<u8>>> for Param {
    fn from(value: Option<Vec<u8>>) -> Self {
        Param::Blob(value)
    }
}

/// SQL text and the values for its placeholders, in `$n` order.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) params: Vec<Param>,
}

/// A statement whose text is fixed at compile time.
pub(crate) fn query(sql: &'static str) -> Query {
    Query {
        sql: Cow::Borrowed(sql),
        params: Vec::new(),
    }
}

/// A statement whose text was put together at run time. Only ever from fixed fragments and
/// whitelisted column names; values are bound, never interpolated.
pub(crate) fn assembled(sql: String) -> Query {
    Query {
        sql: Cow::Owned(sql),
        params: Vec::new(),
    }
}

impl Query {
    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, value: impl Into<Param>) -> Query {
        self.params.push(value.into());
        self
    }

    /// The same statement for sqlx (PostgreSQL).
    fn to_sqlx(&self) -> sqlx::query::Query<'static, Postgres, PgArguments> {
        let mut statement = match &self.sql {
            Cow::Borrowed(sql) => sqlx::query(*sql),
            Cow::Owned(sql) => sqlx::query(AssertSqlSafe(sql.clone())),
        };
        for param in &self.params {
            statement = match param.clone() {
                Param::Int(value) => statement.bind(value),
                Param::Text(value) => statement.bind(value),
                Param::Blob(value) => statement.bind(value),
            };
        }
        statement
    }
}

/// A row of SQLite values with the names of its columns (shared by the rows of one result).
#[derive(Debug, Clone)]
pub(crate) struct LiteRow {
    pub(crate) names: Arc<[String]>,
    pub(crate) values: Vec<rusqlite::types::Value>,
}

/// A row from either database, read by column name.
pub(crate) enum Row {
    Pg(PgRow),
    Lite(LiteRow),
}

/// A column the schema guarantees but the row did not give as expected: a defect or a
/// hand-edited database, never the caller's fault.
pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored column '{column}' cannot be read: {detail}"))
}

impl Row {
    fn lite_value<'r>(row: &'r LiteRow, column: &str) -> Result<&'r rusqlite::types::Value, Error> {
        row.names
            .iter()
            .position(|name| name == column)
            .and_then(|at| row.values.get(at))
            .ok_or_else(|| corrupt(column, "no such column in the result"))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, Error> {
        use rusqlite::types::Value;
        match self {
            Row::Pg(row) => row
                .try_get::<Option<String>, _>(column)
                .map_err(|e| corrupt(column, e)),
            Row::Lite(row) => match Row::lite_value(row, column)? {
                Value::Null => Ok(None),
                Value::Text(text) => Ok(Some(text.clone())),
                other => Err(corrupt(column, format!("expected text, found {other:?}"))),
            },
        }
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, Error> {
        self.opt_text(column)?
            .ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, Error> {
        use rusqlite::types::Value;
        match self {
            Row::Pg(row) => row
                .try_get::<Option<i64>, _>(column)
                .map_err(|e| corrupt(column, e)),
            Row::Lite(row) => match Row::lite_value(row, column)? {
                Value::Null => Ok(None),
                Value::Integer(n) => Ok(Some(*n)),
                other => Err(corrupt(
                    column,
                    format!("expected an integer, found {other:?}"),
                )),
            },
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, Error> {
        self.opt_int(column)?
            .ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    pub(crate) fn opt_blob(&self, column: &str) -> Result<Option<Vec<u8>>, Error> {
        use rusqlite::types::Value;
        match self {
            Row::Pg(row) => row
                .try_get::<Option<Vec<u8>>, _>(column)
                .map_err(|e| corrupt(column, e)),
            Row::Lite(row) => match Row::lite_value(row, column)? {
                Value::Null => Ok(None),
                Value::Blob(bytes) => Ok(Some(bytes.clone())),
                other => Err(corrupt(column, format!("expected bytes, found {other:?}"))),
            },
        }
    }

    pub(crate) fn blob(&self, column: &str) -> Result<Vec<u8>, Error> {
        use rusqlite::types::Value;
        match self {
            Row::Pg(row) => row
                .try_get::<Vec<u8>, _>(column)
                .map_err(|e| corrupt(column, e)),
            Row::Lite(row) => match Row::lite_value(row, column)? {
                Value::Blob(bytes) => Ok(bytes.clone()),
                other => Err(corrupt(column, format!("expected bytes, found {other:?}"))),
            },
        }
    }
}

/// What running a statement can fail with, before it is put in the caller's terms
/// ([`error::storage`], [`error::classify`]).
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlx(sqlx::Error),
    Lite(rusqlite::Error),
    /// The store was closed, or its writer is gone.
    Closed,
    /// A statement on SQLite did not finish at once: a defect in the store (see `lite.rs`).
    Waited,
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        DbError::Sqlx(e)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Lite(e)
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Sqlx(e) => write!(f, "{e}"),
            DbError::Lite(e) => write!(f, "{e}"),
            DbError::Closed => f.write_str("the store is closed"),
            DbError::Waited => f.write_str("a SQLite statement did not complete at once"),
        }
    }
}

/// The connection of a write transaction, on either database. Passed by value into the
/// transaction's body (see [`crate::SqlStore::write`]), which counts its statements.
pub(crate) struct Conn<'c> {
    link: Link<'c>,
    counters: Option<Arc<Counters>>,
}

enum Link<'c> {
    Pg(&'c mut PgConn),
    Lite(&'c mut rusqlite::Connection),
}

impl<'c> Conn<'c> {
    pub(crate) fn pg(conn: &'c mut PgConn) -> Conn<'c> {
        Conn {
            link: Link::Pg(conn),
            counters: None,
        }
    }

    pub(crate) fn lite(conn: &'c mut rusqlite::Connection) -> Conn<'c> {
        Conn {
            link: Link::Lite(conn),
            counters: None,
        }
    }

    /// The same connection, its statements added to `counters`.
    pub(crate) fn counted(self, counters: Arc<Counters>) -> Conn<'c> {
        Conn {
            counters: Some(counters),
            ..self
        }
    }

    fn count(&self) {
        if let Some(counters) = &self.counters {
            counters.written_statement();
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.link {
            Link::Pg(_) => Dialect::Postgres,
            Link::Lite(_) => Dialect::Sqlite,
        }
    }

    /// Runs a statement that returns no rows; how many rows it changed.
    pub(crate) async fn execute(&mut self, q: Query) -> Result<u64, DbError> {
        self.count();
        match &mut self.link {
            Link::Pg(conn) => Ok(conn.execute(q.to_sqlx()).await?.rows_affected()),
            Link::Lite(conn) => Ok(crate::lite::execute(conn, &q)?),
        }
    }

    pub(crate) async fn fetch_optional(&mut self, q: Query) -> Result<Option<Row>, DbError> {
        self.count();
        match &mut self.link {
            Link::Pg(conn) => Ok(conn.fetch_optional(q.to_sqlx()).await?.map(Row::Pg)),
            Link::Lite(conn) => Ok(crate::lite::fetch(conn, &q, Some(1))?.pop()),
        }
    }

    pub(crate) async fn fetch_all(&mut self, q: Query) -> Result<Vec<Row>, DbError> {
        self.count();
        match &mut self.link {
            Link::Pg(conn) => Ok(conn
                .fetch_all(q.to_sqlx())
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect()),
            Link::Lite(conn) => Ok(crate::lite::fetch(conn, &q, None)?),
        }
    }
}

/// Whether a statement failed because the connection was gone (the server restarted, or ended
/// a connection that sat in the pool): nothing reached the database, and a read may be asked
/// again on another connection.
pub(crate) fn connection_lost(err: &DbError) -> bool {
    matches!(err, DbError::Sqlx(sqlx::Error::Io(_)) | DbError::Closed)
}

/// Reads on a PostgreSQL pool, outside any transaction: one round trip each. A read that found
/// its connection gone is asked once more on another (reads change nothing, so asking twice is
/// safe; writes are never repeated).
pub(crate) async fn pg_fetch_optional(pool: &PgPool, q: &Query) -> Result<Option<Row>, Error> {
    let mut conn = pool.acquire().await?;
    let found = match conn.fetch_optional(q.to_sqlx()).await {
        Err(e) if connection_lost(&e) => {
            drop(conn);
            pool.acquire().await?.fetch_optional(q.to_sqlx()).await
        }
        other => other,
    };
    Ok(found.map_err(error::storage)?.map(Row::Pg))
}

pub(crate) async fn pg_fetch_all(pool: &PgPool, q: &Query) -> Result<Vec<Row>, Error> {
    let mut conn = pool.acquire().await?;
    let found = match conn.fetch_all(q.to_sqlx()).await {
        Err(e) if connection_lost(&e) => {
            drop(conn);
            pool.acquire().await?.fetch_all(q.to_sqlx()).await
        }
        other => other,
    };
    Ok(found
        .map_err(error::storage)?
        .into_iter()
        .map(Row::Pg)
        .collect())
}

pub(crate) async fn pg_execute(pool: &PgPool, q: &Query) -> Result<u64, Error> {
    let mut conn = pool.acquire().await?;
    Ok(conn
        .execute(q.to_sqlx())
        .await
        .map_err(error::storage)?
        .rows_affected())
}
