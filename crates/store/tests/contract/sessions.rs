//! Authentication sessions: found by the id their token carries, every method
//! added by concurrent steps of one session kept (none lost to a racing write), lookups racing
//! with the session's end see it whole or not at all, and a person's sessions go with them.

use std::sync::Arc;

use portcullis_core::kernel::split_token::TokenKey;
use portcullis_core::session::{AuthSession, MethodKind, SessionMethod};
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, expect_conflict, user};

contract!(
    a_session_is_found_by_its_id_with_its_secret_hash,
    a_session_is_found_only_while_its_person_is_enabled,
    concurrent_steps_of_one_session_keep_every_method,
    lookups_racing_with_sign_out_see_the_session_whole_or_not_at_all,
);

const RACERS: usize = 16;

/// A session whose token's secret hashes to `secret_hash`.
fn session(user_id: Uuid, secret_hash: &str) -> AuthSession {
    AuthSession {
        id: Uuid::now_v7(),
        secret_hash: Some(secret_hash.to_string()),
        user_id,
        methods: vec![method(MethodKind::TemporaryAccessPass, T0)],
        created: at(T0),
        expires: at(T0 + 8 * 3_600_000),
    }
}

fn method(kind: MethodKind, when: i64) -> SessionMethod {
    SessionMethod {
        method: kind,
        at: at(when),
        aaguid: None,
        credential_id: Some(format!("credential-{when}")),
        backup_eligible: false,
        one_time: false,
    }
}

fn by_id(session: &AuthSession) -> TokenKey {
    TokenKey::Id(session.id)
}

/// The account check is part of the session's read: a session row that outlived its person's
/// enabled account (no `EndSignIns` with the change) is not found, and is found again once the
/// account is enabled again.
async fn a_session_is_found_only_while_its_person_is_enabled(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let mine = session(joni.id, "e5");
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertSession(mine.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.session_by_token(&by_id(&mine)).await.unwrap(),
        Some(mine.clone())
    );
    let mut disabled = joni.clone();
    disabled.account_enabled = false;
    commit(&store, vec![Change::UpdateUser(disabled)]).await;
    assert_eq!(store.session_by_token(&by_id(&mine)).await.unwrap(), None);
    commit(&store, vec![Change::UpdateUser(joni)]).await;
    assert_eq!(
        store.session_by_token(&by_id(&mine)).await.unwrap(),
        Some(mine)
    );
}

async fn a_session_is_found_by_its_id_with_its_secret_hash(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0);
    let mine = session(joni.id, "a1");
    let his = session(grady.id, "b2");
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertUser(grady.clone()),
            Change::InsertSession(mine.clone()),
            Change::InsertSession(his.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.session_by_token(&by_id(&mine)).await.unwrap(),
        Some(mine.clone()),
        "the secret's hash reads back for core to compare"
    );
    assert_eq!(
        store.session_by_token(&by_id(&his)).await.unwrap(),
        Some(his.clone())
    );
    assert_eq!(
        store
            .session_by_token(&TokenKey::Id(Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
    // A new session has no hash of a whole token: no old-style token finds it, not even one
    // that hashes to its secret's hash.
    for legacy in ["a1", ""] {
        assert_eq!(
            store
                .session_by_token(&TokenKey::Legacy(legacy.into()))
                .await
                .unwrap(),
            None
        );
    }

    // Two sessions never share an id.
    let mut twin = session(grady.id, "a2");
    twin.id = mine.id;
    expect_conflict(
        store.commit(vec![Change::InsertSession(twin)], None).await,
        "",
    );

    // Ending a session ends only that one; deleting a person ends theirs.
    commit(&store, vec![Change::DeleteSession(mine.id)]).await;
    assert_eq!(store.session_by_token(&by_id(&mine)).await.unwrap(), None);
    assert_eq!(
        store.session_by_token(&by_id(&his)).await.unwrap(),
        Some(his.clone())
    );
    commit(&store, vec![Change::DeleteUser(grady.id)]).await;
    assert_eq!(store.session_by_token(&by_id(&his)).await.unwrap(), None);
}

async fn concurrent_steps_of_one_session_keep_every_method(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let shared = session(joni.id, "c3");
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertSession(shared.clone()),
        ],
    )
    .await;
    let store = Arc::new(store);
    let mut racers = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let added = method(MethodKind::Fido2, T0 + 1 + i as i64);
            store
                .commit(
                    vec![Change::AddSessionMethod {
                        session_id: shared.id,
                        method: added.clone(),
                    }],
                    None,
                )
                .await
                .expect("a step adds its method");
            // Right after its own write, each step finds the session with its method in it.
            let found = store
                .session_by_token(&TokenKey::Id(shared.id))
                .await
                .unwrap()
                .expect("the session");
            assert_eq!(found.id, shared.id);
            assert!(found.methods.contains(&added), "{found:?}");
            added
        }));
    }
    let mut expected = shared.methods.clone();
    for racer in racers {
        expected.push(racer.await.unwrap());
    }
    let stored = store
        .session_by_token(&TokenKey::Id(shared.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.methods.len(),
        1 + RACERS,
        "no method lost: {stored:?}"
    );
    for m in &expected {
        assert!(stored.methods.contains(m), "{m:?} lost");
    }
    assert_eq!(
        (stored.user_id, stored.created, stored.expires),
        (shared.user_id, shared.created, shared.expires)
    );
}

async fn lookups_racing_with_sign_out_see_the_session_whole_or_not_at_all(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let mut ending = session(joni.id, "d4");
    ending.methods.push(method(MethodKind::Fido2, T0 + 1));
    commit(
        &store,
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertSession(ending.clone()),
        ],
    )
    .await;
    let store = Arc::new(store);
    let key = TokenKey::Id(ending.id);
    let mut readers = Vec::new();
    for _ in 0..RACERS {
        let (store, key) = (store.clone(), key.clone());
        readers.push(tokio::spawn(async move {
            store.session_by_token(&key).await.unwrap()
        }));
    }
    let signing_out = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit(vec![Change::DeleteSession(ending.id)], None)
                .await
        })
    };
    for reader in readers {
        if let Some(found) = reader.await.unwrap() {
            assert_eq!(found, ending, "a session is read whole");
        }
    }
    signing_out.await.unwrap().expect("sign-out");
    assert_eq!(store.session_by_token(&key).await.unwrap(), None);
}
