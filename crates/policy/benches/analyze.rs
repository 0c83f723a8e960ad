//! The analyzer on a realistic tenant: 240 policies (Entra's limit) against a directory of
//! 10,000 people in 500 groups, exhaustively. The policies mix what real exports hold: group-,
//! role- and "All"-targeted policies (the group ones name 30 of the 500 groups) with break-glass exclusions, app-specific and
//! All-resources targets, register-security-info, platform, location, client-app and risk
//! conditions, strengths (one with a FIDO2 allow-list), block, report-only and disabled.
//! Everything comes from a fixed seed, so runs are comparable.
//!
//! `ANALYZE_EXPORT=DIR` also writes the tenant and the directory there as files for
//! `portcullis policy analyze`, to measure the command's time and memory.
//!
//! `ANALYZE_PEOPLE=N` sets the directory's size (default 10,000); `ANALYZE_JSON=FILE` writes
//! one analysis as `portcullis policy analyze --json` would print it, to compare revisions.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_policy::analyze::{
    ADMIN_PORTAL_APP_ID, AnalysisInput, Application, ConditionSpace, Directory,
    GLOBAL_ADMINISTRATOR_ROLE, PersonFacts, analyze,
};
use portcullis_policy::location::{IpNamedLocation, IpRange};
use portcullis_policy::strength::CombinationConfiguration;
use portcullis_policy::{
    AuthenticationMethodMode, AuthenticationStrength, NamedLocation, PolicySet, SatisfiedMethod,
    Target,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

fn id(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

const GROUP: u32 = 0x6a;
const APP: u32 = 0xa0;
const LOCATION: u32 = 0x10c;
const USER: u32 = 0x05e;
const GROUPS: u32 = 500;
/// Groups policies name (administrators, contractors, pilots, service accounts…); the rest
/// are departments and projects no policy mentions, as in real tenants.
const POLICY_GROUPS: u32 = 30;
const APPS: u32 = 40;
const ROLES: [&str; 4] = [
    GLOBAL_ADMINISTRATOR_ROLE,
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "194ae4cb-b126-40b2-bd5b-6091b380977d",
];
const ALLOW_LISTED: &str = "90a3ccdf-635c-4729-a248-9b709135078f";
const OTHER_PASSKEY: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
const APPROVED_PASSKEYS: &str = "aaaa0000-0000-4000-8000-00000000f1d0";

fn policy(i: u32, rng: &mut StdRng) -> Value {
    let state = match i % 10 {
        0 => "disabled",
        1 | 2 => "enabledForReportingButNotEnforced",
        _ => "enabled",
    };
    let break_glass = id(USER, 0);
    let group = |rng: &mut StdRng| id(GROUP, rng.random_range(0..POLICY_GROUPS));
    let users = match i % 6 {
        0 => json!({"includeUsers": ["All"], "excludeUsers": [break_glass]}),
        1 => {
            json!({"includeRoles": [ROLES[rng.random_range(0..ROLES.len())]], "excludeUsers": [break_glass]})
        }
        2 => json!({"includeUsers": ["GuestsOrExternalUsers"]}),
        _ => {
            json!({"includeGroups": [group(rng), group(rng), group(rng)], "excludeGroups": [group(rng)]})
        }
    };
    let applications = match i % 5 {
        0 | 1 => json!({"includeApplications": ["All"], "excludeApplications": [id(APP, 39)]}),
        2 => {
            json!({"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]})
        }
        _ => {
            json!({"includeApplications": [id(APP, rng.random_range(0..APPS)), id(APP, rng.random_range(0..APPS))]})
        }
    };
    let mut conditions = json!({
        "users": users,
        "applications": applications,
        "clientAppTypes": if i % 9 == 4 { json!(["exchangeActiveSync", "other"]) } else { json!(["all"]) },
        "signInRiskLevels": if i % 11 == 3 { json!(["medium", "high"]) } else { json!([]) },
        "userRiskLevels": if i % 13 == 5 { json!(["high"]) } else { json!([]) },
    });
    if i % 4 == 1 {
        conditions["platforms"] = match rng.random_range(0..2) {
            0 => json!({"includePlatforms": ["android", "iOS"]}),
            _ => json!({"includePlatforms": ["all"], "excludePlatforms": ["windows", "macOS"]}),
        };
    }
    if i % 3 == 2 {
        conditions["locations"] = json!({"includeLocations": ["All"],
            "excludeLocations": ["AllTrusted", id(LOCATION, rng.random_range(0..10))]});
    }
    let grant = match (i % 9 == 4, i % 7) {
        (true, _) | (_, 0) => json!({"operator": "OR", "builtInControls": ["block"]}),
        (_, 1) => {
            json!({"builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}})
        }
        (_, 2) => {
            json!({"builtInControls": [], "authenticationStrength": {"id": APPROVED_PASSKEYS}})
        }
        (_, 3) => json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}),
        (_, 4) => json!({"builtInControls": [], "termsOfUse": ["tou"]}),
        _ => json!({"operator": "OR", "builtInControls": ["mfa"]}),
    };
    json!({
        "id": id(0xca, i),
        "displayName": format!("CA{i:03} generated policy"),
        "state": state,
        "conditions": conditions,
        "grantControls": grant,
        "sessionControls": if i % 10 == 5 {
            json!({"signInFrequency": {"isEnabled": true, "type": "hours", "value": 8, "frequencyInterval": "timeBased"}})
        } else { Value::Null },
    })
}

fn tenant() -> (Vec<Value>, AuthenticationStrength, Vec<NamedLocation>) {
    let mut rng = StdRng::seed_from_u64(240);
    let policies = (0..240).map(|i| policy(i, &mut rng)).collect();
    let mut strength =
        AuthenticationStrength::custom(APPROVED_PASSKEYS, "Approved passkeys", &["fido2"]);
    strength.combination_configurations = Some(vec![CombinationConfiguration::fido2(vec![
        ALLOW_LISTED.to_owned(),
    ])]);
    let locations = (0..10)
        .map(|n| {
            NamedLocation::Ip(IpNamedLocation {
                id: id(LOCATION, n),
                display_name: format!("Site {n}"),
                is_trusted: n % 2 == 0,
                ip_ranges: (0..5)
                    .map(|r| IpRange::new(&format!("10.{n}.{r}.0/24")))
                    .collect(),
                ..Default::default()
            })
        })
        .collect();
    (policies, strength, locations)
}

fn directory() -> Directory {
    let mut rng = StdRng::seed_from_u64(10_000);
    let count: u32 = std::env::var("ANALYZE_PEOPLE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let people = (0..count)
        .map(|n| {
            // One department, a few projects, and now and then a group a policy names.
            let mut group_ids = vec![id(
                GROUP,
                rng.random_range(POLICY_GROUPS..POLICY_GROUPS + 20),
            )];
            for _ in 0..rng.random_range(2..20) {
                group_ids.push(id(GROUP, rng.random_range(POLICY_GROUPS + 20..GROUPS)));
            }
            for _ in 0..rng.random_range(0..3) {
                group_ids.push(id(GROUP, rng.random_range(0..POLICY_GROUPS)));
            }
            let mut methods = vec![SatisfiedMethod::new(AuthenticationMethodMode::Password)];
            match rng.random_range(0..10) {
                0..=5 => methods.push(SatisfiedMethod::passkey(ALLOW_LISTED)),
                6 | 7 => methods.push(SatisfiedMethod::passkey(OTHER_PASSKEY)),
                _ => methods.push(SatisfiedMethod::new(AuthenticationMethodMode::SoftwareOath)),
            }
            let roles = match rng.random_range(0..100) {
                0 => vec![GLOBAL_ADMINISTRATOR_ROLE.to_owned()],
                1..=3 => vec![ROLES[rng.random_range(1..ROLES.len())].to_owned()],
                _ => Vec::new(),
            };
            PersonFacts {
                user_id: id(USER, n),
                group_ids,
                role_template_ids: roles,
                guest: rng.random_range(0..50) == 0,
                methods,
            }
        })
        .collect();
    Directory {
        people,
        group_ids: (0..GROUPS).map(|g| id(GROUP, g)).collect(),
        role_template_ids: None,
        applications: (0..APPS)
            .map(|a| Application {
                app_id: id(APP, a),
                display_name: format!("App {a}"),
            })
            .collect(),
    }
}

fn export(
    dir: &str,
    policies: &[Value],
    strength: &AuthenticationStrength,
    locations: &[NamedLocation],
    directory: &Directory,
) {
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).expect("export folder");
    let write = |name: &str, value: Value| {
        std::fs::write(dir.join(name), value.to_string()).expect("export file");
    };
    write("policies.json", json!({"value": policies}));
    write("strengths.json", json!({"value": [strength]}));
    write("locations.json", json!({"value": locations}));
    let method = |m: &SatisfiedMethod| match &m.aaguid {
        Some(a) => format!("{}:{a}", m.mode),
        None => m.mode.to_string(),
    };
    write(
        "directory.json",
        json!({
            "users": directory.people.iter().map(|p| json!({
                "id": p.user_id, "groups": p.group_ids, "roles": p.role_template_ids,
                "guest": p.guest, "methods": p.methods.iter().map(method).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "groups": directory.group_ids,
            "applications": directory.applications.iter().map(|a| json!({"appId": a.app_id, "displayName": a.display_name})).collect::<Vec<_>>(),
        }),
    );
}

fn bench(c: &mut Criterion) {
    let (policies, strength, locations) = tenant();
    let directory = directory();
    if let Ok(dir) = std::env::var("ANALYZE_EXPORT") {
        export(&dir, &policies, &strength, &locations, &directory);
    }
    let set = PolicySet::new(
        policies
            .into_iter()
            .map(|p| serde_json::from_value(p).expect("generated policy"))
            .collect(),
        vec![strength],
        locations,
    );
    let input = AnalysisInput {
        directory: Some(&directory),
        ..AnalysisInput::new(&set)
    };
    let started = std::time::Instant::now();
    let analysis = analyze(&input);
    eprintln!("one analysis: {:?}", started.elapsed());
    if let Ok(path) = std::env::var("ANALYZE_JSON") {
        std::fs::write(&path, analysis.to_json().to_string()).expect("analysis file");
    }
    eprintln!(
        "240 policies, {} people: {} findings; {:?}",
        directory.people.len(),
        analysis.findings.len(),
        analysis.stats
    );
    let mut group = c.benchmark_group("analyze");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(20));
    group.bench_function("240 policies, a directory in 500 groups", |b| {
        b.iter(|| analyze(black_box(&input)))
    });
    group.finish();
}

/// What the lockout guard pays on a change: the space of a 240-policy set built, and one Global
/// Administrator's reach to the Admin Portal asked of it.
fn guard(c: &mut Criterion) {
    let (policies, strength, locations) = tenant();
    let set = PolicySet::new(
        policies
            .into_iter()
            .map(|p| serde_json::from_value(p).expect("generated policy"))
            .collect(),
        vec![strength],
        locations,
    );
    let admin = PersonFacts {
        user_id: id(USER, 1),
        group_ids: vec![id(GROUP, 0), id(GROUP, POLICY_GROUPS + 3)],
        role_template_ids: vec![GLOBAL_ADMINISTRATOR_ROLE.to_owned()],
        guest: false,
        methods: vec![
            SatisfiedMethod::new(AuthenticationMethodMode::Password),
            SatisfiedMethod::passkey(ALLOW_LISTED),
        ],
    };
    let portal = Target::Application(ADMIN_PORTAL_APP_ID.to_owned());
    let mut group = c.benchmark_group("guard");
    group.sample_size(10);
    group.bench_function("240 policies: space, then one administrator's reach", |b| {
        b.iter(|| {
            let space = ConditionSpace::new(black_box(&set), std::slice::from_ref(&portal));
            space.can_reach(&set, black_box(&admin), &portal)
        })
    });
    group.finish();
}

criterion_group!(benches, guard, bench);
criterion_main!(benches);
