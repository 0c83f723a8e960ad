//! References from policy documents to directory objects, and writes checked against them.
//!
//! Conditional Access policies and method policies name users, groups, roles and applications
//! by id. Deleting an object a policy names would silently change what the policy covers (an
//! exclusion that excludes nobody widens a block), so a deletion is refused while a policy names
//! the object. The check and the write are tied together with a revision precondition
//! ([`DirectoryChange::ExpectRevisions`]): the revisions are read before the check, and the
//! commit fails with `revisionMoved` if a document or a membership changed on any node in
//! between. [`retrying`] runs such a check-and-write again a few times before giving up, so a
//! busy tenant sees a conflict only when it keeps losing.
//!
//! What it must never do: parse a policy's meaning. The engine above owns that; here a document
//! names an object when any of its string values is the object's id.

use std::future::Future;

use serde_json::Value;

use crate::directory::model::DocumentKind;
use crate::directory::store::{DirectoryChange, DirectoryStore};
use crate::kernel::error::ErrorCode;
use crate::{Error, Result};

/// How many times a check-and-write runs before its `revisionMoved` conflict reaches the caller.
const ATTEMPTS: usize = 5;

/// Runs `attempt` until it does not fail with `revisionMoved`, at most [`ATTEMPTS`] times.
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(Error::Conflict {
                code: ErrorCode::RevisionMoved,
                ..
            }) if tries < ATTEMPTS => tries += 1,
            other => return other,
        }
    }
}

/// The precondition to commit with a write checked against what `store` held at this moment;
/// read it before the reads the check makes. `None` when the store keeps no revisions.
pub async fn precondition<S: DirectoryStore + ?Sized>(
    store: &S,
) -> Result<Option<DirectoryChange>> {
    Ok(store
        .revisions()
        .await?
        .map(DirectoryChange::ExpectRevisions))
}

/// Whether any string in `body` (other than its own top-level `id`) is one of `ids`, compared
/// without case as Graph compares ids.
pub fn names_any(body: &Value, ids: &[String]) -> bool {
    fn walk(value: &Value, ids: &[String]) -> bool {
        match value {
            Value::String(s) => ids.iter().any(|id| id.eq_ignore_ascii_case(s)),
            Value::Array(items) => items.iter().any(|v| walk(v, ids)),
            Value::Object(members) => members.values().any(|v| walk(v, ids)),
            _ => false,
        }
    }
    match body {
        Value::Object(members) => members
            .iter()
            .any(|(key, value)| key != "id" && walk(value, ids)),
        other => walk(other, ids),
    }
}

/// The names of the policies (Conditional Access policies and method configurations) that name
/// any of `ids`.
pub async fn policies_naming<S: DirectoryStore + ?Sized>(
    store: &S,
    ids: &[String],
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for kind in [
        DocumentKind::ConditionalAccessPolicy,
        DocumentKind::AuthenticationMethodConfiguration,
    ] {
        for document in store.documents(kind).await? {
            if names_any(&document.body, ids) {
                names.push(if document.display_name.is_empty() {
                    document.id.clone()
                } else {
                    document.display_name.clone()
                });
            }
        }
    }
    Ok(names)
}

/// Refuses deleting `what` while policies name it: 409 naming the policies.
pub async fn refuse_if_named<S: DirectoryStore + ?Sized>(
    store: &S,
    what: &str,
    ids: &[String],
) -> Result<()> {
    let names = policies_naming(store, ids).await?;
    if names.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict {
        code: ErrorCode::ObjectInUseByPolicy,
        message: format!(
            "The {what} is named by the policies: {}. Remove it from them first.",
            names.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_names_an_id_anywhere_but_its_own_id() {
        let ids = vec!["AB-1".to_string()];
        assert!(names_any(
            &json!({"id": "x", "conditions": {"users": {"excludeGroups": ["ab-1"]}}}),
            &ids
        ));
        assert!(!names_any(&json!({"id": "ab-1", "displayName": "p"}), &ids));
    }
}
