//! The life of one method configuration in the authentication methods policy: read it (or its
//! defaults), apply a Graph PATCH to it, validate, store and audit. One place, so that every
//! method's configuration changes the same way.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::directory::audit::{RequestContext, TargetResource};
use crate::directory::authz::{Granted, WriteAuthenticationMethodPolicy};
use crate::directory::model::{DocumentKind, PolicyDocument};
use crate::directory::references::{precondition, retrying};
use crate::directory::store::{DirectoryChange, DirectoryStore};
use crate::kernel::Deps;
use crate::methods::store::{MethodChange as Change, MethodStore};
use crate::methods::tap::audit_entry;
use crate::{Error, Result};

/// A check on a change to a method's configuration, given its id and the configuration after
/// the change (the one stored is the one before). The lockout guard (`crate::guard`)
/// implements it: turning passwords or passes off can leave administrators with no way in.
#[async_trait::async_trait]
pub trait MethodPolicyCheck: Send + Sync {
    async fn check_method_policy_change(
        &self,
        actor: &crate::directory::authz::Actor,
        request: &RequestContext,
        configuration_id: &str,
        after: &Value,
    ) -> Result<()>;
}

/// The stored configuration `id`, or the defaults when none was ever saved.
pub(crate) async fn load<T: DeserializeOwned + Default>(
    deps: &Deps<dyn MethodStore>,
    id: &str,
) -> Result<T> {
    match deps
        .store
        .document(DocumentKind::AuthenticationMethodConfiguration, id)
        .await?
    {
        Some(doc) => serde_json::from_value(doc.body)
            .map_err(|e| Error::Internal(format!("stored {id} configuration: {e}"))),
        None => Ok(T::default()),
    }
}

/// Refuses a configuration whose `includeTargets` / `excludeTargets` name a group that does not
/// exist (400 naming the target). `all_users` is not an id.
pub(crate) async fn check_targets<S: DirectoryStore + ?Sized>(
    store: &S,
    body: &Value,
) -> Result<()> {
    for list in ["includeTargets", "excludeTargets"] {
        let Some(targets) = body.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, target) in targets.iter().enumerate() {
            let id = target.get("id").and_then(Value::as_str).unwrap_or_default();
            if id.eq_ignore_ascii_case("all_users") {
                continue;
            }
            let exists = match Uuid::parse_str(id.trim()) {
                Ok(group) => store.group(group).await?.is_some(),
                Err(_) => false,
            };
            if !exists {
                return Err(Error::invalid(
                    format!("{list}[{i}].id"),
                    format!("{list}[{i}].id: the group '{id}' does not exist."),
                ));
            }
        }
    }
    Ok(())
}

/// Applies `patch` (members given replace those stored; `id` is read-only), validates the
/// result (its targets must name groups that exist), and stores it with an "Authentication
/// Methods Policy Update" audit entry, under a revision precondition (tried again if the
/// directory moved meanwhile). `check` (the lockout guard) is asked last; its refusal is
/// audited as the update's failure.
pub(crate) async fn update<T>(
    deps: &Deps<dyn MethodStore>,
    grant: &Granted<WriteAuthenticationMethodPolicy>,
    request: &RequestContext,
    (id, display_name): (&str, &str),
    patch: Value,
    validate: impl Fn(&T) -> Result<()>,
    check: Option<&dyn MethodPolicyCheck>,
) -> Result<T>
where
    T: Serialize + DeserializeOwned + Default,
{
    retrying(|| {
        update_once(
            deps,
            grant,
            request,
            (id, display_name),
            patch.clone(),
            &validate,
            check,
        )
    })
    .await
}

async fn update_once<T>(
    deps: &Deps<dyn MethodStore>,
    grant: &Granted<WriteAuthenticationMethodPolicy>,
    request: &RequestContext,
    (id, display_name): (&str, &str),
    patch: Value,
    validate: &impl Fn(&T) -> Result<()>,
    check: Option<&dyn MethodPolicyCheck>,
) -> Result<T>
where
    T: Serialize + DeserializeOwned + Default,
{
    let precondition = precondition(deps.store.as_ref()).await?;
    let old: T = load(deps, id).await?;
    let Value::Object(patch) = patch else {
        return Err(Error::invalid(
            "body",
            "The request body must be a JSON object.",
        ));
    };
    let old_json = serde_json::to_value(&old).map_err(|e| Error::Internal(e.to_string()))?;
    let mut merged = old_json.clone();
    for (k, v) in patch {
        if k != "id" {
            merged[k] = v;
        }
    }
    let new: T = crate::kernel::json::from_value_naming_field(merged)?;
    validate(&new)?;
    let body = serde_json::to_value(&new).map_err(|e| Error::Internal(e.to_string()))?;
    check_targets(deps.store.as_ref(), &body).await?;
    let now = deps.clock.now();
    let existing = deps
        .store
        .document(DocumentKind::AuthenticationMethodConfiguration, id)
        .await?;
    let document = PolicyDocument {
        kind: DocumentKind::AuthenticationMethodConfiguration,
        id: id.to_string(),
        display_name: display_name.to_string(),
        body: body.clone(),
        created: existing.as_ref().map_or(now, |d| d.created),
        modified: now,
    };
    let target = TargetResource::new("Policy", id, display_name).modified(
        "AuthenticationMethodConfiguration",
        Some(&old_json),
        Some(&body),
    );
    let audit = audit_entry(
        deps,
        grant.actor(),
        request,
        "ApplicationManagement",
        "Authentication Methods Policy Update",
        "Update",
        target,
    );
    if body != old_json
        && let Some(check) = check
        && let Err(e) = check
            .check_method_policy_change(grant.actor(), request, id, &body)
            .await
    {
        return Err(crate::directory::audit::record_refusal(deps.store.as_ref(), audit, e).await);
    }
    let change = if existing.is_some() {
        Change::from(DirectoryChange::UpdateDocument(document))
    } else {
        Change::from(DirectoryChange::InsertDocument(document))
    };
    let changes = std::iter::once(change)
        .chain(precondition.map(Change::from))
        .collect();
    deps.store.commit(changes, Some(audit)).await?;
    Ok(new)
}
