//! Authentication methods' storage other than passkeys: Temporary Access Passes (one per
//! person, a one-time pass redeemed by exactly one of any number of racing callers), passwords,
//! software OATH (TOTP) methods (a time step accepted once, even by racing callers), and the
//! smart-lockout failure counters (every concurrent failure counted exactly once).

use std::sync::Arc;

use portcullis_core::methods::tap::TemporaryAccessPass;
use portcullis_core::methods::totp::SoftwareOathMethod;
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::SqlStore;
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, expect_not_found, user};

contract!(
    a_person_holds_one_pass_and_it_goes_with_them,
    a_one_time_pass_is_redeemed_by_exactly_one_of_many,
    passwords_are_set_replaced_and_removed,
    a_totp_step_is_accepted_once_under_racing_callers,
    concurrent_failures_are_each_counted_once,
    a_failure_window_restarts_when_it_has_lapsed,
);

/// How many callers race in the tests that promise one winner: more than the pool's
/// connections (5), so that some wait and are served after the winner committed.
const RACERS: usize = 16;

fn pass(user_id: Uuid, one_time: bool) -> TemporaryAccessPass {
    TemporaryAccessPass {
        id: Uuid::new_v4(),
        user_id,
        pass_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
        start: at(T0),
        lifetime_minutes: 60,
        is_usable_once: one_time,
        created: at(T0),
        used: None,
    }
}

fn oath(user_id: Uuid) -> SoftwareOathMethod {
    SoftwareOathMethod {
        id: Uuid::new_v4(),
        user_id,
        display_name: "Authenticator".to_string(),
        // Bytes that are not UTF-8, so that a text column would not keep them.
        sealed_secret: vec![0, 159, 146, 150, 255, 1, 2, 3],
        created: at(T0),
        last_used_step: 0,
    }
}

async fn a_person_holds_one_pass_and_it_goes_with_them(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    assert_eq!(store.temporary_access_pass(joni.id).await.unwrap(), None);

    let first = pass(joni.id, true);
    commit(&store, vec![Change::PutTemporaryAccessPass(first.clone())]).await;
    assert_eq!(
        store.temporary_access_pass(joni.id).await.unwrap(),
        Some(first.clone())
    );

    // A new pass replaces the old one: one pass per person.
    let second = pass(joni.id, false);
    commit(&store, vec![Change::PutTemporaryAccessPass(second.clone())]).await;
    assert_eq!(
        store.temporary_access_pass(joni.id).await.unwrap(),
        Some(second.clone())
    );
    // The replaced pass can be neither deleted nor redeemed.
    expect_not_found(
        store
            .commit(
                vec![Change::DeleteTemporaryAccessPass {
                    user_id: joni.id,
                    id: first.id,
                }],
                None,
            )
            .await,
        "temporaryAccessPassAuthenticationMethod",
    );
    assert!(
        !store
            .consume_temporary_access_pass(first.id, at(T0 + 1))
            .await
            .unwrap()
    );
    // A reusable pass is never marked used.
    assert!(
        !store
            .consume_temporary_access_pass(second.id, at(T0 + 1))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .temporary_access_pass(joni.id)
            .await
            .unwrap()
            .unwrap()
            .used,
        None
    );

    // Deleting the person takes their pass with them.
    commit(&store, vec![Change::DeleteUser(joni.id)]).await;
    assert_eq!(store.temporary_access_pass(joni.id).await.unwrap(), None);
}

async fn a_one_time_pass_is_redeemed_by_exactly_one_of_many(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let once = pass(joni.id, true);
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::PutTemporaryAccessPass(once.clone()),
        ],
    )
    .await;
    let store = Arc::new(store);
    let mut racers = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let when = T0 + 1_000 + i as i64;
            let won = store
                .consume_temporary_access_pass(once.id, at(when))
                .await
                .expect("a redemption is answered, won or lost");
            (won, when)
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        let (won, when) = racer.await.unwrap();
        if won {
            winners.push(when);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins: {winners:?}");
    // The pass records the winner's time, and stays used.
    let stored = store.temporary_access_pass(joni.id).await.unwrap().unwrap();
    assert_eq!(stored.used, Some(at(winners[0])));
    assert!(
        !store
            .consume_temporary_access_pass(once.id, at(T0 + 5_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_temporary_access_pass(Uuid::new_v4(), at(T0 + 5_000))
            .await
            .unwrap(),
        "an unknown pass is never redeemed"
    );
}

async fn passwords_are_set_replaced_and_removed(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    assert_eq!(store.password(joni.id).await.unwrap(), None);
    let set = |hash: &str, when: i64| Change::SetPassword {
        user_id: joni.id,
        hash: hash.to_string(),
        changed: at(when),
    };
    commit(&store, vec![set("$argon2id$first", T0)]).await;
    assert_eq!(
        store.password(joni.id).await.unwrap(),
        Some(("$argon2id$first".to_string(), at(T0)))
    );
    commit(&store, vec![set("$argon2id$second", T0 + 10)]).await;
    assert_eq!(
        store.password(joni.id).await.unwrap(),
        Some(("$argon2id$second".to_string(), at(T0 + 10)))
    );
    commit(&store, vec![Change::DeletePassword { user_id: joni.id }]).await;
    assert_eq!(store.password(joni.id).await.unwrap(), None);
    expect_not_found(
        store
            .commit(vec![Change::DeletePassword { user_id: joni.id }], None)
            .await,
        "passwordAuthenticationMethod",
    );
    // A person's password goes with them.
    commit(&store, vec![set("$argon2id$third", T0 + 20)]).await;
    commit(&store, vec![Change::DeleteUser(joni.id)]).await;
    assert_eq!(store.password(joni.id).await.unwrap(), None);
}

async fn a_totp_step_is_accepted_once_under_racing_callers(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let app = oath(joni.id);
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertSoftwareOath(app.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.software_oath_methods(joni.id).await.unwrap(),
        vec![app.clone()]
    );

    // Many callers present the same code (the same step): exactly one is accepted.
    let store = Arc::new(store);
    let step = 59_000_000;
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store.use_software_oath_step(app.id, step).await.unwrap()
        }));
    }
    let mut accepted = 0;
    for racer in racers {
        accepted += usize::from(racer.await.unwrap());
    }
    assert_eq!(accepted, 1, "one code, accepted once");

    // Earlier and equal steps are refused from then on; a later one is accepted.
    assert!(!store.use_software_oath_step(app.id, step).await.unwrap());
    assert!(
        !store
            .use_software_oath_step(app.id, step - 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_software_oath_step(app.id, step + 1)
            .await
            .unwrap()
    );

    // Callers racing with different steps: whatever the order, the latest step is later than
    // every other and must be accepted, and it is the one kept.
    let mut racers = Vec::new();
    for offset in 2..2 + RACERS as i64 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let used = store.use_software_oath_step(app.id, step + offset).await;
            (offset, used.unwrap())
        }));
    }
    let latest = 1 + RACERS as i64;
    for racer in racers {
        let (offset, accepted) = racer.await.unwrap();
        if offset == latest {
            assert!(accepted, "the latest step is later than every other");
        }
    }
    assert_eq!(
        store.software_oath_methods(joni.id).await.unwrap()[0].last_used_step,
        step + latest
    );

    // Removing the method, or the person, removes it.
    commit(
        &store,
        vec![Change::DeleteSoftwareOath {
            user_id: joni.id,
            id: app.id,
        }],
    )
    .await;
    assert_eq!(store.software_oath_methods(joni.id).await.unwrap(), vec![]);
    let again = oath(joni.id);
    commit(&store, vec![Change::InsertSoftwareOath(again)]).await;
    commit(&store, vec![Change::DeleteUser(joni.id)]).await;
    assert_eq!(store.software_oath_methods(joni.id).await.unwrap(), vec![]);
}

async fn concurrent_failures_are_each_counted_once(store: SqlStore) {
    let store = Arc::new(store);
    let key = "tap:joni@contoso.com";
    let window = Duration::minutes(10);
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .record_failure(key, at(T0), window)
                .await
                .expect("a failure is counted")
        }));
    }
    let mut counts = Vec::new();
    for racer in racers {
        let recorded = racer.await.unwrap();
        assert_eq!(recorded.window_start, at(T0), "{recorded:?}");
        counts.push(recorded.count);
    }
    counts.sort_unstable();
    let expected: Vec<u32> = (1..=RACERS as u32).collect();
    assert_eq!(
        counts, expected,
        "each failure sees its own count: none lost, none counted twice"
    );
    let stored = store.failures(key).await.unwrap().expect("counted");
    assert_eq!(stored.count, RACERS as u32);

    // Another key counts on its own; clearing forgets only the one cleared.
    let other = "ip:192.0.2.1";
    let first = store.record_failure(other, at(T0), window).await.unwrap();
    assert_eq!(first.count, 1);
    store.clear_failures(key).await.unwrap();
    assert_eq!(store.failures(key).await.unwrap(), None);
    assert_eq!(store.failures(other).await.unwrap().unwrap().count, 1);
    let restarted = store
        .record_failure(key, at(T0 + 100), window)
        .await
        .unwrap();
    assert_eq!(restarted.count, 1);
}

async fn a_failure_window_restarts_when_it_has_lapsed(store: SqlStore) {
    let key = "password:grady@contoso.com";
    let window = Duration::minutes(1);
    let first = store.record_failure(key, at(T0), window).await.unwrap();
    assert_eq!((first.count, first.window_start), (1, at(T0)));
    assert_eq!(first.last_failure, at(T0));
    let second = store
        .record_failure(key, at(T0 + 59_000), window)
        .await
        .unwrap();
    assert_eq!(
        (second.count, second.window_start, second.last_failure),
        (2, at(T0), at(T0 + 59_000))
    );
    // Past the window, counting starts again at this failure.
    let later = T0 + 61_000;
    let third = store.record_failure(key, at(later), window).await.unwrap();
    assert_eq!(
        (third.count, third.window_start, third.last_failure),
        (1, at(later), at(later))
    );
    assert_eq!(store.failures(key).await.unwrap(), Some(third));
}
