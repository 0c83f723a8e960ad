//! Deleted users (soft delete): a deleted user is invisible to every read of live users and of
//! memberships and roles, a new user may take its name, a restore brings back what was set aside
//! (and is a conflict while a live user holds its name), a permanent delete removes everything,
//! and the purge finds the users deleted before a cutoff. The memberships revision moves with
//! each.

use portcullis_core::Error;
use portcullis_core::directory::model::{ObjectKind, RoleAssignment};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, expect_not_found, group, member, user};

contract!(
    a_deleted_user_is_invisible_and_comes_back_as_it_was,
    a_new_user_may_take_a_deleted_name_and_then_restore_conflicts,
    permanent_delete_and_the_purge_cutoff,
);

const DAY: i64 = 86_400_000;

fn all() -> ListQuery {
    ListQuery {
        top: 100,
        ..ListQuery::default()
    }
}

async fn memberships_revision(store: &SqlStore) -> String {
    store.revisions().await.unwrap().expect("kept").memberships
}

async fn a_deleted_user_is_invisible_and_comes_back_as_it_was(store: SqlStore) {
    let team = group("Team", T0);
    let outer = group("Outer", T0);
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0 + 1);
    let role = Uuid::new_v4();
    let joni_role = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: joni.id,
        role_definition_id: role,
        directory_scope_id: "/".to_string(),
    };
    let team_role_id = Uuid::new_v4();
    let team_role = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: outer.id,
        role_definition_id: team_role_id,
        directory_scope_id: "/".to_string(),
    };
    commit(
        &store,
        vec![
            Change::InsertGroup(team.clone()),
            Change::InsertGroup(outer.clone()),
            Change::InsertUser(joni.clone()),
            Change::InsertUser(grady.clone()),
            member(&team, joni.id, ObjectKind::User),
            member(&team, grady.id, ObjectKind::User),
            member(&outer, team.id, ObjectKind::Group),
            Change::InsertRoleAssignment(joni_role.clone()),
            Change::InsertRoleAssignment(team_role.clone()),
        ],
    )
    .await;
    let before = memberships_revision(&store).await;

    commit(
        &store,
        vec![Change::SoftDeleteUser {
            user_id: joni.id,
            at: at(T0 + DAY),
        }],
    )
    .await;
    assert_ne!(
        memberships_revision(&store).await,
        before,
        "delete moves it"
    );

    // Gone from every read of live users, memberships and roles.
    assert_eq!(store.user(joni.id).await.unwrap(), None);
    assert_eq!(store.user_by_upn("JONI@contoso.com").await.unwrap(), None);
    let live: Vec<Uuid> = store
        .list_users(&all())
        .await
        .unwrap()
        .items
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(live, vec![grady.id]);
    let members: Vec<Uuid> = store
        .members(team.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(members, vec![grady.id]);
    assert!(
        !store
            .transitive_members(outer.id)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == joni.id)
    );
    assert!(store.member_of(joni.id).await.unwrap().is_empty());
    assert!(
        store
            .transitive_member_of(joni.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .role_definitions_held(joni.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .role_assignments(None)
            .await
            .unwrap()
            .iter()
            .any(|a| a.principal_id == joni.id)
    );

    // In deleted items, with when, and the roles a restore would give back.
    let deleted = store.deleted_user(joni.id).await.unwrap().expect("deleted");
    assert_eq!(deleted.user, joni);
    assert_eq!(deleted.deleted_date_time, at(T0 + DAY));
    assert_eq!(store.deleted_user(grady.id).await.unwrap(), None, "live");
    let listed = store.list_deleted_users(&all()).await.unwrap().items;
    assert_eq!(listed, vec![deleted]);
    let mut expected = vec![role, team_role_id];
    expected.sort();
    assert_eq!(
        store.deleted_user_role_definitions(joni.id).await.unwrap(),
        expected
    );
    // A second delete of a deleted user finds no live user.
    expect_not_found(
        store
            .commit(
                vec![Change::SoftDeleteUser {
                    user_id: joni.id,
                    at: at(T0 + 2 * DAY),
                }],
                None,
            )
            .await,
        "user",
    );

    let before = memberships_revision(&store).await;
    commit(&store, vec![Change::RestoreUser(joni.id)]).await;
    assert_ne!(
        memberships_revision(&store).await,
        before,
        "restore moves it"
    );
    assert_eq!(store.user(joni.id).await.unwrap(), Some(joni.clone()));
    assert_eq!(store.deleted_user(joni.id).await.unwrap(), None);
    assert_eq!(
        store
            .member_of(joni.id)
            .await
            .unwrap()
            .iter()
            .map(|g| g.id)
            .collect::<Vec<_>>(),
        vec![team.id]
    );
    assert_eq!(
        store.role_assignments(Some(joni.id)).await.unwrap(),
        vec![joni_role]
    );
    assert_eq!(
        store.role_definitions_held(joni.id).await.unwrap(),
        expected
    );
    expect_not_found(
        store.commit(vec![Change::RestoreUser(joni.id)], None).await,
        "deletedUser",
    );
}

async fn a_new_user_may_take_a_deleted_name_and_then_restore_conflicts(store: SqlStore) {
    let team = group("Team", T0);
    let joni = user("joni@contoso.com", T0);
    commit(
        &store,
        vec![
            Change::InsertGroup(team.clone()),
            Change::InsertUser(joni.clone()),
            member(&team, joni.id, ObjectKind::User),
        ],
    )
    .await;
    commit(
        &store,
        vec![Change::SoftDeleteUser {
            user_id: joni.id,
            at: at(T0 + DAY),
        }],
    )
    .await;
    // Entra lets a new account take the name of a deleted one.
    let again = user("Joni@Contoso.com", T0 + 2 * DAY);
    commit(&store, vec![Change::InsertUser(again.clone())]).await;
    assert_eq!(
        store.user_by_upn("joni@contoso.com").await.unwrap(),
        Some(again.clone())
    );
    match store.commit(vec![Change::RestoreUser(joni.id)], None).await {
        Err(Error::Conflict { message, .. }) => {
            assert!(message.contains("userPrincipalName"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing changed: still deleted, its membership still set aside.
    assert!(store.deleted_user(joni.id).await.unwrap().is_some());
    assert!(store.member_of(joni.id).await.unwrap().is_empty());

    // Once the name is free again (the new account deleted), the restore goes through, and a
    // membership of a group deleted meanwhile is not brought back.
    commit(&store, vec![Change::DeleteUser(again.id)]).await;
    commit(&store, vec![Change::DeleteGroup(team.id)]).await;
    commit(&store, vec![Change::RestoreUser(joni.id)]).await;
    assert_eq!(
        store.user_by_upn("joni@contoso.com").await.unwrap(),
        Some(joni.clone())
    );
    assert!(store.member_of(joni.id).await.unwrap().is_empty());
}

async fn permanent_delete_and_the_purge_cutoff(store: SqlStore) {
    let team = group("Team", T0);
    let old = user("old@contoso.com", T0);
    let recent = user("recent@contoso.com", T0);
    commit(
        &store,
        vec![
            Change::InsertGroup(team.clone()),
            Change::InsertUser(old.clone()),
            Change::InsertUser(recent.clone()),
            member(&team, old.id, ObjectKind::User),
        ],
    )
    .await;
    commit(
        &store,
        vec![
            Change::SoftDeleteUser {
                user_id: old.id,
                at: at(T0 + DAY),
            },
            Change::SoftDeleteUser {
                user_id: recent.id,
                at: at(T0 + 20 * DAY),
            },
        ],
    )
    .await;
    // Most recently deleted first.
    let listed: Vec<Uuid> = store
        .list_deleted_users(&all())
        .await
        .unwrap()
        .items
        .iter()
        .map(|d| d.user.id)
        .collect();
    assert_eq!(listed, vec![recent.id, old.id]);
    assert_eq!(
        store
            .deleted_users_before(at(T0 + 10 * DAY), 10)
            .await
            .unwrap(),
        vec![old.id]
    );
    assert_eq!(
        store
            .deleted_users_before(at(T0 + 51 * DAY), 1)
            .await
            .unwrap(),
        vec![old.id],
        "at most the limit, oldest first"
    );
    assert!(
        store
            .deleted_users_before(at(T0), 10)
            .await
            .unwrap()
            .is_empty()
    );

    commit(&store, vec![Change::DeleteUser(old.id)]).await;
    assert_eq!(store.deleted_user(old.id).await.unwrap(), None);
    expect_not_found(
        store.commit(vec![Change::RestoreUser(old.id)], None).await,
        "deletedUser",
    );
    // Nothing set aside for it is left: a later user of the same id deleted and restored
    // gets back nothing of the old one's.
    let mut reborn = user("old@contoso.com", T0 + 40 * DAY);
    reborn.id = old.id;
    commit(&store, vec![Change::InsertUser(reborn)]).await;
    commit(
        &store,
        vec![Change::SoftDeleteUser {
            user_id: old.id,
            at: at(T0 + 40 * DAY),
        }],
    )
    .await;
    commit(&store, vec![Change::RestoreUser(old.id)]).await;
    assert!(store.member_of(old.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .deleted_users_before(at(T0 + 60 * DAY), 10)
            .await
            .unwrap(),
        vec![recent.id]
    );
}
