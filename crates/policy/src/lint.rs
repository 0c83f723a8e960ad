//! `lint`: what an administrator should know about a tenant's policies before trusting them.
//!
//! Errors are things that change what the engine does from what the administrator probably
//! meant (a policy that fails closed, a reference to nothing); warnings are things Entra
//! itself would refuse or that can never have an effect.

use std::fmt;

use crate::enums::{
    BuiltInControl, ClientAppType, DevicePlatform, GrantOperator, PolicyState, RiskLevel,
};
use crate::model::{
    ALL, ALL_TRUSTED, APP_GROUP_ADMIN_PORTALS, APP_GROUP_OFFICE365, ConditionalAccessPolicy,
    GUESTS_OR_EXTERNAL_USERS, NONE, UnsupportedEffect,
};
use crate::policy_set::{Control, PolicySet, normalize};
use crate::strength::built_in_strength;

/// Entra's long-standing limit on policies per tenant (all states count). Newer tenants allow
/// 240; the limit is configurable.
pub const DEFAULT_MAX_POLICIES: usize = 195;
/// Entra's limit on custom authentication strengths.
pub const MAX_CUSTOM_STRENGTHS: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintOptions {
    pub max_policies: usize,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            max_policies: DEFAULT_MAX_POLICIES,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// A stable code per kind of finding, for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintCode {
    UnsupportedField,
    MfaWithStrength,
    UnknownStrength,
    UnknownLocation,
    InvalidNamedLocation,
    TooManyPolicies,
    TooManyCustomStrengths,
    NeverApplies,
    InvalidDeviceFilter,
    ReportOnlyUserAction,
    UnknownValue,
    AppGroup,
    MixedTargets,
}

impl LintCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            LintCode::UnsupportedField => "unsupported-field",
            LintCode::MfaWithStrength => "mfa-with-strength",
            LintCode::UnknownStrength => "unknown-strength",
            LintCode::UnknownLocation => "unknown-location",
            LintCode::InvalidNamedLocation => "invalid-named-location",
            LintCode::TooManyPolicies => "too-many-policies",
            LintCode::TooManyCustomStrengths => "too-many-custom-strengths",
            LintCode::NeverApplies => "never-applies",
            LintCode::InvalidDeviceFilter => "invalid-device-filter",
            LintCode::ReportOnlyUserAction => "report-only-user-action",
            LintCode::UnknownValue => "unknown-value",
            LintCode::AppGroup => "app-group",
            LintCode::MixedTargets => "mixed-targets",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub code: LintCode,
    /// The policy (or strength, or location) concerned, if one.
    pub object_id: Option<String>,
    pub display_name: Option<String>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.severity, self.code.as_str())?;
        match (&self.display_name, &self.object_id) {
            (Some(name), Some(id)) => write!(f, " \"{name}\" ({id})")?,
            (Some(name), None) => write!(f, " \"{name}\"")?,
            (None, Some(id)) => write!(f, " {id}")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}

struct Findings<'a> {
    out: Vec<Finding>,
    policy: Option<&'a ConditionalAccessPolicy>,
}

impl Findings<'_> {
    fn push(&mut self, severity: Severity, code: LintCode, message: impl Into<String>) {
        self.out.push(Finding {
            severity,
            code,
            object_id: self
                .policy
                .map(|p| p.id.clone())
                .filter(|id| !id.is_empty()),
            display_name: self.policy.map(|p| p.display_name.clone()),
            message: message.into(),
        });
    }
}

fn is(value: &str, special: &str) -> bool {
    value.trim().eq_ignore_ascii_case(special)
}

fn subset(include: &[String], exclude: &[String]) -> bool {
    !include.is_empty()
        && include
            .iter()
            .all(|i| exclude.iter().any(|e| normalize(i) == normalize(e)))
}

/// Checks a tenant's configuration.
pub fn lint(set: &PolicySet, options: &LintOptions) -> Vec<Finding> {
    let mut findings = Findings {
        out: Vec::new(),
        policy: None,
    };
    let count = set.policies().len();
    if count > options.max_policies {
        findings.push(
            Severity::Error,
            LintCode::TooManyPolicies,
            format!(
                "{count} policies exceed the tenant limit of {} (policies in every state count)",
                options.max_policies
            ),
        );
    }
    let custom = set
        .strengths()
        .iter()
        .filter(|s| built_in_strength(&s.id).is_none())
        .count();
    if custom > MAX_CUSTOM_STRENGTHS {
        findings.push(
            Severity::Warning,
            LintCode::TooManyCustomStrengths,
            format!("{custom} custom authentication strengths exceed Entra's limit of {MAX_CUSTOM_STRENGTHS}"),
        );
    }
    let ip_locations = set
        .named_locations()
        .iter()
        .filter(|l| matches!(l, crate::location::NamedLocation::Ip(_)))
        .count();
    if ip_locations > crate::location::MAX_IP_NAMED_LOCATIONS {
        findings.push(
            Severity::Warning,
            LintCode::InvalidNamedLocation,
            format!(
                "{ip_locations} IP named locations exceed Entra's limit of {}",
                crate::location::MAX_IP_NAMED_LOCATIONS
            ),
        );
    }
    for location in set.named_locations() {
        let mut finding = |severity, message: String| {
            findings.out.push(Finding {
                severity,
                code: LintCode::InvalidNamedLocation,
                object_id: Some(location.id().to_owned()).filter(|id| !id.is_empty()),
                display_name: Some(location.display_name().to_owned()),
                message,
            })
        };
        if let Err(e) = location.validate() {
            finding(Severity::Error, e.to_string());
        }
        if !location.is_evaluable() {
            finding(
                Severity::Warning,
                "this location type (or GPS country lookup) cannot be evaluated; policies using it fail closed"
                    .to_owned(),
            );
        }
    }

    for (index, policy) in set.policies().iter().enumerate() {
        findings.policy = Some(policy);
        lint_policy(set, index, policy, &mut findings);
    }
    findings.out
}

fn lint_policy<'a>(
    set: &PolicySet,
    index: usize,
    policy: &'a ConditionalAccessPolicy,
    f: &mut Findings<'a>,
) {
    for field in policy.unsupported_fields() {
        let (severity, what) = match field.effect {
            UnsupportedEffect::FailsClosed => (
                Severity::Error,
                "is a condition this engine cannot evaluate: the policy fails closed (blocks) whenever its other conditions match",
            ),
            UnsupportedEffect::NeverSatisfied => (
                Severity::Error,
                "is a grant control this engine cannot satisfy: the policy blocks whenever it applies",
            ),
            UnsupportedEffect::NotEnforced => (
                Severity::Warning,
                "is a session control this engine does not enforce",
            ),
            UnsupportedEffect::Informational => {
                (Severity::Info, "is kept on export but has no effect here")
            }
        };
        f.push(
            severity,
            LintCode::UnsupportedField,
            format!("`{}` {what}", field.path),
        );
    }
    if let PolicyState::Other(state) = &policy.state {
        f.push(
            Severity::Warning,
            LintCode::UnknownValue,
            format!("state `{state}` is unknown; the policy is treated as enabled"),
        );
    }

    let conditions = &policy.conditions;
    let grant = policy.grant_controls.as_ref();

    // Grant controls.
    if let Some(g) = grant {
        if g.has(&BuiltInControl::Mfa) && g.authentication_strength.is_some() {
            f.push(
                Severity::Warning,
                LintCode::MfaWithStrength,
                "`mfa` and an authentication strength cannot both be set on one policy (Entra refuses it; the \
                 built-in Multifactor strength is the same as `mfa`)",
            );
        }
        if let Some(GrantOperator::Other(op)) = &g.operator {
            f.push(
                Severity::Warning,
                LintCode::UnknownValue,
                format!("grant operator `{op}` is unknown; the controls are all required"),
            );
        }
        for control in &g.built_in_controls {
            if !control.is_known() || *control == BuiltInControl::UnknownFutureValue {
                f.push(
                    Severity::Error,
                    LintCode::UnknownValue,
                    format!("grant control `{control}` is unknown and can never be satisfied"),
                );
            }
        }
    }
    for control in set.configured_controls(index) {
        match control {
            Control::UnknownAuthenticationStrength(id) => f.push(
                Severity::Error,
                LintCode::UnknownStrength,
                format!("authentication strength `{id}` is not defined; the policy can never be satisfied"),
            ),
            Control::ApprovedApplication | Control::CompliantApplication | Control::RiskRemediation | Control::CustomControl(_) => {
                f.push(
                    Severity::Warning,
                    LintCode::UnsupportedField,
                    format!("`{}` cannot be satisfied by Portcullis; the policy blocks whenever it applies", control.label()),
                )
            }
            _ => {}
        }
    }

    // Locations referenced.
    if let Some(locations) = &conditions.locations {
        for id in locations
            .include_locations
            .iter()
            .chain(&locations.exclude_locations)
        {
            if is(id, ALL) || is(id, ALL_TRUSTED) {
                continue;
            }
            if set.named_location(id).is_none() {
                f.push(
                    Severity::Error,
                    LintCode::UnknownLocation,
                    format!("named location `{id}` is not defined; the policy fails closed when it would apply"),
                );
            }
        }
    }

    // Device filter.
    if let Some(filter) = conditions
        .devices
        .as_ref()
        .and_then(|d| d.device_filter.as_ref())
        && let Err(e) = crate::device_filter::Rule::parse(&filter.rule)
    {
        f.push(
            Severity::Error,
            LintCode::InvalidDeviceFilter,
            format!("{e}; the policy fails closed when it would apply"),
        );
    }

    // Targets.
    let apps = conditions.applications.as_ref();
    let include_apps = apps.map_or(&[][..], |a| &a.include_applications[..]);
    let exclude_apps = apps.map_or(&[][..], |a| &a.exclude_applications[..]);
    let actions = apps.map_or(&[][..], |a| &a.include_user_actions[..]);
    let contexts = apps.map_or(&[][..], |a| {
        &a.include_authentication_context_class_references[..]
    });
    let app_targets = include_apps.iter().any(|a| !is(a, NONE));
    let kinds = [app_targets, !actions.is_empty(), !contexts.is_empty()];
    if kinds.iter().filter(|k| **k).count() > 1 {
        f.push(
            Severity::Warning,
            LintCode::MixedTargets,
            "a policy targets applications, user actions or authentication contexts, not several kinds",
        );
    }
    if !actions.is_empty() && policy.state.is_report_only() {
        f.push(
            Severity::Warning,
            LintCode::ReportOnlyUserAction,
            "Entra does not support report-only mode for user-action policies; here it is evaluated and never enforced",
        );
    }
    for context in contexts {
        if !crate::whatif::is_auth_context_id(context.trim()) {
            f.push(
                Severity::Warning,
                LintCode::UnknownValue,
                format!("`{context}` is not an authentication context id (c1 to c99)"),
            );
        }
    }
    for app in include_apps.iter().chain(exclude_apps) {
        if is(app, APP_GROUP_OFFICE365) || is(app, APP_GROUP_ADMIN_PORTALS) {
            f.push(
                Severity::Warning,
                LintCode::AppGroup,
                format!(
                    "`{app}` is a Microsoft app group; no Portcullis application belongs to it"
                ),
            );
        }
    }
    for platform in conditions
        .platforms
        .iter()
        .flat_map(|p| p.include_platforms.iter().chain(&p.exclude_platforms))
    {
        if !platform.is_known() || *platform == DevicePlatform::UnknownFutureValue {
            f.push(
                Severity::Warning,
                LintCode::UnknownValue,
                format!("device platform `{platform}` is unknown"),
            );
        }
    }
    for app in &conditions.client_app_types {
        if !app.is_known() || *app == ClientAppType::UnknownFutureValue {
            f.push(
                Severity::Warning,
                LintCode::UnknownValue,
                format!("client app type `{app}` is unknown"),
            );
        }
    }
    for level in conditions
        .sign_in_risk_levels
        .iter()
        .chain(&conditions.user_risk_levels)
    {
        if !level.is_known() || *level == RiskLevel::UnknownFutureValue {
            f.push(
                Severity::Warning,
                LintCode::UnknownValue,
                format!("risk level `{level}` is unknown"),
            );
        }
    }

    if policy.state != PolicyState::Disabled
        && let Some(reason) = never_applies(policy)
    {
        f.push(Severity::Warning, LintCode::NeverApplies, reason);
    }
}

/// Why a policy can never apply to a user sign-in, if it cannot.
fn never_applies(policy: &ConditionalAccessPolicy) -> Option<String> {
    let c = &policy.conditions;
    if c.extra
        .get(crate::model::CLIENT_APPLICATIONS)
        .is_some_and(crate::model::is_meaningful)
    {
        // Workload-identity policies are out of scope here; say nothing.
        return None;
    }
    match &c.users {
        None => return Some("no users are targeted".to_owned()),
        Some(u) => {
            let broad = u
                .include_users
                .iter()
                .any(|v| is(v, ALL) || is(v, GUESTS_OR_EXTERNAL_USERS))
                || !u.include_groups.is_empty()
                || !u.include_roles.is_empty()
                || u.include_guests_or_external_users
                    .as_ref()
                    .is_some_and(|g| g.types().next().is_some());
            let named: Vec<String> = u
                .include_users
                .iter()
                .filter(|v| !is(v, NONE))
                .cloned()
                .collect();
            if !broad && named.is_empty() {
                return Some("no users are targeted (`None` or nothing)".to_owned());
            }
            if !broad && subset(&named, &u.exclude_users) {
                return Some("every included user is also excluded (exclusion wins)".to_owned());
            }
            if u.include_users.iter().any(|v| is(v, ALL))
                && u.exclude_users.iter().any(|v| is(v, ALL))
            {
                return Some("all users are excluded".to_owned());
            }
            if subset(&u.include_groups, &u.exclude_groups)
                && u.include_users.is_empty()
                && u.include_roles.is_empty()
                && u.include_guests_or_external_users.is_none()
            {
                return Some("every included group is also excluded (exclusion wins)".to_owned());
            }
        }
    }
    match &c.applications {
        None => return Some("no target resources".to_owned()),
        Some(a) => {
            let apps: Vec<String> = a
                .include_applications
                .iter()
                .filter(|v| !is(v, NONE))
                .cloned()
                .collect();
            if apps.is_empty()
                && a.include_user_actions.is_empty()
                && a.include_authentication_context_class_references.is_empty()
            {
                return Some(
                    "no target resources (applications, user actions or authentication contexts)"
                        .to_owned(),
                );
            }
            if a.include_user_actions.is_empty()
                && a.include_authentication_context_class_references.is_empty()
                && !apps.iter().any(|v| is(v, ALL))
                && subset(&apps, &a.exclude_applications)
            {
                return Some("every included application is also excluded".to_owned());
            }
        }
    }
    if let Some(p) = &c.platforms {
        if p.exclude_platforms.contains(&DevicePlatform::All) {
            return Some("all device platforms are excluded".to_owned());
        }
        let specific: Vec<&DevicePlatform> = p
            .include_platforms
            .iter()
            .filter(|x| **x != DevicePlatform::All)
            .collect();
        if !p.include_platforms.contains(&DevicePlatform::All)
            && !specific.is_empty()
            && specific.iter().all(|x| p.exclude_platforms.contains(x))
        {
            return Some("every included device platform is also excluded".to_owned());
        }
    }
    if let Some(l) = &c.locations {
        if l.exclude_locations.iter().any(|x| is(x, ALL)) {
            return Some("all locations are excluded".to_owned());
        }
        if !l.include_locations.iter().any(|x| is(x, ALL))
            && subset(&l.include_locations, &l.exclude_locations)
        {
            return Some("every included location is also excluded".to_owned());
        }
    }
    let known_apps = c
        .client_app_types
        .iter()
        .filter(|a| crate::policy_set::client_app_bit(a).is_some() || **a == ClientAppType::All);
    if !c.client_app_types.is_empty() && known_apps.count() == 0 {
        return Some("no known client app type is included".to_owned());
    }
    for (levels, name) in [
        (&c.sign_in_risk_levels, "sign-in"),
        (&c.user_risk_levels, "user"),
    ] {
        if !levels.is_empty()
            && levels
                .iter()
                .all(|l| crate::policy_set::risk_bit(l).is_none())
        {
            return Some(format!("no known {name} risk level is included"));
        }
    }
    None
}
