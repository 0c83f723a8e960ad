//! Authentication methods' storage other than passkeys: Temporary Access Passes (one per
//! person, a one-time pass redeemed by exactly one of any number of racing callers), passwords,
//! software OATH (TOTP) methods (a time step accepted once, even by racing callers), the
//! smart-lockout failure slots (of any number of racing takers, on one store handle or two,
//! exactly the threshold's number get through; a lock refuses and grows; a slot given back
//! leaves no lock behind), and familiar sources (kept per person, most recent first, bounded).

use std::sync::Arc;

use portcullis_core::methods::lockout;
use portcullis_core::methods::tap::TemporaryAccessPass;
use portcullis_core::methods::totp::SoftwareOathMethod;
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, FailureCount, LockRule, SlotTaking};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, expect_not_found, user};

contract!(
    a_person_holds_one_pass_and_it_goes_with_them,
    a_one_time_pass_is_redeemed_by_exactly_one_of_many,
    passwords_are_set_replaced_and_removed,
    a_totp_step_is_accepted_once_under_racing_callers,
    concurrent_slot_takes_let_exactly_the_threshold_through,
    a_lock_refuses_then_grows_and_a_window_restarts,
    a_slot_given_back_leaves_no_lock_behind,
    familiar_sources_are_kept_per_person_and_bounded,
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

/// The account rule: ten guesses, then a lock of a minute doubling with each guess past it.
fn account_rule() -> LockRule {
    lockout::rule(lockout::ACCOUNT_THRESHOLD)
}

fn taken(taking: SlotTaking) -> FailureCount {
    match taking {
        SlotTaking::Taken(count) => count,
        SlotTaking::Locked(count) => panic!("expected a slot, the key is locked: {count:?}"),
    }
}

/// Races `RACERS` takers on each of `stores` (cycling through them) for one key at one instant;
/// the counts of those let through, sorted, and how many were refused.
async fn race(stores: &[SqlStore], key: &'static str) -> (Vec<u32>, usize) {
    let mut racers = Vec::new();
    for i in 0..RACERS * 2 {
        let store = stores[i % stores.len()].clone();
        racers.push(tokio::spawn(async move {
            store
                .take_failure_slot(key, at(T0), &account_rule())
                .await
                .expect("the take answers")
        }));
    }
    let (mut counts, mut refused) = (Vec::new(), 0);
    for racer in racers {
        match racer.await.unwrap() {
            SlotTaking::Taken(count) => {
                assert_eq!(count.window_start, at(T0), "{count:?}");
                counts.push(count.count);
            }
            SlotTaking::Locked(count) => {
                assert_eq!(count.map(|c| c.count), Some(lockout::ACCOUNT_THRESHOLD));
                refused += 1;
            }
        }
    }
    counts.sort_unstable();
    (counts, refused)
}

async fn concurrent_slot_takes_let_exactly_the_threshold_through(store: SqlStore) {
    let key = "tap:joni@contoso.com";
    let (counts, refused) = race(std::slice::from_ref(&store), key).await;
    let expected: Vec<u32> = (1..=lockout::ACCOUNT_THRESHOLD).collect();
    assert_eq!(
        counts, expected,
        "each slot sees its own count, and no more than the threshold are let through"
    );
    assert_eq!(refused, RACERS * 2 - lockout::ACCOUNT_THRESHOLD as usize);
    let stored = store.failures(key).await.unwrap().expect("counted");
    assert_eq!(stored.count, lockout::ACCOUNT_THRESHOLD);

    // Another key counts on its own; clearing forgets only the one cleared.
    let other = "source:192.0.2.1";
    let first = taken(
        store
            .take_failure_slot(other, at(T0), &lockout::rule(lockout::SOURCE_THRESHOLD))
            .await
            .unwrap(),
    );
    assert_eq!(first.count, 1);
    store.clear_failures(key).await.unwrap();
    assert_eq!(store.failures(key).await.unwrap(), None);
    assert_eq!(store.failures(other).await.unwrap().unwrap().count, 1);
    let restarted = taken(
        store
            .take_failure_slot(key, at(T0 + 100), &account_rule())
            .await
            .unwrap(),
    );
    assert_eq!(restarted.count, 1);
}

/// Two store handles on one database, as two nodes have: together they still let exactly the
/// threshold's number of takers through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_let_exactly_the_threshold_through() {
    let scratch = portcullis_store::testing::ScratchDatabase::from_env()
        .await
        .expect("scratch database");
    let options = portcullis_store::StoreOptions {
        max_connections: 5,
        ..portcullis_store::StoreOptions::default()
    };
    let first = portcullis_store::connect(scratch.url(), &options)
        .await
        .unwrap();
    first.migrate().await.unwrap();
    let second = portcullis_store::connect(scratch.url(), &options)
        .await
        .unwrap();
    let (counts, refused) = race(&[first.clone(), second.clone()], "password:grady").await;
    let expected: Vec<u32> = (1..=lockout::ACCOUNT_THRESHOLD).collect();
    assert_eq!(counts, expected, "{refused} refused");
    first.close().await;
    second.close().await;
    scratch.remove().await.unwrap();
}

async fn a_lock_refuses_then_grows_and_a_window_restarts(store: SqlStore) {
    let key = "password:grady@contoso.com";
    let rule = account_rule();
    for n in 1..=lockout::ACCOUNT_THRESHOLD {
        let count = taken(store.take_failure_slot(key, at(T0), &rule).await.unwrap());
        assert_eq!(
            (count.count, count.window_start, count.last_failure),
            (n, at(T0), at(T0))
        );
    }
    // Locked for a minute from the latest failure: refused, and nothing counted.
    let locked = store
        .take_failure_slot(key, at(T0 + 59_999), &rule)
        .await
        .unwrap();
    assert_eq!(
        locked,
        SlotTaking::Locked(store.failures(key).await.unwrap())
    );
    assert_eq!(store.failures(key).await.unwrap().unwrap().count, 10);
    // The lock over, one more slot; it locks for two minutes from now.
    let eleventh = taken(
        store
            .take_failure_slot(key, at(T0 + 60_000), &rule)
            .await
            .unwrap(),
    );
    assert_eq!(
        (eleventh.count, eleventh.last_failure),
        (11, at(T0 + 60_000))
    );
    for still in [T0 + 61_000, T0 + 179_999] {
        assert!(matches!(
            store.take_failure_slot(key, at(still), &rule).await.unwrap(),
            SlotTaking::Locked(Some(c)) if c.count == 11
        ));
    }
    assert_eq!(
        taken(
            store
                .take_failure_slot(key, at(T0 + 180_000), &rule)
                .await
                .unwrap()
        )
        .count,
        12
    );
    // Past the window (and the lock), counting starts again at this attempt.
    let later = T0 + rule.window.whole_milliseconds() as i64 + 1;
    let fresh = taken(
        store
            .take_failure_slot(key, at(later), &rule)
            .await
            .unwrap(),
    );
    assert_eq!(
        (fresh.count, fresh.window_start, fresh.last_failure),
        (1, at(later), at(later))
    );
    assert_eq!(store.failures(key).await.unwrap(), Some(fresh));
}

async fn a_slot_given_back_leaves_no_lock_behind(store: SqlStore) {
    let key = "source:198.51.100.7";
    let rule = account_rule();
    for _ in 1..lockout::ACCOUNT_THRESHOLD {
        taken(store.take_failure_slot(key, at(T0), &rule).await.unwrap());
    }
    // The tenth slot locks while it is held; given back, the key is open again at once.
    let tenth = taken(
        store
            .take_failure_slot(key, at(T0 + 10), &rule)
            .await
            .unwrap(),
    );
    assert!(matches!(
        store
            .take_failure_slot(key, at(T0 + 11), &rule)
            .await
            .unwrap(),
        SlotTaking::Locked(_)
    ));
    store.return_failure_slot(key, &tenth).await.unwrap();
    let back = store.failures(key).await.unwrap().unwrap();
    assert_eq!((back.count, back.last_failure), (9, at(T0)));
    let again = taken(
        store
            .take_failure_slot(key, at(T0 + 12), &rule)
            .await
            .unwrap(),
    );
    assert_eq!(again.count, 10);

    // Past the threshold, a slot given back puts back the latest failure before it, so the
    // lock that had ended stays ended (a success must not lock).
    let after = T0 + 12 + 60_000;
    let eleventh = taken(
        store
            .take_failure_slot(key, at(after), &rule)
            .await
            .unwrap(),
    );
    assert_eq!(eleventh.count, 11);
    store.return_failure_slot(key, &eleventh).await.unwrap();
    let back = store.failures(key).await.unwrap().unwrap();
    assert_eq!((back.count, back.last_failure), (10, at(T0 + 12)));
    assert_eq!(
        taken(
            store
                .take_failure_slot(key, at(after + 1), &rule)
                .await
                .unwrap()
        )
        .count,
        11
    );

    // A count given back to nothing is gone.
    let single = "tap:single";
    let one = taken(
        store
            .take_failure_slot(single, at(T0), &rule)
            .await
            .unwrap(),
    );
    store.return_failure_slot(single, &one).await.unwrap();
    assert_eq!(store.failures(single).await.unwrap(), None);
}

async fn familiar_sources_are_kept_per_person_and_bounded(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0);
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertUser(grady.clone()),
        ],
    )
    .await;
    assert!(
        !store
            .is_familiar_source(joni.id, "192.0.2.1")
            .await
            .unwrap()
    );
    for i in 0..25 {
        store
            .remember_familiar_source(joni.id, &format!("192.0.2.{i}"), at(T0 + i), 20)
            .await
            .unwrap();
    }
    // The 20 most recent are kept; a success again makes an old one recent.
    for i in 0..25 {
        assert_eq!(
            store
                .is_familiar_source(joni.id, &format!("192.0.2.{i}"))
                .await
                .unwrap(),
            i >= 5,
            "192.0.2.{i}"
        );
    }
    store
        .remember_familiar_source(joni.id, "192.0.2.0", at(T0 + 100), 20)
        .await
        .unwrap();
    assert!(
        store
            .is_familiar_source(joni.id, "192.0.2.0")
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_familiar_source(joni.id, "192.0.2.5")
            .await
            .unwrap()
    );
    assert!(
        store
            .is_familiar_source(joni.id, "192.0.2.6")
            .await
            .unwrap()
    );
    // Familiar to one person is not familiar to another; they go with the person.
    assert!(
        !store
            .is_familiar_source(grady.id, "192.0.2.6")
            .await
            .unwrap()
    );
    commit(&store, vec![Change::DeleteUser(joni.id)]).await;
    assert!(
        !store
            .is_familiar_source(joni.id, "192.0.2.6")
            .await
            .unwrap()
    );
}
