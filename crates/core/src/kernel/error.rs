//! The failure model of the domain: the one [`Error`] type every core operation returns, the
//! machine-readable codes a caller sees ([`ErrorCode`], Graph's spelling), Entra's numeric
//! sign-in error codes ([`SignInErrorCode`]), and the one map from an error to its HTTP status
//! ([`Error::http_status`]).
//!
//! It owns what a failure *means* to a caller: which status, which code, which message may be
//! shown. The web layer renders it (Graph JSON, OAuth JSON, HTML pages) and never decides a
//! status of its own for a core error. What this module must never do: know about HTTP
//! frameworks or response bodies, or put an internal detail in [`Error::public_message`].
//!
//! Why the status lives here rather than in `web`: every surface (the Graph API, the sign-in
//! JSON, the pages) must agree, the variants already document their status, and a `match` here
//! with no wildcard arm makes adding a variant or a sign-in code a compile error until its
//! status is decided.

use std::borrow::Cow;
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Declares [`ErrorCode`] with each variant's wire spelling next to it, so the spelling is
/// written once and `as_str` and `ALL` cannot drift from the variants.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, )+) => {
        /// The stable, machine-readable code of a failure, as callers read it in
        /// `error.code`. The spelling is part of the API (Graph's own codes keep Graph's mixed
        /// case; Portcullis's are camelCase): never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, for tests that check each one renders and round-trips.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $text, )+
                }
            }
        }
    };
}

error_codes! {
    // Graph's codes.
    /// A field or parameter is invalid (`target` names it).
    InvalidRequest => "invalidRequest",
    /// A malformed or unsupported OData query option.
    UnsupportedQuery => "Request_UnsupportedQuery",
    /// A uniqueness rule would break (a userPrincipalName, an appId, a membership).
    MultipleObjectsWithSameKeyValue => "Request_MultipleObjectsWithSameKeyValue",
    InvalidAuthenticationToken => "InvalidAuthenticationToken",
    AuthorizationRequestDenied => "Authorization_RequestDenied",
    /// The target of a sensitive action holds a role the caller's roles do not cover (Entra's
    /// tiers, see `directory::tiers`).
    TargetPrivileged => "Authorization_TargetPrivileged",
    ResourceNotFound => "Request_ResourceNotFound",
    EntityTooLarge => "Request_EntityTooLarge",
    TooManyRequests => "TooManyRequests",
    ServiceNotAvailable => "serviceNotAvailable",
    GeneralException => "generalException",
    /// The body is not `application/json`.
    UnsupportedContentType => "unsupportedContentType",
    // Signing in.
    /// A first factor was refused; `errorCode` carries Entra's number.
    SignInRefused => "signInRefused",
    SignInFlowNotFound => "signInFlowNotFound",
    SignInStepOutOfOrder => "signInStepOutOfOrder",
    SignInFlowSessionMismatch => "signInFlowSessionMismatch",
    SignInWrongAccount => "signInWrongAccount",
    SignInProveNewPasskey => "signInProveNewPasskey",
    RegistrationRequirementsNotMet => "registrationRequirementsNotMet",
    // Applications and OpenID Connect.
    UnknownClient => "unknownClient",
    MissingClientId => "missingClientId",
    MissingRedirectUri => "missingRedirectUri",
    RedirectUriMismatch => "redirectUriMismatch",
    AuthorizationCodeUsed => "authorizationCodeUsed",
    // Conditional Access.
    NamedLocationInUse => "namedLocationInUse",
    AuthenticationStrengthInUse => "authenticationStrengthInUse",
    /// A user, group or application is named by policies, which would be left naming nothing.
    ObjectInUseByPolicy => "objectInUseByPolicy",
    /// What a write was checked against changed before it committed (another request, maybe
    /// on another node); nothing was written, and the write may be tried again.
    RevisionMoved => "revisionMoved",
    /// The change would leave every Global Administrator, or the person making it, unable to
    /// reach the Admin Portal (see `crate::guard`).
    PolicyWouldLockOut => "policyWouldLockOut",
    // Passkeys.
    PasskeyAlreadyRegistered => "passkeyAlreadyRegistered",
    PasskeyAttestationRequired => "passkeyAttestationRequired",
    PasskeyAttestationUnsupported => "passkeyAttestationUnsupported",
    PasskeyChallengeExpired => "passkeyChallengeExpired",
    PasskeyChallengeMismatch => "passkeyChallengeMismatch",
    PasskeyChallengeNotFound => "passkeyChallengeNotFound",
    /// Another sign-in moved the passkey's counter first (a storage-level race verdict).
    PasskeyCounterNotAdvanced => "passkeyCounterNotAdvanced",
    PasskeyCounterRegressed => "passkeyCounterRegressed",
    PasskeyCrossDeviceNeedsAttestation => "passkeyCrossDeviceNeedsAttestation",
    PasskeyLimitReached => "passkeyLimitReached",
    PasskeyMalformed => "passkeyMalformed",
    PasskeyMethodDisabled => "passkeyMethodDisabled",
    PasskeyMethodExcludedForUser => "passkeyMethodExcludedForUser",
    PasskeyMethodNotEnabledForUser => "passkeyMethodNotEnabledForUser",
    PasskeyModelNotAllowed => "passkeyModelNotAllowed",
    PasskeyNotRegistered => "passkeyNotRegistered",
    PasskeyOriginMismatch => "passkeyOriginMismatch",
    PasskeyRpIdMismatch => "passkeyRpIdMismatch",
    PasskeySelfServiceNotAllowed => "passkeySelfServiceNotAllowed",
    PasskeyUserNotPresent => "passkeyUserNotPresent",
    PasskeyUserNotVerified => "passkeyUserNotVerified",
    PasskeyVerificationFailed => "passkeyVerificationFailed",
    // No privilege ladder (see `directory::ladder`).
    /// A role-assignable group's members (or the group itself) were to be changed by a caller
    /// without RoleManagement.ReadWrite.Directory.
    RoleAssignableGroupNeedsRoleManagement => "roleAssignableGroupNeedsRoleManagement",
    /// A role was to be assigned to a group that is not role-assignable.
    GroupNotAssignableToRole => "groupNotAssignableToRole",
    /// A group was to be added to a role-assignable group.
    RoleAssignableGroupCannotNest => "roleAssignableGroupCannotNest",
    /// An application's credentials or permissions were to be changed by a caller who does not
    /// hold every permission the application holds.
    ApplicationPermissionsNotCovered => "applicationPermissionsNotCovered",
    /// The automation application made at first start was to be changed or deleted by a caller
    /// without RoleManagement.ReadWrite.Directory (or every permission it holds).
    AutomationApplicationProtected => "automationApplicationProtected",
    /// A first-party application (My Account, Admin Portal) was to be deleted or given a
    /// credential.
    FirstPartyApplicationProtected => "firstPartyApplicationProtected",
    /// The change would leave the tenant without an enabled Global Administrator (Entra's
    /// `CannotDeleteLastAdminAssignment`).
    LastGlobalAdministrator => "lastGlobalAdministrator",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Entra ID's numeric sign-in error codes (AADSTS…), as they appear in a refused sign-in's
/// `errorCode`, a flow's interrupt and the sign-in log's `status/errorCode`. The numbers are
/// Entra's so that the tools and searches administrators already use keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignInErrorCode {
    /// 50126: wrong username, pass or password (the two look alike on purpose).
    InvalidCredentials,
    /// 50053: smart lockout holds the account's method or the source address.
    AccountLocked,
    /// 50057: the account is disabled.
    AccountDisabled,
    /// 50074: Conditional Access asks for a stronger sign-in in this session.
    StrongAuthRequired,
    /// 50079: "More information required": register a method that meets the strength.
    MoreInformationRequired,
    /// 53003: Conditional Access blocks the sign-in.
    BlockedByConditionalAccess,
    /// 500121: a passkey was refused during a strong authentication request.
    PasskeySignInFailed,
    /// 50105: the application admits only assigned people, and this person is not assigned.
    NotAssignedToApplication,
}

impl SignInErrorCode {
    pub const ALL: &'static [SignInErrorCode] = &[
        SignInErrorCode::InvalidCredentials,
        SignInErrorCode::AccountLocked,
        SignInErrorCode::AccountDisabled,
        SignInErrorCode::StrongAuthRequired,
        SignInErrorCode::MoreInformationRequired,
        SignInErrorCode::BlockedByConditionalAccess,
        SignInErrorCode::PasskeySignInFailed,
        SignInErrorCode::NotAssignedToApplication,
    ];

    /// Entra's number.
    pub const fn code(self) -> u32 {
        match self {
            SignInErrorCode::InvalidCredentials => 50126,
            SignInErrorCode::AccountLocked => 50053,
            SignInErrorCode::AccountDisabled => 50057,
            SignInErrorCode::StrongAuthRequired => 50074,
            SignInErrorCode::MoreInformationRequired => 50079,
            SignInErrorCode::BlockedByConditionalAccess => 53003,
            SignInErrorCode::PasskeySignInFailed => 500121,
            SignInErrorCode::NotAssignedToApplication => 50105,
        }
    }

    /// The code for Entra's number, when Portcullis knows it (log entries may hold others).
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// What the code means, in the words of Entra's error reference, for logs and support.
    pub const fn description(self) -> &'static str {
        match self {
            SignInErrorCode::InvalidCredentials => {
                "Error validating credentials due to an invalid username or password."
            }
            SignInErrorCode::AccountLocked => {
                "The account is locked because of too many sign-in attempts with a wrong credential."
            }
            SignInErrorCode::AccountDisabled => "The user account is disabled.",
            SignInErrorCode::StrongAuthRequired => "Strong authentication is required.",
            SignInErrorCode::MoreInformationRequired => {
                "The user must register security information to meet the required authentication strength."
            }
            SignInErrorCode::BlockedByConditionalAccess => {
                "Access has been blocked by Conditional Access policies."
            }
            SignInErrorCode::PasskeySignInFailed => {
                "Authentication failed during a strong authentication request."
            }
            SignInErrorCode::NotAssignedToApplication => {
                "The signed in user is not assigned to a role for the application."
            }
        }
    }
}

impl fmt::Display for SignInErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// HTTP 400: The request is malformed or a field is invalid; `target` names the field (or query
    /// option) at fault so that a caller can fix it without reading prose.
    #[error("{message}")]
    Invalid {
        code: ErrorCode,
        target: Option<Cow<'static, str>>,
        message: String,
    },
    /// HTTP 401: No credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// A person's first factor was refused, with Entra's code saying why. HTTP 401 for wrong
    /// credentials, 429 while locked out, 403 for a disabled account or a block (see
    /// [`Error::http_status`]). The message is written for the person and is safe to show.
    #[error("{message}")]
    SignInRefused {
        code: SignInErrorCode,
        message: String,
    },
    /// HTTP 403: Authenticated, but the caller lacks the permission the operation states.
    #[error("{0}")]
    Forbidden(String),
    /// HTTP 403: The caller holds the operation's permission, but a rule about its target refuses
    /// it; `code` names the rule.
    #[error("{message}")]
    Denied { code: ErrorCode, message: String },
    /// HTTP 404: The addressed object does not exist.
    #[error("{resource} '{id}' does not exist")]
    NotFound { resource: &'static str, id: String },
    /// HTTP 409: The change would break a uniqueness rule (a userPrincipalName, an appId, a membership
    /// that already exists), or a step arrived out of order.
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// HTTP 413: The request body is larger than the server accepts.
    /// A change the lockout guard refused: `finding` is the analyzer's finding (kind
    /// `lockout`) with the sign-in that proves it.
    #[error("{message}")]
    WouldLockOut {
        message: String,
        finding: Box<serde_json::Value>,
    },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// HTTP 415: The body is not in the one content type the endpoint accepts.
    #[error("{message}")]
    UnsupportedContentType { message: String },
    /// HTTP 429: Too many attempts from one account or source; retry after the given seconds.
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// HTTP 503: A dependency (the database) cannot be reached right now; nothing was changed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// HTTP 500: A defect or an unexpected storage failure. The message is for logs; the web layer
    /// never shows it to a caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A 400 naming the field at fault.
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Invalid {
            code: ErrorCode::InvalidRequest,
            target: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 400 for a malformed or unsupported OData query option.
    pub fn bad_query(option: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Invalid {
            code: ErrorCode::UnsupportedQuery,
            target: Some(option.into()),
            message: message.into(),
        }
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            code: ErrorCode::MultipleObjectsWithSameKeyValue,
            message: message.into(),
        }
    }

    /// A 403 from a rule about the target rather than a missing permission; `code` names the rule.
    pub fn denied(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Denied {
            code,
            message: message.into(),
        }
    }

    /// A 400 whose code names the rule broken, and whose target names the field at fault.
    pub fn invalid_by_rule(
        code: ErrorCode,
        field: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            code,
            target: Some(field.into()),
            message: message.into(),
        }
    }

    /// A refused first factor, with the message the person reads.
    pub fn sign_in_refused(code: SignInErrorCode, message: impl Into<String>) -> Self {
        Error::SignInRefused {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status this error maps to: the one map, used by every surface of the web
    /// crate. No wildcard arms, so a new variant or sign-in code must be decided here.
    pub fn http_status(&self) -> u16 {
        use SignInErrorCode as S;
        match self {
            Error::Invalid { .. } => 400,
            Error::Unauthenticated(_) => 401,
            Error::SignInRefused { code, .. } => match code {
                S::InvalidCredentials
                | S::StrongAuthRequired
                | S::MoreInformationRequired
                | S::PasskeySignInFailed => 401,
                // Not a wrong credential: the person (or the address) must wait.
                S::AccountLocked => 429,
                // The credential may be right; the account or the policy refuses.
                S::AccountDisabled
                | S::BlockedByConditionalAccess
                | S::NotAssignedToApplication => 403,
            },
            Error::Forbidden(_) | Error::Denied { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } | Error::WouldLockOut { .. } => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::UnsupportedContentType { .. } => 415,
            Error::TooManyRequests { .. } => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The stable, machine-readable code (Graph's spelling where Graph has one).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid { code, .. } => *code,
            Error::Unauthenticated(_) => ErrorCode::InvalidAuthenticationToken,
            Error::SignInRefused { .. } => ErrorCode::SignInRefused,
            Error::Forbidden(_) => ErrorCode::AuthorizationRequestDenied,
            Error::Denied { code, .. } => *code,
            Error::NotFound { .. } => ErrorCode::ResourceNotFound,
            Error::Conflict { code, .. } => *code,
            Error::WouldLockOut { .. } => ErrorCode::PolicyWouldLockOut,
            Error::PayloadTooLarge { .. } => ErrorCode::EntityTooLarge,
            Error::UnsupportedContentType { .. } => ErrorCode::UnsupportedContentType,
            Error::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            Error::Unavailable(_) => ErrorCode::ServiceNotAvailable,
            Error::Internal(_) => ErrorCode::GeneralException,
        }
    }

    /// Entra's sign-in error code, for a refused sign-in.
    pub fn sign_in_code(&self) -> Option<SignInErrorCode> {
        match self {
            Error::SignInRefused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The field or query option at fault, when there is one.
    pub fn target(&self) -> Option<&str> {
        match self {
            Error::Invalid { target, .. } => target.as_deref(),
            // Content-Type is the "field" a caller fixes.
            Error::UnsupportedContentType { .. } => Some("Content-Type"),
            _ => None,
        }
    }

    /// The message safe to show a caller. Internal errors are not described to callers.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => {
                "An unexpected error occurred; the request changed nothing. Quote the request id to the administrator.".to_string()
            }
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_keep_their_wire_spelling_and_are_unique() {
        let spelled: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let mut unique = spelled.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), spelled.len(), "two codes share a spelling");
        // Spot checks of codes third-party clients match on.
        assert_eq!(
            ErrorCode::ResourceNotFound.as_str(),
            "Request_ResourceNotFound"
        );
        assert_eq!(ErrorCode::InvalidRequest.as_str(), "invalidRequest");
        assert_eq!(
            ErrorCode::UnsupportedQuery.as_str(),
            "Request_UnsupportedQuery"
        );
        assert_eq!(
            ErrorCode::MultipleObjectsWithSameKeyValue.as_str(),
            "Request_MultipleObjectsWithSameKeyValue"
        );
        assert_eq!(
            ErrorCode::SignInStepOutOfOrder.to_string(),
            "signInStepOutOfOrder"
        );
    }

    #[test]
    fn sign_in_codes_are_entras_numbers_and_round_trip() {
        let numbers: Vec<u32> = SignInErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            numbers,
            [50126, 50053, 50057, 50074, 50079, 53003, 500121, 50105]
        );
        for code in SignInErrorCode::ALL {
            assert_eq!(SignInErrorCode::from_code(code.code()), Some(*code));
            assert!(!code.description().is_empty());
        }
        assert_eq!(SignInErrorCode::from_code(0), None);
        assert_eq!(SignInErrorCode::from_code(500), None);
    }

    /// What a caller sees for every variant: status, code, target, and whether the message is
    /// the error's own.
    #[test]
    fn every_variant_has_one_status_and_code() {
        let cases: Vec<(Error, u16, &str, Option<&str>)> = vec![
            (
                Error::invalid("displayName", "x"),
                400,
                "invalidRequest",
                Some("displayName"),
            ),
            (
                Error::bad_query("$top", "x"),
                400,
                "Request_UnsupportedQuery",
                Some("$top"),
            ),
            (
                Error::Unauthenticated("x".into()),
                401,
                "InvalidAuthenticationToken",
                None,
            ),
            (
                Error::Forbidden("x".into()),
                403,
                "Authorization_RequestDenied",
                None,
            ),
            (
                Error::denied(ErrorCode::AutomationApplicationProtected, "x"),
                403,
                "automationApplicationProtected",
                None,
            ),
            (
                Error::invalid_by_rule(ErrorCode::GroupNotAssignableToRole, "principalId", "x"),
                400,
                "groupNotAssignableToRole",
                Some("principalId"),
            ),
            (
                Error::Denied {
                    code: ErrorCode::TargetPrivileged,
                    message: "x".into(),
                },
                403,
                "Authorization_TargetPrivileged",
                None,
            ),
            (
                Error::not_found("user", "u1"),
                404,
                "Request_ResourceNotFound",
                None,
            ),
            (
                Error::conflict("x"),
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                None,
            ),
            (
                Error::Conflict {
                    code: ErrorCode::SignInStepOutOfOrder,
                    message: "x".into(),
                },
                409,
                "signInStepOutOfOrder",
                None,
            ),
            (
                Error::PayloadTooLarge { limit: 1 },
                413,
                "Request_EntityTooLarge",
                None,
            ),
            (
                Error::UnsupportedContentType {
                    message: "x".into(),
                },
                415,
                "unsupportedContentType",
                Some("Content-Type"),
            ),
            (
                Error::TooManyRequests {
                    retry_after_secs: 60,
                },
                429,
                "TooManyRequests",
                None,
            ),
            (
                Error::Unavailable("db".into()),
                503,
                "serviceNotAvailable",
                None,
            ),
            (Error::Internal("db".into()), 500, "generalException", None),
        ];
        for (error, status, code, target) in cases {
            assert_eq!(error.http_status(), status, "{error:?}");
            assert_eq!(error.code().as_str(), code, "{error:?}");
            assert_eq!(error.target(), target, "{error:?}");
            assert_eq!(error.sign_in_code(), None);
        }
    }

    #[test]
    fn a_refused_sign_in_is_one_variant_whose_status_follows_its_code() {
        use SignInErrorCode as S;
        let expected = [
            (S::InvalidCredentials, 401),
            (S::AccountLocked, 429),
            (S::AccountDisabled, 403),
            (S::StrongAuthRequired, 401),
            (S::MoreInformationRequired, 401),
            (S::BlockedByConditionalAccess, 403),
            (S::PasskeySignInFailed, 401),
            (S::NotAssignedToApplication, 403),
        ];
        assert_eq!(
            expected.len(),
            S::ALL.len(),
            "every code has its status here"
        );
        for (code, status) in expected {
            let refused = Error::sign_in_refused(code, "Your account or password is incorrect.");
            assert_eq!(refused.http_status(), status, "{code:?}");
            assert_eq!(refused.code(), ErrorCode::SignInRefused);
            assert_eq!(refused.sign_in_code(), Some(code));
            assert_eq!(
                refused.public_message(),
                "Your account or password is incorrect."
            );
        }
    }

    #[test]
    fn internal_details_never_reach_the_public_message() {
        let e = Error::Internal("connection to db-7 refused".into());
        assert!(!e.public_message().contains("db-7"));
        let e = Error::invalid("x", "The name is too long.");
        assert_eq!(e.public_message(), "The name is too long.");
    }
}
