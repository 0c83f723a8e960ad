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
//! Named locations and authentication strengths are held to the same rule
//! ([`location_unknown_values`], [`strength_unknown_values`]): countries that are ISO 3166-1
//! alpha-2 codes, a country lookup method and range types Graph knows, and strengths built
//! only from Entra's combinations, each named once.
//!
//! What it must never do: change the policy, or refuse what Entra accepts (`unknownFutureValue`
//! is a member of every evolvable enumeration).

use crate::enums::{AuthenticationMethodMode, CountryLookupMethod};
use crate::enums::{
    BuiltInControl, ClientAppType, DevicePlatform, FilterMode, GrantOperator,
    PersistentBrowserMode, PolicyState, RiskLevel, SignInFrequencyAuthenticationType,
    SignInFrequencyInterval, SignInFrequencyType, USER_ACTION_REGISTER_DEVICE,
    USER_ACTION_REGISTER_SECURITY_INFO,
};
use crate::location::{
    COUNTRY_CODES, IPV4_CIDR_RANGE, IPV6_CIDR_RANGE, NamedLocation, is_country_code,
};
use crate::model::ConditionalAccessPolicy;
use crate::strength::{
    AuthenticationStrength, ENTRA_COMBINATIONS, FIDO2_COMBINATION_CONFIGURATION,
    X509_COMBINATION_CONFIGURATION,
};

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

/// Every value in a named location that its field does not accept, in document order. (Its
/// ranges' CIDR text and Entra's limits are [`NamedLocation::validate`]'s.)
pub fn location_unknown_values(location: &NamedLocation) -> Vec<UnknownValue> {
    let mut out = Vec::new();
    match location {
        NamedLocation::Country(l) => {
            for (i, code) in l.countries_and_regions.iter().enumerate() {
                if !is_country_code(code.trim()) {
                    out.push(UnknownValue {
                        field: format!("countriesAndRegions[{i}]"),
                        value: code.clone(),
                        allowed: vec![format!(
                            "an ISO 3166-1 alpha-2 code ({} … {})",
                            COUNTRY_CODES[0],
                            COUNTRY_CODES[COUNTRY_CODES.len() - 1]
                        )],
                    });
                }
            }
            if let Some(method) = l.country_lookup_method.as_ref().filter(|m| !m.is_known()) {
                out.push(UnknownValue {
                    field: "countryLookupMethod".into(),
                    value: method.to_string(),
                    allowed: names(CountryLookupMethod::KNOWN),
                });
            }
            // Only IP ranges can be trusted; on a country location the member would read as
            // a promise nothing keeps.
            if let Some(trusted) = l
                .extra
                .get("isTrusted")
                .filter(|v| !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false)))
            {
                out.push(UnknownValue {
                    field: "isTrusted".into(),
                    value: trusted.to_string(),
                    allowed: vec!["false (only an ipNamedLocation can be trusted)".into()],
                });
            }
        }
        NamedLocation::Ip(l) => {
            for (i, range) in l.ip_ranges.iter().enumerate() {
                let Some(odata) = &range.odata_type else {
                    continue;
                };
                // The type must be Graph's and agree with the address family.
                let expected = if range.cidr_address.contains(':') {
                    IPV6_CIDR_RANGE
                } else {
                    IPV4_CIDR_RANGE
                };
                if !odata.eq_ignore_ascii_case(expected) {
                    out.push(UnknownValue {
                        field: format!("ipRanges[{i}].@odata.type"),
                        value: odata.clone(),
                        allowed: vec![expected.into()],
                    });
                }
            }
        }
        NamedLocation::Other(_) => {}
    }
    out
}

/// Whether `text` is a GUID in its usual 8-4-4-4-12 hexadecimal form.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.trim().split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every value in a custom authentication strength that its field does not accept, in
/// document order: modes that are not `authenticationMethodModes`, combinations Entra does not
/// offer ([`ENTRA_COMBINATIONS`]), a combination named twice, and combination configurations
/// of a type, target or AAGUID Graph would refuse. (An empty list is refused by the caller,
/// which knows whether the strength is a reference or a definition.)
pub fn strength_unknown_values(strength: &AuthenticationStrength) -> Vec<UnknownValue> {
    let mut out = Vec::new();
    let combinations = strength.allowed_combinations.as_deref().unwrap_or(&[]);
    for (i, combination) in combinations.iter().enumerate() {
        let field = format!("allowedCombinations[{i}]");
        if let Some(mode) = combination.modes().iter().find(|m| !m.is_known()) {
            out.push(UnknownValue {
                field,
                value: mode.to_string(),
                allowed: names(AuthenticationMethodMode::KNOWN),
            });
        } else if !combination.is_entra_combination() {
            out.push(UnknownValue {
                field,
                value: combination.to_string(),
                allowed: ENTRA_COMBINATIONS.iter().map(|c| c.to_string()).collect(),
            });
        } else if let Some(first) = combinations[..i]
            .iter()
            .position(|earlier| earlier.same_modes(combination))
        {
            out.push(UnknownValue {
                field,
                value: combination.to_string(),
                allowed: vec![format!(
                    "a combination not already named (it repeats allowedCombinations[{first}])"
                )],
            });
        }
    }
    for (i, config) in strength
        .combination_configurations
        .iter()
        .flatten()
        .enumerate()
    {
        let at = format!("combinationConfigurations[{i}]");
        let kind = config
            .odata_type
            .as_deref()
            .unwrap_or(if config.allowed_aaguids.is_some() {
                FIDO2_COMBINATION_CONFIGURATION
            } else {
                ""
            });
        let targets: &[&str] = if kind.eq_ignore_ascii_case(FIDO2_COMBINATION_CONFIGURATION) {
            &["fido2"]
        } else if kind.eq_ignore_ascii_case(X509_COMBINATION_CONFIGURATION) {
            &["x509CertificateMultiFactor", "x509CertificateSingleFactor"]
        } else {
            out.push(UnknownValue {
                field: format!("{at}.@odata.type"),
                value: kind.to_string(),
                allowed: vec![
                    FIDO2_COMBINATION_CONFIGURATION.into(),
                    X509_COMBINATION_CONFIGURATION.into(),
                ],
            });
            continue;
        };
        for (j, applies) in config.applies_to_combinations.iter().enumerate() {
            let known = targets.iter().any(|t| {
                let t = crate::strength::MethodCombination::parse(t);
                t.same_modes(applies) && applies.same_modes(&t)
            });
            if !known {
                out.push(UnknownValue {
                    field: format!("{at}.appliesToCombinations[{j}]"),
                    value: applies.to_string(),
                    allowed: targets.iter().map(|t| t.to_string()).collect(),
                });
            }
        }
        for (j, aaguid) in config.allowed_aaguids.iter().flatten().enumerate() {
            if !is_guid(aaguid) {
                out.push(UnknownValue {
                    field: format!("{at}.allowedAAGUIDs[{j}]"),
                    value: aaguid.clone(),
                    allowed: vec![
                        "an AAGUID, a GUID such as 90a3ccdf-635c-4729-a248-9b709135078f".into(),
                    ],
                });
            }
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

    fn location(json: serde_json::Value) -> NamedLocation {
        serde_json::from_value(json).expect("a location")
    }

    fn strength(json: serde_json::Value) -> AuthenticationStrength {
        serde_json::from_value(json).expect("a strength")
    }

    fn fields(found: Vec<UnknownValue>) -> Vec<(String, String)> {
        found.into_iter().map(|u| (u.field, u.value)).collect()
    }

    #[test]
    fn country_codes_are_the_249_assigned_in_order() {
        assert_eq!(COUNTRY_CODES.len(), 249);
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]), "sorted");
        for code in ["SE", "se", "Kp", "US", "AX"] {
            assert!(is_country_code(code), "{code}");
        }
        for code in ["UK", "EU", "XK", "SWE", "S", "", "ZZ", "1A"] {
            assert!(!is_country_code(code), "{code}");
        }
    }

    #[test]
    fn a_country_location_names_only_codes_and_methods_graph_knows() {
        let bad = location(serde_json::json!({
            "@odata.type": "#microsoft.graph.countryNamedLocation",
            "displayName": "Odd",
            "countriesAndRegions": ["SE", "UK", "narnia"],
            "countryLookupMethod": "carrierPigeon",
            "isTrusted": true
        }));
        assert_eq!(
            fields(location_unknown_values(&bad)),
            [
                ("countriesAndRegions[1]".to_string(), "UK".to_string()),
                ("countriesAndRegions[2]".into(), "narnia".into()),
                ("countryLookupMethod".into(), "carrierPigeon".into()),
                ("isTrusted".into(), "true".into()),
            ]
        );
        let method = location_unknown_values(&bad)
            .into_iter()
            .find(|u| u.field == "countryLookupMethod")
            .expect("the method");
        assert_eq!(
            method.allowed,
            [
                "clientIpAddress",
                "authenticatorAppGps",
                "unknownFutureValue"
            ]
        );
        let fine = location(serde_json::json!({
            "@odata.type": "#microsoft.graph.countryNamedLocation",
            "displayName": "Nordics",
            "countriesAndRegions": ["se", "NO", "FI"],
            "countryLookupMethod": "clientIpAddress",
            "someFutureField": {"kept": true}
        }));
        assert_eq!(location_unknown_values(&fine), []);
    }

    #[test]
    fn an_ip_range_type_must_be_graphs_and_match_its_family() {
        let bad = location(serde_json::json!({
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "displayName": "Office",
            "ipRanges": [
                {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"},
                {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "2001:db8::/48"},
                {"@odata.type": "#microsoft.graph.ipRangeOfSorts", "cidrAddress": "198.51.100.0/24"},
                {"cidrAddress": "192.0.2.0/24"}
            ]
        }));
        assert_eq!(
            fields(location_unknown_values(&bad)),
            [
                (
                    "ipRanges[1].@odata.type".to_string(),
                    "#microsoft.graph.iPv4CidrRange".to_string()
                ),
                (
                    "ipRanges[2].@odata.type".into(),
                    "#microsoft.graph.ipRangeOfSorts".into()
                ),
            ]
        );
    }

    #[test]
    fn a_strength_is_built_from_entras_combinations_each_named_once() {
        let bad = strength(serde_json::json!({
            "displayName": "Odd",
            "allowedCombinations": [
                "fido2", "telepathy", "password,fido2", "sms,password",
                "password,sms", "fido2", "password,password"
            ],
            "combinationConfigurations": [
                {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                 "appliesToCombinations": ["password,sms"], "allowedAAGUIDs": ["not-a-guid"]},
                {"@odata.type": "#microsoft.graph.smsCombinationConfiguration",
                 "appliesToCombinations": ["sms"]}
            ]
        }));
        assert_eq!(
            fields(strength_unknown_values(&bad)),
            [
                (
                    "allowedCombinations[1]".to_string(),
                    "telepathy".to_string()
                ),
                ("allowedCombinations[2]".into(), "password,fido2".into()),
                ("allowedCombinations[4]".into(), "password,sms".into()),
                ("allowedCombinations[5]".into(), "fido2".into()),
                ("allowedCombinations[6]".into(), "password,password".into()),
                (
                    "combinationConfigurations[0].appliesToCombinations[0]".into(),
                    "password,sms".into()
                ),
                (
                    "combinationConfigurations[0].allowedAAGUIDs[0]".into(),
                    "not-a-guid".into()
                ),
                (
                    "combinationConfigurations[1].@odata.type".into(),
                    "#microsoft.graph.smsCombinationConfiguration".into()
                ),
            ]
        );
        let unknown_mode = strength_unknown_values(&bad).remove(0);
        assert!(
            unknown_mode
                .allowed
                .contains(&"windowsHelloForBusiness".to_string())
        );
        let fine = strength(serde_json::json!({
            "displayName": "Keys",
            "allowedCombinations": ["FIDO2", "sms,password", "email"],
            "combinationConfigurations": [
                {"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                 "appliesToCombinations": ["fido2"],
                 "allowedAAGUIDs": ["90a3ccdf-635c-4729-a248-9b709135078f"]}
            ]
        }));
        assert_eq!(strength_unknown_values(&fine), []);
        // Every built-in strength is built from the same list.
        for built_in in crate::strength::built_in_strengths() {
            assert_eq!(strength_unknown_values(built_in), [], "{}", built_in.id);
        }
    }
}
