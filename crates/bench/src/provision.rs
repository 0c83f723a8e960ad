//! Sets up the tenant the load runs against, through the admin API and the sign-in endpoints
//! only (as an administrator and the people themselves would): an application, groups, named
//! locations, users who each registered one passkey with a Temporary Access Pass, and a
//! realistic set of Conditional Access policies.
//!
//! The policies are created after the passkeys, so that no policy on registering security
//! information stands between the generator and its users' first passkey; the sign-ins then
//! run with every policy in place.

use std::sync::Arc;

use anyhow::Context;
use portcullis_client::AdminClient;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::http::Browser;
use crate::passkey::{BENCH_AAGUID, SoftPasskey};

/// Where the application sends people back (public client with PKCE; never actually fetched).
pub const REDIRECT_URI: &str = "http://localhost/bench/callback";

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const MFA: &str = "00000000-0000-0000-0000-000000000002";
const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";
/// Groups the generator's users are spread over, and groups none of them is in.
const USER_GROUPS: usize = 20;
const OTHER_GROUPS: usize = 6;
const OTHER_APPS: usize = 6;

/// One person the load signs in as.
pub struct BenchUser {
    pub passkey: SoftPasskey,
}

pub struct Tenant {
    pub client_id: String,
    pub users: Vec<BenchUser>,
    pub policies: usize,
}

fn id(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no id in {v}"))
}

fn uuid_text(bytes: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*bytes).hyphenated().to_string()
}

/// Creates everything; `users` people with one passkey each, then `policies` policies.
pub async fn tenant(
    admin: &AdminClient,
    browser: &Browser,
    run: &str,
    users: usize,
    policies: usize,
) -> anyhow::Result<Tenant> {
    let app = admin
        .post(
            "/applications",
            &json!({"displayName": format!("Bench portal {run}"),
                    "spa": {"redirectUris": [REDIRECT_URI]}}),
        )
        .await
        .context("creating the application")?;
    let client_id = app["appId"]
        .as_str()
        .context("the application has an appId")?
        .to_string();
    let mut other_apps = Vec::new();
    for i in 0..OTHER_APPS {
        let app = admin
            .post(
                "/applications",
                &json!({"displayName": format!("Bench line-of-business {i} {run}")}),
            )
            .await?;
        other_apps.push(app["appId"].as_str().unwrap_or_default().to_string());
    }
    let mut groups = Vec::new();
    for i in 0..USER_GROUPS + OTHER_GROUPS {
        let g = admin
            .post(
                "/groups",
                &json!({"displayName": format!("Bench group {i} {run}")}),
            )
            .await?;
        groups.push(id(&g)?);
    }
    let trusted = admin
        .post(
            "/identity/conditionalAccess/namedLocations",
            &json!({"@odata.type": "#microsoft.graph.ipNamedLocation",
                    "displayName": format!("Head office {run}"), "isTrusted": true,
                    "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.20.0.0/16"},
                                 {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "192.0.2.0/24"}]}),
        )
        .await
        .context("creating a named location")?;
    let blocked_countries = admin
        .post(
            "/identity/conditionalAccess/namedLocations",
            &json!({"@odata.type": "#microsoft.graph.ipNamedLocation",
                    "displayName": format!("Known bad ranges {run}"), "isTrusted": false,
                    "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "198.51.100.0/24"},
                                 {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}),
        )
        .await?;
    let locations = (id(&trusted)?, id(&blocked_countries)?);

    // The passkey policy admits only the generator's model, as DESIGN's story restricts
    // passkeys to an allow-list: the AAGUID check runs on every sign-in.
    admin
        .patch(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2",
            &json!({"isSelfServiceRegistrationAllowed": true,
                    "keyRestrictions": {"isEnforced": true, "enforcementType": "allow",
                                        "aaGuids": [uuid_text(&BENCH_AAGUID)]}}),
        )
        .await
        .context("setting the passkey policy")?;

    let made = users_with_passkeys(admin, browser, run, users, &groups).await?;

    let mut created = 0;
    for i in 0..policies {
        let body = policy(i, run, &client_id, &other_apps, &groups, &locations);
        admin
            .post("/identity/conditionalAccess/policies", &body)
            .await
            .with_context(|| format!("creating policy {i}: {body}"))?;
        created += 1;
    }
    Ok(Tenant {
        client_id,
        users: made,
        policies: created,
    })
}

async fn users_with_passkeys(
    admin: &AdminClient,
    browser: &Browser,
    run: &str,
    count: usize,
    groups: &[String],
) -> anyhow::Result<Vec<BenchUser>> {
    // Each person costs two argon2 computations on the server (issuing the pass, redeeming
    // it); a few at a time keep both cores busy without queueing requests into timeouts.
    let gate = Arc::new(Semaphore::new(4));
    let mut tasks = Vec::new();
    for i in 0..count {
        let admin = admin.clone();
        let browser = browser.clone();
        let gate = gate.clone();
        let upn = format!("bench{i}.{run}@bench.example");
        let member_of: Vec<String> = [i, i * 7 + 3, i * 13 + 5]
            .iter()
            .map(|k| groups[k % USER_GROUPS].clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            one_user(&admin, &browser, &upn, &member_of).await
        }));
    }
    let mut out = Vec::with_capacity(count);
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

async fn one_user(
    admin: &AdminClient,
    browser: &Browser,
    upn: &str,
    member_of: &[String],
) -> anyhow::Result<BenchUser> {
    let user = admin
        .post(
            "/users",
            &json!({"userPrincipalName": upn, "displayName": upn}),
        )
        .await
        .with_context(|| format!("creating {upn}"))?;
    let user_id = id(&user)?;
    let mut seen = Vec::new();
    for g in member_of {
        if seen.contains(&g) {
            continue;
        }
        seen.push(g);
        admin
            .post(
                &format!("/groups/{g}/members/$ref"),
                &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user_id}")}),
            )
            .await?;
    }
    let pass = admin
        .post(
            &format!("/users/{user_id}/authentication/temporaryAccessPassMethods"),
            &json!({"isUsableOnce": true}),
        )
        .await
        .with_context(|| format!("issuing a pass to {upn}"))?;
    let pass = pass["temporaryAccessPass"]
        .as_str()
        .context("the pass is in the reply")?;
    let signed_in = browser
        .post(
            "/auth/tap",
            None,
            &json!({"username": upn, "temporaryAccessPass": pass}),
        )
        .await?;
    anyhow::ensure!(
        signed_in.status.is_success(),
        "signing in {upn} with a pass: {} {}",
        signed_in.status,
        signed_in.body
    );
    let session = signed_in
        .session_cookie
        .context("the pass sign-in set a session cookie")?;
    let options = browser
        .post(
            "/my/passkeys/options",
            Some(&session),
            &json!({"device": "this"}),
        )
        .await?;
    anyhow::ensure!(
        options.status.is_success(),
        "passkey options for {upn}: {} {}",
        options.status,
        options.body
    );
    let (passkey, credential) = SoftPasskey::create(&options.body["options"], &browser.origin)?;
    let registered = browser
        .post(
            "/my/passkeys",
            Some(&session),
            &json!({"ceremonyId": options.body["ceremonyId"], "name": "Bench key", "credential": credential}),
        )
        .await?;
    anyhow::ensure!(
        registered.status.is_success(),
        "registering a passkey for {upn}: {} {}",
        registered.status,
        registered.body
    );
    Ok(BenchUser { passkey })
}

/// Policy `i` of a realistic tenant, generated from its index so runs are comparable: "All
/// users" baselines with break-glass exclusions, group-, role- and guest-targeted policies, app
/// targets, platform, location, client-app and device-filter conditions, built-in and custom
/// strengths, block, report-only and disabled policies. None blocks the generator's users
/// (Windows, loopback address, passkey) — a blocked sign-in is not the path being measured —
/// but every enabled and report-only one is evaluated on every decision.
fn policy(
    i: usize,
    run: &str,
    app: &str,
    other_apps: &[String],
    groups: &[String],
    (trusted, bad): &(String, String),
) -> Value {
    let user_group = |k: usize| groups[k % USER_GROUPS].clone();
    let other_group = |k: usize| groups[USER_GROUPS + k % OTHER_GROUPS].clone();
    let other_app = |k: usize| other_apps[k % other_apps.len()].clone();
    let state = match i % 10 {
        0 => "disabled",
        3 | 7 => "enabledForReportingButNotEnforced",
        _ => "enabled",
    };
    let (conditions, grant) = match i % 10 {
        // Baseline: everyone, everywhere, MFA; the break-glass group excluded.
        0 | 1 => (
            json!({"users": {"includeUsers": ["All"], "excludeGroups": [other_group(i)]},
                   "applications": {"includeApplications": ["All"]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": ["mfa"]}),
        ),
        // Legacy protocols blocked for everyone.
        2 => (
            json!({"users": {"includeUsers": ["All"]},
                   "applications": {"includeApplications": ["All"]},
                   "clientAppTypes": ["exchangeActiveSync", "other"]}),
            json!({"operator": "OR", "builtInControls": ["block"]}),
        ),
        // Phishing-resistant MFA for a department, on this application and others.
        3 | 4 => (
            json!({"users": {"includeGroups": [user_group(i), user_group(i + 5)], "excludeGroups": [other_group(i + 1)]},
                   "applications": {"includeApplications": [app, other_app(i)]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}),
        ),
        // Admins: phishing-resistant everywhere.
        5 => (
            json!({"users": {"includeRoles": [GLOBAL_ADMINISTRATOR]},
                   "applications": {"includeApplications": ["All"]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": PHISHING_RESISTANT}}),
        ),
        // Unsupported platforms blocked for a department.
        6 => (
            json!({"users": {"includeGroups": [user_group(i + 2)]},
                   "applications": {"includeApplications": ["All"]},
                   "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows", "macOS", "iOS", "android"]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": ["block"]}),
        ),
        // Outside the office, contractors are blocked (report-only on even rounds).
        7 => (
            json!({"users": {"includeGroups": [other_group(i), user_group(i + 3)]},
                   "applications": {"includeApplications": [other_app(i + 1), other_app(i + 2)]},
                   "locations": {"includeLocations": ["All"], "excludeLocations": [trusted]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": ["block"]}),
        ),
        // Known bad ranges blocked for everyone; guests need MFA.
        8 if i % 20 == 8 => (
            json!({"users": {"includeUsers": ["All"]},
                   "applications": {"includeApplications": ["All"]},
                   "locations": {"includeLocations": [bad]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": ["block"]}),
        ),
        8 => (
            json!({"users": {"includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest", "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}}},
                   "applications": {"includeApplications": ["All"]},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": ["mfa"]}),
        ),
        // Privileged access workstations: a device filter; MFA strength for another group.
        _ => (
            json!({"users": {"includeGroups": [user_group(i + 7)]},
                   "applications": {"includeApplications": [other_app(i + 3)]},
                   "devices": {"deviceFilter": {"mode": "exclude", "rule": "device.trustType -eq \"AzureAD\" -and device.isCompliant -eq True"}},
                   "clientAppTypes": ["all"]}),
            json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": MFA}}),
        ),
    };
    json!({
        "displayName": format!("Bench policy {i:02} {run}"),
        "state": state,
        "conditions": conditions,
        "grantControls": grant,
    })
}
