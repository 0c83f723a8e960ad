//! `evaluate`: the Conditional Access decision for one sign-in, with a per-policy trace.
//!
//! The rules, from Entra's documentation (reference §1.9, §2.3, §2.4, §7):
//! - a policy applies when every configured condition matches; within a condition, exclusion
//!   beats inclusion; an unconfigured condition matches everything;
//! - a platform the user agent did not reveal matches only `all`;
//! - disabled policies are traced as `notEnabled`; report-only policies are evaluated and traced
//!   but never change the decision;
//! - every applicable enforced policy must be satisfied; `block` in any of them wins;
//! - a requirement that can be met interactively (a strength, password change, terms of use)
//!   comes back as a requirement, in Entra's prompt order; one that cannot (a non-compliant
//!   device, an unknown strength, an unsupported control) blocks;
//! - when the target is the register-security-info user action, the strengths of policies that
//!   target that action take precedence over strengths of policies reaching it through
//!   "All resources"; their other controls still apply;
//! - a policy with a condition the engine cannot evaluate, whose other conditions match, fails
//!   closed: it blocks when enforced and the trace names the condition.
//!
//! The function is pure: the same context and policy set always give the same decision.

use std::sync::Arc;

use crate::context::{SignInContext, Target, UserKind};
use crate::enums::{
    AnalysisReason, AppliedPolicyResult, ConditionalAccessStatus, PersistentBrowserMode, UserAction,
};
use crate::model::{ConditionalAccessPolicy, SignInFrequency};
use crate::policy_set::{
    CompiledPolicy, Control, Enforcement, IdIndex, PolicySet, client_app_bit, normalize,
    platform_bit, risk_bit,
};
use crate::strength::{AuthenticationStrength, SessionMethods, multifactor_strength};

/// The decision for a sign-in and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    /// One entry per policy, in the order of the policy set.
    pub trace: Vec<PolicyTrace>,
    /// Session controls of the applicable enforced policies, combined most-restrictive-first.
    pub session: SessionOutcome,
    /// `signIn.conditionalAccessStatus` for this decision.
    pub status: ConditionalAccessStatus,
}

/// What the sign-in may do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every applicable enforced policy is satisfied (or none applies).
    Grant,
    /// At least one applicable enforced policy blocks; all of them are listed.
    Block { policies: Vec<BlockingPolicy> },
    /// Requirements still to meet, in Entra's prompt order.
    Requirements { requirements: Vec<Requirement> },
}

impl Outcome {
    /// 0 grant, 1 requirements, 2 block: a larger rank is a stricter outcome.
    pub fn severity(&self) -> u8 {
        match self {
            Outcome::Grant => 0,
            Outcome::Requirements { .. } => 1,
            Outcome::Block { .. } => 2,
        }
    }

    /// The Graph-style name used by the CLI: `grant`, `block`, `requirements`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Grant => "grant",
            Outcome::Block { .. } => "block",
            Outcome::Requirements { .. } => "requirements",
        }
    }
}

/// A policy that blocks the sign-in, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockingPolicy {
    pub policy_id: String,
    pub display_name: String,
    pub reason: BlockReason,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BlockReason {
    /// The policy's grant is "Block access".
    BlockControl,
    /// Controls that cannot be met by prompting (device not compliant, unknown strength, …).
    UnmetControls(Vec<Control>),
    /// A condition the engine cannot evaluate; the policy fails closed.
    UnevaluableCondition {
        condition: AnalysisReason,
        field: String,
    },
}

/// One thing the user still has to do. Meeting any one of `alternatives` meets it (a policy
/// with "Require one of the selected controls" gives several, in the order it defines them).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub alternatives: Vec<Control>,
    /// Ids of the enforced policies that ask for it.
    pub policy_ids: Vec<String>,
}

impl Requirement {
    /// The strengths that would meet this requirement.
    pub fn strengths(&self) -> impl Iterator<Item = &AuthenticationStrength> {
        self.alternatives.iter().filter_map(Control::strength)
    }

    fn rank(&self) -> u8 {
        self.alternatives
            .iter()
            .map(Control::prompt_rank)
            .min()
            .unwrap_or(u8::MAX)
    }
}

/// Combined session controls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionOutcome {
    /// The shortest sign-in frequency asked for (every time beats any window).
    pub sign_in_frequency: Option<SignInFrequency>,
    /// `never` beats `always`.
    pub persistent_browser: Option<PersistentBrowserMode>,
    /// Session controls present on applicable policies that this engine does not enforce.
    pub not_enforced: Vec<String>,
}

/// The trace of one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyTrace {
    pub policy: Arc<ConditionalAccessPolicy>,
    /// All conditions matched (or the policy failed closed on one it cannot evaluate).
    pub applies: bool,
    /// The first condition that did not match, or the one that could not be evaluated.
    pub failed_condition: Option<ConditionFailure>,
    pub result: AppliedPolicyResult,
    /// The grant controls the policy enforces (filled for policies that apply).
    pub enforced_grant_controls: Vec<Control>,
    /// How the grant controls stand (for policies that apply).
    pub grant: Option<GrantOutcome>,
    /// The policy's strength was set aside because a register-security-info policy's
    /// strength takes precedence.
    pub strength_superseded: bool,
}

impl PolicyTrace {
    pub fn policy_id(&self) -> &str {
        &self.policy.id
    }

    pub fn display_name(&self) -> &str {
        &self.policy.display_name
    }

    /// The What-If `analysisReasons` value: `notSet` when the policy applies normally.
    pub fn analysis_reason(&self) -> AnalysisReason {
        match &self.failed_condition {
            None => AnalysisReason::NotSet,
            Some(ConditionFailure {
                detail: FailureDetail::Unevaluable(_),
                ..
            }) => AnalysisReason::InvalidCondition,
            Some(ConditionFailure {
                detail: FailureDetail::MissingSignal,
                ..
            }) => AnalysisReason::NotEnoughInformation,
            Some(failure) => failure.condition,
        }
    }
}

/// A condition that did not match, in What-If terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionFailure {
    pub condition: AnalysisReason,
    pub detail: FailureDetail,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FailureDetail {
    /// The sign-in is not in the condition's include side.
    NotIncluded,
    /// The sign-in is in the condition's exclude side (exclusion beats inclusion).
    Excluded,
    /// The policy targets nothing of this kind (e.g. `None`, or no resource at all).
    NothingTargeted,
    /// The policy is for workload identities; this is a user sign-in.
    WorkloadIdentityPolicy,
    /// The sign-in does not carry the signal the condition needs (What-If without an IP).
    MissingSignal,
    /// The policy is disabled.
    Disabled,
    /// The engine cannot evaluate this member; the policy fails closed.
    Unevaluable(String),
}

impl std::fmt::Display for ConditionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let condition = &self.condition;
        match &self.detail {
            FailureDetail::NotIncluded => write!(f, "{condition}: not included"),
            FailureDetail::Excluded => write!(f, "{condition}: excluded"),
            FailureDetail::NothingTargeted => write!(f, "{condition}: the policy targets none"),
            FailureDetail::WorkloadIdentityPolicy => {
                write!(
                    f,
                    "{condition}: the policy targets workload identities, not users"
                )
            }
            FailureDetail::MissingSignal => write!(f, "{condition}: the sign-in does not say"),
            FailureDetail::Disabled => write!(f, "the policy is disabled"),
            FailureDetail::Unevaluable(field) => {
                write!(f, "{condition}: cannot evaluate {field}; failing closed")
            }
        }
    }
}

/// Where an applicable policy's grant controls stand.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantOutcome {
    Block,
    Satisfied,
    /// Can be met by prompting the user.
    Pending(Vec<Vec<Control>>),
    /// Cannot be met by prompting: these controls are unmet.
    Failed(Vec<Control>),
    /// A condition could not be evaluated.
    FailedClosed,
}

/// Which of a context's ids a policy names, on each side: one bit per policy.
struct Hits {
    include: Vec<u64>,
    exclude: Vec<u64>,
}

impl Hits {
    fn new(policies: usize) -> Self {
        let words = policies.div_ceil(64);
        Hits {
            include: vec![0; words],
            exclude: vec![0; words],
        }
    }

    fn mark(&mut self, index: &IdIndex, id: &str) {
        for r in index.get(id) {
            let (word, bit) = (r.policy as usize / 64, r.policy % 64);
            let side = if r.include {
                &mut self.include
            } else {
                &mut self.exclude
            };
            if let Some(w) = side.get_mut(word) {
                *w |= 1 << bit;
            }
        }
    }

    fn get(bits: &[u64], index: usize) -> bool {
        bits.get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }
}

/// Facts about the sign-in derived once per evaluation.
struct Facts<'c> {
    ctx: &'c SignInContext,
    platform: Option<u8>,
    client_app: Option<u8>,
    sign_in_risk: Option<u8>,
    user_risk: Option<u8>,
    locations: Vec<std::borrow::Cow<'c, str>>,
    /// The application id or authentication context, normalized once.
    target_id: std::borrow::Cow<'c, str>,
    trusted: bool,
    has_location_signal: bool,
    methods: SessionMethods<'c>,
}

fn fail(condition: AnalysisReason, detail: FailureDetail) -> Result<(), ConditionFailure> {
    Err(ConditionFailure { condition, detail })
}

fn check_users(
    index: usize,
    policy: &CompiledPolicy,
    facts: &Facts<'_>,
    hits: &Hits,
) -> Result<(), ConditionFailure> {
    let users = &policy.users;
    if users.workload_only {
        return fail(
            AnalysisReason::WorkloadIdentities,
            FailureDetail::WorkloadIdentityPolicy,
        );
    }
    if users.targets_nobody {
        return fail(AnalysisReason::Users, FailureDetail::NothingTargeted);
    }
    let guest = facts.ctx.user_kind == UserKind::Guest;
    if Hits::get(&hits.exclude, index) || (guest && users.exclude_guests) {
        return fail(AnalysisReason::Users, FailureDetail::Excluded);
    }
    if users.include_all || (guest && users.include_guests) || Hits::get(&hits.include, index) {
        Ok(())
    } else {
        fail(AnalysisReason::Users, FailureDetail::NotIncluded)
    }
}

/// `id` is already normalized (see `Facts::target_id`).
fn contains_id(list: &[Box<str>], id: &str) -> bool {
    list.iter().any(|entry| **entry == *id)
}

fn check_target(
    policy: &CompiledPolicy,
    target: &Target,
    target_id: &str,
) -> Result<(), ConditionFailure> {
    let rule = &policy.target;
    match target {
        Target::Application(_) => {
            if contains_id(&rule.exclude_apps, target_id) {
                return fail(AnalysisReason::Application, FailureDetail::Excluded);
            }
            if rule.include_all_apps || contains_id(&rule.include_apps, target_id) {
                Ok(())
            } else {
                fail(AnalysisReason::Application, FailureDetail::NotIncluded)
            }
        }
        Target::UserAction(action) => {
            // "All resources" covers the security-info pages (Entra's precedence rule for
            // registration strengths presupposes it); device registration is only governed by
            // policies naming that action.
            let through_all =
                *action == UserAction::RegisterSecurityInformation && rule.include_all_apps;
            if rule.user_actions.contains(action) || through_all {
                Ok(())
            } else {
                fail(AnalysisReason::UserActions, FailureDetail::NotIncluded)
            }
        }
        Target::AuthenticationContext(_) => {
            if contains_id(&rule.auth_contexts, target_id) {
                Ok(())
            } else {
                fail(
                    AnalysisReason::AuthenticationContext,
                    FailureDetail::NotIncluded,
                )
            }
        }
    }
}

fn check_conditions(
    index: usize,
    policy: &CompiledPolicy,
    facts: &Facts<'_>,
    hits: &Hits,
) -> Result<(), ConditionFailure> {
    check_users(index, policy, facts, hits)?;
    check_target(policy, &facts.ctx.target, &facts.target_id)?;
    if let Some(rule) = &policy.platforms {
        let (included, excluded) = match facts.platform {
            Some(bit) => (
                rule.include_all || rule.include & bit != 0,
                rule.exclude_all || rule.exclude & bit != 0,
            ),
            // Unknown platform: only `all` reaches it.
            None => (rule.include_all, rule.exclude_all),
        };
        if excluded {
            return fail(AnalysisReason::DevicePlatform, FailureDetail::Excluded);
        }
        if !included {
            return fail(AnalysisReason::DevicePlatform, FailureDetail::NotIncluded);
        }
    }
    let location_unevaluable = policy
        .unevaluable
        .as_ref()
        .is_some_and(|u| u.condition == AnalysisReason::Location);
    if let Some(rule) = policy.locations.as_ref().filter(|_| !location_unevaluable) {
        if !facts.has_location_signal {
            return fail(AnalysisReason::Location, FailureDetail::MissingSignal);
        }
        let named = |list: &[Box<str>]| {
            list.iter()
                .any(|id| facts.locations.iter().any(|l| **l == **id))
        };
        let excluded =
            rule.exclude_all || (rule.exclude_trusted && facts.trusted) || named(&rule.exclude);
        if excluded {
            return fail(AnalysisReason::Location, FailureDetail::Excluded);
        }
        let included =
            rule.include_all || (rule.include_trusted && facts.trusted) || named(&rule.include);
        if !included {
            return fail(AnalysisReason::Location, FailureDetail::NotIncluded);
        }
    }
    if let Some(mask) = policy.client_apps {
        let matched = mask == u8::MAX || facts.client_app.is_some_and(|bit| mask & bit != 0);
        if !matched {
            return fail(AnalysisReason::ClientApps, FailureDetail::NotIncluded);
        }
    }
    if let Some(mask) = policy.sign_in_risk
        && facts.sign_in_risk.is_none_or(|bit| mask & bit == 0)
    {
        return fail(AnalysisReason::SignInRisk, FailureDetail::NotIncluded);
    }
    if let Some(mask) = policy.user_risk
        && facts.user_risk.is_none_or(|bit| mask & bit == 0)
    {
        return fail(AnalysisReason::UserRisk, FailureDetail::NotIncluded);
    }
    if let Some((include, rule)) = &policy.device_filter {
        let matched = rule.matches(facts.ctx.device.as_ref());
        if *include && !matched {
            return fail(AnalysisReason::Devices, FailureDetail::NotIncluded);
        }
        if !*include && matched {
            return fail(AnalysisReason::Devices, FailureDetail::Excluded);
        }
    }
    if let Some(unevaluable) = &policy.unevaluable {
        return fail(
            unevaluable.condition,
            FailureDetail::Unevaluable(unevaluable.field.clone()),
        );
    }
    Ok(())
}

enum ControlState {
    Met,
    Interactive,
    NonInteractive,
}

fn control_state(control: &Control, facts: &Facts<'_>, superseded: bool) -> ControlState {
    let ctx = facts.ctx;
    let met = |yes: bool| {
        if yes {
            ControlState::Met
        } else {
            ControlState::NonInteractive
        }
    };
    match control {
        Control::Block => ControlState::NonInteractive,
        Control::Mfa | Control::AuthenticationStrength(_) if superseded => ControlState::Met,
        Control::Mfa => {
            if multifactor_strength().satisfied_by_session(&facts.methods) {
                ControlState::Met
            } else {
                ControlState::Interactive
            }
        }
        Control::AuthenticationStrength(strength) => {
            if strength.satisfied_by_session(&facts.methods) {
                ControlState::Met
            } else {
                ControlState::Interactive
            }
        }
        Control::CompliantDevice => met(ctx
            .device
            .as_ref()
            .is_some_and(|d| d.is_compliant == Some(true))),
        Control::DomainJoinedDevice => {
            met(ctx.device.as_ref().is_some_and(|d| d.is_hybrid_joined()))
        }
        Control::PasswordChange => {
            if ctx.password_changed {
                ControlState::Met
            } else {
                ControlState::Interactive
            }
        }
        Control::TermsOfUse(id) => {
            if ctx
                .accepted_terms_of_use
                .iter()
                .any(|t| t.trim().eq_ignore_ascii_case(id.trim()))
            {
                ControlState::Met
            } else {
                ControlState::Interactive
            }
        }
        // Portcullis has no app protection, risk remediation or custom controls: fail closed.
        Control::ApprovedApplication
        | Control::CompliantApplication
        | Control::RiskRemediation
        | Control::CustomControl(_)
        | Control::UnknownAuthenticationStrength(_)
        | Control::Unsupported(_) => ControlState::NonInteractive,
    }
}

/// The `mfa` control becomes the Multifactor strength in requirements, so callers handle one
/// kind of authentication requirement.
fn as_requirement(control: &Control) -> Control {
    match control {
        Control::Mfa => {
            Control::AuthenticationStrength(crate::strength::multifactor_strength_shared())
        }
        other => other.clone(),
    }
}

fn evaluate_grant(policy: &CompiledPolicy, facts: &Facts<'_>, superseded: bool) -> GrantOutcome {
    let grant = &policy.grant;
    if grant.block {
        return GrantOutcome::Block;
    }
    if grant.controls.is_empty() {
        return GrantOutcome::Satisfied;
    }
    let mut interactive = Vec::new();
    let mut non_interactive = Vec::new();
    for control in &grant.controls {
        match control_state(control, facts, superseded) {
            ControlState::Met if grant.any_of => return GrantOutcome::Satisfied,
            ControlState::Met => {}
            ControlState::Interactive => interactive.push(as_requirement(control)),
            ControlState::NonInteractive => non_interactive.push(control.clone()),
        }
    }
    if grant.any_of {
        // "Require one of the selected controls": prompt in the order defined.
        if interactive.is_empty() {
            GrantOutcome::Failed(non_interactive)
        } else {
            GrantOutcome::Pending(vec![interactive])
        }
    } else if !non_interactive.is_empty() {
        // Prompting is pointless when a control that cannot be prompted for is unmet.
        GrantOutcome::Failed(non_interactive)
    } else if interactive.is_empty() {
        GrantOutcome::Satisfied
    } else {
        GrantOutcome::Pending(interactive.into_iter().map(|c| vec![c]).collect())
    }
}

fn has_strength(policy: &CompiledPolicy) -> bool {
    policy.grant.controls.iter().any(|c| {
        matches!(
            c,
            Control::Mfa
                | Control::AuthenticationStrength(_)
                | Control::UnknownAuthenticationStrength(_)
        )
    })
}

fn merge_frequency(
    current: Option<SignInFrequency>,
    candidate: &SignInFrequency,
) -> Option<SignInFrequency> {
    let Some(window) = candidate.window_hours() else {
        return current;
    };
    match current {
        Some(existing) if existing.window_hours().is_some_and(|w| w <= window) => Some(existing),
        _ => Some(candidate.clone()),
    }
}

impl Decision {
    /// One decision for a sign-in that must pass several targets at once: an application and
    /// the authentication contexts (`acr_values`) it asked for. Any block blocks; otherwise the
    /// requirements of both stand; the traces are listed together, a policy that appears in
    /// both once (the stricter trace kept is the first that applied).
    pub fn combine(self, other: Decision) -> Decision {
        let outcome = match (self.outcome, other.outcome) {
            (Outcome::Block { mut policies }, Outcome::Block { policies: more }) => {
                for p in more {
                    if !policies.iter().any(|q| q.policy_id == p.policy_id) {
                        policies.push(p);
                    }
                }
                Outcome::Block { policies }
            }
            (block @ Outcome::Block { .. }, _) | (_, block @ Outcome::Block { .. }) => block,
            (
                Outcome::Requirements { mut requirements },
                Outcome::Requirements { requirements: more },
            ) => {
                for r in more {
                    if !requirements.contains(&r) {
                        requirements.push(r);
                    }
                }
                requirements.sort_by_key(Requirement::rank);
                Outcome::Requirements { requirements }
            }
            (req @ Outcome::Requirements { .. }, Outcome::Grant)
            | (Outcome::Grant, req @ Outcome::Requirements { .. }) => req,
            (Outcome::Grant, Outcome::Grant) => Outcome::Grant,
        };
        let mut trace = self.trace;
        for t in other.trace {
            match trace.iter_mut().find(|u| u.policy_id() == t.policy_id()) {
                Some(existing) if !existing.applies && t.applies => *existing = t,
                Some(_) => {}
                None => trace.push(t),
            }
        }
        let mut session = self.session;
        if let Some(sif) = &other.session.sign_in_frequency {
            session.sign_in_frequency = merge_frequency(session.sign_in_frequency.take(), sif);
        }
        session.persistent_browser =
            match (session.persistent_browser, other.session.persistent_browser) {
                (Some(PersistentBrowserMode::Never), _)
                | (_, Some(PersistentBrowserMode::Never)) => Some(PersistentBrowserMode::Never),
                (a, b) => a.or(b),
            };
        for key in other.session.not_enforced {
            if !session.not_enforced.contains(&key) {
                session.not_enforced.push(key);
            }
        }
        let status = match (self.status, other.status) {
            (ConditionalAccessStatus::Failure, _) | (_, ConditionalAccessStatus::Failure) => {
                ConditionalAccessStatus::Failure
            }
            (ConditionalAccessStatus::Success, _) | (_, ConditionalAccessStatus::Success) => {
                ConditionalAccessStatus::Success
            }
            (a, _) => a,
        };
        Decision {
            outcome,
            trace,
            session,
            status,
        }
    }
}

/// Decides a sign-in. Pure and deterministic.
pub fn evaluate(ctx: &SignInContext, set: &PolicySet) -> Decision {
    decide(ctx, set, None)
}

/// Decides a sign-in as if the policy at `skipped` were disabled: what the set would decide
/// without it, for the analyzer's shadowing check, without compiling a second set.
pub(crate) fn evaluate_without(ctx: &SignInContext, set: &PolicySet, skipped: usize) -> Decision {
    decide(ctx, set, Some(skipped))
}

/// Everything phase 2 below reads from an enforced policy that applies: its grant controls as
/// compiled, whether it fails closed, whether it targets register-security-info (the strength
/// precedence) and its session controls. Nothing else of a policy reaches a decision's outcome
/// or session, and the rest of phase 2 reads only the sign-in's methods, device, password
/// change, accepted terms and target, so two sign-ins with the same target kind and methods
/// whose applicable enforced policies have the same set of profiles get the same outcome (up to
/// which policy ids it names) and the same session controls. The analyzer memoises on this.
pub(crate) fn decision_profile(set: &PolicySet, index: usize) -> String {
    let compiled = &set.compiled[index];
    format!(
        "{:?}|{}|{}|{:?}",
        compiled.grant,
        compiled.unevaluable.is_some(),
        compiled.targets_register_security_info,
        set.policies()[index].session_controls,
    )
}

fn decide(ctx: &SignInContext, set: &PolicySet, skipped: Option<usize>) -> Decision {
    let policies = set.policies();
    let mut hits = Hits::new(policies.len());
    hits.mark(&set.users, &ctx.user_id);
    for group in &ctx.group_ids {
        hits.mark(&set.groups, group);
    }
    for role in &ctx.role_template_ids {
        hits.mark(&set.roles, role);
    }
    let locations: Vec<_> = ctx.named_locations.iter().map(|l| normalize(l)).collect();
    let trusted = locations
        .iter()
        .any(|l| set.trusted_locations.iter().any(|t| **t == **l));
    let facts = Facts {
        ctx,
        platform: ctx.platform.as_ref().and_then(platform_bit),
        client_app: client_app_bit(&ctx.client_app_type),
        sign_in_risk: risk_bit(&ctx.sign_in_risk),
        user_risk: risk_bit(&ctx.user_risk),
        has_location_signal: ctx.ip_address.is_some() || !locations.is_empty(),
        locations,
        trusted,
        target_id: match &ctx.target {
            Target::Application(id) | Target::AuthenticationContext(id) => normalize(id),
            Target::UserAction(_) => std::borrow::Cow::Borrowed(""),
        },
        methods: SessionMethods::new(&ctx.methods),
    };

    // Phase 1: which policies apply.
    let mut trace: Vec<PolicyTrace> = Vec::with_capacity(policies.len());
    for (index, (policy, compiled)) in policies.iter().zip(&set.compiled).enumerate() {
        let disabled = compiled.enforcement == Enforcement::Disabled || skipped == Some(index);
        let (applies, failed_condition, result) = if disabled {
            let failure = ConditionFailure {
                condition: AnalysisReason::PolicyNotEnabled,
                detail: FailureDetail::Disabled,
            };
            (false, Some(failure), AppliedPolicyResult::NotEnabled)
        } else {
            match check_conditions(index, compiled, &facts, &hits) {
                Ok(()) => (true, None, AppliedPolicyResult::Unknown),
                Err(
                    failure @ ConditionFailure {
                        detail: FailureDetail::Unevaluable(_),
                        ..
                    },
                ) => (true, Some(failure), AppliedPolicyResult::Unknown),
                Err(failure) => {
                    let result = if compiled.enforcement == Enforcement::ReportOnly {
                        AppliedPolicyResult::ReportOnlyNotApplied
                    } else {
                        AppliedPolicyResult::NotApplied
                    };
                    (false, Some(failure), result)
                }
            }
        };
        trace.push(PolicyTrace {
            policy: policy.clone(),
            applies,
            failed_condition,
            result,
            enforced_grant_controls: Vec::new(),
            grant: None,
            strength_superseded: false,
        });
    }

    // Register-security-info precedence: an enforced applicable policy naming the action with
    // a strength sets aside the strengths of policies that reach it through "All resources".
    let precedence = ctx.target == Target::UserAction(UserAction::RegisterSecurityInformation)
        && trace.iter().zip(&set.compiled).any(|(t, c)| {
            t.applies
                && t.failed_condition.is_none()
                && c.enforcement == Enforcement::Enforced
                && c.targets_register_security_info
                && has_strength(c)
        });

    // Phase 2: grant controls of the policies that apply.
    let mut blocking = Vec::new();
    let mut pending: Vec<Requirement> = Vec::new();
    let mut session = SessionOutcome::default();
    let mut any_enforced_applied = false;
    for (entry, compiled) in trace.iter_mut().zip(&set.compiled) {
        if !entry.applies {
            continue;
        }
        let enforced = compiled.enforcement == Enforcement::Enforced;
        any_enforced_applied |= enforced;
        entry.enforced_grant_controls = compiled.grant.controls.clone();
        let superseded =
            precedence && !compiled.targets_register_security_info && has_strength(compiled);
        entry.strength_superseded = superseded;
        let outcome = if entry.failed_condition.is_some() {
            GrantOutcome::FailedClosed
        } else {
            evaluate_grant(compiled, &facts, superseded)
        };
        entry.result = match (&outcome, enforced) {
            (GrantOutcome::Satisfied, true) => AppliedPolicyResult::Success,
            (GrantOutcome::Satisfied, false) => AppliedPolicyResult::ReportOnlySuccess,
            (GrantOutcome::Pending(_), false) => AppliedPolicyResult::ReportOnlyInterrupted,
            (_, true) => AppliedPolicyResult::Failure,
            (_, false) => AppliedPolicyResult::ReportOnlyFailure,
        };
        if enforced {
            let reason = match &outcome {
                GrantOutcome::Block => Some(BlockReason::BlockControl),
                GrantOutcome::Failed(unmet) => Some(BlockReason::UnmetControls(unmet.clone())),
                GrantOutcome::FailedClosed => {
                    entry
                        .failed_condition
                        .as_ref()
                        .map(|f| BlockReason::UnevaluableCondition {
                            condition: f.condition,
                            field: match &f.detail {
                                FailureDetail::Unevaluable(field) => field.clone(),
                                _ => String::new(),
                            },
                        })
                }
                GrantOutcome::Pending(requirements) => {
                    for alternatives in requirements {
                        match pending.iter_mut().find(|r| r.alternatives == *alternatives) {
                            Some(existing) => existing.policy_ids.push(entry.policy.id.clone()),
                            None => pending.push(Requirement {
                                alternatives: alternatives.clone(),
                                policy_ids: vec![entry.policy.id.clone()],
                            }),
                        }
                    }
                    None
                }
                GrantOutcome::Satisfied => None,
            };
            if let Some(reason) = reason {
                blocking.push(BlockingPolicy {
                    policy_id: entry.policy.id.clone(),
                    display_name: entry.policy.display_name.clone(),
                    reason,
                });
            }
            if let Some(controls) = &entry.policy.session_controls {
                if let Some(sif) = &controls.sign_in_frequency {
                    session.sign_in_frequency =
                        merge_frequency(session.sign_in_frequency.take(), sif);
                }
                if let Some(pb) = controls
                    .persistent_browser
                    .as_ref()
                    .filter(|pb| pb.is_enabled)
                {
                    session.persistent_browser = match (&session.persistent_browser, &pb.mode) {
                        (Some(PersistentBrowserMode::Never), _) => {
                            Some(PersistentBrowserMode::Never)
                        }
                        (_, Some(mode)) => Some(mode.clone()),
                        (existing, None) => existing.clone(),
                    };
                }
                for (key, value) in &controls.extra {
                    if !crate::model::is_annotation(key)
                        && crate::model::is_meaningful(value)
                        && !session.not_enforced.contains(key)
                    {
                        session.not_enforced.push(key.clone());
                    }
                }
            }
        }
        entry.grant = Some(outcome);
    }

    let (outcome, status) = if !blocking.is_empty() {
        (
            Outcome::Block { policies: blocking },
            ConditionalAccessStatus::Failure,
        )
    } else if !pending.is_empty() {
        let mut requirements = drop_implied_strengths(pending);
        requirements.sort_by_key(Requirement::rank);
        (
            Outcome::Requirements { requirements },
            ConditionalAccessStatus::Failure,
        )
    } else if any_enforced_applied {
        (Outcome::Grant, ConditionalAccessStatus::Success)
    } else {
        (Outcome::Grant, ConditionalAccessStatus::NotApplied)
    };
    if matches!(outcome, Outcome::Block { .. }) {
        session = SessionOutcome::default();
    }
    Decision {
        outcome,
        trace,
        session,
        status,
    }
}

/// Every strength must be met; when meeting one strength always meets another (phishing-
/// resistant always meets Multifactor), asking for the weaker one too would only add a prompt.
fn drop_implied_strengths(requirements: Vec<Requirement>) -> Vec<Requirement> {
    let single_strength = |r: &Requirement| match r.alternatives.as_slice() {
        [Control::AuthenticationStrength(s)] => Some(s.clone()),
        _ => None,
    };
    let strengths: Vec<Option<Arc<AuthenticationStrength>>> =
        requirements.iter().map(single_strength).collect();
    let mut dropped = vec![false; requirements.len()];
    for i in 0..requirements.len() {
        let Some(weaker) = &strengths[i] else {
            continue;
        };
        for j in 0..requirements.len() {
            if i == j || dropped[j] {
                continue;
            }
            let Some(stronger) = &strengths[j] else {
                continue;
            };
            let mutual = weaker.implies(stronger);
            if stronger.implies(weaker) && (!mutual || j < i) {
                dropped[i] = true;
                break;
            }
        }
    }
    // The policies asking for a dropped strength are served by the stronger one that stays.
    let mut slots: Vec<Option<Requirement>> = requirements.into_iter().map(Some).collect();
    for i in 0..slots.len() {
        if !dropped[i] {
            continue;
        }
        let Some(requirement) = slots[i].take() else {
            continue;
        };
        let target = (0..slots.len()).find(|&j| {
            !dropped[j]
                && matches!((&strengths[j], &strengths[i]), (Some(stronger), Some(weaker)) if stronger.implies(weaker))
        });
        if let Some(Some(stronger)) = target.map(|j| &mut slots[j]) {
            for id in requirement.policy_ids {
                if !stronger.policy_ids.contains(&id) {
                    stronger.policy_ids.push(id);
                }
            }
        }
    }
    slots.into_iter().flatten().collect()
}
