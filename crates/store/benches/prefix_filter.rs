//! `$filter=startswith(displayName,'zq')` on users, at 1,000, 10,000 and 100,000 people: the
//! store reads the prefix's range from the index on `lower(display_name)`, so the cost of a
//! page must stay flat as the tenant grows (compare the three sizes within one run). SQLite
//! always; PostgreSQL too when `PORTCULLIS_TEST_DATABASE_URL` is set.
//!
//! Two prefixes: `zq`, which no one's name begins with (the case: it used to read every
//! row), and `ab`, which about one name in 700 begins with (a page of real matches).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis_core::directory::model::{User, UserType};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery, Op, Predicate, Value};
use portcullis_store::testing::{ScratchDatabase, TEST_DATABASE_URL_ENV};
use portcullis_store::{SqlStore, StoreOptions, connect};
use time::OffsetDateTime;
use tokio::runtime::Runtime;
use uuid::Uuid;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// A name that begins with two letters spread evenly over a-z (never "zq"), then digits.
fn name(n: usize) -> String {
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let first = letters[n % 26] as char;
    let mut second = letters[(n / 26) % 26] as char;
    if first == 'z' && second == 'q' {
        second = 'r';
    }
    format!("{}{second}{n:06} Person", first.to_ascii_uppercase())
}

async fn filled(scratch: &ScratchDatabase, people: usize) -> SqlStore {
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let now = OffsetDateTime::now_utc();
    let mut changes = Vec::new();
    for n in 0..people {
        changes.push(Change::InsertUser(User {
            id: Uuid::new_v4(),
            user_principal_name: format!("p{n}@bench.example"),
            display_name: name(n),
            mail: None,
            account_enabled: true,
            user_type: UserType::Member,
            created_date_time: now,
        }));
        if changes.len() == 5_000 {
            store
                .commit(std::mem::take(&mut changes), None)
                .await
                .expect("people");
        }
    }
    store.commit(changes, None).await.expect("people");
    store
}

fn starts_with(prefix: &str) -> ListQuery {
    ListQuery {
        filter: vec![Predicate {
            field: "display_name",
            op: Op::StartsWith,
            value: Value::Text(prefix.to_string()),
        }],
        top: 100,
        ..ListQuery::default()
    }
}

fn bench_database(c: &mut Criterion, name: &str, base: Option<&str>) {
    let runtime = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group(format!("{name}: startswith on displayName"));
    for people in SIZES {
        let scratch = match base {
            None => ScratchDatabase::sqlite(),
            Some(base) => runtime
                .block_on(ScratchDatabase::postgres(base))
                .expect("scratch PostgreSQL database"),
        };
        let store = runtime.block_on(filled(&scratch, people));
        if let Ok(plan) = runtime.block_on(portcullis_store::testing::list_plan(
            &store,
            "users",
            &starts_with("zq"),
        )) {
            println!("{name}, {people} people, plan:\n{plan}");
        }
        for prefix in ["zq", "ab"] {
            let query = starts_with(prefix);
            group.bench_with_input(BenchmarkId::new(prefix, people), &people, |b, _| {
                b.to_async(&runtime)
                    .iter(|| async { black_box(store.list_users(&query).await.unwrap()) })
            });
        }
        runtime.block_on(store.close());
        runtime.block_on(scratch.remove()).expect("remove");
    }
    group.finish();
}

fn prefixes(c: &mut Criterion) {
    bench_database(c, "SQLite", None);
    if let Ok(base) = std::env::var(TEST_DATABASE_URL_ENV)
        && !base.trim().is_empty()
    {
        bench_database(c, "PostgreSQL", Some(base.trim()));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = prefixes
}
criterion_main!(benches);
