//! Which API an access token is for, and what tokens say about the person beyond who they are.
//!
//! A scope `<identifierUri>/<value>` (or `<appId>/<value>`) asks for a delegated scope of an
//! application registered as an API here. The access token is then that API's: `aud` is the
//! API's appId (Entra v2's choice, whatever name the scope used), `scp` the scope values
//! granted, `roles` the person's app roles on the API. Scopes of two APIs in one request are
//! refused (`invalid_scope`, as Entra's AADSTS70011), since one access token has one audience.
//! `<resource>/.default` asks for every enabled scope of the API. Portcullis's applications are
//! all admin-managed: scopes are granted without a consent prompt.
//!
//! The same module says what goes in `roles` and `groups` of ID and access tokens, and the
//! overage indicator that replaces `groups` when there are too many to list.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Result;
use crate::directory::access::{self, enabled_scope};
use crate::directory::model::Application;
use crate::directory::store::DirectoryStore;

/// Entra's bound on the groups listed in a JWT: past it, the token carries the overage
/// indicator instead.
pub const DEFAULT_GROUPS_CLAIM_LIMIT: usize = 200;

/// What one requested scope means here.
pub enum RequestedScope {
    /// Not a scope of a registered API: an OpenID Connect scope or one not understood.
    NotAnApi,
    /// Scopes of a registered API: the API, and the full scope texts granted (`.default`
    /// expanded into each enabled scope).
    Api {
        api: Box<Application>,
        granted: Vec<String>,
    },
    /// It names an API that is not here, or a scope the API does not expose (or has
    /// disabled): refused with this description.
    Refused(String),
}

/// The resource part and value of `scope`, split at its last `/`.
fn split(scope: &str) -> Option<(&str, &str)> {
    let (resource, value) = scope.rsplit_once('/')?;
    (!resource.is_empty() && !value.is_empty()).then_some((resource, value))
}

/// Whether a resource part is spelled like one that could only name an API here (an
/// `api://` identifier URI or an appId), so that naming an unknown one is refused rather than
/// ignored.
fn names_an_api(resource: &str) -> bool {
    resource
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("api://"))
        || Uuid::parse_str(resource).is_ok()
}

/// The API application a scope's resource part names: by appId or by identifier URI.
pub async fn resource(store: &dyn DirectoryStore, resource: &str) -> Result<Option<Application>> {
    match Uuid::parse_str(resource) {
        Ok(app_id) => store.application_by_app_id(app_id).await,
        Err(_) => store.application_by_identifier_uri(resource).await,
    }
}

/// What `scope` asks for.
pub async fn requested(store: &dyn DirectoryStore, scope: &str) -> Result<RequestedScope> {
    let Some((name, value)) = split(scope) else {
        return Ok(RequestedScope::NotAnApi);
    };
    let Some(api) = resource(store, name).await? else {
        return Ok(if names_an_api(name) {
            RequestedScope::Refused(format!(
                "AADSTS500011: no application named '{name}' is registered here."
            ))
        } else {
            RequestedScope::NotAnApi
        });
    };
    let granted = if value == ".default" {
        let all: Vec<String> = api
            .access
            .api
            .oauth2_permission_scopes
            .iter()
            .filter(|s| s.is_enabled)
            .map(|s| format!("{name}/{}", s.value))
            .collect();
        if all.is_empty() {
            return Ok(RequestedScope::Refused(format!(
                "AADSTS70011: the application '{}' exposes no enabled scopes.",
                api.display_name
            )));
        }
        all
    } else {
        match enabled_scope(&api, value) {
            Some(found) => vec![format!("{name}/{}", found.value)],
            None => {
                return Ok(RequestedScope::Refused(format!(
                    "AADSTS70011: the scope '{value}' does not exist on the application '{}' (or is disabled).",
                    api.display_name
                )));
            }
        }
    };
    Ok(RequestedScope::Api {
        api: Box::new(api),
        granted,
    })
}

/// The API a grant's scopes are for and the values of its scopes the API still exposes; `None`
/// when the grant asked for no API's scopes, or the API is gone. A scope disabled since the
/// grant is no longer given.
pub async fn granted_api(
    store: &dyn DirectoryStore,
    scopes: &[String],
) -> Result<Option<(Application, Vec<String>)>> {
    let mut found: Option<(Application, Vec<String>)> = None;
    for scope in scopes {
        let Some((name, value)) = split(scope) else {
            continue;
        };
        let api = match &found {
            Some((api, _)) => api.clone(),
            None => match resource(store, name).await? {
                Some(api) => api,
                None => continue,
            },
        };
        if let Some(s) = enabled_scope(&api, value) {
            let value = s.value.clone();
            match &mut found {
                Some((_, values)) => values.push(value),
                None => found = Some((api, vec![value])),
            }
        }
    }
    Ok(found)
}

/// `groups`, or the overage indicator in its place: Entra's `_claim_names` and
/// `_claim_sources`, pointing at the Graph action that lists the person's groups.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(
        default,
        rename = "_claim_names",
        skip_serializing_if = "Option::is_none"
    )]
    pub claim_names: Option<Value>,
    #[serde(
        default,
        rename = "_claim_sources",
        skip_serializing_if = "Option::is_none"
    )]
    pub claim_sources: Option<Value>,
}

/// The group claims `app`'s tokens carry for the person: none unless the application asks
/// (`groupMembershipClaims`); the group ids when there are at most `limit`; otherwise the
/// overage indicator naming `{graph_url}/users/{oid}/getMemberObjects`.
pub async fn group_claims(
    store: &dyn DirectoryStore,
    app: &Application,
    user_id: Uuid,
    limit: usize,
    graph_url: &str,
) -> Result<GroupClaims> {
    let Some(groups) = access::groups_claim(store, app, user_id).await? else {
        return Ok(GroupClaims::default());
    };
    if groups.len() <= limit {
        return Ok(GroupClaims {
            groups: Some(groups.iter().map(Uuid::to_string).collect()),
            ..GroupClaims::default()
        });
    }
    Ok(GroupClaims {
        groups: None,
        claim_names: Some(json!({ "groups": "src1" })),
        claim_sources: Some(json!({
            "src1": { "endpoint": format!("{graph_url}/users/{user_id}/getMemberObjects") }
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_splits_at_its_last_slash() {
        assert_eq!(split("api://orders/Read"), Some(("api://orders", "Read")));
        assert_eq!(
            split("https://api.contoso.com/orders/Orders.Read"),
            Some(("https://api.contoso.com/orders", "Orders.Read"))
        );
        assert_eq!(split("openid"), None);
        assert_eq!(split("api://orders/"), None);
    }

    #[test]
    fn only_api_uris_and_app_ids_name_an_api_for_certain() {
        assert!(names_an_api("api://orders"));
        assert!(names_an_api("6d3f0c6e-7a4b-4d2f-9a51-0e9c2d1b3a77"));
        assert!(!names_an_api("https://graph.microsoft.com"));
    }
}
