//! Builders: policies are written as Graph JSON so each test reads like an Entra export.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use portcullis_policy::graph::import_any;
use portcullis_policy::{
    ConditionalAccessPolicy, Decision, DevicePlatform, PolicySet, PolicyTrace, SatisfiedMethod,
    SignInContext, Target, evaluate,
};
use serde_json::{Value, json};

pub const USER: &str = "11111111-1111-4111-8111-111111111111";
pub const OTHER_USER: &str = "22222222-2222-4222-8222-222222222222";
pub const ADMINS: &str = "5f1b5b5e-0a6b-4c1e-9d7a-2b3c4d5e6f70";
pub const STAFF: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const CONTRACTORS: &str = "aaaaaaaa-0000-4000-8000-000000000002";
pub const GLOBAL_ADMIN_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const HELPDESK_ROLE: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
pub const APP: &str = "9a1b2c3d-0000-4000-8000-00000000a001";
pub const OTHER_APP: &str = "9a1b2c3d-0000-4000-8000-00000000a002";
pub const AUTHENTICATOR_ANDROID: &str = "de1e552d-db1d-4423-a619-566b625cdc84";
pub const AUTHENTICATOR_IOS: &str = "90a3ccdf-635c-4729-a248-9b709135078f";
pub const YUBIKEY: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

/// Deep-merges `patch` into `base` (objects merge, anything else replaces).
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// An enabled policy for all users and all applications, changed by `patch`.
pub fn policy_json(id: &str, patch: Value) -> Value {
    let mut base = json!({
        "id": id,
        "displayName": format!("policy {id}"),
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"], "excludeUsers": [], "includeGroups": [], "excludeGroups": [],
                      "includeRoles": [], "excludeRoles": []},
            "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": [],
                             "includeAuthenticationContextClassReferences": []},
            "clientAppTypes": ["all"],
            "signInRiskLevels": [],
            "userRiskLevels": []
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": []}
    });
    merge(&mut base, patch);
    base
}

pub fn policy(id: &str, patch: Value) -> ConditionalAccessPolicy {
    serde_json::from_value(policy_json(id, patch)).expect("test policy parses")
}

pub fn set(policies: Vec<ConditionalAccessPolicy>) -> PolicySet {
    PolicySet::new(policies, Vec::new(), Vec::new())
}

/// A member signing in to APP from Windows in a browser.
pub fn ctx() -> SignInContext {
    let mut ctx = SignInContext::new(USER, Target::Application(APP.to_owned()));
    ctx.platform = Some(DevicePlatform::Windows);
    ctx
}

pub fn with_methods(mut ctx: SignInContext, methods: &[&str]) -> SignInContext {
    ctx.methods = methods
        .iter()
        .map(|m| SatisfiedMethod::new(portcullis_policy::AuthenticationMethodMode::parse(m)))
        .collect();
    ctx
}

pub fn trace<'d>(decision: &'d Decision, id: &str) -> &'d PolicyTrace {
    decision
        .trace
        .iter()
        .find(|t| t.policy_id() == id)
        .unwrap_or_else(|| panic!("no trace for {id}"))
}

pub fn applies(policy: ConditionalAccessPolicy, ctx: &SignInContext) -> bool {
    let id = policy.id.clone();
    let decision = evaluate(ctx, &set(vec![policy]));
    trace(&decision, &id).applies
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/entra-export")
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).expect("fixture exists")
}

/// The DESIGN.md tenant: the two "Passkey test" policies (plus a report-only and a disabled
/// policy from the same export), the strengths and the named locations.
pub fn design_tenant() -> PolicySet {
    let policies = import_any(&fixture_bytes("policies.json")).expect("policies.json");
    let strengths =
        import_any(&fixture_bytes("authenticationStrengthPolicies.json")).expect("strengths");
    let locations = import_any(&fixture_bytes("namedLocations.json")).expect("locations");
    PolicySet::new(
        policies.policies,
        strengths.strengths,
        locations.named_locations,
    )
}
