//! The storage calls of one complete passkey sign-in, in the order the sign-in makes them,
//! against a real database: SQLite (a scratch file in WAL mode, as the server opens it) and,
//! when `PORTCULLIS_TEST_DATABASE_URL` is set, PostgreSQL. The tenant holds 50 policy
//! documents, 26 groups and a few hundred users, as the load generator's does.
//!
//! One iteration is one sign-in's worth: start the flow, the options step, the verify step
//! (ceremony, passkey and its owner, revisions, the passkey policy, counter, session, log, flow,
//! grant, code) and the token exchange; and the same with the reads a sign-in made before each
//! request read what it needs once, for comparison in one run. People's groups and roles are not read per sign-in: each node
//! keeps them for as long as the memberships revision stays (core's `ConditionalAccess`), so
//! they are benchmarked on their own beside it, with the other calls that cost most.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::directory::audit::{AuditActivityInitiator, DirectoryAudit};
use portcullis_core::directory::model::{
    Application, DocumentKind, Group, ObjectKind, PolicyDocument, RedirectUris, User, UserType,
};
use portcullis_core::kernel::split_token::TokenKey;
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
        access: Default::default(),
        created_date_time: now(),
        bootstrap_automation: false,
        id_token_signed_response_alg: Default::default(),
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
    // Keyed as the server keys them (split tokens): a time-ordered id, the secret's hash.
    SignInFlow {
        id: Uuid::now_v7(),
        secret_hash: Some(secret_hash()),
        token: String::new(),
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
        requires_assignment: None,
        created: now(),
        expires: now() + Duration::minutes(10),
    }
}

/// What a split token's row keeps of its secret: a SHA-256 in hex.
fn secret_hash() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
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

/// Which reads a sign-in makes: today's, or those it made before each request read what it
/// needs once (the application twice at `/authorize`; the passkey and its owner, and the
/// revisions twice, at verify; the grant and its person at the token endpoint), kept so that
/// one run compares the two.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    Now,
    Before,
}

/// One complete OIDC passkey sign-in's storage calls, in the order the server makes them
/// (`/authorize`, passkey options, passkey verify, token): 10 reads and 4 write transactions
/// (14 reads before).
async fn one_sign_in(f: &Fixture, n: usize, reads: Reads) {
    let before = reads == Reads::Before;
    let s = &f.store;
    let (user, passkey) = &f.users[n % f.users.len()];
    // Authorize: the application, then the flow.
    s.application_by_app_id(f.app.app_id).await.unwrap();
    if before {
        s.application_by_app_id(f.app.app_id).await.unwrap();
    }
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
    // Verify: the flow, the ceremony, the passkey with its owner, the passkey policy; the
    // decision's revision check (one read for the policy set and the memberships, whose
    // groups and roles each node keeps); then one commit of everything the step changed:
    // challenge used, counter, session, flow, log entry, grant and code.
    s.sign_in_flow(fl.id).await.unwrap();
    s.ceremony(ceremony.id).await.unwrap();
    if before {
        s.passkey_by_credential_id(&passkey.credential_id)
            .await
            .unwrap();
        s.user(user.id).await.unwrap();
    } else {
        s.passkey_and_owner(&passkey.credential_id).await.unwrap();
    }
    s.document(DocumentKind::AuthenticationMethodConfiguration, "fido2")
        .await
        .unwrap();
    s.revisions().await.unwrap();
    if before {
        s.revisions().await.unwrap();
    }
    let count = f
        .sign_count
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let session = AuthSession {
        id: Uuid::now_v7(),
        secret_hash: Some(secret_hash()),
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
        id: Uuid::now_v7(),
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
    let code = TokenKey::Id(Uuid::now_v7());
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
                key: code.clone(),
                secret_hash: Some(secret_hash()),
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
    // Token: the client, the code, its grant with its person; then one commit that uses the
    // code up and stores the refresh token.
    s.application_by_app_id(f.app.app_id).await.unwrap();
    s.authorization_code(&code).await.unwrap();
    if before {
        s.oauth_grant(grant.id).await.unwrap();
        s.user(user.id).await.unwrap();
    } else {
        s.oauth_grant_and_person(grant.id).await.unwrap();
    }
    s.commit(
        vec![
            Change::TakeAuthorizationCode {
                key: code,
                at: now(),
            },
            Change::InsertRefreshToken(RefreshToken {
                key: TokenKey::Id(Uuid::now_v7()),
                secret_hash: Some(secret_hash()),
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

/// The reads of a sign-in that the per-request reuse changed, without the commits whose waits
/// hide them in a whole sign-in: the application at `/authorize`, the passkey and its owner and
/// the revisions at verify.
async fn changed_reads(f: &Fixture, n: usize, reads: Reads) {
    let s = &f.store;
    let (user, passkey) = &f.users[n % f.users.len()];
    s.application_by_app_id(f.app.app_id).await.unwrap();
    s.revisions().await.unwrap();
    if reads == Reads::Before {
        s.application_by_app_id(f.app.app_id).await.unwrap();
        s.passkey_by_credential_id(&passkey.credential_id)
            .await
            .unwrap();
        s.user(user.id).await.unwrap();
        s.revisions().await.unwrap();
    } else {
        s.passkey_and_owner(&passkey.credential_id).await.unwrap();
    }
}

fn bench_database(c: &mut Criterion, name: &str, scratch: ScratchDatabase) {
    let runtime = Runtime::new().expect("runtime");
    let f = Arc::new(runtime.block_on(fixture(scratch)));
    // Round trips of one sign-in on PostgreSQL, once its statements are prepared on the
    // connections (two sign-ins first). sqlx's own pool, which the store used before, added
    // two more per connection lent: a check when lending it and one when it came back.
    if f.store.dialect() == portcullis_store::Dialect::Postgres {
        runtime.block_on(async {
            for k in 0..3 {
                one_sign_in(&f, k, Reads::Now).await;
            }
        });
        let before = f.store.round_trips();
        runtime.block_on(one_sign_in(&f, 3, Reads::Now));
        let rt = f.store.round_trips().since(&before);
        println!(
            "{name}: round trips per sign-in: {} ({} statements, {} BEGIN/COMMIT, {} prepares, \
             {} idle checks) over {} connections lent; with sqlx's pool's two checks per \
             connection lent: {}",
            rt.total(),
            rt.statements,
            rt.transaction_bounds,
            rt.prepares,
            rt.checks,
            rt.lendings,
            rt.total() + 2 * rt.lendings
        );
    }
    let mut n = 4usize;
    c.bench_function(
        &format!("{name}: storage calls of one passkey sign-in"),
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 1;
                let f = f.clone();
                async move { one_sign_in(&f, n, Reads::Now).await }
            })
        },
    );
    c.bench_function(
        &format!("{name}: storage calls of one passkey sign-in, reads as before"),
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 1;
                let f = f.clone();
                async move { one_sign_in(&f, n, Reads::Before).await }
            })
        },
    );
    for (label, reads) in [("now", Reads::Now), ("as before", Reads::Before)] {
        c.bench_function(&format!("{name}: the reads that changed, {label}"), |b| {
            b.to_async(&runtime).iter(|| {
                n += 1;
                let f = f.clone();
                async move { changed_reads(&f, n, reads).await }
            })
        });
    }
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
                            tokio::spawn(async move { one_sign_in(&f, base + k, Reads::Now).await })
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

/// The PostgreSQL plumbing the store used before (sqlx's `Any` driver on sqlx's pool, which
/// checks each connection when lending it and when it comes back) against the store's own
/// (native driver, own pool), in the same run on the same database: a person read by id, the
/// read every sign-in makes most, alone and eight at once.
fn bench_plumbing(c: &mut Criterion, scratch: &ScratchDatabase) {
    use sqlx::Row as _;
    let runtime = Runtime::new().expect("runtime");
    let store = runtime
        .block_on(connect(scratch.url(), &StoreOptions::default()))
        .expect("connect");
    sqlx::any::install_default_drivers();
    let any = runtime
        .block_on(
            sqlx::any::AnyPoolOptions::new()
                .max_connections(StoreOptions::default().max_connections)
                .connect(scratch.url()),
        )
        .expect("sqlx Any pool");
    let users: Vec<Uuid> = runtime
        .block_on(store.list_users(&portcullis_core::store::ListQuery {
            top: 300,
            ..Default::default()
        }))
        .expect("users")
        .items
        .iter()
        .map(|u| u.id)
        .collect();
    let any_read = |id: Uuid| {
        let any = any.clone();
        async move {
            let row = sqlx::query(
                "SELECT id, user_principal_name, display_name, mail, account_enabled, \
                 user_type, created FROM users WHERE id = $1",
            )
            .bind(id.hyphenated().to_string())
            .fetch_optional(&any)
            .await
            .unwrap()
            .unwrap();
            // Decoded as the store decoded it: every column by name.
            black_box((
                row.try_get::<String, _>("id").unwrap(),
                row.try_get::<String, _>("user_principal_name").unwrap(),
                row.try_get::<String, _>("display_name").unwrap(),
                row.try_get::<Option<String>, _>("mail").unwrap(),
                row.try_get::<i64, _>("account_enabled").unwrap(),
                row.try_get::<String, _>("user_type").unwrap(),
                row.try_get::<i64, _>("created").unwrap(),
            ));
        }
    };
    let mut n = 0usize;
    c.bench_function(
        "PostgreSQL plumbing: a person by id, sqlx Any pool (before)",
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 1;
                any_read(users[n % users.len()])
            })
        },
    );
    c.bench_function(
        "PostgreSQL plumbing: a person by id, the store (after)",
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 1;
                let store = store.clone();
                let id = users[n % users.len()];
                async move { black_box(store.user(id).await.unwrap()) }
            })
        },
    );
    c.bench_function(
        "PostgreSQL plumbing: 8 people at once, sqlx Any pool (before)",
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 8;
                let base = n;
                let reads: Vec<_> = (0..8)
                    .map(|k| tokio::spawn(any_read(users[(base + k) % users.len()])))
                    .collect();
                async move {
                    for r in reads {
                        r.await.unwrap();
                    }
                }
            })
        },
    );
    c.bench_function(
        "PostgreSQL plumbing: 8 people at once, the store (after)",
        |b| {
            b.to_async(&runtime).iter(|| {
                n += 8;
                let base = n;
                let reads: Vec<_> = (0..8)
                    .map(|k| {
                        let store = store.clone();
                        let id = users[(base + k) % users.len()];
                        tokio::spawn(async move { black_box(store.user(id).await.unwrap()) })
                    })
                    .collect();
                async move {
                    for r in reads {
                        r.await.unwrap();
                    }
                }
            })
        },
    );
    runtime.block_on(any.close());
    runtime.block_on(store.close());
}

/// SQLite pages written per sign-in, counted rather than timed: the frames each sign-in's
/// commits append to the write-ahead log (read from the log's shared-memory header, whose
/// `mxFrame` counts them and whose salts change when the log starts over), and the B-tree each
/// frame's page belongs to (SQLite's `dbstat`). Printed before the timings; set
/// `SIGNIN_PAGES=0` to skip it.
fn pages_per_sign_in(runtime: &Runtime, f: &Arc<Fixture>) {
    use std::collections::BTreeMap;
    use std::io::{Read, Seek, SeekFrom};
    const SIGN_INS: usize = 640;
    const BATCH: usize = 32;
    const WARM_UP: usize = 4_000;
    let db = f
        ._scratch
        .url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_string();
    // `WalIndexHdr`: mxFrame at 16, the page size at 14, the salts at 32..40 (native order).
    let header = || {
        let mut bytes = [0u8; 48];
        std::fs::File::open(format!("{db}-shm"))
            .and_then(|mut shm| shm.read_exact(&mut bytes))
            .expect("the log's shared-memory file");
        let page = u16::from_ne_bytes([bytes[14], bytes[15]]);
        let page = if page == 1 { 65_536 } else { u64::from(page) };
        let frames = u32::from_ne_bytes(bytes[16..20].try_into().unwrap());
        (frames, bytes[32..40].to_vec(), page)
    };
    // As under load: tables of some thousands of rows, and sign-ins that arrive together
    // committed together (the writer's group commit), where a key at the right edge shares
    // its page with the batch's other keys and a random one does not.
    let batch = |base: usize| {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..BATCH)
                .map(|k| {
                    let f = f.clone();
                    tokio::spawn(async move { one_sign_in(&f, base + k, Reads::Now).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    for n in 0..WARM_UP / BATCH {
        batch(2_000_000 + n * BATCH);
    }
    let mut written: Vec<Vec<u32>> = Vec::new();
    for n in 0..SIGN_INS / BATCH {
        let before = header();
        batch(1_000_000 + n * BATCH);
        let after = header();
        // The log started over in between: this sign-in's frames cannot be told apart.
        if before.1 != after.1 || after.0 < before.0 {
            continue;
        }
        let mut wal = std::fs::File::open(format!("{db}-wal")).expect("the log");
        let pages = (before.0..after.0)
            .map(|frame| {
                let mut number = [0u8; 4];
                wal.seek(SeekFrom::Start(32 + u64::from(frame) * (24 + after.2)))
                    .unwrap();
                wal.read_exact(&mut number).unwrap();
                u32::from_be_bytes(number)
            })
            .collect();
        written.push(pages);
    }
    let conn = rusqlite::Connection::open(&db).expect("open for dbstat");
    let owner: BTreeMap<u32, String> = conn
        .prepare("SELECT pageno, name FROM dbstat")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut per_tree: BTreeMap<String, usize> = BTreeMap::new();
    for pages in &written {
        for page in pages {
            let name = owner.get(page).cloned().unwrap_or_else(|| "(free)".into());
            *per_tree.entry(name).or_default() += 1;
        }
    }
    let total: usize = written.iter().map(Vec::len).sum();
    let samples = (written.len() * BATCH).max(1);
    println!(
        "SQLite pages written per sign-in ({samples} of {SIGN_INS} sign-ins counted, {BATCH} at once, after {WARM_UP}): {:.2}",
        total as f64 / samples as f64,
    );
    let mut trees: Vec<(String, usize)> = per_tree.into_iter().collect();
    trees.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (name, count) in trees {
        println!("  {:>6.2}  {name}", count as f64 / samples as f64);
    }
}

fn storage(c: &mut Criterion) {
    if std::env::var("SIGNIN_PAGES").as_deref() != Ok("0") {
        let runtime = Runtime::new().expect("runtime");
        let f = Arc::new(runtime.block_on(fixture(ScratchDatabase::sqlite())));
        pages_per_sign_in(&runtime, &f);
    }
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

fn plumbing(c: &mut Criterion) {
    if let Ok(base) = std::env::var(TEST_DATABASE_URL_ENV)
        && !base.trim().is_empty()
    {
        let runtime = Runtime::new().expect("runtime");
        let scratch = runtime
            .block_on(ScratchDatabase::postgres(base.trim()))
            .expect("scratch PostgreSQL database");
        let store = runtime
            .block_on(connect(scratch.url(), &StoreOptions::default()))
            .expect("connect");
        runtime.block_on(store.migrate()).expect("migrate");
        let changes = (0..300)
            .map(|i| {
                Change::InsertUser(User {
                    id: Uuid::new_v4(),
                    user_principal_name: format!("plumbing{i}@bench.example"),
                    display_name: format!("Plumbing {i}"),
                    mail: None,
                    account_enabled: true,
                    user_type: UserType::Member,
                    created_date_time: now(),
                })
            })
            .collect();
        runtime
            .block_on(store.commit(changes, None))
            .expect("people");
        runtime.block_on(store.close());
        bench_plumbing(c, &scratch);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = plumbing, storage
}
criterion_main!(benches);
