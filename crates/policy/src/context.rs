//! The facts of one sign-in, as the engine needs them. Callers (core, the What-If API, the CLI)
//! fill this from their own sources; the engine never looks anything up.

use std::net::IpAddr;

use crate::device_filter::DeviceFacts;
use crate::enums::{ClientAppType, DevicePlatform, RiskLevel, UserAction};
use crate::strength::SatisfiedMethod;

/// Member or guest (`userType`). Portcullis guests are local accounts, which Entra calls
/// `internalGuest` among the guest-or-external-user types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserKind {
    #[default]
    Member,
    Guest,
}

/// What the sign-in is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Access to an application, by its client id (`appId`).
    Application(String),
    /// A user action such as registering security information.
    UserAction(UserAction),
    /// A step-up to an authentication context, `c1` … `c99`.
    AuthenticationContext(String),
}

/// Everything `evaluate` considers about one sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct SignInContext {
    pub user_id: String,
    /// Transitive (nested) group memberships.
    pub group_ids: Vec<String>,
    /// Template ids of directory roles actively assigned (not merely eligible).
    pub role_template_ids: Vec<String>,
    pub user_kind: UserKind,
    pub target: Target,
    /// `None` when the platform could not be recognised: it then matches only `all`.
    pub platform: Option<DevicePlatform>,
    /// `browser`, `mobileAppsAndDesktopClients`, `exchangeActiveSync` or `other`; any other
    /// value matches only `all`.
    pub client_app_type: ClientAppType,
    /// `None` only in What-If requests that do not give one: location conditions then do not
    /// apply (Graph's What-If semantics). Live sign-ins always carry the address.
    pub ip_address: Option<IpAddr>,
    /// Two-letter country of the IP, when geolocation is available.
    pub country: Option<String>,
    /// Ids of the named locations the sign-in falls in; see `PolicySet::locations_for`.
    pub named_locations: Vec<String>,
    pub sign_in_risk: RiskLevel,
    pub user_risk: RiskLevel,
    /// `None`: the device is not registered, so every device attribute is null.
    pub device: Option<DeviceFacts>,
    /// Methods already performed in this session (with the passkey's AAGUID).
    pub methods: Vec<SatisfiedMethod>,
    /// The user completed a password change in this session.
    pub password_changed: bool,
    /// Terms-of-use agreement ids the user accepted in this session.
    pub accepted_terms_of_use: Vec<String>,
}

impl SignInContext {
    /// A member signing in to an application from an unknown platform with a browser and no
    /// methods yet: the rest is filled in by the caller.
    pub fn new(user_id: impl Into<String>, target: Target) -> Self {
        SignInContext {
            user_id: user_id.into(),
            group_ids: Vec::new(),
            role_template_ids: Vec::new(),
            user_kind: UserKind::Member,
            target,
            platform: None,
            client_app_type: ClientAppType::Browser,
            ip_address: None,
            country: None,
            named_locations: Vec::new(),
            sign_in_risk: RiskLevel::None,
            user_risk: RiskLevel::None,
            device: None,
            methods: Vec::new(),
            password_changed: false,
            accepted_terms_of_use: Vec::new(),
        }
    }
}
