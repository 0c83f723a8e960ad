//! The passkey storage contract ([`PasskeyStore`]), checked on SQLite and on PostgreSQL (when
//! `PORTCULLIS_TEST_DATABASE_URL` is set): ceremonies are taken exactly once however many
//! callers race, signature counters only move forward, the per-person limit and credential-id
//! uniqueness hold under concurrency, and a person's passkeys go with them.

use std::sync::Arc;

use portcullis_core::Error;
use portcullis_core::directory::audit::{AuditActivityInitiator, DirectoryAudit, UserIdentity};
use portcullis_core::directory::model::{User, UserType};
use portcullis_core::kernel::clock::from_unix_millis;
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::methods::passkeys::{
    AttestationLevel, COUNTER_NOT_ADVANCED, Ceremony, CeremonyKind, PasskeyStore, PasskeyUse,
    StoredPasskey,
};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery};
use portcullis_store::SqlStore;
use time::OffsetDateTime;
use uuid::Uuid;

contract!(
    a_ceremony_is_taken_exactly_once,
    counters_only_move_forward,
    the_limit_and_credential_ids_hold_under_concurrency,
    passkeys_go_with_their_person,
);

fn at(ms: i64) -> OffsetDateTime {
    from_unix_millis(1_800_000_000_000 + ms)
}

async fn new_user(store: &SqlStore, upn: &str) -> User {
    let user = User {
        id: Uuid::new_v4(),
        user_principal_name: upn.to_string(),
        display_name: upn.to_string(),
        mail: None,
        account_enabled: true,
        user_type: UserType::Member,
        created_date_time: at(0),
    };
    store
        .commit(vec![Change::InsertUser(user.clone())], None)
        .await
        .unwrap();
    user
}

fn passkey(user: &User, credential_id: &[u8], created: i64) -> StoredPasskey {
    StoredPasskey {
        id: Uuid::new_v4(),
        user_id: user.id,
        credential_id: credential_id.to_vec(),
        display_name: "Key".to_string(),
        aaguid: Uuid::nil().to_string(),
        model: None,
        attestation_level: AttestationLevel::None,
        backup_eligible: false,
        backup_state: false,
        sign_count: 0,
        credential: "{}".to_string(),
        created: at(created),
        last_used: None,
    }
}

fn audit(user: &User) -> DirectoryAudit {
    DirectoryAudit {
        id: Uuid::new_v4(),
        category: "UserManagement".to_string(),
        correlation_id: Uuid::new_v4(),
        result: "success".to_string(),
        result_reason: String::new(),
        activity_display_name: "User registered security info".to_string(),
        activity_date_time: at(1),
        logged_by_service: "Authentication Methods".to_string(),
        operation_type: "Add".to_string(),
        initiated_by: AuditActivityInitiator {
            user: Some(UserIdentity {
                id: user.id.to_string(),
                display_name: None,
                user_principal_name: Some(user.user_principal_name.clone()),
                ip_address: None,
            }),
            app: None,
        },
        target_resources: Vec::new(),
        additional_details: Vec::new(),
    }
}

async fn audit_count(store: &SqlStore) -> usize {
    let all = ListQuery {
        top: 999,
        ..ListQuery::default()
    };
    store.list_audits(&all).await.unwrap().items.len()
}

async fn a_ceremony_is_taken_exactly_once(store: SqlStore) {
    let ceremony = Ceremony {
        id: Uuid::new_v4(),
        kind: CeremonyKind::DiscoverableAuthentication,
        user_id: None,
        state: "{\"ast\":{}}".to_string(),
        expires: at(300_000),
    };
    store.insert_ceremony(&ceremony).await.unwrap();
    let store = Arc::new(store);
    let racers: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_ceremony(ceremony.id).await.unwrap() })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        if let Some(won) = racer.await.unwrap() {
            winners.push(won);
        }
    }
    assert_eq!(
        winners,
        vec![ceremony.clone()],
        "exactly one caller gets it"
    );
    assert_eq!(store.take_ceremony(ceremony.id).await.unwrap(), None);

    // Expired ceremonies are swept; live ones stay.
    let user = new_user(&store, "joni@contoso.com").await;
    for (i, expires) in [at(10), at(20), at(1_000)].into_iter().enumerate() {
        let c = Ceremony {
            id: Uuid::new_v4(),
            kind: CeremonyKind::Registration,
            user_id: Some(user.id),
            state: format!("state {i}"),
            expires,
        };
        store.insert_ceremony(&c).await.unwrap();
    }
    assert_eq!(store.delete_expired_ceremonies(at(500)).await.unwrap(), 2);
    assert_eq!(store.delete_expired_ceremonies(at(500)).await.unwrap(), 0);
}

/// A sign-in's counter update, as a sign-in commits it: `true` when stored, `false` when the
/// change was refused because the counter did not move forward.
async fn record(store: &SqlStore, used: &PasskeyUse) -> bool {
    match store
        .commit(vec![Change::RecordPasskeyUse(used.clone())], None)
        .await
    {
        Ok(()) => true,
        Err(Error::Conflict { code, .. }) if code == COUNTER_NOT_ADVANCED => false,
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

async fn counters_only_move_forward(store: SqlStore) {
    let user = new_user(&store, "joni@contoso.com").await;
    let counted = passkey(&user, b"counted", 0);
    let uncounted = passkey(&user, b"uncounted", 1);
    store
        .insert_passkey(&counted, 10, audit(&user))
        .await
        .unwrap();
    store
        .insert_passkey(&uncounted, 10, audit(&user))
        .await
        .unwrap();
    let used = |p: &StoredPasskey, n: u32, when: i64| PasskeyUse {
        id: p.id,
        sign_count: n,
        backup_eligible: true,
        backup_state: n.is_multiple_of(2),
        credential: format!("{{\"n\":{n}}}"),
        at: at(when),
    };
    assert!(record(&store, &used(&counted, 5, 10)).await);
    assert!(!record(&store, &used(&counted, 5, 11)).await);
    assert!(!record(&store, &used(&counted, 3, 12)).await);
    assert!(!record(&store, &used(&counted, 0, 13)).await);
    let now = store.passkey(counted.id).await.unwrap().unwrap();
    assert_eq!(
        (now.sign_count, now.last_used, now.credential.as_str()),
        (5, Some(at(10)), "{\"n\":5}")
    );
    assert!(record(&store, &used(&counted, 6, 14)).await);

    // Authenticators without a counter stay at zero, use after use.
    assert!(record(&store, &used(&uncounted, 0, 20)).await);
    assert!(record(&store, &used(&uncounted, 0, 21)).await);
    let now = store.passkey(uncounted.id).await.unwrap().unwrap();
    assert_eq!((now.sign_count, now.last_used), (0, Some(at(21))));
    assert!(now.backup_eligible && now.backup_state);

    // A sign-in is stored whole or not at all: a refused counter leaves its challenge in place,
    // and a challenge can be taken by one commit only.
    let ceremony = Ceremony {
        id: Uuid::new_v4(),
        kind: CeremonyKind::DiscoverableAuthentication,
        user_id: None,
        state: "state".into(),
        expires: at(1_000_000),
    };
    store.insert_ceremony(&ceremony).await.unwrap();
    let refused = store
        .commit(
            vec![
                Change::TakeCeremony(ceremony.id),
                Change::RecordPasskeyUse(used(&counted, 2, 30)),
            ],
            None,
        )
        .await;
    assert!(
        matches!(refused, Err(Error::Conflict { code, .. }) if code == COUNTER_NOT_ADVANCED),
        "{refused:?}"
    );
    assert_eq!(
        store.ceremony(ceremony.id).await.unwrap(),
        Some(ceremony.clone()),
        "the challenge is still there after the refused commit"
    );
    store
        .commit(
            vec![
                Change::TakeCeremony(ceremony.id),
                Change::RecordPasskeyUse(used(&counted, 7, 31)),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.ceremony(ceremony.id).await.unwrap(), None);
    let again = store
        .commit(vec![Change::TakeCeremony(ceremony.id)], None)
        .await;
    assert!(
        matches!(
            again,
            Err(Error::Conflict {
                code: ErrorCode::PasskeyChallengeNotFound,
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(
        store.passkey(counted.id).await.unwrap().unwrap().sign_count,
        7
    );
}

async fn the_limit_and_credential_ids_hold_under_concurrency(store: SqlStore) {
    let user = new_user(&store, "joni@contoso.com").await;
    let before = audit_count(&store).await;
    let store = Arc::new(store);
    let racers: Vec<_> = (0..16u8)
        .map(|i| {
            let store = store.clone();
            let user = user.clone();
            tokio::spawn(async move {
                store
                    .insert_passkey(&passkey(&user, &[i; 8], i64::from(i)), 10, audit(&user))
                    .await
            })
        })
        .collect();
    let mut stored = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(()) => stored += 1,
            Err(Error::Conflict { code, .. }) => assert_eq!(code, ErrorCode::PasskeyLimitReached),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stored, 10);
    assert_eq!(store.passkeys_of(user.id).await.unwrap().len(), 10);
    assert_eq!(
        audit_count(&store).await,
        before + 10,
        "one audit per passkey"
    );

    // A credential id belongs to one passkey, whoever registers it.
    let grady = new_user(&store, "grady@contoso.com").await;
    let taken = store.passkeys_of(user.id).await.unwrap()[0]
        .credential_id
        .clone();
    match store
        .insert_passkey(&passkey(&grady, &taken, 0), 10, audit(&grady))
        .await
    {
        Err(Error::Conflict { code, .. }) => assert_eq!(code, ErrorCode::PasskeyAlreadyRegistered),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let found = store
        .passkey_by_credential_id(&taken)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, user.id);
    // Nobody's passkey for a person who does not exist.
    let ghost = User {
        id: Uuid::new_v4(),
        ..grady.clone()
    };
    assert!(matches!(
        store
            .insert_passkey(&passkey(&ghost, b"ghost", 0), 10, audit(&ghost))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        audit_count(&store).await,
        before + 10,
        "refusals audit nothing"
    );
}

async fn passkeys_go_with_their_person(store: SqlStore) {
    let joni = new_user(&store, "joni@contoso.com").await;
    let grady = new_user(&store, "grady@contoso.com").await;
    let key = passkey(&joni, b"joni", 0);
    store.insert_passkey(&key, 10, audit(&joni)).await.unwrap();
    store
        .insert_passkey(&passkey(&grady, b"grady", 0), 10, audit(&grady))
        .await
        .unwrap();

    // Another person's passkey cannot be renamed or removed through them.
    assert!(matches!(
        store
            .rename_passkey(grady.id, key.id, "Mine now", audit(&grady))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store
            .delete_passkey(
                grady.id,
                key.id,
                time::OffsetDateTime::now_utc(),
                audit(&grady)
            )
            .await,
        Err(Error::NotFound { .. })
    ));
    store
        .rename_passkey(joni.id, key.id, "Laptop", audit(&joni))
        .await
        .unwrap();
    assert_eq!(
        store.passkey(key.id).await.unwrap().unwrap().display_name,
        "Laptop"
    );

    // Deleting a passkey ends the sessions it was used in, in the same transaction, and
    // leaves the person's other sessions alone.
    let spare = passkey(&joni, b"joni-spare", 0);
    store
        .insert_passkey(&spare, 10, audit(&joni))
        .await
        .unwrap();
    let session_with = |key: &StoredPasskey, hash: &str| portcullis_core::session::AuthSession {
        id: Uuid::now_v7(),
        secret_hash: Some(hash.to_string()),
        user_id: joni.id,
        methods: vec![portcullis_core::session::SessionMethod {
            method: portcullis_core::session::MethodKind::Fido2,
            at: OffsetDateTime::now_utc(),
            aaguid: None,
            credential_id: Some(key.id.to_string()),
            backup_eligible: false,
            one_time: false,
        }],
        created: OffsetDateTime::now_utc(),
        expires: OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    let (with_spare, with_laptop) = (
        session_with(&spare, "with-spare"),
        session_with(&key, "with-laptop"),
    );
    store
        .commit(
            vec![
                Change::InsertSession(with_spare.clone()),
                Change::InsertSession(with_laptop.clone()),
            ],
            None,
        )
        .await
        .unwrap();
    use portcullis_core::kernel::split_token::TokenKey;
    store
        .delete_passkey(joni.id, spare.id, OffsetDateTime::now_utc(), audit(&joni))
        .await
        .unwrap();
    assert!(
        store
            .session_by_token(&TokenKey::Id(with_spare.id))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session_by_token(&TokenKey::Id(with_laptop.id))
            .await
            .unwrap()
            .is_some()
    );

    // A sign-in reads the passkey and its owner together: the owner as stored, never another.
    let (found, owner) = store
        .passkey_and_owner(b"joni")
        .await
        .unwrap()
        .expect("joni's passkey");
    assert_eq!(
        Some(found),
        store.passkey_by_credential_id(b"joni").await.unwrap()
    );
    assert_eq!(owner.as_ref(), Some(&joni));
    let (_, owner) = store.passkey_and_owner(b"grady").await.unwrap().unwrap();
    assert_eq!(owner.map(|o| o.id), Some(grady.id));
    assert!(store.passkey_and_owner(b"nobody").await.unwrap().is_none());

    store
        .commit(vec![Change::DeleteUser(joni.id)], None)
        .await
        .unwrap();
    assert!(store.passkeys_of(joni.id).await.unwrap().is_empty());
    assert!(store.passkey_and_owner(b"joni").await.unwrap().is_none());
    assert!(
        store
            .passkey_by_credential_id(b"joni")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.passkeys_of(grady.id).await.unwrap().len(), 1);
}
