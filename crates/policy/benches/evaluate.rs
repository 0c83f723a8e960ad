//! Evaluation cost for a realistic tenant: 240 policies (Entra's current limit) and a 2,400
//! policy variant to show cost grows linearly, for a user in 500 groups with 3 active roles.
//!
//! The tenant mixes what real exports contain: group- and role-targeted policies, "All users"
//! baselines with break-glass exclusions, app-specific and All-resources targets, platform,
//! location, client-app, risk and device-filter conditions, strengths, block, report-only and
//! disabled policies. Everything is generated from the policy index, so runs are comparable.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_policy::location::{IpNamedLocation, IpRange};
use portcullis_policy::{
    AuthenticationMethodMode, DeviceFacts, DevicePlatform, NamedLocation, PolicySet,
    SatisfiedMethod, SignInContext, Target, evaluate,
};
use serde_json::{Value, json};

fn guid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

const GROUP: u32 = 0x6a;
const ROLE: u32 = 0x70;
const APP: u32 = 0xa0;
const LOCATION: u32 = 0x10c;

fn policy(i: u32) -> Value {
    let state = match i % 10 {
        0 => "disabled",
        1 | 2 => "enabledForReportingButNotEnforced",
        _ => "enabled",
    };
    let users = match i % 6 {
        0 => {
            json!({"includeUsers": ["All"], "excludeUsers": [guid(1, 1)], "excludeGroups": [guid(GROUP, 9_000)]})
        }
        1 => {
            json!({"includeUsers": [], "includeRoles": [guid(ROLE, i % 30), guid(ROLE, (i + 7) % 30)], "excludeGroups": [guid(GROUP, 9_000)]})
        }
        2 => json!({"includeUsers": ["GuestsOrExternalUsers"]}),
        _ => {
            json!({"includeUsers": [], "includeGroups": [guid(GROUP, i * 7 % 2_000), guid(GROUP, (i * 13 + 5) % 2_000), guid(GROUP, (i * 31 + 11) % 2_000)],
                    "excludeGroups": [guid(GROUP, (i * 17 + 3) % 2_000)]})
        }
    };
    let applications = match i % 5 {
        0 | 1 => json!({"includeApplications": ["All"], "excludeApplications": [guid(APP, 99)]}),
        2 => {
            json!({"includeApplications": [], "includeUserActions": ["urn:user:registersecurityinfo"]})
        }
        _ => {
            json!({"includeApplications": [guid(APP, i % 40), guid(APP, (i + 1) % 40), guid(APP, 1)]})
        }
    };
    let mut conditions = json!({
        "users": users,
        "applications": applications,
        "clientAppTypes": if i.is_multiple_of(9) { json!(["exchangeActiveSync", "other"]) } else { json!(["all"]) },
        "signInRiskLevels": if i.is_multiple_of(11) { json!(["medium", "high"]) } else { json!([]) },
        "userRiskLevels": if i.is_multiple_of(13) { json!(["high"]) } else { json!([]) },
        "platforms": null, "locations": null, "devices": null, "times": null, "insiderRiskLevels": null,
    });
    if i.is_multiple_of(4) {
        conditions["platforms"] =
            json!({"includePlatforms": ["all"], "excludePlatforms": ["windows", "macOS", "iOS"]});
    }
    if i.is_multiple_of(3) {
        conditions["locations"] = json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted", guid(LOCATION, i % 20)]});
    }
    if i.is_multiple_of(8) {
        conditions["devices"] = json!({"deviceFilter": {"mode": "exclude",
            "rule": "device.trustType -eq \"AzureAD\" -and device.isCompliant -eq True -or device.extensionAttribute1 -eq \"SAW\""}});
    }
    let grant = match i % 7 {
        0 => json!({"operator": "OR", "builtInControls": ["block"]}),
        1 => {
            json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}})
        }
        2 => json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}),
        3 => {
            json!({"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]})
        }
        _ => json!({"operator": "OR", "builtInControls": ["mfa"]}),
    };
    json!({
        "id": guid(0xca, i),
        "displayName": format!("CA{i:03} generated policy"),
        "state": state,
        "conditions": conditions,
        "grantControls": grant,
        "sessionControls": if i % 10 == 5 {
            json!({"signInFrequency": {"isEnabled": true, "type": "hours", "value": 8 + i % 12, "frequencyInterval": "timeBased"}})
        } else { Value::Null },
    })
}

fn tenant(count: u32) -> PolicySet {
    let policies = (0..count)
        .map(|i| serde_json::from_value(policy(i)).expect("generated policy"))
        .collect();
    let locations = (0..20)
        .map(|n| {
            NamedLocation::Ip(IpNamedLocation {
                id: guid(LOCATION, n),
                display_name: format!("Site {n}"),
                is_trusted: n % 2 == 0,
                ip_ranges: (0..50)
                    .map(|r| IpRange::new(&format!("10.{n}.{r}.0/24")))
                    .collect(),
                ..Default::default()
            })
        })
        .collect();
    PolicySet::new(policies, Vec::new(), locations)
}

fn sign_in(set: &PolicySet) -> SignInContext {
    let mut ctx = SignInContext::new(guid(2, 42), Target::Application(guid(APP, 1)));
    // 500 groups, a quarter of them named by some policy.
    ctx.group_ids = (0..500)
        .map(|n| guid(GROUP, n * 4 % 2_000 + n % 3))
        .collect();
    ctx.role_template_ids = vec![guid(ROLE, 3), guid(ROLE, 11), guid(ROLE, 62)];
    ctx.platform = Some(DevicePlatform::Windows);
    let ip: IpAddr = "10.3.7.9".parse().unwrap();
    ctx.ip_address = Some(ip);
    ctx.named_locations = set.locations_for(ip, None);
    ctx.device = Some(DeviceFacts {
        is_compliant: Some(true),
        trust_type: Some("AzureAD".into()),
        ..Default::default()
    });
    ctx.methods = vec![
        SatisfiedMethod::new(AuthenticationMethodMode::Password),
        SatisfiedMethod::passkey("90a3ccdf-635c-4729-a248-9b709135078f"),
    ];
    ctx
}

fn bench(c: &mut Criterion) {
    for count in [240u32, 2_400] {
        let set = tenant(count);
        let ctx = sign_in(&set);
        let decision = evaluate(&ctx, &set);
        let applying = decision.trace.iter().filter(|t| t.applies).count();
        eprintln!(
            "{count} policies: {applying} apply, outcome {}",
            decision.outcome.name()
        );
        c.bench_function(
            &format!("evaluate/{count} policies, 500 groups, 3 roles"),
            |b| b.iter(|| evaluate(black_box(&ctx), black_box(&set))),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
