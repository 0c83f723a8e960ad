//! The Conditional Access analyzer: every sign-in a tenant's policies can meet, cut into the
//! classes that behave alike, decided by [`crate::evaluate`], and read for lockouts, gaps, dead
//! and shadowed policies, blocks without an emergency exclusion, unresolved references and the
//! baseline checks administrators expect. Every finding carries a witness: one concrete sign-in
//! in What-If's terms and the decision What-If gives for it.
//!
//! What it owns: the finite condition space and its classes, the exhaustive walk over them, the
//! finding rules below, and [`ConditionSpace::can_reach`], which the lockout guard asks.
//! What it must never do: decide a sign-in itself. Every decision, and every "does this
//! condition match" used to build the classes, comes from `evaluate`; the analyzer only chooses
//! which sign-ins to ask about and reads the answers. It is pure like the rest of the crate.
//!
//! # The space
//!
//! - **Who.** With a directory: every person, with their groups, roles, guest flag and registered
//!   methods. Offline: "anyone else", each user, group and role a policy names, the Global
//!   Administrator role, each of those together with one of the ids policies exclude (the
//!   break-glass pattern), and each of them as a guest when a policy tells guests apart. People
//!   who hold several named memberships beyond that exist only in a directory; give one to
//!   cover them (the CLI's `--directory`, the API always does).
//! - **What.** Each application a policy or the directory names, the Admin Portal, "any other
//!   application" ([`ANY_OTHER_APP`]), register security information, register or join devices
//!   when named, each authentication context named.
//! - **Platform.** The six platforms and "unknown". **Client.** browser, mobile and desktop,
//!   Exchange ActiveSync, other clients.
//! - **Location.** One IP address for every set of named locations an address can fall in
//!   (each named location, their overlaps, and "elsewhere"), found at the range boundaries.
//!   "No address" is left out: it only happens in What-If, it never makes a policy apply, and
//!   counting it would report access no real sign-in has.
//! - **Risk.** `none` and every level a policy names, for sign-in and user risk. Portcullis
//!   computes no risk, so reaching an application (lockout, gap) is judged at risk `none`;
//!   dead and shadowed policies are judged over every level.
//! - **Device.** Portcullis registers no devices: every sign-in comes from an unregistered
//!   device, which is also all What-If's flags can describe. A device filter is judged there.
//! - **Methods.** The methods Portcullis can perform: password, software OATH, Temporary Access
//!   Pass and passkeys, one per class of AAGUID the strengths' allow-lists tell apart. Method
//!   sets that meet the same strengths are one class.
//!
//! # Pruning that never guesses
//!
//! Each policy's conditions are asked of the engine one dimension at a time: a copy of the
//! policy set where every other condition of every policy is neutral ("All") tells, for each
//! class of that dimension, which policies match it. A policy applies to a sign-in exactly when
//! it matches in every dimension, so a sign-in's applying set is the intersection of its
//! classes' sets, and two sign-ins with the same applying set, target kind and method class get
//! the same decision: the engine is asked once per distinct combination. Conditions the engine
//! cannot evaluate keep their fail-closed reading in every copy.
//!
//! # Deciding once per kind of decision
//!
//! Which policies apply is not what decides a sign-in: what they ask is. The engine's second
//! phase reads, of each enforced policy that applies, only its grant controls, whether it fails
//! closed, whether it names register-security-info, and its session controls
//! (`evaluate::decision_profile`); of the sign-in, only its methods and whether its target is
//! register-security-info (Portcullis sign-ins have no device, password change or accepted
//! terms). So the walk asks the engine once per *signature* (the set of profiles among the
//! enforced policies that apply), target kind and method class, and every other sign-in with
//! that signature gets the same outcome and session controls. Tenants repeat a few controls
//! (MFA, a strength, block) across hundreds of policies, so signatures are few. Per target the
//! conditions are walked one per class of equal enforced policies, in order, so the first
//! condition that reaches is the one a walk over all would find. Witnesses and the decisions
//! reported with them are asked of the engine again for exactly that sign-in. Debug builds
//! check one memo answer in [`VERIFY_EVERY`] against the engine, so every test that analyses
//! also tests this claim.
//!
//! Shadowing is judged over every distinct applying set once: taking a policy out changes
//! nothing where another applying policy has its profile, and otherwise the decision without
//! it is the decision of the smaller signature, asked of the engine with the policy skipped
//! (`evaluate::evaluate_without`) only when no sign-in had that signature yet.
//!
//! # Cost
//!
//! On the benchmark tenant (240 policies; 10,000 people in 500 groups, who fall into 1,527
//! person classes; 43 targets; 168 condition classes; 11 million combinations) one analysis asks
//! the engine about 38,000 times (10,000 of them to place each person) and takes about 2 s on
//! one core, about 100 MB resident including the generated directory. Before signatures it
//! asked once per distinct applying set: 500,000 times and 13 s for 100 people.

//! # Findings
//!
//! - `lockout`: a class of people gets, for an application, a block or requirements it cannot
//!   present with the methods it has (offline: every method Portcullis lets a person register;
//!   a Temporary Access Pass is not counted, since only another administrator can issue one)
//!   on every platform, location and client. High when the class holds Global Administrator,
//!   the application is the Admin Portal, or the class is everyone.
//! - `gap`: a class reaches an application with a password alone (medium), or a holder of a
//!   privileged role reaches one with password and software OATH, no phishing-resistant method
//!   (high).
//! - `deadPolicy`: an enabled or report-only policy that no sign-in in the space meets; the
//!   message names the condition no class meets.
//! - `shadowedPolicy`: an enabled policy that meets some sign-in, where for every sign-in class
//!   and method class it meets, the decision (outcome, what is asked, session controls) is the
//!   same without it.
//! - `unexcludedBlock`: a block on `All` users with no user, group or role excluded.
//! - `unresolvedReference`: a user, group or role id the directory does not hold, a named
//!   location the tenant does not define, a strength it does not know.
//! - `baseline`: MFA for everyone, phishing-resistant MFA for administrators, legacy clients
//!   blocked, registering security information protected.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::context::{SignInContext, Target, UserKind};
use crate::enums::AnalysisReason;
use crate::enums::{
    AuthenticationMethodMode, ClientAppType, DevicePlatform, PolicyState, RiskLevel, UserAction,
};
use crate::evaluate::{Decision, Outcome, evaluate};
use crate::location::{IpNamedLocation, NamedLocation};
use crate::model::{
    ALL, APP_GROUP_ADMIN_PORTALS, APP_GROUP_OFFICE365, ApplicationsCondition, CLIENT_APPLICATIONS,
    ConditionalAccessPolicy, Extra, GUESTS_OR_EXTERNAL_USERS, NONE, UsersCondition,
};
use crate::policy_set::{Control, PolicySet};
use crate::strength::{AuthenticationStrength, SatisfiedMethod};

/// The user id offline witnesses give a person no policy names.
pub const ANYONE_ELSE: &str = "anyone-else";
/// The application id witnesses give an application no policy names.
pub const ANY_OTHER_APP: &str = "any-other-app";
/// Template id of Global Administrator.
pub const GLOBAL_ADMINISTRATOR_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Client id of Portcullis's Admin Portal (core owns it; repeated here because this crate may
/// not depend on core, and callers may pass another).
pub const ADMIN_PORTAL_APP_ID: &str = "005cbd19-3de0-4238-a5c6-97d038f6c66d";

/// Roles Entra counts as privileged, by template id, with their names.
pub const PRIVILEGED_ROLES: &[(&str, &str)] = &[
    (GLOBAL_ADMINISTRATOR_ROLE, "Global Administrator"),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
    (
        "0526716b-113d-4c15-b2c8-68e3c22b9f80",
        "Authentication Policy Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    (
        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        "Billing Administrator",
    ),
];

fn is_privileged(role: &str) -> bool {
    PRIVILEGED_ROLES
        .iter()
        .any(|(id, _)| id.eq_ignore_ascii_case(role.trim()))
}

fn role_name(role: &str) -> String {
    PRIVILEGED_ROLES
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(role.trim()))
        .map_or_else(|| format!("role {role}"), |(_, name)| (*name).to_owned())
}

/// One bit per policy of the set.
type Bits = Box<[u64]>;

fn bit(bits: &[u64], index: usize) -> bool {
    bits.get(index / 64)
        .is_some_and(|w| w & (1 << (index % 64)) != 0)
}

fn and(a: &[u64], b: &[u64]) -> Bits {
    a.iter().zip(b).map(|(x, y)| x & y).collect()
}

fn or_into(into: &mut [u64], other: &[u64]) {
    for (x, y) in into.iter_mut().zip(other) {
        *x |= y;
    }
}

/// A person as the directory knows them: what the engine needs, and what they can present.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonFacts {
    pub user_id: String,
    /// Transitive group memberships.
    pub group_ids: Vec<String>,
    /// Template ids of roles actively assigned.
    pub role_template_ids: Vec<String>,
    pub guest: bool,
    /// The methods they have registered (a passkey with its AAGUID) and can present.
    pub methods: Vec<SatisfiedMethod>,
}

impl PersonFacts {
    fn holds(&self, role: &str) -> bool {
        self.role_template_ids
            .iter()
            .any(|r| r.trim().eq_ignore_ascii_case(role))
    }
}

/// An application the directory holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Application {
    pub app_id: String,
    pub display_name: String,
}

/// The directory the analysis runs against.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Directory {
    pub people: Vec<PersonFacts>,
    pub group_ids: Vec<String>,
    /// Role template ids that exist; `None` when the source does not say (then role references
    /// are not checked).
    pub role_template_ids: Option<Vec<String>>,
    pub applications: Vec<Application>,
}

/// What to analyse.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisInput<'a> {
    pub set: &'a PolicySet,
    /// Without one, person classes are the ones the policies tell apart (see the module docs).
    pub directory: Option<&'a Directory>,
    /// The application whose loss is a high lockout.
    pub admin_portal_app_id: &'a str,
}

impl<'a> AnalysisInput<'a> {
    pub fn new(set: &'a PolicySet) -> Self {
        AnalysisInput {
            set,
            directory: None,
            admin_portal_app_id: ADMIN_PORTAL_APP_ID,
        }
    }
}

/// A finding's stable kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    Lockout,
    Gap,
    DeadPolicy,
    ShadowedPolicy,
    UnexcludedBlock,
    UnresolvedReference,
    Baseline,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Lockout => "lockout",
            FindingKind::Gap => "gap",
            FindingKind::DeadPolicy => "deadPolicy",
            FindingKind::ShadowedPolicy => "shadowedPolicy",
            FindingKind::UnexcludedBlock => "unexcludedBlock",
            FindingKind::UnresolvedReference => "unresolvedReference",
            FindingKind::Baseline => "baseline",
        }
    }
}

/// How much a finding matters; the CLI exits 1 when any is high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// A policy a finding is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    pub id: String,
    pub display_name: String,
}

/// One concrete sign-in, in the terms of `portcullis policy what-if`'s flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Witness {
    pub user: String,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub guest: bool,
    pub target: Target,
    /// `None`: a platform the user agent does not reveal (`unknown`).
    pub platform: Option<DevicePlatform>,
    pub client_app: ClientAppType,
    pub ip: Option<IpAddr>,
    pub methods: Vec<SatisfiedMethod>,
    pub sign_in_risk: RiskLevel,
    pub user_risk: RiskLevel,
}

fn method_text(method: &SatisfiedMethod) -> String {
    match &method.aaguid {
        Some(aaguid) => format!("{}:{aaguid}", method.mode),
        None => method.mode.to_string(),
    }
}

impl Witness {
    /// The sign-in as What-If builds it from the same flags (named locations from the address).
    pub fn to_context(&self, set: &PolicySet) -> SignInContext {
        let mut ctx = SignInContext::new(self.user.clone(), self.target.clone());
        ctx.group_ids = self.groups.clone();
        ctx.role_template_ids = self.roles.clone();
        ctx.user_kind = if self.guest {
            UserKind::Guest
        } else {
            UserKind::Member
        };
        ctx.platform = self.platform.clone();
        ctx.client_app_type = self.client_app.clone();
        ctx.ip_address = self.ip;
        if let Some(ip) = self.ip {
            ctx.named_locations = set.locations_for(ip, None);
        }
        ctx.methods = self.methods.clone();
        ctx.sign_in_risk = self.sign_in_risk.clone();
        ctx.user_risk = self.user_risk.clone();
        ctx
    }

    fn platform_text(&self) -> String {
        self.platform
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string)
    }

    /// `{"user", "groups", "roles", "guest", "app" | "userAction" | "authContext", "platform",
    /// "clientApp", "ip", "methods", "signInRisk", "userRisk"}` with the flags' values.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "user": self.user,
            "groups": self.groups,
            "roles": self.roles,
            "guest": self.guest,
        });
        let (key, value) = match &self.target {
            Target::Application(app) => ("app", app.clone()),
            Target::UserAction(action) => ("userAction", action.to_string()),
            Target::AuthenticationContext(context) => ("authContext", context.clone()),
        };
        out[key] = Value::String(value);
        out["platform"] = Value::String(self.platform_text());
        out["clientApp"] = Value::String(self.client_app.to_string());
        out["ip"] = self
            .ip
            .map_or(Value::Null, |ip| Value::String(ip.to_string()));
        out["methods"] = self.methods.iter().map(method_text).collect();
        out["signInRisk"] = Value::String(self.sign_in_risk.to_string());
        out["userRisk"] = Value::String(self.user_risk.to_string());
        out
    }

    /// The `portcullis policy what-if` flags that describe this sign-in (without the files).
    pub fn what_if_args(&self) -> Vec<String> {
        let mut args = vec!["--user".to_owned(), self.user.clone()];
        for group in &self.groups {
            args.extend(["--group".to_owned(), group.clone()]);
        }
        for role in &self.roles {
            args.extend(["--role".to_owned(), role.clone()]);
        }
        if self.guest {
            args.push("--guest".to_owned());
        }
        match &self.target {
            Target::Application(app) => args.extend(["--app".to_owned(), app.clone()]),
            Target::UserAction(action) => {
                args.extend(["--user-action".to_owned(), action.to_string()])
            }
            Target::AuthenticationContext(c) => {
                args.extend(["--auth-context".to_owned(), c.clone()])
            }
        }
        args.extend(["--platform".to_owned(), self.platform_text()]);
        args.extend(["--client-app".to_owned(), self.client_app.to_string()]);
        if let Some(ip) = self.ip {
            args.extend(["--ip".to_owned(), ip.to_string()]);
        }
        if !self.methods.is_empty() {
            let methods: Vec<String> = self.methods.iter().map(method_text).collect();
            args.extend(["--methods".to_owned(), methods.join(",")]);
        }
        args.extend(["--sign-in-risk".to_owned(), self.sign_in_risk.to_string()]);
        args.extend(["--user-risk".to_owned(), self.user_risk.to_string()]);
        args
    }
}

/// One finding, proved by its witness.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub message: String,
    pub policies: Vec<PolicyRef>,
    pub witness: Witness,
    /// What What-If decides for the witness.
    pub decision: Outcome,
}

impl Finding {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind.as_str(),
            "severity": self.severity.as_str(),
            "message": self.message,
            "policies": self.policies.iter().map(|p| json!({"id": p.id, "displayName": p.display_name})).collect::<Vec<_>>(),
            "witness": self.witness.to_json(),
            "decision": self.decision.name(),
        })
    }
}

/// How much of the space was walked, for reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnalysisStats {
    pub person_classes: usize,
    pub targets: usize,
    pub condition_classes: usize,
    pub method_classes: usize,
    /// Sign-in combinations covered (person classes × targets × condition classes).
    pub combinations: u64,
    /// Calls to `evaluate` on the real policy set and the sets without one policy.
    pub evaluations: u64,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub policies: usize,
    pub findings: Vec<Finding>,
    pub stats: AnalysisStats,
}

impl Analysis {
    /// `{"policies": N, "findings": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "policies": self.policies,
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
        })
    }

    pub fn has_high(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::High)
    }
}

/// Whether a person can reach a target.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    /// A sign-in that gets through (granted, or asked only for what the person can present).
    Reachable(Witness),
    /// Every platform, location and client ends in a block or in requirements the person
    /// cannot present; one such sign-in and its decision.
    LockedOut {
        witness: Witness,
        decision: Box<Decision>,
    },
}

/// The dimensions a policy's conditions are asked about one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Users,
    Target,
    Platform,
    Location,
    Client,
    SignInRisk,
    UserRisk,
    Device,
}

/// A copy of the policy that keeps only `keep`'s condition and is enabled, so evaluating it
/// says whether that one condition matches. Members the engine cannot evaluate only ever make
/// a policy fail closed where its other conditions match, so they are left out, except the
/// workload-identity member, which decides whether the users condition can match at all.
fn neutral_policy(
    policy: &ConditionalAccessPolicy,
    keep: Dim,
    location_skipped: bool,
) -> ConditionalAccessPolicy {
    let mut copy = policy.clone();
    copy.state = PolicyState::Enabled;
    copy.extra = Extra::new();
    let conditions = &mut copy.conditions;
    let workload = conditions.extra.get(CLIENT_APPLICATIONS).cloned();
    conditions.extra = Extra::new();
    if keep == Dim::Users {
        if let Some(workload) = workload {
            conditions
                .extra
                .insert(CLIENT_APPLICATIONS.to_owned(), workload);
        }
        if let Some(users) = &mut conditions.users {
            users.extra = Extra::new();
        }
    } else {
        conditions.users = Some(UsersCondition {
            include_users: vec![ALL.to_owned()],
            ..UsersCondition::default()
        });
    }
    if keep == Dim::Target {
        if let Some(apps) = &mut conditions.applications {
            apps.extra = Extra::new();
        }
    } else {
        conditions.applications = Some(ApplicationsCondition {
            include_applications: vec![ALL.to_owned()],
            ..ApplicationsCondition::default()
        });
    }
    match (&mut conditions.platforms, keep == Dim::Platform) {
        (Some(p), true) => p.extra = Extra::new(),
        (slot, _) => *slot = None,
    }
    match (
        &mut conditions.locations,
        keep == Dim::Location && !location_skipped,
    ) {
        (Some(l), true) => l.extra = Extra::new(),
        (slot, _) => *slot = None,
    }
    if keep != Dim::Client {
        conditions.client_app_types.clear();
    }
    if keep != Dim::SignInRisk {
        conditions.sign_in_risk_levels.clear();
    }
    if keep != Dim::UserRisk {
        conditions.user_risk_levels.clear();
    }
    match (&mut conditions.devices, keep == Dim::Device) {
        (Some(d), true) => d.extra = Extra::new(),
        (slot, _) => *slot = None,
    }
    copy
}

/// The set where only `keep`'s conditions are left. For locations, a location the engine cannot
/// evaluate or that is not defined is read, as the engine reads it when it does not fail closed
/// on it, as containing no address.
fn neutral_set(set: &PolicySet, keep: Dim) -> PolicySet {
    let policies: Vec<ConditionalAccessPolicy> = set
        .policies()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let skipped = set
                .unevaluable_condition(i)
                .is_some_and(|(_, c)| c == AnalysisReason::Location);
            neutral_policy(p, keep, skipped)
        })
        .collect();
    let mut locations: Vec<NamedLocation> = Vec::new();
    if keep == Dim::Location {
        let empty = |id: &str| {
            NamedLocation::Ip(IpNamedLocation {
                id: id.to_owned(),
                display_name: id.to_owned(),
                ..IpNamedLocation::default()
            })
        };
        for location in set.named_locations() {
            if location.is_evaluable() {
                locations.push(location.clone());
            } else {
                locations.push(empty(location.id()));
            }
        }
        for policy in &policies {
            if let Some(l) = &policy.conditions.locations {
                for id in l.include_locations.iter().chain(&l.exclude_locations) {
                    let id = id.trim();
                    let special =
                        id.eq_ignore_ascii_case(ALL) || id.eq_ignore_ascii_case("AllTrusted");
                    let known = locations
                        .iter()
                        .any(|l| l.id().trim().eq_ignore_ascii_case(id));
                    if !special && !known {
                        locations.push(empty(id));
                    }
                }
            }
        }
    }
    PolicySet::new(policies, set.strengths().to_vec(), locations)
}

fn applies_bits(decision: &Decision, words: usize) -> Bits {
    let mut bits = vec![0u64; words];
    for (i, t) in decision.trace.iter().enumerate() {
        if t.applies {
            bits[i / 64] |= 1 << (i % 64);
        }
    }
    bits.into_boxed_slice()
}

/// A sign-in's conditions other than who and what.
#[derive(Debug, Clone)]
struct Conditions {
    platform: Option<DevicePlatform>,
    client_app: ClientAppType,
    ip: IpAddr,
    /// The named locations `ip` is in, as What-If works them out.
    named_locations: Vec<String>,
    /// A legacy client (Exchange ActiveSync, other) the policies treat like `client_app`.
    legacy_client: Option<ClientAppType>,
    sign_in_risk: RiskLevel,
    user_risk: RiskLevel,
    /// Risk `none` for both: what every live Portcullis sign-in has.
    live: bool,
    bits: Bits,
}

#[derive(Debug, Clone)]
struct TargetClass {
    target: Target,
    bits: Bits,
}

/// The condition space of a policy set: the classes of every dimension, with the policies each
/// class matches. Build it once per policy set; [`ConditionSpace::can_reach`] is cheap after.
#[derive(Debug, Clone)]
pub struct ConditionSpace {
    words: usize,
    enforced: Bits,
    live_policies: Bits,
    persons: PolicySet,
    targets: Vec<TargetClass>,
    conditions: Vec<Conditions>,
    /// Per dimension, the union of what its classes match: a policy outside one is dead there.
    dimension_unions: Vec<(&'static str, Bits)>,
    strengths: Vec<AuthenticationStrength>,
    method_classes: Vec<Vec<SatisfiedMethod>>,
    /// Everything a person can register in Portcullis: every method, a passkey of each AAGUID
    /// class; no Temporary Access Pass.
    everything: Vec<SatisfiedMethod>,
    /// Per policy, the number of its decision profile when it is enforced: enforced policies
    /// with equal profiles weigh alike in a decision (`evaluate::decision_profile`).
    profiles: Vec<Option<usize>>,
    profile_words: usize,
    /// Per target, the conditions that tell its sign-ins apart, in order: the first of each
    /// class meeting the same enforced policies there, with the same liveness and legacy member.
    target_conditions: Vec<Vec<usize>>,
}

const PLATFORMS: [Option<DevicePlatform>; 7] = [
    Some(DevicePlatform::Windows),
    Some(DevicePlatform::MacOS),
    Some(DevicePlatform::IOS),
    Some(DevicePlatform::Android),
    Some(DevicePlatform::Linux),
    Some(DevicePlatform::WindowsPhone),
    None,
];

const CLIENTS: [ClientAppType; 4] = [
    ClientAppType::Browser,
    ClientAppType::MobileAppsAndDesktopClients,
    ClientAppType::ExchangeActiveSync,
    ClientAppType::OtherClients,
];

fn base_context(target: Target) -> SignInContext {
    SignInContext::new(ANYONE_ELSE, target)
}

fn other_app() -> Target {
    Target::Application(ANY_OTHER_APP.to_owned())
}

/// Addresses at every boundary of every range, so that each set of named locations an address
/// can fall in has one; documentation addresses first, so "elsewhere" reads as one.
fn candidate_addresses(set: &PolicySet) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = vec![
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
    ];
    for location in set.named_locations() {
        if let NamedLocation::Ip(l) = location {
            for range in &l.ip_ranges {
                let Ok(net) = range.network() else { continue };
                out.push(net.network());
                let after = match net.broadcast() {
                    IpAddr::V4(v4) => u32::from(v4)
                        .checked_add(1)
                        .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
                    IpAddr::V6(v6) => u128::from(v6)
                        .checked_add(1)
                        .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
                };
                out.extend(after);
            }
        }
    }
    out
}

fn risk_levels(mentioned: impl Iterator<Item = RiskLevel>) -> Vec<RiskLevel> {
    let mut levels = vec![RiskLevel::None];
    for level in mentioned {
        let known = matches!(
            level,
            RiskLevel::Low | RiskLevel::Medium | RiskLevel::High | RiskLevel::Hidden
        );
        if known && !levels.contains(&level) {
            levels.push(level);
        }
    }
    levels
}

/// Keeps the first member of each class of equal bits.
fn classes<T: Clone>(items: Vec<(T, Bits)>) -> Vec<(T, Bits)> {
    let mut seen: HashMap<Bits, ()> = HashMap::new();
    items
        .into_iter()
        .filter(|(_, bits)| seen.insert(bits.clone(), ()).is_none())
        .collect()
}

impl ConditionSpace {
    /// Builds the space of `set`; `extra_targets` are applications to cover beyond those the
    /// policies name (the directory's, the Admin Portal).
    pub fn new(set: &PolicySet, extra_targets: &[Target]) -> Self {
        let n = set.policies().len();
        let words = n.div_ceil(64).max(1);
        let mut enforced = vec![0u64; words];
        let mut live_policies = vec![0u64; words];
        for (i, p) in set.policies().iter().enumerate() {
            if p.state.is_enforced() {
                enforced[i / 64] |= 1 << (i % 64);
            }
            if p.state.is_enforced() || p.state.is_report_only() {
                live_policies[i / 64] |= 1 << (i % 64);
            }
        }
        let ask = |dim: Dim, contexts: Vec<SignInContext>| -> Vec<Bits> {
            let neutral = neutral_set(set, dim);
            contexts
                .iter()
                .map(|ctx| applies_bits(&evaluate(ctx, &neutral), words))
                .collect()
        };

        // What: the targets policies name, plus the caller's.
        let mut targets: Vec<Target> = Vec::new();
        let mut push_target = |target: Target| {
            if !targets.contains(&target) {
                targets.push(target);
            }
        };
        for t in extra_targets {
            push_target(t.clone());
        }
        for policy in set.policies() {
            if let Some(apps) = &policy.conditions.applications {
                for app in apps
                    .include_applications
                    .iter()
                    .chain(&apps.exclude_applications)
                {
                    let app = app.trim();
                    let special = [ALL, NONE, APP_GROUP_OFFICE365, APP_GROUP_ADMIN_PORTALS]
                        .iter()
                        .any(|s| app.eq_ignore_ascii_case(s));
                    if !special && !app.is_empty() {
                        let target = Target::Application(app.to_owned());
                        push_target(target);
                    }
                }
                for action in &apps.include_user_actions {
                    if let Some(action) = UserAction::from_urn(action) {
                        let target = Target::UserAction(action);
                        push_target(target);
                    }
                }
                for context in &apps.include_authentication_context_class_references {
                    if crate::whatif::is_auth_context_id(context.trim()) {
                        let target = Target::AuthenticationContext(context.trim().to_owned());
                        push_target(target);
                    }
                }
            }
        }
        push_target(other_app());
        push_target(Target::UserAction(UserAction::RegisterSecurityInformation));
        let target_bits = ask(
            Dim::Target,
            targets.iter().map(|t| base_context(t.clone())).collect(),
        );
        let targets: Vec<TargetClass> = targets
            .into_iter()
            .zip(target_bits)
            .map(|(target, bits)| TargetClass { target, bits })
            .collect();

        // Platforms and clients.
        let platforms = classes(
            PLATFORMS
                .iter()
                .cloned()
                .zip(ask(
                    Dim::Platform,
                    PLATFORMS
                        .iter()
                        .map(|p| {
                            let mut ctx = base_context(other_app());
                            ctx.platform = p.clone();
                            ctx
                        })
                        .collect(),
                ))
                .collect(),
        );
        let all_clients: Vec<(ClientAppType, Bits)> = CLIENTS
            .iter()
            .cloned()
            .zip(ask(
                Dim::Client,
                CLIENTS
                    .iter()
                    .map(|c| {
                        let mut ctx = base_context(other_app());
                        ctx.client_app_type = c.clone();
                        ctx
                    })
                    .collect(),
            ))
            .collect();
        let legacy_of = |bits: &Bits| {
            all_clients
                .iter()
                .find(|(c, b)| {
                    b == bits
                        && matches!(
                            c,
                            ClientAppType::ExchangeActiveSync | ClientAppType::OtherClients
                        )
                })
                .map(|(c, _)| c.clone())
        };
        let clients = classes(all_clients.clone());

        // Locations: one address per set of named locations.
        let mut addresses = candidate_addresses(set);
        let mut seen_sets: HashMap<Vec<String>, ()> = HashMap::new();
        addresses.retain(|ip| {
            let mut inside = set.locations_for(*ip, None);
            inside.sort();
            seen_sets.insert(inside, ()).is_none()
        });
        let location_bits = ask(
            Dim::Location,
            addresses
                .iter()
                .map(|ip| {
                    let mut ctx = base_context(other_app());
                    ctx.ip_address = Some(*ip);
                    ctx.named_locations = set.locations_for(*ip, None);
                    ctx
                })
                .collect(),
        );
        let locations = classes(addresses.iter().copied().zip(location_bits).collect());

        // Risk.
        let sign_in_levels = risk_levels(
            set.policies()
                .iter()
                .flat_map(|p| p.conditions.sign_in_risk_levels.clone()),
        );
        let user_levels = risk_levels(
            set.policies()
                .iter()
                .flat_map(|p| p.conditions.user_risk_levels.clone()),
        );
        let sign_in_risks = classes(
            sign_in_levels
                .iter()
                .cloned()
                .zip(ask(
                    Dim::SignInRisk,
                    sign_in_levels
                        .iter()
                        .map(|l| {
                            let mut ctx = base_context(other_app());
                            ctx.sign_in_risk = l.clone();
                            ctx
                        })
                        .collect(),
                ))
                .collect(),
        );
        let user_risks = classes(
            user_levels
                .iter()
                .cloned()
                .zip(ask(
                    Dim::UserRisk,
                    user_levels
                        .iter()
                        .map(|l| {
                            let mut ctx = base_context(other_app());
                            ctx.user_risk = l.clone();
                            ctx
                        })
                        .collect(),
                ))
                .collect(),
        );
        let device = ask(Dim::Device, vec![base_context(other_app())])
            .pop()
            .unwrap_or_default();

        let union = |bits: &mut dyn Iterator<Item = &Bits>| {
            let mut u = vec![0u64; words];
            for b in bits {
                or_into(&mut u, b);
            }
            u.into_boxed_slice()
        };
        let dimension_unions = vec![
            (
                "no application, user action or authentication context",
                union(&mut targets.iter().map(|t| &t.bits)),
            ),
            (
                "no device platform",
                union(&mut platforms.iter().map(|(_, b)| b)),
            ),
            (
                "no client app type",
                union(&mut clients.iter().map(|(_, b)| b)),
            ),
            (
                "no address in any location",
                union(&mut locations.iter().map(|(_, b)| b)),
            ),
            (
                "no sign-in risk level",
                union(&mut sign_in_risks.iter().map(|(_, b)| b)),
            ),
            (
                "no user risk level",
                union(&mut user_risks.iter().map(|(_, b)| b)),
            ),
            (
                "an unregistered device (the only kind Portcullis sign-ins come from)",
                device.clone(),
            ),
        ];

        // Every combination of the dimensions other than who and what, one per distinct set.
        let mut conditions: Vec<Conditions> = Vec::new();
        let mut seen: HashMap<(Bits, bool, bool), ()> = HashMap::new();
        for (platform, pb) in &platforms {
            for (client, cb) in &clients {
                let pc = and(&and(pb, cb), &device);
                for (ip, lb) in &locations {
                    let pcl = and(&pc, lb);
                    for (sr, sb) in &sign_in_risks {
                        let with_sr = and(&pcl, sb);
                        for (ur, ub) in &user_risks {
                            let bits = and(&with_sr, ub);
                            let live = *sr == RiskLevel::None && *ur == RiskLevel::None;
                            let legacy = legacy_of(cb).is_some();
                            if seen.insert((bits.clone(), live, legacy), ()).is_some() {
                                continue;
                            }
                            conditions.push(Conditions {
                                platform: platform.clone(),
                                client_app: client.clone(),
                                ip: *ip,
                                named_locations: set.locations_for(*ip, None),
                                legacy_client: legacy_of(cb),
                                sign_in_risk: sr.clone(),
                                user_risk: ur.clone(),
                                live,
                                bits,
                            });
                        }
                    }
                }
            }
        }
        // Live combinations first: witnesses then read like real sign-ins.
        conditions.sort_by_key(|c| !c.live);

        let strengths = referenced_strengths(set);
        let (method_classes, everything) = method_classes(&strengths);
        let mut numbers: HashMap<String, usize> = HashMap::new();
        let profiles: Vec<Option<usize>> = (0..n)
            .map(|i| {
                bit(&enforced, i).then(|| {
                    let next = numbers.len();
                    *numbers
                        .entry(crate::evaluate::decision_profile(set, i))
                        .or_insert(next)
                })
            })
            .collect();
        let profile_words = numbers.len().div_ceil(64).max(1);
        let target_conditions = targets
            .iter()
            .map(|t| {
                let mut seen: HashMap<(Bits, bool, bool), ()> = HashMap::new();
                (0..conditions.len())
                    .filter(|&c| {
                        let cond = &conditions[c];
                        let bits = and(&and(&t.bits, &cond.bits), &enforced);
                        let key = (bits, cond.live, cond.legacy_client.is_some());
                        seen.insert(key, ()).is_none()
                    })
                    .collect()
            })
            .collect();
        ConditionSpace {
            words,
            enforced: enforced.into_boxed_slice(),
            live_policies: live_policies.into_boxed_slice(),
            persons: neutral_set(set, Dim::Users),
            targets,
            conditions,
            dimension_unions,
            strengths,
            method_classes,
            everything,
            profiles,
            profile_words,
            target_conditions,
        }
    }

    /// The decision profiles of the enforced policies among `applying`: sign-ins with the same
    /// target kind, methods and profiles are decided alike.
    fn signature(&self, applying: &[u64]) -> Bits {
        let mut out = vec![0u64; self.profile_words];
        for (w, word) in applying.iter().enumerate() {
            let mut rest = *word;
            while rest != 0 {
                let i = w * 64 + rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if let Some(Some(p)) = self.profiles.get(i) {
                    out[p / 64] |= 1 << (p % 64);
                }
            }
        }
        out.into_boxed_slice()
    }

    /// Which policies' users conditions a person meets.
    fn person_bits(&self, person: &PersonFacts) -> Bits {
        let mut ctx = base_context(other_app());
        ctx.user_id = person.user_id.clone();
        ctx.group_ids = person.group_ids.clone();
        ctx.role_template_ids = person.role_template_ids.clone();
        ctx.user_kind = if person.guest {
            UserKind::Guest
        } else {
            UserKind::Member
        };
        applies_bits(&evaluate(&ctx, &self.persons), self.words)
    }

    /// Which strengths a method set meets: method sets that meet the same ones are decided alike.
    fn method_signature(&self, methods: &[SatisfiedMethod]) -> Vec<bool> {
        self.strengths
            .iter()
            .map(|s| s.is_satisfied_by(methods))
            .collect()
    }

    /// Whether `person` can reach `target` on some platform, location and client, judged by the
    /// engine on the real policy set (`set` must be the one the space was built from).
    pub fn can_reach(&self, set: &PolicySet, person: &PersonFacts, target: &Target) -> Reach {
        let mut walk = Walk::new(set, self);
        let class = walk.person_class(person.clone(), String::new(), person.methods.clone());
        let index = match self.targets.iter().position(|t| t.target == *target) {
            Some(i) => i,
            None => return self.reach_unlisted(set, person, target),
        };
        walk.reach(&class, index)
    }

    /// A target the space does not list behaves like "any other application" except for its
    /// id; ask the engine directly on every live combination.
    fn reach_unlisted(&self, set: &PolicySet, person: &PersonFacts, target: &Target) -> Reach {
        let mut first: Option<(Witness, Decision)> = None;
        for cond in self.conditions.iter().filter(|c| c.live) {
            let witness = witness_of(person, target, cond, person.methods.clone());
            let decision = evaluate(&witness.to_context(set), set);
            if reachable(&decision.outcome) {
                return Reach::Reachable(witness);
            }
            first.get_or_insert((witness, decision));
        }
        match first {
            Some((witness, decision)) => Reach::LockedOut {
                witness,
                decision: Box::new(decision),
            },
            None => unreachable_space(person, target, set),
        }
    }
}

fn unreachable_space(person: &PersonFacts, target: &Target, set: &PolicySet) -> Reach {
    // The space always holds at least one live combination (risk none, a platform, a client and
    // an address); this is only here so the function is total.
    let witness = Witness {
        user: person.user_id.clone(),
        groups: person.group_ids.clone(),
        roles: person.role_template_ids.clone(),
        guest: person.guest,
        target: target.clone(),
        platform: None,
        client_app: ClientAppType::Browser,
        ip: None,
        methods: person.methods.clone(),
        sign_in_risk: RiskLevel::None,
        user_risk: RiskLevel::None,
    };
    let decision = evaluate(&witness.to_context(set), set);
    if reachable(&decision.outcome) {
        Reach::Reachable(witness)
    } else {
        Reach::LockedOut {
            witness,
            decision: Box::new(decision),
        }
    }
}

fn target_label(target: &Target) -> String {
    match target {
        Target::Application(app) if app == ANY_OTHER_APP => "any other application".to_owned(),
        Target::Application(app) => format!("application {app}"),
        Target::UserAction(action) => format!("user action {action}"),
        Target::AuthenticationContext(c) => format!("authentication context {c}"),
    }
}

/// The distinct strengths the set's grant controls ask for (`mfa` is Multifactor).
fn referenced_strengths(set: &PolicySet) -> Vec<AuthenticationStrength> {
    let mut out: Vec<AuthenticationStrength> = Vec::new();
    for i in 0..set.policies().len() {
        for control in set.configured_controls(i) {
            if let Some(strength) = control.strength()
                && !out.iter().any(|s| s == strength)
            {
                out.push(strength.clone());
            }
        }
    }
    out
}

/// The method classes: every subset of the methods Portcullis can perform (passkeys one per
/// AAGUID class), kept when it meets a set of strengths no earlier subset met. Also returns
/// everything a person can register (all of them but the Temporary Access Pass).
fn method_classes(
    strengths: &[AuthenticationStrength],
) -> (Vec<Vec<SatisfiedMethod>>, Vec<SatisfiedMethod>) {
    // AAGUIDs grouped by the allow-lists they are on: AAGUIDs on the same lists are alike.
    let mut lists: Vec<Vec<String>> = Vec::new();
    for s in strengths {
        for config in s.combination_configurations.iter().flatten() {
            if let Some(allowed) = &config.allowed_aaguids {
                lists.push(
                    allowed
                        .iter()
                        .map(|a| a.trim().to_ascii_lowercase())
                        .collect(),
                );
            }
        }
    }
    let mut aaguid_classes: Vec<(Vec<bool>, String)> = Vec::new();
    for aaguid in lists.iter().flatten() {
        let on: Vec<bool> = lists.iter().map(|l| l.contains(aaguid)).collect();
        if !aaguid_classes.iter().any(|(o, _)| *o == on) {
            aaguid_classes.push((on, aaguid.clone()));
        }
    }
    let mut passkeys: Vec<SatisfiedMethod> = aaguid_classes
        .into_iter()
        .map(|(_, a)| SatisfiedMethod::passkey(a))
        .collect();
    // A passkey on no allow-list.
    passkeys.push(SatisfiedMethod::passkey(
        "00000000-0000-0000-0000-000000000000",
    ));
    let mut candidates = vec![
        SatisfiedMethod::new(AuthenticationMethodMode::Password),
        SatisfiedMethod::new(AuthenticationMethodMode::SoftwareOath),
    ];
    candidates.extend(passkeys.iter().cloned());
    let everything = candidates.clone();
    candidates.push(SatisfiedMethod::new(
        AuthenticationMethodMode::TemporaryAccessPassOneTime,
    ));
    candidates.push(SatisfiedMethod::new(
        AuthenticationMethodMode::TemporaryAccessPassMultiUse,
    ));
    // Beyond 16 candidates the subsets would be too many; AAGUID classes past that are
    // merged into the last one kept, which only ever adds passkeys to a class.
    candidates.truncate(16);
    let mut out: Vec<Vec<SatisfiedMethod>> = Vec::new();
    let mut seen: HashMap<Vec<bool>, ()> = HashMap::new();
    for mask in 0u32..(1 << candidates.len()) {
        let subset: Vec<SatisfiedMethod> = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, m)| m.clone())
            .collect();
        let signature: Vec<bool> = strengths
            .iter()
            .map(|s| s.is_satisfied_by(&subset))
            .collect();
        if seen.insert(signature, ()).is_none() {
            out.push(subset);
        }
    }
    (out, everything)
}

/// Granted, or asked only for what a person can always do (accept terms, change a password).
fn reachable(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Grant => true,
        Outcome::Block { .. } => false,
        Outcome::Requirements { requirements } => requirements.iter().all(|r| {
            r.alternatives
                .iter()
                .any(|c| matches!(c, Control::TermsOfUse(_) | Control::PasswordChange))
        }),
    }
}

fn witness_of(
    person: &PersonFacts,
    target: &Target,
    cond: &Conditions,
    methods: Vec<SatisfiedMethod>,
) -> Witness {
    Witness {
        user: person.user_id.clone(),
        groups: person.group_ids.clone(),
        roles: person.role_template_ids.clone(),
        guest: person.guest,
        target: target.clone(),
        platform: cond.platform.clone(),
        client_app: cond.client_app.clone(),
        ip: Some(cond.ip),
        methods,
        sign_in_risk: cond.sign_in_risk.clone(),
        user_risk: cond.user_risk.clone(),
    }
}

/// A class of people: one representative, what it stands for, what it can present.
#[derive(Debug, Clone)]
struct PersonClass {
    facts: PersonFacts,
    label: String,
    bits: Bits,
    /// What the class can present when reaching an application.
    methods: Vec<SatisfiedMethod>,
    methods_id: usize,
    global_admin: bool,
    privileged: bool,
    everyone: bool,
    people: usize,
}

/// The walk over combinations, with the engine's answers memoised by what decides them.
struct Walk<'a> {
    set: &'a PolicySet,
    space: &'a ConditionSpace,
    signatures: Vec<Vec<bool>>,
    memo: HashMap<(Bits, bool, usize), Arc<Decision>>,
    evaluations: u64,
    #[cfg(debug_assertions)]
    hits: u64,
}

/// See [`Walk::sample`].
#[cfg(debug_assertions)]
const VERIFY_EVERY: u64 = 17;

impl<'a> Walk<'a> {
    fn new(set: &'a PolicySet, space: &'a ConditionSpace) -> Self {
        Walk {
            set,
            space,
            signatures: Vec::new(),
            memo: HashMap::new(),
            evaluations: 0,
            #[cfg(debug_assertions)]
            hits: 0,
        }
    }

    fn methods_id(&mut self, methods: &[SatisfiedMethod]) -> usize {
        let signature = self.space.method_signature(methods);
        match self.signatures.iter().position(|s| *s == signature) {
            Some(i) => i,
            None => {
                self.signatures.push(signature);
                self.signatures.len() - 1
            }
        }
    }

    fn person_class(
        &mut self,
        facts: PersonFacts,
        label: String,
        methods: Vec<SatisfiedMethod>,
    ) -> PersonClass {
        let bits = self.space.person_bits(&facts);
        let methods_id = self.methods_id(&methods);
        PersonClass {
            global_admin: facts.holds(GLOBAL_ADMINISTRATOR_ROLE),
            privileged: facts.role_template_ids.iter().any(|r| is_privileged(r)),
            everyone: false,
            people: 1,
            facts,
            label,
            bits,
            methods,
            methods_id,
        }
    }

    /// The witness sign-in for a person class at a target and conditions with `methods`
    /// performed, and the engine's decision for exactly that sign-in (the memo's would be the
    /// same but could name other policies of the same profile).
    fn decide(
        &mut self,
        person: &PersonClass,
        target: usize,
        cond: usize,
        methods: &[SatisfiedMethod],
    ) -> (Decision, Witness) {
        let witness = self.witness(person, target, cond, methods);
        let decision = evaluate(&witness.to_context(self.set), self.set);
        self.evaluations += 1;
        (decision, witness)
    }

    fn witness(
        &self,
        person: &PersonClass,
        target: usize,
        cond: usize,
        methods: &[SatisfiedMethod],
    ) -> Witness {
        witness_of(
            &person.facts,
            &self.space.targets[target].target,
            &self.space.conditions[cond],
            methods.to_vec(),
        )
    }

    /// In debug builds, whether to check this memo answer against the engine asked about the
    /// very sign-in: one in [`VERIFY_EVERY`], so every test that analyses also tests the memo's
    /// claim that equal decision profiles decide alike.
    #[cfg(debug_assertions)]
    fn sample(&mut self) -> bool {
        self.hits += 1;
        self.hits.is_multiple_of(VERIFY_EVERY)
    }

    /// The same sign-in `Witness::to_context` builds, without parsing the ranges again.
    fn context(
        &self,
        person: &PersonClass,
        target: usize,
        cond: usize,
        methods: &[SatisfiedMethod],
    ) -> SignInContext {
        let t = &self.space.targets[target];
        let c = &self.space.conditions[cond];
        let mut ctx = SignInContext::new(person.facts.user_id.clone(), t.target.clone());
        ctx.group_ids = person.facts.group_ids.clone();
        ctx.role_template_ids = person.facts.role_template_ids.clone();
        ctx.user_kind = if person.facts.guest {
            UserKind::Guest
        } else {
            UserKind::Member
        };
        ctx.platform = c.platform.clone();
        ctx.client_app_type = c.client_app.clone();
        ctx.ip_address = Some(c.ip);
        ctx.named_locations = c.named_locations.clone();
        ctx.methods = methods.to_vec();
        ctx.sign_in_risk = c.sign_in_risk.clone();
        ctx.user_risk = c.user_risk.clone();
        ctx
    }

    /// The decision alone: asked of the engine once per decision signature (the profiles of
    /// the enforced policies that apply), target kind and method class.
    fn outcome(
        &mut self,
        person: &PersonClass,
        target: usize,
        cond: usize,
        methods: &[SatisfiedMethod],
        methods_id: usize,
    ) -> Arc<Decision> {
        let t = &self.space.targets[target];
        let mut applying = and(&person.bits, &t.bits);
        for ((k, c), e) in applying
            .iter_mut()
            .zip(self.space.conditions[cond].bits.iter())
            .zip(self.space.enforced.iter())
        {
            *k &= c & e;
        }
        let rsi = t.target == Target::UserAction(UserAction::RegisterSecurityInformation);
        let key = (self.space.signature(&applying), rsi, methods_id);
        if let Some(found) = self.memo.get(&key) {
            let found = found.clone();
            #[cfg(debug_assertions)]
            if self.sample() {
                let exact = evaluate(&self.context(person, target, cond, methods), self.set);
                assert_eq!(
                    decision_shape(&exact),
                    decision_shape(&found),
                    "equal decision profiles must decide alike"
                );
            }
            return found;
        }
        let ctx = self.context(person, target, cond, methods);
        let decision = evaluate(&ctx, self.set);
        self.evaluations += 1;
        debug_assert_eq!(
            and(
                &applies_bits(&decision, self.space.words),
                &self.space.enforced
            ),
            applying,
            "the per-dimension classes must predict which policies apply"
        );
        // The trace (one entry per policy) is most of a decision's size and no finding reads
        // it from the memo; witnesses are decided again on their own.
        let decision = Arc::new(Decision {
            trace: Vec::new(),
            ..decision
        });
        self.memo.insert(key, decision.clone());
        decision
    }

    fn reach(&mut self, person: &PersonClass, target: usize) -> Reach {
        match self.first_reach(person, target) {
            Ok(Some(cond)) => Reach::Reachable(self.witness(person, target, cond, &person.methods)),
            Err(cond) => {
                let (decision, witness) = self.decide(person, target, cond, &person.methods);
                Reach::LockedOut {
                    witness,
                    decision: Box::new(decision),
                }
            }
            Ok(None) => {
                unreachable_space(&person.facts, &self.space.targets[target].target, self.set)
            }
        }
    }

    /// The first live condition where the class reaches `target` (`Ok(None)` when the space
    /// has no live condition), or the first live condition, where it is shut out (`Err`).
    fn first_reach(&mut self, person: &PersonClass, target: usize) -> Result<Option<usize>, usize> {
        let space = self.space;
        let mut first = None;
        for &cond in &space.target_conditions[target] {
            if !space.conditions[cond].live {
                continue;
            }
            let decision = self.outcome(person, target, cond, &person.methods, person.methods_id);
            if reachable(&decision.outcome) {
                return Ok(Some(cond));
            }
            first.get_or_insert(cond);
        }
        first.map_or(Ok(None), Err)
    }

    /// The first live sign-in where `methods` alone get the class granted access, if any. (A
    /// grant names no policy, so the memo's decision is the witness's own.)
    fn granted_with(
        &mut self,
        person: &PersonClass,
        target: usize,
        methods: &[SatisfiedMethod],
        only: impl Fn(&Conditions) -> bool,
    ) -> Option<(Witness, Arc<Decision>)> {
        let id = self.methods_id(methods);
        let space = self.space;
        for &cond in &space.target_conditions[target] {
            let c = &space.conditions[cond];
            if !c.live || !only(c) {
                continue;
            }
            let decision = self.outcome(person, target, cond, methods, id);
            if matches!(decision.outcome, Outcome::Grant) {
                return Some((self.witness(person, target, cond, methods), decision));
            }
        }
        None
    }
}

fn policy_ref(set: &PolicySet, index: usize) -> PolicyRef {
    let p = &set.policies()[index];
    PolicyRef {
        id: p.id.clone(),
        display_name: p.display_name.clone(),
    }
}

/// The policies a witness's decision names: the blocking ones, else those asking for
/// something, else the enforced ones that applied.
fn involved(set: &PolicySet, witness: &Witness) -> Vec<PolicyRef> {
    let decision = &evaluate(&witness.to_context(set), set);
    let ids: Vec<String> = match &decision.outcome {
        Outcome::Block { policies } => policies.iter().map(|p| p.policy_id.clone()).collect(),
        Outcome::Requirements { requirements } => {
            let mut ids: Vec<String> = Vec::new();
            for r in requirements {
                for id in &r.policy_ids {
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
            }
            ids
        }
        Outcome::Grant => decision
            .trace
            .iter()
            .filter(|t| t.applies && t.policy.state.is_enforced())
            .map(|t| t.policy_id().to_owned())
            .collect(),
    };
    ids.iter()
        .filter_map(|id| set.policies().iter().position(|p| p.id == *id))
        .map(|i| policy_ref(set, i))
        .collect()
}

/// The ids the policies' users conditions name, by kind, in order of appearance.
struct NamedIds {
    users: Vec<String>,
    groups: Vec<String>,
    roles: Vec<String>,
    /// Ids that appear on some exclude side (the emergency-access pattern).
    excluded: Vec<(IdKind, String)>,
    guests_matter: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    User,
    Group,
    Role,
}

fn is_special(id: &str) -> bool {
    [ALL, NONE, GUESTS_OR_EXTERNAL_USERS]
        .iter()
        .any(|s| id.trim().eq_ignore_ascii_case(s))
}

fn named_ids(set: &PolicySet) -> NamedIds {
    let mut named = NamedIds {
        users: Vec::new(),
        groups: Vec::new(),
        roles: Vec::new(),
        excluded: Vec::new(),
        guests_matter: false,
    };
    let add = |list: &mut Vec<String>, id: &str| {
        let id = id.trim();
        if !is_special(id) && !id.is_empty() && !list.iter().any(|k| k.eq_ignore_ascii_case(id)) {
            list.push(id.to_owned());
        }
    };
    for policy in set.policies() {
        let Some(u) = &policy.conditions.users else {
            continue;
        };
        for id in u.include_users.iter().chain(&u.exclude_users) {
            add(&mut named.users, id);
        }
        for id in u.include_groups.iter().chain(&u.exclude_groups) {
            add(&mut named.groups, id);
        }
        for id in u.include_roles.iter().chain(&u.exclude_roles) {
            add(&mut named.roles, id);
        }
        for (kind, list) in [
            (IdKind::User, &u.exclude_users),
            (IdKind::Group, &u.exclude_groups),
            (IdKind::Role, &u.exclude_roles),
        ] {
            for id in list {
                let id = id.trim();
                if !is_special(id)
                    && !named
                        .excluded
                        .iter()
                        .any(|(k, e)| *k == kind && e.eq_ignore_ascii_case(id))
                {
                    named.excluded.push((kind, id.to_owned()));
                }
            }
        }
        named.guests_matter |= u
            .include_users
            .iter()
            .chain(&u.exclude_users)
            .any(|id| id.trim().eq_ignore_ascii_case(GUESTS_OR_EXTERNAL_USERS))
            || u.include_guests_or_external_users.is_some()
            || u.exclude_guests_or_external_users.is_some();
    }
    named
}

fn with_id(mut facts: PersonFacts, kind: IdKind, id: &str) -> PersonFacts {
    match kind {
        IdKind::User => facts.user_id = id.to_owned(),
        IdKind::Group => facts.group_ids.push(id.to_owned()),
        IdKind::Role => facts.role_template_ids.push(id.to_owned()),
    }
    facts
}

fn id_label(kind: IdKind, id: &str) -> String {
    match kind {
        IdKind::User => format!("user {id}"),
        IdKind::Group => format!("members of group {id}"),
        IdKind::Role => format!("holders of {}", role_name(id)),
    }
}

/// The person classes: the directory's people, or the classes the policies tell apart.
fn person_classes(walk: &mut Walk<'_>, directory: Option<&Directory>) -> Vec<PersonClass> {
    let set = walk.set;
    let mut out: Vec<PersonClass> = Vec::new();
    let mut index: HashMap<(Bits, usize, bool, bool), usize> = HashMap::new();
    let mut add = |out: &mut Vec<PersonClass>, class: PersonClass| {
        let key = (
            class.bits.clone(),
            class.methods_id,
            class.global_admin,
            class.privileged,
        );
        match index.get(&key) {
            Some(&i) => {
                out[i].people += 1;
                out[i].everyone |= class.everyone;
            }
            None => {
                index.insert(key, out.len());
                out.push(class);
            }
        }
    };
    match directory {
        Some(directory) => {
            for person in &directory.people {
                let label = format!("people like {}", person.user_id);
                let class = walk.person_class(person.clone(), label, person.methods.clone());
                add(&mut out, class);
            }
        }
        None => {
            let named = named_ids(set);
            let everything = walk.space.everything.clone();
            let mut atoms: Vec<(IdKind, String)> = Vec::new();
            atoms.extend(named.users.iter().map(|u| (IdKind::User, u.clone())));
            atoms.extend(named.groups.iter().map(|g| (IdKind::Group, g.clone())));
            let mut roles = named.roles.clone();
            if !roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR_ROLE))
            {
                roles.insert(0, GLOBAL_ADMINISTRATOR_ROLE.to_owned());
            }
            atoms.extend(roles.iter().map(|r| (IdKind::Role, r.clone())));
            let guests: &[bool] = if named.guests_matter {
                &[false, true]
            } else {
                &[false]
            };
            let base = |guest: bool| PersonFacts {
                user_id: ANYONE_ELSE.to_owned(),
                guest,
                ..PersonFacts::default()
            };
            // Global Administrators first: their classes give the witnesses that matter most.
            atoms.sort_by_key(|(k, id)| {
                !(*k == IdKind::Role && id.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR_ROLE))
            });
            for &guest in guests {
                let suffix = if guest { " (as guests)" } else { "" };
                for (kind, id) in &atoms {
                    let facts = with_id(base(guest), *kind, id);
                    let label = format!("{}{suffix}", id_label(*kind, id));
                    let class = walk.person_class(facts.clone(), label.clone(), everything.clone());
                    add(&mut out, class);
                    for (ekind, eid) in &named.excluded {
                        if (ekind, eid) == (kind, id)
                            || (*ekind == IdKind::User && *kind == IdKind::User)
                        {
                            continue;
                        }
                        let both = with_id(facts.clone(), *ekind, eid);
                        let label = format!("{label} who are also {}", id_label(*ekind, eid));
                        let class = walk.person_class(both, label, everything.clone());
                        add(&mut out, class);
                    }
                }
                let label = if guest { "guests" } else { "anyone else" };
                let mut class =
                    walk.person_class(base(guest), label.to_owned(), everything.clone());
                class.everyone = !guest;
                add(&mut out, class);
            }
        }
    }
    out
}

/// People who, at one target, meet the same policies and present methods of the same class.
struct TargetGroup {
    bits: Bits,
    /// Person classes, in priority order (the first gives the witness).
    members: Vec<usize>,
}

fn target_groups(space: &ConditionSpace, persons: &[PersonClass]) -> Vec<Vec<TargetGroup>> {
    space
        .targets
        .iter()
        .map(|t| {
            let mut groups: Vec<TargetGroup> = Vec::new();
            let mut index: HashMap<(Bits, usize), usize> = HashMap::new();
            for (p, person) in persons.iter().enumerate() {
                let bits = and(&and(&person.bits, &t.bits), &space.live_policies);
                match index.get(&(bits.clone(), person.methods_id)) {
                    Some(&g) => groups[g].members.push(p),
                    None => {
                        index.insert((bits.clone(), person.methods_id), groups.len());
                        groups.push(TargetGroup {
                            bits,
                            members: vec![p],
                        });
                    }
                }
            }
            groups
        })
        .collect()
}

fn priority(class: &PersonClass) -> u8 {
    if class.global_admin {
        0
    } else if class.everyone {
        1
    } else if class.privileged {
        2
    } else {
        3
    }
}

fn summary(labels: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = labels
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if labels.len() > SHOWN {
        text.push_str(&format!(" and {} more", labels.len() - SHOWN));
    }
    text
}

/// Analyses a policy set exhaustively over its condition space (see the module docs).
pub fn analyze(input: &AnalysisInput<'_>) -> Analysis {
    let set = input.set;
    let mut extra_targets = vec![Target::Application(input.admin_portal_app_id.to_owned())];
    if let Some(directory) = input.directory {
        extra_targets.extend(
            directory
                .applications
                .iter()
                .map(|a| Target::Application(a.app_id.clone())),
        );
    }
    let space = ConditionSpace::new(set, &extra_targets);
    let mut walk = Walk::new(set, &space);
    let mut persons = person_classes(&mut walk, input.directory);
    persons.sort_by_key(priority);
    let mut findings: Vec<Finding> = Vec::new();
    let app_name = |target: &Target| -> String {
        match target {
            Target::Application(app) if app.eq_ignore_ascii_case(input.admin_portal_app_id) => {
                "the Admin Portal".to_owned()
            }
            Target::Application(app) => input
                .directory
                .and_then(|d| {
                    d.applications
                        .iter()
                        .find(|a| a.app_id.eq_ignore_ascii_case(app))
                })
                .map_or_else(
                    || target_label(target),
                    |a| format!("{} ({})", a.display_name, a.app_id),
                ),
            other => target_label(other),
        }
    };
    let apps: Vec<usize> = (0..space.targets.len())
        .filter(|&t| matches!(space.targets[t].target, Target::Application(_)))
        .collect();

    // Lockouts and gaps, per application. People who meet the same policies aimed at the
    // application and present the same methods are decided alike: one walk per such group.
    let password = vec![SatisfiedMethod::new(AuthenticationMethodMode::Password)];
    let phishable = vec![
        SatisfiedMethod::new(AuthenticationMethodMode::Password),
        SatisfiedMethod::new(AuthenticationMethodMode::SoftwareOath),
    ];
    let groups = target_groups(&space, &persons);
    let mut first_gap: Option<Finding> = None;
    let mut first_admin_gap: Option<Finding> = None;
    for &t in &apps {
        let target = space.targets[t].target.clone();
        let admin_portal = matches!(&target, Target::Application(a) if a.eq_ignore_ascii_case(input.admin_portal_app_id));
        let mut locked: Vec<(Vec<usize>, usize)> = Vec::new();
        let mut gaps: Vec<(Vec<usize>, Witness, Arc<Decision>)> = Vec::new();
        let mut admin_gaps: Vec<(Vec<usize>, Witness, Arc<Decision>)> = Vec::new();
        for group in &groups[t] {
            let members = &group.members;
            let first = &persons[members[0]];
            if let Err(cond) = walk.first_reach(first, t) {
                locked.push((members.clone(), cond));
                continue;
            }
            if let Some((w, d)) = walk.granted_with(first, t, &password, |_| true) {
                gaps.push((members.clone(), w, d));
                continue;
            }
            let admins: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&p| persons[p].privileged)
                .collect();
            if let Some(&admin) = admins.first()
                && let Some((w, d)) = walk.granted_with(&persons[admin], t, &phishable, |_| true)
            {
                admin_gaps.push((admins, w, d));
            }
        }
        let labels_of = |found: &[usize]| -> Vec<String> {
            let mut found = found.to_vec();
            found.sort_unstable();
            found.iter().map(|&p| persons[p].label.clone()).collect()
        };
        locked.sort_by_key(|(m, _)| m.iter().map(|&p| priority(&persons[p])).min());
        if let Some((members, cond)) = locked.first() {
            let (decision, witness) =
                walk.decide(&persons[members[0]], t, *cond, &persons[members[0]].methods);
            let (witness, decision) = (&witness, &decision);
            let all: Vec<usize> = locked.iter().flat_map(|(m, _)| m.iter().copied()).collect();
            let labels = labels_of(&all);
            let people: usize = all.iter().map(|&p| persons[p].people).sum();
            let high = admin_portal
                || all
                    .iter()
                    .any(|&p| persons[p].global_admin || persons[p].everyone);
            findings.push(Finding {
                kind: FindingKind::Lockout,
                severity: if high { Severity::High } else { Severity::Medium },
                message: format!(
                    "{} cannot be reached on any platform, location or client by {} ({} class{}, {people} {}): {}",
                    app_name(&target),
                    labels[0],
                    labels.len(),
                    if labels.len() == 1 { "" } else { "es" },
                    if input.directory.is_some() { "people" } else { "kinds of person" },
                    summary(&labels)
                ),
                policies: involved(set, witness),
                witness: witness.clone(),
                decision: decision.outcome.clone(),
            });
        }
        gaps.sort_by_key(|(m, _, _)| m.iter().map(|&p| priority(&persons[p])).min());
        if let Some((_, witness, decision)) = gaps.first() {
            let all: Vec<usize> = gaps
                .iter()
                .flat_map(|(m, _, _)| m.iter().copied())
                .collect();
            let labels = labels_of(&all);
            let admins = all.iter().any(|&p| persons[p].privileged);
            let finding = Finding {
                kind: FindingKind::Gap,
                severity: if admins || admin_portal {
                    Severity::High
                } else {
                    Severity::Medium
                },
                message: format!(
                    "a password alone reaches {}: {}",
                    app_name(&target),
                    summary(&labels)
                ),
                policies: involved(set, witness),
                witness: witness.clone(),
                decision: decision.outcome.clone(),
            };
            first_gap.get_or_insert_with(|| finding.clone());
            if admins && first_admin_gap.is_none() {
                first_admin_gap = Some(finding.clone());
            }
            findings.push(finding);
        }
        if let Some((_, witness, decision)) = admin_gaps.first() {
            let all: Vec<usize> = admin_gaps
                .iter()
                .flat_map(|(m, _, _)| m.iter().copied())
                .collect();
            let labels = labels_of(&all);
            let finding = Finding {
                kind: FindingKind::Gap,
                severity: Severity::High,
                message: format!(
                    "administrators reach {} without phishing-resistant MFA (password and an authenticator code): {}",
                    app_name(&target),
                    summary(&labels)
                ),
                policies: involved(set, witness),
                witness: witness.clone(),
                decision: decision.outcome.clone(),
            };
            first_admin_gap.get_or_insert_with(|| finding.clone());
            findings.push(finding);
        }
    }

    // Baselines.
    if let Some(gap) = first_gap {
        findings.push(Finding {
            kind: FindingKind::Baseline,
            severity: Severity::Medium,
            message: format!("MFA for everyone: not in place ({})", gap.message),
            ..gap
        });
    }
    if let Some(gap) = first_admin_gap {
        findings.push(Finding {
            kind: FindingKind::Baseline,
            severity: Severity::Medium,
            message: format!(
                "phishing-resistant MFA for administrators: not in place ({})",
                gap.message
            ),
            ..gap
        });
    }
    'legacy: for &t in &apps {
        for group in &groups[t] {
            let person = &persons[group.members[0]];
            // A legacy client the policies treat like another client is decided like it.
            let legacy = |c: &Conditions| c.legacy_client.is_some();
            if let Some((mut witness, decision)) = walk.granted_with(person, t, &password, legacy) {
                // Clients of one class share a legacy member: name it in the witness.
                if let Some(client) = walk
                    .space
                    .conditions
                    .iter()
                    .find(|c| c.client_app == witness.client_app && c.legacy_client.is_some())
                    .and_then(|c| c.legacy_client.clone())
                {
                    witness.client_app = client;
                }
                findings.push(Finding {
                    kind: FindingKind::Baseline,
                    severity: Severity::Medium,
                    message: format!(
                        "legacy clients blocked: not in place ({} reach {} with {})",
                        person.label,
                        app_name(&space.targets[t].target),
                        witness.client_app
                    ),
                    policies: involved(set, &witness),
                    witness,
                    decision: decision.outcome.clone(),
                });
                break 'legacy;
            }
        }
    }
    if let Some(rsi) = space
        .targets
        .iter()
        .position(|t| t.target == Target::UserAction(UserAction::RegisterSecurityInformation))
    {
        for group in &groups[rsi] {
            let person = &persons[group.members[0]];
            if let Some((witness, decision)) = walk.granted_with(person, rsi, &password, |_| true) {
                findings.push(Finding {
                    kind: FindingKind::Baseline,
                    severity: Severity::Low,
                    message: format!(
                        "registering security information protected: not in place ({} can register methods with a password alone)",
                        person.label
                    ),
                    policies: involved(set, &witness),
                    witness,
                    decision: decision.outcome.clone(),
                });
                break;
            }
        }
    }

    // Dead policies.
    let mut person_union = vec![0u64; space.words];
    for p in &persons {
        or_into(&mut person_union, &p.bits);
    }
    let mut dead = vec![false; set.policies().len()];
    for (i, policy) in set.policies().iter().enumerate() {
        if !bit(&space.live_policies, i) {
            continue;
        }
        let reason = if !bit(&person_union, i) {
            Some(if input.directory.is_some() {
                "no one in the directory meets its users condition"
            } else {
                "no person meets its users condition"
            })
        } else {
            space
                .dimension_unions
                .iter()
                .find(|(_, u)| !bit(u, i))
                .map(|(why, _)| *why)
        };
        let Some(reason) = reason else { continue };
        dead[i] = true;
        let person = persons
            .iter()
            .find(|p| bit(&p.bits, i))
            .unwrap_or(&persons[0]);
        let t = (0..space.targets.len())
            .find(|&t| bit(&space.targets[t].bits, i))
            .unwrap_or(0);
        let c = (0..space.conditions.len())
            .max_by_key(|&c| {
                bit(&space.conditions[c].bits, i) as u8 * 2 + space.conditions[c].live as u8
            })
            .unwrap_or(0);
        let methods = person.methods.clone();
        let (decision, witness) = walk.decide(person, t, c, &methods);
        let state = if policy.state.is_report_only() {
            "report-only"
        } else {
            "enabled"
        };
        findings.push(Finding {
            kind: FindingKind::DeadPolicy,
            severity: if policy.state.is_report_only() {
                Severity::Low
            } else {
                Severity::Medium
            },
            message: format!(
                "{state} policy \"{}\" can never apply: it matches {reason}",
                policy.display_name
            ),
            policies: vec![policy_ref(set, i)],
            witness,
            decision: decision.outcome.clone(),
        });
    }

    // Blocks on everyone with no emergency-access exclusion.
    for (i, policy) in set.policies().iter().enumerate() {
        if !bit(&space.live_policies, i) || dead[i] {
            continue;
        }
        let blocks = set.configured_controls(i).contains(&Control::Block);
        let Some(u) = &policy.conditions.users else {
            continue;
        };
        let everyone = u
            .include_users
            .iter()
            .any(|id| id.trim().eq_ignore_ascii_case(ALL));
        let excluded = u
            .exclude_users
            .iter()
            .chain(&u.exclude_groups)
            .chain(&u.exclude_roles)
            .any(|id| !is_special(id));
        if !(blocks && everyone && !excluded) {
            continue;
        }
        let person = persons
            .iter()
            .find(|p| bit(&p.bits, i))
            .unwrap_or(&persons[0]);
        let t = (0..space.targets.len())
            .find(|&t| bit(&and(&space.targets[t].bits, &person.bits), i))
            .unwrap_or(0);
        let c = (0..space.conditions.len())
            .find(|&c| bit(&space.conditions[c].bits, i))
            .unwrap_or(0);
        let methods = person.methods.clone();
        let (decision, witness) = walk.decide(person, t, c, &methods);
        findings.push(Finding {
            kind: FindingKind::UnexcludedBlock,
            severity: if policy.state.is_enforced() {
                Severity::High
            } else {
                Severity::Medium
            },
            message: format!(
                "\"{}\" blocks all users and excludes no one: no emergency-access account can get past it",
                policy.display_name
            ),
            policies: vec![policy_ref(set, i)],
            witness,
            decision: decision.outcome.clone(),
        });
    }

    // Unresolved references.
    unresolved(&mut walk, input.directory, &mut findings);

    // Shadowed policies.
    shadowed(&mut walk, &persons, &groups, &dead, &mut findings);

    let stats = AnalysisStats {
        person_classes: persons.len(),
        targets: space.targets.len(),
        condition_classes: space.conditions.len(),
        method_classes: space.method_classes.len(),
        combinations: (persons.len() * space.targets.len() * space.conditions.len()) as u64,
        evaluations: walk.evaluations,
    };
    findings.sort_by_key(|f| (f.severity, f.kind));
    Analysis {
        policies: set.policies().len(),
        findings,
        stats,
    }
}

fn unresolved(walk: &mut Walk<'_>, directory: Option<&Directory>, findings: &mut Vec<Finding>) {
    let set = walk.set;
    let space = walk.space;
    for (i, policy) in set.policies().iter().enumerate() {
        let mut missing: Vec<(IdKind, String)> = Vec::new();
        if let (Some(directory), Some(u)) = (directory, &policy.conditions.users) {
            let known = |list: &[String], id: &str| {
                list.iter()
                    .any(|k| k.trim().eq_ignore_ascii_case(id.trim()))
            };
            let people: Vec<String> = directory.people.iter().map(|p| p.user_id.clone()).collect();
            for id in u.include_users.iter().chain(&u.exclude_users) {
                if !is_special(id) && !known(&people, id) {
                    missing.push((IdKind::User, id.trim().to_owned()));
                }
            }
            for id in u.include_groups.iter().chain(&u.exclude_groups) {
                if !known(&directory.group_ids, id) {
                    missing.push((IdKind::Group, id.trim().to_owned()));
                }
            }
            if let Some(roles) = &directory.role_template_ids {
                for id in u.include_roles.iter().chain(&u.exclude_roles) {
                    if !known(roles, id) {
                        missing.push((IdKind::Role, id.trim().to_owned()));
                    }
                }
            }
        }
        let mut other: Vec<String> = Vec::new();
        if let Some(l) = &policy.conditions.locations {
            for id in l.include_locations.iter().chain(&l.exclude_locations) {
                let id = id.trim();
                let special = id.eq_ignore_ascii_case(ALL) || id.eq_ignore_ascii_case("AllTrusted");
                if !special && set.named_location(id).is_none() {
                    other.push(format!("named location {id}"));
                }
            }
        }
        for control in set.configured_controls(i) {
            if let Control::UnknownAuthenticationStrength(id) = control {
                other.push(format!("authentication strength {id}"));
            }
        }
        if missing.is_empty() && other.is_empty() {
            continue;
        }
        // The witness carries the first unresolved id, so What-If shows what it does.
        let mut facts = PersonFacts {
            user_id: ANYONE_ELSE.to_owned(),
            ..PersonFacts::default()
        };
        if let Some((kind, id)) = missing.first() {
            facts = with_id(facts, *kind, id);
        }
        let everything = space.everything.clone();
        let class = walk.person_class(facts, String::new(), everything);
        let t = (0..space.targets.len())
            .find(|&t| bit(&space.targets[t].bits, i))
            .unwrap_or(0);
        let c = (0..space.conditions.len())
            .find(|&c| space.conditions[c].live && bit(&space.conditions[c].bits, i))
            .unwrap_or(0);
        let methods = class.methods.clone();
        let (decision, witness) = walk.decide(&class, t, c, &methods);
        let mut names: Vec<String> = missing
            .iter()
            .map(|(kind, id)| match kind {
                IdKind::User => format!("user {id}"),
                IdKind::Group => format!("group {id}"),
                IdKind::Role => format!("role {id}"),
            })
            .collect();
        names.extend(other);
        findings.push(Finding {
            kind: FindingKind::UnresolvedReference,
            severity: Severity::Medium,
            message: format!(
                "\"{}\" names what does not exist: {}",
                policy.display_name,
                names.join(", ")
            ),
            policies: vec![policy_ref(set, i)],
            witness,
            decision: decision.outcome.clone(),
        });
    }
}

/// What a decision asks of the person, for comparing two decisions: the outcome, what is asked
/// (in any order, whoever asks it) and the session controls.
fn decision_shape(decision: &Decision) -> (u8, BTreeSet<Vec<String>>, Option<u64>, String) {
    let asked: BTreeSet<Vec<String>> = match &decision.outcome {
        Outcome::Requirements { requirements } => requirements
            .iter()
            .map(|r| r.alternatives.iter().map(|c| format!("{c:?}")).collect())
            .collect(),
        _ => BTreeSet::new(),
    };
    (
        decision.outcome.severity(),
        asked,
        decision
            .session
            .sign_in_frequency
            .as_ref()
            .and_then(|f| f.window_hours()),
        format!("{:?}", decision.session.persistent_browser),
    )
}

fn shadowed(
    walk: &mut Walk<'_>,
    persons: &[PersonClass],
    groups: &[Vec<TargetGroup>],
    dead: &[bool],
    findings: &mut Vec<Finding>,
) {
    let set = walk.set;
    let space = walk.space;
    let n = set.policies().len();
    let candidate: Vec<bool> = (0..n)
        .map(|i| !dead[i] && set.policies()[i].state.is_enforced())
        .collect();
    // Per target, the distinct sets of enforced policies people meet there and the distinct
    // sets the other conditions meet: a sign-in's applying set is one of each, intersected.
    // Methods do not change which policies apply.
    let ones = |b: &Bits| b.iter().map(|w| w.count_ones()).sum::<u32>();
    let mut met = vec![0usize; n];
    let mut first: Vec<Option<(usize, usize, usize)>> = vec![None; n];
    let mut matters = vec![false; n];
    let mut checked: HashMap<(Bits, bool), ()> = HashMap::new();
    // Whether taking a profile out of a signature changes a decision, per target kind.
    let mut differs: HashMap<(Bits, usize, bool), bool> = HashMap::new();
    let mut counts = vec![0u32; space.profile_words * 64];
    let method_ids: Vec<usize> = space
        .method_classes
        .iter()
        .map(|m| walk.methods_id(m))
        .collect();
    for (t, target) in space.targets.iter().enumerate() {
        let rsi = target.target == Target::UserAction(UserAction::RegisterSecurityInformation);
        let mut seen: HashMap<Bits, ()> = HashMap::new();
        let mut whos: Vec<(Bits, usize)> = groups[t]
            .iter()
            .map(|g| (and(&g.bits, &space.enforced), g.members[0]))
            .filter(|(b, _)| seen.insert(b.clone(), ()).is_none())
            .collect();
        let mut seen: HashMap<Bits, ()> = HashMap::new();
        // The target's condition classes already hold the first condition of each set.
        let mut wheres: Vec<(Bits, usize)> = space.target_conditions[t]
            .iter()
            .map(|&c| {
                let bits = and(
                    &and(&target.bits, &space.conditions[c].bits),
                    &space.enforced,
                );
                (bits, c)
            })
            .filter(|(b, _)| seen.insert(b.clone(), ()).is_none())
            .collect();
        // Fewest co-applying policies first: the witnesses then show a policy where little
        // else applies.
        whos.sort_by_key(|(b, i)| (ones(b), *i));
        wheres.sort_by_key(|(b, i)| (ones(b), *i));
        for (who, p) in &whos {
            for (place, c) in &wheres {
                let applying = and(who, place);
                if applying.iter().all(|w| *w == 0)
                    || checked.insert((applying.clone(), rsi), ()).is_some()
                {
                    continue;
                }
                let members: Vec<usize> = (0..n)
                    .filter(|&i| bit(&applying, i) && candidate[i])
                    .collect();
                if members.is_empty() {
                    continue;
                }
                for &i in &members {
                    met[i] += 1;
                    first[i].get_or_insert((*p, t, *c));
                }
                let profile = |i: usize| space.profiles[i].unwrap_or_default();
                for i in 0..n {
                    if bit(&applying, i) && space.profiles[i].is_some() {
                        counts[profile(i)] += 1;
                    }
                }
                let signature = space.signature(&applying);
                for &i in &members {
                    // Another policy here asks exactly what it asks: without it, nothing
                    // changes at this sign-in.
                    if matters[i] || counts[profile(i)] > 1 {
                        continue;
                    }
                    let key = (signature.clone(), profile(i), rsi);
                    if let Some(&changes) = differs.get(&key) {
                        matters[i] |= changes;
                        continue;
                    }
                    let mut rest = signature.clone();
                    rest[profile(i) / 64] &= !(1 << (profile(i) % 64));
                    let mut changes = false;
                    for (m, methods) in space.method_classes.iter().enumerate() {
                        let with = walk.outcome(&persons[*p], t, *c, methods, method_ids[m]);
                        // Without the policy the sign-in meets the profiles `rest`, which
                        // the real set decides alike wherever they occur.
                        let rest_key = (rest.clone(), rsi, method_ids[m]);
                        let without = match walk.memo.get(&rest_key) {
                            Some(found) => {
                                let found = found.clone();
                                #[cfg(debug_assertions)]
                                if walk.sample() {
                                    let w = walk.witness(&persons[*p], t, *c, methods);
                                    let exact = crate::evaluate::evaluate_without(
                                        &w.to_context(set),
                                        set,
                                        i,
                                    );
                                    assert_eq!(
                                        decision_shape(&exact),
                                        decision_shape(&found),
                                        "equal decision profiles must decide alike"
                                    );
                                }
                                found
                            }
                            None => {
                                let w = walk.witness(&persons[*p], t, *c, methods);
                                let other =
                                    crate::evaluate::evaluate_without(&w.to_context(set), set, i);
                                walk.evaluations += 1;
                                let other = Arc::new(Decision {
                                    trace: Vec::new(),
                                    ..other
                                });
                                walk.memo.insert(rest_key, other.clone());
                                other
                            }
                        };
                        if decision_shape(&with) != decision_shape(&without) {
                            changes = true;
                            break;
                        }
                    }
                    differs.insert(key, changes);
                    matters[i] |= changes;
                }
                for i in 0..n {
                    if bit(&applying, i) && space.profiles[i].is_some() {
                        counts[profile(i)] = 0;
                    }
                }
            }
        }
    }
    for (i, policy) in set.policies().iter().enumerate() {
        let (same, met) = (!matters[i], met[i]);
        let Some((p, t, c)) = first[i] else {
            continue;
        };
        if !same || met == 0 || !candidate[i] {
            continue;
        }
        let methods = &space.method_classes[0];
        let (traced, witness) = walk.decide(&persons[p], t, c, methods);
        let decision = &traced;
        let others: Vec<PolicyRef> = traced
            .trace
            .iter()
            .enumerate()
            .filter(|(j, t)| *j != i && t.applies && t.policy.state.is_enforced())
            .map(|(j, _)| policy_ref(set, j))
            .collect();
        let mut policies = vec![policy_ref(set, i)];
        policies.extend(others.iter().cloned());
        findings.push(Finding {
            kind: FindingKind::ShadowedPolicy,
            severity: Severity::Low,
            message: format!(
                "\"{}\" changes no decision: wherever it applies ({met} sign-in classes), other enabled policies already decide the same{}",
                policy.display_name,
                if others.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (here: {})",
                        others
                            .iter()
                            .map(|p| format!("\"{}\"", p.display_name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
            policies,
            witness,
            decision: decision.outcome.clone(),
        });
    }
}
