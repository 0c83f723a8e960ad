//! Graph enumerations, spelled exactly as Microsoft Graph writes them.
//!
//! Graph enums are "evolvable": Microsoft adds members over time and exports carry
//! `unknownFutureValue` or members newer than this engine. Rejecting such a file would make a
//! real Entra export unreadable, so every enum here keeps an unknown member verbatim in
//! `Other(String)`. The evaluator treats an `Other` value conservatively (it never widens who a
//! policy applies to, and an unknown grant control can never be satisfied), and `lint` reports it.
//! Parsing ignores ASCII case because Graph itself accepts any casing on input; export always
//! writes the canonical spelling.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! graph_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this engine does not know (newer Graph member), kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every member this engine knows, in Graph's documentation order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The exact Graph spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(text) => text,
                }
            }

            /// Reads a Graph value, ignoring ASCII case; unknown values become `Other`.
            pub fn parse(text: &str) -> Self {
                $( if text.eq_ignore_ascii_case($text) { return $name::$variant; } )+
                $name::Other(text.to_owned())
            }

            /// Whether this is a member the engine knows (not `Other`).
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok($name::parse(text))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok($name::parse(&text))
            }
        }
    };
}

/// Like `graph_enum!`, for enums this engine only writes (results, reasons, status): an unknown
/// value reads as `unknownFutureValue`, Graph's own placeholder, so the type stays one byte
/// (the per-policy trace holds several of them for every policy).
macro_rules! graph_enum_closed {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            pub fn parse(text: &str) -> Self {
                $( if text.eq_ignore_ascii_case($text) { return $name::$variant; } )+
                $name::UnknownFutureValue
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok($name::parse(&text))
            }
        }
    };
}

graph_enum! {
    /// `conditionalAccessPolicyState`.
    pub enum PolicyState {
        Enabled = "enabled",
        Disabled = "disabled",
        /// "Report-only" in the portal.
        EnabledForReportingButNotEnforced = "enabledForReportingButNotEnforced",
    }
}

impl PolicyState {
    /// Enforced policies change the decision. An unknown state is treated as enforced: reading
    /// a state we do not understand as "off" would silently weaken the tenant.
    pub fn is_enforced(&self) -> bool {
        matches!(self, PolicyState::Enabled | PolicyState::Other(_))
    }

    /// Report-only policies are evaluated and traced but never change the decision.
    pub fn is_report_only(&self) -> bool {
        matches!(self, PolicyState::EnabledForReportingButNotEnforced)
    }
}

graph_enum! {
    /// `conditionalAccessClientApp`.
    pub enum ClientAppType {
        All = "all",
        Browser = "browser",
        MobileAppsAndDesktopClients = "mobileAppsAndDesktopClients",
        ExchangeActiveSync = "exchangeActiveSync",
        EasSupported = "easSupported",
        /// "Other clients": legacy protocols such as IMAP, POP, SMTP.
        OtherClients = "other",
        /// Deprecated by Graph, still found in old exports.
        EasUnsupported = "easUnsupported",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `conditionalAccessDevicePlatform`.
    pub enum DevicePlatform {
        Android = "android",
        IOS = "iOS",
        Windows = "windows",
        WindowsPhone = "windowsPhone",
        MacOS = "macOS",
        Linux = "linux",
        All = "all",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `riskLevel`.
    pub enum RiskLevel {
        Low = "low",
        Medium = "medium",
        High = "high",
        Hidden = "hidden",
        None = "none",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `conditionalAccessGrantControl` (the `builtInControls` members).
    pub enum BuiltInControl {
        Block = "block",
        Mfa = "mfa",
        CompliantDevice = "compliantDevice",
        DomainJoinedDevice = "domainJoinedDevice",
        ApprovedApplication = "approvedApplication",
        CompliantApplication = "compliantApplication",
        PasswordChange = "passwordChange",
        UnknownFutureValue = "unknownFutureValue",
        RiskRemediation = "riskRemediation",
    }
}

graph_enum! {
    /// `grantControls.operator`, upper case in Graph.
    pub enum GrantOperator {
        And = "AND",
        Or = "OR",
    }
}

graph_enum! {
    /// `authenticationMethodModes`: the members usable inside an allowed combination.
    pub enum AuthenticationMethodMode {
        Password = "password",
        Voice = "voice",
        HardwareOath = "hardwareOath",
        SoftwareOath = "softwareOath",
        Sms = "sms",
        Fido2 = "fido2",
        WindowsHelloForBusiness = "windowsHelloForBusiness",
        MicrosoftAuthenticatorPush = "microsoftAuthenticatorPush",
        DeviceBasedPush = "deviceBasedPush",
        TemporaryAccessPassOneTime = "temporaryAccessPassOneTime",
        TemporaryAccessPassMultiUse = "temporaryAccessPassMultiUse",
        Email = "email",
        X509CertificateSingleFactor = "x509CertificateSingleFactor",
        X509CertificateMultiFactor = "x509CertificateMultiFactor",
        FederatedSingleFactor = "federatedSingleFactor",
        FederatedMultiFactor = "federatedMultiFactor",
        UnknownFutureValue = "unknownFutureValue",
        QrCodePin = "qrCodePin",
    }
}

impl AuthenticationMethodMode {
    /// One bit per known mode so a combination check is a mask test; unknown modes have none
    /// (a combination containing one can never be satisfied).
    pub(crate) fn bit(&self) -> Option<u32> {
        Self::KNOWN
            .iter()
            .position(|known| known == self)
            .filter(|_| !matches!(self, AuthenticationMethodMode::UnknownFutureValue))
            .map(|index| 1u32 << index)
    }

    /// Display name used by Entra's `authenticationMethodModeDetail` list.
    pub fn display_name(&self) -> &str {
        match self {
            Self::Password => "Password",
            Self::Voice => "Voice",
            Self::HardwareOath => "Hardware OATH tokens",
            Self::SoftwareOath => "Software OATH tokens",
            Self::Sms => "SMS",
            Self::Fido2 => "FIDO2 Security Key",
            Self::WindowsHelloForBusiness => "Windows Hello for Business",
            Self::MicrosoftAuthenticatorPush => "Microsoft Authenticator (push notification)",
            Self::DeviceBasedPush => "Microsoft Authenticator (Passwordless)",
            Self::TemporaryAccessPassOneTime => "Temporary Access Pass (one-time use)",
            Self::TemporaryAccessPassMultiUse => "Temporary Access Pass (multi-use)",
            Self::Email => "Email one-time passcode",
            Self::X509CertificateSingleFactor => "Certificate-based authentication (single factor)",
            Self::X509CertificateMultiFactor => "Certificate-based authentication (multifactor)",
            Self::FederatedSingleFactor => "Federation (single factor)",
            Self::FederatedMultiFactor => "Federation (multifactor)",
            Self::QrCodePin => "QR code",
            Self::UnknownFutureValue | Self::Other(_) => self.as_str(),
        }
    }
}

graph_enum! {
    /// `authenticationStrengthPolicyType`.
    pub enum StrengthPolicyType {
        BuiltIn = "builtIn",
        Custom = "custom",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `authenticationStrengthRequirements`.
    pub enum StrengthRequirements {
        None = "none",
        Mfa = "mfa",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `filterMode` of a `conditionalAccessFilter`.
    pub enum FilterMode {
        Include = "include",
        Exclude = "exclude",
    }
}

graph_enum! {
    /// `signinFrequencyType`.
    pub enum SignInFrequencyType {
        Days = "days",
        Hours = "hours",
    }
}

graph_enum! {
    /// `signInFrequencyInterval`.
    pub enum SignInFrequencyInterval {
        TimeBased = "timeBased",
        EveryTime = "everyTime",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `signInFrequencyAuthenticationType`.
    pub enum SignInFrequencyAuthenticationType {
        PrimaryAndSecondaryAuthentication = "primaryAndSecondaryAuthentication",
        SecondaryAuthentication = "secondaryAuthentication",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `persistentBrowserSessionMode`.
    pub enum PersistentBrowserMode {
        Always = "always",
        Never = "never",
    }
}

graph_enum! {
    /// `countryLookupMethodType`.
    pub enum CountryLookupMethod {
        ClientIpAddress = "clientIpAddress",
        AuthenticatorAppGps = "authenticatorAppGps",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum_closed! {
    /// `appliedConditionalAccessPolicyResult`: the per-policy result in sign-in logs.
    pub enum AppliedPolicyResult {
        Success = "success",
        Failure = "failure",
        NotApplied = "notApplied",
        NotEnabled = "notEnabled",
        Unknown = "unknown",
        UnknownFutureValue = "unknownFutureValue",
        ReportOnlySuccess = "reportOnlySuccess",
        ReportOnlyFailure = "reportOnlyFailure",
        ReportOnlyNotApplied = "reportOnlyNotApplied",
        ReportOnlyInterrupted = "reportOnlyInterrupted",
    }
}

graph_enum_closed! {
    /// `conditionalAccessStatus`: the overall Conditional Access status of a sign-in.
    pub enum ConditionalAccessStatus {
        Success = "success",
        Failure = "failure",
        NotApplied = "notApplied",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum_closed! {
    /// `whatIfAnalysisReasons`: why the What-If API says a policy does not apply.
    pub enum AnalysisReason {
        NotSet = "notSet",
        NotEnoughInformation = "notEnoughInformation",
        InvalidCondition = "invalidCondition",
        Users = "users",
        WorkloadIdentities = "workloadIdentities",
        Application = "application",
        UserActions = "userActions",
        AuthenticationContext = "authenticationContext",
        DevicePlatform = "devicePlatform",
        Devices = "devices",
        ClientApps = "clientApps",
        Location = "location",
        SignInRisk = "signInRisk",
        EmptyPolicy = "emptyPolicy",
        InvalidPolicy = "invalidPolicy",
        PolicyNotEnabled = "policyNotEnabled",
        UserRisk = "userRisk",
        Time = "time",
        InsiderRisk = "insiderRisk",
        AuthenticationFlow = "authenticationFlow",
        UnknownFutureValue = "unknownFutureValue",
    }
}

graph_enum! {
    /// `userAction` of the What-If `userActionContext`.
    pub enum UserAction {
        RegisterSecurityInformation = "registerSecurityInformation",
        RegisterOrJoinDevices = "registerOrJoinDevices",
        UnknownFutureValue = "unknownFutureValue",
    }
}

impl UserAction {
    /// The URN a policy uses in `includeUserActions` for this action.
    pub fn urn(&self) -> &str {
        match self {
            UserAction::RegisterSecurityInformation => USER_ACTION_REGISTER_SECURITY_INFO,
            UserAction::RegisterOrJoinDevices => USER_ACTION_REGISTER_DEVICE,
            other => other.as_str(),
        }
    }

    /// The action a policy's `includeUserActions` URN names, if known.
    pub fn from_urn(urn: &str) -> Option<Self> {
        if urn.eq_ignore_ascii_case(USER_ACTION_REGISTER_SECURITY_INFO) {
            Some(UserAction::RegisterSecurityInformation)
        } else if urn.eq_ignore_ascii_case(USER_ACTION_REGISTER_DEVICE) {
            Some(UserAction::RegisterOrJoinDevices)
        } else {
            None
        }
    }
}

/// `includeUserActions` value for "Register security information".
pub const USER_ACTION_REGISTER_SECURITY_INFO: &str = "urn:user:registersecurityinfo";
/// `includeUserActions` value for "Register or join devices".
pub const USER_ACTION_REGISTER_DEVICE: &str = "urn:user:registerdevice";
