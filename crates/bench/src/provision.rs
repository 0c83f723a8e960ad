//! Sets up the tenant the load runs against, through the admin API and the sign-in endpoints
//! only (as an administrator and the people themselves would): an application, groups, named
//! locations, the people of the mode, and a realistic set of Conditional Access policies.
//!
//! - `passkey`: each person registered one passkey with a Temporary Access Pass.
//! - `password`: each person has a password, set by an administrator, and an authenticator app
//!   registered with a pass. They are kept out of the department groups that the policies hold
//!   to phishing-resistant MFA, so the baseline "MFA for everyone" is what they meet.
//! - `tap-registration`: each person has only a fresh one-time pass and is in a department
//!   group held to phishing-resistant MFA on the application, so their first sign-in is the
//!   onboarding path: pass, "more information required", a new passkey, proof of it.
//!
//! The policies are created after the people, so that no policy on registering security
//! information stands between the generator and its people's methods; the sign-ins then
//! run with every policy in place.

use std::sync::Arc;

use anyhow::Context;
use portcullis_client::AdminClient;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::http::Browser;
use crate::passkey::{BENCH_AAGUID, SoftPasskey};
use crate::signin::Mode;
use crate::totp::AuthenticatorApp;

/// Where the application sends people back (public client with PKCE; never actually fetched).
pub const REDIRECT_URI: &str = "http://localhost/bench/callback";

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const MFA: &str = "00000000-0000-0000-0000-000000000002";
const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";
/// Groups the generator's users are spread over, and groups none of them is in.
const USER_GROUPS: usize = 20;
const OTHER_GROUPS: usize = 6;
const OTHER_APPS: usize = 6;

/// The groups no enabled policy holds to phishing-resistant MFA on the application (those are
/// `USER_GROUPS` 4, 9, 14 and 19; see [`policy`]): where `password` people are placed.
const PASSWORD_GROUPS: [usize; 16] = [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18];
/// A department held to phishing-resistant MFA on the application by policy 4 (enabled).
const PHISHING_RESISTANT_GROUP: usize = 4;

/// One person the load signs in as.
pub struct BenchUser {
    pub upn: String,
    pub method: Method,
}

/// How a person signs in.
pub enum Method {
    Passkey(SoftPasskey),
    PasswordAndApp {
        password: String,
        app: AuthenticatorApp,
    },
    /// A one-time pass not yet used; `None` once it was.
    FirstPass(Option<String>),
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
    mode: Mode,
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

    if mode == Mode::Password {
        // Passwords are off until an administrator turns them on (passkeys are the way in).
        admin
            .patch(
                "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Password",
                &json!({"state": "enabled"}),
            )
            .await
            .context("turning passwords on")?;
    }
    let made = people(admin, browser, run, users, &groups, mode).await?;

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

async fn people(
    admin: &AdminClient,
    browser: &Browser,
    run: &str,
    count: usize,
    groups: &[String],
    mode: Mode,
) -> anyhow::Result<Vec<BenchUser>> {
    // Each person costs two or three argon2 computations on the server (a password, issuing a
    // pass, redeeming it); a few at a time keep both cores busy without queueing requests
    // into timeouts.
    let gate = Arc::new(Semaphore::new(4));
    let mut tasks = Vec::new();
    for i in 0..count {
        let admin = admin.clone();
        let browser = browser.clone();
        let gate = gate.clone();
        let upn = format!("bench{i}.{run}@bench.example");
        let spread = [i, i * 7 + 3, i * 13 + 5];
        let member_of: Vec<String> = match mode {
            Mode::Passkey => spread
                .iter()
                .map(|k| groups[k % USER_GROUPS].clone())
                .collect(),
            Mode::Password => spread
                .iter()
                .map(|k| groups[PASSWORD_GROUPS[k % PASSWORD_GROUPS.len()]].clone())
                .collect(),
            Mode::TapRegistration => std::iter::once(PHISHING_RESISTANT_GROUP)
                .chain(spread)
                .map(|k| groups[k % USER_GROUPS].clone())
                .collect(),
        };
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            one_person(&admin, &browser, &upn, &member_of, mode).await
        }));
    }
    let mut out = Vec::with_capacity(count);
    for (done, t) in tasks.into_iter().enumerate() {
        out.push(t.await??);
        if (done + 1) % 500 == 0 {
            println!("  {} of {count} people ready", done + 1);
        }
    }
    Ok(out)
}

async fn one_person(
    admin: &AdminClient,
    browser: &Browser,
    upn: &str,
    member_of: &[String],
    mode: Mode,
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
    if let Mode::TapRegistration = mode {
        return Ok(BenchUser {
            upn: upn.to_string(),
            method: Method::FirstPass(Some(pass.to_string())),
        });
    }
    let password = format!("Bench-{}-Correct-Horse", uuid::Uuid::new_v4().simple());
    if let Mode::Password = mode {
        admin
            .post(
                &format!("/users/{user_id}/authentication/passwordMethods/28c10230-6103-485e-b985-444c60001490/resetPassword"),
                &json!({"newPassword": password}),
            )
            .await
            .with_context(|| format!("setting a password for {upn}"))?;
    }
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
    if let Mode::Password = mode {
        let app = authenticator_app(browser, &session, upn).await?;
        return Ok(BenchUser {
            upn: upn.to_string(),
            method: Method::PasswordAndApp { password, app },
        });
    }
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
    Ok(BenchUser {
        upn: upn.to_string(),
        method: Method::Passkey(passkey),
    })
}

/// Registers an authenticator app in the person's session, as the security-info page does: the
/// server shows a secret, the app shows a code, the code confirms it.
async fn authenticator_app(
    browser: &Browser,
    session: &str,
    upn: &str,
) -> anyhow::Result<AuthenticatorApp> {
    let options = browser
        .post("/my/totp/options", Some(session), &json!({}))
        .await?;
    anyhow::ensure!(
        options.status.is_success(),
        "authenticator app options for {upn}: {} {}",
        options.status,
        options.body
    );
    let secret = options.body["secret"]
        .as_str()
        .context("the options show the secret")?;
    let mut app = AuthenticatorApp::from_base32(secret)?;
    let code = match app.next_code() {
        Some(code) => code,
        None => anyhow::bail!("a new app has used no step"),
    };
    let registered = browser
        .post(
            "/my/totp",
            Some(session),
            &json!({"registration": options.body["registration"], "code": code, "displayName": "Bench app"}),
        )
        .await?;
    anyhow::ensure!(
        registered.status.is_success(),
        "registering an authenticator app for {upn}: {} {}",
        registered.status,
        registered.body
    );
    Ok(app)
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
