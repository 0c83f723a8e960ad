//! The passkey (FIDO2) method policy: Graph's `fido2AuthenticationMethodConfiguration`.
//!
//! It decides who may register and use passkeys (state, include and exclude groups, self-service
//! registration) and which models (key restrictions by AAGUID, attestation enforcement). It is
//! kept as a [`PolicyDocument`](crate::directory::model::PolicyDocument) of kind
//! `AuthenticationMethodConfiguration` with id `fido2`, in Graph's JSON.
//!
//! Defaults when no document exists — a decision, written down here: Portcullis's story starts
//! with a new administrator registering a passkey, so the method is **enabled for all users with
//! self-service registration allowed**, attestation **not** enforced (phones' synced passkeys
//! carry no attestation, and the cross-device flow is the story's main path) and key
//! restrictions **not** enforced (`block` with an empty list, Entra's own unenforced default).
//!
//! What it must never do: read an unknown or unsupported property as permission. Properties this
//! project does not implement (passkey profiles) are refused, not ignored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::kernel::error::ErrorCode;
use crate::{Error, Result};

/// The document id (and path segment) of this configuration.
pub const FIDO2_CONFIGURATION_ID: &str = "fido2";
/// Graph's target id meaning "every user".
pub const ALL_USERS: &str = "all_users";
/// Entra's limit for the whole authentication methods policy.
const MAX_DOCUMENT_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MethodState {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnforcementType {
    /// Only the listed AAGUIDs may be used.
    Allow,
    /// Every AAGUID but the listed ones may be used.
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRestrictions {
    pub is_enforced: bool,
    pub enforcement_type: EnforcementType,
    /// Lowercase hyphenated GUIDs.
    pub aa_guids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncludeTarget {
    pub target_type: String,
    /// `all_users` or a group id.
    pub id: String,
    #[serde(default)]
    pub is_registration_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExcludeTarget {
    pub target_type: String,
    pub id: String,
}

/// The policy as core uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fido2Policy {
    pub state: MethodState,
    pub include_targets: Vec<IncludeTarget>,
    pub exclude_targets: Vec<ExcludeTarget>,
    pub is_self_service_registration_allowed: bool,
    pub is_attestation_enforced: bool,
    pub key_restrictions: KeyRestrictions,
}

impl Default for Fido2Policy {
    fn default() -> Self {
        Fido2Policy {
            state: MethodState::Enabled,
            include_targets: vec![IncludeTarget {
                target_type: "group".into(),
                id: ALL_USERS.into(),
                is_registration_required: false,
            }],
            exclude_targets: Vec::new(),
            is_self_service_registration_allowed: true,
            is_attestation_enforced: false,
            key_restrictions: KeyRestrictions {
                is_enforced: false,
                enforcement_type: EnforcementType::Block,
                aa_guids: Vec::new(),
            },
        }
    }
}

/// Why the policy refuses a person or a model, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    MethodDisabled,
    NotTargeted,
    Excluded,
    SelfServiceNotAllowed,
    ModelNotAllowed { aaguid: String },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::MethodDisabled => {
                "Passkeys are turned off in this organization's authentication methods policy."
                    .into()
            }
            Refusal::NotTargeted => {
                "The authentication methods policy does not enable passkeys for this account."
                    .into()
            }
            Refusal::Excluded => {
                "This account is in a group that the passkey method policy excludes.".into()
            }
            Refusal::SelfServiceNotAllowed => {
                "The passkey method policy does not allow people to set up passkeys themselves."
                    .into()
            }
            Refusal::ModelNotAllowed { aaguid } => format!(
                "The passkey method policy does not allow this passkey's model (AAGUID {aaguid})."
            ),
        }
    }

    /// The stable error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::MethodDisabled => ErrorCode::PasskeyMethodDisabled,
            Refusal::NotTargeted => ErrorCode::PasskeyMethodNotEnabledForUser,
            Refusal::Excluded => ErrorCode::PasskeyMethodExcludedForUser,
            Refusal::SelfServiceNotAllowed => ErrorCode::PasskeySelfServiceNotAllowed,
            Refusal::ModelNotAllowed { .. } => ErrorCode::PasskeyModelNotAllowed,
        }
    }

    pub fn into_error(self) -> Error {
        Error::Invalid {
            code: self.code(),
            target: None,
            message: self.message(),
        }
    }
}

impl Fido2Policy {
    /// Whether the method is usable by someone in `groups` (transitive group ids): enabled,
    /// included, not excluded. Exclusion wins over inclusion.
    pub fn admits(&self, groups: &[Uuid]) -> std::result::Result<(), Refusal> {
        if self.state == MethodState::Disabled {
            return Err(Refusal::MethodDisabled);
        }
        let member = |id: &str| {
            id.eq_ignore_ascii_case(ALL_USERS)
                || Uuid::parse_str(id).is_ok_and(|g| groups.contains(&g))
        };
        if self.exclude_targets.iter().any(|t| member(&t.id)) {
            return Err(Refusal::Excluded);
        }
        if !self.include_targets.iter().any(|t| member(&t.id)) {
            return Err(Refusal::NotTargeted);
        }
        Ok(())
    }

    /// Whether [`Fido2Policy::admits`] depends on the person's groups: only when a target
    /// names a group rather than all users. Lets a sign-in skip reading the groups.
    pub fn targets_groups(&self) -> bool {
        let names_group = |id: &str| !id.eq_ignore_ascii_case(ALL_USERS);
        self.include_targets.iter().any(|t| names_group(&t.id))
            || self.exclude_targets.iter().any(|t| names_group(&t.id))
    }

    /// Whether a model may register or sign in, by its AAGUID (lowercase hyphenated).
    pub fn allows_model(&self, aaguid: &str) -> std::result::Result<(), Refusal> {
        let restrictions = &self.key_restrictions;
        if !restrictions.is_enforced {
            return Ok(());
        }
        let listed = restrictions
            .aa_guids
            .iter()
            .any(|a| a.eq_ignore_ascii_case(aaguid));
        let allowed = match restrictions.enforcement_type {
            EnforcementType::Allow => listed,
            EnforcementType::Block => !listed,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::ModelNotAllowed {
                aaguid: aaguid.to_string(),
            })
        }
    }

    /// Graph's JSON for this policy.
    pub fn to_graph(&self) -> Value {
        serde_json::json!({
            "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
            "id": "Fido2",
            "state": self.state,
            "isSelfServiceRegistrationAllowed": self.is_self_service_registration_allowed,
            "isAttestationEnforced": self.is_attestation_enforced,
            "keyRestrictions": self.key_restrictions,
            "includeTargets": self.include_targets,
            "excludeTargets": self.exclude_targets,
        })
    }

    /// Reads a stored document. Stored documents were validated on the way in; one that no
    /// longer reads is a defect, reported as such rather than replaced by defaults.
    pub fn from_stored(body: &Value) -> Result<Self> {
        Self::default()
            .patched(body)
            .map_err(|e| Error::Internal(format!("stored fido2 configuration unreadable: {e}")))
    }

    /// This policy with a Graph PATCH body applied: properties given replace the current ones
    /// (lists whole, `keyRestrictions` merged field by field), others stay.
    pub fn patched(&self, body: &Value) -> Result<Self> {
        let Value::Object(fields) = body else {
            return Err(Error::invalid(
                "body",
                "The request body must be a JSON object.",
            ));
        };
        let mut next = self.clone();
        for (name, value) in fields {
            match name.as_str() {
                n if n.starts_with("@odata.") => {}
                "id" => {
                    if !value
                        .as_str()
                        .is_some_and(|v| v.eq_ignore_ascii_case(FIDO2_CONFIGURATION_ID))
                    {
                        return Err(Error::invalid("id", "id must be 'Fido2'."));
                    }
                }
                "state" => next.state = field(name, value)?,
                "isSelfServiceRegistrationAllowed" => {
                    next.is_self_service_registration_allowed = field(name, value)?
                }
                "isAttestationEnforced" => next.is_attestation_enforced = field(name, value)?,
                "keyRestrictions" => next.key_restrictions = key_restrictions(&next, value)?,
                "includeTargets" => {
                    let targets: Vec<IncludeTarget> = field(name, value)?;
                    for (i, t) in targets.iter().enumerate() {
                        check_target(&format!("includeTargets[{i}]"), &t.target_type, &t.id, true)?;
                    }
                    next.include_targets = targets;
                }
                "excludeTargets" => {
                    let targets: Vec<ExcludeTarget> = field(name, value)?;
                    for (i, t) in targets.iter().enumerate() {
                        check_target(
                            &format!("excludeTargets[{i}]"),
                            &t.target_type,
                            &t.id,
                            false,
                        )?;
                    }
                    next.exclude_targets = targets;
                }
                other => {
                    return Err(Error::invalid(
                        other.to_string(),
                        format!(
                            "The property '{other}' is not supported by this server's fido2AuthenticationMethodConfiguration; remove it (it is refused rather than ignored, so that no restriction is silently dropped)."
                        ),
                    ));
                }
            }
        }
        let size = next.to_graph().to_string().len();
        if size > MAX_DOCUMENT_BYTES {
            return Err(Error::invalid(
                "body",
                format!(
                    "The configuration would be {size} bytes; the limit is {MAX_DOCUMENT_BYTES}."
                ),
            ));
        }
        Ok(next)
    }

    /// Group ids named by the targets (not `all_users`), for the caller to check they exist.
    pub fn named_groups(&self) -> Vec<Uuid> {
        self.include_targets
            .iter()
            .map(|t| t.id.as_str())
            .chain(self.exclude_targets.iter().map(|t| t.id.as_str()))
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect()
    }
}

fn field<T: serde::de::DeserializeOwned>(name: &str, value: &Value) -> Result<T> {
    serde_json::from_value(value.clone())
        .map_err(|e| Error::invalid(name.to_string(), format!("Invalid value for '{name}': {e}")))
}

fn check_target(at: &str, target_type: &str, id: &str, include: bool) -> Result<()> {
    if target_type != "group" {
        return Err(Error::invalid(
            format!("{at}.targetType"),
            "Only targetType 'group' is supported.",
        ));
    }
    let all = id.eq_ignore_ascii_case(ALL_USERS);
    if all && !include {
        return Err(Error::invalid(
            format!("{at}.id"),
            "'all_users' cannot be excluded; set state to 'disabled' instead.",
        ));
    }
    if !all && Uuid::parse_str(id).is_err() {
        return Err(Error::invalid(
            format!("{at}.id"),
            format!("'{id}' is neither 'all_users' nor a group id."),
        ));
    }
    Ok(())
}

fn key_restrictions(current: &Fido2Policy, value: &Value) -> Result<KeyRestrictions> {
    let Value::Object(given) = value else {
        return Err(Error::invalid(
            "keyRestrictions",
            "keyRestrictions must be an object.",
        ));
    };
    let mut merged = match serde_json::to_value(&current.key_restrictions) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (k, v) in given {
        if k.starts_with("@odata.") {
            continue;
        }
        if !["isEnforced", "enforcementType", "aaGuids"].contains(&k.as_str()) {
            return Err(Error::invalid(
                format!("keyRestrictions.{k}"),
                format!("The property 'keyRestrictions.{k}' does not exist."),
            ));
        }
        merged.insert(k.clone(), v.clone());
    }
    let mut restrictions: KeyRestrictions =
        serde_json::from_value(Value::Object(merged)).map_err(|e| {
            Error::invalid(
                "keyRestrictions",
                format!("Invalid value for 'keyRestrictions': {e}"),
            )
        })?;
    let mut normalized = Vec::with_capacity(restrictions.aa_guids.len());
    for (i, a) in restrictions.aa_guids.iter().enumerate() {
        let guid = Uuid::parse_str(a.trim()).map_err(|_| {
            Error::invalid(
                format!("keyRestrictions.aaGuids[{i}]"),
                format!(
                    "'{a}' is not an AAGUID (a GUID such as de1e552d-db1d-4423-a619-566b625cdc84)."
                ),
            )
        })?;
        let text = guid.hyphenated().to_string();
        if !normalized.contains(&text) {
            normalized.push(text);
        }
    }
    restrictions.aa_guids = normalized;
    Ok(restrictions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_beats_inclusion_and_all_users_matches_everyone() {
        let g = Uuid::new_v4();
        let policy = Fido2Policy::default()
            .patched(&serde_json::json!({
                "excludeTargets": [{"targetType": "group", "id": g.to_string()}]
            }))
            .unwrap();
        assert_eq!(policy.admits(&[]), Ok(()));
        assert_eq!(policy.admits(&[g]), Err(Refusal::Excluded));
    }

    #[test]
    fn key_restrictions_allow_and_block() {
        let a = "de1e552d-db1d-4423-a619-566b625cdc84";
        let allow = Fido2Policy::default()
            .patched(&serde_json::json!({"keyRestrictions": {"isEnforced": true, "enforcementType": "allow", "aaGuids": [a.to_uppercase()]}}))
            .unwrap();
        assert!(allow.allows_model(a).is_ok());
        assert!(allow.allows_model(&Uuid::nil().to_string()).is_err());
        let block = allow
            .patched(&serde_json::json!({"keyRestrictions": {"enforcementType": "block"}}))
            .unwrap();
        assert!(block.allows_model(a).is_err());
        assert!(block.allows_model(&Uuid::nil().to_string()).is_ok());
    }

    #[test]
    fn unsupported_properties_are_refused() {
        let err = Fido2Policy::default()
            .patched(&serde_json::json!({"passkeyProfiles": []}))
            .unwrap_err();
        assert_eq!(err.target(), Some("passkeyProfiles"));
        assert!(
            Fido2Policy::default()
                .patched(&serde_json::json!({"keyRestrictions": {"aaGuids": ["nope"]}}))
                .is_err()
        );
    }
}
