//! The values a policy gives its known fields, checked against Entra's enumerations.
//!
//! Reading keeps an unknown member verbatim (`Other`, see [`crate::enums`]) so that What-If and
//! `lint` can read any export. Storing is stricter: a policy written to a tenant may keep fields
//! this engine does not implement, but not values Entra itself would refuse for fields it does
//! know — `XOR` as a grant operator, a platform or risk level that does not exist, a user action
//! that is not one, a sign-in frequency that is not a positive number. [`unknown_values`] lists
//! each one with its Graph path and the values allowed there, so a write can be refused naming
//! the field.
//!
//! What it must never do: change the policy, or refuse what Entra accepts (`unknownFutureValue`
//! is a member of every evolvable enumeration).

use crate::enums::{
    BuiltInControl, ClientAppType, DevicePlatform, FilterMode, GrantOperator,
    PersistentBrowserMode, PolicyState, RiskLevel, SignInFrequencyAuthenticationType,
    SignInFrequencyInterval, SignInFrequencyType, USER_ACTION_REGISTER_DEVICE,
    USER_ACTION_REGISTER_SECURITY_INFO,
};
use crate::model::ConditionalAccessPolicy;

/// A value a known field may not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The Graph path, e.g. `grantControls.operator` or `conditions.platforms.includePlatforms[1]`.
    pub field: String,
    pub value: String,
    /// What the field accepts, in Graph's spelling.
    pub allowed: Vec<String>,
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'{}' is not a value of {}; it takes {}",
            self.value,
            self.field,
            self.allowed.join(", ")
        )
    }
}

fn names<T: std::fmt::Display>(known: &[T]) -> Vec<String> {
    known.iter().map(ToString::to_string).collect()
}

/// Every value in `policy` that its field does not accept, in document order.
pub fn unknown_values(policy: &ConditionalAccessPolicy) -> Vec<UnknownValue> {
    let mut out = Vec::new();
    let mut check =
        |known: bool, field: String, value: &dyn std::fmt::Display, allowed: Vec<String>| {
            if !known {
                out.push(UnknownValue {
                    field,
                    value: value.to_string(),
                    allowed,
                });
            }
        };
    check(
        policy.state.is_known(),
        "state".into(),
        &policy.state,
        names(PolicyState::KNOWN),
    );
    let c = &policy.conditions;
    for (i, t) in c.client_app_types.iter().enumerate() {
        check(
            t.is_known(),
            format!("conditions.clientAppTypes[{i}]"),
            t,
            names(ClientAppType::KNOWN),
        );
    }
    if let Some(p) = &c.platforms {
        for (list, values) in [
            ("includePlatforms", &p.include_platforms),
            ("excludePlatforms", &p.exclude_platforms),
        ] {
            for (i, v) in values.iter().enumerate() {
                check(
                    v.is_known(),
                    format!("conditions.platforms.{list}[{i}]"),
                    v,
                    names(DevicePlatform::KNOWN),
                );
            }
        }
    }
    for (list, values) in [
        ("signInRiskLevels", &c.sign_in_risk_levels),
        ("userRiskLevels", &c.user_risk_levels),
    ] {
        for (i, v) in values.iter().enumerate() {
            check(
                v.is_known(),
                format!("conditions.{list}[{i}]"),
                v,
                names(RiskLevel::KNOWN),
            );
        }
    }
    if let Some(a) = &c.applications {
        for (i, v) in a.include_user_actions.iter().enumerate() {
            let known = v.eq_ignore_ascii_case(USER_ACTION_REGISTER_SECURITY_INFO)
                || v.eq_ignore_ascii_case(USER_ACTION_REGISTER_DEVICE);
            check(
                known,
                format!("conditions.applications.includeUserActions[{i}]"),
                v,
                vec![
                    USER_ACTION_REGISTER_SECURITY_INFO.into(),
                    USER_ACTION_REGISTER_DEVICE.into(),
                ],
            );
        }
    }
    if let Some(filter) = c.devices.as_ref().and_then(|d| d.device_filter.as_ref()) {
        check(
            filter.mode.is_known(),
            "conditions.devices.deviceFilter.mode".into(),
            &filter.mode,
            names(FilterMode::KNOWN),
        );
    }
    if let Some(g) = &policy.grant_controls {
        if let Some(op) = &g.operator {
            check(
                op.is_known(),
                "grantControls.operator".into(),
                op,
                names(GrantOperator::KNOWN),
            );
        }
        for (i, v) in g.built_in_controls.iter().enumerate() {
            check(
                v.is_known(),
                format!("grantControls.builtInControls[{i}]"),
                v,
                names(BuiltInControl::KNOWN),
            );
        }
    }
    if let Some(s) = &policy.session_controls {
        if let Some(f) = &s.sign_in_frequency {
            if let Some(t) = &f.frequency_type {
                check(
                    t.is_known(),
                    "sessionControls.signInFrequency.type".into(),
                    t,
                    names(SignInFrequencyType::KNOWN),
                );
            }
            if let Some(t) = &f.frequency_interval {
                check(
                    t.is_known(),
                    "sessionControls.signInFrequency.frequencyInterval".into(),
                    t,
                    names(SignInFrequencyInterval::KNOWN),
                );
            }
            if let Some(t) = &f.authentication_type {
                check(
                    t.is_known(),
                    "sessionControls.signInFrequency.authenticationType".into(),
                    t,
                    names(SignInFrequencyAuthenticationType::KNOWN),
                );
            }
            if let Some(value) = f.value {
                check(
                    value > 0,
                    "sessionControls.signInFrequency.value".into(),
                    &value,
                    vec!["a whole number of hours or days, at least 1".into()],
                );
            }
        }
        if let Some(mode) = s.persistent_browser.as_ref().and_then(|p| p.mode.as_ref()) {
            check(
                mode.is_known(),
                "sessionControls.persistentBrowser.mode".into(),
                mode,
                names(PersistentBrowserMode::KNOWN),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> ConditionalAccessPolicy {
        serde_json::from_value(json).expect("a policy")
    }

    #[test]
    fn values_entra_refuses_are_named_with_what_is_allowed() {
        let p = policy(serde_json::json!({
            "displayName": "Odd",
            "state": "enabled",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeUserActions": ["urn:user:registersecurityinfo", "urn:user:dance"]},
                "clientAppTypes": ["browser", "fax"],
                "platforms": {"includePlatforms": ["android", "visionOS"]},
                "signInRiskLevels": ["extreme"]
            },
            "grantControls": {"operator": "XOR", "builtInControls": ["block"]},
            "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": -4}}
        }));
        let found: Vec<(String, String)> = unknown_values(&p)
            .into_iter()
            .map(|u| (u.field, u.value))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "conditions.clientAppTypes[1]".to_string(),
                    "fax".to_string()
                ),
                (
                    "conditions.platforms.includePlatforms[1]".into(),
                    "visionOS".into()
                ),
                ("conditions.signInRiskLevels[0]".into(), "extreme".into()),
                (
                    "conditions.applications.includeUserActions[1]".into(),
                    "urn:user:dance".into()
                ),
                ("grantControls.operator".into(), "XOR".into()),
                ("sessionControls.signInFrequency.value".into(), "-4".into()),
            ]
        );
        let operator = unknown_values(&p)
            .into_iter()
            .find(|u| u.field == "grantControls.operator")
            .expect("the operator");
        assert_eq!(operator.allowed, ["AND", "OR"]);
    }

    #[test]
    fn a_policy_in_entras_values_passes_whatever_its_casing() {
        let p = policy(serde_json::json!({
            "displayName": "Fine",
            "state": "enabledForReportingButNotEnforced",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeApplications": ["All"]},
                "clientAppTypes": ["ALL"],
                "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["iOS", "unknownFutureValue"]},
                "userRiskLevels": ["high"]
            },
            "grantControls": {"operator": "or", "builtInControls": ["mfa", "compliantDevice"]},
            "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "days", "value": 7}}
        }));
        assert_eq!(unknown_values(&p), []);
    }
}
