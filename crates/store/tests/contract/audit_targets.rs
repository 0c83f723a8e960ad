//! The entries about an object (migration 0020): each audit entry's targets are indexed in the
//! entry's own transaction, found by id ignoring case, newest first and paged; entries written
//! before the index are found too (the migration reads them from the stored bodies). Failed
//! operations: a change refused by the database is recorded as its failure, and failure
//! entries are bounded per initiator.

use portcullis_core::directory::audit::{
    FAILURE, FAILURES_PER_MINUTE, SUPPRESSED_FAILURES, TargetResource,
};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery, Op};
use portcullis_store::testing::ScratchDatabase;
use portcullis_store::{SqlStore, StoreOptions, connect};
use uuid::Uuid;

use crate::fixtures::{T0, audit, commit, pred, query, text, user};

contract!(
    entries_are_found_by_target_newest_first,
    a_change_the_database_refuses_is_recorded_as_its_failure,
    failure_entries_are_bounded_per_initiator,
);

async fn about(store: &SqlStore, id: &str, top: usize) -> Vec<String> {
    store
        .list_audits(&ListQuery {
            top,
            ..query(vec![pred("target_id", Op::Eq, text(id))])
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.activity_display_name)
        .collect()
}

async fn entries_are_found_by_target_newest_first(store: SqlStore) {
    let admin = Uuid::new_v4();
    let joni = Uuid::new_v4();
    let group = Uuid::new_v4();
    for i in 0..5 {
        let mut entry = audit(&format!("About Joni {i}"), "UserManagement", T0 + i, admin);
        entry.target_resources = vec![TargetResource::new("User", joni, "Joni")];
        if i == 3 {
            // Two targets, one of them twice: indexed once each.
            entry
                .target_resources
                .push(TargetResource::new("Group", group, "Sales"));
            entry
                .target_resources
                .push(TargetResource::new("Group", group, "Sales"));
        }
        store
            .commit(Vec::<Change>::new(), Some(entry))
            .await
            .unwrap();
    }
    // Somebody else's entry.
    store
        .commit(
            Vec::<Change>::new(),
            Some(audit("About someone", "UserManagement", T0 + 10, admin)),
        )
        .await
        .unwrap();

    let expected: Vec<String> = (0..5).rev().map(|i| format!("About Joni {i}")).collect();
    assert_eq!(about(&store, &joni.to_string(), 100).await, expected);
    // The id as Graph clients may type it.
    assert_eq!(
        about(&store, &joni.to_string().to_uppercase(), 100).await,
        expected
    );
    assert_eq!(
        about(&store, &group.to_string(), 100).await,
        vec!["About Joni 3"]
    );
    assert!(
        about(&store, &Uuid::new_v4().to_string(), 100)
            .await
            .is_empty()
    );

    // Paged, with the other filters.
    let first = store
        .list_audits(&ListQuery {
            top: 2,
            count: true,
            ..query(vec![pred("target_id", Op::Eq, text(&joni.to_string()))])
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.count, Some(5));
    let second = store
        .list_audits(&ListQuery {
            top: 10,
            after: first.next,
            ..query(vec![pred("target_id", Op::Eq, text(&joni.to_string()))])
        })
        .await
        .unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .chain(&second.items)
            .map(|a| a.activity_display_name.clone())
            .collect::<Vec<_>>(),
        expected
    );
    let failures = store
        .list_audits(&query(vec![
            pred("target_id", Op::Eq, text(&joni.to_string())),
            pred("result", Op::Eq, text(FAILURE)),
        ]))
        .await
        .unwrap();
    assert!(failures.items.is_empty());

    // Only eq with text.
    assert!(
        store
            .list_audits(&query(vec![pred("target_id", Op::Ne, text("x"))]))
            .await
            .is_err()
    );
}

async fn a_change_the_database_refuses_is_recorded_as_its_failure(store: SqlStore) {
    let admin = Uuid::new_v4();
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    let mut twin = user("JONI@contoso.com", T0 + 1);
    twin.id = Uuid::new_v4();
    let mut entry = audit("Add user", "UserManagement", T0 + 1, admin);
    entry.target_resources = vec![TargetResource::new("User", twin.id, "Joni's twin")];
    let result = store
        .commit(vec![Change::InsertUser(twin.clone())], Some(entry.clone()))
        .await;
    assert!(result.is_err());
    // Nothing of the change; the entry as its failure, with the reason, found by its target.
    assert_eq!(store.user(twin.id).await.unwrap(), None);
    let found = store
        .list_audits(&query(vec![pred(
            "target_id",
            Op::Eq,
            text(&twin.id.to_string()),
        )]))
        .await
        .unwrap()
        .items;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, entry.id);
    assert_eq!(found[0].result, FAILURE);
    assert!(
        found[0].result_reason.contains("userPrincipalName"),
        "{}",
        found[0].result_reason
    );

    // The server's own work (no initiator) that finds itself done is not a failure.
    let mut system = audit("Add user", "UserManagement", T0 + 2, admin);
    system.initiated_by = Default::default();
    let again = store
        .commit(vec![Change::InsertUser(joni.clone())], Some(system.clone()))
        .await;
    assert!(again.is_err());
    assert!(
        store
            .list_audits(&query(vec![pred(
                "id",
                Op::Eq,
                text(&system.id.to_string())
            )]))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn failure_entries_are_bounded_per_initiator(store: SqlStore) {
    let admin = Uuid::new_v4();
    let other = Uuid::new_v4();
    for _ in 0..200 {
        let mut entry = audit("Delete user", "UserManagement", T0, admin);
        entry.result = FAILURE.to_string();
        store
            .commit(Vec::<Change>::new(), Some(entry))
            .await
            .unwrap();
    }
    let mut entry = audit("Delete user", "UserManagement", T0, other);
    entry.result = FAILURE.to_string();
    store
        .commit(Vec::<Change>::new(), Some(entry))
        .await
        .unwrap();
    let by = |who: Uuid| {
        query(vec![pred(
            "initiated_by_id",
            Op::Eq,
            text(&who.to_string()),
        )])
    };
    let count = |q: ListQuery| {
        let store = store.clone();
        async move { store.list_audits(&q).await.unwrap().items.len() }
    };
    assert_eq!(count(by(admin)).await, FAILURES_PER_MINUTE as usize);
    assert_eq!(count(by(other)).await, 1);
    // A minute on, the next failure is written and says how many were left out.
    let mut later = audit("Delete user", "UserManagement", T0 + 60_000, admin);
    later.result = FAILURE.to_string();
    store
        .commit(Vec::<Change>::new(), Some(later.clone()))
        .await
        .unwrap();
    let written = store
        .list_audits(&query(vec![pred(
            "id",
            Op::Eq,
            text(&later.id.to_string()),
        )]))
        .await
        .unwrap()
        .items;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].additional_details[0].key, SUPPRESSED_FAILURES);
    assert_eq!(
        written[0].additional_details[0].value,
        (200 - FAILURES_PER_MINUTE).to_string()
    );
    // Successes are never bounded.
    for i in 0..30 {
        let entry = audit("Update user", "UserManagement", T0 + 70_000 + i, admin);
        store
            .commit(Vec::<Change>::new(), Some(entry))
            .await
            .unwrap();
    }
    assert_eq!(
        count(ListQuery {
            top: 999,
            ..by(admin)
        })
        .await,
        FAILURES_PER_MINUTE as usize + 1 + 30
    );
}

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

/// The files before migration 20 and the rest.
fn split(dialect: &str) -> (Vec<String>, Vec<String>) {
    let files = migration_files(dialect);
    let at = files
        .iter()
        .position(|(name, _)| name.starts_with("0020_"))
        .expect("migration 20");
    let sql = |f: &[(String, String)]| f.iter().map(|(_, s)| s.clone()).collect();
    (sql(&files[..at]), sql(&files[at..]))
}

/// Entries written before migration 20: two about Joni (one of them also about a group), one
/// about nobody, one whose body names no targets at all.
fn older_entries(joni: Uuid, group: Uuid) -> (String, Vec<Uuid>) {
    let admin = Uuid::new_v4();
    let mut rows = String::new();
    let mut about_joni = Vec::new();
    for (i, targets) in [
        vec![TargetResource::new(
            "User",
            joni.to_string().to_uppercase(),
            "Joni",
        )],
        vec![
            TargetResource::new("User", joni, "Joni"),
            TargetResource::new("Group", group, "Sales"),
        ],
        vec![],
        vec![TargetResource::new("User", Uuid::new_v4(), "Grady")],
    ]
    .into_iter()
    .enumerate()
    {
        let mut entry = audit(
            &format!("Older {i}"),
            "UserManagement",
            T0 + i as i64,
            admin,
        );
        entry.target_resources = targets;
        if i < 2 {
            about_joni.push(entry.id);
        }
        let body = serde_json::to_string(&entry).unwrap().replace('\'', "''");
        rows.push_str(&format!(
            "INSERT INTO directory_audits (id, activity_date_time, category, \
             activity_display_name, result, correlation_id, initiated_by_id, operation_type, body) \
             VALUES ('{}', {}, 'UserManagement', 'Older {i}', 'success', '{}', '{admin}', 'Add', '{body}');\n",
            entry.id,
            T0 + i as i64,
            entry.correlation_id
        ));
    }
    (rows, about_joni)
}

async fn check_backfill(store: SqlStore, joni: Uuid, group: Uuid, about_joni: Vec<Uuid>) {
    let found = store
        .list_audits(&query(vec![pred(
            "target_id",
            Op::Eq,
            text(&joni.to_string()),
        )]))
        .await
        .unwrap()
        .items;
    let mut ids: Vec<Uuid> = found.iter().map(|a| a.id).collect();
    ids.sort();
    let mut expected = about_joni;
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(about(&store, &group.to_string(), 10).await, vec!["Older 1"]);
    store.close().await;
}

/// Migration 20 indexes the targets of the entries already written, on both databases.
#[tokio::test]
async fn migration_20_indexes_the_targets_of_older_entries() {
    let (joni, group) = (Uuid::new_v4(), Uuid::new_v4());
    let (rows, about_joni) = older_entries(joni, group);

    let scratch = ScratchDatabase::sqlite();
    let path: std::path::PathBuf = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .into();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (earlier, rest) = split("sqlite");
        for sql in earlier.iter().chain([&rows]).chain(&rest) {
            conn.execute_batch(sql).unwrap();
        }
    }
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    check_backfill(store, joni, group, about_joni.clone()).await;
    drop(scratch);

    let Ok(base) = std::env::var(portcullis_store::testing::TEST_DATABASE_URL_ENV) else {
        return;
    };
    use sqlx::{AssertSqlSafe, Connection};
    let scratch = ScratchDatabase::postgres(base.trim()).await.unwrap();
    let mut pg = sqlx::PgConnection::connect(scratch.url()).await.unwrap();
    let (earlier, rest) = split("postgres");
    for sql in earlier.into_iter().chain([rows]).chain(rest) {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut pg)
            .await
            .unwrap();
    }
    pg.close().await.unwrap();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    check_backfill(store, joni, group, about_joni).await;
    scratch.remove().await.unwrap();
}
