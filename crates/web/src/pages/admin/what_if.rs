//! What If: describe a sign-in, see which policies would apply and why. The form is a GET, so a
//! question is a link an administrator can share, and asking changes nothing.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use portcullis_core::directory::authz::{ReadApplications, ReadPolicies, ReadUsers};
use portcullis_core::kernel::query::ListQuery;
use serde_json::{Value, json};

use super::conditional_access::state_label;
use super::policy_form::{CLIENT_APPS, PLATFORMS};
use super::{FieldErrors, PageResult, Portal, Query, one_error, refusal};
use crate::{AppState, PortalState};

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/conditional-access/what-if", get(what_if))
}

const FIELDS: &[&str] = &[
    "user",
    "target",
    "app",
    "userAction",
    "authContext",
    "platform",
    "clientApp",
    "ip",
    "country",
];

/// The What-If words for the reasons a policy does not apply.
fn reason_label(reason: &str) -> &str {
    match reason {
        "notSet" => "",
        "users" => "Users or groups: the user is not included, or is excluded",
        "application" => "Target resources: the application is not included, or is excluded",
        "userActions" => "Target resources: a different user action",
        "authenticationContext" => "Target resources: a different authentication context",
        "devicePlatform" => "Device platform: not included, or excluded",
        "location" => "Locations: not included, or excluded",
        "clientApps" => "Client apps: not included",
        "signInRisk" => "Sign-in risk",
        "userRisk" => "User risk",
        "devices" => "Filter for devices",
        "policyNotEnabled" => "The policy is off",
        "notEnoughInformation" => {
            "Not enough information: the question does not give a signal this policy needs"
        }
        "invalidCondition" => "A condition cannot be evaluated: the policy fails closed",
        "emptyPolicy" => "The policy has no conditions",
        "workloadIdentities" => "The policy is for workload identities",
        other => other,
    }
}

async fn what_if(
    State(state): State<Arc<PortalState>>,
    portal: Portal,
    query: Query,
) -> PageResult {
    let grant = portal.grant::<ReadPolicies>("What If")?;
    let applications: Vec<Value> = match portal.maybe::<ReadApplications>() {
        Some(g) => state
            .directory
            .list_applications(
                &g,
                &ListQuery {
                    top: 999,
                    ..ListQuery::default()
                },
            )
            .await?
            .items
            .iter()
            .map(|a| json!([a.app_id, a.display_name]))
            .collect(),
        None => Vec::new(),
    };
    let values: serde_json::Map<String, Value> = FIELDS
        .iter()
        .map(|f| (f.to_string(), json!(query.get(f))))
        .collect();
    let mut context = json!({
        "values": values,
        "applications": applications,
        "platforms": PLATFORMS,
        "clientApps": CLIENT_APPS,
        "errors": {},
        "asked": false,
        "subnav": { "current": "what-if" },
    });
    if query.get("user").is_empty() {
        return portal.page("admin/what_if.html", "conditional-access", context);
    }
    match ask(&state, &portal, &grant, &query).await? {
        Ok(results) => {
            context["asked"] = json!(true);
            context["results"] = json!(results);
            portal.page("admin/what_if.html", "conditional-access", context)
        }
        Err((status, errors)) => {
            context["errors"] = json!(errors);
            Ok(portal.render(status, "admin/what_if.html", "conditional-access", context))
        }
    }
}

type Answer = Result<Vec<Value>, (StatusCode, FieldErrors)>;

/// Builds Graph's evaluate request from the form, asks core, and turns each policy's answer into
/// a row. Input errors come back to show beside their fields.
async fn ask(
    state: &PortalState,
    portal: &Portal,
    grant: &portcullis_core::directory::authz::Granted<ReadPolicies>,
    query: &Query,
) -> Result<Answer, super::PageError> {
    let bad = |field: &str, message: String| {
        Ok(Err((StatusCode::BAD_REQUEST, one_error(field, message))))
    };
    let users = portal.grant::<ReadUsers>("users")?;
    let user = match state.directory.user(&users, query.get("user")).await {
        Ok(u) => u,
        Err(_) => {
            return bad(
                "user",
                format!("No user signs in as '{}'.", query.get("user")),
            );
        }
    };
    let target = match query.get("target") {
        "" | "applications" => {
            if query.get("app").is_empty() {
                return bad(
                    "app",
                    "Choose the application the person signs in to.".into(),
                );
            }
            json!({ "@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [query.get("app")] })
        }
        "userAction" => json!({
            "@odata.type": "#microsoft.graph.userActionContext",
            "userAction": if query.get("userAction").is_empty() { "registerSecurityInformation" } else { query.get("userAction") },
        }),
        "authenticationContext" => json!({
            "@odata.type": "#microsoft.graph.authContext",
            "authenticationContextValue": query.get("authContext"),
        }),
        _ => return bad("target", "Choose what the person signs in to.".into()),
    };
    let mut conditions = serde_json::Map::new();
    for (field, member) in [
        ("platform", "devicePlatform"),
        ("clientApp", "clientAppType"),
        ("ip", "ipAddress"),
        ("country", "country"),
    ] {
        if !query.get(field).is_empty() {
            conditions.insert(member.into(), json!(query.get(field)));
        }
    }
    let body = json!({
        "signInIdentity": { "@odata.type": "#microsoft.graph.userSignIn", "userId": user.id },
        "signInContext": target,
        "signInConditions": conditions,
        "appliedPoliciesOnly": false,
    });
    let metadata = format!("{}/graph/v1.0/$metadata", state.public_url);
    let answer = match state
        .conditional_access
        .what_if(
            grant,
            &state.directory,
            body.to_string().as_bytes(),
            &metadata,
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            let target = e.target().unwrap_or_default().to_string();
            let field = if target.contains("ipAddress") {
                "ip"
            } else if target.contains("devicePlatform") {
                "platform"
            } else if target.contains("clientAppType") {
                "clientApp"
            } else if target.contains("signInContext") {
                "target"
            } else {
                "form"
            };
            let (status, mut errors) = refusal(e, &[])?;
            if let Some(message) = errors.remove("form") {
                errors.insert(field.into(), message);
            }
            return Ok(Err((status, errors)));
        }
    };
    // Strengths by the names administrators gave them, never by their ids.
    let strengths: std::collections::HashMap<String, String> = state
        .conditional_access
        .strengths(grant)
        .await?
        .iter()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_string(),
                s["displayName"].as_str()?.to_string(),
            ))
        })
        .collect();
    let mut rows: Vec<Value> = answer["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let (state_text, state_class) = state_label(r["state"].as_str().unwrap_or_default());
            let reasons: Vec<&str> = r["analysisReasons"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .map(reason_label)
                .filter(|l| !l.is_empty())
                .collect();
            let controls: Vec<String> = r["grantControls"]["builtInControls"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|c| match c {
                    "block" => "Block access".to_string(),
                    "mfa" => "Require multifactor authentication".to_string(),
                    other => other.to_string(),
                })
                .chain({
                    let strength = &r["grantControls"]["authenticationStrength"];
                    strength["displayName"]
                        .as_str()
                        .or_else(|| {
                            strength["id"]
                                .as_str()
                                .and_then(|id| strengths.get(id).map(String::as_str))
                        })
                        .or(strength["id"].as_str())
                        .map(|s| format!("Require authentication strength: {s}"))
                })
                .collect();
            json!({
                "id": r["id"],
                "displayName": r["displayName"],
                "state": state_text,
                "stateClass": state_class,
                "applies": r["policyApplies"].as_bool().unwrap_or(false),
                "reasons": reasons,
                "controls": controls,
            })
        })
        .collect();
    // Policies that apply first, as Entra lists them.
    rows.sort_by_key(|r| !r["applies"].as_bool().unwrap_or(false));
    Ok(Ok(rows))
}
