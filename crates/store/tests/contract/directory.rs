//! The directory's storage: users (unique names, ignoring case), applications (unique app
//! ids), groups and nested membership (transitive both ways, cycles end), what a delete takes
//! with it, list filters, keyset paging, directory audits newest first, and the two markers
//! written only when their row is made (a group's isAssignableToRole, the automation
//! application's).

use std::collections::HashSet;

use portcullis_core::Error;
use portcullis_core::directory::model::{
    Application, DocumentKind, Group, ObjectKind, PolicyDocument, RoleAssignment, User, UserType,
};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, Cursor, ListQuery, Op, Predicate, Value};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{
    T0, application, at, audit, commit, credential, expect_conflict, expect_not_found, group,
    member, pred, query, text, user,
};

contract!(
    upn_lookup_ignores_case_and_duplicates_conflict,
    duplicate_app_id_conflicts,
    membership_conflicts_and_missing_containers,
    nested_groups_resolve_transitively_and_cycles_end,
    deletes_cascade,
    filters,
    keyset_paging_has_no_duplicates_or_gaps,
    audits_are_newest_first,
    role_assignable_and_automation_markers_are_kept_and_never_updated,
);

async fn upn_lookup_ignores_case_and_duplicates_conflict(store: SqlStore) {
    let joni = user("Joni.Sherman@Contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    assert_eq!(
        store.user_by_upn("joni.sherman@contoso.COM").await.unwrap(),
        Some(joni.clone())
    );
    assert_eq!(store.user_by_upn("joni@contoso.com").await.unwrap(), None);

    let twin = user("JONI.SHERMAN@contoso.com", T0 + 1);
    let result = store.commit(vec![Change::InsertUser(twin)], None).await;
    expect_conflict(result, "userPrincipalName 'JONI.SHERMAN@contoso.com'");

    // Renaming another user onto the taken name clashes the same way.
    let mut grady = user("grady@contoso.com", T0 + 2);
    commit(&store, vec![Change::InsertUser(grady.clone())]).await;
    grady.user_principal_name = "joni.sherman@CONTOSO.com".to_string();
    let result = store.commit(vec![Change::UpdateUser(grady)], None).await;
    expect_conflict(result, "userPrincipalName");

    // The same id twice is a conflict about the id, not the name.
    let mut same_id = user("someone@contoso.com", T0 + 3);
    same_id.id = joni.id;
    let result = store.commit(vec![Change::InsertUser(same_id)], None).await;
    expect_conflict(result, &joni.id.to_string());

    let page = store.list_users(&ListQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 2);
}

async fn duplicate_app_id_conflicts(store: SqlStore) {
    let first = application("First", T0);
    commit(&store, vec![Change::InsertApplication(first.clone())]).await;
    let mut second = application("Second", T0 + 1);
    second.app_id = first.app_id;
    let result = store
        .commit(vec![Change::InsertApplication(second)], None)
        .await;
    expect_conflict(result, "appId");
    let page = store
        .list_applications(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![first]);
}

async fn membership_conflicts_and_missing_containers(store: SqlStore) {
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
    let result = store
        .commit(vec![member(&team, joni.id, ObjectKind::User)], None)
        .await;
    expect_conflict(result, "already a member");

    let nowhere = group("Nowhere", T0);
    let result = store
        .commit(vec![member(&nowhere, joni.id, ObjectKind::User)], None)
        .await;
    expect_not_found(result, "group");

    let result = store
        .commit(
            vec![Change::InsertPasswordCredential {
                application_id: Uuid::new_v4(),
                credential: credential("abc", T0),
            }],
            None,
        )
        .await;
    expect_not_found(result, "application");
    assert_eq!(store.members(team.id).await.unwrap().len(), 1);
}

async fn nested_groups_resolve_transitively_and_cycles_end(store: SqlStore) {
    // outer ⊃ middle ⊃ inner ⊃ joni; outer ⊃ grady; inner ⊃ outer closes a cycle.
    let outer = group("Outer", T0);
    let middle = group("Middle", T0 + 1);
    let inner = group("Inner", T0 + 2);
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0);
    let loner = user("loner@contoso.com", T0);
    commit(
        &store,
        vec![
            Change::InsertGroup(outer.clone()),
            Change::InsertGroup(middle.clone()),
            Change::InsertGroup(inner.clone()),
            Change::InsertUser(joni.clone()),
            Change::InsertUser(grady.clone()),
            Change::InsertUser(loner.clone()),
            member(&outer, middle.id, ObjectKind::Group),
            member(&middle, inner.id, ObjectKind::Group),
            member(&inner, joni.id, ObjectKind::User),
            member(&outer, grady.id, ObjectKind::User),
            // Joni is also a direct member of the middle group: still listed once.
            member(&middle, joni.id, ObjectKind::User),
        ],
    )
    .await;

    let ids = |members: Vec<portcullis_core::directory::model::MemberRef>| -> Vec<Uuid> {
        members.into_iter().map(|m| m.id).collect()
    };
    let group_ids =
        |groups: Vec<Group>| -> Vec<Uuid> { groups.into_iter().map(|g| g.id).collect() };

    assert_eq!(
        ids(store.members(outer.id).await.unwrap()),
        vec![grady.id, middle.id]
    );
    // Ordered by display name: grady, Inner, joni, Middle.
    assert_eq!(
        ids(store.transitive_members(outer.id).await.unwrap()),
        vec![grady.id, inner.id, joni.id, middle.id]
    );
    assert_eq!(
        ids(store.transitive_members(inner.id).await.unwrap()),
        vec![joni.id]
    );
    assert_eq!(
        group_ids(store.member_of(joni.id).await.unwrap()),
        vec![inner.id, middle.id]
    );
    assert_eq!(
        group_ids(store.transitive_member_of(joni.id).await.unwrap()),
        vec![inner.id, middle.id, outer.id]
    );
    assert_eq!(store.transitive_member_of(loner.id).await.unwrap(), vec![]);
    assert_eq!(
        store.transitive_members(Uuid::new_v4()).await.unwrap(),
        vec![]
    );

    // Close the cycle: both directions still terminate, each object once, never itself.
    commit(&store, vec![member(&inner, outer.id, ObjectKind::Group)]).await;
    assert_eq!(
        ids(store.transitive_members(outer.id).await.unwrap()),
        vec![grady.id, inner.id, joni.id, middle.id]
    );
    assert_eq!(
        ids(store.transitive_members(inner.id).await.unwrap()),
        vec![grady.id, joni.id, middle.id, outer.id]
    );
    assert_eq!(
        group_ids(store.transitive_member_of(joni.id).await.unwrap()),
        vec![inner.id, middle.id, outer.id]
    );
    assert_eq!(
        group_ids(store.transitive_member_of(outer.id).await.unwrap()),
        vec![inner.id, middle.id]
    );
}

async fn deletes_cascade(store: SqlStore) {
    let team = group("Team", T0);
    let sub = group("Sub", T0);
    let joni = user("joni@contoso.com", T0);
    let grady = user("grady@contoso.com", T0);
    let mut app = application("App", T0);
    app.password_credentials = vec![credential("abc", T0)];
    let role = Uuid::new_v4();
    let assign = |principal: Uuid| RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: principal,
        role_definition_id: role,
        directory_scope_id: "/".to_string(),
    };
    let (joni_role, grady_role, sub_role, app_role) = (
        assign(joni.id),
        assign(grady.id),
        assign(sub.id),
        assign(app.id),
    );
    commit(
        &store,
        vec![
            Change::InsertGroup(team.clone()),
            Change::InsertGroup(sub.clone()),
            Change::InsertUser(joni.clone()),
            Change::InsertUser(grady.clone()),
            Change::InsertApplication(app.clone()),
            member(&team, joni.id, ObjectKind::User),
            member(&team, grady.id, ObjectKind::User),
            member(&team, sub.id, ObjectKind::Group),
            member(&team, app.id, ObjectKind::ServicePrincipal),
            member(&sub, joni.id, ObjectKind::User),
            Change::InsertRoleAssignment(joni_role.clone()),
            Change::InsertRoleAssignment(grady_role.clone()),
            Change::InsertRoleAssignment(sub_role.clone()),
            Change::InsertRoleAssignment(app_role.clone()),
        ],
    )
    .await;

    commit(&store, vec![Change::DeleteUser(joni.id)]).await;
    assert_eq!(store.user(joni.id).await.unwrap(), None);
    assert_eq!(store.member_of(joni.id).await.unwrap(), vec![]);
    assert!(store.members(sub.id).await.unwrap().is_empty());
    assert_eq!(store.role_assignments(Some(joni.id)).await.unwrap(), vec![]);
    assert_eq!(store.role_assignment(joni_role.id).await.unwrap(), None);
    assert_eq!(store.members(team.id).await.unwrap().len(), 3);

    // A group goes with its own member list and its place in other groups.
    commit(&store, vec![Change::DeleteGroup(sub.id)]).await;
    assert_eq!(store.group(sub.id).await.unwrap(), None);
    assert_eq!(store.role_assignments(Some(sub.id)).await.unwrap(), vec![]);
    let left: Vec<_> = store
        .members(team.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![app.id, grady.id]);

    // An application goes with its secrets and role assignments.
    commit(&store, vec![Change::DeleteApplication(app.id)]).await;
    assert_eq!(store.application(app.id).await.unwrap(), None);
    assert_eq!(store.role_assignments(Some(app.id)).await.unwrap(), vec![]);
    let left: Vec<_> = store
        .members(team.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![grady.id]);
    // Re-creating it with the same ids finds no stale credential.
    let mut again = app.clone();
    again.password_credentials.clear();
    commit(&store, vec![Change::InsertApplication(again.clone())]).await;
    assert_eq!(store.application(app.id).await.unwrap(), Some(again));

    commit(
        &store,
        vec![
            Change::RemoveMember {
                group_id: team.id,
                member_id: grady.id,
            },
            Change::DeleteRoleAssignment(grady_role.id),
        ],
    )
    .await;
    assert!(store.members(team.id).await.unwrap().is_empty());
    assert_eq!(store.role_assignments(None).await.unwrap(), vec![]);
    assert_eq!(store.user(grady.id).await.unwrap(), Some(grady));

    let document = PolicyDocument {
        kind: DocumentKind::ConditionalAccessPolicy,
        id: "p1".to_string(),
        display_name: "Policy".to_string(),
        body: serde_json::json!({"state": "enabled"}),
        created: at(T0),
        modified: at(T0),
    };
    commit(&store, vec![Change::InsertDocument(document)]).await;
    commit(
        &store,
        vec![Change::DeleteDocument {
            kind: DocumentKind::ConditionalAccessPolicy,
            id: "p1".to_string(),
        }],
    )
    .await;
    assert_eq!(
        store
            .document(DocumentKind::ConditionalAccessPolicy, "p1")
            .await
            .unwrap(),
        None
    );
}

async fn filters(store: SqlStore) {
    let mut users = [
        user("alice@contoso.com", T0),
        user("50%off@contoso.com", T0 + 1000),
        user("50xoff@contoso.com", T0 + 2000),
        user("a_b@contoso.com", T0 + 3000),
        user("axb@contoso.com", T0 + 4000),
        user("back\\slash@contoso.com", T0 + 5000),
        user("Bob@Fabrikam.com", T0 + 6000),
    ];
    users[0].mail = Some("Alice@Contoso.com".to_string());
    users[0].display_name = "Alice Smith".to_string();
    users[6].account_enabled = false;
    users[6].user_type = UserType::Guest;
    let changes = users.iter().cloned().map(Change::InsertUser).collect();
    commit(&store, changes).await;

    let upns = |page: portcullis_core::kernel::query::Page<User>| -> Vec<String> {
        page.items
            .into_iter()
            .map(|u| u.user_principal_name)
            .collect()
    };
    let list = |filter: Vec<Predicate>| {
        let store = store.clone();
        async move { upns(store.list_users(&query(filter)).await.unwrap()) }
    };

    // eq ignores case, on the name and on other text properties.
    assert_eq!(
        list(vec![pred(
            "user_principal_name",
            Op::Eq,
            text("BOB@fabrikam.COM")
        )])
        .await,
        vec!["Bob@Fabrikam.com"]
    );
    assert_eq!(
        list(vec![pred("mail", Op::Eq, text("alice@contoso.com"))]).await,
        vec!["alice@contoso.com"]
    );
    assert_eq!(
        list(vec![pred("display_name", Op::Eq, text("alice smith"))]).await,
        vec!["alice@contoso.com"]
    );
    assert_eq!(
        list(vec![pred(
            "id",
            Op::Eq,
            text(&users[3].id.to_string().to_uppercase())
        )])
        .await,
        vec!["a_b@contoso.com"]
    );
    // startswith ignores case and treats % _ \ in the value as themselves.
    assert_eq!(
        list(vec![pred(
            "user_principal_name",
            Op::StartsWith,
            text("50%")
        )])
        .await,
        vec!["50%off@contoso.com"]
    );
    assert_eq!(
        list(vec![pred(
            "user_principal_name",
            Op::StartsWith,
            text("A_")
        )])
        .await,
        vec!["a_b@contoso.com"]
    );
    assert_eq!(
        list(vec![pred(
            "user_principal_name",
            Op::StartsWith,
            text("back\\")
        )])
        .await,
        vec!["back\\slash@contoso.com"]
    );
    assert_eq!(
        list(vec![pred("user_principal_name", Op::StartsWith, text("A"))]).await,
        vec!["alice@contoso.com", "a_b@contoso.com", "axb@contoso.com"]
    );
    assert!(
        list(vec![pred("user_principal_name", Op::StartsWith, text("%"))])
            .await
            .is_empty()
    );
    // ne keeps rows without a value.
    assert_eq!(
        list(vec![pred("mail", Op::Ne, text("ALICE@contoso.com"))])
            .await
            .len(),
        6
    );
    // Instants compare as instants, inclusive and exclusive.
    assert_eq!(
        list(vec![
            pred("created", Op::Ge, Value::Instant(at(T0 + 1000))),
            pred("created", Op::Le, Value::Instant(at(T0 + 3000))),
        ])
        .await,
        vec![
            "50%off@contoso.com",
            "50xoff@contoso.com",
            "a_b@contoso.com"
        ]
    );
    assert_eq!(
        list(vec![
            pred("created", Op::Gt, Value::Instant(at(T0 + 1000))),
            pred("created", Op::Lt, Value::Instant(at(T0 + 3000))),
        ])
        .await,
        vec!["50xoff@contoso.com"]
    );
    // Booleans.
    assert_eq!(
        list(vec![pred("account_enabled", Op::Eq, Value::Bool(false))]).await,
        vec!["Bob@Fabrikam.com"]
    );
    assert_eq!(
        list(vec![pred("account_enabled", Op::Ne, Value::Bool(false))])
            .await
            .len(),
        6
    );
    assert_eq!(
        list(vec![
            pred("account_enabled", Op::Eq, Value::Bool(true)),
            pred("user_principal_name", Op::StartsWith, text("50")),
        ])
        .await,
        vec!["50%off@contoso.com", "50xoff@contoso.com"]
    );
    assert_eq!(
        list(vec![pred("user_type", Op::Eq, text("guest"))]).await,
        vec!["Bob@Fabrikam.com"]
    );

    // Groups and applications filter the same way.
    let mut secure = group("Secure admins", T0);
    secure.mail_nickname = Some("SecAdmins".to_string());
    let mut open = group("Open", T0 + 1);
    open.security_enabled = false;
    let app = application("Portal", T0);
    commit(
        &store,
        vec![
            Change::InsertGroup(secure.clone()),
            Change::InsertGroup(open.clone()),
            Change::InsertApplication(app.clone()),
        ],
    )
    .await;
    let groups = store
        .list_groups(&query(vec![pred(
            "security_enabled",
            Op::Eq,
            Value::Bool(false),
        )]))
        .await
        .unwrap();
    assert_eq!(groups.items, vec![open]);
    let groups = store
        .list_groups(&query(vec![pred(
            "mail_nickname",
            Op::Eq,
            text("secadmins"),
        )]))
        .await
        .unwrap();
    assert_eq!(groups.items, vec![secure]);
    let apps = store
        .list_applications(&query(vec![pred(
            "app_id",
            Op::Eq,
            text(&app.app_id.to_string()),
        )]))
        .await
        .unwrap();
    assert_eq!(apps.items, vec![app]);

    // A column that is not filterable, or a comparison that makes no sense, is a 400.
    for bad in [
        pred("secret_hash", Op::Eq, text("x")),
        pred("account_enabled", Op::StartsWith, text("t")),
        pred("created", Op::Eq, text("yesterday")),
    ] {
        match store.list_users(&query(vec![bad.clone()])).await {
            Err(Error::Invalid { .. }) => {}
            other => panic!("{bad:?} should be refused, got {other:?}"),
        }
    }
}

async fn keyset_paging_has_no_duplicates_or_gaps(store: SqlStore) {
    // Eight users, several created in the same millisecond so that the id decides.
    let created = [T0, T0, T0 + 1, T0 + 1, T0 + 1, T0 + 2, T0 + 3, T0 + 3];
    let users: Vec<User> = created
        .iter()
        .enumerate()
        .map(|(i, &ms)| user(&format!("user{i}@contoso.com"), ms))
        .collect();
    // Inserted in reverse to show that order comes from the sort key, not insertion.
    commit(
        &store,
        users
            .iter()
            .rev()
            .cloned()
            .map(Change::InsertUser)
            .collect(),
    )
    .await;
    let mut expected = users.clone();
    expected.sort_by(|a, b| {
        (a.created_date_time, a.id.to_string()).cmp(&(b.created_date_time, b.id.to_string()))
    });

    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_users(&ListQuery {
                filter: Vec::new(),
                top: 3,
                after: after.clone(),
                count: false,
            })
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        if let Some(next) = &page.next {
            let last = page.items.last().expect("a page with a next link has rows");
            assert_eq!(next.created, last.created_date_time);
            assert_eq!(next.id, last.id.to_string());
        }
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
    let distinct: HashSet<Uuid> = seen.iter().map(|u| u.id).collect();
    assert_eq!(distinct.len(), users.len());

    // Exactly `top` rows left: no next link, and no empty page after it.
    let last_two = store
        .list_users(&ListQuery {
            filter: Vec::new(),
            top: 2,
            after: Some(Cursor {
                created: expected[5].created_date_time,
                id: expected[5].id.to_string(),
                key: None,
            }),
            count: false,
        })
        .await
        .unwrap();
    assert_eq!(last_two.items, expected[6..].to_vec());
    assert_eq!(last_two.next, None);

    // Paging combines with a filter.
    let filtered = ListQuery {
        filter: vec![pred("created", Op::Ge, Value::Instant(at(T0 + 1)))],
        top: 2,
        after: None,
        count: false,
    };
    let first = store.list_users(&filtered).await.unwrap();
    assert_eq!(first.items, expected[2..4].to_vec());
    let second = store
        .list_users(&ListQuery {
            after: first.next,
            ..filtered
        })
        .await
        .unwrap();
    assert_eq!(second.items, expected[4..6].to_vec());
    assert!(second.next.is_some());

    // Groups and applications page by the same rule.
    let groups: Vec<Group> = (0..5)
        .map(|i| group(&format!("g{i}"), T0 + i / 2))
        .collect();
    let apps: Vec<Application> = (0..5)
        .map(|i| application(&format!("a{i}"), T0 + i / 2))
        .collect();
    let mut changes: Vec<Change> = groups.iter().cloned().map(Change::InsertGroup).collect();
    changes.extend(apps.iter().cloned().map(Change::InsertApplication));
    commit(&store, changes).await;
    let mut group_ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_groups(&ListQuery {
                filter: Vec::new(),
                top: 2,
                after,
                count: false,
            })
            .await
            .unwrap();
        group_ids.extend(page.items.iter().map(|g| g.id));
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    let mut expected_groups = groups.clone();
    expected_groups.sort_by_key(|g| (g.created_date_time, g.id.to_string()));
    assert_eq!(
        group_ids,
        expected_groups.iter().map(|g| g.id).collect::<Vec<_>>()
    );
    let mut app_ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_applications(&ListQuery {
                filter: Vec::new(),
                top: 2,
                after,
                count: false,
            })
            .await
            .unwrap();
        app_ids.extend(page.items.iter().map(|a| a.id));
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    let mut expected_apps = apps.clone();
    expected_apps.sort_by_key(|a| (a.created_date_time, a.id.to_string()));
    assert_eq!(
        app_ids,
        expected_apps.iter().map(|a| a.id).collect::<Vec<_>>()
    );
}

async fn audits_are_newest_first(store: SqlStore) {
    let admin = Uuid::new_v4();
    let other = Uuid::new_v4();
    let times = [T0, T0 + 10, T0 + 10, T0 + 20, T0 + 30, T0 + 30, T0 + 40];
    let mut entries = Vec::new();
    for (i, &when) in times.iter().enumerate() {
        let (category, initiator) = if i % 2 == 0 {
            ("UserManagement", admin)
        } else {
            ("GroupManagement", other)
        };
        let entry = audit(&format!("Activity {i}"), category, when, initiator);
        // One commit each, as administrative changes arrive.
        store
            .commit(Vec::<Change>::new(), Some(entry.clone()))
            .await
            .unwrap();
        entries.push(entry);
    }
    let mut expected = entries.clone();
    expected.sort_by(|a, b| {
        (b.activity_date_time, b.id.to_string()).cmp(&(a.activity_date_time, a.id.to_string()))
    });

    let all = store.list_audits(&ListQuery::default()).await.unwrap();
    assert_eq!(all.items, expected);
    assert_eq!(all.next, None);

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_audits(&ListQuery {
                filter: Vec::new(),
                top: 3,
                after,
                count: false,
            })
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    let by = |filter: Vec<Predicate>| {
        let store = store.clone();
        async move {
            store
                .list_audits(&query(filter))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|a| a.activity_display_name)
                .collect::<Vec<_>>()
        }
    };
    let group_management: Vec<String> = expected
        .iter()
        .filter(|e| e.category == "GroupManagement")
        .map(|e| e.activity_display_name.clone())
        .collect();
    assert_eq!(group_management.len(), 3);
    assert_eq!(
        by(vec![pred("category", Op::Eq, text("groupmanagement"))]).await,
        group_management
    );
    assert_eq!(
        by(vec![pred(
            "initiated_by_id",
            Op::Eq,
            text(&admin.to_string())
        )])
        .await
        .len(),
        4
    );
    assert_eq!(
        by(vec![pred(
            "correlation_id",
            Op::Eq,
            text(&entries[3].correlation_id.to_string())
        )])
        .await,
        vec!["Activity 3"]
    );
    assert_eq!(
        by(vec![
            pred("activity_date_time", Op::Ge, Value::Instant(at(T0 + 30))),
            pred("operation_type", Op::Eq, text("add")),
            pred("result", Op::Eq, text("success")),
        ])
        .await
        .len(),
        3
    );
    assert_eq!(
        by(vec![pred(
            "activity_display_name",
            Op::StartsWith,
            text("activity 6")
        )])
        .await,
        vec!["Activity 6"]
    );
}

async fn role_assignable_and_automation_markers_are_kept_and_never_updated(store: SqlStore) {
    let mut tier0 = group("Tier 0 admins", T0);
    tier0.is_assignable_to_role = true;
    let plain = group("Readers", T0 + 1);
    let mut automation = application("Automation", T0);
    automation.bootstrap_automation = true;
    let other = application("Other", T0 + 1);
    commit(
        &store,
        vec![
            Change::InsertGroup(tier0.clone()),
            Change::InsertGroup(plain.clone()),
            Change::InsertApplication(automation.clone()),
            Change::InsertApplication(other.clone()),
        ],
    )
    .await;
    assert_eq!(store.group(tier0.id).await.unwrap(), Some(tier0.clone()));
    assert_eq!(store.group(plain.id).await.unwrap(), Some(plain.clone()));
    let assignable = store
        .list_groups(&query(vec![pred(
            "is_assignable_to_role",
            Op::Eq,
            Value::Bool(true),
        )]))
        .await
        .unwrap();
    assert_eq!(assignable.items, vec![tier0.clone()]);
    for found in [
        store.application(automation.id).await.unwrap(),
        store
            .application_by_app_id(automation.app_id)
            .await
            .unwrap(),
    ] {
        assert!(found.unwrap().bootstrap_automation);
    }
    let listed = store
        .list_applications(&ListQuery::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        listed
            .iter()
            .map(|a| (a.display_name.as_str(), a.bootstrap_automation))
            .collect::<Vec<_>>(),
        vec![("Automation", true), ("Other", false)]
    );

    // An update that carries other values changes neither marker: both are set when the row is
    // made and only then.
    let mut renamed = tier0.clone();
    renamed.display_name = "Tier zero".to_string();
    renamed.is_assignable_to_role = false;
    let mut promoted = other.clone();
    promoted.bootstrap_automation = true;
    let mut demoted = automation.clone();
    demoted.bootstrap_automation = false;
    commit(
        &store,
        vec![
            Change::UpdateGroup(renamed),
            Change::UpdateApplication(promoted),
            Change::UpdateApplication(demoted),
        ],
    )
    .await;
    let kept = store.group(tier0.id).await.unwrap().unwrap();
    assert_eq!(kept.display_name, "Tier zero");
    assert!(kept.is_assignable_to_role);
    assert!(
        store
            .application(automation.id)
            .await
            .unwrap()
            .unwrap()
            .bootstrap_automation
    );
    assert!(
        !store
            .application(other.id)
            .await
            .unwrap()
            .unwrap()
            .bootstrap_automation
    );
}
