//! What a policy document holds that the engine keeps but does not implement, in the words the
//! admin portal shows beside it. The engine decides which members those are and what each does
//! to a decision (`ConditionalAccessPolicy::unsupported_fields`); this only names the effect
//! for a person, so the editor and the import review flag them the same way.

use portcullis_policy::graph;
use portcullis_policy::model::UnsupportedEffect;
use serde::Serialize;
use serde_json::Value;

/// One kept, unimplemented member of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptField {
    /// The member's Graph path, such as `conditions.times` or `grantControls.riskRemediationX`.
    pub path: String,
    /// What it does to a decision: `failsClosed`, `neverSatisfied`, `notEnforced` or
    /// `informational`.
    pub effect: &'static str,
    /// The same in words.
    pub note: &'static str,
}

fn words(effect: UnsupportedEffect) -> (&'static str, &'static str) {
    match effect {
        UnsupportedEffect::FailsClosed => (
            "failsClosed",
            "Fails closed: Portcullis cannot evaluate this condition, so the policy applies (and blocks) wherever its other conditions match.",
        ),
        UnsupportedEffect::NeverSatisfied => (
            "neverSatisfied",
            "Kept, not evaluated by Portcullis: this grant control can never be met here.",
        ),
        UnsupportedEffect::NotEnforced => ("notEnforced", "Kept, not enforced by Portcullis."),
        UnsupportedEffect::Informational => ("informational", "Kept, informational only."),
    }
}

/// The kept, unimplemented members of a policy document; empty when it does not parse as a
/// policy (a stored policy always does).
pub fn kept_fields(document: &Value) -> Vec<KeptField> {
    let Ok(policies) = graph::import_policies(document.to_string().as_bytes()) else {
        return Vec::new();
    };
    policies
        .iter()
        .flat_map(|p| p.unsupported_fields())
        .map(|field| {
            let (effect, note) = words(field.effect);
            KeptField {
                path: field.path,
                effect,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unimplemented_members_are_named_with_their_effect() {
        let policy = json!({
            "displayName": "x", "state": "disabled",
            "conditions": {
                "users": {"includeUsers": ["All"]},
                "applications": {"includeApplications": ["All"]},
                "authenticationFlows": {"transferMethods": "deviceCodeFlow"}
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
            "sessionControls": {"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}}
        });
        let kept = kept_fields(&policy);
        let flows = kept
            .iter()
            .find(|k| k.path == "conditions.authenticationFlows")
            .expect("authentication flows are kept and named");
        assert_eq!(flows.effect, "failsClosed");
        let session = kept
            .iter()
            .find(|k| k.path == "sessionControls.cloudAppSecurity")
            .expect("the session control is named");
        assert_eq!(session.effect, "notEnforced");
        assert!(kept_fields(&json!("not a policy")).is_empty());
    }
}
