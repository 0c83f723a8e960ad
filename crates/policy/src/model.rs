//! The Conditional Access policy model, field for field in Graph's names.
//!
//! Every object carries `extra`: the members this engine does not model, kept in their original
//! order so that export writes them back unchanged. `@odata.*` annotations land there too.
//! [`ConditionalAccessPolicy::unsupported_fields`] says which of those members matter: a
//! condition we cannot evaluate makes the policy fail closed (see `evaluate`), an unknown grant
//! control can never be satisfied, and an unknown session control is reported as not enforced.
//!
//! On export, absent optional members are omitted rather than written as `null`, and collection
//! members are always written (as `[]` when empty), which is what Graph accepts on create.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::enums::{
    BuiltInControl, ClientAppType, DevicePlatform, FilterMode, GrantOperator,
    PersistentBrowserMode, PolicyState, RiskLevel, SignInFrequencyAuthenticationType,
    SignInFrequencyInterval, SignInFrequencyType,
};
use crate::strength::AuthenticationStrength;

/// Members of a Graph object this engine does not model, kept verbatim for export.
pub type Extra = Map<String, Value>;

/// Graph writes `null` for empty collections and unset strings; read those as the default.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// `conditionalAccessPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicy {
    /// Read-only in Graph; empty on a policy that has not been created yet.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date_time: Option<String>,
    pub state: PolicyState,
    pub conditions: ConditionSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_controls: Option<GrantControls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_controls: Option<SessionControls>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessConditionSet`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UsersCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<ApplicationsCondition>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub client_app_types: Vec<ClientAppType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<PlatformsCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<LocationsCondition>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sign_in_risk_levels: Vec<RiskLevel>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_risk_levels: Vec<RiskLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<DevicesCondition>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessUsers`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersCondition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_users: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_users: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_roles: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_guests_or_external_users: Option<GuestsOrExternalUsers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_guests_or_external_users: Option<GuestsOrExternalUsers>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Special member of `includeUsers`: every user, members and guests.
pub const ALL: &str = "All";
/// Special member of `includeUsers` / `includeApplications`: nobody / nothing.
pub const NONE: &str = "None";
/// Special member of `includeUsers` / `excludeUsers`: every guest or external user.
pub const GUESTS_OR_EXTERNAL_USERS: &str = "GuestsOrExternalUsers";
/// Special member of `includeLocations` / `excludeLocations`: named locations marked trusted.
pub const ALL_TRUSTED: &str = "AllTrusted";
/// App groups Entra defines; no Portcullis application belongs to them.
pub const APP_GROUP_OFFICE365: &str = "Office365";
pub const APP_GROUP_ADMIN_PORTALS: &str = "MicrosoftAdminPortals";

/// `conditionalAccessGuestsOrExternalUsers`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestsOrExternalUsers {
    /// Comma-joined flags, e.g. `"internalGuest,b2bCollaborationGuest"`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub guest_or_external_user_types: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tenants: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl GuestsOrExternalUsers {
    /// The flag members, trimmed.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.guest_or_external_user_types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

/// `conditionalAccessApplications`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationsCondition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_applications: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_applications: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_user_actions: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_authentication_context_class_references: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessPlatforms`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformsCondition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_platforms: Vec<DevicePlatform>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_platforms: Vec<DevicePlatform>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessLocations`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationsCondition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub include_locations: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_locations: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessDevices`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevicesCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_filter: Option<ConditionalAccessFilter>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessFilter`: a mode and a rule in the device-filter language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessFilter {
    pub mode: FilterMode,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rule: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `conditionalAccessGrantControls`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantControls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<GrantOperator>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub built_in_controls: Vec<BuiltInControl>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_authentication_factors: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub terms_of_use: Vec<String>,
    /// A reference (`{"id": …}`) or, in exports, the whole strength object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_strength: Option<AuthenticationStrength>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl GrantControls {
    /// Whether the policy configures any grant control at all.
    pub fn is_empty(&self) -> bool {
        self.built_in_controls.is_empty()
            && self.custom_authentication_factors.is_empty()
            && self.terms_of_use.is_empty()
            && self.authentication_strength.is_none()
    }

    pub fn has(&self, control: &BuiltInControl) -> bool {
        self.built_in_controls.contains(control)
    }
}

/// `conditionalAccessSessionControls`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionControls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_frequency: Option<SignInFrequency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<PersistentBrowser>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `signInFrequencySessionControl`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInFrequency {
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_enabled: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub frequency_type: Option<SignInFrequencyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_interval: Option<SignInFrequencyInterval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<SignInFrequencyAuthenticationType>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl SignInFrequency {
    /// The window in hours; `Some(0)` for every time, `None` when not a usable setting.
    pub fn window_hours(&self) -> Option<u64> {
        if !self.is_enabled {
            return None;
        }
        if self.frequency_interval == Some(SignInFrequencyInterval::EveryTime) {
            return Some(0);
        }
        let value = u64::try_from(self.value?).ok()?;
        match self.frequency_type.as_ref()? {
            SignInFrequencyType::Hours => Some(value),
            SignInFrequencyType::Days => value.checked_mul(24),
            SignInFrequencyType::Other(_) => None,
        }
    }
}

/// `persistentBrowserSessionControl`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentBrowser {
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PersistentBrowserMode>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What an unmodelled member does to evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsupportedEffect {
    /// A condition the engine cannot evaluate: the policy fails closed when it would apply.
    FailsClosed,
    /// A grant control the engine cannot satisfy: the policy can never be satisfied.
    NeverSatisfied,
    /// A session control the engine does not enforce.
    NotEnforced,
    /// Descriptive data with no effect on access (e.g. `templateId`).
    Informational,
}

/// A member of a policy this engine keeps but does not implement.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedField {
    /// JSON path such as `conditions.times` or `grantControls.riskRemediationX`.
    pub path: String,
    pub effect: UnsupportedEffect,
}

/// Whether an unmodelled value carries a setting. `null`, `[]`, `{}`, `""` and objects made only
/// of such values are what Graph writes for "not configured", so they are not settings.
pub(crate) fn is_meaningful(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| !is_annotation(key) && is_meaningful(value)),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// `@odata.type`, `authenticationStrength@odata.context` and the like describe the payload,
/// they are not settings.
pub(crate) fn is_annotation(key: &str) -> bool {
    key.starts_with('@') || key.contains("@odata.")
}

fn collect_extra(
    extra: &Extra,
    prefix: &str,
    effect: UnsupportedEffect,
    out: &mut Vec<UnsupportedField>,
) {
    for (key, value) in extra {
        if !is_annotation(key) && is_meaningful(value) {
            out.push(UnsupportedField {
                path: format!("{prefix}{key}"),
                effect,
            });
        }
    }
}

/// The `clientApplications` condition: workload identities. A user sign-in is never one.
pub(crate) const CLIENT_APPLICATIONS: &str = "clientApplications";

impl ConditionalAccessPolicy {
    /// Members of this policy the engine keeps but does not implement, with their effect.
    pub fn unsupported_fields(&self) -> Vec<UnsupportedField> {
        use UnsupportedEffect::*;
        let mut out = Vec::new();
        collect_extra(&self.extra, "", Informational, &mut out);
        let c = &self.conditions;
        for (key, value) in &c.extra {
            // Workload-identity targeting is understood: such a policy never applies to a user.
            if key == CLIENT_APPLICATIONS || is_annotation(key) || !is_meaningful(value) {
                continue;
            }
            out.push(UnsupportedField {
                path: format!("conditions.{key}"),
                effect: FailsClosed,
            });
        }
        if let Some(users) = &c.users {
            collect_extra(&users.extra, "conditions.users.", FailsClosed, &mut out);
        }
        if let Some(apps) = &c.applications {
            collect_extra(
                &apps.extra,
                "conditions.applications.",
                FailsClosed,
                &mut out,
            );
        }
        if let Some(platforms) = &c.platforms {
            collect_extra(
                &platforms.extra,
                "conditions.platforms.",
                FailsClosed,
                &mut out,
            );
        }
        if let Some(locations) = &c.locations {
            collect_extra(
                &locations.extra,
                "conditions.locations.",
                FailsClosed,
                &mut out,
            );
        }
        if let Some(devices) = &c.devices {
            collect_extra(&devices.extra, "conditions.devices.", FailsClosed, &mut out);
            if let Some(filter) = &devices.device_filter {
                collect_extra(
                    &filter.extra,
                    "conditions.devices.deviceFilter.",
                    FailsClosed,
                    &mut out,
                );
            }
        }
        if let Some(grant) = &self.grant_controls {
            collect_extra(&grant.extra, "grantControls.", NeverSatisfied, &mut out);
        }
        if let Some(session) = &self.session_controls {
            collect_extra(&session.extra, "sessionControls.", NotEnforced, &mut out);
            if let Some(sif) = &session.sign_in_frequency {
                collect_extra(
                    &sif.extra,
                    "sessionControls.signInFrequency.",
                    NotEnforced,
                    &mut out,
                );
            }
            if let Some(pb) = &session.persistent_browser {
                collect_extra(
                    &pb.extra,
                    "sessionControls.persistentBrowser.",
                    NotEnforced,
                    &mut out,
                );
            }
        }
        out
    }

    /// Whether the grant controls include `block`.
    pub fn blocks(&self) -> bool {
        self.grant_controls
            .as_ref()
            .is_some_and(|g| g.has(&BuiltInControl::Block))
    }
}
