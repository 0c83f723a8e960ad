//! One door for writes: [`Store::commit`] applies a change list and its audit entry in one
//! transaction. This module owns what holds for every kind of row: each type reads back as
//! written, keys are unique, a failing change takes the whole list back (and only its own list,
//! under concurrency), missing rows are not found, and concurrent writers all land.

use portcullis_core::Error;
use portcullis_core::directory::model::{
    DocumentKind, ObjectKind, PolicyDocument, RoleAssignment, SigningAlgorithm, SigningKey, Tenant,
    UserType,
};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{
    T0, application, at, audit, audit_count, commit, credential, expect_conflict, expect_not_found,
    group, member, user,
};

contract!(
    every_type_round_trips,
    duplicate_keys_conflict,
    a_failing_change_leaves_nothing_behind,
    missing_rows_are_not_found,
    concurrent_writers_all_land,
    concurrent_failures_take_only_their_own_changes_back,
);

async fn every_type_round_trips(store: SqlStore) {
    store.ping().await.expect("ping");
    assert!(store.pool_stats().size >= 1);
    assert_eq!(store.tenant().await.unwrap(), None);

    let tenant = Tenant {
        id: Uuid::new_v4(),
        display_name: "Contoso".to_string(),
        created_date_time: at(T0),
    };
    let mut joni = user("joni@contoso.com", T0 + 1);
    joni.mail = Some("Joni.Sherman@contoso.com".to_string());
    let mut guest = user("grady@fabrikam.com", T0 + 2);
    guest.account_enabled = false;
    guest.user_type = UserType::Guest;
    let mut admins = group("Admins", T0 + 3);
    admins.description = Some("Accounts with admin roles".to_string());
    admins.mail_nickname = Some("admins".to_string());
    let mut unsecured = group("Mail only", T0 + 4);
    unsecured.security_enabled = false;
    let assignment = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: joni.id,
        role_definition_id: Uuid::parse_str("62e90394-69f5-4237-9190-012177145e10").unwrap(),
        directory_scope_id: "/".to_string(),
    };
    let mut app = application("Automation", T0 + 5);
    app.password_credentials = vec![credential("abc", T0), credential("def", T0 + 10)];
    let mut public = application("Native client", T0 + 6);
    public.is_fallback_public_client = true;
    public.public_client.redirect_uris = vec!["http://localhost/".to_string()];
    public.api_permissions = Vec::new();
    let later = credential("ghi", T0 + 20);
    let location = PolicyDocument {
        kind: DocumentKind::NamedLocation,
        id: Uuid::new_v4().to_string(),
        display_name: "Office".to_string(),
        body: serde_json::json!({
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "ipRanges": [{"cidrAddress": "192.0.2.0/24"}],
            "isTrusted": true,
        }),
        created: at(T0 + 7),
        modified: at(T0 + 8),
    };
    let strength = PolicyDocument {
        kind: DocumentKind::AuthenticationStrength,
        id: "00000000-0000-0000-0000-000000000004".to_string(),
        display_name: "Phishing-resistant MFA".to_string(),
        body: serde_json::json!({"allowedCombinations": ["fido2"]}),
        created: at(T0 + 9),
        modified: at(T0 + 9),
    };
    let key = SigningKey {
        kid: "key-1".to_string(),
        algorithm: SigningAlgorithm::Es256,
        sealed_private_key: vec![0, 1, 2, 254, 255],
        public_jwk: r#"{"kty":"EC","crv":"P-256"}"#.to_string(),
        created: at(T0 + 10),
        retired: None,
        activates: None,
    };
    let newer_key = SigningKey {
        kid: "key-2".to_string(),
        created: at(T0 + 11),
        activates: Some(at(T0 + 20)),
        ..key.clone()
    };
    let entry = audit("Add user", "UserManagement", T0 + 12, joni.id);

    store
        .commit(
            vec![
                Change::InsertTenant(tenant.clone()),
                Change::InsertUser(joni.clone()),
                Change::InsertUser(guest.clone()),
                Change::InsertGroup(admins.clone()),
                Change::InsertGroup(unsecured.clone()),
                member(&admins, joni.id, ObjectKind::User),
                member(&admins, unsecured.id, ObjectKind::Group),
                member(&admins, app.id, ObjectKind::ServicePrincipal),
                Change::InsertRoleAssignment(assignment.clone()),
                Change::InsertApplication(app.clone()),
                Change::InsertApplication(public.clone()),
                Change::InsertPasswordCredential {
                    application_id: app.id,
                    credential: later.clone(),
                },
                Change::InsertDocument(location.clone()),
                Change::InsertDocument(strength.clone()),
                Change::InsertSigningKey(key.clone()),
                Change::InsertSigningKey(newer_key.clone()),
                Change::RetireSigningKey {
                    kid: "key-1".to_string(),
                    at: at(T0 + 13),
                },
            ],
            Some(entry.clone()),
        )
        .await
        .expect("commit everything");

    assert_eq!(store.tenant().await.unwrap(), Some(tenant.clone()));
    assert_eq!(store.user(joni.id).await.unwrap(), Some(joni.clone()));
    assert_eq!(store.user(guest.id).await.unwrap(), Some(guest.clone()));
    assert_eq!(store.user(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(store.group(admins.id).await.unwrap(), Some(admins.clone()));
    assert_eq!(
        store.group(unsecured.id).await.unwrap(),
        Some(unsecured.clone())
    );

    let members = store.members(admins.id).await.unwrap();
    let described: Vec<_> = members
        .iter()
        .map(|m| {
            (
                m.id,
                m.kind,
                m.display_name.as_str(),
                m.user_principal_name.as_deref(),
            )
        })
        .collect();
    // By display name: "Automation", "joni", "Mail only".
    assert_eq!(
        described,
        vec![
            (app.id, ObjectKind::ServicePrincipal, "Automation", None),
            (joni.id, ObjectKind::User, "joni", Some("joni@contoso.com")),
            (unsecured.id, ObjectKind::Group, "Mail only", None),
        ]
    );
    assert_eq!(
        store.member_of(joni.id).await.unwrap(),
        vec![admins.clone()]
    );

    assert_eq!(
        store.role_assignment(assignment.id).await.unwrap(),
        Some(assignment.clone())
    );
    assert_eq!(
        store.role_assignments(Some(joni.id)).await.unwrap(),
        vec![assignment.clone()]
    );
    assert_eq!(
        store.role_assignments(Some(guest.id)).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.role_assignments(None).await.unwrap(),
        vec![assignment]
    );

    let mut app_with_all = app.clone();
    app_with_all.password_credentials.push(later);
    assert_eq!(
        store.application(app.id).await.unwrap(),
        Some(app_with_all.clone())
    );
    assert_eq!(
        store.application_by_app_id(app.app_id).await.unwrap(),
        Some(app_with_all.clone())
    );
    assert_eq!(
        store.application(public.id).await.unwrap(),
        Some(public.clone())
    );
    assert_eq!(store.application_by_app_id(app.id).await.unwrap(), None);
    let apps = store
        .list_applications(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(apps.items, vec![app_with_all, public]);
    assert_eq!(apps.next, None);

    assert_eq!(
        store
            .document(DocumentKind::NamedLocation, &location.id)
            .await
            .unwrap(),
        Some(location.clone())
    );
    // The same id under another kind is another document.
    assert_eq!(
        store
            .document(DocumentKind::ConditionalAccessPolicy, &location.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .documents(DocumentKind::AuthenticationStrength)
            .await
            .unwrap(),
        vec![strength]
    );
    let mut renamed = location.clone();
    renamed.display_name = "Head office".to_string();
    renamed.body["isTrusted"] = serde_json::json!(false);
    renamed.modified = at(T0 + 100);
    commit(&store, vec![Change::UpdateDocument(renamed.clone())]).await;
    assert_eq!(
        store.documents(DocumentKind::NamedLocation).await.unwrap(),
        vec![renamed]
    );

    let retired = SigningKey {
        retired: Some(at(T0 + 13)),
        activates: None,
        ..key
    };
    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![newer_key, retired]
    );

    let audits = store.list_audits(&ListQuery::default()).await.unwrap();
    assert_eq!(audits.items, vec![entry]);

    // Updates change what they say and keep the creation time.
    let mut changed = joni.clone();
    changed.display_name = "Joni Sherman".to_string();
    changed.mail = None;
    changed.account_enabled = false;
    changed.user_type = UserType::Guest;
    changed.user_principal_name = "joni.sherman@contoso.com".to_string();
    let mut attempted = changed.clone();
    attempted.created_date_time = at(T0 + 999);
    let mut renamed_group = admins.clone();
    renamed_group.display_name = "Administrators".to_string();
    renamed_group.description = None;
    renamed_group.security_enabled = false;
    let mut reconfigured = app.clone();
    reconfigured.display_name = "Automation 2".to_string();
    reconfigured.is_fallback_public_client = true;
    reconfigured.web.redirect_uris.clear();
    reconfigured
        .api_permissions
        .push("Group.ReadWrite.All".to_string());
    reconfigured.password_credentials.clear();
    commit(
        &store,
        vec![
            Change::UpdateUser(attempted),
            Change::UpdateGroup(renamed_group.clone()),
            Change::UpdateApplication(reconfigured.clone()),
            Change::DeletePasswordCredential {
                application_id: app.id,
                key_id: app.password_credentials[0].key_id,
            },
        ],
    )
    .await;
    assert_eq!(store.user(joni.id).await.unwrap(), Some(changed));
    assert_eq!(store.group(admins.id).await.unwrap(), Some(renamed_group));
    let read = store
        .application(app.id)
        .await
        .unwrap()
        .expect("application");
    assert_eq!(read.display_name, "Automation 2");
    assert!(read.is_fallback_public_client);
    assert!(read.web.redirect_uris.is_empty());
    assert_eq!(read.api_permissions, reconfigured.api_permissions);
    // UpdateApplication leaves credentials alone; the delete removed exactly one.
    let hints: Vec<_> = read
        .password_credentials
        .iter()
        .map(|c| c.hint.as_str())
        .collect();
    assert_eq!(hints, vec!["def", "ghi"]);

    // One tenant per deployment.
    let second = Tenant {
        id: Uuid::new_v4(),
        ..tenant
    };
    expect_conflict(
        store.commit(vec![Change::InsertTenant(second)], None).await,
        "tenant",
    );

    // An audit entry alone is a valid commit, and an empty one changes nothing.
    store
        .commit(
            Vec::<Change>::new(),
            Some(audit("Sign-in policy", "Policy", T0 + 50, joni.id)),
        )
        .await
        .unwrap();
    store.commit(Vec::<Change>::new(), None).await.unwrap();
    assert_eq!(
        store
            .list_audits(&ListQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

async fn duplicate_keys_conflict(store: SqlStore) {
    let mut app = application("App", T0);
    let secret = credential("abc", T0);
    app.password_credentials = vec![secret.clone()];
    let holder = user("holder@contoso.com", T0);
    let assignment = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: holder.id,
        role_definition_id: Uuid::new_v4(),
        directory_scope_id: "/".to_string(),
    };
    let location = PolicyDocument {
        kind: DocumentKind::NamedLocation,
        id: "loc".to_string(),
        display_name: "Office".to_string(),
        body: serde_json::json!({}),
        created: at(T0),
        modified: at(T0),
    };
    let key = SigningKey {
        kid: "k".to_string(),
        algorithm: SigningAlgorithm::Es256,
        sealed_private_key: vec![1],
        public_jwk: "{}".to_string(),
        created: at(T0),
        retired: None,
        activates: None,
    };
    commit(
        &store,
        vec![
            Change::InsertApplication(app.clone()),
            Change::InsertUser(holder),
            Change::InsertRoleAssignment(assignment.clone()),
            Change::InsertDocument(location.clone()),
            Change::InsertSigningKey(key.clone()),
        ],
    )
    .await;

    let again = Change::InsertPasswordCredential {
        application_id: app.id,
        credential: secret.clone(),
    };
    expect_conflict(store.commit(vec![again], None).await, "keyId");

    let same_role = RoleAssignment {
        id: Uuid::new_v4(),
        ..assignment.clone()
    };
    expect_conflict(
        store
            .commit(vec![Change::InsertRoleAssignment(same_role)], None)
            .await,
        "already holds role",
    );
    let same_id = RoleAssignment {
        directory_scope_id: "/other".to_string(),
        ..assignment
    };
    expect_conflict(
        store
            .commit(vec![Change::InsertRoleAssignment(same_id)], None)
            .await,
        "role assignment with id",
    );
    expect_conflict(
        store
            .commit(vec![Change::InsertDocument(location)], None)
            .await,
        "namedLocation with id 'loc'",
    );
    expect_conflict(
        store
            .commit(vec![Change::InsertSigningKey(key)], None)
            .await,
        "kid 'k'",
    );
    let mut clone = application("Clone", T0 + 1);
    clone.id = app.id;
    expect_conflict(
        store
            .commit(vec![Change::InsertApplication(clone)], None)
            .await,
        "application with id",
    );
    let mut twin_group = group("G", T0);
    commit(&store, vec![Change::InsertGroup(twin_group.clone())]).await;
    twin_group.display_name = "H".to_string();
    expect_conflict(
        store
            .commit(vec![Change::InsertGroup(twin_group)], None)
            .await,
        "group with id",
    );
    let entry = audit("Add user", "UserManagement", T0, Uuid::new_v4());
    store
        .commit(Vec::<Change>::new(), Some(entry.clone()))
        .await
        .unwrap();
    expect_conflict(
        store.commit(Vec::<Change>::new(), Some(entry)).await,
        "directory audit",
    );
}

async fn a_failing_change_leaves_nothing_behind(store: SqlStore) {
    let existing = user("taken@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(existing.clone())]).await;

    let newcomer = user("new@contoso.com", T0 + 1);
    let team = group("Team", T0 + 2);
    let app = application("App", T0 + 3);
    let clash = user("TAKEN@contoso.com", T0 + 4);
    let after = user("after@contoso.com", T0 + 5);
    let mut renamed = existing.clone();
    renamed.display_name = "Renamed".to_string();
    let failing = vec![
        Change::InsertUser(newcomer.clone()),
        Change::UpdateUser(renamed),
        Change::InsertGroup(team.clone()),
        member(&team, newcomer.id, ObjectKind::User),
        Change::InsertApplication(app.clone()),
        Change::InsertUser(clash),
        Change::InsertUser(after.clone()),
    ];
    let entry = audit("Bulk add", "UserManagement", T0 + 6, existing.id);
    let result = store.commit(failing, Some(entry)).await;
    expect_conflict(result, "userPrincipalName");

    assert_eq!(store.user(newcomer.id).await.unwrap(), None);
    assert_eq!(store.user(after.id).await.unwrap(), None);
    assert_eq!(
        store.user(existing.id).await.unwrap(),
        Some(existing.clone())
    );
    assert_eq!(store.group(team.id).await.unwrap(), None);
    assert_eq!(store.member_of(newcomer.id).await.unwrap(), vec![]);
    assert_eq!(store.application(app.id).await.unwrap(), None);
    // The entry is written alone, as the operation's failure (issue 21), never as a success.
    let entries = store
        .list_audits(&ListQuery::default())
        .await
        .unwrap()
        .items;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].result, "failure");
    assert!(
        entries[0].result_reason.contains("userPrincipalName"),
        "{}",
        entries[0].result_reason
    );

    // A 404 in the middle rolls back the same way, and a failing audit insert undoes the
    // changes before it.
    let result = store
        .commit(
            vec![
                Change::InsertUser(newcomer.clone()),
                Change::DeleteUser(Uuid::new_v4()),
            ],
            None,
        )
        .await;
    expect_not_found(result, "user");
    assert_eq!(store.user(newcomer.id).await.unwrap(), None);

    let logged = audit("Add user", "UserManagement", T0 + 7, existing.id);
    store
        .commit(Vec::<Change>::new(), Some(logged.clone()))
        .await
        .unwrap();
    let result = store
        .commit(vec![Change::InsertUser(newcomer.clone())], Some(logged))
        .await;
    expect_conflict(result, "directory audit");
    assert_eq!(store.user(newcomer.id).await.unwrap(), None);

    // And the store is still usable afterwards.
    commit(&store, vec![Change::InsertUser(newcomer.clone())]).await;
    assert_eq!(store.user(newcomer.id).await.unwrap(), Some(newcomer));
}

async fn missing_rows_are_not_found(store: SqlStore) {
    let ghost = Uuid::new_v4();
    let cases: Vec<(Change, &str)> = vec![
        (Change::UpdateUser(user("ghost@contoso.com", T0)), "user"),
        (Change::DeleteUser(ghost), "user"),
        (Change::UpdateGroup(group("Ghosts", T0)), "group"),
        (Change::DeleteGroup(ghost), "group"),
        (
            Change::RemoveMember {
                group_id: ghost,
                member_id: ghost,
            },
            "member",
        ),
        (Change::DeleteRoleAssignment(ghost), "roleAssignment"),
        (
            Change::UpdateApplication(application("Ghost", T0)),
            "application",
        ),
        (Change::DeleteApplication(ghost), "application"),
        (
            Change::DeletePasswordCredential {
                application_id: ghost,
                key_id: ghost,
            },
            "passwordCredential",
        ),
        (
            Change::UpdateDocument(PolicyDocument {
                kind: DocumentKind::ConditionalAccessPolicy,
                id: "missing".to_string(),
                display_name: "Missing".to_string(),
                body: serde_json::json!({}),
                created: at(T0),
                modified: at(T0),
            }),
            "conditionalAccessPolicy",
        ),
        (
            Change::DeleteDocument {
                kind: DocumentKind::NamedLocation,
                id: "missing".to_string(),
            },
            "namedLocation",
        ),
        (
            Change::RetireSigningKey {
                kid: "missing".to_string(),
                at: at(T0),
            },
            "signingKey",
        ),
    ];
    for (change, resource) in cases {
        let result = store.commit(vec![change.clone()], None).await;
        match result {
            Err(Error::NotFound {
                resource: found, ..
            }) => {
                assert_eq!(found, resource, "{change:?}")
            }
            other => panic!("{change:?} should be not found, got {other:?}"),
        }
    }
}

async fn concurrent_writers_all_land(store: SqlStore) {
    // More writers than connections, each with its own transaction: on SQLite they queue for
    // the one writer and are committed several at a time; none may fail or be lost.
    let team = group("Team", T0);
    commit(&store, vec![Change::InsertGroup(team.clone())]).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let team = team.clone();
        tasks.push(tokio::spawn(async move {
            let person = user(&format!("writer{i}@contoso.com"), T0 + i);
            store
                .commit(
                    vec![
                        Change::InsertUser(person.clone()),
                        member(&team, person.id, ObjectKind::User),
                    ],
                    Some(audit("Add user", "UserManagement", T0 + i, person.id)),
                )
                .await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("commit");
    }
    assert_eq!(store.members(team.id).await.unwrap().len(), 24);
    assert_eq!(audit_count(&store).await, 24);
}

async fn concurrent_failures_take_only_their_own_changes_back(store: SqlStore) {
    // On SQLite, commits that arrive together share one transaction (a savepoint each): a
    // commit that fails must take back its own changes and nobody else's, and every caller
    // must hear its own outcome.
    let taken = user("taken@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(taken.clone())]).await;
    let mut tasks = Vec::new();
    for i in 0..48 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every third commit clashes on its second change, after its first has run.
            let upn = if i % 3 == 0 {
                "TAKEN@contoso.com".to_string()
            } else {
                format!("racer{i}@contoso.com")
            };
            let team = group(&format!("Team {i}"), T0 + i);
            let result = store
                .commit(
                    vec![
                        Change::InsertGroup(team.clone()),
                        Change::InsertUser(user(&upn, T0 + i)),
                    ],
                    Some(audit("Add user", "UserManagement", T0 + i, team.id)),
                )
                .await;
            (i, team.id, result)
        }));
    }
    for task in tasks {
        let (i, team, result) = task.await.expect("task");
        let team_exists = store.group(team).await.unwrap().is_some();
        if i % 3 == 0 {
            assert!(
                matches!(result, Err(Error::Conflict { .. })),
                "commit {i}: {result:?}"
            );
            assert!(!team_exists, "commit {i} failed but its group stayed");
        } else {
            result.unwrap_or_else(|e| panic!("commit {i}: {e:?}"));
            assert!(team_exists, "commit {i} succeeded but its group is missing");
        }
    }
    let users = store
        .list_users(&ListQuery {
            top: 100,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(users.items.len(), 1 + 32);
    let audits = store
        .list_audits(&ListQuery {
            top: 100,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let succeeded = |e: &&portcullis_core::directory::audit::DirectoryAudit| e.result == "success";
    assert_eq!(
        audits.items.iter().filter(succeeded).count(),
        32,
        "a success entry per landed commit only"
    );
    // Each failed commit is its own failure entry (each from another initiator, so none is
    // held back by the budget).
    assert_eq!(audits.items.len(), 48);
}
