//! `startswith` on users, groups and applications: exact prefixes (no wildcards, any case of
//! ASCII letters, non-ASCII letters kept), the edge of the range the store reads (the next
//! character up is not a match), and the database's own plan, which must read the prefix from an
//! index rather than every row, so the cost does not grow with the tenant.

use portcullis_core::directory::model::User;
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery, Op, Value};
use portcullis_store::testing::list_plan;
use portcullis_store::{Dialect, SqlStore};

use crate::fixtures::{T0, application, commit, group, pred, query, text, user};

contract!(
    startswith_matches_exact_prefixes_at_the_edges_of_the_range,
    startswith_is_read_from_an_index,
);

fn named(display_name: &str, n: i64) -> User {
    let mut u = user(&format!("person{n}@contoso.com"), T0 + n);
    u.display_name = display_name.to_string();
    u
}

async fn names(store: &SqlStore, field: &'static str, prefix: &str) -> Vec<String> {
    let page = store
        .list_users(&query(vec![pred(field, Op::StartsWith, text(prefix))]))
        .await
        .unwrap();
    page.items.into_iter().map(|u| u.display_name).collect()
}

async fn startswith_matches_exact_prefixes_at_the_edges_of_the_range(store: SqlStore) {
    let people = [
        "Zq",
        "zqa",
        "ZQ Last",
        "Zr first after",
        "Zp before",
        "Zq\u{7f}del",
        "Zoë Ünal",
        "Zoe Plain",
        "Émile",
        "a{b",
        "az",
        "Ab",
        "",
    ];
    let changes = people
        .iter()
        .enumerate()
        .map(|(n, name)| Change::InsertUser(named(name, n as i64)))
        .collect();
    commit(&store, changes).await;

    // Case of ASCII letters is ignored, in the prefix and in the names; the range stops
    // before "zr" and starts at "zq".
    assert_eq!(
        names(&store, "display_name", "ZQ").await,
        vec!["Zq", "zqa", "ZQ Last", "Zq\u{7f}del"]
    );
    assert_eq!(names(&store, "display_name", "zq ").await, vec!["ZQ Last"]);
    // The last letter of the alphabet: the successor is '{', which "a{b" begins with.
    assert_eq!(names(&store, "display_name", "aZ").await, vec!["az"]);
    assert_eq!(names(&store, "display_name", "a{").await, vec!["a{b"]);
    // Non-ASCII characters are compared as themselves (the range is by code point).
    assert_eq!(names(&store, "display_name", "zoë").await, vec!["Zoë Ünal"]);
    assert_eq!(
        names(&store, "display_name", "Zo").await,
        vec!["Zoë Ünal", "Zoe Plain"]
    );
    assert_eq!(names(&store, "display_name", "É").await, vec!["Émile"]);
    // A name that is exactly the prefix matches; the empty prefix matches every name.
    assert_eq!(
        names(&store, "display_name", "zq\u{7f}DEL").await,
        vec!["Zq\u{7f}del"]
    );
    assert_eq!(names(&store, "display_name", "").await.len(), people.len());
    // Nothing begins with a prefix longer than every name.
    assert!(names(&store, "display_name", "zqaa").await.is_empty());
    // A prefix ending in the last code point (which has no successor) still matches exactly.
    assert!(
        names(&store, "display_name", "Zq\u{10FFFF}")
            .await
            .is_empty()
    );

    // The other text properties filter the same way.
    assert_eq!(
        names(&store, "user_principal_name", "PERSON1").await,
        vec!["zqa", "az", "Ab", ""]
    );
    let mut mailed = named("Mailed", 100);
    mailed.mail = Some("Mailed.Person@Fabrikam.com".to_string());
    commit(&store, vec![Change::InsertUser(mailed)]).await;
    assert_eq!(names(&store, "mail", "mailed.p").await, vec!["Mailed"]);
    let mut nick = group("Sales EMEA", T0);
    nick.mail_nickname = Some("SalesEMEA".to_string());
    commit(
        &store,
        vec![
            Change::InsertGroup(nick),
            Change::InsertGroup(group("Sales", T0 + 1)),
            Change::InsertApplication(application("Sales portal", T0)),
        ],
    )
    .await;
    let groups = |field: &'static str, prefix: &'static str| {
        let store = store.clone();
        async move {
            store
                .list_groups(&query(vec![pred(field, Op::StartsWith, text(prefix))]))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|g| g.display_name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(groups("display_name", "sales ").await, vec!["Sales EMEA"]);
    assert_eq!(groups("mail_nickname", "salese").await, vec!["Sales EMEA"]);
    let apps = store
        .list_applications(&query(vec![pred(
            "display_name",
            Op::StartsWith,
            text("SALES P"),
        )]))
        .await
        .unwrap();
    assert_eq!(apps.items.len(), 1);
}

/// The indexes a plan may read for a column of a table (migration 0014's, and on SQLite the
/// unique index on lower(user_principal_name), which has the same expression and order).
fn indexes(dialect: Dialect, table: &str, column: &str) -> Vec<String> {
    let short = if column == "user_principal_name" {
        "upn"
    } else {
        column
    };
    let mut names = vec![format!("{table}_{short}_prefix")];
    if (dialect, table, column) == (Dialect::Sqlite, "users", "user_principal_name") {
        names.push("users_upn_lower".into());
    }
    names
}

/// On PostgreSQL, `EXPLAIN` with bound values plans for those values (a custom plan), where
/// even `LIKE 'zq%'` could use a `COLLATE "C"` index; the range is what also keeps the index in
/// the generic plan PostgreSQL may switch a prepared statement to. SQLite has one plan, and
/// there `LIKE` with a bound pattern scans (this test fails on it).
async fn startswith_is_read_from_an_index(store: SqlStore) {
    // Enough people that reading them all costs more than the index to either planner.
    let mut changes = Vec::new();
    for n in 0..2000 {
        let mut u = named(&format!("Person {n:04}"), n);
        u.mail = Some(format!("person{n}@contoso.com"));
        changes.push(Change::InsertUser(u));
    }
    for n in 0..2000 {
        let mut g = group(&format!("Group {n:04}"), T0 + n);
        g.mail_nickname = Some(format!("group{n}"));
        changes.push(Change::InsertGroup(g));
        changes.push(Change::InsertApplication(application(
            &format!("App {n:04}"),
            T0 + n,
        )));
    }
    commit(&store, changes).await;

    let dialect = store.dialect();
    // `eq` reads the same indexes (on PostgreSQL it says the index's collation).
    for op in [Op::StartsWith, Op::Eq] {
        for (table, column) in [
            ("users", "display_name"),
            ("users", "user_principal_name"),
            ("users", "mail"),
            ("groups", "display_name"),
            ("groups", "mail_nickname"),
            ("applications", "display_name"),
        ] {
            let list = ListQuery {
                top: 100,
                ..query(vec![pred(column, op, Value::Text("zq".into()))])
            };
            let plan = list_plan(&store, table, &list).await.unwrap();
            let wanted = indexes(dialect, table, column);
            assert!(
                wanted.iter().any(|index| plan.contains(index.as_str())),
                "{table}.{column} {op:?}: the plan should read one of {wanted:?}:\n{plan}"
            );
            let scans = match dialect {
                Dialect::Sqlite => format!("SCAN {table}"),
                Dialect::Postgres => "Seq Scan".to_string(),
            };
            assert!(
                !plan.contains(&scans),
                "{table}.{column} {op:?}: the plan reads every row:\n{plan}"
            );
        }
    }
}
