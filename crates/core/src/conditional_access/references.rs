//! The directory objects a Conditional Access policy names, and which of them do not exist.
//!
//! A policy names users, groups and roles (by their template id) in `conditions.users`, and
//! applications (by appId) in `conditions.applications`. Special values (`All`, `None`,
//! `GuestsOrExternalUsers`, `Office365`, `MicrosoftAdminPortals`) and the first-party
//! applications are not references. A write through the API or the portal must name objects
//! that exist; an Entra export imported as it is may keep ids that do not resolve here, and
//! they are listed as unresolved (see [`UNRESOLVED_PROPERTY`]).
//!
//! An unresolved exclusion excludes nobody, which silently widens what an enforced policy
//! blocks or requires (the break-glass account an export excludes is not in this tenant). So a
//! policy in the `enabled` state may not keep an unresolved exclusion, however it was written:
//! an import keeps it only in report-only or disabled state, and enabling it needs the
//! exclusion fixed first. An unresolved inclusion covers nobody, which only narrows the policy
//! to what exists.

use portcullis_policy::ConditionalAccessPolicy;
use portcullis_policy::model::{
    ALL, APP_GROUP_ADMIN_PORTALS, APP_GROUP_OFFICE365, GUESTS_OR_EXTERNAL_USERS, NONE,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::directory::first_party::FIRST_PARTY_APPLICATIONS;
use crate::directory::roles::built_in_role;
use crate::directory::store::DirectoryStore;
use crate::{Error, Result};

/// The Portcullis extension property on a policy read through the API: the references that do
/// not resolve, each `{"property": …, "id": …}`. Never stored; removed from bodies written back.
pub const UNRESOLVED_PROPERTY: &str = "portcullisUnresolvedReferences";

/// How strictly a write's references are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceCheck {
    /// The API and the portal's forms: every id the write adds must resolve.
    Strict,
    /// An export imported as it is: ids that do not resolve are kept and listed.
    Import,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
    Role,
    Application,
}

/// One id a policy names, with the property that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub property: &'static str,
    pub id: String,
    kind: Kind,
}

impl Reference {
    pub fn is_exclusion(&self) -> bool {
        self.property.contains(".exclude")
    }
}

fn special(id: &str) -> bool {
    [
        ALL,
        NONE,
        GUESTS_OR_EXTERNAL_USERS,
        APP_GROUP_OFFICE365,
        APP_GROUP_ADMIN_PORTALS,
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(id.trim()))
}

/// Every id the policy names, special values left out.
pub fn references(policy: &ConditionalAccessPolicy) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut add = |property: &'static str, kind: Kind, ids: &[String]| {
        for id in ids.iter().filter(|id| !special(id)) {
            out.push(Reference {
                property,
                id: id.clone(),
                kind,
            });
        }
    };
    if let Some(users) = &policy.conditions.users {
        add(
            "conditions.users.includeUsers",
            Kind::User,
            &users.include_users,
        );
        add(
            "conditions.users.excludeUsers",
            Kind::User,
            &users.exclude_users,
        );
        add(
            "conditions.users.includeGroups",
            Kind::Group,
            &users.include_groups,
        );
        add(
            "conditions.users.excludeGroups",
            Kind::Group,
            &users.exclude_groups,
        );
        add(
            "conditions.users.includeRoles",
            Kind::Role,
            &users.include_roles,
        );
        add(
            "conditions.users.excludeRoles",
            Kind::Role,
            &users.exclude_roles,
        );
    }
    if let Some(apps) = &policy.conditions.applications {
        add(
            "conditions.applications.includeApplications",
            Kind::Application,
            &apps.include_applications,
        );
        add(
            "conditions.applications.excludeApplications",
            Kind::Application,
            &apps.exclude_applications,
        );
    }
    out
}

/// Whether the object a reference names exists now.
async fn resolves<S: DirectoryStore + ?Sized>(store: &S, reference: &Reference) -> Result<bool> {
    let Ok(id) = Uuid::parse_str(reference.id.trim()) else {
        return Ok(false);
    };
    Ok(match reference.kind {
        Kind::User => store.user(id).await?.is_some(),
        Kind::Group => store.group(id).await?.is_some(),
        Kind::Role => built_in_role(id).is_some(),
        Kind::Application => {
            FIRST_PARTY_APPLICATIONS.iter().any(|(app, _)| *app == id)
                || store.application_by_app_id(id).await?.is_some()
        }
    })
}

/// The references of `policy` that do not resolve.
pub async fn unresolved<S: DirectoryStore + ?Sized>(
    store: &S,
    policy: &ConditionalAccessPolicy,
) -> Result<Vec<Reference>> {
    let mut out = Vec::new();
    for reference in references(policy) {
        if !resolves(store, &reference).await? {
            out.push(reference);
        }
    }
    Ok(out)
}

/// Refuses a policy's next version whose references break the rules above. `before` is the
/// stored version, whose unresolved ids a strict write may keep (they came from an import).
pub async fn check<S: DirectoryStore + ?Sized>(
    store: &S,
    policy: &ConditionalAccessPolicy,
    before: Option<&ConditionalAccessPolicy>,
    mode: ReferenceCheck,
) -> Result<()> {
    let kept = before.map(references).unwrap_or_default();
    let enforced = matches!(policy.state, portcullis_policy::PolicyState::Enabled);
    for reference in unresolved(store, policy).await? {
        let new = !kept
            .iter()
            .any(|k| k.property == reference.property && k.id.eq_ignore_ascii_case(&reference.id));
        if mode == ReferenceCheck::Strict && new {
            return Err(Error::invalid(
                reference.property,
                format!(
                    "{}: '{}' is not a {} in this directory.",
                    reference.property,
                    reference.id,
                    match reference.kind {
                        Kind::User => "user",
                        Kind::Group => "group",
                        Kind::Role => "built-in role template id",
                        Kind::Application => "application (appId)",
                    }
                ),
            ));
        }
        if enforced && reference.is_exclusion() {
            return Err(Error::invalid(
                reference.property,
                format!(
                    "{}: '{}' does not exist here, so it would exclude nobody and the policy would apply to everyone it meant to spare. Fix the exclusion, or keep the policy in report-only or disabled state.",
                    reference.property, reference.id
                ),
            ));
        }
    }
    Ok(())
}

/// Adds [`UNRESOLVED_PROPERTY`] to a policy's body as read, when anything does not resolve.
pub async fn annotate<S: DirectoryStore + ?Sized>(
    store: &S,
    policy: &ConditionalAccessPolicy,
    body: &mut Value,
) -> Result<()> {
    let missing = unresolved(store, policy).await?;
    if let (false, Value::Object(map)) = (missing.is_empty(), body) {
        map.insert(
            UNRESOLVED_PROPERTY.to_string(),
            Value::Array(
                missing
                    .iter()
                    .map(|r| json!({ "property": r.property, "id": r.id }))
                    .collect(),
            ),
        );
    }
    Ok(())
}
