//! Trust ending and checked writes: `EndSignIns` takes a person's sessions (all, or those that
//! used one credential) and revokes the grants made to applications, touching nobody else's;
//! `ExpectRevisions` fails a commit once a document or a membership moved after the revisions
//! were read; and a group deletion racing a policy that names the group, each checked against
//! the same revisions, never both land.

use std::sync::Arc;

use portcullis_core::Error;
use portcullis_core::directory::model::{DocumentKind, PolicyDocument};
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::oidc::OAuthGrant;
use portcullis_core::session::{AuthSession, MethodKind, SessionMethod};
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, group, user};

contract!(
    ending_sign_ins_takes_the_persons_sessions_and_grants_only,
    a_revision_precondition_fails_once_either_revision_moved,
    a_group_deletion_and_a_policy_naming_it_never_both_land,
);

fn session(user_id: Uuid, token_hash: &str, credential: &str) -> AuthSession {
    AuthSession {
        id: Uuid::now_v7(),
        secret_hash: Some(token_hash.to_string()),
        user_id,
        methods: vec![SessionMethod {
            method: MethodKind::TemporaryAccessPass,
            at: at(T0),
            aaguid: None,
            credential_id: Some(credential.to_string()),
            backup_eligible: false,
            one_time: false,
        }],
        created: at(T0),
        expires: at(T0 + 8 * 3_600_000),
    }
}

fn grant(session: &AuthSession) -> OAuthGrant {
    OAuthGrant {
        id: Uuid::new_v4(),
        client_id: Uuid::new_v4(),
        user_id: session.user_id,
        session_id: Some(session.id),
        scopes: vec!["openid".into(), "offline_access".into()],
        nonce: None,
        auth_time: at(T0),
        amr: vec!["tap".into()],
        acr: None,
        acrs: Vec::new(),
        created: at(T0),
        expires: at(T0 + 86_400_000),
        revoked: None,
    }
}

async fn live(store: &SqlStore, s: &AuthSession, g: &OAuthGrant) -> (bool, bool) {
    (
        store
            .session_by_token(&portcullis_core::kernel::split_token::TokenKey::Id(s.id))
            .await
            .unwrap()
            .is_some(),
        store
            .oauth_grant(g.id)
            .await
            .unwrap()
            .unwrap()
            .revoked
            .is_none(),
    )
}

async fn ending_sign_ins_takes_the_persons_sessions_and_grants_only(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0);
    // `_` is a LIKE wildcard: a credential id holding one must not match another id.
    let with_pass = session(joni.id, "j1", "pass_1");
    let with_key = session(joni.id, "j2", "passX1");
    let his = session(grady.id, "g1", "pass_1");
    let sessions = [&with_pass, &with_key, &his];
    let grants: Vec<OAuthGrant> = sessions.iter().map(|s| grant(s)).collect();
    let mut setup = vec![
        Change::InsertUser(joni.clone()),
        Change::InsertUser(grady.clone()),
    ];
    for (s, g) in sessions.iter().zip(&grants) {
        setup.push(Change::InsertSession((*s).clone()));
        setup.push(Change::InsertOAuthGrant(Box::new(g.clone())));
    }
    commit(&store, setup).await;

    commit(
        &store,
        vec![Change::EndSignIns {
            user_id: joni.id,
            credential_id: Some("pass_1".into()),
            at: at(T0 + 1_000),
        }],
    )
    .await;
    assert_eq!(live(&store, &with_pass, &grants[0]).await, (false, false));
    assert_eq!(live(&store, &with_key, &grants[1]).await, (true, true));
    assert_eq!(live(&store, &his, &grants[2]).await, (true, true));

    commit(
        &store,
        vec![Change::EndSignIns {
            user_id: joni.id,
            credential_id: None,
            at: at(T0 + 2_000),
        }],
    )
    .await;
    assert_eq!(live(&store, &with_key, &grants[1]).await, (false, false));
    assert_eq!(
        store
            .oauth_grant(grants[0].id)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(at(T0 + 1_000)),
        "a revoked grant keeps its first revocation time"
    );
    assert_eq!(live(&store, &his, &grants[2]).await, (true, true));
}

fn expect_revision_moved(result: Result<(), Error>) {
    match result {
        Err(Error::Conflict {
            code: ErrorCode::RevisionMoved,
            ..
        }) => {}
        other => panic!("expected revisionMoved, got {other:?}"),
    }
}

fn policy_naming(id: &str, group_id: Uuid) -> PolicyDocument {
    PolicyDocument {
        kind: DocumentKind::ConditionalAccessPolicy,
        id: id.to_string(),
        display_name: "Names a group".to_string(),
        body: serde_json::json!({"conditions": {"users": {"includeGroups": [group_id.to_string()]}}}),
        created: at(T0),
        modified: at(T0),
    }
}

async fn a_revision_precondition_fails_once_either_revision_moved(store: SqlStore) {
    // A fresh database has no revision rows; the precondition holds all the same.
    let fresh = store.revisions().await.unwrap().unwrap();
    commit(&store, vec![Change::ExpectRevisions(fresh.clone())]).await;
    let read = store.revisions().await.unwrap().unwrap();
    let sales = group("Sales", T0);
    commit(&store, vec![Change::InsertGroup(sales.clone())]).await;
    // Inserting a group moves neither revision: the precondition still holds.
    commit(&store, vec![Change::ExpectRevisions(read.clone())]).await;

    let policy = policy_naming(&Uuid::new_v4().to_string(), sales.id);
    commit(&store, vec![Change::InsertDocument(policy.clone())]).await;
    expect_revision_moved(
        store
            .commit(
                vec![
                    Change::DeleteGroup(sales.id),
                    Change::ExpectRevisions(read.clone()),
                ],
                None,
            )
            .await,
    );
    assert!(
        store.group(sales.id).await.unwrap().is_some(),
        "nothing was deleted"
    );

    let read = store.revisions().await.unwrap().unwrap();
    let other = group("Other", T0);
    commit(
        &store,
        vec![
            Change::InsertGroup(other.clone()),
            Change::DeleteGroup(other.id),
        ],
    )
    .await;
    expect_revision_moved(
        store
            .commit(
                vec![
                    Change::UpdateDocument(policy_naming(&policy.id, other.id)),
                    Change::ExpectRevisions(read),
                ],
                None,
            )
            .await,
    );
    assert!(
        store
            .document(DocumentKind::ConditionalAccessPolicy, &policy.id)
            .await
            .unwrap()
            .unwrap()
            .body
            .to_string()
            .contains(&sales.id.to_string()),
        "nothing was written"
    );
}

async fn a_group_deletion_and_a_policy_naming_it_never_both_land(store: SqlStore) {
    // Each writer checked, at the same revisions, that its write leaves no dangling reference:
    // the deletion that no policy names the group, the update that the group exists. Committed
    // concurrently (on PostgreSQL on separate connections of the pool), the second to commit
    // must fail.
    let store = Arc::new(store);
    let policy_id = Uuid::new_v4().to_string();
    commit(
        &store,
        vec![Change::InsertDocument(policy_naming(
            &policy_id,
            Uuid::nil(),
        ))],
    )
    .await;
    for round in 0..40 {
        let racer = group(&format!("Racers {round}"), T0);
        commit(&store, vec![Change::InsertGroup(racer.clone())]).await;
        let read = store.revisions().await.unwrap().unwrap();
        let delete = {
            let (store, read) = (store.clone(), read.clone());
            tokio::spawn(async move {
                store
                    .commit(
                        vec![Change::DeleteGroup(racer.id), Change::ExpectRevisions(read)],
                        None,
                    )
                    .await
            })
        };
        let update = {
            let (store, policy_id) = (store.clone(), policy_id.clone());
            tokio::spawn(async move {
                store
                    .commit(
                        vec![
                            Change::UpdateDocument(policy_naming(&policy_id, racer.id)),
                            Change::ExpectRevisions(read),
                        ],
                        None,
                    )
                    .await
            })
        };
        let (deleted, updated) = (delete.await.unwrap(), update.await.unwrap());
        assert!(
            deleted.is_ok() != updated.is_ok(),
            "round {round}: exactly one lands, got {deleted:?} and {updated:?}"
        );
        for result in [deleted, updated] {
            if result.is_err() {
                expect_revision_moved(result);
            }
        }
        let names = store
            .document(DocumentKind::ConditionalAccessPolicy, &policy_id)
            .await
            .unwrap()
            .unwrap()
            .body
            .to_string()
            .contains(&racer.id.to_string());
        let exists = store.group(racer.id).await.unwrap().is_some();
        assert!(
            !names || exists,
            "round {round}: the policy names a deleted group"
        );
    }
}
