//! The audit trail: every administrative change writes one [`DirectoryAudit`] in the shape of
//! Graph's `directoryAudit`, committed in the same transaction as the change it describes, so a
//! change without its entry (or an entry without its change) cannot exist.
//!
//! Failed operations: an administrative operation refused *after* its caller was authenticated
//! and authorized, for a reason about its target, is recorded as an entry with result
//! `failure` and a `resultReason` in words ([`refusal_reason`] decides which refusals those
//! are, once). Nothing else of the operation is written. The entry is the one the operation
//! would have written, so it names the attempted activity and target. Two paths lead here,
//! both through this module: a refusal a rule finds before the commit ([`record_refusal`]: the
//! ladder, the tiers, the lockout guard, a member already present) and one the database gives
//! at the commit (a name taken, a row gone: the store's commit hands the entry it carried to
//! [`DirectoryAudit::failed`] when its transaction fails, and writes what comes back).
//!
//! Not recorded: malformed requests (400: nothing was attempted), unauthenticated calls (401:
//! an anonymous caller must not be able to write to the audit log at all) and callers lacking
//! the operation's permission entirely (403 at the edge, decided by the `Authorized<P>`
//! extractor before any operation is chosen: there is no activity or target to record, and the
//! server's log has the refusal with the request id). A refusal *after* the permission, by a
//! rule about the target, is recorded even as a 403 (the tiers' "no role of yours may do this
//! to this person"): that is the security-relevant case, an administrator reaching past their
//! standing. Recorded refusals are bounded per initiator by [`FailureBudget`], so a loop of
//! refused calls by a signed-in caller cannot grow the log without limit: past the budget they
//! are counted, not written, and the next entry recorded for that caller says how many were
//! left out (`additionalDetails` `suppressedFailures`).
//!
//! Must never: record a refusal whose entry would carry a secret, or write a failure entry in
//! the transaction of a change (a failure entry means nothing was changed).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Error;
use crate::directory::authz::Actor;
use crate::directory::store::DirectoryStore;
use crate::kernel::clock::{graph_datetime, unix_millis};
use crate::kernel::error::ErrorCode;

/// `result` of an entry whose change was made.
pub const SUCCESS: &str = "success";
/// `result` of an entry whose operation was refused (see the module's note).
pub const FAILURE: &str = "failure";
/// The `additionalDetails` key of a failure entry saying how many refusals of the same
/// initiator before it were not recorded ([`FailureBudget`]).
pub const SUPPRESSED_FAILURES: &str = "suppressedFailures";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryAudit {
    pub id: Uuid,
    /// `UserManagement`, `GroupManagement`, `RoleManagement`, `ApplicationManagement`, `Policy`…
    pub category: String,
    pub correlation_id: Uuid,
    /// `success` or `failure`.
    pub result: String,
    pub result_reason: String,
    pub activity_display_name: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub activity_date_time: OffsetDateTime,
    pub logged_by_service: String,
    /// `Add`, `Update`, `Delete`, `Assign`, `Unassign`.
    pub operation_type: String,
    pub initiated_by: AuditActivityInitiator,
    pub target_resources: Vec<TargetResource>,
    pub additional_details: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditActivityInitiator {
    pub user: Option<UserIdentity>,
    pub app: Option<AppIdentity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppIdentity {
    pub app_id: Option<String>,
    pub display_name: Option<String>,
    pub service_principal_id: Option<String>,
    pub service_principal_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetResource {
    pub id: String,
    pub display_name: Option<String>,
    /// `User`, `Group`, `Role`, `Application`, `Policy`, `NamedLocation`…
    #[serde(rename = "type")]
    pub resource_type: String,
    pub user_principal_name: Option<String>,
    pub modified_properties: Vec<ModifiedProperty>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    /// JSON text of the old value, as Graph writes it.
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl AuditActivityInitiator {
    pub fn from_actor(actor: &Actor, ip_address: Option<String>) -> Self {
        match actor {
            Actor::User {
                id,
                user_principal_name,
            } => AuditActivityInitiator {
                user: Some(UserIdentity {
                    id: id.to_string(),
                    display_name: None,
                    user_principal_name: Some(user_principal_name.clone()),
                    ip_address,
                }),
                app: None,
            },
            Actor::App {
                id,
                app_id,
                display_name,
            } => AuditActivityInitiator {
                user: None,
                app: Some(AppIdentity {
                    app_id: Some(app_id.to_string()),
                    display_name: Some(display_name.clone()),
                    service_principal_id: Some(id.to_string()),
                    service_principal_name: Some(display_name.clone()),
                }),
            },
            Actor::System => AuditActivityInitiator {
                user: None,
                app: Some(AppIdentity {
                    app_id: None,
                    display_name: Some("Portcullis".to_string()),
                    service_principal_id: None,
                    service_principal_name: Some("Portcullis".to_string()),
                }),
            },
        }
    }

    /// The id of whoever initiated the change (user id or application id), for filtering.
    pub fn initiator_id(&self) -> Option<String> {
        self.user
            .as_ref()
            .map(|u| u.id.clone())
            .or_else(|| self.app.as_ref().and_then(|a| a.app_id.clone()))
    }
}

impl TargetResource {
    pub fn new(resource_type: &str, id: impl ToString, display_name: impl Into<String>) -> Self {
        TargetResource {
            id: id.to_string(),
            display_name: Some(display_name.into()),
            resource_type: resource_type.to_string(),
            user_principal_name: None,
            modified_properties: Vec::new(),
        }
    }

    pub fn with_upn(mut self, upn: &str) -> Self {
        self.user_principal_name = Some(upn.to_string());
        self
    }

    /// Records a property change. Values are written as JSON text, as Graph does.
    pub fn modified(
        mut self,
        name: &str,
        old: Option<&serde_json::Value>,
        new: Option<&serde_json::Value>,
    ) -> Self {
        self.modified_properties.push(ModifiedProperty {
            display_name: name.to_string(),
            old_value: old.map(|v| v.to_string()),
            new_value: new.map(|v| v.to_string()),
        });
        self
    }
}

/// Facts about the request an audit entry records besides the actor.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: Uuid,
    pub ip_address: Option<String>,
    /// The caller said it knows the change may lock administrators out
    /// (`?acknowledgeLockout=true`, or the portal's checkbox): the lockout guard lets it pass.
    pub acknowledge_lockout: bool,
}

impl RequestContext {
    pub fn new(correlation_id: Uuid) -> Self {
        RequestContext {
            correlation_id,
            ip_address: None,
            acknowledge_lockout: false,
        }
    }
}

/// Why a refused operation failed, in words for the audit log's `resultReason`, when the log
/// records that refusal whatever raised it: a conflict (409), a rule of the domain about the
/// target (403 with a rule's code, the lockout guard) or a target that does not exist (404).
/// `None` for everything else: invalid input, missing credentials or permission, limits and
/// outages, and a revision that moved (a race the service retries, not a refusal). A rule that
/// refuses explicitly ([`record_refusal`]) is recorded whatever its status.
pub fn refusal_reason(error: &Error) -> Option<String> {
    match error {
        Error::Conflict {
            code: ErrorCode::RevisionMoved,
            ..
        } => None,
        Error::Conflict { .. }
        | Error::Denied { .. }
        | Error::WouldLockOut { .. }
        | Error::NotFound { .. } => Some(reason(error)),
        _ => None,
    }
}

/// `error` in words for `resultReason`, with its code.
fn reason(error: &Error) -> String {
    let words = match error {
        Error::Conflict { message, .. } => format!("Conflict: {message}"),
        Error::Denied { message, .. } => format!("Refused by a directory rule: {message}"),
        Error::WouldLockOut { message, .. } => format!("Refused by the lockout guard: {message}"),
        Error::NotFound { resource, id } => format!("Not found: {resource} '{id}' does not exist."),
        other => other.public_message(),
    };
    format!("{} ({})", words.trim_end(), error.code())
}

impl DirectoryAudit {
    /// The failure entry of the operation this entry describes, refused with `error`, when the
    /// log records that refusal ([`refusal_reason`]). It keeps the entry's id: the success entry
    /// was never written (or was rolled back with its change).
    pub fn failed(&self, error: &Error) -> Option<DirectoryAudit> {
        refusal_reason(error)?;
        Some(self.clone().refused(error))
    }

    /// This entry as its operation's failure, refused with `error`.
    pub fn refused(mut self, error: &Error) -> DirectoryAudit {
        self.result = FAILURE.to_string();
        self.result_reason = reason(error);
        // The modified properties stay: with `failure` they say what was attempted.
        self
    }

    pub fn is_failure(&self) -> bool {
        self.result == FAILURE
    }
}

/// Records `audit` (the entry the operation would have written) as refused by a rule with
/// `error`, and hands the error back. Nothing else is written. For refusals a rule of the domain
/// decides before the commit (the ladder, the tiers, the lockout guard), which are recorded
/// whatever their status. A failure to record is logged, never put in place of the refusal the
/// caller must see.
pub async fn record_refusal(
    store: &dyn DirectoryStore,
    audit: DirectoryAudit,
    error: Error,
) -> Error {
    let entry = audit.refused(&error);
    if let Err(e) = store.commit(Vec::new(), Some(entry)).await {
        tracing::warn!(error = %e, "could not record a refused operation in the audit log");
    }
    error
}

/// How many failure entries one initiator may add in a minute, on one node.
pub const FAILURES_PER_MINUTE: u32 = 20;
/// Initiators remembered at once; past it, the windows that ended are forgotten (and, should
/// every one still be open, all of them: recording more then is the safe side).
const INITIATORS_KEPT: usize = 10_000;
const WINDOW_MILLIS: i64 = 60_000;

/// Bounds the failure entries each initiator adds: [`FAILURES_PER_MINUTE`] per minute are
/// written, the rest counted. Per node and in memory, like the rate limits of the web layer: a
/// loop of refusals spread over nodes is bounded per node. The store asks it before writing any
/// failure entry, whichever path the entry came by.
#[derive(Debug, Default)]
pub struct FailureBudget {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: i64,
    recorded: u32,
    /// Refusals not recorded since the last entry that was.
    suppressed: u64,
}

/// What to do with one failure entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write it; `suppressed` refusals of the same initiator since its last entry were not.
    Record { suppressed: u64 },
    /// Count it and write nothing.
    Suppress,
}

impl FailureBudget {
    /// Whether the failure entry `audit` is written, by its initiator's budget at its instant.
    pub fn admit(&self, audit: &DirectoryAudit) -> Admission {
        let initiator = audit.initiated_by.initiator_id().unwrap_or_default();
        let at = unix_millis(audit.activity_date_time);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= INITIATORS_KEPT && !windows.contains_key(&initiator) {
            windows.retain(|_, w| at - w.started < WINDOW_MILLIS);
            if windows.len() >= INITIATORS_KEPT {
                windows.clear();
            }
        }
        let window = windows.entry(initiator).or_insert(Window {
            started: at,
            recorded: 0,
            suppressed: 0,
        });
        if at - window.started >= WINDOW_MILLIS || at < window.started {
            window.started = at;
            window.recorded = 0;
        }
        if window.recorded >= FAILURES_PER_MINUTE {
            window.suppressed += 1;
            return Admission::Suppress;
        }
        window.recorded += 1;
        let suppressed = std::mem::take(&mut window.suppressed);
        Admission::Record { suppressed }
    }

    /// `audit` as written under the budget: `None` when suppressed, otherwise with the count of
    /// refusals left out before it in `additionalDetails`.
    pub fn admitted(&self, mut audit: DirectoryAudit) -> Option<DirectoryAudit> {
        match self.admit(&audit) {
            Admission::Suppress => None,
            Admission::Record { suppressed: 0 } => Some(audit),
            Admission::Record { suppressed } => {
                audit.additional_details.push(KeyValue {
                    key: SUPPRESSED_FAILURES.to_string(),
                    value: suppressed.to_string(),
                });
                Some(audit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn entry(initiator: &str, at: OffsetDateTime) -> DirectoryAudit {
        DirectoryAudit {
            id: Uuid::new_v4(),
            category: "UserManagement".into(),
            correlation_id: Uuid::nil(),
            result: FAILURE.into(),
            result_reason: String::new(),
            activity_display_name: "Update user".into(),
            activity_date_time: at,
            logged_by_service: "Core Directory".into(),
            operation_type: "Update".into(),
            initiated_by: AuditActivityInitiator {
                user: Some(UserIdentity {
                    id: initiator.into(),
                    display_name: None,
                    user_principal_name: None,
                    ip_address: None,
                }),
                app: None,
            },
            target_resources: vec![TargetResource::new("User", "x", "X").modified(
                "mail",
                None,
                Some(&"a".into()),
            )],
            additional_details: Vec::new(),
        }
    }

    #[test]
    fn a_burst_is_bounded_per_initiator_and_the_next_window_says_how_many_were_left_out() {
        let budget = FailureBudget::default();
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let written = (0..1000)
            .filter(|_| budget.admitted(entry("a", start)).is_some())
            .count();
        assert_eq!(written, FAILURES_PER_MINUTE as usize);
        // Another initiator has a budget of its own.
        assert!(budget.admitted(entry("b", start)).is_some());
        let next = budget
            .admitted(entry("a", start + Duration::minutes(1)))
            .expect("a new minute");
        assert_eq!(
            next.additional_details,
            vec![KeyValue {
                key: SUPPRESSED_FAILURES.into(),
                value: (1000 - FAILURES_PER_MINUTE).to_string()
            }]
        );
    }

    #[test]
    fn which_refusals_are_recorded() {
        assert!(refusal_reason(&Error::conflict("taken")).is_some());
        assert!(
            refusal_reason(&Error::NotFound {
                resource: "user",
                id: "x".into()
            })
            .is_some()
        );
        assert!(refusal_reason(&Error::invalid("mail", "bad")).is_none());
        assert!(refusal_reason(&Error::Forbidden("no".into())).is_none());
        assert!(refusal_reason(&Error::Unauthenticated("no".into())).is_none());
        let failed = entry("a", OffsetDateTime::UNIX_EPOCH)
            .failed(&Error::conflict("taken"))
            .unwrap();
        assert!(failed.is_failure());
        assert!(failed.result_reason.contains("taken"));
    }
}
