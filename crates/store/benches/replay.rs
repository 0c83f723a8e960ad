//! Replay of 100,000 logged sign-ins against a candidate policy set, through core's
//! `SignInLogs::replay` on a real database (SQLite in WAL mode as the server opens it; also
//! PostgreSQL when `PORTCULLIS_TEST_DATABASE_URL` is set). The tenant holds 50 policies and 26
//! groups; each entry is what a sign-in logs (its 50 policies' results, as the engine decided
//! them on its context, packed against the tenant's revision) with its replay context. One iteration replays the whole log: the sign-ins per second are 100,000
//! divided by the time criterion reports.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::conditional_access::ConditionalAccess;
use portcullis_core::directory::authz::{Actor, Granted, Principal};
use portcullis_core::directory::model::{DocumentKind, PolicyDocument};
use portcullis_core::kernel::Deps;
use portcullis_core::kernel::clock::SystemClock;
use portcullis_core::kernel::entropy::SystemEntropy;
use portcullis_core::logs::compact::AppliedPolicies;
use portcullis_core::logs::replay_context::{ReplayContext, ReplayTarget, Verdict};
use portcullis_core::logs::sign_in::{
    AuthenticationDetail, DeviceDetail, SignInLogEntry, SignInLogs, SignInStatus,
};
use portcullis_core::logs::store::LogStore;
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_policy::{AuthenticationMethodMode, ClientAppType, DevicePlatform};
use portcullis_store::testing::{ScratchDatabase, TEST_DATABASE_URL_ENV};
use portcullis_store::{SqlStore, StoreOptions, connect};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::runtime::Runtime;
use uuid::Uuid;

const SIGN_INS: usize = 100_000;
const USERS: usize = 2_000;
const GROUPS: usize = 26;
const POLICIES: usize = 50;

fn entry(
    n: usize,
    at: OffsetDateTime,
    groups: &[Uuid],
    app: Uuid,
    set: &portcullis_policy::PolicySet,
) -> SignInLogEntry {
    let user = Uuid::from_u128(n as u128 % USERS as u128 + 1);
    let context = ReplayContext {
        user_id: user,
        group_ids: [n, n * 7 + 3, n * 13 + 5]
            .iter()
            .map(|k| groups[k % GROUPS])
            .collect(),
        role_template_ids: Vec::new(),
        guest: false,
        targets: vec![ReplayTarget::Application(app.to_string())],
        platform: Some(if n.is_multiple_of(3) {
            DevicePlatform::Android
        } else {
            DevicePlatform::Windows
        }),
        client_app_type: Some(ClientAppType::Browser),
        ip_address: Some(std::net::IpAddr::from([203, 0, 113, (n % 250) as u8])),
        country: None,
        sign_in_risk: None,
        user_risk: None,
        device: None,
        methods: vec![(
            AuthenticationMethodMode::Fido2,
            Some("7e57a0a0-0000-4000-8000-000000000001".into()),
        )],
        password_changed: false,
        accepted_terms_of_use: Vec::new(),
        verdict: Verdict::Grant,
    };
    SignInLogEntry {
        id: Uuid::now_v7(),
        created_date_time: at,
        user_principal_name: format!("bench{}@bench.example", n % USERS),
        user_id: Some(user),
        user_display_name: Some(format!("Bench {}", n % USERS)),
        app_display_name: "Bench portal".into(),
        app_id: app.to_string(),
        ip_address: Some("203.0.113.1".into()),
        client_app_used: "Browser".into(),
        correlation_id: Uuid::new_v4(),
        is_interactive: true,
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36".into(),
        device_detail: DeviceDetail {
            operating_system: "Windows 10".into(),
            browser: "Edge 131.0.0".into(),
        },
        status: SignInStatus::default(),
        conditional_access_status: "success".into(),
        // The tenant's 50 policies' results, as the flow logs them: decided on the context.
        applied_conditional_access_policies: AppliedPolicies::of_trace(&context.decide(set).trace),
        authentication_details: vec![AuthenticationDetail {
            authentication_method: "Passkey".into(),
            succeeded: true,
            authentication_step_result_detail: "Correct credential".into(),
            authentication_step_requirement: "Primary authentication".into(),
            authentication_step_date_time: at,
        }],
        authentication_requirement: "multiFactorAuthentication".into(),
        authentication_strength: None,
        replay_context: Some(context.clone()),
        location: Default::default(),
    }
}

async fn seeded(scratch: &ScratchDatabase) -> (SqlStore, Uuid) {
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
    let groups: Vec<Uuid> = (0..GROUPS).map(|_| Uuid::new_v4()).collect();
    let now = OffsetDateTime::now_utc();
    let bodies: Vec<serde_json::Value> = (0..POLICIES)
        .map(|i| {
                json!({"id": format!("policy-{i}"), "displayName": format!("Policy {i}"), "state": "enabled",
                    "conditions": {"users": {"includeGroups": [groups[i % GROUPS], groups[(i + 5) % GROUPS]], "excludeGroups": [groups[(i + 9) % GROUPS]]},
                                   "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"],
                                   "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows", "macOS"]}},
                    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})
        })
        .collect();
    let set = portcullis_policy::PolicySet::new(
        portcullis_policy::graph::import_policies(&serde_json::to_vec(&bodies).expect("bodies"))
            .expect("policies"),
        Vec::new(),
        Vec::new(),
    );
    let policies = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            Change::InsertDocument(PolicyDocument {
                kind: DocumentKind::ConditionalAccessPolicy,
                id: format!("policy-{i}"),
                display_name: format!("Policy {i}"),
                body,
                created: now,
                modified: now,
            })
        })
        .collect();
    store.commit(policies, None).await.expect("policies");
    let app = Uuid::new_v4();
    // A day of sign-ins ending now, committed a thousand at a time.
    let start = now - Duration::days(1);
    let step = Duration::days(1) / SIGN_INS as u32;
    for chunk in (0..SIGN_INS).collect::<Vec<_>>().chunks(1_000) {
        let changes = chunk
            .iter()
            .map(|&n| {
                Change::InsertSignInLogEntry(Box::new(entry(
                    n,
                    start + step * n as u32,
                    &groups,
                    app,
                    &set,
                )))
            })
            .collect();
        store.commit(changes, None).await.expect("sign-ins");
    }
    (store, groups[0])
}

fn bench_database(c: &mut Criterion, name: &str, scratch: ScratchDatabase) {
    let runtime = Runtime::new().expect("runtime");
    let (store, group) = runtime.block_on(seeded(&scratch));
    let deps: Deps<SqlStore> = Deps {
        store: Arc::new(store),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SystemEntropy),
        offload: Arc::new(portcullis_core::kernel::typed_secret::Inline),
    };
    let logs = SignInLogs::new(portcullis_core::narrow!(deps, LogStore));
    let conditional_access = ConditionalAccess::new(portcullis_core::narrow!(deps, DirectoryStore));
    let reader = Principal {
        actor: Actor::System,
        permissions: vec!["Policy.Read.All".into(), "AuditLog.Read.All".into()],
    };
    let policies = Granted::check(&reader).expect("policies");
    let audit = Granted::check(&reader).expect("logs");
    // The candidate: one more policy, blocking one group on every platform.
    let body = serde_json::to_vec(&json!({"days": 2, "changes": [{"policy": {
        "displayName": "Block group 0", "state": "enabled",
        "conditions": {"users": {"includeGroups": [group]}, "applications": {"includeApplications": ["All"]},
                       "clientAppTypes": ["all"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}}}]}))
    .expect("body");
    let report = runtime
        .block_on(logs.replay(&policies, &audit, &conditional_access, &body))
        .expect("replay");
    assert_eq!(report.evaluated, SIGN_INS as u64);
    eprintln!(
        "{name}: {} evaluated, {} changed, {} skipped",
        report.evaluated, report.changed, report.skipped
    );
    let mut group = c.benchmark_group(format!("{name}: replay"));
    group.throughput(criterion::Throughput::Elements(SIGN_INS as u64));
    group.sample_size(10);
    group.bench_function("100,000 logged sign-ins", |b| {
        b.to_async(&runtime).iter(|| async {
            logs.replay(&policies, &audit, &conditional_access, &body)
                .await
                .expect("replay")
        })
    });
    group.finish();
    drop(scratch);
}

fn replay(c: &mut Criterion) {
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
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(20));
    targets = replay
}
criterion_main!(benches);
