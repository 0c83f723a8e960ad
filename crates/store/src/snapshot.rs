//! Consistent copies of a SQLite database that a running server keeps writing, for
//! `portcullis backup`, and the soundness check `portcullis restore` runs on one.
//!
//! The copy is made with `VACUUM INTO`: one read transaction, so under WAL it sees one commit
//! and never blocks the writer (sign-ins go on while it runs), and the file it writes is a
//! complete database on its own (no `-wal` beside it), compacted. The online backup API would
//! copy page by page and start again whenever the server commits between steps, which under
//! sign-in load may never finish unless done in one step — which is what `VACUUM INTO` is.
//!
//! Must never: write to the database it copies, or call a copy sound without SQLite's
//! `integrity_check` saying `ok`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::lite::{Target, parse_url};

/// Why a copy could not be made or is not sound.
#[derive(Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The URL names no SQLite file (PostgreSQL, or an in-memory database).
    NotAFile(String),
    /// There is no database at this path.
    Missing(PathBuf),
    /// SQLite failed while copying or reading.
    Sqlite(String),
    /// The file is not a sound Portcullis database: what is wrong.
    Unsound(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::NotAFile(url) => write!(f, "{url} is not a SQLite database file"),
            SnapshotError::Missing(path) => write!(f, "there is no database at {}", path.display()),
            SnapshotError::Sqlite(e) => write!(f, "SQLite: {e}"),
            SnapshotError::Unsound(why) => write!(f, "the database is not sound: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

fn sqlite(e: rusqlite::Error) -> SnapshotError {
    SnapshotError::Sqlite(e.to_string())
}

/// The file a `sqlite:` database URL names.
pub fn database_file(database_url: &str) -> Result<PathBuf, SnapshotError> {
    match parse_url(database_url) {
        Ok(Target::File { path, .. }) => Ok(path),
        _ => Err(SnapshotError::NotAFile(database_url.to_string())),
    }
}

/// Copies the database at `database_url` into `destination` (which must not exist) as one
/// consistent snapshot, then checks the copy. Returns the copy's size in bytes.
pub fn copy_database(database_url: &str, destination: &Path) -> Result<u64, SnapshotError> {
    let source = database_file(database_url)?;
    if !source.is_file() {
        return Err(SnapshotError::Missing(source));
    }
    // Read-write so that a WAL database opens whether or not its -shm file is there; nothing
    // is written (VACUUM INTO only reads its source).
    let conn = Connection::open_with_flags(
        &source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sqlite)?;
    let target = destination
        .to_str()
        .ok_or_else(|| SnapshotError::Sqlite("the destination path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(sqlite)?;
    drop(conn);
    check_database(destination)?;
    std::fs::metadata(destination)
        .map(|m| m.len())
        .map_err(|e| SnapshotError::Sqlite(e.to_string()))
}

/// Whether the file is a sound Portcullis database: SQLite's `integrity_check` says `ok` and
/// it holds the schema's migrations table (`_sqlx_migrations`). Opened read-only; nothing is changed.
pub fn check_database(path: &Path) -> Result<(), SnapshotError> {
    if !path.is_file() {
        return Err(SnapshotError::Missing(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    let verdict: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| SnapshotError::Unsound(e.to_string()))?;
    if verdict != ["ok"] {
        return Err(SnapshotError::Unsound(verdict.join("; ")));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| SnapshotError::Unsound(e.to_string()))?;
    if tables != 1 {
        return Err(SnapshotError::Unsound(
            "it holds no Portcullis schema (no _sqlx_migrations table)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder under the system's temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("portcullis-snapshot-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_copy_is_checked_and_a_damaged_or_foreign_file_is_not_sound() {
        let scratch = Scratch::new("check");
        let source = scratch.0.join("source.db");
        let conn = Connection::open(&source).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE _sqlx_migrations (version BIGINT); \
             CREATE TABLE users (id TEXT); INSERT INTO users VALUES ('a'), ('b');",
        )
        .unwrap();
        // The source stays open, in WAL mode, as the server keeps it.
        let url = format!("sqlite://{}?mode=rwc", source.display());
        let copy = scratch.0.join("copy.db");
        let bytes = copy_database(&url, &copy).unwrap();
        assert!(bytes > 0);
        let users: i64 = Connection::open(&copy)
            .unwrap()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(users, 2);
        drop(conn);

        let foreign = scratch.0.join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            check_database(&foreign),
            Err(SnapshotError::Unsound(_))
        ));
        let junk = scratch.0.join("junk.db");
        std::fs::write(&junk, vec![7u8; 8192]).unwrap();
        assert!(check_database(&junk).is_err());
        // A database whose second page (a table's b-tree header and cell pointers) was
        // damaged fails SQLite's integrity check.
        let mut damaged = std::fs::read(&copy).unwrap();
        let page_size: usize = 4096;
        assert!(damaged.len() >= 2 * page_size);
        for b in &mut damaged[page_size..page_size + 200] {
            *b = 0xA5;
        }
        let damaged_path = scratch.0.join("damaged.db");
        std::fs::write(&damaged_path, damaged).unwrap();
        assert!(check_database(&damaged_path).is_err());

        assert_eq!(
            copy_database("postgres://db/x", &scratch.0.join("x.db")),
            Err(SnapshotError::NotAFile("postgres://db/x".into()))
        );
        assert!(matches!(
            copy_database(
                &format!("sqlite://{}", scratch.0.join("none.db").display()),
                &scratch.0.join("y.db")
            ),
            Err(SnapshotError::Missing(_))
        ));
    }
}
