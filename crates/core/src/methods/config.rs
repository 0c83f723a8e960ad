//! The life of one method configuration in the authentication methods policy: read it (or its
//! defaults), apply a Graph PATCH to it, validate, store and audit. One place, so that every
//! method's configuration changes the same way.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::directory::audit::{RequestContext, TargetResource};
use crate::directory::authz::{Granted, WriteAuthenticationMethodPolicy};
use crate::directory::model::{DocumentKind, PolicyDocument};
use crate::directory::store::DirectoryChange;
use crate::kernel::Deps;
use crate::methods::store::{MethodChange as Change, MethodStore};
use crate::methods::tap::audit_entry;
use crate::{Error, Result};

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

/// Applies `patch` (members given replace those stored; `id` is read-only), validates the
/// result, and stores it with an "Authentication Methods Policy Update" audit entry.
pub(crate) async fn update<T>(
    deps: &Deps<dyn MethodStore>,
    grant: &Granted<WriteAuthenticationMethodPolicy>,
    request: &RequestContext,
    (id, display_name): (&str, &str),
    patch: Value,
    validate: impl Fn(&T) -> Result<()>,
) -> Result<T>
where
    T: Serialize + DeserializeOwned + Default,
{
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
    let change = if existing.is_some() {
        Change::from(DirectoryChange::UpdateDocument(document))
    } else {
        Change::from(DirectoryChange::InsertDocument(document))
    };
    deps.store.commit(vec![change], Some(audit)).await?;
    Ok(new)
}
