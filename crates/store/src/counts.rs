//! How much a store has asked of its database: statements read outside any transaction, write
//! transactions, and the statements run inside them. Kept per store (clones share them), so
//! that a test can take the counts before and after one request and pin what that request
//! costs (`crates/testkit/tests/api/sign_in_cost.rs` does, for each leg of a passkey sign-in),
//! and a regression — a read repeated within a request, a write that leaves the step's
//! transaction — fails a test instead of showing up as a slower benchmark.
//!
//! What it must never do: change what runs, or cost more than a few relaxed atomic additions
//! per statement (they are always on; a statement costs microseconds).
//!
//! On SQLite a write transaction is one job for the writer thread: several jobs may share one
//! `COMMIT` under load (group commit), but each is a transaction its caller waits for. On
//! PostgreSQL it is one `BEGIN … COMMIT` (or one statement committing on its own), and each
//! statement is a round trip: reads + statements written + 2 per multi-statement transaction.

use std::ops::Sub;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters one store and its clones add to.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    reads: AtomicU64,
    write_transactions: AtomicU64,
    written_statements: AtomicU64,
}

impl Counters {
    /// One statement run outside any transaction (a read).
    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// One write transaction begun.
    pub(crate) fn write_transaction(&self) {
        self.write_transactions.fetch_add(1, Ordering::Relaxed);
    }

    /// One statement run inside a write transaction (reads there included).
    pub(crate) fn written_statement(&self) {
        self.written_statements.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatementCounts {
        StatementCounts {
            reads: self.reads.load(Ordering::Relaxed),
            write_transactions: self.write_transactions.load(Ordering::Relaxed),
            written_statements: self.written_statements.load(Ordering::Relaxed),
        }
    }
}

/// What a store has run since it was opened; subtract two to get what happened in between.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatementCounts {
    /// Statements outside any transaction: reads on a reading connection.
    pub reads: u64,
    /// Write transactions: writer jobs on SQLite, transactions on PostgreSQL.
    pub write_transactions: u64,
    /// Statements run inside those transactions.
    pub written_statements: u64,
}

impl StatementCounts {
    /// Every statement, read or written.
    pub fn statements(&self) -> u64 {
        self.reads + self.written_statements
    }
}

impl Sub for StatementCounts {
    type Output = StatementCounts;

    fn sub(self, earlier: StatementCounts) -> StatementCounts {
        StatementCounts {
            reads: self.reads.saturating_sub(earlier.reads),
            write_transactions: self
                .write_transactions
                .saturating_sub(earlier.write_transactions),
            written_statements: self
                .written_statements
                .saturating_sub(earlier.written_statements),
        }
    }
}

impl std::fmt::Display for StatementCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} reads, {} write transactions ({} statements)",
            self.reads, self.write_transactions, self.written_statements
        )
    }
}
