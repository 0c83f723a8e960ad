//! The analyzer online: `POST …/conditionalAccess/analyze` and the portal's Analysis page run
//! [`portcullis_policy::analyze`] on the tenant's policies, or on a candidate set, against the
//! real directory — every person with their groups, roles, guest flag and the methods they can
//! present, the groups, the roles and the applications that exist.
//!
//! What it owns: reading the directory into the analyzer's terms (a person's methods are the
//! guard's, [`super::LockoutGuard`], so both judge a person alike) and the candidate body.
//! What it must never do: decide a sign-in (the analyzer does, through the engine), store
//! anything, or run the analysis on an async thread. The walk takes seconds on a large tenant,
//! so it is split in two: [`PolicyAnalyzer::prepare`] reads (async), and
//! [`PreparedAnalysis::run`] analyses (plain CPU work, for the caller to put on a blocking
//! thread).

use std::collections::HashMap;

use portcullis_policy::PolicySet;
use portcullis_policy::analyze::{
    Analysis, AnalysisInput, Application as AnalyzedApplication, Directory as AnalyzedDirectory,
    analyze,
};
use serde_json::Value;

use super::LockoutGuard;
use crate::conditional_access::ConditionalAccess;
use crate::directory::authz::{Granted, ReadPolicies, ReadUserMethods};
use crate::directory::first_party::ADMIN_PORTAL_APP_ID;
use crate::directory::model::User;
use crate::directory::roles::BUILT_IN_ROLES;
use crate::kernel::Deps;
use crate::kernel::error::ErrorCode;
use crate::kernel::query::{ListQuery, Page};
use crate::logs::replay::{Candidate, candidate_set};
use crate::methods::store::MethodStore;
use crate::{Error, Result};

/// The analyzer's and the engine's terms a finding is written in, for the surfaces that show
/// one: web reaches the engine only through core.
pub mod terms {
    pub use portcullis_policy::analyze::{
        ANY_OTHER_APP, ANYONE_ELSE, Analysis, AnalysisStats, Finding, FindingKind, PolicyRef,
        Severity, Witness,
    };
    pub use portcullis_policy::{
        AuthenticationMethodMode, ClientAppType, Control, DevicePlatform, Outcome, RiskLevel,
        SatisfiedMethod, Target, UserAction,
    };
}

/// The most people one analysis reads. Reading a person takes six queries, and the walk over
/// 10,000 people and 240 policies takes about 2 s on one core (BENCHMARKS.md), so past this a
/// request is refused rather than left to hold a node's analysis slot for long; such a tenant
/// is analysed offline (`portcullis policy analyze --directory`).
pub const MAX_PEOPLE: usize = 10_000;

/// Rows read per page of users, groups and applications.
const PAGE: usize = 999;

/// Runs the analyzer against the directory; see the module docs.
#[derive(Clone)]
pub struct PolicyAnalyzer {
    guard: LockoutGuard,
}

/// Everything an analysis needs, read: run it with [`PreparedAnalysis::run`].
pub struct PreparedAnalysis {
    set: PolicySet,
    directory: AnalyzedDirectory,
    names: Names,
}

/// How the people and applications a finding names are known to administrators.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// User id → userPrincipalName.
    pub users: HashMap<String, String>,
    /// Group id → displayName.
    pub groups: HashMap<String, String>,
    /// appId → displayName.
    pub applications: HashMap<String, String>,
}

/// An analysis and the names to show it with.
#[derive(Debug, Clone)]
pub struct AnalysisReport {
    pub analysis: Analysis,
    pub names: Names,
}

impl AnalysisReport {
    /// The analyzer's JSON: `{"policies": N, "findings": [...]}`.
    pub fn to_json(&self) -> Value {
        self.analysis.to_json()
    }
}

impl PreparedAnalysis {
    /// The exhaustive walk: CPU-bound, seconds on a large tenant. Call it where blocking is
    /// allowed.
    pub fn run(self) -> AnalysisReport {
        let admin_portal = ADMIN_PORTAL_APP_ID.to_string();
        let analysis = analyze(&AnalysisInput {
            set: &self.set,
            directory: Some(&self.directory),
            admin_portal_app_id: &admin_portal,
        });
        AnalysisReport {
            analysis,
            names: self.names,
        }
    }

    /// People the analysis covers.
    pub fn people(&self) -> usize {
        self.directory.people.len()
    }
}

/// The request body: nothing (the tenant's policies), `{"policies": [...]}` (a whole
/// candidate set) or `{"changes": [{"id", "policy"}]}` (the tenant's, changed), read as replay
/// reads them.
fn candidate(body: &[u8]) -> Result<Candidate> {
    let text = portcullis_policy::graph::decode_text(body)
        .map_err(|e| Error::invalid("body", format!("body: {e}")))?;
    if crate::kernel::json::is_blank(text.as_bytes()) {
        return Ok(Candidate::Tenant);
    }
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid("body", format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(members) = value else {
        return Err(Error::invalid(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    if let Some(key) = members
        .keys()
        .find(|k| !["policies", "changes"].contains(&k.as_str()))
    {
        return Err(Error::invalid(
            key.clone(),
            format!("{key}: not a member of an analysis request (policies, changes)"),
        ));
    }
    Candidate::from_members(&members)
}

fn all<T, F, Fut>(limit: usize, page: F) -> impl std::future::Future<Output = Result<Vec<T>>>
where
    F: FnMut(ListQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    crate::kernel::query::every_page(limit, PAGE, page)
}

impl PolicyAnalyzer {
    pub fn new(deps: Deps<dyn MethodStore>) -> Self {
        PolicyAnalyzer {
            guard: LockoutGuard::new(deps),
        }
    }

    /// See [`LockoutGuard::with_attestation_roots`].
    pub fn with_attestation_roots(self, any: bool) -> Self {
        PolicyAnalyzer {
            guard: self.guard.with_attestation_roots(any),
        }
    }

    /// Reads the candidate in `body` (empty: the tenant's policies) and the directory. A bad
    /// body is refused naming the member at fault; a tenant of more than [`MAX_PEOPLE`] people
    /// with `Request_EntityTooLarge` (target `directory`).
    /// Reading users' methods is asked as well as policies: a witness is a real person, with
    /// their groups, roles and registered methods (passkey models included).
    pub async fn prepare(
        &self,
        _grant: &Granted<ReadPolicies>,
        _methods: &Granted<ReadUserMethods>,
        conditional_access: &ConditionalAccess,
        body: &[u8],
    ) -> Result<PreparedAnalysis> {
        let set = candidate_set(conditional_access, candidate(body)?).await?;
        let store = self.guard.deps.store.clone();
        let users: Vec<User> = all(MAX_PEOPLE, |q| {
            let store = store.clone();
            async move { store.list_users(&q).await }
        })
        .await?;
        if users.len() > MAX_PEOPLE {
            return Err(Error::Invalid {
                code: ErrorCode::EntityTooLarge,
                target: Some("directory".into()),
                message: format!(
                    "The directory holds more than {MAX_PEOPLE} people, the most an analysis online covers. Analyse it offline with `portcullis policy analyze --directory`."
                ),
            });
        }
        let rules = self.guard.method_rules().await?;
        let passkeys = self.guard.passkey_policy().await?;
        let mut names = Names::default();
        let mut people = Vec::with_capacity(users.len());
        for user in users {
            names
                .users
                .insert(user.id.to_string(), user.user_principal_name.clone());
            // Everyone, disabled accounts too: a policy may name them, and a name the
            // directory holds is not an unresolved reference.
            let person = self.guard.protected(user, false, &rules).await?;
            people.push(person.facts(&passkeys).0);
        }
        let mut group_ids = Vec::new();
        for group in all(usize::MAX, |q| {
            let store = store.clone();
            async move { store.list_groups(&q).await }
        })
        .await?
        {
            group_ids.push(group.id.to_string());
            names
                .groups
                .insert(group.id.to_string(), group.display_name);
        }
        let applications: Vec<AnalyzedApplication> = all(usize::MAX, |q| {
            let store = store.clone();
            async move { store.list_applications(&q).await }
        })
        .await?
        .into_iter()
        .map(|a| AnalyzedApplication {
            app_id: a.app_id.to_string(),
            display_name: a.display_name,
        })
        .collect();
        for app in &applications {
            names
                .applications
                .insert(app.app_id.clone(), app.display_name.clone());
        }
        Ok(PreparedAnalysis {
            set,
            directory: AnalyzedDirectory {
                people,
                group_ids,
                role_template_ids: Some(
                    BUILT_IN_ROLES
                        .iter()
                        .map(|r| r.template_id.to_string())
                        .collect(),
                ),
                applications,
            },
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_field(body: &str) -> String {
        match candidate(body.as_bytes()) {
            Err(Error::Invalid { target, .. }) => target.unwrap_or_default().into_owned(),
            other => panic!("{body} was not refused: {other:?}"),
        }
    }

    #[test]
    fn no_body_or_an_empty_object_is_the_tenants_policies() {
        assert_eq!(candidate(b"").unwrap(), Candidate::Tenant);
        assert_eq!(candidate(b"  \n").unwrap(), Candidate::Tenant);
        assert_eq!(candidate(b"{}").unwrap(), Candidate::Tenant);
    }

    #[test]
    fn a_bad_body_is_refused_naming_the_member() {
        assert_eq!(refused_field("[]"), "body");
        assert_eq!(refused_field("{"), "body");
        assert_eq!(refused_field(r#"{"from": "2026-01-01T00:00:00Z"}"#), "from");
        assert_eq!(refused_field(r#"{"policies": {}}"#), "policies");
        let conditions = r#""conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}"#;
        assert_eq!(
            refused_field(&format!(
                r#"{{"policies": [{{"displayName": "x", "state": "sometimes", {conditions}}}]}}"#
            )),
            "policies[0].state"
        );
    }
}
