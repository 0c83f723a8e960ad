//! The storage calls of one complete passkey sign-in, in the order the sign-in makes them,
//! against a real database: SQLite (a scratch file in WAL mode, as the server opens it) and,
//! when `PORTCULLIS_TEST_DATABASE_URL` is set, PostgreSQL. The tenant holds 50 policy
//! documents, 26 groups and a few hundred users, as the load generator's does.
//!
//! One iteration is one sign-in's worth: start the flow, the options step, the verify step
//! (ceremony, passkey, user, revisions, the passkey policy, counter, session, log, flow, grant,
//! code) and the token exchange. People's groups and roles are not read per sign-in: each node
//! keeps them for as long as the memberships revision stays (core's `ConditionalAccess`), so
//! they are benchmarked on their own beside it, with the other calls that cost most.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::directory::audit::{AuditActivityInitiator, DirectoryAudit};
use portcullis_core::directory::model::{
    Application, DocumentKind, Group, ObjectKind, PolicyDocument, RedirectUris, User, UserType,
};
use portcullis_core::logs::sign_in::{
    AppliedConditionalAccessPolicy, AuthenticationDetail, DeviceDetail, SignInLogEntry,
    SignInStatus,
};
use portcullis_core::methods::passkeys::store::{
    AttestationLevel, Ceremony, CeremonyKind, PasskeyStore, PasskeyUse, StoredPasskey,
};
use portcullis_core::oidc::{AuthorizationCode, OAuthGrant, RefreshToken};
use portcullis_core::session::{AuthSession, MethodKind, SessionMethod};
use portcullis_core::signin::{FlowStep, SignInFlow, Step};
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::testing::{ScratchDatabase, TEST_DATABASE_URL_ENV};
use portcullis_store::{SqlStore, StoreOptions, connect};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::runtime::Runtime;
use uuid::Uuid;

const USERS: usize = 300;
const GROUPS: usize = 26;
const POLICIES: usize = 50;

struct Fixture {
    store: SqlStore,
    app: Application,
    users: Vec<(User, StoredPasskey)>,
    sign_count: std::sync::atomic::AtomicU32,
    _scratch: ScratchDatabase,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn audit() -> DirectoryAudit {
    DirectoryAudit {
        id: Uuid::new_v4(),
        category: "UserManagement".into(),
        correlation_id: Uuid::new_v4(),
        result: "success".into(),
        result_reason: String::new(),
        activity_display_name: "User registered security info".into(),
        activity_date_time: now(),
        logged_by_service: "Authentication Methods".into(),
        operation_type: "Add".into(),
        initiated_by: AuditActivityInitiator {
            user: None,
            app: None,
        },
        target_resources: Vec::new(),
        additional_details: Vec::new(),
    }
}

async fn fixture(scratch: ScratchDatabase) -> Fixture {
    let store = connect(
        scratch.url(),
        &StoreOptions {
            max_connections: 16,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let app = Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        display_name: "Bench portal".into(),
        is_fallback_public_client: false,
        web: RedirectUris::default(),
        public_client: RedirectUris::default(),
        spa: RedirectUris {
            redirect_uris: vec!["http://localhost/bench/callback".into()],
        },
        api_permissions: Vec::new(),
        password_credentials: Vec::new(),
        created_date_time: now(),
        bootstrap_automation: false,
    };
    let mut changes = vec![Change::InsertApplication(app.clone())];
    let groups: Vec<Uuid> = (0..GROUPS).map(|_| Uuid::new_v4()).collect();
    for (i, id) in groups.iter().enumerate() {
        changes.push(Change::InsertGroup(Group {
            id: *id,
            display_name: format!("Group {i}"),
            description: None,
            mail_nickname: None,
            security_enabled: true,
            is_assignable_to_role: false,
            created_date_time: now(),
        }));
    }
    for i in 0..POLICIES {
        // The size and shape of a stored policy; the engine does not run here.
        changes.push(Change::InsertDocument(PolicyDocument {
            kind: DocumentKind::ConditionalAccessPolicy,
            id: Uuid::new_v4().to_string(),
            display_name: format!("Policy {i}"),
            body: json!({"displayName": format!("Policy {i}"), "state": "enabled",
                "conditions": {"users": {"includeGroups": [groups[i % GROUPS], groups[(i + 5) % GROUPS]], "excludeGroups": [groups[(i + 9) % GROUPS]]},
                               "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"],
                               "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows", "macOS"]}},
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
            created: now(),
            modified: now(),
        }));
    }
    store.commit(changes, None).await.expect("tenant");
    let mut users = Vec::new();
    for i in 0..USERS {
        let user = User {
            id: Uuid::new_v4(),
            user_principal_name: format!("bench{i}@bench.example"),
            display_name: format!("Bench {i}"),
            mail: None,
            account_enabled: true,
            user_type: UserType::Member,
            created_date_time: now(),
        };
        let mut changes = vec![Change::InsertUser(user.clone())];
        for k in [i, i * 7 + 3, i * 13 + 5] {
            changes.push(Change::AddMember {
                group_id: groups[k % 20],
                member_id: user.id,
                member_kind: ObjectKind::User,
            });
        }
        // Duplicate memberships (k mapping to the same group) are refused: add them one by one.
        for change in changes {
            let _ = store.commit(vec![change], None).await;
        }
        let passkey = StoredPasskey {
            id: Uuid::new_v4(),
            user_id: user.id,
            credential_id: Uuid::new_v4().as_bytes().to_vec(),
            display_name: "Bench key".into(),
            aaguid: "7e57a0a0-0000-4000-8000-000000000001".into(),
            model: None,
            attestation_level: AttestationLevel::None,
            backup_eligible: false,
            backup_state: false,
            sign_count: 0,
            // A serialized webauthn-rs passkey is about this long.
            credential: "x".repeat(600),
            created: now(),
            last_used: None,
        };
        store
            .insert_passkey(&passkey, 10, audit())
            .await
            .expect("passkey");
        users.push((user, passkey));
    }
    Fixture {
        store,
        app,
        users,
        sign_count: std::sync::atomic::AtomicU32::new(1),
        _scratch: scratch,
    }
}

fn flow(app: &Application) -> SignInFlow {
    SignInFlow {
        id: Uuid::new_v4(),
        step: FlowStep::Identify,
        client_id: app.app_id,
        app_display_name: app.display_name.clone(),
        correlation_id: Uuid::new_v4(),
        ip_address: Some("127.0.0.1".into()),
        country: None,
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36".into(),
        username: None,
        user_id: None,
        session_id: None,
        authorization: None,
        reuses_session: false,
        persistent_browser: None,
        created: now(),
        expires: now() + Duration::minutes(10),
    }
}

fn log_entry(user: &User, app: &Application) -> SignInLogEntry {
    SignInLogEntry {
        id: Uuid::new_v4(),
        created_date_time: now(),
        user_principal_name: user.user_principal_name.clone(),
        user_id: Some(user.id),
        user_display_name: Some(user.display_name.clone()),
        app_display_name: app.display_name.clone(),
        app_id: app.app_id.to_string(),
        ip_address: Some("127.0.0.1".into()),
        client_app_used: "Browser".into(),
        correlation_id: Uuid::new_v4(),
        is_interactive: true,
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36".into(),
        device_detail: DeviceDetail {
            operating_system: "Windows 10".into(),
            browser: "Edge 131.0.0".into(),
        },
        status: SignInStatus {
            error_code: 0,
            failure_reason: None,
            ..SignInStatus::default()
        },
        conditional_access_status: "success".into(),
        // 50 policies, each with its result, as a granted decision logs them.
        applied_conditional_access_policies: (0..POLICIES)
            .map(|i| AppliedConditionalAccessPolicy {
                id: Uuid::new_v4().to_string(),
                display_name: format!("Policy {i}"),
                result: "notApplied".into(),
                enforced_grant_controls: Vec::new(),
                enforced_session_controls: Vec::new(),
                conditions_not_satisfied: Some("users".into()),
                result_reason: "Not applied: users: not included.".into(),
            })
            .collect::<Vec<_>>()
            .into(),
        authentication_details: vec![AuthenticationDetail {
            authentication_method: "Passkey".into(),
            succeeded: true,
            authentication_step_result_detail: "MFA completed".into(),
            authentication_step_requirement: "Primary authentication".into(),
            authentication_step_date_time: now(),
        }],
        authentication_requirement: "multiFactorAuthentication".into(),
        authentication_strength: None,
        replay_context: None,
        location: Default::default(),
    }
}

/// One complete OIDC passkey sign-in's storage calls, in the order the server makes them
/// (`/authorize`, passkey options, passkey verify, token).
async fn one_sign_in(f: &Fixture, n: usize) {
    let s = &f.store;
    let (user, passkey) = &f.users[n % f.users.len()];
    // Authorize: the application, then the flow.
    s.application_by_app_id(f.app.app_id).await.unwrap();
    let mut fl = flow(&f.app);
    s.commit(vec![Change::InsertSignInFlow(Box::new(fl.clone()))], None)
        .await
        .unwrap();
    // Options: the flow, a new ceremony.
    s.sign_in_flow(fl.id).await.unwrap();
    let ceremony = Ceremony {
        id: Uuid::new_v4(),
        kind: CeremonyKind::DiscoverableAuthentication,
        user_id: None,
        state: "s".repeat(400),
        expires: now() + Duration::minutes(5),
    };
    s.insert_ceremony(&ceremony).await.unwrap();
    // Verify: the flow, the ceremony, the passkey, its owner, the passkey policy; the
    // decision's revision checks (the policy set's, and the memberships' whose groups and
    // roles each node keeps); then one commit of everything the step changed: challenge used,
    // counter, session, flow, log entry, grant and code.
    s.sign_in_flow(fl.id).await.unwrap();
    s.ceremony(ceremony.id).await.unwrap();
    s.passkey_by_credential_id(&passkey.credential_id)
        .await
        .unwrap();
    s.user(user.id).await.unwrap();
    s.document(DocumentKind::AuthenticationMethodConfiguration, "fido2")
        .await
        .unwrap();
    s.revisions().await.unwrap();
    s.revisions().await.unwrap();
    let count = f
        .sign_count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let session = AuthSession {
        id: Uuid::new_v4(),
        token_hash: Uuid::new_v4().simple().to_string(),
        user_id: user.id,
        methods: vec![SessionMethod {
            method: MethodKind::Fido2,
            at: now(),
            aaguid: Some(passkey.aaguid.clone()),
            credential_id: Some(passkey.id.to_string()),
            one_time: false,
            backup_eligible: false,
        }],
        created: now(),
        expires: now() + Duration::hours(8),
    };
    let grant = OAuthGrant {
        id: Uuid::new_v4(),
        client_id: f.app.app_id,
        user_id: user.id,
        session_id: Some(session.id),
        scopes: vec!["openid".into(), "profile".into()],
        nonce: Some("n".repeat(22)),
        auth_time: now(),
        amr: vec!["hwk".into(), "user".into(), "mfa".into()],
        acr: Some("phishingResistantMfa".into()),
        acrs: Vec::new(),
        created: now(),
        expires: now() + Duration::hours(24),
        revoked: None,
    };
    let code_hash = Uuid::new_v4().simple().to_string();
    fl.step = FlowStep::Completed;
    fl.user_id = Some(user.id);
    fl.session_id = Some(session.id);
    s.commit(
        vec![
            Change::TakeCeremony(ceremony.id),
            Change::RecordPasskeyUse(PasskeyUse {
                id: passkey.id,
                sign_count: count,
                backup_eligible: false,
                backup_state: false,
                credential: "x".repeat(600),
                at: now(),
            }),
            Change::InsertSession(session),
            Change::AdvanceSignInFlow {
                flow: Box::new(fl),
                from: Step::Identify,
            },
            Change::InsertSignInLogEntry(Box::new(log_entry(user, &f.app))),
            Change::InsertOAuthGrant(Box::new(grant.clone())),
            Change::InsertAuthorizationCode(AuthorizationCode {
                code_hash: code_hash.clone(),
                grant_id: grant.id,
                redirect_uri: "https://app.contoso.com/callback".into(),
                code_challenge: Some("c".repeat(43)),
                expires: now() + Duration::minutes(10),
            }),
        ],
        None,
    )
    .await
    .unwrap();
    // Token: the client, the code, its grant and person; then one commit that uses the code
    // up and stores the refresh token.
    s.application_by_app_id(f.app.app_id).await.unwrap();
    s.authorization_code(&code_hash).await.unwrap();
    s.oauth_grant(grant.id).await.unwrap();
    s.user(user.id).await.unwrap();
    s.commit(
        vec![
            Change::TakeAuthorizationCode {
                code_hash,
                at: now(),
            },
            Change::InsertRefreshToken(RefreshToken {
                token_hash: Uuid::new_v4().simple().to_string(),
                grant_id: grant.id,
                created: now(),
                expires: now() + Duration::hours(24),
            }),
        ],
        None,
    )
    .await
    .unwrap();
}

fn bench_database(c: &mut Criterion, name: &str, scratch: ScratchDatabase) {
    let runtime = Runtime::new().expect("runtime");
    let f = Arc::new(runtime.block_on(fixture(scratch)));
    let mut n = 0usize;
    c.bench_function(
        &format!("{name}: storage calls of one passkey sign-in"),
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 1;
                let f = f.clone();
                async move { one_sign_in(&f, n).await }
            })
        },
    );
    // Eight sign-ins at once: what the writer lock does to them under concurrency.
    c.bench_function(
        &format!("{name}: storage calls of 8 concurrent sign-ins"),
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 8;
                let f = f.clone();
                let base = n;
                async move {
                    let tasks: Vec<_> = (0..8)
                        .map(|k| {
                            let f = f.clone();
                            tokio::spawn(async move { one_sign_in(&f, base + k).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
            })
        },
    );
    let (user, _) = &f.users[0];
    c.bench_function(&format!("{name}: the 50 policy documents"), |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                f.store
                    .documents(DocumentKind::ConditionalAccessPolicy)
                    .await
                    .unwrap(),
            )
        })
    });
    c.bench_function(&format!("{name}: transitive groups of a user"), |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(f.store.transitive_member_of(user.id).await.unwrap()) })
    });
    c.bench_function(&format!("{name}: roles a user holds"), |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(f.store.role_definitions_held(user.id).await.unwrap()) })
    });
    c.bench_function(&format!("{name}: the revisions"), |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(f.store.revisions().await.unwrap()) })
    });
    c.bench_function(&format!("{name}: one sign-in log entry"), |b| {
        b.to_async(&runtime).iter(|| async {
            f.store
                .commit(
                    vec![Change::InsertSignInLogEntry(Box::new(log_entry(
                        user, &f.app,
                    )))],
                    None,
                )
                .await
                .unwrap()
        })
    });
}

fn storage(c: &mut Criterion) {
    bench_database(c, "SQLite", ScratchDatabase::sqlite());
    if let Ok(base) = std::env::var(TEST_DATABASE_URL_ENV)
        && !base.trim().is_empty()
    {
        let runtime = Runtime::new().expect("runtime");
        let scratch = runtime
            .block_on(ScratchDatabase::postgres(base.trim()))
            .expect("scratch PostgreSQL database");
        bench_database(c, "PostgreSQL", scratch);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = storage
}
criterion_main!(benches);
