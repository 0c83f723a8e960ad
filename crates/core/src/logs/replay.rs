//! Replay: what a candidate set of Conditional Access policies would have done to the sign-ins
//! already in the log, and the report-only summary (Entra's report-only workbook) from the
//! results the log recorded.
//!
//! Replay decides each logged sign-in again with the pure engine, on the context the entry
//! kept ([`ReplayContext`]: memberships as they were then, the request's facts, the session's
//! methods), and compares the outcome with the one recorded then. The log is read in batches
//! in time order ([`LogStore::logged_decisions`]), so memory stays bounded by the batch, the
//! listed sign-ins (at most `top`) and one tally per person and application seen.
//!
//! What it must never do: change anything, or guess. An entry without a context (logged before
//! contexts were kept, or a first-factor failure that never reached Conditional Access) or with
//! one that does not read back is counted as skipped, never decided on invented facts.

use std::collections::HashMap;

use portcullis_policy::graph;
use portcullis_policy::{ConditionalAccessPolicy, Decision, Outcome, PolicySet};
use serde::Serialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::conditional_access::{ConditionalAccess, MAX_POLICIES};
use crate::directory::authz::{Granted, ReadAuditLogs, ReadPolicies};
use crate::kernel::clock::graph_datetime;
use crate::kernel::query::{Cursor, ListQuery, Op, Predicate, Value as QueryValue};
use crate::logs::replay_context::{ReplayContext, Verdict};
use crate::logs::sign_in::SignInLogs;
use crate::logs::store::LoggedDecision;
use crate::{Error, Result};

/// The window replayed when the request names none.
pub const DEFAULT_WINDOW: Duration = Duration::days(7);
/// Changed sign-ins listed when the request does not say; the counts cover them all.
pub const DEFAULT_TOP: usize = 1_000;
/// The most changed sign-ins one answer lists.
pub const MAX_TOP: usize = 10_000;
/// Log entries read per batch.
const BATCH: usize = 500;

/// The policies to replay the log against.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidate {
    /// The tenant's policies as they are now.
    Tenant,
    /// This set instead of the tenant's.
    WholeSet(Vec<ConditionalAccessPolicy>),
    /// The tenant's, changed.
    Changes(Vec<PolicyChange>),
}

/// One change to the tenant's policies.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChange {
    /// Replaces the policy with the same id, or adds it when there is none. Boxed: a policy
    /// is large beside an id.
    Put(Box<ConditionalAccessPolicy>),
    Delete(String),
}

/// A replay request, read from `POST …/conditionalAccess/replay`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRequest {
    pub candidate: Candidate,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub top: usize,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid(field.to_owned(), format!("{field}: {message}"))
}

/// The most days a window given in days may span.
pub const MAX_DAYS: u32 = 3_650;

/// `from` and `to` from a body or a query: Graph date-times, `to` defaulting to now and `from`
/// to `days` (seven unless given) before `to`. `days` and `from` together are refused.
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
    days: Option<&str>,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let days = match days.map(str::trim) {
        None => None,
        Some(_) if from.is_some() => {
            return Err(invalid("days", "give `from` or `days`, not both"));
        }
        Some(text) => Some(
            text.parse::<u32>()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| {
                    invalid(
                        "days",
                        format!("must be a whole number from 1 to {MAX_DAYS}"),
                    )
                })?,
        ),
    };
    let parse = |field: &str, text: &str| {
        OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                invalid(
                    field,
                    format!("`{text}` is not a date-time such as 2026-01-31T09:00:00Z"),
                )
            },
        )
    };
    let to = match to {
        Some(text) => parse("to", text)?,
        None => now,
    };
    let from = match from {
        Some(text) => parse("from", text)?,
        None => to - days.map_or(DEFAULT_WINDOW, |d| Duration::days(i64::from(d))),
    };
    if from > to {
        return Err(invalid("from", "must not be after `to`"));
    }
    Ok((from, to))
}

/// One policy from a request body, read as the policies API reads it.
fn policy(field: &str, value: &Value) -> Result<ConditionalAccessPolicy> {
    if !value.is_object() {
        return Err(invalid(field, "a policy is a JSON object"));
    }
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut found = graph::import_policies(&bytes).map_err(|e| match &e {
        graph::ImportError::Field {
            field: member,
            message,
            ..
        } if !member.is_empty() && member != "." => Error::invalid(
            format!("{field}.{member}"),
            format!("{field}.{member}: {message}"),
        ),
        _ => invalid(field, e),
    })?;
    let policy = match (found.pop(), found.is_empty()) {
        (Some(policy), true) => policy,
        _ => return Err(invalid(field, "one policy per entry")),
    };
    ConditionalAccess::validate_policy(&policy).map_err(|e| match e {
        Error::Invalid {
            target, message, ..
        } => {
            let member = target.as_deref().unwrap_or("");
            Error::invalid(format!("{field}.{member}"), format!("{field}.{message}"))
        }
        other => other,
    })?;
    Ok(policy)
}

impl ReplayRequest {
    /// Reads `{"policies": [...]}` (a whole set) or `{"changes": [{"id", "policy"}]}` (the
    /// tenant's, changed; `"policy": null` deletes), with optional `from`, `to` and `top`.
    /// Neither: the tenant's policies as they are now.
    pub fn from_json(bytes: &[u8], now: OffsetDateTime) -> Result<Self> {
        let text = graph::decode_text(bytes).map_err(|e| invalid("body", e))?;
        let body: Value = if crate::kernel::json::is_blank(text.as_bytes()) {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(&text).map_err(|e| invalid("body", e))?
        };
        let Value::Object(members) = body else {
            return Err(invalid("body", "must be a JSON object"));
        };
        for key in members.keys() {
            if !["policies", "changes", "from", "to", "days", "top"].contains(&key.as_str()) {
                return Err(invalid(
                    key,
                    "not a member of a replay request (policies, changes, from, to, days, top)",
                ));
            }
        }
        let text_member = |name: &str| -> Result<Option<&str>> {
            match members.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(invalid(name, "must be a date-time string")),
            }
        };
        let days = match members.get("days") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(invalid("days", "must be a whole number of days")),
        };
        let (from, to) = window(
            text_member("from")?,
            text_member("to")?,
            days.as_deref(),
            now,
        )?;
        let top = match members.get("top") {
            None | Some(Value::Null) => DEFAULT_TOP,
            Some(value) => value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_TOP).contains(n))
                .ok_or_else(|| {
                    invalid("top", format!("must be a whole number from 1 to {MAX_TOP}"))
                })?,
        };
        let candidate = Candidate::from_members(&members)?;
        Ok(ReplayRequest {
            candidate,
            from,
            to,
            top,
        })
    }
}

impl Candidate {
    /// The candidate a request body names: `policies` (a whole set) or `changes` (to the
    /// tenant's), each policy read as the policies API reads it; neither, the tenant's.
    pub(crate) fn from_members(members: &serde_json::Map<String, Value>) -> Result<Self> {
        Ok(match (members.get("policies"), members.get("changes")) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "changes",
                    "give `policies` (a whole set) or `changes` (to the tenant's), not both",
                ));
            }
            (Some(Value::Array(list)), None) => Candidate::WholeSet(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| policy(&format!("policies[{i}]"), v))
                    .collect::<Result<_>>()?,
            ),
            (Some(_), None) => return Err(invalid("policies", "must be an array of policies")),
            (None, Some(Value::Array(list))) => Candidate::Changes(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| change(i, v))
                    .collect::<Result<_>>()?,
            ),
            (None, Some(_)) => return Err(invalid("changes", "must be an array of changes")),
            (None, None) => Candidate::Tenant,
        })
    }
}

fn change(index: usize, value: &Value) -> Result<PolicyChange> {
    let field = format!("changes[{index}]");
    let Value::Object(members) = value else {
        return Err(invalid(&field, "a change is {\"id\", \"policy\"}"));
    };
    if let Some(key) = members
        .keys()
        .find(|k| !["id", "policy"].contains(&k.as_str()))
    {
        return Err(invalid(
            &format!("{field}.{key}"),
            "a change has only `id` and `policy`",
        ));
    }
    let id = match members.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_owned()),
        Some(_) => return Err(invalid(&format!("{field}.id"), "must be a policy id")),
    };
    match members.get("policy") {
        None | Some(Value::Null) => match id {
            Some(id) => Ok(PolicyChange::Delete(id)),
            None => Err(invalid(
                &format!("{field}.policy"),
                "a new policy needs its body; a deletion needs an id",
            )),
        },
        Some(body) => {
            let mut policy = policy(&format!("{field}.policy"), body)?;
            match (id, policy.id.trim().is_empty()) {
                (Some(id), true) => policy.id = id,
                (Some(id), false) if !id.eq_ignore_ascii_case(&policy.id) => {
                    return Err(invalid(
                        &format!("{field}.id"),
                        "differs from the policy's own id",
                    ));
                }
                _ => {}
            }
            Ok(PolicyChange::Put(Box::new(policy)))
        }
    }
}

/// A policy named in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    pub id: String,
    pub display_name: String,
}

/// A sign-in whose outcome the candidate changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedSignIn {
    pub id: Uuid,
    pub user_principal_name: String,
    pub user_id: Option<Uuid>,
    pub app_id: String,
    #[serde(with = "graph_datetime")]
    pub created_date_time: OffsetDateTime,
    /// The outcome recorded when the sign-in was decided.
    pub before: Verdict,
    /// The candidate's outcome.
    pub after: Verdict,
    /// The candidate's policies behind `after`: those that block, or that ask for something;
    /// none when it grants.
    pub policies: Vec<PolicyRef>,
}

/// Counts for one person or application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Sign-ins decided again.
    pub evaluated: u64,
    /// Of those, how many the candidate decides differently…
    pub changed: u64,
    /// …and how those end with it.
    pub now_blocked: u64,
    pub now_challenged: u64,
    pub now_granted: u64,
}

impl Tally {
    fn count(&mut self, before: Verdict, after: Verdict) {
        self.evaluated += 1;
        if before != after {
            self.changed += 1;
            match after {
                Verdict::Block => self.now_blocked += 1,
                Verdict::Requirements => self.now_challenged += 1,
                Verdict::Grant => self.now_granted += 1,
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserTally {
    pub user_principal_name: String,
    pub user_id: Option<Uuid>,
    #[serde(flatten)]
    pub counts: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationTally {
    pub app_id: String,
    #[serde(flatten)]
    pub counts: Tally,
}

/// The answer of a replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    #[serde(with = "graph_datetime")]
    pub from: OffsetDateTime,
    #[serde(with = "graph_datetime")]
    pub to: OffsetDateTime,
    /// Policies in the candidate set.
    pub candidate_policies: usize,
    /// Sign-ins in the window decided again.
    pub evaluated: u64,
    /// Of those, how many the candidate decides differently.
    pub changed: u64,
    /// Entries in the window without a replayable context.
    pub skipped: u64,
    /// The changed sign-ins, oldest first, at most `top` of them.
    pub sign_ins: Vec<ReplayedSignIn>,
    /// More sign-ins changed than are listed.
    pub sign_ins_truncated: bool,
    /// People with at least one changed sign-in, most changed first.
    pub by_user: Vec<UserTally>,
    /// Applications with at least one changed sign-in, most changed first.
    pub by_application: Vec<ApplicationTally>,
}

/// The candidate's policies behind an outcome.
fn deciding_policies(decision: &Decision, set: &PolicySet) -> Vec<PolicyRef> {
    let name = |id: &str| {
        set.policies()
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.display_name.clone())
            .unwrap_or_default()
    };
    let mut out: Vec<PolicyRef> = Vec::new();
    let mut add = |id: &str, display_name: String| {
        if !out.iter().any(|p| p.id == id) {
            out.push(PolicyRef {
                id: id.to_owned(),
                display_name,
            });
        }
    };
    match &decision.outcome {
        Outcome::Grant => {}
        Outcome::Block { policies } => {
            for p in policies {
                add(&p.policy_id, p.display_name.clone());
            }
        }
        Outcome::Requirements { requirements } => {
            for id in requirements.iter().flat_map(|r| r.policy_ids.iter()) {
                add(id, name(id));
            }
        }
    }
    out
}

/// What a batch of the log holds, decided under one set.
struct Replayer<'a> {
    set: &'a PolicySet,
    top: usize,
    report: ReplayReport,
    users: HashMap<String, UserTally>,
    applications: HashMap<String, Tally>,
}

impl Replayer<'_> {
    fn entry(&mut self, logged: &LoggedDecision) {
        let Some(context) = logged
            .context
            .as_deref()
            .and_then(|bytes| ReplayContext::decode(bytes).ok())
        else {
            self.report.skipped += 1;
            return;
        };
        let decision = context.decide(self.set);
        let (before, after) = (context.verdict, Verdict::of(&decision.outcome));
        self.report.evaluated += 1;
        self.users
            .entry(logged.user_principal_name.clone())
            .or_insert_with(|| UserTally {
                user_principal_name: logged.user_principal_name.clone(),
                user_id: logged.user_id,
                counts: Tally::default(),
            })
            .counts
            .count(before, after);
        self.applications
            .entry(logged.app_id.clone())
            .or_default()
            .count(before, after);
        if before == after {
            return;
        }
        self.report.changed += 1;
        if self.report.sign_ins.len() >= self.top {
            self.report.sign_ins_truncated = true;
            return;
        }
        self.report.sign_ins.push(ReplayedSignIn {
            id: logged.id,
            user_principal_name: logged.user_principal_name.clone(),
            user_id: logged.user_id,
            app_id: logged.app_id.clone(),
            created_date_time: logged.created,
            before,
            after,
            policies: deciding_policies(&decision, self.set),
        });
    }

    fn finish(mut self) -> ReplayReport {
        let mut users: Vec<UserTally> = self
            .users
            .into_values()
            .filter(|u| u.counts.changed > 0)
            .collect();
        users.sort_by(|a, b| {
            b.counts
                .changed
                .cmp(&a.counts.changed)
                .then_with(|| a.user_principal_name.cmp(&b.user_principal_name))
        });
        let mut applications: Vec<ApplicationTally> = self
            .applications
            .into_iter()
            .filter(|(_, t)| t.changed > 0)
            .map(|(app_id, counts)| ApplicationTally { app_id, counts })
            .collect();
        applications.sort_by(|a, b| {
            b.counts
                .changed
                .cmp(&a.counts.changed)
                .then_with(|| a.app_id.cmp(&b.app_id))
        });
        self.report.by_user = users;
        self.report.by_application = applications;
        self.report
    }
}

/// Report-only results of one policy over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportOnlyTally {
    pub id: String,
    pub display_name: String,
    /// The policy's state now; `null` when it no longer exists.
    pub state: Option<String>,
    /// `reportOnlyFailure`: sign-ins it would have blocked.
    pub would_block: u64,
    /// `reportOnlyInterrupted`: sign-ins it would have asked for more (a stronger method,
    /// registration, …).
    pub would_challenge: u64,
    /// `reportOnlySuccess`: it applied and the sign-in already met it.
    pub satisfied: u64,
    /// `reportOnlyNotApplied`.
    pub not_applied: u64,
}

/// Entra's report-only workbook, from the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportOnlySummary {
    #[serde(with = "graph_datetime")]
    pub from: OffsetDateTime,
    #[serde(with = "graph_datetime")]
    pub to: OffsetDateTime,
    /// Sign-ins in the window that Conditional Access evaluated.
    pub evaluated: u64,
    /// Every policy that is report-only now or has report-only results in the window.
    pub policies: Vec<ReportOnlyTally>,
}

impl SignInLogs {
    /// Decides every replayable sign-in in the window again under the candidate and reports
    /// those whose outcome changes. Reading both policies and sign-in logs is what it takes.
    pub async fn replay(
        &self,
        _policies: &Granted<ReadPolicies>,
        _logs: &Granted<ReadAuditLogs>,
        conditional_access: &ConditionalAccess,
        body: &[u8],
    ) -> Result<ReplayReport> {
        let request = ReplayRequest::from_json(body, self.deps.clock.now())?;
        let set = candidate_set(conditional_access, request.candidate).await?;
        let mut replayer = Replayer {
            set: &set,
            top: request.top,
            report: ReplayReport {
                from: request.from,
                to: request.to,
                candidate_policies: set.policies().len(),
                evaluated: 0,
                changed: 0,
                skipped: 0,
                sign_ins: Vec::new(),
                sign_ins_truncated: false,
                by_user: Vec::new(),
                by_application: Vec::new(),
            },
            users: HashMap::new(),
            applications: HashMap::new(),
        };
        let mut after: Option<Cursor> = None;
        loop {
            let batch = self
                .deps
                .store
                .logged_decisions(request.from, request.to, after.as_ref(), BATCH)
                .await?;
            for logged in &batch {
                replayer.entry(logged);
            }
            match batch.last() {
                Some(last) if batch.len() == BATCH => {
                    after = Some(Cursor {
                        created: last.created,
                        id: last.id.to_string(),
                        key: None,
                    });
                }
                _ => break,
            }
        }
        Ok(replayer.finish())
    }

    /// How each report-only policy fared in the window, from the results the log recorded.
    pub async fn report_only_summary(
        &self,
        _policies: &Granted<ReadPolicies>,
        _logs: &Granted<ReadAuditLogs>,
        conditional_access: &ConditionalAccess,
        from: Option<&str>,
        to: Option<&str>,
        days: Option<&str>,
    ) -> Result<ReportOnlySummary> {
        let (from, to) = window(from, to, days, self.deps.clock.now())?;
        let current = conditional_access.configuration().await?.policies;
        let mut tallies: Vec<ReportOnlyTally> = current
            .iter()
            .filter(|p| p.state.is_report_only())
            .map(|p| ReportOnlyTally {
                id: p.id.clone(),
                display_name: p.display_name.clone(),
                ..ReportOnlyTally::default()
            })
            .collect();
        let mut evaluated = 0;
        let mut query = ListQuery {
            filter: vec![
                Predicate {
                    field: "created",
                    op: Op::Ge,
                    value: QueryValue::Instant(from),
                },
                Predicate {
                    field: "created",
                    op: Op::Le,
                    value: QueryValue::Instant(to),
                },
            ],
            top: 999,
            after: None,
            count: false,
        };
        loop {
            let page = self.deps.store.list_sign_ins(&query).await?;
            for entry in &page.items {
                if entry.conditional_access_status == "notApplied"
                    && entry.applied_conditional_access_policies.is_empty()
                {
                    continue;
                }
                evaluated += 1;
                // Only the result codes: no policy's entry is built for this.
                for (id, display_name, result) in
                    entry.applied_conditional_access_policies.results()?
                {
                    let Some(result) = result.as_str().strip_prefix("reportOnly") else {
                        continue;
                    };
                    let at = match tallies.iter().position(|t| t.id == id) {
                        Some(at) => at,
                        None => {
                            tallies.push(ReportOnlyTally {
                                id: id.to_owned(),
                                display_name: display_name.to_owned(),
                                ..ReportOnlyTally::default()
                            });
                            tallies.len() - 1
                        }
                    };
                    let tally = &mut tallies[at];
                    match result {
                        "Failure" => tally.would_block += 1,
                        "Interrupted" => tally.would_challenge += 1,
                        "Success" => tally.satisfied += 1,
                        "NotApplied" => tally.not_applied += 1,
                        _ => {}
                    }
                }
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        for tally in &mut tallies {
            tally.state = current
                .iter()
                .find(|p| p.id == tally.id)
                .map(|p| p.state.as_str().to_owned());
        }
        Ok(ReportOnlySummary {
            from,
            to,
            evaluated,
            policies: tallies,
        })
    }
}

/// The candidate compiled with the tenant's strengths and named locations.
pub(crate) async fn candidate_set(
    conditional_access: &ConditionalAccess,
    candidate: Candidate,
) -> Result<PolicySet> {
    let config = conditional_access.configuration().await?;
    let mut policies = config.policies;
    match candidate {
        Candidate::Tenant => {}
        Candidate::WholeSet(set) => policies = set,
        Candidate::Changes(changes) => {
            for (index, change) in changes.into_iter().enumerate() {
                match change {
                    PolicyChange::Delete(id) => {
                        let before = policies.len();
                        policies.retain(|p| !p.id.eq_ignore_ascii_case(&id));
                        if policies.len() == before {
                            return Err(invalid(
                                &format!("changes[{index}].id"),
                                format!("no policy has id '{id}'"),
                            ));
                        }
                    }
                    PolicyChange::Put(policy) => {
                        match policies.iter_mut().find(|p| {
                            !policy.id.is_empty() && p.id.eq_ignore_ascii_case(&policy.id)
                        }) {
                            Some(existing) => *existing = *policy,
                            None => policies.push(*policy),
                        }
                    }
                }
            }
        }
    }
    // New policies without an id get one here, so the answer can name them.
    for (index, policy) in policies.iter_mut().enumerate() {
        if policy.id.trim().is_empty() {
            policy.id = format!("candidate-{}", index + 1);
        }
    }
    for (index, policy) in policies.iter().enumerate() {
        if policies[..index]
            .iter()
            .any(|p| p.id.eq_ignore_ascii_case(&policy.id))
        {
            return Err(invalid(
                "policies",
                format!("two policies have id '{}'", policy.id),
            ));
        }
    }
    if policies.len() > MAX_POLICIES {
        return Err(invalid(
            "policies",
            format!("at most {MAX_POLICIES} policies, as in a tenant"),
        ));
    }
    Ok(PolicySet::new(policies, config.strengths, config.locations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::authz::Principal;
    use crate::directory::model::{User, UserType};
    use crate::directory::roles::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-03-10 12:00 UTC)
    }

    fn refused_field(body: &str) -> String {
        match ReplayRequest::from_json(body.as_bytes(), now()) {
            Err(Error::Invalid { target, .. }) => target.unwrap_or_default().into_owned(),
            other => panic!("{body} was not refused: {other:?}"),
        }
    }

    #[test]
    fn the_window_defaults_to_the_last_seven_days() {
        let request = ReplayRequest::from_json(b"{}", now()).unwrap();
        assert_eq!(request.candidate, Candidate::Tenant);
        assert_eq!(
            (request.from, request.to),
            (now() - Duration::days(7), now())
        );
        assert_eq!(request.top, DEFAULT_TOP);
        let request = ReplayRequest::from_json(br#"{"days": 30, "top": 5}"#, now()).unwrap();
        assert_eq!(request.from, now() - Duration::days(30));
        assert_eq!(request.top, 5);
        let request = ReplayRequest::from_json(
            br#"{"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(request.from, time::macros::datetime!(2026-03-01 0:00 UTC));
        assert_eq!(request.to, time::macros::datetime!(2026-03-02 0:00 UTC));
    }

    #[test]
    fn bad_requests_name_the_member_at_fault() {
        assert_eq!(refused_field(r#"{"policy": []}"#), "policy");
        assert_eq!(
            refused_field(r#"{"policies": [], "changes": []}"#),
            "changes"
        );
        assert_eq!(refused_field(r#"{"policies": {}}"#), "policies");
        let conditions = r#""conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}"#;
        assert_eq!(
            refused_field(&format!(
                r#"{{"policies": [{{"displayName": " ", "state": "enabled", {conditions}}}]}}"#
            )),
            "policies[0].displayName"
        );
        assert_eq!(
            refused_field(&format!(
                r#"{{"policies": [{{"displayName": "x", "state": "sometimes", {conditions}}}]}}"#
            )),
            "policies[0].state"
        );
        assert_eq!(
            refused_field(r#"{"policies": [{"displayName": "x"}]}"#),
            "policies[0]"
        );
        assert_eq!(refused_field(r#"{"changes": [{}]}"#), "changes[0].policy");
        assert_eq!(
            refused_field(r#"{"changes": [{"id": "a", "extra": 1}]}"#),
            "changes[0].extra"
        );
        assert_eq!(
            refused_field(&format!(
                r#"{{"changes": [{{"id": "a", "policy": {{"id": "b", "displayName": "B", "state": "enabled", {conditions}}}}}]}}"#
            )),
            "changes[0].id"
        );
        assert_eq!(refused_field(r#"{"from": "yesterday"}"#), "from");
        assert_eq!(
            refused_field(r#"{"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}"#),
            "from"
        );
        assert_eq!(
            refused_field(r#"{"from": "2026-03-02T00:00:00Z", "days": 3}"#),
            "days"
        );
        assert_eq!(refused_field(r#"{"days": 0}"#), "days");
        assert_eq!(refused_field(r#"{"days": 3651}"#), "days");
        assert_eq!(refused_field(r#"{"top": 0}"#), "top");
        assert_eq!(refused_field(r#"{"top": 10001}"#), "top");
        assert_eq!(refused_field("[]"), "body");
        assert_eq!(refused_field("{"), "body");
    }

    #[test]
    fn a_change_without_a_body_deletes_and_one_with_a_body_puts() {
        let request = ReplayRequest::from_json(
            br#"{"changes": [{"id": "gone", "policy": null},
                             {"policy": {"displayName": "New", "state": "enabled",
                                         "conditions": {"users": {"includeUsers": ["All"]},
                                                        "applications": {"includeApplications": ["All"]}}}}]}"#,
            now(),
        )
        .unwrap();
        let Candidate::Changes(changes) = request.candidate else {
            panic!("changes expected");
        };
        assert_eq!(changes[0], PolicyChange::Delete("gone".into()));
        assert!(matches!(&changes[1], PolicyChange::Put(p) if p.display_name == "New"));
    }

    #[test]
    fn only_roles_that_read_both_policies_and_logs_may_replay() {
        let person = User {
            id: Uuid::new_v4(),
            user_principal_name: "ada@contoso.com".into(),
            display_name: "Ada".into(),
            mail: None,
            account_enabled: true,
            user_type: UserType::Member,
            created_date_time: now(),
        };
        let allowed = [
            GLOBAL_ADMINISTRATOR,
            CONDITIONAL_ACCESS_ADMINISTRATOR,
            SECURITY_ADMINISTRATOR,
            SECURITY_READER,
            GLOBAL_READER,
        ];
        for role in BUILT_IN_ROLES {
            let p = Principal::for_user(&person, &[role.template_id]);
            let may = Granted::<ReadPolicies>::check(&p).is_ok()
                && Granted::<ReadAuditLogs>::check(&p).is_ok();
            assert_eq!(
                may,
                allowed.contains(&role.template_id),
                "{} {}",
                role.display_name,
                if may { "may replay" } else { "may not replay" }
            );
        }
    }
}
