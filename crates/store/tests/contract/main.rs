//! The storage contract, checked on every database the store supports.
//!
//! Each test body runs twice: on SQLite (a scratch file) and on PostgreSQL (a scratch
//! database next to the one `PORTCULLIS_TEST_DATABASE_URL` names). Without that variable the
//! PostgreSQL variants return early and say so; with it, an unreachable server fails them.
//!
//! This file owns the harness: [`run`] gives a body a fresh, migrated store and removes it
//! afterwards, and `contract!` declares each body as a test on both databases. The bodies live
//! in one module per capability (one test binary for the crate, as the project's rule is):
//! `commit` (what holds for every row), `audit_targets` (entries about an object, failures), `directory`, `conditional_access`, `methods` (passes,
//! passwords, TOTP, failure counters), `sessions`, `signin_flows`, `sign_in_logs`, `oidc`,
//! `passkeys`, and `schema` (migrations and connections); `fixtures` holds the rows they share.

use std::future::Future;

use portcullis_store::testing::{ScratchDatabase, TEST_DATABASE_URL_ENV};
use portcullis_store::{SqlStore, StoreOptions, connect};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `body` on a fresh, migrated store of `backend`, then removes the database.
async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(SqlStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let scratch = match backend {
        Backend::Sqlite => ScratchDatabase::sqlite(),
        Backend::Postgres => match std::env::var(TEST_DATABASE_URL_ENV) {
            Ok(base) if !base.trim().is_empty() => ScratchDatabase::postgres(base.trim())
                .await
                .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_ENV} is set: {e}")),
            _ => {
                eprintln!("{TEST_DATABASE_URL_ENV} is not set: PostgreSQL variant not run");
                return;
            }
        },
    };
    let options = StoreOptions {
        max_connections: 5,
        ..StoreOptions::default()
    };
    let store = connect(scratch.url(), &options)
        .await
        .expect("connect to the scratch database");
    store.migrate().await.expect("migrate");
    body(store.clone()).await;
    store.close().await;
    scratch.remove().await.expect("remove the scratch database");
}

/// Declares each body as a test on both databases.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::run(crate::Backend::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::run(crate::Backend::Postgres, super::$name).await;
                }
            )*
        }
    };
}

// One module per capability, each declaring its bodies with `contract!` above.
mod audit_targets;
mod commit;
mod conditional_access;
mod deleted_users;
mod directory;
mod fixtures;
mod methods;
mod oidc;
mod passkeys;
mod prefixes;
mod round_trips;
mod schema;
mod search;
mod sessions;
mod sign_in_logs;
mod signin_flows;
mod trust;
