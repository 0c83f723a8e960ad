//! What a piece of work costs in round trips to PostgreSQL (`SqlStore::round_trips`): a read
//! by key is one request and its reply once its statement is prepared on the connection, and
//! a commit is its statements plus `BEGIN` and `COMMIT`, with no checks of connections that
//! were just used. SQLite has no server, and counts nothing.

use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::{Dialect, RoundTrips, SqlStore};

use crate::fixtures::{T0, commit, user};

contract!(round_trips_are_one_per_statement_and_prepared_once);

async fn round_trips_are_one_per_statement_and_prepared_once(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0 + 1);
    let before = store.round_trips();
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertUser(grady.clone()),
        ],
    )
    .await;
    let committed = store.round_trips().since(&before);
    // Several reads, so that every pooled connection has seen the statement at least once
    // (the pool lends the most recently used connection first, so one is enough in practice).
    for _ in 0..3 {
        assert!(store.user(joni.id).await.unwrap().is_some());
    }
    let warm = store.round_trips();
    assert!(store.user(grady.id).await.unwrap().is_some());
    let read = store.round_trips().since(&warm);

    match store.dialect() {
        Dialect::Sqlite => {
            assert_eq!(store.round_trips(), RoundTrips::default());
        }
        Dialect::Postgres => {
            // Two inserts, BEGIN and COMMIT; the insert is prepared once and reused.
            assert_eq!(committed.statements, 2, "{committed:?}");
            assert_eq!(committed.transaction_bounds, 2, "{committed:?}");
            assert_eq!(committed.checks, 0, "{committed:?}");
            assert!(committed.prepares <= 1, "{committed:?}");
            assert_eq!(committed.lendings, 1, "{committed:?}");
            // A warm read by key: exactly one round trip.
            assert_eq!(
                read,
                RoundTrips {
                    statements: 1,
                    lendings: 1,
                    ..RoundTrips::default()
                }
            );
            assert_eq!(read.total(), 1);
        }
    }
}
