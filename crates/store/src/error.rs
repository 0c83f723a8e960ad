//! Turning sqlx failures into the domain's [`Error`].
//!
//! The rule: a caller must be able to tell "you asked for something impossible" (409, 404) from
//! "try again later" (503) from "this is a bug" (500) without reading driver text. Uniqueness and
//! missing-row outcomes are named by the write that caused them (see `write.rs`); this module
//! handles everything that has no better context.

use portcullis_core::Error;
use sqlx::error::{DatabaseError, ErrorKind};

/// Maps an error with no write context: reads, `BEGIN`, `COMMIT`, pings.
pub(crate) fn storage(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => Error::Unavailable(err.to_string()),
        sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
            Error::Unavailable(db.message().to_string())
        }
        _ => Error::Internal(format!("storage: {err}")),
    }
}

/// Failures that say nothing about the request and may pass if it is repeated: the server went
/// away, refused more connections, or (SQLite) another writer held the lock past the busy
/// timeout, or (PostgreSQL) the transaction lost a deadlock or serialization race.
fn is_transient(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    // SQLite reports its (extended) result code as a decimal number; the primary code is the
    // low byte. 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
    if let Ok(number) = code.parse::<i64>() {
        return matches!(number & 0xff, 5 | 6);
    }
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
pub(crate) fn classify(err: sqlx::Error) -> Result<Violation, Error> {
    if let sqlx::Error::Database(db) = &err {
        let detail =
            || format!("{} {}", db.constraint().unwrap_or_default(), db.message()).to_lowercase();
        match db.kind() {
            ErrorKind::UniqueViolation => return Ok(Violation::Unique { detail: detail() }),
            ErrorKind::ForeignKeyViolation => return Ok(Violation::ForeignKey),
            _ => {}
        }
    }
    Err(storage(err))
}
