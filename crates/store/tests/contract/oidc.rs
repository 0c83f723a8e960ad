//! OIDC grants, authorization codes and refresh tokens: each code and refresh token is taken
//! once however many exchanges race, revocations read back, and expired state is purged.

use portcullis_core::Error;
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::kernel::split_token::TokenKey;
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at};

contract!(authorization_codes_and_refresh_tokens_are_taken_once);

/// Of many exchanges of one code (or one refresh token) on as many connections, exactly one
/// is first; the rest see a replay. Revoking a grant, or every grant of a session, reads back.
async fn authorization_codes_and_refresh_tokens_are_taken_once(store: SqlStore) {
    use portcullis_core::oidc::{AuthorizationCode, OAuthGrant, RefreshToken, Taken};
    let session_id = Uuid::new_v4();
    let grant = OAuthGrant {
        id: Uuid::new_v4(),
        client_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        session_id: Some(session_id),
        scopes: vec!["openid".into(), "offline_access".into()],
        nonce: Some("n-1".into()),
        auth_time: at(T0),
        amr: vec!["tap".into()],
        acr: Some("mfa".into()),
        acrs: Vec::new(),
        created: at(T0),
        expires: at(T0 + 86_400_000),
        revoked: None,
    };
    let code_key = TokenKey::Id(Uuid::now_v7());
    let refresh_key = TokenKey::Id(Uuid::now_v7());
    let code = AuthorizationCode {
        key: code_key.clone(),
        secret_hash: Some("c0de".into()),
        grant_id: grant.id,
        redirect_uri: "https://app.contoso.com/callback".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires: at(T0 + 300_000),
    };
    let refresh = RefreshToken {
        key: refresh_key.clone(),
        secret_hash: Some("ref1".into()),
        grant_id: grant.id,
        created: at(T0),
        expires: at(T0 + 3_600_000),
    };
    store
        .commit(
            vec![
                Change::InsertOAuthGrant(Box::new(grant.clone())),
                Change::InsertAuthorizationCode(code.clone()),
                Change::InsertRefreshToken(refresh.clone()),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.oauth_grant(grant.id).await.unwrap(),
        Some(grant.clone())
    );
    // Read with its person in one statement: nobody while the person is not stored, then the
    // person as stored.
    assert_eq!(
        store.oauth_grant_and_person(grant.id).await.unwrap(),
        Some((grant.clone(), None))
    );
    let mut person = crate::fixtures::user("joni@contoso.com", T0);
    person.id = grant.user_id;
    store
        .commit(vec![Change::InsertUser(person.clone())], None)
        .await
        .unwrap();
    assert_eq!(
        store.oauth_grant_and_person(grant.id).await.unwrap(),
        Some((grant.clone(), Some(person)))
    );
    assert_eq!(
        store.oauth_grant_and_person(Uuid::new_v4()).await.unwrap(),
        None
    );
    assert_eq!(
        store.refresh_token(&refresh_key).await.unwrap(),
        Some(refresh.clone())
    );

    assert_eq!(
        store.authorization_code(&code_key).await.unwrap(),
        Taken::Fresh(code.clone()),
        "reading a code does not use it"
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, code_key, refresh_key) = (store.clone(), code_key.clone(), refresh_key.clone());
        tasks.push(tokio::spawn(async move {
            (
                store
                    .commit(
                        vec![Change::TakeAuthorizationCode {
                            key: code_key,
                            at: at(T0 + 1_000),
                        }],
                        None,
                    )
                    .await,
                store
                    .take_refresh_token(&refresh_key, at(T0 + 1_000))
                    .await
                    .unwrap(),
            )
        }));
    }
    let (mut fresh_codes, mut fresh_tokens) = (0, 0);
    for task in tasks {
        let (c, r) = task.await.unwrap();
        match c {
            Ok(()) => fresh_codes += 1,
            Err(Error::Conflict {
                code: ErrorCode::AuthorizationCodeUsed,
                ..
            }) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
        match r {
            Taken::Fresh(_) => fresh_tokens += 1,
            Taken::Replayed(r) => assert_eq!(r.grant_id, grant.id),
            Taken::Unknown => panic!("the token exists"),
        }
    }
    assert_eq!((fresh_codes, fresh_tokens), (1, 1));
    assert_eq!(
        store.authorization_code(&code_key).await.unwrap(),
        Taken::Replayed(code.clone())
    );
    assert_eq!(
        store
            .authorization_code(&TokenKey::Id(Uuid::now_v7()))
            .await
            .unwrap(),
        Taken::Unknown
    );
    // A code taken by a commit whose other change fails stays unused.
    let second_key = TokenKey::Id(Uuid::now_v7());
    let second = AuthorizationCode {
        key: second_key.clone(),
        ..code.clone()
    };
    store
        .commit(vec![Change::InsertAuthorizationCode(second.clone())], None)
        .await
        .unwrap();
    let refused = store
        .commit(
            vec![
                Change::TakeAuthorizationCode {
                    key: second_key.clone(),
                    at: at(T0 + 1_500),
                },
                Change::InsertRefreshToken(refresh.clone()),
            ],
            None,
        )
        .await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.authorization_code(&second_key).await.unwrap(),
        Taken::Fresh(second)
    );

    store
        .commit(
            vec![Change::RevokeSessionGrants {
                session_id,
                at: at(T0 + 2_000),
            }],
            None,
        )
        .await
        .unwrap();
    // A second revocation keeps the first time.
    store
        .commit(
            vec![Change::RevokeOAuthGrant {
                id: grant.id,
                at: at(T0 + 9_000),
            }],
            None,
        )
        .await
        .unwrap();
    let revoked = store.oauth_grant(grant.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked, Some(at(T0 + 2_000)));

    // Nothing is purged before it expires; the grant and all under it go once it has.
    store
        .purge_expired_sign_in_state(at(T0 + 1_000))
        .await
        .unwrap();
    assert!(store.oauth_grant(grant.id).await.unwrap().is_some());
    assert!(store.refresh_token(&refresh_key).await.unwrap().is_some());
    let removed = store
        .purge_expired_sign_in_state(at(T0 + 86_400_001))
        .await
        .unwrap();
    assert!(removed >= 3, "{removed}");
    assert_eq!(store.oauth_grant(grant.id).await.unwrap(), None);
    assert_eq!(store.refresh_token(&refresh_key).await.unwrap(), None);
    assert_eq!(
        store.authorization_code(&code_key).await.unwrap(),
        Taken::Unknown
    );
}
