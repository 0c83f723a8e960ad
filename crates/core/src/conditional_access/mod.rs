//! Administration of Conditional Access: policies, named locations and authentication
//! strengths, kept as their Graph JSON documents, and the What-If evaluation.
//!
//! The engine (`portcullis-policy`) owns what these objects mean; this module owns their life:
//! ids and timestamps, the tenant limits, referential integrity (a policy may only name
//! strengths and locations that exist, and those cannot be deleted while a policy names them),
//! and the audit trail. A change is checked by linting the configuration as it would be after
//! the change, so the rules that refuse it are the same rules `portcullis policy lint` reports.

pub mod countries;
pub mod kept;
pub mod references;

use std::sync::{Arc, Mutex};

use portcullis_policy::graph::{self, ImportError};
use portcullis_policy::lint::{LintCode, LintOptions, Severity, lint};
use portcullis_policy::whatif::{DirectoryFacts, EvaluateRequest, what_if_response};
use portcullis_policy::{
    AuthenticationStrength, ConditionalAccessPolicy, NamedLocation, PolicySet, UserKind,
    built_in_strength, built_in_strengths, evaluate,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::directory::Directory;
use crate::directory::audit::{
    self, AuditActivityInitiator, DirectoryAudit, RequestContext, TargetResource,
};
use crate::directory::authz::{Actor, Granted, ReadPolicies, WriteConditionalAccess};
use crate::directory::model::{DocumentKind, PolicyDocument, UserType};
use crate::directory::references::{precondition, retrying};
use crate::directory::store::{DirectoryChange as Change, DirectoryStore};
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::error::ErrorCode;
use crate::{Error, Result};
use countries::Countries;
use references::ReferenceCheck;

/// Entra's current limit on Conditional Access policies in a tenant.
pub const MAX_POLICIES: usize = 240;

#[derive(Clone)]
pub struct ConditionalAccess {
    deps: Deps<dyn DirectoryStore>,
    /// The policy set compiled from the documents at a revision. Shared by clones; replaced
    /// when the store's revision moves (see [`ConditionalAccess::policy_set`]).
    compiled: Arc<Mutex<Option<Compiled>>>,
    /// People's groups and roles at a memberships revision (see
    /// [`ConditionalAccess::memberships`]).
    memberships: Arc<Mutex<MembershipCache>>,
    /// Asked before a policy change is committed (the lockout guard, set by the composition
    /// root with [`ConditionalAccess::with_change_check`]).
    change_check: Option<Arc<dyn PolicyChangeCheck>>,
    /// The country of an address, for What-If and for the admin pages to say what country
    /// locations can match.
    countries: Countries,
}

/// A policy set and the document revision it was compiled at.
type Compiled = (String, Arc<PolicySet>);

/// What Conditional Access needs to know of a person from the directory: the groups they are in
/// (through nesting too) and the role templates they hold (directly or through a group).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memberships {
    pub group_ids: Vec<String>,
    pub role_template_ids: Vec<String>,
}

/// The compiled policies and a person's memberships, read for one decision
/// ([`ConditionalAccess::decision_inputs`]).
#[derive(Debug, Clone)]
pub struct DecisionInputs {
    pub policies: Arc<PolicySet>,
    pub memberships: Arc<Memberships>,
}

/// Memberships read at one revision of the store's memberships.
#[derive(Default)]
struct MembershipCache {
    revision: String,
    people: std::collections::HashMap<Uuid, Arc<Memberships>>,
}

/// People whose memberships a node keeps at most; past that the cache starts again, which
/// bounds its memory (a few hundred bytes a person) whatever the size of the tenant.
const MEMBERSHIPS_KEPT: usize = 50_000;

/// What replacing a policy would store, reviewed before it is ([`ConditionalAccess::review_replacement`]).
#[derive(Debug, Clone)]
pub struct PolicyReview {
    /// The policy as stored now.
    pub before: Value,
    /// The policy as it would be stored.
    pub after: Value,
    /// The lockout guard's finding when the change would lock administrators out: saving it
    /// then needs the acknowledgement.
    pub lockout: Option<Value>,
}

/// One policy of a file offered for import ([`ConditionalAccess::review_import`]).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCandidate {
    /// The policy as it would be stored, with the id the file gave it.
    pub document: Value,
    /// A policy with that id exists here already: import it as a copy with a new id.
    pub exists: bool,
    /// What it names that does not exist in this directory.
    pub unresolved: Vec<UnresolvedReference>,
    /// What it keeps that the engine does not implement.
    pub kept: Vec<kept::KeptField>,
}

/// An id a policy names that does not resolve here, with the property naming it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnresolvedReference {
    pub property: &'static str,
    pub id: String,
    /// An exclusion excludes nobody while it does not resolve: the policy cannot be enabled.
    pub exclusion: bool,
    /// A named location or authentication strength: unlike a directory object, the import
    /// itself is refused until one with this id exists here (the policy could never be
    /// evaluated as written).
    pub blocks_import: bool,
}

/// The named locations and the authentication strength a policy names that this tenant does
/// not define. Directory objects are [`references::unresolved`]'s.
fn undefined_in(set: &PolicySet, policy: &ConditionalAccessPolicy) -> Vec<UnresolvedReference> {
    let mut out = Vec::new();
    if let Some(locations) = &policy.conditions.locations {
        for (property, ids, exclusion) in [
            (
                "conditions.locations.includeLocations",
                &locations.include_locations,
                false,
            ),
            (
                "conditions.locations.excludeLocations",
                &locations.exclude_locations,
                true,
            ),
        ] {
            for id in ids {
                let special = ["All", "AllTrusted"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(id.trim()));
                if !special && set.named_location(id).is_none() {
                    out.push(UnresolvedReference {
                        property,
                        id: id.clone(),
                        exclusion,
                        blocks_import: true,
                    });
                }
            }
        }
    }
    if let Some(strength) = policy
        .grant_controls
        .as_ref()
        .and_then(|g| g.authentication_strength.as_ref())
        .filter(|s| !s.id.trim().is_empty())
        && set.strength(&strength.id).is_none()
    {
        out.push(UnresolvedReference {
            property: "grantControls.authenticationStrength.id",
            id: strength.id.clone(),
            exclusion: false,
            blocks_import: true,
        });
    }
    out
}

/// A policy's next document, checked, waiting for the lockout guard and the commit.
struct Revision {
    document: PolicyDocument,
    target: TargetResource,
    /// The policies before the change, and the configuration after it, for the guard.
    today: Vec<ConditionalAccessPolicy>,
    config: Configuration,
}

/// The tenant's whole Conditional Access configuration, as stored.
#[derive(Clone)]
pub struct Configuration {
    pub policies: Vec<ConditionalAccessPolicy>,
    pub strengths: Vec<AuthenticationStrength>,
    pub locations: Vec<NamedLocation>,
}

impl Configuration {
    pub fn policy_set(&self) -> PolicySet {
        PolicySet::new(
            self.policies.clone(),
            self.strengths.clone(),
            self.locations.clone(),
        )
    }
}

fn import_error(e: ImportError) -> Error {
    match &e {
        ImportError::Field { field, .. } if !field.is_empty() && field != "." => {
            Error::invalid(field.clone(), e.to_string())
        }
        // A named location is read through its subtype, whose errors start with the member's
        // path (`isTrusted: invalid type …`): that member is the target.
        ImportError::Field { message, .. } => match message.split_once(": ") {
            Some((path, _)) if !path.is_empty() && !path.contains(char::is_whitespace) => {
                Error::invalid(path.to_string(), e.to_string())
            }
            _ => Error::invalid("body", e.to_string()),
        },
        _ => Error::invalid("body", e.to_string()),
    }
}

/// A PATCH body as JSON (UTF-8, or UTF-16 with a byte-order mark), without the read-only
/// members a client may echo back.
fn patch_body(bytes: &[u8]) -> Result<Value> {
    let mut patch: Value = serde_json::from_str(&graph::decode_text(bytes).map_err(import_error)?)
        .map_err(|e| Error::invalid("body", format!("The request body is not valid JSON: {e}")))?;
    if !patch.is_object() {
        return Err(Error::invalid(
            "body",
            "The request body must be a JSON object.",
        ));
    }
    read_only(&mut patch);
    Ok(patch)
}

/// Applies a Graph PATCH body: objects merge member by member, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn read_only(body: &mut Value) {
    if let Value::Object(map) = body {
        for key in [
            "id",
            "createdDateTime",
            "modifiedDateTime",
            references::UNRESOLVED_PROPERTY,
        ] {
            map.remove(key);
        }
    }
}

fn one<T>(mut items: Vec<T>, what: &str) -> Result<T> {
    match items.len() {
        1 => Ok(items.remove(0)),
        0 => Err(Error::invalid("body", format!("The body holds no {what}."))),
        n => Err(Error::invalid(
            "body",
            format!("The body holds {n} objects; send one {what} per request."),
        )),
    }
}

/// A caller-supplied id is kept when it is a GUID (so that an export imported elsewhere keeps
/// the references between its policies and locations); otherwise the server makes one.
fn choose_id<S: DirectoryStore + ?Sized>(deps: &Deps<S>, given: &str) -> String {
    match Uuid::parse_str(given.trim()) {
        Ok(id) if !given.trim().is_empty() => id.to_string(),
        _ => deps.entropy.uuid().to_string(),
    }
}

/// A check on a change to the tenant's Conditional Access, given the policies before and after.
/// The lockout guard (`crate::guard`) implements it: it needs people's registered methods,
/// which live above this layer.
#[async_trait::async_trait]
pub trait PolicyChangeCheck: Send + Sync {
    async fn check_policy_change(
        &self,
        actor: &Actor,
        request: &RequestContext,
        before: &PolicySet,
        after: &PolicySet,
    ) -> Result<()>;
}

/// One lint finding about the stored configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFinding {
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// The lint code, such as `unsupported-field`.
    pub code: &'static str,
    /// The policy, strength or location concerned.
    pub object_id: Option<String>,
    pub message: String,
}

impl ConditionalAccess {
    pub fn new(deps: Deps<dyn DirectoryStore>) -> Self {
        ConditionalAccess {
            deps,
            compiled: Arc::new(Mutex::new(None)),
            memberships: Arc::new(Mutex::new(MembershipCache::default())),
            change_check: None,
            countries: Countries::none(),
        }
    }

    /// Every policy change (create, import, update, replace, delete) is checked by `check`
    /// before it is committed.
    pub fn with_change_check(mut self, check: Arc<dyn PolicyChangeCheck>) -> Self {
        self.change_check = Some(check);
        self
    }

    /// Asks the change check, if one is set, about `after` replacing `today`'s policies (the
    /// configuration the caller already read; strengths and locations do not change here).
    async fn check_change(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        today: Vec<ConditionalAccessPolicy>,
        after: &Configuration,
    ) -> Result<()> {
        let before = PolicySet::new(today, after.strengths.clone(), after.locations.clone());
        self.check_sets(grant, request, &before, &after.policy_set())
            .await
    }

    /// The one place the change check (the lockout guard) is asked, if one is set.
    async fn check_sets(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        before: &PolicySet,
        after: &PolicySet,
    ) -> Result<()> {
        match &self.change_check {
            Some(check) => {
                check
                    .check_policy_change(grant.actor(), request, before, after)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Stores a named location's or an authentication strength's new `document`, which changes
    /// what every policy naming it does: the change check sees the whole configuration before
    /// and after (`edit` makes the after from the before), its refusal is recorded as
    /// `activity`'s failure, and the commit carries `precondition`.
    #[allow(clippy::too_many_arguments)]
    async fn store_setting(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        document: PolicyDocument,
        target: TargetResource,
        activity: &str,
        precondition: Option<Change>,
        edit: impl FnOnce(&mut Configuration),
    ) -> Result<()> {
        let before = self.configuration().await?;
        let mut after = before.clone();
        edit(&mut after);
        if let Err(e) = self
            .check_sets(grant, request, &before.policy_set(), &after.policy_set())
            .await
        {
            return Err(self
                .record_refused(grant, request, activity, "Update", &target, e)
                .await);
        }
        self.commit_audited(
            grant,
            request,
            std::iter::once(Change::UpdateDocument(document))
                .chain(precondition)
                .collect(),
            activity,
            "Update",
            target,
        )
        .await
    }

    /// The same service with a country database (see [`countries`]).
    pub fn with_countries(mut self, countries: Countries) -> Self {
        self.countries = countries;
        self
    }

    /// The country lookup this server runs with.
    pub fn countries(&self) -> &Countries {
        &self.countries
    }

    /// The policy set every decision uses. Reading and compiling 50 stored policies costs more
    /// than the rest of a decision, so the compiled set is kept for as long as the store's
    /// document revision stays the same. The revision is read first and changes in the same
    /// transaction as any document, so a set is never used under a revision older than the
    /// documents it was compiled from, and a change made on any node is seen by the next
    /// decision on every node.
    pub async fn policy_set(&self) -> Result<Arc<PolicySet>> {
        let revision = self.deps.store.revisions().await?.map(|r| r.documents);
        self.policy_set_at(revision).await
    }

    /// What one decision for a person needs: the compiled policies and the person's groups
    /// and roles, both checked against one read of the revisions (reading them once for each
    /// was a repeated read in every sign-in step that decides).
    pub async fn decision_inputs(&self, user_id: Uuid) -> Result<DecisionInputs> {
        let (documents, memberships) = match self.deps.store.revisions().await? {
            Some(r) => (Some(r.documents), Some(r.memberships)),
            None => (None, None),
        };
        Ok(DecisionInputs {
            policies: self.policy_set_at(documents).await?,
            memberships: self.memberships_at(user_id, memberships).await?,
        })
    }

    /// [`ConditionalAccess::policy_set`] for the documents revision just read (`None`: the
    /// store keeps none, so nothing is kept between decisions).
    async fn policy_set_at(&self, revision: Option<String>) -> Result<Arc<PolicySet>> {
        let Some(revision) = revision else {
            return Ok(Arc::new(self.configuration().await?.policy_set()));
        };
        if let Some((at, set)) = self.compiled.lock().expect("cache lock").as_ref()
            && *at == revision
        {
            return Ok(set.clone());
        }
        let set = Arc::new(self.configuration().await?.policy_set());
        *self.compiled.lock().expect("cache lock") = Some((revision, set.clone()));
        Ok(set)
    }

    /// The groups and roles of a person, as every sign-in decision needs them. Walking group
    /// nesting and role assignments takes two recursive queries, the most expensive reads of
    /// a passkey sign-in (BENCHMARKS.md), and memberships change far less often than people
    /// sign in; so they are kept per node for as long as the store's memberships revision
    /// stays the same. The revision moves in the transaction of any membership or role change,
    /// so a decision never uses memberships older than the store's, on any node.
    pub async fn memberships(&self, user_id: Uuid) -> Result<Arc<Memberships>> {
        let revision = self.deps.store.revisions().await?.map(|r| r.memberships);
        self.memberships_at(user_id, revision).await
    }

    /// [`ConditionalAccess::memberships`] for the memberships revision just read.
    async fn memberships_at(
        &self,
        user_id: Uuid,
        revision: Option<String>,
    ) -> Result<Arc<Memberships>> {
        if let Some(revision) = &revision {
            let cache = self.memberships.lock().expect("cache lock");
            if cache.revision == *revision
                && let Some(found) = cache.people.get(&user_id)
            {
                return Ok(found.clone());
            }
        }
        let groups = self.deps.store.transitive_member_of(user_id).await?;
        let roles = self.deps.store.role_definitions_held(user_id).await?;
        let found = Arc::new(Memberships {
            group_ids: groups.iter().map(|g| g.id.to_string()).collect(),
            role_template_ids: roles.iter().map(Uuid::to_string).collect(),
        });
        if let Some(revision) = revision {
            let mut cache = self.memberships.lock().expect("cache lock");
            if cache.revision != revision || cache.people.len() >= MEMBERSHIPS_KEPT {
                cache.people.clear();
                cache.revision = revision;
            }
            cache.people.insert(user_id, found.clone());
        }
        Ok(found)
    }

    fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }

    /// Applies one change with the audit entry that describes it, in one transaction. `target`
    /// names the object and carries the document before and after.
    async fn commit_audited(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        changes: Vec<Change>,
        activity: &str,
        operation: &str,
        target: TargetResource,
    ) -> Result<()> {
        let audit = self.audit_entry(grant, request, activity, operation, target);
        self.deps.store.commit(changes, Some(audit)).await
    }

    /// The entry a change of Conditional Access writes.
    fn audit_entry(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        activity: &str,
        operation: &str,
        target: TargetResource,
    ) -> DirectoryAudit {
        DirectoryAudit {
            id: self.deps.entropy.uuid(),
            category: "Policy".to_string(),
            correlation_id: request.correlation_id,
            result: audit::SUCCESS.to_string(),
            result_reason: String::new(),
            activity_display_name: activity.to_string(),
            activity_date_time: self.now(),
            logged_by_service: "Conditional Access".to_string(),
            operation_type: operation.to_string(),
            initiated_by: AuditActivityInitiator::from_actor(
                grant.actor(),
                request.ip_address.clone(),
            ),
            target_resources: vec![target],
            additional_details: Vec::new(),
        }
    }

    /// [`Self::check_change`] before a change that would be audited as `activity` on `target`:
    /// a refusal (the lockout guard's) is recorded as that activity's failure.
    #[allow(clippy::too_many_arguments)]
    async fn check_audited_change(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        today: Vec<ConditionalAccessPolicy>,
        after: &Configuration,
        activity: &str,
        operation: &str,
        target: &TargetResource,
    ) -> Result<()> {
        match self.check_change(grant, request, today, after).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self
                .record_refused(grant, request, activity, operation, target, e)
                .await),
        }
    }

    /// Records `error` (the lockout guard's refusal) as the failure of `activity` on `target`,
    /// and hands it back.
    async fn record_refused(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        activity: &str,
        operation: &str,
        target: &TargetResource,
        error: Error,
    ) -> Error {
        let entry = self.audit_entry(grant, request, activity, operation, target.clone());
        audit::record_refusal(self.deps.store.as_ref(), entry, error).await
    }

    async fn documents(&self, kind: DocumentKind) -> Result<Vec<PolicyDocument>> {
        self.deps.store.documents(kind).await
    }

    /// Everything as stored, parsed. Documents were validated when written.
    pub async fn configuration(&self) -> Result<Configuration> {
        let parse = |d: &PolicyDocument| serde_json::to_vec(&d.body).unwrap_or_default();
        let mut policies = Vec::new();
        for d in self
            .documents(DocumentKind::ConditionalAccessPolicy)
            .await?
        {
            policies.extend(
                graph::import_policies(&parse(&d))
                    .map_err(|e| Error::Internal(format!("stored policy {}: {e}", d.id)))?,
            );
        }
        let mut strengths = Vec::new();
        for d in self.documents(DocumentKind::AuthenticationStrength).await? {
            strengths.extend(
                graph::import_strengths(&parse(&d))
                    .map_err(|e| Error::Internal(format!("stored strength {}: {e}", d.id)))?,
            );
        }
        let mut locations = Vec::new();
        for d in self.documents(DocumentKind::NamedLocation).await? {
            locations.extend(
                graph::import_named_locations(&parse(&d))
                    .map_err(|e| Error::Internal(format!("stored location {}: {e}", d.id)))?,
            );
        }
        Ok(Configuration {
            policies,
            strengths,
            locations,
        })
    }

    /// Refuses a configuration with errors that concern `object_id` (or the tenant as a whole).
    fn check(&self, config: &Configuration, object_id: &str) -> Result<()> {
        if config.policies.len() > MAX_POLICIES {
            return Err(Error::invalid(
                "body",
                format!(
                    "A tenant may have at most {MAX_POLICIES} Conditional Access policies; delete one first."
                ),
            ));
        }
        // Entra's enumerations for the fields this engine knows: a write may keep fields it does
        // not implement, never a value Entra would refuse for a field it does.
        if let Some(unknown) = config
            .policies
            .iter()
            .filter(|p| p.id.eq_ignore_ascii_case(object_id))
            .flat_map(portcullis_policy::values::unknown_values)
            .next()
        {
            return Err(Error::invalid(unknown.field.clone(), unknown.to_string()));
        }
        let findings = lint(
            &config.policy_set(),
            &LintOptions {
                max_policies: MAX_POLICIES,
            },
        );
        if let Some(f) = findings
            .iter()
            // Graph itself refuses `mfa` beside an authentication strength, so the API does
            // too, whatever severity lint gives it for an offline review.
            .find(|f| {
                (f.severity == Severity::Error || f.code == LintCode::MfaWithStrength)
                    && f.object_id
                        .as_deref()
                        .is_none_or(|id| id.eq_ignore_ascii_case(object_id))
            })
        {
            let target = match f.code {
                LintCode::MfaWithStrength => "grantControls",
                LintCode::UnknownStrength => "grantControls.authenticationStrength.id",
                LintCode::UnknownLocation => "conditions.locations",
                LintCode::InvalidDeviceFilter => "conditions.devices.deviceFilter.rule",
                LintCode::InvalidNamedLocation => "ipRanges",
                LintCode::TooManyCustomStrengths => "body",
                _ => "body",
            };
            return Err(Error::invalid(target, f.message.clone()));
        }
        Ok(())
    }

    /// What `portcullis policy lint` says about the stored configuration (unsupported fields
    /// kept from an import, policies that can never apply, …), for the admin pages to show
    /// beside the policies concerned. Errors cannot be stored, so these are warnings and notes.
    pub async fn findings(&self, _grant: &Granted<ReadPolicies>) -> Result<Vec<PolicyFinding>> {
        let config = self.configuration().await?;
        Ok(lint(
            &config.policy_set(),
            &LintOptions {
                max_policies: MAX_POLICIES,
            },
        )
        .into_iter()
        .map(|f| PolicyFinding {
            severity: f.severity.to_string(),
            code: f.code.as_str(),
            object_id: f.object_id,
            message: f.message,
        })
        .collect())
    }

    // --- policies -----------------------------------------------------------------------

    /// The policies as stored, each with the references that do not resolve listed in
    /// [`references::UNRESOLVED_PROPERTY`] (only policies imported as they are have any).
    pub async fn policies(&self, _grant: &Granted<ReadPolicies>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for d in self
            .documents(DocumentKind::ConditionalAccessPolicy)
            .await?
        {
            out.push(self.annotated(d.body).await?);
        }
        Ok(out)
    }

    pub async fn policy(&self, _grant: &Granted<ReadPolicies>, id: &str) -> Result<Value> {
        let d = self
            .find(
                DocumentKind::ConditionalAccessPolicy,
                "conditionalAccessPolicy",
                id,
            )
            .await?;
        self.annotated(d.body).await
    }

    async fn annotated(&self, mut body: Value) -> Result<Value> {
        let parsed = graph::import_policies(body.to_string().as_bytes())
            .map_err(|e| Error::Internal(format!("stored policy: {e}")))?;
        for policy in &parsed {
            references::annotate(self.deps.store.as_ref(), policy, &mut body).await?;
        }
        Ok(body)
    }

    async fn find(
        &self,
        kind: DocumentKind,
        resource: &'static str,
        id: &str,
    ) -> Result<PolicyDocument> {
        let id = Uuid::parse_str(id.trim())
            .map_err(|_| Error::not_found(resource, id))?
            .to_string();
        self.deps
            .store
            .document(kind, &id)
            .await?
            .ok_or_else(|| Error::not_found(resource, id))
    }

    fn policy_document(
        &self,
        policy: &ConditionalAccessPolicy,
        created: OffsetDateTime,
    ) -> PolicyDocument {
        PolicyDocument {
            kind: DocumentKind::ConditionalAccessPolicy,
            id: policy.id.clone(),
            display_name: policy.display_name.clone(),
            body: graph::export_one(policy),
            created,
            modified: self.now(),
        }
    }

    /// What every policy written or replayed must be: named, in a state this engine reads.
    pub fn validate_policy(policy: &ConditionalAccessPolicy) -> Result<()> {
        if policy.display_name.trim().is_empty() {
            return Err(Error::invalid(
                "displayName",
                "displayName: a policy needs a name.",
            ));
        }
        // Other enumerations may carry members newer than this engine (kept, reported, failing
        // closed), but a state it cannot read would leave the policy's effect unknown.
        if matches!(policy.state, portcullis_policy::PolicyState::Other(_)) {
            return Err(Error::invalid(
                "state",
                "state: must be enabled, disabled or enabledForReportingButNotEnforced.",
            ));
        }
        if policy.display_name.chars().count() > 256 {
            return Err(Error::invalid(
                "displayName",
                "displayName: at most 256 characters.",
            ));
        }
        Ok(())
    }

    /// Creates a policy from a Graph body (UTF-8, or UTF-16 with a byte-order mark, as Entra
    /// exports). Fields this engine does not implement are kept.
    pub async fn create_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        body: &[u8],
    ) -> Result<Value> {
        retrying(|| self.try_create_policy(grant, request, body, ReferenceCheck::Strict)).await
    }

    /// Creates a policy from an exported file as it is: users, groups, roles and applications
    /// it names that do not exist here are kept and listed as unresolved (see
    /// [`references`]), except an unresolved exclusion in an enabled policy.
    pub async fn import_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        body: &[u8],
    ) -> Result<Value> {
        retrying(|| self.try_create_policy(grant, request, body, ReferenceCheck::Import)).await
    }

    /// What importing a file would create, without storing anything: each policy it holds as
    /// it would be stored (its own id kept), whether a policy with that id exists already,
    /// what it names that does not exist here and what it keeps unimplemented. The portal
    /// shows this for review before [`Self::import_policy`] creates the chosen ones.
    pub async fn review_import(
        &self,
        _grant: &Granted<WriteConditionalAccess>,
        file: &[u8],
    ) -> Result<Vec<ImportCandidate>> {
        let policies = graph::import_policies(file).map_err(import_error)?;
        let config = self.configuration().await?;
        let set = config.policy_set();
        let stored = config.policies;
        let mut out = Vec::with_capacity(policies.len());
        for mut policy in policies {
            policy.extra.remove(references::UNRESOLVED_PROPERTY);
            let exists = !policy.id.trim().is_empty()
                && stored
                    .iter()
                    .any(|p| p.id.eq_ignore_ascii_case(policy.id.trim()));
            let mut unresolved: Vec<UnresolvedReference> =
                references::unresolved(self.deps.store.as_ref(), &policy)
                    .await?
                    .into_iter()
                    .map(|r| UnresolvedReference {
                        exclusion: r.is_exclusion(),
                        property: r.property,
                        id: r.id,
                        blocks_import: false,
                    })
                    .collect();
            unresolved.extend(undefined_in(&set, &policy));
            let document = graph::export_one(&policy);
            out.push(ImportCandidate {
                kept: kept::kept_fields(&document),
                document,
                exists,
                unresolved,
            });
        }
        Ok(out)
    }

    async fn try_create_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        body: &[u8],
        mode: ReferenceCheck,
    ) -> Result<Value> {
        let mut policy = one(
            graph::import_policies(body).map_err(import_error)?,
            "policy",
        )?;
        // What this server said about the policy when it was read is not part of it.
        policy.extra.remove(references::UNRESOLVED_PROPERTY);
        Self::validate_policy(&policy)?;
        // Read before anything the checks read: the commit fails if any of it moved since.
        let precondition = precondition(self.deps.store.as_ref()).await?;
        let mut config = self.configuration().await?;
        policy.id = choose_id(&self.deps, &policy.id);
        if config
            .policies
            .iter()
            .any(|p| p.id.eq_ignore_ascii_case(&policy.id))
        {
            return Err(Error::conflict(format!(
                "A policy with id '{}' already exists.",
                policy.id
            )));
        }
        let now = self.now();
        policy.created_date_time = Some(graph_datetime::format(now));
        policy.modified_date_time = None;
        let today = config.policies.clone();
        config.policies.push(policy.clone());
        self.check(&config, &policy.id)?;
        references::check(self.deps.store.as_ref(), &policy, None, mode).await?;
        let document = self.policy_document(&policy, now);
        let body = document.body.clone();
        let target = TargetResource::new("Policy", &policy.id, &policy.display_name).modified(
            "ConditionalAccessPolicy",
            None,
            Some(&body),
        );
        self.check_audited_change(
            grant,
            request,
            today,
            &config,
            "Add conditional access policy",
            "Add",
            &target,
        )
        .await?;
        self.commit_audited(
            grant,
            request,
            std::iter::once(Change::InsertDocument(document))
                .chain(precondition)
                .collect(),
            "Add conditional access policy",
            "Add",
            target,
        )
        .await?;
        Ok(body)
    }

    pub async fn update_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        patch: &[u8],
    ) -> Result<Value> {
        retrying(|| self.try_update_policy(grant, request, id, patch)).await
    }

    async fn try_update_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        patch: &[u8],
    ) -> Result<Value> {
        let precondition = precondition(self.deps.store.as_ref()).await?;
        let existing = self
            .find(
                DocumentKind::ConditionalAccessPolicy,
                "conditionalAccessPolicy",
                id,
            )
            .await?;
        let patch = patch_body(patch)?;
        let mut merged = existing.body.clone();
        merge(&mut merged, &patch);
        self.store_policy_revision(grant, request, existing, merged, precondition)
            .await
    }

    /// Replaces a policy with a whole new document (PUT semantics), keeping its id and creation
    /// time. The admin portal's form uses this: it starts from the stored document, so members
    /// the form does not show are kept, and what it does show is replaced outright — a merge
    /// would leave, say, an old authentication strength's members under a new strength's id.
    pub async fn replace_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        body: &[u8],
    ) -> Result<Value> {
        retrying(|| self.try_replace_policy(grant, request, id, body)).await
    }

    async fn try_replace_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        body: &[u8],
    ) -> Result<Value> {
        let precondition = precondition(self.deps.store.as_ref()).await?;
        let existing = self
            .find(
                DocumentKind::ConditionalAccessPolicy,
                "conditionalAccessPolicy",
                id,
            )
            .await?;
        let body = patch_body(body)?;
        self.store_policy_revision(grant, request, existing, body, precondition)
            .await
    }

    /// What replacing a policy with `body` would store, checked as [`Self::replace_policy`]
    /// checks it, without storing anything: the portal's editor shows it as a diff before the
    /// save. A change the lockout guard refuses is reported in [`PolicyReview::lockout`] (with
    /// the guard's proof) rather than as an error, so the review can still show the change;
    /// any other refusal is the error the save would give.
    pub async fn review_replacement(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        body: &[u8],
    ) -> Result<PolicyReview> {
        let existing = self
            .find(
                DocumentKind::ConditionalAccessPolicy,
                "conditionalAccessPolicy",
                id,
            )
            .await?;
        let body = patch_body(body)?;
        let revision = self.prepare_revision(&existing, body).await?;
        let lockout = match self
            .check_change(grant, request, revision.today, &revision.config)
            .await
        {
            Ok(()) => None,
            Err(Error::WouldLockOut { finding, .. }) => Some(*finding),
            Err(e) => return Err(e),
        };
        Ok(PolicyReview {
            before: existing.body,
            after: revision.document.body,
            lockout,
        })
    }

    /// Validates a policy's next document against the whole configuration, then stores it with
    /// its audit entry.
    async fn store_policy_revision(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        existing: PolicyDocument,
        merged: Value,
        precondition: Option<Change>,
    ) -> Result<Value> {
        let revision = self.prepare_revision(&existing, merged).await?;
        self.check_audited_change(
            grant,
            request,
            revision.today,
            &revision.config,
            "Update conditional access policy",
            "Update",
            &revision.target,
        )
        .await?;
        let (document, target) = (revision.document, revision.target);
        let body = document.body.clone();
        self.commit_audited(
            grant,
            request,
            std::iter::once(Change::UpdateDocument(document))
                .chain(precondition)
                .collect(),
            "Update conditional access policy",
            "Update",
            target,
        )
        .await?;
        Ok(body)
    }

    /// A policy's next document, checked against the whole configuration (limits, Entra's
    /// values, lint errors, references), with what the lockout guard needs to check it last.
    async fn prepare_revision(&self, existing: &PolicyDocument, merged: Value) -> Result<Revision> {
        let mut policy = one(
            graph::import_policies(merged.to_string().as_bytes()).map_err(import_error)?,
            "policy",
        )?;
        Self::validate_policy(&policy)?;
        policy.id = existing.id.clone();
        // The creation time as the document has always said it (the database may keep the
        // instant at a coarser precision than the text first written).
        policy.created_date_time = Some(
            existing.body["createdDateTime"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| graph_datetime::format(existing.created)),
        );
        policy.modified_date_time = Some(graph_datetime::format(self.now()));
        let mut config = self.configuration().await?;
        let today = config.policies.clone();
        let mut before = None;
        for p in config.policies.iter_mut().filter(|p| p.id == policy.id) {
            before = Some(std::mem::replace(p, policy.clone()));
        }
        self.check(&config, &policy.id)?;
        references::check(
            self.deps.store.as_ref(),
            &policy,
            before.as_ref(),
            ReferenceCheck::Strict,
        )
        .await?;
        let document = self.policy_document(&policy, existing.created);
        let target = TargetResource::new("Policy", &policy.id, &policy.display_name).modified(
            "ConditionalAccessPolicy",
            Some(&existing.body),
            Some(&document.body),
        );
        Ok(Revision {
            document,
            target,
            today,
            config,
        })
    }

    pub async fn delete_policy(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        let existing = self
            .find(
                DocumentKind::ConditionalAccessPolicy,
                "conditionalAccessPolicy",
                id,
            )
            .await?;
        let mut after = self.configuration().await?;
        let today = after.policies.clone();
        after.policies.retain(|p| p.id != existing.id);
        let target = TargetResource::new("Policy", &existing.id, &existing.display_name).modified(
            "ConditionalAccessPolicy",
            Some(&existing.body),
            None,
        );
        self.check_audited_change(
            grant,
            request,
            today,
            &after,
            "Delete conditional access policy",
            "Delete",
            &target,
        )
        .await?;
        self.commit_audited(
            grant,
            request,
            vec![Change::DeleteDocument {
                kind: DocumentKind::ConditionalAccessPolicy,
                id: existing.id,
            }],
            "Delete conditional access policy",
            "Delete",
            target,
        )
        .await
    }

    // --- named locations ----------------------------------------------------------------

    pub async fn named_locations(&self, _grant: &Granted<ReadPolicies>) -> Result<Vec<Value>> {
        Ok(self
            .documents(DocumentKind::NamedLocation)
            .await?
            .into_iter()
            .map(|d| d.body)
            .collect())
    }

    pub async fn named_location(&self, _grant: &Granted<ReadPolicies>, id: &str) -> Result<Value> {
        self.find(DocumentKind::NamedLocation, "namedLocation", id)
            .await
            .map(|d| d.body)
    }

    fn location_document(
        &self,
        mut location: NamedLocation,
        id: String,
        created: OffsetDateTime,
        modified: bool,
    ) -> Result<PolicyDocument> {
        let now = self.now();
        match &mut location {
            NamedLocation::Ip(l) => {
                l.id = id.clone();
                l.created_date_time = Some(graph_datetime::format(created));
                l.modified_date_time =
                    Some(graph_datetime::format(if modified { now } else { created }));
            }
            NamedLocation::Country(l) => {
                l.id = id.clone();
                l.created_date_time = Some(graph_datetime::format(created));
                l.modified_date_time =
                    Some(graph_datetime::format(if modified { now } else { created }));
            }
            NamedLocation::Other(_) => {
                return Err(Error::invalid(
                    "@odata.type",
                    "@odata.type: only #microsoft.graph.ipNamedLocation and #microsoft.graph.countryNamedLocation can be created here.",
                ));
            }
        }
        location
            .validate()
            .map_err(|e| Error::invalid("ipRanges", e.to_string()))?;
        // Entra's values for the fields this engine knows; fields it does not are kept.
        if let Some(unknown) = portcullis_policy::values::location_unknown_values(&location)
            .into_iter()
            .next()
        {
            return Err(Error::invalid(unknown.field.clone(), unknown.to_string()));
        }
        if location.display_name().trim().is_empty() {
            return Err(Error::invalid(
                "displayName",
                "displayName: a named location needs a name.",
            ));
        }
        Ok(PolicyDocument {
            kind: DocumentKind::NamedLocation,
            display_name: location.display_name().to_string(),
            id,
            body: graph::export_one(&location),
            created,
            modified: now,
        })
    }

    pub async fn create_named_location(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        body: &[u8],
    ) -> Result<Value> {
        let location = one(
            graph::import_named_locations(body).map_err(import_error)?,
            "named location",
        )?;
        let config = self.configuration().await?;
        let id = choose_id(&self.deps, location.id());
        if config
            .locations
            .iter()
            .any(|l| l.id().eq_ignore_ascii_case(&id))
        {
            return Err(Error::conflict(format!(
                "A named location with id '{id}' already exists."
            )));
        }
        let ip_count = config
            .locations
            .iter()
            .filter(|l| matches!(l, NamedLocation::Ip(_)))
            .count();
        if matches!(location, NamedLocation::Ip(_))
            && ip_count >= portcullis_policy::location::MAX_IP_NAMED_LOCATIONS
        {
            return Err(Error::invalid(
                "body",
                format!(
                    "A tenant may have at most {} IP named locations.",
                    portcullis_policy::location::MAX_IP_NAMED_LOCATIONS
                ),
            ));
        }
        let document = self.location_document(location, id, self.now(), false)?;
        let body = document.body.clone();
        let target = TargetResource::new("NamedLocation", &document.id, &document.display_name)
            .modified("NamedLocation", None, Some(&body));
        self.commit_audited(
            grant,
            request,
            vec![Change::InsertDocument(document)],
            "Add named location",
            "Add",
            target,
        )
        .await?;
        Ok(body)
    }

    /// Changes a named location, and so what every policy naming it covers: the lockout guard
    /// sees the whole configuration before and after, as for a policy's change.
    pub async fn update_named_location(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        patch: &[u8],
    ) -> Result<Value> {
        retrying(|| self.try_update_named_location(grant, request, id, patch)).await
    }

    async fn try_update_named_location(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        patch: &[u8],
    ) -> Result<Value> {
        let precondition = precondition(self.deps.store.as_ref()).await?;
        let existing = self
            .find(DocumentKind::NamedLocation, "namedLocation", id)
            .await?;
        let patch = patch_body(patch)?;
        if patch
            .get("@odata.type")
            .is_some_and(|t| Some(t) != existing.body.get("@odata.type"))
        {
            return Err(Error::invalid(
                "@odata.type",
                "@odata.type: a named location cannot change its type.",
            ));
        }
        let mut merged = existing.body.clone();
        merge(&mut merged, &patch);
        let location = one(
            graph::import_named_locations(merged.to_string().as_bytes()).map_err(import_error)?,
            "named location",
        )?;
        let document =
            self.location_document(location, existing.id.clone(), existing.created, true)?;
        let body = document.body.clone();
        let target = TargetResource::new("NamedLocation", &document.id, &document.display_name)
            .modified("NamedLocation", Some(&existing.body), Some(&body));
        let changed = one(
            graph::import_named_locations(body.to_string().as_bytes()).map_err(import_error)?,
            "named location",
        )?;
        self.store_setting(
            grant,
            request,
            document,
            target,
            "Update named location",
            precondition,
            |after| {
                for l in after
                    .locations
                    .iter_mut()
                    .filter(|l| l.id() == changed.id())
                {
                    *l = changed.clone();
                }
            },
        )
        .await?;
        Ok(body)
    }

    /// Refused while a policy names the location: Entra does the same, and deleting it would
    /// silently change what that policy covers.
    pub async fn delete_named_location(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        // The check below reads the policies: a policy written meanwhile on any node must
        // fail this delete rather than be left naming nothing.
        let precondition = precondition(self.deps.store.as_ref()).await?;
        let existing = self
            .find(DocumentKind::NamedLocation, "namedLocation", id)
            .await?;
        let config = self.configuration().await?;
        let users: Vec<&str> = config
            .policies
            .iter()
            .filter(|p| {
                p.conditions.locations.as_ref().is_some_and(|l| {
                    l.include_locations
                        .iter()
                        .chain(&l.exclude_locations)
                        .any(|x| x.eq_ignore_ascii_case(&existing.id))
                })
            })
            .map(|p| p.display_name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict {
                code: ErrorCode::NamedLocationInUse,
                message: format!(
                    "The named location is used by the policies: {}. Remove it from them first.",
                    users.join(", ")
                ),
            });
        }
        let target = TargetResource::new("NamedLocation", &existing.id, &existing.display_name)
            .modified("NamedLocation", Some(&existing.body), None);
        self.commit_audited(
            grant,
            request,
            std::iter::once(Change::DeleteDocument {
                kind: DocumentKind::NamedLocation,
                id: existing.id,
            })
            .chain(precondition)
            .collect(),
            "Delete named location",
            "Delete",
            target,
        )
        .await
    }

    // --- authentication strengths -------------------------------------------------------

    /// The built-in strengths followed by the tenant's custom ones.
    pub async fn strengths(&self, _grant: &Granted<ReadPolicies>) -> Result<Vec<Value>> {
        let mut out: Vec<Value> = built_in_strengths().iter().map(graph::export_one).collect();
        out.extend(
            self.documents(DocumentKind::AuthenticationStrength)
                .await?
                .into_iter()
                .map(|d| d.body),
        );
        Ok(out)
    }

    pub async fn strength(&self, _grant: &Granted<ReadPolicies>, id: &str) -> Result<Value> {
        if let Some(s) = built_in_strength(id) {
            return Ok(graph::export_one(s));
        }
        self.find(
            DocumentKind::AuthenticationStrength,
            "authenticationStrengthPolicy",
            id,
        )
        .await
        .map(|d| d.body)
    }

    fn strength_document(
        &self,
        mut strength: AuthenticationStrength,
        id: String,
        created: OffsetDateTime,
    ) -> Result<PolicyDocument> {
        let name = strength.display_name.clone().unwrap_or_default();
        if name.trim().is_empty() {
            return Err(Error::invalid(
                "displayName",
                "displayName: a strength needs a name.",
            ));
        }
        if strength
            .allowed_combinations
            .as_ref()
            .is_none_or(|c| c.is_empty())
        {
            return Err(Error::invalid(
                "allowedCombinations",
                "allowedCombinations: name at least one combination of methods.",
            ));
        }
        if let Some(unknown) = portcullis_policy::values::strength_unknown_values(&strength)
            .into_iter()
            .next()
        {
            return Err(Error::invalid(unknown.field.clone(), unknown.to_string()));
        }
        strength.id = id.clone();
        strength.policy_type = Some(portcullis_policy::StrengthPolicyType::Custom);
        strength.created_date_time = Some(graph_datetime::format(created));
        strength.modified_date_time = Some(graph_datetime::format(self.now()));
        Ok(PolicyDocument {
            kind: DocumentKind::AuthenticationStrength,
            id,
            display_name: name,
            body: graph::export_one(&strength),
            created,
            modified: self.now(),
        })
    }

    pub async fn create_strength(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        body: &[u8],
    ) -> Result<Value> {
        let strength = one(
            graph::import_strengths(body).map_err(import_error)?,
            "authentication strength",
        )?;
        if built_in_strength(&strength.id).is_some() {
            return Err(Error::conflict(
                "Built-in authentication strengths already exist and cannot be changed.",
            ));
        }
        let mut config = self.configuration().await?;
        let id = choose_id(&self.deps, &strength.id);
        if config
            .strengths
            .iter()
            .any(|s| s.id.eq_ignore_ascii_case(&id))
        {
            return Err(Error::conflict(format!(
                "An authentication strength with id '{id}' already exists."
            )));
        }
        let document = self.strength_document(strength, id.clone(), self.now())?;
        config.strengths.extend(
            graph::import_strengths(document.body.to_string().as_bytes()).map_err(import_error)?,
        );
        self.check(&config, &id)?;
        let body = document.body.clone();
        let target =
            TargetResource::new("AuthenticationStrengthPolicy", &id, &document.display_name)
                .modified("AuthenticationStrength", None, Some(&body));
        self.commit_audited(
            grant,
            request,
            vec![Change::InsertDocument(document)],
            "Authentication Strength Policy Create",
            "Add",
            target,
        )
        .await?;
        Ok(body)
    }

    /// Changes a custom authentication strength, and so what every policy requiring it asks
    /// for: the lockout guard sees the whole configuration before and after.
    pub async fn update_strength(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        patch: &[u8],
    ) -> Result<Value> {
        retrying(|| self.try_update_strength(grant, request, id, patch)).await
    }

    async fn try_update_strength(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
        patch: &[u8],
    ) -> Result<Value> {
        let precondition = precondition(self.deps.store.as_ref()).await?;
        if built_in_strength(id).is_some() {
            return Err(Error::Forbidden(
                "Built-in authentication strengths cannot be changed.".into(),
            ));
        }
        let existing = self
            .find(
                DocumentKind::AuthenticationStrength,
                "authenticationStrengthPolicy",
                id,
            )
            .await?;
        let patch = patch_body(patch)?;
        let mut merged = existing.body.clone();
        merge(&mut merged, &patch);
        let strength = one(
            graph::import_strengths(merged.to_string().as_bytes()).map_err(import_error)?,
            "authentication strength",
        )?;
        let document = self.strength_document(strength, existing.id.clone(), existing.created)?;
        let body = document.body.clone();
        let target = TargetResource::new(
            "AuthenticationStrengthPolicy",
            &existing.id,
            &document.display_name,
        )
        .modified("AuthenticationStrength", Some(&existing.body), Some(&body));
        let changed = one(
            graph::import_strengths(body.to_string().as_bytes()).map_err(import_error)?,
            "authentication strength",
        )?;
        self.store_setting(
            grant,
            request,
            document,
            target,
            "Authentication Strength Policy Update",
            precondition,
            |after| {
                for s in after.strengths.iter_mut().filter(|s| s.id == changed.id) {
                    *s = changed.clone();
                }
            },
        )
        .await?;
        Ok(body)
    }

    pub async fn delete_strength(
        &self,
        grant: &Granted<WriteConditionalAccess>,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        if built_in_strength(id).is_some() {
            return Err(Error::Forbidden(
                "Built-in authentication strengths cannot be deleted.".into(),
            ));
        }
        // The check below reads the policies: a policy written meanwhile on any node must
        // fail this delete rather than be left naming nothing.
        let precondition = precondition(self.deps.store.as_ref()).await?;
        let existing = self
            .find(
                DocumentKind::AuthenticationStrength,
                "authenticationStrengthPolicy",
                id,
            )
            .await?;
        let config = self.configuration().await?;
        let users: Vec<&str> = config
            .policies
            .iter()
            .filter(|p| {
                p.grant_controls
                    .as_ref()
                    .and_then(|g| g.authentication_strength.as_ref())
                    .is_some_and(|s| s.id.eq_ignore_ascii_case(&existing.id))
            })
            .map(|p| p.display_name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict {
                code: ErrorCode::AuthenticationStrengthInUse,
                message: format!(
                    "The authentication strength is required by the policies: {}. Change them first.",
                    users.join(", ")
                ),
            });
        }
        let target = TargetResource::new(
            "AuthenticationStrengthPolicy",
            &existing.id,
            &existing.display_name,
        )
        .modified("AuthenticationStrength", Some(&existing.body), None);
        self.commit_audited(
            grant,
            request,
            std::iter::once(Change::DeleteDocument {
                kind: DocumentKind::AuthenticationStrength,
                id: existing.id,
            })
            .chain(precondition)
            .collect(),
            "Authentication Strength Policy Delete",
            "Delete",
            target,
        )
        .await
    }

    // --- What-If ------------------------------------------------------------------------

    /// Graph's `identity/conditionalAccess/evaluate`: the decision for a described sign-in,
    /// with the directory's facts about the user (transitive groups, active roles, guest or
    /// member) filled in, as the live sign-in would have them.
    pub async fn what_if(
        &self,
        _grant: &Granted<ReadPolicies>,
        directory: &Directory,
        body: &[u8],
        metadata_url: &str,
    ) -> Result<Value> {
        let mut request = EvaluateRequest::from_json(body)
            .map_err(|e| Error::invalid(e.field.clone(), e.to_string()))?;
        // Given only an address, the country is the database's, as a live sign-in's would be.
        let conditions = &mut request.sign_in_conditions;
        if conditions
            .country
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
        {
            conditions.country = self
                .countries
                .country_of_text(conditions.ip_address.as_deref());
        }
        let user_id = request
            .user_id()
            .map_err(|e| Error::invalid(e.field.clone(), e.to_string()))?;
        let user_uuid = Uuid::parse_str(user_id).map_err(|_| {
            Error::invalid(
                "signInIdentity.userId",
                "signInIdentity.userId: not a GUID.",
            )
        })?;
        let user = self.deps.store.user(user_uuid).await?.ok_or_else(|| {
            Error::invalid(
                "signInIdentity.userId",
                format!("signInIdentity.userId: no user has id '{user_uuid}'."),
            )
        })?;
        let groups = self.deps.store.transitive_member_of(user.id).await?;
        let roles = directory.active_roles_of_user(user.id).await?;
        let facts = DirectoryFacts {
            group_ids: groups.iter().map(|g| g.id.to_string()).collect(),
            role_template_ids: roles.iter().map(Uuid::to_string).collect(),
            user_kind: match user.user_type {
                UserType::Member => UserKind::Member,
                UserType::Guest => UserKind::Guest,
            },
        };
        let set = self.policy_set().await?;
        let context = request
            .to_sign_in_context(facts, &set)
            .map_err(|e| Error::invalid(e.field.clone(), e.to_string()))?;
        let decision = evaluate(&context, &set);
        Ok(what_if_response(
            &decision,
            request.applied_policies_only,
            Some(metadata_url),
        ))
    }
}
