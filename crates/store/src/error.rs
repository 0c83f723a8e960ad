//! Turning database failures into the domain's [`Error`].
//!
//! The rule: a caller must be able to tell "you asked for something impossible" (409, 404) from
//! "try again later" (503) from "this is a bug" (500) without reading driver text. Uniqueness and
//! missing-row outcomes are named by the write that caused them (see `write.rs`); this module
//! handles everything that has no better context.

use portcullis_core::Error;
use rusqlite::ErrorCode;
use sqlx::error::{DatabaseError, ErrorKind};

use crate::db::DbError;

/// Maps an error with no write context: reads, `BEGIN`, `COMMIT`, pings.
pub(crate) fn storage(err: impl Into<DbError>) -> Error {
    match err.into() {
        DbError::Sqlx(err) => match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Error::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
                Error::Unavailable(db.message().to_string())
            }
            _ => Error::Internal(format!("storage: {err}")),
        },
        DbError::Lite(err) => match lite_code(&err) {
            // Another process held the lock past the busy timeout, or the disk is full or
            // gone: the request may pass later.
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen,
            ) => Error::Unavailable(err.to_string()),
            _ => Error::Internal(format!("storage: {err}")),
        },
        DbError::Closed => Error::Unavailable("the database is closed".to_string()),
        waited @ DbError::Waited => Error::Internal(format!("storage: {waited}")),
    }
}

fn lite_code(err: &rusqlite::Error) -> Option<ErrorCode> {
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    }
}

/// Failures that say nothing about the request and may pass if it is repeated: the server went
/// away, refused more connections, or the transaction lost a deadlock or serialization race.
fn is_transient(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    // PostgreSQL SQLSTATEs: 08 connection exception, 53 insufficient resources, 57P operator
    // intervention (shutdown, crash recovery), 40001 serialization failure, 40P01 deadlock.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
}

/// What a failed write ran into, when it is one of the outcomes a caller can act on.
pub(crate) enum Violation {
    /// A primary key or unique index refused the row. `detail` holds the constraint name (when
    /// the driver reports one) and the message, lowercased, so that the caller can tell which
    /// key clashed: PostgreSQL names the constraint, SQLite names the columns or the index.
    Unique { detail: String },
    /// A foreign key refused the row: the container it points at does not exist.
    ForeignKey,
}

/// Splits a write error into a violation the caller can name, or the generic mapping.
pub(crate) fn classify(err: DbError) -> Result<Violation, Error> {
    match &err {
        DbError::Sqlx(sqlx::Error::Database(db)) => {
            let detail = || {
                format!("{} {}", db.constraint().unwrap_or_default(), db.message()).to_lowercase()
            };
            match db.kind() {
                ErrorKind::UniqueViolation => return Ok(Violation::Unique { detail: detail() }),
                ErrorKind::ForeignKeyViolation => return Ok(Violation::ForeignKey),
                _ => {}
            }
        }
        DbError::Lite(rusqlite::Error::SqliteFailure(failure, message)) => {
            match failure.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    return Ok(Violation::Unique {
                        detail: message.clone().unwrap_or_default().to_lowercase(),
                    });
                }
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return Ok(Violation::ForeignKey),
                _ => {}
            }
        }
        _ => {}
    }
    Err(storage(err))
}
