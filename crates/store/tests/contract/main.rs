//! The storage contract, checked on every database the store supports.
//!
//! Each test body below runs twice: on SQLite (a scratch file) and on PostgreSQL (a scratch
//! database next to the one `PORTCULLIS_TEST_DATABASE_URL` names). Without that variable the
//! PostgreSQL variants return early and say so; with it, an unreachable server fails them.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use portcullis_core::Error;
use portcullis_core::audit::{
    AuditActivityInitiator, DirectoryAudit, TargetResource, UserIdentity,
};
use portcullis_core::clock::from_unix_millis;
use portcullis_core::error::ErrorCode;
use portcullis_core::model::{
    Application, DocumentKind, Group, ObjectKind, PasswordCredential, PolicyDocument, RedirectUris,
    RoleAssignment, SigningKey, Tenant, User, UserType,
};
use portcullis_core::store::{Change, Cursor, ListQuery, Op, Predicate, Store, Value};
use portcullis_store::testing::{ScratchDatabase, TEST_DATABASE_URL_ENV};
use portcullis_store::{Dialect, SqlStore, StoreOptions, connect};
use time::OffsetDateTime;
use uuid::Uuid;

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
                    super::run(super::Backend::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Backend::Postgres, super::$name).await;
                }
            )*
        }
    };
}

contract!(
    every_type_round_trips,
    upn_lookup_ignores_case_and_duplicates_conflict,
    duplicate_app_id_conflicts,
    duplicate_keys_conflict,
    membership_conflicts_and_missing_containers,
    a_failing_change_leaves_nothing_behind,
    missing_rows_are_not_found,
    nested_groups_resolve_transitively_and_cycles_end,
    deletes_cascade,
    filters,
    keyset_paging_has_no_duplicates_or_gaps,
    audits_are_newest_first,
    migrate_twice_is_a_no_op,
    concurrent_writers_all_land,
    concurrent_failures_take_only_their_own_changes_back,
    revisions_move_with_what_they_cover,
    sign_in_flows_advance_once_per_step,
    authorization_codes_and_refresh_tokens_are_taken_once,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

fn at(ms: i64) -> OffsetDateTime {
    from_unix_millis(ms)
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn user(upn: &str, created: i64) -> User {
    User {
        id: Uuid::new_v4(),
        user_principal_name: upn.to_string(),
        display_name: upn.split('@').next().unwrap_or(upn).to_string(),
        mail: None,
        account_enabled: true,
        user_type: UserType::Member,
        created_date_time: at(created),
    }
}

fn group(name: &str, created: i64) -> Group {
    Group {
        id: Uuid::new_v4(),
        display_name: name.to_string(),
        description: None,
        mail_nickname: None,
        security_enabled: true,
        created_date_time: at(created),
    }
}

fn credential(hint: &str, start: i64) -> PasswordCredential {
    PasswordCredential {
        key_id: Uuid::new_v4(),
        display_name: Some(format!("secret {hint}")),
        hint: hint.to_string(),
        start_date_time: at(start),
        end_date_time: at(start + 86_400_000),
        secret_hash: format!("{:064x}", start),
    }
}

fn application(name: &str, created: i64) -> Application {
    Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        display_name: name.to_string(),
        is_fallback_public_client: false,
        web: RedirectUris {
            redirect_uris: vec!["https://app.example/callback".to_string()],
        },
        public_client: RedirectUris::default(),
        spa: RedirectUris {
            redirect_uris: vec![
                "http://localhost:3000/".to_string(),
                "https://spa.example/".to_string(),
            ],
        },
        api_permissions: vec!["User.ReadWrite.All".to_string()],
        password_credentials: Vec::new(),
        created_date_time: at(created),
    }
}

fn audit(activity: &str, category: &str, when: i64, initiator: Uuid) -> DirectoryAudit {
    DirectoryAudit {
        id: Uuid::new_v4(),
        category: category.to_string(),
        correlation_id: Uuid::new_v4(),
        result: "success".to_string(),
        result_reason: String::new(),
        activity_display_name: activity.to_string(),
        activity_date_time: at(when),
        logged_by_service: "Core Directory".to_string(),
        operation_type: "Add".to_string(),
        initiated_by: AuditActivityInitiator {
            user: Some(UserIdentity {
                id: initiator.to_string(),
                display_name: None,
                user_principal_name: Some("admin@contoso.com".to_string()),
                ip_address: Some("192.0.2.1".to_string()),
            }),
            app: None,
        },
        target_resources: vec![
            TargetResource::new("User", Uuid::new_v4(), "Joni").modified(
                "displayName",
                None,
                Some(&serde_json::json!("Joni")),
            ),
        ],
        additional_details: Vec::new(),
    }
}

fn member(group: &Group, id: Uuid, kind: ObjectKind) -> Change {
    Change::AddMember {
        group_id: group.id,
        member_id: id,
        member_kind: kind,
    }
}

fn query(filter: Vec<Predicate>) -> ListQuery {
    ListQuery {
        filter,
        ..ListQuery::default()
    }
}

fn pred(field: &'static str, op: Op, value: Value) -> Predicate {
    Predicate { field, op, value }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

#[track_caller]
fn expect_conflict(result: Result<(), Error>, mentions: &str) {
    match result {
        Err(Error::Conflict { message, .. }) => assert!(
            message.contains(mentions),
            "conflict message {message:?} should mention {mentions:?}"
        ),
        other => panic!("expected a conflict mentioning {mentions:?}, got {other:?}"),
    }
}

#[track_caller]
fn expect_not_found(result: Result<(), Error>, resource: &str) {
    match result {
        Err(Error::NotFound {
            resource: found, ..
        }) => assert_eq!(found, resource),
        other => panic!("expected {resource} not found, got {other:?}"),
    }
}

async fn commit(store: &SqlStore, changes: Vec<Change>) {
    store.commit(changes, None).await.expect("commit");
}

// ---------------------------------------------------------------------------------------------
// Bodies

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
        algorithm: "ES256".to_string(),
        sealed_private_key: vec![0, 1, 2, 254, 255],
        public_jwk: r#"{"kty":"EC","crv":"P-256"}"#.to_string(),
        created: at(T0 + 10),
        retired: None,
    };
    let newer_key = SigningKey {
        kid: "key-2".to_string(),
        created: at(T0 + 11),
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
            Vec::new(),
            Some(audit("Sign-in policy", "Policy", T0 + 50, joni.id)),
        )
        .await
        .unwrap();
    store.commit(Vec::new(), None).await.unwrap();
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
        algorithm: "ES256".to_string(),
        sealed_private_key: vec![1],
        public_jwk: "{}".to_string(),
        created: at(T0),
        retired: None,
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
    store.commit(Vec::new(), Some(entry.clone())).await.unwrap();
    expect_conflict(
        store.commit(Vec::new(), Some(entry)).await,
        "directory audit",
    );
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
    assert!(
        store
            .list_audits(&ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
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
        .commit(Vec::new(), Some(logged.clone()))
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

    let ids = |members: Vec<portcullis_core::model::MemberRef>| -> Vec<Uuid> {
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

    let upns = |page: portcullis_core::store::Page<User>| -> Vec<String> {
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
            }),
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
        store.commit(Vec::new(), Some(entry.clone())).await.unwrap();
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

async fn migrate_twice_is_a_no_op(store: SqlStore) {
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert_eq!(store.user(joni.id).await.unwrap(), Some(joni));
}

/// Directory audit entries in the store (up to 100).
async fn audit_count(store: &SqlStore) -> usize {
    store
        .list_audits(&ListQuery {
            top: 100,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .items
        .len()
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
    assert_eq!(
        audits.items.len(),
        32,
        "an audit entry per landed commit only"
    );
}

async fn revisions_move_with_what_they_cover(store: SqlStore) {
    // Nodes keep compiled policies and people's groups and roles for as long as these stay
    // the same: each must move with every change it covers, in the same commit, and only then.
    let revisions = || async {
        store
            .revisions()
            .await
            .unwrap()
            .expect("the store keeps them")
    };
    let joni = user("joni@contoso.com", T0);
    let team = group("Team", T0);
    let mut before = revisions().await;
    let mut step = async |changes: Vec<Change>, documents: bool, memberships: bool, what: &str| {
        commit(&store, changes).await;
        let after = revisions().await;
        assert_eq!(
            after.documents != before.documents,
            documents,
            "documents after {what}"
        );
        assert_eq!(
            after.memberships != before.memberships,
            memberships,
            "memberships after {what}"
        );
        before = after;
    };
    step(
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertGroup(team.clone()),
        ],
        false,
        false,
        "a new user and group",
    )
    .await;
    step(
        vec![member(&team, joni.id, ObjectKind::User)],
        false,
        true,
        "a new member",
    )
    .await;
    let mut renamed = joni.clone();
    renamed.display_name = "Joni B".into();
    step(
        vec![Change::UpdateUser(renamed)],
        false,
        false,
        "a renamed user",
    )
    .await;
    let assignment = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: team.id,
        role_definition_id: Uuid::parse_str("62e90394-69f5-4237-9190-012177145e10").unwrap(),
        directory_scope_id: "/".to_string(),
    };
    step(
        vec![Change::InsertRoleAssignment(assignment.clone())],
        false,
        true,
        "a role assigned",
    )
    .await;
    let location = PolicyDocument {
        kind: DocumentKind::NamedLocation,
        id: Uuid::new_v4().to_string(),
        display_name: "Office".to_string(),
        body: serde_json::json!({"@odata.type": "#microsoft.graph.ipNamedLocation",
                                 "ipRanges": [{"cidrAddress": "192.0.2.0/24"}]}),
        created: at(T0),
        modified: at(T0),
    };
    step(
        vec![Change::InsertDocument(location)],
        true,
        false,
        "a new location",
    )
    .await;
    step(
        vec![Change::DeleteRoleAssignment(assignment.id)],
        false,
        true,
        "a role removed",
    )
    .await;
    step(
        vec![Change::RemoveMember {
            group_id: team.id,
            member_id: joni.id,
        }],
        false,
        true,
        "a member removed",
    )
    .await;
    step(
        vec![Change::DeleteUser(joni.id)],
        false,
        true,
        "a user deleted",
    )
    .await;
    step(
        vec![Change::DeleteGroup(team.id)],
        false,
        true,
        "a group deleted",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// SQLite's own migration bookkeeping (PostgreSQL's is sqlx's)

/// A migrated scratch SQLite database, its file path, and a direct connection to it.
async fn migrated_sqlite_file() -> (ScratchDatabase, std::path::PathBuf) {
    let scratch = ScratchDatabase::sqlite();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let path = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .into();
    (scratch, path)
}

#[tokio::test]
async fn sqlite_migrations_keep_sqlx_bookkeeping() {
    let (scratch, path) = migrated_sqlite_file().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<(i64, bool, i64)> = conn
        .prepare("SELECT version, success, length(checksum) FROM _sqlx_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let files = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite"),
    )
    .unwrap()
    .count();
    assert_eq!(rows.len(), files, "one row per migration file");
    assert_eq!(rows.first().map(|r| r.0), Some(1));
    // sqlx records a SHA-384 of each file: 48 bytes.
    assert!(
        rows.iter().all(|(_, success, len)| *success && *len == 48),
        "{rows:?}"
    );
    drop(conn);
    scratch.remove().await.unwrap();
}

/// Migrates a scratch SQLite database, alters its bookkeeping with `sql`, and migrates again.
async fn migrate_after(sql: &str) -> Result<(), Error> {
    let (scratch, path) = migrated_sqlite_file().await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    let result = store.migrate().await;
    store.close().await;
    scratch.remove().await.unwrap();
    result
}

#[tokio::test]
async fn sqlite_refuses_a_changed_or_unknown_migration() {
    match migrate_after("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1").await {
        Err(Error::Internal(message)) => {
            assert!(message.contains("migration 1 was changed"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match migrate_after(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, x'00', 0)",
    )
    .await
    {
        Err(Error::Internal(message)) => {
            assert!(message.contains("newer Portcullis"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match migrate_after("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 2").await {
        Err(Error::Internal(message)) => {
            assert!(message.contains("partially applied"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests that need no scratch database

#[test]
fn migration_folders_hold_the_same_file_names() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let names = |dialect: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dialect))
            .unwrap_or_else(|e| panic!("read migrations/{dialect}: {e}"))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

#[tokio::test]
async fn bad_urls_are_invalid_and_unreachable_servers_unavailable() {
    match connect("mysql://localhost/x", &StoreOptions::default()).await {
        Err(Error::Invalid { .. }) => {}
        other => panic!("expected invalid, got {:?}", other.map(|s| s.dialect())),
    }
    let options = StoreOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(2),
    };
    // Port 1 on the loopback: nothing listens there.
    match connect("postgres://postgres@127.0.0.1:1/none", &options).await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {:?}", other.map(|s| s.dialect())),
    }
}

#[tokio::test]
async fn in_memory_sqlite_keeps_one_database() {
    let store = connect("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("connect");
    assert_eq!(store.dialect(), Dialect::Sqlite);
    store.migrate().await.expect("migrate");
    let joni = user("joni@contoso.com", T0);
    commit(&store, vec![Change::InsertUser(joni.clone())]).await;
    // Several reads at once must all see the same database.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let id = joni.id;
            tokio::spawn(async move { store.user(id).await })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap().unwrap(), Some(joni.clone()));
    }
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let scratch = ScratchDatabase::sqlite();
    let store = connect(scratch.url(), &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // Connections run in WAL mode: the write-ahead log sits beside the database file.
    let path = scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_string();
    assert!(std::path::Path::new(&format!("{path}-wal")).exists());
    store.close().await;
    match store.ping().await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    match store
        .commit(vec![Change::DeleteUser(Uuid::new_v4())], None)
        .await
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    scratch.remove().await.unwrap();
}

/// A test that panics never reaches `remove`: dropping the guard must still delete the
/// database, or repeated runs would pile them up (on PostgreSQL when the variable is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_scratch_database_removes_it() {
    let scratch = ScratchDatabase::from_env().await.expect("scratch database");
    let url = scratch.url().to_string();
    let store = connect(&url, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    // Keep the pool open: removal must not wait for the test to close it.
    drop(scratch);
    match Dialect::from_url(&url).unwrap() {
        Dialect::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_end_matches("?mode=rwc");
            assert!(!std::path::Path::new(path).exists());
        }
        Dialect::Postgres => {
            assert!(store.ping().await.is_err(), "the database still answers");
            let options = StoreOptions {
                max_connections: 1,
                acquire_timeout: Duration::from_secs(2),
            };
            assert!(
                connect(&url, &options).await.is_err(),
                "the database still exists"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in flows

fn flow(step: portcullis_core::signin::Step) -> portcullis_core::signin::SignInFlow {
    portcullis_core::signin::SignInFlow {
        id: Uuid::new_v4(),
        step,
        client_id: Uuid::new_v4(),
        app_display_name: "Contoso Portal".into(),
        correlation_id: Uuid::new_v4(),
        ip_address: Some("192.0.2.7".into()),
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)".into(),
        username: None,
        user_id: None,
        session_id: None,
        interrupting_policies: Vec::new(),
        offered_methods: Vec::new(),
        required_strengths: Vec::new(),
        blocking_policies: Vec::new(),
        pending_passkey: None,
        authorization: None,
        reuses_session: false,
        persistent_browser: None,
        created: at(T0),
        expires: at(T0 + 600_000),
    }
}

/// A flow reads back as written; of many requests that advance it from the same step, on as
/// many connections, exactly one lands and the others are told it moved on.
async fn sign_in_flows_advance_once_per_step(store: SqlStore) {
    use portcullis_core::signin::Step;
    let start = flow(Step::Identify);
    store
        .commit(
            vec![Change::InsertSignInFlow(Box::new(start.clone()))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.sign_in_flow(start.id).await.unwrap(),
        Some(start.clone())
    );
    assert_eq!(store.sign_in_flow(Uuid::new_v4()).await.unwrap(), None);

    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let mut next = start.clone();
        next.step = Step::FirstFactor;
        next.username = Some(format!("racer{i}@contoso.com"));
        tasks.push(tokio::spawn(async move {
            store
                .commit(
                    vec![Change::AdvanceSignInFlow {
                        flow: Box::new(next),
                        from: Step::Identify,
                    }],
                    None,
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(Error::Conflict { code, .. }) => assert_eq!(code, ErrorCode::SignInStepOutOfOrder),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let stored = store.sign_in_flow(start.id).await.unwrap().unwrap();
    assert_eq!(stored.step, Step::FirstFactor);
    assert!(stored.username.is_some());
}

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
    let code = AuthorizationCode {
        code_hash: "c0de".into(),
        grant_id: grant.id,
        redirect_uri: "https://app.contoso.com/callback".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires: at(T0 + 300_000),
    };
    let refresh = RefreshToken {
        token_hash: "ref1".into(),
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
    assert_eq!(
        store.refresh_token("ref1").await.unwrap(),
        Some(refresh.clone())
    );

    assert_eq!(
        store.authorization_code("c0de").await.unwrap(),
        Taken::Fresh(code.clone()),
        "reading a code does not use it"
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            (
                store
                    .commit(
                        vec![Change::TakeAuthorizationCode {
                            code_hash: "c0de".into(),
                            at: at(T0 + 1_000),
                        }],
                        None,
                    )
                    .await,
                store
                    .take_refresh_token("ref1", at(T0 + 1_000))
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
        store.authorization_code("c0de").await.unwrap(),
        Taken::Replayed(code.clone())
    );
    assert_eq!(
        store.authorization_code("unknown").await.unwrap(),
        Taken::Unknown
    );
    // A code taken by a commit whose other change fails stays unused.
    let second = AuthorizationCode {
        code_hash: "c0de2".into(),
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
                    code_hash: "c0de2".into(),
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
        store.authorization_code("c0de2").await.unwrap(),
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
    assert!(store.refresh_token("ref1").await.unwrap().is_some());
    let removed = store
        .purge_expired_sign_in_state(at(T0 + 86_400_001))
        .await
        .unwrap();
    assert!(removed >= 3, "{removed}");
    assert_eq!(store.oauth_grant(grant.id).await.unwrap(), None);
    assert_eq!(store.refresh_token("ref1").await.unwrap(), None);
    assert_eq!(
        store.authorization_code("c0de").await.unwrap(),
        Taken::Unknown
    );
}

// The passkey storage contract, on the same harness (`contract!` is defined above).
mod passkeys;
