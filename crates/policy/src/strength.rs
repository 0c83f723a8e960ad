//! Authentication strengths: which combinations of methods satisfy a policy's
//! "Require authentication strength" control.
//!
//! The three built-ins are fixed by Entra (same ids, names and combinations); custom strengths
//! come from the tenant. A strength is satisfied when every method of at least one allowed
//! combination was performed in the session, and, where a combination configuration applies to
//! that combination (today: `fido2` with an AAGUID allow-list), the method used meets it.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::enums::{AuthenticationMethodMode, StrengthPolicyType, StrengthRequirements};
use crate::model::{Extra, null_as_default};

/// Built-in "Multifactor authentication".
pub const MULTIFACTOR_STRENGTH_ID: &str = "00000000-0000-0000-0000-000000000002";
/// Built-in "Passwordless MFA".
pub const PASSWORDLESS_STRENGTH_ID: &str = "00000000-0000-0000-0000-000000000003";
/// Built-in "Phishing-resistant MFA".
pub const PHISHING_RESISTANT_STRENGTH_ID: &str = "00000000-0000-0000-0000-000000000004";

/// `@odata.type` of a FIDO2 combination configuration.
pub const FIDO2_COMBINATION_CONFIGURATION: &str = "#microsoft.graph.fido2CombinationConfiguration";

/// Every combination Entra lets a strength allow (Graph's
/// `authenticationStrength/combinations`): the Multifactor strength's nineteen, and the
/// single-factor ones a custom strength may also name. A custom strength is built only from
/// these; `password,fido2`, say, is not one, though each of its modes is a mode.
pub const ENTRA_COMBINATIONS: &[&str] = &[
    "windowsHelloForBusiness",
    "fido2",
    "x509CertificateMultiFactor",
    "deviceBasedPush",
    "temporaryAccessPassOneTime",
    "temporaryAccessPassMultiUse",
    "password,microsoftAuthenticatorPush",
    "password,softwareOath",
    "password,hardwareOath",
    "password,x509CertificateSingleFactor",
    "password,x509CertificateMultiFactor",
    "password,sms",
    "password,voice",
    "federatedMultiFactor",
    "microsoftAuthenticatorPush,federatedSingleFactor",
    "softwareOath,federatedSingleFactor",
    "hardwareOath,federatedSingleFactor",
    "sms,federatedSingleFactor",
    "voice,federatedSingleFactor",
    "x509CertificateSingleFactor",
    "sms",
    "password",
    "federatedSingleFactor",
    "email",
    "qrCodePin",
];

/// `@odata.type` of an X.509 certificate combination configuration.
pub const X509_COMBINATION_CONFIGURATION: &str =
    "#microsoft.graph.x509CertificateCombinationConfiguration";

/// One allowed combination: methods that together satisfy a strength. Graph writes it as a
/// comma-joined string such as `"password,sms"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MethodCombination(pub Vec<AuthenticationMethodMode>);

impl MethodCombination {
    pub fn parse(text: &str) -> Self {
        MethodCombination(
            text.split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(AuthenticationMethodMode::parse)
                .collect(),
        )
    }

    pub fn modes(&self) -> &[AuthenticationMethodMode] {
        &self.0
    }

    /// Bit mask of the modes, or `None` if any mode is unknown (then the combination can never
    /// be satisfied: we cannot tell what the unknown method would be).
    pub(crate) fn mask(&self) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .iter()
            .try_fold(0u32, |mask, mode| mode.bit().map(|bit| mask | bit))
    }

    /// Whether this is one of [`ENTRA_COMBINATIONS`], in any order of its modes.
    pub fn is_entra_combination(&self) -> bool {
        // Both ways, so that a mode named twice (`password,password`) matches nothing.
        ENTRA_COMBINATIONS.iter().any(|known| {
            let known = MethodCombination::parse(known);
            known.same_modes(self) && self.same_modes(&known)
        })
    }

    /// Same set of modes, regardless of order.
    pub fn same_modes(&self, other: &MethodCombination) -> bool {
        self.0.len() == other.0.len() && self.0.iter().all(|m| other.0.contains(m))
    }
}

impl fmt::Display for MethodCombination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, mode) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            f.write_str(mode.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for MethodCombination {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MethodCombination {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(MethodCombination::parse(&text))
    }
}

/// `authenticationCombinationConfiguration` and its subtypes (`fido2CombinationConfiguration`
/// restricts AAGUIDs; others, e.g. the X.509 one, are kept but cannot be met by this engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CombinationConfiguration {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub applies_to_combinations: Vec<MethodCombination>,
    #[serde(
        rename = "allowedAAGUIDs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_aaguids: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl CombinationConfiguration {
    /// A FIDO2 AAGUID allow-list restricting the `fido2` combination.
    pub fn fido2(allowed_aaguids: Vec<String>) -> Self {
        CombinationConfiguration {
            odata_type: Some(FIDO2_COMBINATION_CONFIGURATION.to_owned()),
            id: None,
            applies_to_combinations: vec![MethodCombination(vec![AuthenticationMethodMode::Fido2])],
            allowed_aaguids: Some(allowed_aaguids),
            extra: Extra::new(),
        }
    }

    fn is_fido2(&self) -> bool {
        match &self.odata_type {
            Some(t) => t.eq_ignore_ascii_case(FIDO2_COMBINATION_CONFIGURATION),
            // Without a type annotation, an AAGUID list is only meaningful for FIDO2.
            None => self.allowed_aaguids.is_some(),
        }
    }
}

/// `authenticationStrengthPolicy`. Also used for the `authenticationStrength` member of a
/// policy's grant controls, which may be a bare `{"id": …}` reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStrength {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<StrengthPolicyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements_satisfied: Option<StrengthRequirements>,
    /// `None` for a bare reference; resolved against the tenant's strengths at evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_combinations: Option<Vec<MethodCombination>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub combination_configurations: Option<Vec<CombinationConfiguration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date_time: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A method performed in the current session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SatisfiedMethod {
    pub mode: AuthenticationMethodMode,
    /// The authenticator model of a passkey (`fido2`), lower or upper case.
    pub aaguid: Option<String>,
}

impl SatisfiedMethod {
    pub fn new(mode: AuthenticationMethodMode) -> Self {
        SatisfiedMethod { mode, aaguid: None }
    }

    pub fn passkey(aaguid: impl Into<String>) -> Self {
        SatisfiedMethod {
            mode: AuthenticationMethodMode::Fido2,
            aaguid: Some(aaguid.into()),
        }
    }
}

/// The methods of a session reduced to what strength checks need.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionMethods<'a> {
    mask: u32,
    passkey_aaguids: Vec<&'a str>,
}

impl<'a> SessionMethods<'a> {
    pub(crate) fn new(methods: &'a [SatisfiedMethod]) -> Self {
        let mut session = SessionMethods::default();
        for method in methods {
            if let Some(bit) = method.mode.bit() {
                session.mask |= bit;
            }
            if method.mode == AuthenticationMethodMode::Fido2
                && let Some(aaguid) = &method.aaguid
            {
                session.passkey_aaguids.push(aaguid);
            }
        }
        session
    }
}

impl AuthenticationStrength {
    /// A custom strength with the given combinations.
    pub fn custom(
        id: impl Into<String>,
        display_name: impl Into<String>,
        combinations: &[&str],
    ) -> Self {
        AuthenticationStrength {
            id: id.into(),
            display_name: Some(display_name.into()),
            description: None,
            policy_type: Some(StrengthPolicyType::Custom),
            requirements_satisfied: None,
            allowed_combinations: Some(
                combinations
                    .iter()
                    .map(|c| MethodCombination::parse(c))
                    .collect(),
            ),
            combination_configurations: Some(Vec::new()),
            created_date_time: None,
            modified_date_time: None,
            extra: Extra::new(),
        }
    }

    /// A reference to a strength by id, as sent in a PATCH of a policy.
    pub fn reference(id: impl Into<String>) -> Self {
        AuthenticationStrength {
            id: id.into(),
            display_name: None,
            description: None,
            policy_type: None,
            requirements_satisfied: None,
            allowed_combinations: None,
            combination_configurations: None,
            created_date_time: None,
            modified_date_time: None,
            extra: Extra::new(),
        }
    }

    /// Whether this is one of Entra's three built-in strengths (by id).
    pub fn is_built_in_id(id: &str) -> bool {
        built_in_strength(id).is_some()
    }

    /// The name to show: display name, else the id.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    /// Whether the methods of a session satisfy this strength.
    pub fn is_satisfied_by(&self, methods: &[SatisfiedMethod]) -> bool {
        self.satisfied_by_session(&SessionMethods::new(methods))
    }

    pub(crate) fn satisfied_by_session(&self, session: &SessionMethods<'_>) -> bool {
        let Some(combinations) = &self.allowed_combinations else {
            return false;
        };
        combinations.iter().any(|combination| {
            let Some(mask) = combination.mask() else {
                return false;
            };
            mask & !session.mask == 0 && self.configurations_met(combination, session)
        })
    }

    fn configurations_met(
        &self,
        combination: &MethodCombination,
        session: &SessionMethods<'_>,
    ) -> bool {
        let Some(configurations) = &self.combination_configurations else {
            return true;
        };
        configurations
            .iter()
            .filter(|config| {
                config
                    .applies_to_combinations
                    .iter()
                    .any(|applies| applies.same_modes(combination))
            })
            .all(|config| {
                if !config.is_fido2() {
                    // e.g. an X.509 issuer restriction: Portcullis has no certificate sign-in,
                    // so the restricted combination cannot be met.
                    return false;
                }
                let allowed = config.allowed_aaguids.as_deref().unwrap_or(&[]);
                session.passkey_aaguids.iter().any(|used| {
                    allowed
                        .iter()
                        .any(|allowed| allowed.trim().eq_ignore_ascii_case(used.trim()))
                })
            })
    }

    /// Whether every combination of `self` is also allowed by `other` with no extra
    /// restriction, i.e. meeting `self` always meets `other`.
    pub(crate) fn implies(&self, other: &AuthenticationStrength) -> bool {
        let (Some(mine), Some(theirs)) = (&self.allowed_combinations, &other.allowed_combinations)
        else {
            return false;
        };
        let other_restricted = other
            .combination_configurations
            .as_ref()
            .is_some_and(|c| !c.is_empty());
        !mine.is_empty()
            && !other_restricted
            && mine.iter().all(|combination| {
                let Some(mask) = combination.mask() else {
                    return false;
                };
                // Meeting `combination` means at least its methods were used; `other` is met if
                // one of its combinations is a subset of those methods.
                theirs
                    .iter()
                    .any(|t| t.mask().is_some_and(|tm| tm & !mask == 0))
            })
    }
}

fn built_in(
    id: &str,
    name: &str,
    description: &str,
    combinations: &[&str],
) -> AuthenticationStrength {
    AuthenticationStrength {
        id: id.to_owned(),
        display_name: Some(name.to_owned()),
        description: Some(description.to_owned()),
        policy_type: Some(StrengthPolicyType::BuiltIn),
        requirements_satisfied: Some(StrengthRequirements::Mfa),
        allowed_combinations: Some(
            combinations
                .iter()
                .map(|c| MethodCombination::parse(c))
                .collect(),
        ),
        combination_configurations: Some(Vec::new()),
        created_date_time: Some("2021-12-01T00:00:00Z".to_owned()),
        modified_date_time: Some("2021-12-01T00:00:00Z".to_owned()),
        extra: Extra::new(),
    }
}

static BUILT_INS: LazyLock<[AuthenticationStrength; 3]> = LazyLock::new(|| {
    [
        built_in(
            MULTIFACTOR_STRENGTH_ID,
            "Multifactor authentication",
            "Combinations of methods that satisfy strong authentication, such as a password + SMS",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
                "deviceBasedPush",
                "temporaryAccessPassOneTime",
                "temporaryAccessPassMultiUse",
                "password,microsoftAuthenticatorPush",
                "password,softwareOath",
                "password,hardwareOath",
                "password,x509CertificateSingleFactor",
                "password,x509CertificateMultiFactor",
                "password,sms",
                "password,voice",
                "federatedMultiFactor",
                "microsoftAuthenticatorPush,federatedSingleFactor",
                "softwareOath,federatedSingleFactor",
                "hardwareOath,federatedSingleFactor",
                "sms,federatedSingleFactor",
                "voice,federatedSingleFactor",
            ],
        ),
        built_in(
            PASSWORDLESS_STRENGTH_ID,
            "Passwordless MFA",
            "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with the Microsoft Authenticator",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
                "deviceBasedPush",
            ],
        ),
        built_in(
            PHISHING_RESISTANT_STRENGTH_ID,
            "Phishing resistant MFA",
            "Phishing resistant, Passwordless methods for the strongest authentication, such as a FIDO2 security key",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
            ],
        ),
    ]
});

/// Entra's three built-in strengths, exactly as Graph lists them.
pub fn built_in_strengths() -> &'static [AuthenticationStrength] {
    BUILT_INS.as_slice()
}

/// A built-in strength by id (case-insensitive).
pub fn built_in_strength(id: &str) -> Option<&'static AuthenticationStrength> {
    BUILT_INS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id.trim()))
}

/// The built-in "Multifactor authentication" strength, which is what the `mfa` control means.
pub fn multifactor_strength() -> &'static AuthenticationStrength {
    &BUILT_INS[0]
}

static MULTIFACTOR_SHARED: LazyLock<std::sync::Arc<AuthenticationStrength>> =
    LazyLock::new(|| std::sync::Arc::new(multifactor_strength().clone()));

/// The Multifactor strength behind a shared pointer, for requirements made from `mfa`.
pub(crate) fn multifactor_strength_shared() -> std::sync::Arc<AuthenticationStrength> {
    MULTIFACTOR_SHARED.clone()
}
