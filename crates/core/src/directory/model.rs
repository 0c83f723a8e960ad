//! Directory objects as Graph shows them. Serialization is Graph's JSON shape (camelCase names,
//! ISO 8601 instants); the store keeps the same values in columns.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::kernel::clock::graph_datetime;

/// The one tenant a deployment serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub enum UserType {
    #[default]
    Member,
    Guest,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Member" => Some(UserType::Member),
            "Guest" => Some(UserType::Guest),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub account_enabled: bool,
    pub user_type: UserType,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
}

/// How long a deleted user stays in deleted items, restorable, before it is purged: Entra's 30
/// days.
pub const DELETED_USER_RETENTION: time::Duration = time::Duration::days(30);

/// A user in deleted items (Graph's `directory/deletedItems`): the user as it was, with
/// `deletedDateTime`. Restorable until [`DeletedUser::purge_after`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    #[serde(flatten)]
    pub user: User,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub deleted_date_time: OffsetDateTime,
}

impl DeletedUser {
    /// The instant from which the purge removes it for good.
    pub fn purge_after(&self) -> OffsetDateTime {
        self.deleted_date_time + DELETED_USER_RETENTION
    }

    /// Whole days left before the purge, as the portal shows them (0 on the last day).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.purge_after() - now).whole_days().max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
    pub security_enabled: bool,
    /// Graph's `isAssignableToRole`: only such a group may hold a directory role. Set when the
    /// group is made and never changed afterwards (see [`crate::directory::ladder`]).
    pub is_assignable_to_role: bool,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
}

/// What kind of directory object a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    User,
    Group,
    ServicePrincipal,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
            ObjectKind::ServicePrincipal => "servicePrincipal",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(ObjectKind::User),
            "group" => Some(ObjectKind::Group),
            "servicePrincipal" => Some(ObjectKind::ServicePrincipal),
            _ => None,
        }
    }
    /// Graph's `@odata.type` for this kind.
    pub fn odata_type(self) -> &'static str {
        match self {
            ObjectKind::User => "#microsoft.graph.user",
            ObjectKind::Group => "#microsoft.graph.group",
            ObjectKind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }
}

/// A member of a group: a user or a nested group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRef {
    pub id: Uuid,
    pub kind: ObjectKind,
    pub display_name: String,
    /// Present for users.
    pub user_principal_name: Option<String>,
}

/// `unifiedRoleAssignment`: a principal holds a built-in role tenant-wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub id: Uuid,
    pub principal_id: Uuid,
    /// The role's template id (built-in roles use the template id as their definition id).
    pub role_definition_id: Uuid,
    pub directory_scope_id: String,
}

/// An application registration. Public clients (`isFallbackPublicClient`) have no secrets and
/// must use PKCE; confidential clients authenticate with a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Object id.
    pub id: Uuid,
    /// Client id.
    pub app_id: Uuid,
    pub display_name: String,
    pub is_fallback_public_client: bool,
    pub web: RedirectUris,
    pub public_client: RedirectUris,
    pub spa: RedirectUris,
    /// Graph application permissions this application has been granted for the admin API (what
    /// Entra calls admin-consented app roles of Microsoft Graph), e.g. `User.ReadWrite.All`.
    pub api_permissions: Vec<String>,
    pub password_credentials: Vec<PasswordCredential>,
    /// What the application exposes as an API and who may use it.
    #[serde(flatten)]
    pub access: ApplicationAccess,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
    /// The automation application made at first start: protected like a Global Administrator
    /// (see [`crate::directory::ladder`]). Set only when it is made; not shown in the API.
    #[serde(skip)]
    #[schema(ignore)]
    pub bootstrap_automation: bool,
    /// How the application's ID tokens (and the access tokens issued to it) are signed: a
    /// Portcullis extension named after OpenID Connect Dynamic Client Registration's
    /// `id_token_signed_response_alg`. `ES256` unless the application asks for `RS256`.
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlgorithm,
}

impl Application {
    pub fn all_redirect_uris(&self) -> impl Iterator<Item = &str> {
        self.web
            .redirect_uris
            .iter()
            .chain(&self.public_client.redirect_uris)
            .chain(&self.spa.redirect_uris)
            .map(String::as_str)
    }
}

/// What an application exposes to other applications (an API: its identifier URIs, delegated
/// scopes and app roles) and who may use it. Graph keeps `appRoleAssignmentRequired` on the
/// service principal; Portcullis has no service principals, so it is the application's. Stored
/// as one document with the application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationAccess {
    /// `api://…` (or `https://…`) names other applications ask for this API by; unique in the
    /// tenant.
    pub identifier_uris: Vec<String>,
    pub api: ApiApplication,
    pub app_roles: Vec<AppRole>,
    /// Only people, groups and applications assigned to the application may sign in to it (or
    /// get tokens for it): Entra's AADSTS50105 otherwise.
    pub app_role_assignment_required: bool,
    /// Which groups ID and access tokens name in `groups`; `None` (absent) for no claim.
    pub group_membership_claims: Option<GroupMembershipClaims>,
}

/// Graph's `apiApplication`: the delegated permissions (scopes) the API defines.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiApplication {
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

/// Graph's `permissionScope`: a delegated permission, asked for as `<identifierUri>/<value>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: Uuid,
    pub value: String,
    pub admin_consent_display_name: String,
    #[serde(default)]
    pub admin_consent_description: Option<String>,
    #[serde(default)]
    pub user_consent_display_name: Option<String>,
    #[serde(default)]
    pub user_consent_description: Option<String>,
    pub is_enabled: bool,
    /// `User` or `Admin`: who may consent. Portcullis has admin-managed applications only, so
    /// both are granted without a consent prompt.
    #[serde(rename = "type")]
    pub kind: PermissionScopeType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum PermissionScopeType {
    User,
    Admin,
}

/// Graph's `appRole`: a role the application defines, held through app role assignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: Uuid,
    pub value: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub allowed_member_types: Vec<AppRoleMemberType>,
    pub is_enabled: bool,
}

impl AppRole {
    pub fn admits(&self, kind: AppRoleMemberType) -> bool {
        self.allowed_member_types.contains(&kind)
    }
}

/// Who an app role may be assigned to: people (and groups of people), or applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum AppRoleMemberType {
    User,
    Application,
}

/// Graph's `groupMembershipClaims`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum GroupMembershipClaims {
    /// No `groups` claim (the same as absent).
    None,
    /// Security groups the person is a member of, directly or through nesting.
    SecurityGroup,
    /// Every group the person is a member of, directly or through nesting.
    All,
    /// Of the person's groups, only those assigned to the application.
    ApplicationGroup,
}

/// The app role id that stands for "may use the application" without a role of its own
/// (Entra's default access role).
pub const DEFAULT_ACCESS_ROLE: Uuid = Uuid::nil();

/// Graph's `appRoleAssignment`: a user, group or application holds an app role of a resource
/// application (or default access to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: Uuid,
    pub app_role_id: Uuid,
    pub principal_id: Uuid,
    pub principal_type: AssignedPrincipalType,
    pub principal_display_name: String,
    /// The resource application's object id.
    pub resource_id: Uuid,
    pub resource_display_name: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
}

/// Graph's `principalType` of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AssignedPrincipalType {
    User,
    Group,
    ServicePrincipal,
}

impl AssignedPrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignedPrincipalType::User => "User",
            AssignedPrincipalType::Group => "Group",
            AssignedPrincipalType::ServicePrincipal => "ServicePrincipal",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(AssignedPrincipalType::User),
            "Group" => Some(AssignedPrincipalType::Group),
            "ServicePrincipal" => Some(AssignedPrincipalType::ServicePrincipal),
            _ => None,
        }
    }
    /// The app role member type this principal needs a role to allow.
    pub fn member_type(self) -> AppRoleMemberType {
        match self {
            AssignedPrincipalType::ServicePrincipal => AppRoleMemberType::Application,
            AssignedPrincipalType::User | AssignedPrincipalType::Group => AppRoleMemberType::User,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedirectUris {
    pub redirect_uris: Vec<String>,
}

/// A client secret as listed: never the secret itself. `secretText` exists only in the response
/// that created it (see [`crate::directory::NewSecret`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub key_id: Uuid,
    pub display_name: Option<String>,
    /// The first three characters, so a person can tell secrets apart.
    pub hint: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub start_date_time: OffsetDateTime,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub end_date_time: OffsetDateTime,
    /// SHA-256 of the secret, hex. Never serialized.
    #[serde(skip)]
    pub secret_hash: String,
}

/// A JWS algorithm the server signs tokens with (RFC 7518 §3.1). There is a signing key per
/// algorithm; `none` is not one of them, so an unsigned token is never issued.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
)]
// Read through the name, so that any other value (a number included) is refused as this
// field's value, naming it, rather than as unreadable JSON.
#[serde(try_from = "String")]
pub enum SigningAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: OpenID Connect's mandatory-to-implement algorithm.
    #[serde(rename = "RS256")]
    Rs256,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 2] = [SigningAlgorithm::Es256, SigningAlgorithm::Rs256];

    /// The JOSE name, as in a JWT's `alg` and a JWK's `alg`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Rs256 => "RS256",
        }
    }

    pub fn parse(name: &str) -> Option<SigningAlgorithm> {
        SigningAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

impl TryFrom<String> for SigningAlgorithm {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        SigningAlgorithm::parse(&name).ok_or_else(|| {
            format!("'{name}' is not a signing algorithm Portcullis offers: use ES256 or RS256")
        })
    }
}

impl std::fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key the server signs tokens with. The private key is stored only encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    /// AES-256-GCM sealed PKCS#8 DER, see [`crate::kernel::crypto::Sealer`].
    pub sealed_private_key: Vec<u8>,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    pub created: OffsetDateTime,
    /// When set, the key no longer signs; it stays published until its tokens have expired.
    pub retired: Option<OffsetDateTime>,
    /// When it starts signing; before then it is only published, so clients that cached the
    /// key set have fetched it by the time tokens carry it. `None`: from `created`.
    pub activates: Option<OffsetDateTime>,
}

/// A Graph object kept as its JSON document: Conditional Access policies, named locations,
/// authentication strengths and method configurations. The policy crate owns their meaning; the
/// store only keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub kind: DocumentKind,
    pub id: String,
    pub display_name: String,
    pub body: serde_json::Value,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    NamedLocation,
    ConditionalAccessPolicy,
    AuthenticationStrength,
    AuthenticationMethodConfiguration,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::NamedLocation => "namedLocation",
            DocumentKind::ConditionalAccessPolicy => "conditionalAccessPolicy",
            DocumentKind::AuthenticationStrength => "authenticationStrengthPolicy",
            DocumentKind::AuthenticationMethodConfiguration => "authenticationMethodConfiguration",
        }
    }
}
