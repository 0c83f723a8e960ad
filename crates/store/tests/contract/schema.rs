//! The schema and the connection: migrations (applied once, SQLite's bookkeeping kept as sqlx
//! keeps it, a changed migration refused, the two dialects' folders alike by name and by
//! content), URLs that cannot work, in-memory SQLite, a closed store, and scratch databases
//! that clean up after a panicking test.

use std::time::Duration;

use portcullis_core::Error;
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::testing::ScratchDatabase;
use portcullis_store::{Dialect, SqlStore, StoreOptions, connect};
use uuid::Uuid;

use crate::fixtures::{T0, commit, user};

contract!(migrate_twice_is_a_no_op);

async fn migrate_twice_is_a_no_op(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert_eq!(store.user(joni.id).await.unwrap(), Some(joni));
}

/// A migrated scratch SQLite database, its file path, and a direct connection to it.
async fn migrated_sqlite_file() -> (ScratchDatabase, std::path::PathBuf) {
    let scratch = ScratchDatabase::sqlite();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let path = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .into();
    (scratch, path)
}

#[tokio::test]
async fn sqlite_migrations_keep_sqlx_bookkeeping() {
    let (scratch, path) = migrated_sqlite_file().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<(i64, bool, i64)> = conn
        .prepare("SELECT version, success, length(checksum) FROM _sqlx_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let files = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite"),
    )
    .unwrap()
    .count();
    assert_eq!(rows.len(), files, "one row per migration file");
    assert_eq!(rows.first().map(|r| r.0), Some(1));
    // sqlx records a SHA-384 of each file: 48 bytes.
    assert!(
        rows.iter().all(|(_, success, len)| *success && *len == 48),
        "{rows:?}"
    );
    drop(conn);
    scratch.remove().await.unwrap();
}

/// Migrates a scratch SQLite database, alters its bookkeeping with `sql`, and migrates again.
async fn migrate_after(sql: &str) -> Result<(), Error> {
    let (scratch, path) = migrated_sqlite_file().await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    let result = store.migrate().await;
    store.close().await;
    scratch.remove().await.unwrap();
    result
}

#[tokio::test]
async fn sqlite_refuses_a_changed_or_unknown_migration() {
    match migrate_after("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1").await {
        Err(Error::Internal(message)) => {
            assert!(message.contains("migration 1 was changed"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match migrate_after(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, x'00', 0)",
    )
    .await
    {
        Err(Error::Internal(message)) => {
            assert!(message.contains("newer Portcullis"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match migrate_after("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2").await {
        Err(Error::Internal(message)) => {
            assert!(message.contains("partially applied"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn migration_folders_hold_the_same_file_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let names = |dialect: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dialect))
            .unwrap_or_else(|e| panic!("read migrations/{dialect}: {e}"))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

/// The differences the two migration folders may have, each as (why, the SQLite text, the
/// PostgreSQL text). Anything else that differs fails
/// [`migration_folders_hold_the_same_statements`]: a change made in one folder only, or a new
/// kind of difference, which then belongs on this list with its reason.
const KNOWN_DIALECT_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "0020 reads the stored audit bodies' targetResources: SQLite's json_each, PostgreSQL's \
         jsonb_array_elements (both name the element `value`)",
        "json_each(a.body, '$.targetResources')",
        "jsonb_array_elements(a.body::jsonb -> 'targetResources')",
    ),
    (
        "0001's header states the one difference from its own side",
        "The only difference from the PostgreSQL file is BLOB for BYTEA.",
        "The only difference from the SQLite file is BYTEA for BLOB.",
    ),
    (
        "each file's comments point at the other folder",
        "migrations/postgres",
        "migrations/sqlite",
    ),
    (
        "binary columns: SQLite's BLOB is PostgreSQL's BYTEA",
        "BLOB",
        "BYTEA",
    ),
    (
        "code-point order: SQLite's BINARY collation is PostgreSQL's \"C\"",
        "BINARY",
        "\"C\"",
    ),
];

/// `line` with every whole-word occurrence of `from` replaced by `to`.
fn replace_word(line: &str, from: &str, to: &str) -> (String, usize) {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::new();
    let mut rest = line;
    let mut count = 0;
    while let Some(i) = rest.find(from) {
        out.push_str(&rest[..i]);
        let before = out.chars().last();
        let after = rest[i + from.len()..].chars().next();
        if word(before) || word(after) {
            out.push_str(from);
        } else {
            out.push_str(to);
            count += 1;
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    (out, count)
}

#[test]
fn migration_folders_hold_the_same_statements() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut names: Vec<String> = std::fs::read_dir(root.join("sqlite"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut used = vec![0; KNOWN_DIALECT_DIFFERENCES.len()];
    for name in &names {
        let read = |dialect: &str| {
            std::fs::read_to_string(root.join(dialect).join(name))
                .unwrap_or_else(|e| panic!("read migrations/{dialect}/{name}: {e}"))
        };
        let (sqlite, postgres) = (read("sqlite"), read("postgres"));
        let (sqlite, postgres): (Vec<&str>, Vec<&str>) =
            (sqlite.lines().collect(), postgres.lines().collect());
        assert_eq!(
            sqlite.len(),
            postgres.len(),
            "{name}: the two folders' files have different lengths"
        );
        for (number, (lite, pg)) in sqlite.iter().zip(&postgres).enumerate() {
            let (mut lite, mut pg) = (lite.to_string(), pg.to_string());
            for (k, (_, in_sqlite, in_postgres)) in KNOWN_DIALECT_DIFFERENCES.iter().enumerate() {
                let marker = format!("<difference {k}>");
                let (l, found_l) = replace_word(&lite, in_sqlite, &marker);
                let (p, found_p) = replace_word(&pg, in_postgres, &marker);
                (lite, pg) = (l, p);
                used[k] += found_l.min(found_p);
            }
            assert_eq!(
                lite,
                pg,
                "migrations/sqlite/{name} and migrations/postgres/{name} differ at line {} in a \
                 way KNOWN_DIALECT_DIFFERENCES does not list",
                number + 1
            );
        }
    }
    for ((why, _, _), count) in KNOWN_DIALECT_DIFFERENCES.iter().zip(used) {
        assert!(
            count > 0,
            "no migration differs by \"{why}\" any more: take it off the list"
        );
    }
}

#[tokio::test]
async fn bad_urls_are_invalid_and_unreachable_servers_unavailable() {
    match connect("mysql://localhost/x", &StoreOptions::default()).await {
        Err(Error::Invalid { .. }) => {}
        other => panic!("expected invalid, got {:?}", other.map(|s| s.dialect())),
    }
    let options = StoreOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(2),
    };
    // Port 1 on the loopback: nothing listens there.
    match connect("postgres://postgres@127.0.0.1:1/none", &options).await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {:?}", other.map(|s| s.dialect())),
    }
}

#[tokio::test]
async fn in_memory_sqlite_keeps_one_database() {
    let store = connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("connect");
    assert_eq!(store.dialect(), Dialect::Sqlite);
    store.migrate().await.expect("migrate");
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    // Several reads at once must all see the same database.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let id = joni.id;
            tokio::spawn(async move { store.user(id).await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), Some(joni.clone()));
    }
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let scratch = ScratchDatabase::sqlite();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // Connections run in WAL mode: the write-ahead log sits beside the database file.
    let path = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_string();
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
    store.close().await;
    match store.ping().await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    match store
        .commit(vec![Change::DeleteUser(Uuid::new_v4())], None)
        .await
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    scratch.remove().await.unwrap();
}

/// A test that panics never reaches `remove`: dropping the guard must still delete the
/// database, or repeated runs would pile them up (on PostgreSQL when the variable is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_scratch_database_removes_it() {
    let scratch = ScratchDatabase::from_env().await.expect("scratch database");
    let url = scratch.url().to_string();
    let store = connect(&url, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    // Keep the pool open: removal must not wait for the test to close it.
    drop(scratch);
    match Dialect::from_url(&url).unwrap() {
        Dialect::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_end_matches("?mode=rwc");
            assert!(!std::path::Path::new(path).exists());
        }
        Dialect::Postgres => {
            assert!(store.ping().await.is_err(), "the database still answers");
            let options = StoreOptions {
                max_connections: 1,
                acquire_timeout: Duration::from_secs(2),
            };
            assert!(
                connect(&url, &options).await.is_err(),
                "the database still exists"
            );
        }
    }
}

/// Rows as a database from before migration 8 holds them: a tenant, the automation application
/// made with it, a first-party application made at the same instant, another application, a
/// group holding a role and one holding none.
const BEFORE_MIGRATION_8: &str = "
INSERT INTO tenant (id, display_name, created) VALUES ('t', 'Contoso', 1000);
INSERT INTO applications (id, app_id, display_name, is_fallback_public_client, web_redirect_uris,
    public_client_redirect_uris, spa_redirect_uris, api_permissions, created) VALUES
    ('automation', 'a1', 'Automation', 0, '[]', '[]', '[]', '[]', 1000),
    ('portal', '005cbd19-3de0-4238-a5c6-97d038f6c66d', 'Admin Portal', 0, '[]', '[]', '[]', '[]', 1000),
    ('later', 'a2', 'Later', 0, '[]', '[]', '[]', '[]', 2000);
INSERT INTO groups (id, display_name, security_enabled, created) VALUES
    ('admins', 'Admins', 1, 1000), ('readers', 'Readers', 1, 1000);
INSERT INTO role_assignments (id, principal_id, role_definition_id, directory_scope_id) VALUES
    ('r1', 'admins', '62e90394-69f5-4237-9190-012177145e10', '/');
";

const AFTER_MIGRATION_8: &str = "
SELECT id FROM groups WHERE is_assignable_to_role = 1
UNION ALL SELECT id FROM applications WHERE bootstrap_automation = 1";

fn migration_files(dialect: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(dialect);
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Migration 8 marks the groups that already hold a role as role-assignable, and the automation
/// application (made with the tenant) as such, on both databases.
#[tokio::test]
async fn upgrading_marks_role_holding_groups_and_the_automation_application() {
    let expected = vec!["admins".to_string(), "automation".to_string()];
    let split = |dialect| {
        let files = migration_files(dialect);
        let at = files
            .iter()
            .position(|(name, _)| name.starts_with("0008_"))
            .expect("migration 8");
        (files[..at].to_vec(), files[at].1.clone())
    };

    let (earlier, eighth) = split("sqlite");
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for (_, sql) in &earlier {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(BEFORE_MIGRATION_8).unwrap();
    conn.execute_batch(&eighth).unwrap();
    let marked: Vec<String> = conn
        .prepare(AFTER_MIGRATION_8)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut marked = marked;
    marked.sort();
    assert_eq!(marked, expected, "SQLite");

    let Ok(base) = std::env::var(portcullis_store::testing::TEST_DATABASE_URL_ENV) else {
        return;
    };
    use sqlx::{AssertSqlSafe, Connection, Row};
    let scratch = ScratchDatabase::postgres(base.trim()).await.unwrap();
    let mut pg = sqlx::PgConnection::connect(scratch.url()).await.unwrap();
    let (earlier, eighth) = split("postgres");
    for (_, sql) in &earlier {
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut pg)
            .await
            .unwrap();
    }
    for sql in [BEFORE_MIGRATION_8, &eighth] {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut pg)
            .await
            .unwrap();
    }
    let mut marked: Vec<String> = sqlx::query(AFTER_MIGRATION_8)
        .fetch_all(&mut pg)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    marked.sort();
    assert_eq!(marked, expected, "PostgreSQL");
    pg.close().await.unwrap();
    scratch.remove().await.unwrap();
}

/// Tokens of each kind as a database from before split tokens (migration 13) holds them.
struct LegacyTokens {
    cookie: String,
    session_id: Uuid,
    code: String,
    refresh: String,
    flow: portcullis_core::signin::SignInFlow,
}

impl LegacyTokens {
    fn new() -> LegacyTokens {
        use portcullis_core::kernel::entropy::{Entropy, SystemEntropy};
        let mut flow = crate::signin_flows::flow(portcullis_core::signin::FlowStep::Identify);
        flow.id = Uuid::new_v4();
        flow.secret_hash = None;
        LegacyTokens {
            cookie: SystemEntropy.secret_text(43),
            session_id: Uuid::now_v7(),
            code: SystemEntropy.secret_text(43),
            refresh: SystemEntropy.secret_text(64),
            flow,
        }
    }

    /// The rows, in the columns the tables had before migration 13.
    fn rows(&self) -> String {
        use portcullis_core::kernel::crypto::hash_secret;
        let far = 4_102_444_800_000i64;
        let (user, grant) = (Uuid::new_v4(), Uuid::now_v7());
        // The person exists and is enabled: a session is found only while that holds.
        format!(
            "INSERT INTO users (id, user_principal_name, display_name, mail, account_enabled, user_type, created) \
             VALUES ('{user}', 'legacy@contoso.com', 'Legacy', NULL, 1, 'Member', 1000);
             INSERT INTO oauth_grants (id, client_id, user_id, session_id, state, created, expires, revoked) \
             VALUES ('{grant}', 'c1', '{user}', NULL, '{{}}', 1000, {far}, NULL);
             INSERT INTO oauth_codes (code_hash, grant_id, redirect_uri, code_challenge, expires, used) \
             VALUES ('{}', '{grant}', 'https://app.contoso.com/callback', NULL, {far}, NULL);
             INSERT INTO oauth_refresh_tokens (token_hash, grant_id, created, expires, used) \
             VALUES ('{}', '{grant}', 1000, {far}, NULL);
             INSERT INTO auth_sessions (id, token_hash, user_id, methods, created, expires) \
             VALUES ('{}', '{}', '{user}', '[]', 1000, {far});
             INSERT INTO sign_in_flows (id, step, state, created, expires) \
             VALUES ('{}', 'identify', '{}', 1000, {far});",
            hash_secret(&self.code),
            hash_secret(&self.refresh),
            self.session_id,
            hash_secret(&self.cookie),
            self.flow.id,
            serde_json::to_string(&self.flow).unwrap().replace('\'', "''"),
        )
    }

    /// Each token still works once the database is migrated, looked up the old way; a split
    /// token never opens a row of the old kind, not even with the old row's id.
    async fn still_work(&self, store: &SqlStore) {
        use portcullis_core::kernel::split_token::{LegacyLookup, PresentedToken, TokenKey};
        use portcullis_core::oidc::Taken;
        fn old(text: &str) -> PresentedToken<'_> {
            PresentedToken::parse(text, LegacyLookup::HashOfWholeToken)
        }

        let cookie = old(&self.cookie);
        let session = store.session_by_token(cookie.key()).await.unwrap();
        let session = session.expect("the old cookie finds its session");
        assert_eq!((session.id, &session.secret_hash), (self.session_id, &None));
        assert!(cookie.matches(session.secret_hash.as_deref()));
        let by_id = format!("{}.{}", self.session_id, self.cookie);
        let by_id = PresentedToken::parse(&by_id, LegacyLookup::HashOfWholeToken);
        let found = store.session_by_token(by_id.key()).await.unwrap().unwrap();
        assert!(
            !by_id.matches(found.secret_hash.as_deref()),
            "a session's id (an ID token's sid) with any secret never opens an old session"
        );

        let code = old(&self.code);
        match store.authorization_code(code.key()).await.unwrap() {
            Taken::Fresh(c) => assert!(code.matches(c.secret_hash.as_deref())),
            other => panic!("the old code is unused: {other:?}"),
        }
        let take = || Change::TakeAuthorizationCode {
            key: code.key().clone(),
            at: crate::fixtures::at(T0),
        };
        store.commit(vec![take()], None).await.unwrap();
        assert!(store.commit(vec![take()], None).await.is_err(), "once only");
        assert!(matches!(
            store.authorization_code(code.key()).await.unwrap(),
            Taken::Replayed(_)
        ));

        let refresh = old(&self.refresh);
        let stored = store.refresh_token(refresh.key()).await.unwrap().unwrap();
        assert!(refresh.matches(stored.secret_hash.as_deref()));
        let at = crate::fixtures::at(T0);
        assert!(matches!(
            store.take_refresh_token(refresh.key(), at).await.unwrap(),
            Taken::Fresh(_)
        ));
        assert!(matches!(
            store.take_refresh_token(refresh.key(), at).await.unwrap(),
            Taken::Replayed(_)
        ));

        let flow_id = self.flow.id.to_string();
        let flow = PresentedToken::parse(&flow_id, LegacyLookup::PlainId);
        let stored = store
            .sign_in_flow(flow.row_id().unwrap())
            .await
            .unwrap()
            .expect("the old flow");
        assert!(flow.matches(stored.secret_hash.as_deref()));
        assert_eq!(stored, self.flow);
        assert!(matches!(
            PresentedToken::parse(&format!("{flow_id}.x"), LegacyLookup::PlainId).key(),
            TokenKey::Legacy(_)
        ));
    }
}

/// Migration 13 keeps every token issued before it working until it expires (sessions, codes,
/// refresh tokens, flows), on both databases; and drops the index of session-token hashes for
/// one that holds the old sessions only.
#[tokio::test]
async fn tokens_issued_before_split_tokens_keep_working_after_the_upgrade() {
    let split = |dialect| {
        let files = migration_files(dialect);
        let at = files
            .iter()
            .position(|(name, _)| name.starts_with("0013_"))
            .expect("migration 13");
        (files[..at].to_vec(), files[at..].to_vec())
    };

    let legacy = LegacyTokens::new();
    let scratch = ScratchDatabase::sqlite();
    let path: std::path::PathBuf = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .into();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (earlier, rest) = split("sqlite");
        for (_, sql) in &earlier {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(&legacy.rows()).unwrap();
        for (_, sql) in &rest {
            conn.execute_batch(sql).unwrap();
        }
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'auth_sessions' \
                 AND sql IS NOT NULL ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                "auth_sessions_expires",
                "auth_sessions_legacy_token",
                "auth_sessions_user"
            ]
        );
    }
    // Migrated by hand above: the store only opens it.
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    legacy.still_work(&store).await;
    store.close().await;
    drop(scratch);

    let Ok(base) = std::env::var(portcullis_store::testing::TEST_DATABASE_URL_ENV) else {
        return;
    };
    use sqlx::{AssertSqlSafe, Connection};
    let legacy = LegacyTokens::new();
    let scratch = ScratchDatabase::postgres(base.trim()).await.unwrap();
    let mut pg = sqlx::PgConnection::connect(scratch.url()).await.unwrap();
    let (earlier, rest) = split("postgres");
    let mut script: Vec<String> = earlier.into_iter().map(|(_, sql)| sql).collect();
    script.push(legacy.rows());
    script.extend(rest.into_iter().map(|(_, sql)| sql));
    for sql in script {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut pg)
            .await
            .unwrap();
    }
    pg.close().await.unwrap();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    legacy.still_work(&store).await;
    store.close().await;
    scratch.remove().await.unwrap();
}

/// Migration 18: an application registered before it keeps signing with ES256 (as everything
/// was signed then), on both databases; afterwards the column keeps what is written to it.
#[tokio::test]
async fn applications_from_before_migration_18_keep_es256() {
    use portcullis_core::directory::model::SigningAlgorithm;
    let split = |dialect| {
        let files = migration_files(dialect);
        let at = files
            .iter()
            .position(|(name, _)| name.starts_with("0018_"))
            .expect("migration 18");
        (files[..at].to_vec(), files[at..].to_vec())
    };
    let app = Uuid::new_v4();
    let row = format!(
        "INSERT INTO applications (id, app_id, display_name, is_fallback_public_client, \
         web_redirect_uris, public_client_redirect_uris, spa_redirect_uris, api_permissions, created) \
         VALUES ('{app}', '{}', 'Older', 0, '[]', '[]', '[]', '[]', 1000);",
        Uuid::new_v4()
    );
    let check = |store: SqlStore| async move {
        let mut read = store
            .application(app)
            .await
            .unwrap()
            .expect("the application");
        assert_eq!(read.id_token_signed_response_alg, SigningAlgorithm::Es256);
        read.id_token_signed_response_alg = SigningAlgorithm::Rs256;
        commit(&store, vec![Change::UpdateApplication(read.clone())]).await;
        assert_eq!(store.application(app).await.unwrap(), Some(read));
        store.close().await;
    };

    let scratch = ScratchDatabase::sqlite();
    let path: std::path::PathBuf = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .into();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (earlier, rest) = split("sqlite");
        for (_, sql) in &earlier {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(&row).unwrap();
        for (_, sql) in &rest {
            conn.execute_batch(sql).unwrap();
        }
    }
    check(
        connect(scratch.url(), &StoreOptions::default())
            .await
            .unwrap(),
    )
    .await;
    drop(scratch);

    let Ok(base) = std::env::var(portcullis_store::testing::TEST_DATABASE_URL_ENV) else {
        return;
    };
    use sqlx::{AssertSqlSafe, Connection};
    let scratch = ScratchDatabase::postgres(base.trim()).await.unwrap();
    let mut pg = sqlx::PgConnection::connect(scratch.url()).await.unwrap();
    let (earlier, rest) = split("postgres");
    let mut script: Vec<String> = earlier.into_iter().map(|(_, sql)| sql).collect();
    script.push(row.clone());
    script.extend(rest.into_iter().map(|(_, sql)| sql));
    for sql in script {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut pg)
            .await
            .unwrap();
    }
    pg.close().await.unwrap();
    check(
        connect(scratch.url(), &StoreOptions::default())
            .await
            .unwrap(),
    )
    .await;
    scratch.remove().await.unwrap();
}
