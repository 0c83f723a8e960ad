//! The sign-in log: one [`SignInLogEntry`] per attempt — success, failure or interrupt — in the
//! shape of Graph's `signIn`, so an administrator reads it as they would Entra's. No entry ever
//! holds a secret: passes, passwords, codes and tokens are never passed in here.
//!
//! Conditional Access results are filled in by the sign-in pipeline; a first-factor attempt that
//! fails before policies are evaluated is logged with `notApplied`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Result;
use crate::directory::model::User;
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::logs::compact::AppliedPolicies;
use crate::logs::store::{LogChange as Change, LogStore};
use crate::session::{AuthSession, MethodKind};
use portcullis_policy::Decision;

/// The facts of the request a sign-in came in on, extracted by the web layer.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub correlation_id: Uuid,
    pub ip_address: Option<String>,
    /// The ISO 3166-1 alpha-2 country of `ip_address`, when the server's country database
    /// places it.
    pub country: Option<String>,
    pub user_agent: String,
    /// The application a sign-in flow is for, when the attempt is a step of one. A failed step
    /// is logged under it; a successful one is not logged on its own, because the flow logs its
    /// outcome (with Conditional Access) right after — one entry per attempt.
    pub application: Option<FlowApplication>,
}

/// The application of a sign-in flow, as the log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowApplication {
    pub app_id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInLogEntry {
    pub id: Uuid,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
    /// Lower case, as Entra logs it; what the person typed when no account matched.
    pub user_principal_name: String,
    pub user_id: Option<Uuid>,
    pub user_display_name: Option<String>,
    pub app_display_name: String,
    pub app_id: String,
    pub ip_address: Option<String>,
    pub client_app_used: String,
    pub correlation_id: Uuid,
    pub is_interactive: bool,
    pub user_agent: String,
    pub device_detail: DeviceDetail,
    pub status: SignInStatus,
    /// `success`, `failure` or `notApplied`.
    pub conditional_access_status: String,
    /// Packed against the policy revision when the entry comes from a decision; serialized
    /// as Graph's list either way.
    #[schema(value_type = Vec<AppliedConditionalAccessPolicy>)]
    pub applied_conditional_access_policies: AppliedPolicies,
    pub authentication_details: Vec<AuthenticationDetail>,
    /// `singleFactorAuthentication` or `multiFactorAuthentication`.
    pub authentication_requirement: String,
    /// The authentication strength asked for, when a policy asked for one.
    pub authentication_strength: Option<String>,
    /// What Conditional Access decided this sign-in on, for replay; stored beside the entry,
    /// never part of Graph's `signIn` (so never in an answer), and read back only by replay.
    #[serde(skip)]
    pub replay_context: Option<crate::logs::replay_context::ReplayContext>,
    /// Where the sign-in came from, as far as the server's country database tells.
    #[serde(default)]
    pub location: SignInLocation,
}

/// Graph's `signInLocation`, to the country: Portcullis reads a country database only, so
/// city, state and coordinates are never known.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInLocation {
    /// ISO 3166-1 alpha-2; `null` when the address could not be placed or no database is
    /// configured.
    pub country_or_region: Option<String>,
}

/// One policy's result in a sign-in, as Graph's `appliedConditionalAccessPolicy`: every
/// policy is listed, applied or not, so the entry says why each one did or did not matter.
///
/// A type rather than a JSON object built per policy: a sign-in lists every policy (50 in the
/// benchmark's tenant), and building them as JSON maps was a tenth of the server's time per
/// passkey sign-in (BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedConditionalAccessPolicy {
    pub id: String,
    pub display_name: String,
    /// `success`, `failure`, `notApplied`, `notEnabled`, or `reportOnlySuccess`,
    /// `reportOnlyFailure`, `reportOnlyNotApplied`, `reportOnlyInterrupted`.
    pub result: String,
    /// The grant controls the policy enforced (labels as the portal shows them).
    pub enforced_grant_controls: Vec<String>,
    pub enforced_session_controls: Vec<String>,
    /// Graph beta's name for the condition that kept the policy from applying.
    pub conditions_not_satisfied: Option<String>,
    /// Portcullis extension: why, in a sentence an administrator reads in the log.
    pub result_reason: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDetail {
    pub operating_system: String,
    pub browser: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// 0 for success; Entra's code otherwise (50126, 50053, 50057, 53003…).
    pub error_code: u32,
    pub failure_reason: Option<String>,
    pub additional_details: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationDetail {
    pub authentication_method: String,
    pub succeeded: bool,
    pub authentication_step_result_detail: String,
    pub authentication_step_requirement: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub authentication_step_date_time: OffsetDateTime,
}

/// The portal's name for a client app type.
fn client_app_label(t: &portcullis_policy::ClientAppType) -> &'static str {
    use portcullis_policy::ClientAppType as C;
    match t {
        C::Browser => "Browser",
        C::MobileAppsAndDesktopClients => "Mobile Apps and Desktop clients",
        C::ExchangeActiveSync | C::EasSupported => "Exchange ActiveSync",
        _ => "Other clients",
    }
}

/// The application a first factor was given for when no application asked (the pages).
pub const MY_SIGN_INS_APP_ID: &str = "19db86c3-b2b9-44cc-b339-36da233a3be2";
pub const MY_SIGN_INS_APP_NAME: &str = "My Signins";

/// One step of a sign-in as it went.
pub struct Attempt<'a> {
    pub facts: &'a RequestFacts,
    /// The account, when one matched.
    pub user: Option<&'a User>,
    /// What was typed, for failures without an account.
    pub typed_user_principal_name: &'a str,
    pub method: MethodKind,
    pub succeeded: bool,
    pub error_code: u32,
    pub failure_reason: Option<String>,
}

/// Writes the entry for a first-factor attempt made through the pages (no application yet;
/// Conditional Access not evaluated).
pub async fn record_first_factor<S: LogStore + ?Sized>(
    deps: &Deps<S>,
    attempt: Attempt<'_>,
) -> Result<Option<SignInLogEntry>> {
    let Some(entry) = first_factor_entry(deps, attempt) else {
        return Ok(None);
    };
    deps.store
        .commit(
            vec![Change::InsertSignInLogEntry(Box::new(entry.clone()))],
            None,
        )
        .await?;
    Ok(Some(entry))
}

/// The entry for a first-factor attempt, for a caller that writes it with what the attempt
/// changed. `None` for a success inside a flow: the flow's own entry records it.
pub fn first_factor_entry<S: LogStore + ?Sized>(
    deps: &Deps<S>,
    attempt: Attempt<'_>,
) -> Option<SignInLogEntry> {
    if attempt.succeeded && attempt.facts.application.is_some() {
        return None;
    }
    let (app_id, app_display_name) = match &attempt.facts.application {
        Some(app) => (app.app_id.clone(), app.display_name.clone()),
        None => (
            MY_SIGN_INS_APP_ID.to_string(),
            MY_SIGN_INS_APP_NAME.to_string(),
        ),
    };
    let ua = portcullis_useragent::parse(&attempt.facts.user_agent);
    let now = deps.clock.now();
    let entry = SignInLogEntry {
        id: deps.entropy.ordered_uuid(now),
        created_date_time: now,
        user_principal_name: attempt
            .user
            .map(|u| u.user_principal_name.to_lowercase())
            .unwrap_or_else(|| {
                attempt
                    .typed_user_principal_name
                    .trim()
                    .to_lowercase()
                    .chars()
                    .take(256)
                    .collect()
            }),
        user_id: attempt.user.map(|u| u.id),
        user_display_name: attempt.user.map(|u| u.display_name.clone()),
        app_display_name,
        app_id,
        ip_address: attempt.facts.ip_address.clone(),
        client_app_used: client_app_label(&ua.client_app_type).to_string(),
        correlation_id: attempt.facts.correlation_id,
        is_interactive: true,
        user_agent: attempt.facts.user_agent.chars().take(512).collect(),
        device_detail: DeviceDetail {
            operating_system: ua.operating_system,
            browser: ua.browser,
        },
        status: SignInStatus {
            error_code: if attempt.succeeded {
                0
            } else {
                attempt.error_code
            },
            failure_reason: attempt.failure_reason.clone(),
            additional_details: None,
        },
        conditional_access_status: "notApplied".to_string(),
        applied_conditional_access_policies: AppliedPolicies::default(),
        authentication_details: vec![AuthenticationDetail {
            authentication_method: attempt.method.label().to_string(),
            succeeded: attempt.succeeded,
            authentication_step_result_detail: if attempt.succeeded {
                "Correct credential".to_string()
            } else {
                attempt
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| "Incorrect credential".to_string())
            },
            authentication_step_requirement: "Primary authentication".to_string(),
            authentication_step_date_time: now,
        }],
        authentication_requirement: "singleFactorAuthentication".to_string(),
        authentication_strength: None,
        replay_context: None,
        location: SignInLocation {
            country_or_region: attempt.facts.country.clone(),
        },
    };
    Some(entry)
}

/// One outcome of a sign-in flow after Conditional Access was evaluated.
pub struct FlowRecord<'a> {
    pub facts: &'a RequestFacts,
    pub user: &'a User,
    pub app_id: String,
    pub app_display_name: &'a str,
    /// The session as it stands: every method in it is an authentication detail.
    pub session: &'a AuthSession,
    pub decision: &'a Decision,
    /// 0 for granted; 50074 / 50079 for an interrupt; 53003 for a block.
    pub error_code: u32,
    pub failure_reason: Option<String>,
}

/// `appliedConditionalAccessPolicies`, from the engine's trace: one per policy, with its result
/// (report-only ones as `reportOnly…`) and the grant controls it enforced. This is what the
/// previous format stored whole; a new entry packs the trace instead
/// ([`AppliedPolicies::of_trace`]) and reads back equal to it.
pub fn applied_policies(decision: &Decision) -> Vec<AppliedConditionalAccessPolicy> {
    decision
        .trace
        .iter()
        .map(|t| AppliedConditionalAccessPolicy {
            id: t.policy_id().to_string(),
            display_name: t.display_name().to_string(),
            result: t.result.as_str().to_string(),
            enforced_grant_controls: t
                .enforced_grant_controls
                .iter()
                .map(portcullis_policy::Control::label)
                .collect(),
            enforced_session_controls: Vec::new(),
            conditions_not_satisfied: t
                .failed_condition
                .as_ref()
                .map(|f| f.condition.as_str().to_string()),
            result_reason: result_reason(t),
        })
        .collect()
}

/// Why a policy had the result it had in a sign-in.
fn result_reason(trace: &portcullis_policy::PolicyTrace) -> String {
    use portcullis_policy::GrantOutcome;
    let labels = |controls: &[portcullis_policy::Control]| {
        controls
            .iter()
            .map(portcullis_policy::Control::label)
            .collect::<Vec<_>>()
    };
    // Labels are made once here and borrowed below, as the stored form borrows its table.
    let (pending, failed) = match &trace.grant {
        Some(GrantOutcome::Pending(options)) => {
            (options.iter().map(|o| labels(o)).collect(), Vec::new())
        }
        Some(GrantOutcome::Failed(controls)) => (Vec::new(), labels(controls)),
        _ => (Vec::new(), Vec::new()),
    };
    fn borrow(list: &[String]) -> Vec<&str> {
        list.iter().map(String::as_str).collect()
    }
    let grant = trace.grant.as_ref().map(|g| match g {
        GrantOutcome::Block => GrantLabels::Block,
        GrantOutcome::Satisfied => GrantLabels::Satisfied,
        GrantOutcome::Pending(_) => {
            GrantLabels::Pending(pending.iter().map(|o| borrow(o)).collect())
        }
        GrantOutcome::Failed(_) => GrantLabels::Failed(borrow(&failed)),
        GrantOutcome::FailedClosed => GrantLabels::FailedClosed,
    });
    reason_text(
        trace.applies,
        trace.failed_condition.as_ref(),
        grant.as_ref(),
    )
}

/// How an applicable policy's grant controls stood, with each control as its label: what
/// [`reason_text`] needs of a `GrantOutcome`, which the stored form keeps as labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantLabels<'a> {
    Block,
    Satisfied,
    Pending(Vec<Vec<&'a str>>),
    Failed(Vec<&'a str>),
    FailedClosed,
}

/// The sentence of `resultReason`: the one function behind both a new entry and a stored one
/// read back, so that the two always say the same.
pub fn reason_text(
    applies: bool,
    failure: Option<&portcullis_policy::ConditionFailure>,
    grant: Option<&GrantLabels<'_>>,
) -> String {
    if let Some(failure) = failure {
        return if applies {
            format!("Applied, failing closed: {failure}.")
        } else {
            format!("Not applied: {failure}.")
        };
    }
    match grant {
        Some(GrantLabels::Block) => "All conditions matched; the policy blocks access.".into(),
        Some(GrantLabels::Satisfied) => {
            "All conditions matched; its grant controls were satisfied.".into()
        }
        Some(GrantLabels::Pending(options)) => format!(
            "All conditions matched; still required: {}.",
            options
                .iter()
                .map(|o| o.join(", "))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Some(GrantLabels::Failed(controls)) => format!(
            "All conditions matched; these controls cannot be satisfied: {}.",
            controls.join(", ")
        ),
        Some(GrantLabels::FailedClosed) => {
            "All conditions matched, but one could not be evaluated; failing closed.".into()
        }
        None => "All conditions matched.".into(),
    }
}

/// The entry for one outcome of a sign-in flow: granted, interrupted or blocked. The flow
/// writes it in the same transaction as the step it records, so a flow never moves without its
/// entry and one sign-in costs one commit.
pub fn flow_entry<S: LogStore + ?Sized>(deps: &Deps<S>, record: FlowRecord<'_>) -> SignInLogEntry {
    let ua = portcullis_useragent::parse(&record.facts.user_agent);
    let now = deps.clock.now();
    let decision = record.decision;
    // The strength asked for by an enforced policy that applies (the first, as Entra shows one).
    let strength = decision
        .trace
        .iter()
        .filter(|t| t.applies && t.policy.state.is_enforced())
        .flat_map(|t| t.enforced_grant_controls.iter())
        .find_map(|c| c.strength().map(|s| s.name().to_string()));
    let authentication_details = record
        .session
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| AuthenticationDetail {
            authentication_method: m.method.label().to_string(),
            succeeded: true,
            authentication_step_result_detail: if i == 0 {
                "Correct credential".to_string()
            } else {
                "MFA successfully completed".to_string()
            },
            authentication_step_requirement: if i == 0 {
                "Primary authentication".to_string()
            } else {
                "Multifactor authentication".to_string()
            },
            authentication_step_date_time: m.at,
        })
        .collect();
    SignInLogEntry {
        id: deps.entropy.ordered_uuid(now),
        created_date_time: now,
        user_principal_name: record.user.user_principal_name.to_lowercase(),
        user_id: Some(record.user.id),
        user_display_name: Some(record.user.display_name.clone()),
        app_display_name: record.app_display_name.to_string(),
        app_id: record.app_id,
        ip_address: record.facts.ip_address.clone(),
        client_app_used: client_app_label(&ua.client_app_type).to_string(),
        correlation_id: record.facts.correlation_id,
        is_interactive: true,
        user_agent: record.facts.user_agent.chars().take(512).collect(),
        device_detail: DeviceDetail {
            operating_system: ua.operating_system,
            browser: ua.browser,
        },
        status: SignInStatus {
            error_code: record.error_code,
            failure_reason: record.failure_reason,
            additional_details: None,
        },
        conditional_access_status: decision.status.as_str().to_string(),
        applied_conditional_access_policies: AppliedPolicies::of_trace(&decision.trace),
        authentication_details,
        authentication_requirement: if strength.is_some() {
            "multiFactorAuthentication".to_string()
        } else {
            "singleFactorAuthentication".to_string()
        },
        authentication_strength: strength,
        replay_context: None,
        location: SignInLocation {
            country_or_region: record.facts.country.clone(),
        },
    }
}

/// How long sign-in log entries are kept unless configured otherwise (Entra keeps 30 days).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// Deletes entries older than the retention period; how many went.
pub async fn purge_expired<S: LogStore + ?Sized>(
    deps: &Deps<S>,
    retention_days: u32,
) -> Result<u64> {
    let before = deps.clock.now() - time::Duration::days(i64::from(retention_days));
    deps.store.purge_sign_ins(before).await
}

/// The most recent sign-in log entries of one person, newest first, for their own "My
/// sign-ins" page: only entries recorded against their account (an attempt with an unknown
/// username belongs to nobody), at most `top` of them.
pub async fn recent_for_user<S: LogStore + ?Sized>(
    deps: &Deps<S>,
    user_id: Uuid,
    top: usize,
) -> Result<Vec<SignInLogEntry>> {
    let query = crate::kernel::query::ListQuery {
        filter: vec![crate::kernel::query::Predicate {
            field: "user_id",
            op: crate::kernel::query::Op::Eq,
            value: crate::kernel::query::Value::Text(user_id.to_string()),
        }],
        top: top.clamp(1, 100),
        after: None,
        count: false,
    };
    Ok(deps.store.list_sign_ins(&query).await?.items)
}

/// Reads the sign-in log for administrators (Graph's `auditLogs/signIns`).
#[derive(Clone)]
pub struct SignInLogs {
    pub(super) deps: Deps<dyn LogStore>,
}

impl SignInLogs {
    pub fn new(deps: Deps<dyn LogStore>) -> Self {
        SignInLogs { deps }
    }

    /// Newest first.
    pub async fn list(
        &self,
        _grant: &crate::directory::authz::Granted<crate::directory::authz::ReadAuditLogs>,
        query: &crate::kernel::query::ListQuery,
    ) -> Result<crate::kernel::query::Page<SignInLogEntry>> {
        self.deps.store.list_sign_ins(query).await
    }
}

impl SignInLogs {
    /// A person's own recent sign-ins (see [`recent_for_user`]).
    pub async fn recent_for_user(&self, user_id: Uuid, top: usize) -> Result<Vec<SignInLogEntry>> {
        recent_for_user(&self.deps, user_id, top).await
    }
}
