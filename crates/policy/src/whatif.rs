//! The What-If shapes of Graph's `POST /identity/conditionalAccess/evaluate`.
//!
//! The request names a user, a target (application, user action or authentication context) and
//! sign-in conditions; the directory facts Graph would look up (groups, roles, member or guest)
//! come from the caller. The response is one `whatIfAnalysisResult` per policy: the policy
//! itself plus `policyApplies` and `analysisReasons`.
//!
//! As in Graph's current API, a condition whose signal the request does not give (a location
//! condition without `ipAddress`, a platform condition without `devicePlatform`) makes the
//! policy not apply. A policy that fails closed on a condition the engine cannot evaluate is
//! reported as applying, with `invalidCondition`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::{SignInContext, Target, UserKind};
use crate::device_filter::DeviceFacts;
use crate::enums::{AnalysisReason, ClientAppType, DevicePlatform, RiskLevel, UserAction};
use crate::evaluate::Decision;
use crate::model::{ConditionalAccessPolicy, Extra, null_as_default};
use crate::policy_set::PolicySet;

pub const USER_SIGN_IN: &str = "#microsoft.graph.userSignIn";
pub const SERVICE_PRINCIPAL_SIGN_IN: &str = "#microsoft.graph.servicePrincipalSignIn";
pub const APPLICATION_CONTEXT: &str = "#microsoft.graph.applicationContext";
pub const USER_ACTION_CONTEXT: &str = "#microsoft.graph.userActionContext";
pub const AUTH_CONTEXT: &str = "#microsoft.graph.authContext";

/// The request body of `identity/conditionalAccess/evaluate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateRequest {
    pub sign_in_identity: SignInIdentity,
    pub sign_in_context: WhatIfTarget,
    #[serde(default)]
    pub sign_in_conditions: SignInConditions,
    #[serde(default, deserialize_with = "null_as_default")]
    pub applied_policies_only: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `userSignIn` or `servicePrincipalSignIn`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInIdentity {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `applicationContext`, `userActionContext` or `authContext`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfTarget {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_applications: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_action: Option<UserAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_context_value: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `signInConditions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_platform: Option<DevicePlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_app_type: Option<ClientAppType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_risk_level: Option<RiskLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_risk_level: Option<RiskLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info: Option<serde_json::Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What the directory knows about the user named in the request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectoryFacts {
    pub group_ids: Vec<String>,
    pub role_template_ids: Vec<String>,
    pub user_kind: UserKind,
}

/// A request member that cannot be turned into a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WhatIfError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> WhatIfError {
    WhatIfError {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn is_type(odata: &Option<String>, expected: &str) -> bool {
    odata
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(expected))
}

impl EvaluateRequest {
    /// Parses a request body (UTF-8 or UTF-16 with BOM), naming the member at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self, WhatIfError> {
        let text = crate::graph::decode_text(bytes).map_err(|e| error("", e.to_string()))?;
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| error(&e.path().to_string(), e.into_inner().to_string()))
    }

    /// The user the request is about.
    pub fn user_id(&self) -> Result<&str, WhatIfError> {
        let identity = &self.sign_in_identity;
        if is_type(&identity.odata_type, SERVICE_PRINCIPAL_SIGN_IN)
            || identity.service_principal_id.is_some()
        {
            return Err(error(
                "signInIdentity",
                "workload identities are not evaluated: Portcullis policies target users",
            ));
        }
        identity
            .user_id
            .as_deref()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| error("signInIdentity.userId", "a userSignIn needs a userId"))
    }

    /// The sign-in the request describes, completed with what the directory knows.
    pub fn to_sign_in_context(
        &self,
        directory: DirectoryFacts,
        set: &PolicySet,
    ) -> Result<SignInContext, WhatIfError> {
        let user_id = self.user_id()?.to_owned();
        let target = self.target()?;
        let mut ctx = SignInContext::new(user_id, target);
        ctx.group_ids = directory.group_ids;
        ctx.role_template_ids = directory.role_template_ids;
        ctx.user_kind = directory.user_kind;
        let conditions = &self.sign_in_conditions;
        ctx.platform = conditions
            .device_platform
            .clone()
            .filter(|p| crate::policy_set::platform_bit(p).is_some());
        ctx.client_app_type = conditions
            .client_app_type
            .clone()
            .unwrap_or(ClientAppType::All);
        ctx.sign_in_risk = conditions
            .sign_in_risk_level
            .clone()
            .unwrap_or(RiskLevel::None);
        ctx.user_risk = conditions
            .user_risk_level
            .clone()
            .unwrap_or(RiskLevel::None);
        ctx.country = conditions.country.clone().filter(|c| !c.trim().is_empty());
        if let Some(ip) = conditions
            .ip_address
            .as_deref()
            .filter(|ip| !ip.trim().is_empty())
        {
            let ip: IpAddr = ip.trim().parse().map_err(|_| {
                error(
                    "signInConditions.ipAddress",
                    format!("`{ip}` is not an IP address"),
                )
            })?;
            ctx.ip_address = Some(ip);
            ctx.named_locations = set.locations_for(ip, ctx.country.as_deref());
        }
        if let Some(info) = conditions.device_info.as_ref().filter(|i| !i.is_empty()) {
            ctx.device = Some(device_from_info(info)?);
        }
        Ok(ctx)
    }

    fn target(&self) -> Result<Target, WhatIfError> {
        let context = &self.sign_in_context;
        let odata = &context.odata_type;
        if is_type(odata, USER_ACTION_CONTEXT) || (odata.is_none() && context.user_action.is_some())
        {
            return match &context.user_action {
                Some(
                    action @ (UserAction::RegisterSecurityInformation
                    | UserAction::RegisterOrJoinDevices),
                ) => Ok(Target::UserAction(action.clone())),
                Some(other) => Err(error(
                    "signInContext.userAction",
                    format!("unknown user action `{other}`"),
                )),
                None => Err(error(
                    "signInContext.userAction",
                    "a userActionContext needs a userAction",
                )),
            };
        }
        if is_type(odata, AUTH_CONTEXT)
            || (odata.is_none() && context.authentication_context_value.is_some())
        {
            return match context
                .authentication_context_value
                .as_deref()
                .map(str::trim)
            {
                Some(value) if is_auth_context_id(value) => {
                    Ok(Target::AuthenticationContext(value.to_owned()))
                }
                _ => Err(error(
                    "signInContext.authenticationContextValue",
                    "an authentication context is c1 to c99",
                )),
            };
        }
        if is_type(odata, APPLICATION_CONTEXT) || odata.is_none() {
            let apps = context.include_applications.as_deref().unwrap_or(&[]);
            return match apps {
                [app] if !app.trim().is_empty() => Ok(Target::Application(app.trim().to_owned())),
                [] => Err(error(
                    "signInContext.includeApplications",
                    "name the application's appId",
                )),
                _ => Err(error(
                    "signInContext.includeApplications",
                    "evaluate one application at a time",
                )),
            };
        }
        Err(error(
            "signInContext.@odata.type",
            format!(
                "unknown sign-in context type `{}`",
                odata.as_deref().unwrap_or("")
            ),
        ))
    }
}

/// `c1` … `c99`.
pub fn is_auth_context_id(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('c').or_else(|| value.strip_prefix('C')) else {
        return false;
    };
    !digits.starts_with('0') && matches!(digits.parse::<u8>(), Ok(1..=99)) && digits.len() <= 2
}

fn device_from_info(info: &serde_json::Map<String, Value>) -> Result<DeviceFacts, WhatIfError> {
    let mut device = DeviceFacts::default();
    for (key, value) in info {
        if crate::model::is_annotation(key) || value.is_null() {
            continue;
        }
        // Graph's deviceInfo says `ownership` where the rule language says `deviceOwnership`.
        let attribute = if key == "ownership" {
            "deviceOwnership"
        } else {
            key.as_str()
        };
        let field = format!("signInConditions.deviceInfo.{key}");
        let texts: Vec<String> = match value {
            Value::String(s) => vec![s.clone()],
            Value::Bool(b) => vec![if *b {
                "True".to_owned()
            } else {
                "False".to_owned()
            }],
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| error(&field, "expected strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(error(
                    &field,
                    "expected a string, a boolean or a list of strings",
                ));
            }
        };
        for text in texts {
            if !device.set(attribute, &text) {
                return Err(error(
                    &field,
                    "not a device attribute this engine knows, or a bad value",
                ));
            }
        }
    }
    Ok(device)
}

/// `whatIfAnalysisResult`: a policy and whether it applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfAnalysisResult {
    #[serde(flatten)]
    pub policy: ConditionalAccessPolicy,
    pub policy_applies: bool,
    pub analysis_reasons: AnalysisReason,
}

/// The per-policy results of a decision in Graph's What-If shape. Disabled policies are listed
/// with `policyNotEnabled`; with `applied_only`, only policies that apply are.
pub fn what_if_results(decision: &Decision, applied_only: bool) -> Vec<WhatIfAnalysisResult> {
    decision
        .trace
        .iter()
        .filter(|t| t.applies || !applied_only)
        .map(|t| WhatIfAnalysisResult {
            policy: (*t.policy).clone(),
            policy_applies: t.applies,
            analysis_reasons: t.analysis_reason(),
        })
        .collect()
}

/// The full response body: `{"@odata.context": …, "value": [...]}`. `metadata_url` is the
/// server's `$metadata` address (e.g. `https://id.example/graph/v1.0/$metadata`); without it
/// the annotation is left out.
pub fn what_if_response(
    decision: &Decision,
    applied_only: bool,
    metadata_url: Option<&str>,
) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(url) = metadata_url {
        body.insert(
            "@odata.context".to_owned(),
            Value::String(format!(
                "{url}#Collection(microsoft.graph.whatIfAnalysisResult)"
            )),
        );
    }
    let results = what_if_results(decision, applied_only);
    body.insert(
        "value".to_owned(),
        serde_json::to_value(results).unwrap_or(Value::Array(Vec::new())),
    );
    Value::Object(body)
}
