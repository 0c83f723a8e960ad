//! Passkeys (FIDO2): registration and sign-in ceremonies, the passkey method policy, and each
//! person's registered passkeys, over webauthn-rs.
//!
//! [`Passkeys`] owns the rules: options sent to the browser ask for a discoverable credential
//! (resident key required), user verification and `direct` attestation; ceremony state lives in
//! the database ([`store::PasskeyStore`]), expires after five minutes and is consumed once;
//! origin, RP ID hash, user verification and the signature counter are checked by webauthn-rs
//! and refused with a stable error code each; the method policy ([`policy::Fido2Policy`]) and
//! its AAGUID restrictions apply at registration *and* at every sign-in; with attestation
//! enforced, a model must be proven by a chain to a root in [`TrustedAttestationRoots`].
//!
//! What it must never do: trust anything the browser keeps (it holds only a ceremony id), accept
//! a ceremony twice, change a passkey or a session when a check fails, or let a self-reported
//! AAGUID pass where attestation is enforced.

pub mod attestation;
mod es256;
pub mod policy;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

pub use attestation::TrustedAttestationRoots;
pub use policy::{FIDO2_CONFIGURATION_ID, Fido2Policy, Refusal};
pub use store::{
    AttestationLevel, Ceremony, CeremonyKind, PasskeyStore, PasskeyUse, StoredPasskey,
};

use crate::directory::audit::{
    AuditActivityInitiator, DirectoryAudit, KeyValue, RequestContext, TargetResource,
};
use crate::directory::authz::{
    Actor, Granted, ReadPolicies, ReadUserMethods, WriteAuthenticationMethodPolicy,
    WriteUserMethods,
};
use crate::directory::model::{DocumentKind, PolicyDocument, User};
use crate::directory::store::{DirectoryChange, DirectoryStore};
use crate::directory::tiers::{self, SensitiveAction};
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::error::{ErrorCode, SignInErrorCode};
use crate::logs::sign_in::{self, Attempt, RequestFacts};
use crate::logs::store::LogChange;
use crate::methods::store::{MethodChange as Change, MethodStore};
use crate::session::store::SessionChange;
use crate::session::{AuthSession, MethodKind, SessionMethod, new_session};
use crate::{Error, Result};

/// "Challenges are single-use with a 5-minute lifetime."
pub const CEREMONY_LIFETIME: Duration = Duration::minutes(5);
/// At most this many passkeys a person (issue 4).
pub const MAX_PASSKEYS_PER_USER: usize = 10;
const MAX_PASSKEY_NAME: usize = 64;
const AUTH_METHODS_SERVICE: &str = "Authentication Methods";
/// The sign-in log's error code for a refused passkey ("Authentication failed during strong
/// authentication request"); the failure reason says which check refused it.
const PASSKEY_SIGN_IN_FAILED: u32 = SignInErrorCode::PasskeySignInFailed.code();
/// The conflict code of a [`Change::RecordPasskeyUse`] whose counter another sign-in moved
/// first: the same verdict as a regressed counter.
pub const COUNTER_NOT_ADVANCED: ErrorCode = ErrorCode::PasskeyCounterNotAdvanced;

/// Where the person wants the new passkey: on the device they are using, or on a phone or
/// tablet through the browser's cross-device (QR code) flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RegistrationDevice {
    This,
    Another,
}

/// What the browser needs to run a ceremony: its id (to send back) and the WebAuthn options.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CeremonyOptions {
    pub ceremony_id: Uuid,
    /// `{"publicKey": …}` (and `"mediation"` for autofill), ready for
    /// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`.
    #[schema(value_type = Object)]
    pub options: Value,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_date_time: OffsetDateTime,
    /// For adding a passkey: the models the tenant's passkey policy allows (its key
    /// restrictions, when enforced), so the page can tell the person at once that the passkey
    /// their device just made is not one of them, before it says "created". The server still
    /// judges the model when the passkey is saved; this only spares the person a false success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_restriction: Option<ModelRestriction>,
}

/// The AAGUIDs a passkey policy allows or blocks, as [`CeremonyOptions`] tells the browser.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelRestriction {
    /// `allow`: only these models; `block`: every model but these.
    #[schema(value_type = String)]
    pub enforcement_type: policy::EnforcementType,
    /// Lowercase hyphenated GUIDs.
    pub aa_guids: Vec<String>,
}

/// A passkey as Graph shows it (`fido2AuthenticationMethod`), with Portcullis's extensions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Method {
    #[serde(rename = "@odata.type")]
    #[schema(value_type = String)]
    pub odata_type: &'static str,
    pub id: Uuid,
    pub display_name: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
    pub aa_guid: String,
    /// The model's name, from configured metadata; `null` when unknown.
    pub model: Option<String>,
    pub attestation_certificates: Vec<String>,
    /// `attested` when the model is proven by a trusted attestation chain; `notAttested` when
    /// the AAGUID and model are only what the authenticator says about itself.
    #[schema(value_type = String)]
    pub attestation_level: &'static str,
    /// Portcullis extension: `attested`, `selfAttested` or `none`.
    #[schema(value_type = String)]
    pub attestation_type: &'static str,
    /// `synced` when the authenticator says the key may be backed up, else `deviceBound`.
    #[schema(value_type = String)]
    pub passkey_type: &'static str,
    /// Portcullis extension.
    pub backup_eligible: bool,
    /// Portcullis extension: whether the key is backed up now.
    pub backup_state: bool,
    /// Portcullis extension.
    #[serde(with = "graph_datetime::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_date_time: Option<OffsetDateTime>,
}

impl From<&StoredPasskey> for Fido2Method {
    fn from(p: &StoredPasskey) -> Self {
        Fido2Method {
            odata_type: "#microsoft.graph.fido2AuthenticationMethod",
            id: p.id,
            display_name: p.display_name.clone(),
            created_date_time: p.created,
            aa_guid: p.aaguid.clone(),
            model: p.model.clone(),
            attestation_certificates: Vec::new(),
            attestation_level: if p.attestation_level == AttestationLevel::Attested {
                "attested"
            } else {
                "notAttested"
            },
            attestation_type: p.attestation_level.as_str(),
            passkey_type: if p.backup_eligible {
                "synced"
            } else {
                "deviceBound"
            },
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
            last_used_date_time: p.last_used,
        }
    }
}

/// A finished passkey sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub passkey: Fido2Method,
    pub session: AuthSession,
    /// The token for a new session's cookie; `None` when an existing session was extended.
    pub new_token: Option<String>,
}

/// A passkey sign-in verified and not yet stored (see [`Passkeys::stage_sign_in`]).
pub struct StagedSignIn {
    pub signed_in: SignedIn,
    /// The challenge used up, the counter moved forward, the session started or extended.
    pub changes: Vec<Change>,
    ceremony_id: Uuid,
    stored: StoredPasskey,
}

/// The passkey service. Cheap to clone.
#[derive(Clone)]
pub struct Passkeys {
    inner: Arc<Inner>,
}

struct Inner {
    deps: Deps<dyn MethodStore>,
    store: Arc<dyn PasskeyStore>,
    webauthn: Webauthn,
    /// The same relying party for the ES256 fast path (see [`es256`]).
    relying_party: es256::RelyingParty,
    roots: TrustedAttestationRoots,
    /// Derives the decoy credential ids shown for usernames without passkeys (see
    /// [`Passkeys::start_sign_in`]); the same on every node.
    decoy_key: [u8; 32],
    /// When this node last swept expired ceremonies (unix milliseconds).
    last_sweep: AtomicI64,
    /// Asked before the passkey (FIDO2) method policy changes: the lockout guard, set by the
    /// composition root with [`Passkeys::with_policy_check`].
    policy_check: std::sync::OnceLock<Arc<dyn PasskeyPolicyCheck>>,
}

/// What [`Passkeys::policy_change_impact`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyPolicyImpact {
    /// Passkeys registered, by everyone.
    pub registered: u64,
    /// Of those, the ones that work today and would not after the change.
    pub stopped: u64,
    /// The people those belong to.
    pub people: u64,
}

/// A check on a change to the passkey (FIDO2) method policy, given the policy before and after.
/// The lockout guard (`crate::guard`) implements it: turning passkeys off, or an AAGUID list
/// that leaves out the models administrators registered, can lock them out.
#[async_trait::async_trait]
pub trait PasskeyPolicyCheck: Send + Sync {
    async fn check_passkey_policy_change(
        &self,
        actor: &Actor,
        request: &RequestContext,
        before: &Fido2Policy,
        after: &Fido2Policy,
    ) -> Result<()>;
}

/// How often a node sweeps expired ceremonies as new ones start.
const SWEEP_INTERVAL: time::Duration = time::Duration::minutes(1);

/// The decoy `allowCredentials` for a username without passkeys: one or two credential ids of
/// the lengths real authenticators use (16 to 64 bytes), each derived from the lower-cased
/// username under `key`, so the same name always gets the same ids.
fn decoy_credentials(key: &[u8; 32], username: &str) -> Vec<Value> {
    use base64::Engine as _;

    use crate::kernel::crypto::keyed_hash;
    let name = username.to_lowercase();
    let seed = keyed_hash(key, name.as_bytes());
    let count = 1 + usize::from(seed[0] % 2);
    (0..count)
        .map(|i| {
            let part = |label: &str| keyed_hash(key, format!("{label}:{i}:{name}").as_bytes());
            let mut id = part("a").to_vec();
            id.extend_from_slice(&part("b"));
            id.truncate([16, 20, 32, 64][usize::from(seed[1 + i] % 4)]);
            serde_json::json!({
                "type": "public-key",
                "id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&id),
            })
        })
        .collect()
}

fn code(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Invalid {
        code,
        target: None,
        message: message.into(),
    }
}

fn credential_error(c: ErrorCode, message: impl Into<String>) -> Error {
    Error::Invalid {
        code: c,
        target: Some("credential".into()),
        message: message.into(),
    }
}

/// webauthn-rs's verdicts in the caller's words, each with its own stable code.
fn ceremony_error(e: WebauthnError) -> Error {
    use WebauthnError as W;
    match e {
        W::InvalidRPOrigin | W::CredentialCrossOrigin => credential_error(
            ErrorCode::PasskeyOriginMismatch,
            "The passkey was used on a different site (origin) than this one.",
        ),
        W::InvalidRPIDHash => credential_error(
            ErrorCode::PasskeyRpIdMismatch,
            "The passkey belongs to a different relying party (RP ID hash mismatch).",
        ),
        W::MismatchedChallenge => credential_error(
            ErrorCode::PasskeyChallengeMismatch,
            "The passkey answered a different challenge than this ceremony's.",
        ),
        W::UserNotVerified => credential_error(
            ErrorCode::PasskeyUserNotVerified,
            "The authenticator did not verify the person (PIN or biometrics); user verification is required.",
        ),
        W::UserNotPresent => credential_error(
            ErrorCode::PasskeyUserNotPresent,
            "The authenticator did not confirm the person's presence.",
        ),
        W::CredentialPossibleCompromise => credential_error(
            ErrorCode::PasskeyCounterRegressed,
            "The passkey's signature counter went backwards: the authenticator may have been cloned. Sign-in refused.",
        ),
        W::CredentialNotFound => credential_error(
            ErrorCode::PasskeyNotRegistered,
            "This passkey is not registered for the account.",
        ),
        W::InvalidClientDataType
        | W::ParseBase64Failure(_)
        | W::ParseCBORFailure(_)
        | W::ParseJSONFailure(_)
        | W::ParseNOMFailure
        | W::ParseInsufficientBytesAvailable
        | W::MissingAttestationCredentialData
        | W::AttestationStatementMapInvalid
        | W::COSEKeyInvalidCBORValue
        | W::COSEKeyInvalidType => credential_error(
            ErrorCode::PasskeyMalformed,
            format!("The passkey response is malformed ({e})."),
        ),
        W::CredentialAlteredAlgFromRequest | W::CredentialExcludedFromRequest => credential_error(
            ErrorCode::PasskeyAlreadyRegistered,
            "This passkey is already registered, or does not use an algorithm that was offered.",
        ),
        W::AttestationNotSupported => credential_error(
            ErrorCode::PasskeyAttestationUnsupported,
            "The passkey's attestation format is not supported.",
        ),
        other => credential_error(
            ErrorCode::PasskeyVerificationFailed,
            format!("The passkey response did not verify ({other})."),
        ),
    }
}

fn parse_credential<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| {
        credential_error(
            ErrorCode::PasskeyMalformed,
            format!("The credential is not a WebAuthn public key credential in JSON form: {e}"),
        )
    })
}

fn to_text<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot serialize: {e}")))
}

fn from_text<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("stored {what} unreadable: {e}")))
}

/// The AAGUID in a registration's authenticator data (bytes 37..53), which the attestation
/// signature covers. Called only after webauthn-rs accepted the attestation object.
fn aaguid_of(attestation_object: &[u8]) -> Result<Uuid> {
    let malformed = || {
        credential_error(
            ErrorCode::PasskeyMalformed,
            "The attestation object is malformed.",
        )
    };
    let value: ciborium::Value =
        ciborium::from_reader(attestation_object).map_err(|_| malformed())?;
    let auth_data = value
        .as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_text() == Some("authData"))
                .and_then(|(_, v)| v.as_bytes())
        })
        .ok_or_else(malformed)?;
    let bytes: [u8; 16] = auth_data
        .get(37..53)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    Ok(Uuid::from_bytes(bytes))
}

/// WebAuthn's limit on a credential id (Level 3, `credentialIdLength`).
const MAX_CREDENTIAL_ID_BYTES: usize = 1023;

/// What WebAuthn requires of a registration's shape, beyond what its signature proves: a
/// `public-key` credential whose id is 1 to 1,023 bytes, and an attestation that says what it
/// is — the `none` format carries an empty statement (anything in it is a forgery of a kind
/// the verifier would otherwise skip).
fn check_registration_shape(response: &RegisterPublicKeyCredential) -> Result<()> {
    if response.type_ != "public-key" {
        return Err(Error::invalid(
            "credential.type",
            format!(
                "A passkey is a 'public-key' credential, not '{}'.",
                response.type_
            ),
        ));
    }
    let id_len = response.raw_id.len();
    if id_len == 0 || id_len > MAX_CREDENTIAL_ID_BYTES {
        return Err(Error::invalid(
            "credential.rawId",
            format!(
                "A credential id is 1 to {MAX_CREDENTIAL_ID_BYTES} bytes; this one is {id_len}."
            ),
        ));
    }
    let malformed = || {
        credential_error(
            ErrorCode::PasskeyMalformed,
            "The attestation object is malformed.",
        )
    };
    let value: ciborium::Value = ciborium::from_reader(&response.response.attestation_object[..])
        .map_err(|_| malformed())?;
    let map = value.as_map().ok_or_else(malformed)?;
    let field = |name: &str| {
        map.iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
    };
    let format = field("fmt")
        .and_then(|v| v.as_text())
        .ok_or_else(malformed)?;
    let statement = field("attStmt")
        .and_then(|v| v.as_map())
        .ok_or_else(malformed)?;
    if format == "none" && !statement.is_empty() {
        return Err(Error::invalid(
            "credential.response.attestationObject",
            "An attestation of format 'none' carries an empty statement; this one does not.",
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid("name", "Give the passkey a name."));
    }
    if trimmed.chars().count() > MAX_PASSKEY_NAME {
        return Err(Error::invalid(
            "name",
            format!("A passkey name is at most {MAX_PASSKEY_NAME} characters."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "A passkey name must not contain control characters.",
        ));
    }
    Ok(trimmed.to_string())
}

/// An audited activity: its display name, operation type and category, as Entra writes them.
#[derive(Debug, Clone, Copy)]
struct Activity {
    name: &'static str,
    operation: &'static str,
    category: &'static str,
}

const fn method_activity(name: &'static str, operation: &'static str) -> Activity {
    Activity {
        name,
        operation,
        category: "UserManagement",
    }
}

const USER_REGISTERED: Activity = method_activity("User registered security info", "Add");
const USER_UPDATED: Activity = method_activity("User updated security info", "Update");
const USER_DELETED: Activity = method_activity("User deleted security info", "Delete");
const ADMIN_UPDATED: Activity = method_activity("Admin updated security info", "Update");
const ADMIN_DELETED: Activity = method_activity("Admin deleted security info", "Delete");
const POSSIBLE_CLONE: Activity = method_activity(
    "Passkey sign-in refused: possibly cloned authenticator",
    "Other",
);
const POLICY_UPDATED: Activity = Activity {
    name: "Authentication Methods Policy Update",
    operation: "Update",
    category: "ApplicationManagement",
};

fn user_actor(user: &User) -> Actor {
    Actor::User {
        id: user.id,
        user_principal_name: user.user_principal_name.clone(),
    }
}

impl Passkeys {
    /// The service for a server reached at `public_url`: the RP ID is its host name, the only
    /// accepted origin the URL itself.
    pub fn new(
        deps: Deps<dyn MethodStore>,
        store: Arc<dyn PasskeyStore>,
        public_url: &str,
        roots: TrustedAttestationRoots,
        decoy_key: [u8; 32],
    ) -> Result<Self> {
        let origin = Url::parse(public_url)
            .map_err(|e| Error::invalid("public_url", format!("not a URL: {e}")))?;
        let rp_id = origin
            .host_str()
            .ok_or_else(|| Error::invalid("public_url", "the public URL has no host name"))?
            .to_string();
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| {
                b.rp_name("Portcullis")
                    .timeout(std::time::Duration::from_secs(
                        CEREMONY_LIFETIME.whole_seconds().unsigned_abs(),
                    ))
                    .build()
            })
            .map_err(|e| {
                Error::invalid(
                    "public_url",
                    format!("passkeys need a public URL whose host is a domain name ({e})"),
                )
            })?;
        Ok(Passkeys {
            inner: Arc::new(Inner {
                deps,
                store,
                webauthn,
                relying_party: es256::RelyingParty::new(&rp_id, origin.clone()),
                roots,
                decoy_key,
                last_sweep: AtomicI64::new(0),
                policy_check: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Every change to the passkey method policy is checked by `check` before it is
    /// committed. Set once, while the composition root builds the services; a second call
    /// changes nothing.
    /// Whether any passkey can prove its model here: false when no attestation root is
    /// trusted, so that a policy enforcing attestation admits no new passkey.
    pub fn can_attest(&self) -> bool {
        !self.inner.roots.is_empty()
    }

    pub fn with_policy_check(self, check: Arc<dyn PasskeyPolicyCheck>) -> Self {
        let _ = self.inner.policy_check.set(check);
        self
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.deps.clock.now()
    }

    fn store(&self) -> &dyn PasskeyStore {
        self.inner.store.as_ref()
    }

    fn audit(
        &self,
        actor: &Actor,
        request: &RequestContext,
        activity: Activity,
        targets: Vec<TargetResource>,
        details: Vec<KeyValue>,
    ) -> DirectoryAudit {
        DirectoryAudit {
            id: self.inner.deps.entropy.uuid(),
            category: activity.category.to_string(),
            correlation_id: request.correlation_id,
            result: "success".to_string(),
            result_reason: String::new(),
            activity_display_name: activity.name.to_string(),
            activity_date_time: self.now(),
            logged_by_service: AUTH_METHODS_SERVICE.to_string(),
            operation_type: activity.operation.to_string(),
            initiated_by: AuditActivityInitiator::from_actor(actor, request.ip_address.clone()),
            target_resources: targets,
            additional_details: details,
        }
    }

    fn method_audit(
        &self,
        actor: &Actor,
        request: &RequestContext,
        activity: Activity,
        user: &User,
        passkey: &StoredPasskey,
        modified: Option<(&Value, &Value)>,
    ) -> DirectoryAudit {
        let mut target = TargetResource::new("User", user.id, user.display_name.clone())
            .with_upn(&user.user_principal_name);
        if let Some((old, new)) = modified {
            target = target.modified("displayName", Some(old), Some(new));
        }
        self.audit(
            actor,
            request,
            activity,
            vec![target],
            vec![
                KeyValue {
                    key: "Method".into(),
                    value: "Passkey (FIDO2)".into(),
                },
                KeyValue {
                    key: "MethodId".into(),
                    value: passkey.id.to_string(),
                },
                KeyValue {
                    key: "AAGUID".into(),
                    value: passkey.aaguid.clone(),
                },
            ],
        )
    }

    // --- the method policy -------------------------------------------------------------

    /// The policy in force: the stored configuration, or the defaults.
    pub async fn policy(&self) -> Result<Fido2Policy> {
        match self
            .inner
            .deps
            .store
            .document(
                DocumentKind::AuthenticationMethodConfiguration,
                FIDO2_CONFIGURATION_ID,
            )
            .await?
        {
            Some(doc) => Fido2Policy::from_stored(&doc.body),
            None => Ok(Fido2Policy::default()),
        }
    }

    /// `GET …/authenticationMethodConfigurations/fido2`.
    pub async fn configuration(&self, _grant: &Granted<ReadPolicies>) -> Result<Value> {
        Ok(self.policy().await?.to_graph())
    }

    /// What a change to the passkey policy (`patch`, as the PATCH would apply it) would do to
    /// the passkeys people have registered: how many would stop working, of how many people.
    /// Judged by the method's state and the model (AAGUID) rules; group targets are left out,
    /// so a person the policy does not target is counted as if it did. Nothing is changed.
    pub async fn policy_change_impact(
        &self,
        _grant: &Granted<ReadUserMethods>,
        patch: &Value,
    ) -> Result<PasskeyPolicyImpact> {
        let current = self.policy().await?;
        let next = current.patched(patch)?;
        let works = |policy: &Fido2Policy, aaguid: &str| {
            policy.state == policy::MethodState::Enabled && policy.allows_model(aaguid).is_ok()
        };
        let mut impact = PasskeyPolicyImpact::default();
        let mut people = std::collections::HashSet::new();
        for (user, aaguid) in self.inner.store.passkey_models().await? {
            impact.registered += 1;
            if works(&current, &aaguid) && !works(&next, &aaguid) {
                impact.stopped += 1;
                people.insert(user);
            }
        }
        impact.people = people.len() as u64;
        Ok(impact)
    }

    /// `PATCH …/authenticationMethodConfigurations/fido2`: validates, stores, audits.
    pub async fn update_configuration(
        &self,
        grant: &Granted<WriteAuthenticationMethodPolicy>,
        request: &RequestContext,
        patch: &Value,
    ) -> Result<Value> {
        crate::directory::references::retrying(|| {
            self.try_update_configuration(grant, request, patch)
        })
        .await
    }

    async fn try_update_configuration(
        &self,
        grant: &Granted<WriteAuthenticationMethodPolicy>,
        request: &RequestContext,
        patch: &Value,
    ) -> Result<Value> {
        let deps = &self.inner.deps;
        // Read first: a group deleted on any node after the check below fails the commit.
        let precondition = crate::directory::references::precondition(deps.store.as_ref()).await?;
        let existing = deps
            .store
            .document(
                DocumentKind::AuthenticationMethodConfiguration,
                FIDO2_CONFIGURATION_ID,
            )
            .await?;
        let current = match &existing {
            Some(doc) => Fido2Policy::from_stored(&doc.body)?,
            None => Fido2Policy::default(),
        };
        let next = current.patched(patch)?;
        let old_json = current.to_graph();
        let new_json = next.to_graph();
        let mut target = TargetResource::new("Policy", "Fido2", "Passkey (FIDO2)");
        if let (Value::Object(old), Value::Object(new)) = (&old_json, &new_json) {
            for (k, v) in new {
                if old.get(k) != Some(v) {
                    target = target.modified(k, old.get(k), Some(v));
                }
            }
        }
        let audit = self.audit(
            grant.actor(),
            request,
            POLICY_UPDATED,
            vec![target],
            Vec::new(),
        );
        if let Some(check) = self.inner.policy_check.get()
            && let Err(e) = check
                .check_passkey_policy_change(grant.actor(), request, &current, &next)
                .await
        {
            // The lockout guard's refusal is an administrator's attempt the audit log keeps,
            // as it keeps the same guard's refusals of Conditional Access changes.
            return Err(
                crate::directory::audit::record_refusal(deps.store.as_ref(), audit, e).await,
            );
        }
        // A target that names nothing would leave the method on for nobody (or excluded from
        // nobody): refused, so that a typo cannot turn passkeys off for everyone.
        crate::methods::config::check_targets(
            deps.store.as_ref(),
            &serde_json::to_value(next.to_graph()).unwrap_or_default(),
        )
        .await?;
        let now = self.now();
        let document = PolicyDocument {
            kind: DocumentKind::AuthenticationMethodConfiguration,
            id: FIDO2_CONFIGURATION_ID.to_string(),
            display_name: "Passkey (FIDO2)".to_string(),
            body: new_json.clone(),
            created: existing.as_ref().map(|d| d.created).unwrap_or(now),
            modified: now,
        };
        let change = if existing.is_some() {
            Change::from(DirectoryChange::UpdateDocument(document))
        } else {
            Change::from(DirectoryChange::InsertDocument(document))
        };
        let changes = std::iter::once(change)
            .chain(precondition.map(Change::from))
            .collect();
        deps.store.commit(changes, Some(audit)).await?;
        Ok(new_json)
    }

    /// Whether the policy lets this person use passkeys at all.
    async fn admit(&self, policy: &Fido2Policy, user: &User) -> Result<()> {
        if !policy.targets_groups() {
            return policy.admits(&[]).map_err(Refusal::into_error);
        }
        let groups: Vec<Uuid> = self
            .inner
            .deps
            .store
            .transitive_member_of(user.id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        policy.admits(&groups).map_err(Refusal::into_error)
    }

    async fn active_user(&self, id: Uuid) -> Result<User> {
        enabled(self.inner.deps.store.user(id).await?)
    }

    // --- per-user passkeys, for administrators (Graph) ----------------------------------

    async fn resolve_user(&self, key: &str) -> Result<User> {
        let store = &self.inner.deps.store;
        let found = match Uuid::parse_str(key) {
            Ok(id) => store.user(id).await?,
            Err(_) => store.user_by_upn(key).await?,
        };
        found.ok_or_else(|| Error::not_found("user", key))
    }

    async fn owned(&self, user: &User, method_id: &str) -> Result<StoredPasskey> {
        let missing = || Error::not_found("fido2AuthenticationMethod", method_id);
        let id = Uuid::parse_str(method_id).map_err(|_| missing())?;
        match self.store().passkey(id).await? {
            Some(p) if p.user_id == user.id => Ok(p),
            _ => Err(missing()),
        }
    }

    pub async fn user_methods(
        &self,
        _grant: &Granted<ReadUserMethods>,
        user_key: &str,
    ) -> Result<Vec<Fido2Method>> {
        let user = self.resolve_user(user_key).await?;
        let list = self.store().passkeys_of(user.id).await?;
        Ok(list.iter().map(Fido2Method::from).collect())
    }

    pub async fn user_method(
        &self,
        _grant: &Granted<ReadUserMethods>,
        user_key: &str,
        method_id: &str,
    ) -> Result<Fido2Method> {
        let user = self.resolve_user(user_key).await?;
        Ok(Fido2Method::from(&self.owned(&user, method_id).await?))
    }

    pub async fn rename_user_method(
        &self,
        grant: &Granted<WriteUserMethods>,
        request: &RequestContext,
        user_key: &str,
        method_id: &str,
        display_name: &str,
    ) -> Result<Fido2Method> {
        let user = self.resolve_user(user_key).await?;
        self.rename(
            grant.actor(),
            ADMIN_UPDATED,
            request,
            &user,
            method_id,
            display_name,
        )
        .await
    }

    pub async fn delete_user_method(
        &self,
        grant: &Granted<WriteUserMethods>,
        request: &RequestContext,
        user_key: &str,
        method_id: &str,
    ) -> Result<()> {
        let user = self.resolve_user(user_key).await?;
        // An unknown passkey is a 404 before the tiers are asked.
        self.owned(&user, method_id).await?;
        tiers::enforce(
            &crate::narrow!(self.inner.deps, DirectoryStore),
            grant,
            request,
            SensitiveAction::DeleteMethod,
            &user,
        )
        .await?;
        self.delete(grant.actor(), ADMIN_DELETED, request, &user, method_id)
            .await
    }

    async fn rename(
        &self,
        actor: &Actor,
        activity: Activity,
        request: &RequestContext,
        user: &User,
        method_id: &str,
        display_name: &str,
    ) -> Result<Fido2Method> {
        let name = check_name(display_name).map_err(|_| {
            Error::invalid(
                "displayName",
                format!("displayName must be 1 to {MAX_PASSKEY_NAME} characters, without control characters."),
            )
        })?;
        let mut passkey = self.owned(user, method_id).await?;
        let audit = self.method_audit(
            actor,
            request,
            activity,
            user,
            &passkey,
            Some((
                &Value::from(passkey.display_name.clone()),
                &Value::from(name.clone()),
            )),
        );
        self.store()
            .rename_passkey(user.id, passkey.id, &name, audit)
            .await?;
        passkey.display_name = name;
        Ok(Fido2Method::from(&passkey))
    }

    async fn delete(
        &self,
        actor: &Actor,
        activity: Activity,
        request: &RequestContext,
        user: &User,
        method_id: &str,
    ) -> Result<()> {
        let passkey = self.owned(user, method_id).await?;
        let audit = self.method_audit(actor, request, activity, user, &passkey, None);
        self.store()
            .delete_passkey(user.id, passkey.id, self.now(), audit)
            .await
    }

    // --- a person's own passkeys (security info) -----------------------------------------

    pub async fn my_passkeys(&self, session: &AuthSession) -> Result<Vec<Fido2Method>> {
        let user = self.active_user(session.user_id).await?;
        let list = self.store().passkeys_of(user.id).await?;
        Ok(list.iter().map(Fido2Method::from).collect())
    }

    pub async fn rename_my_passkey(
        &self,
        session: &AuthSession,
        request: &RequestContext,
        method_id: &str,
        display_name: &str,
    ) -> Result<Fido2Method> {
        let user = self.active_user(session.user_id).await?;
        self.rename(
            &user_actor(&user),
            USER_UPDATED,
            request,
            &user,
            method_id,
            display_name,
        )
        .await
    }

    /// Removing a way in needs the same recent sign-in as adding one: a stolen, stale session
    /// must not be able to strip a person's passkeys.
    pub async fn delete_my_passkey(
        &self,
        session: &AuthSession,
        request: &RequestContext,
        method_id: &str,
    ) -> Result<()> {
        session.may_register_methods(self.now())?;
        let user = self.active_user(session.user_id).await?;
        self.delete(&user_actor(&user), USER_DELETED, request, &user, method_id)
            .await
    }

    // --- ceremonies ------------------------------------------------------------------------

    async fn begin(
        &self,
        kind: CeremonyKind,
        user_id: Option<Uuid>,
        state: String,
        options: Value,
    ) -> Result<CeremonyOptions> {
        let now = self.now();
        // Expired ceremonies are swept as new ones start, so the table stays small without a
        // scheduler, but at most once a minute per node: sweeping on every start was one more
        // write queued on the database's writer per sign-in (BENCHMARKS.md). An expired
        // ceremony left in the table until then is refused by `take` all the same. A failure
        // here must not stop the sign-in.
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let last = self.inner.last_sweep.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= SWEEP_INTERVAL.whole_milliseconds() as i64;
        if due
            && self
                .inner
                .last_sweep
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Err(e) = self.store().delete_expired_ceremonies(now).await
        {
            tracing::warn!(error = %e, "could not sweep expired passkey ceremonies");
        }
        let ceremony = Ceremony {
            id: self.inner.deps.entropy.uuid(),
            kind,
            user_id,
            state,
            expires: now + CEREMONY_LIFETIME,
        };
        self.store().insert_ceremony(&ceremony).await?;
        Ok(CeremonyOptions {
            ceremony_id: ceremony.id,
            options,
            expires_date_time: ceremony.expires,
            model_restriction: None,
        })
    }

    /// Consumes a ceremony: once, unexpired, of an expected kind.
    async fn take(&self, id: Uuid, kinds: &[CeremonyKind]) -> Result<Ceremony> {
        self.checked(self.store().take_ceremony(id).await?, kinds)
    }

    /// Reads a ceremony with the same checks, leaving it to be taken by the transaction that
    /// stores what it led to ([`Change::TakeCeremony`]).
    async fn peek(&self, id: Uuid, kinds: &[CeremonyKind]) -> Result<Ceremony> {
        self.checked(self.store().ceremony(id).await?, kinds)
    }

    fn checked(&self, found: Option<Ceremony>, kinds: &[CeremonyKind]) -> Result<Ceremony> {
        let ceremony = found.ok_or_else(|| {
            code(
                ErrorCode::PasskeyChallengeNotFound,
                "This passkey challenge is unknown or was already used; start again.",
            )
        })?;
        if ceremony.expires <= self.now() {
            return Err(code(
                ErrorCode::PasskeyChallengeExpired,
                "This passkey challenge expired (they last 5 minutes); start again.",
            ));
        }
        if !kinds.contains(&ceremony.kind) {
            return Err(code(
                ErrorCode::PasskeyChallengeNotFound,
                "This passkey challenge was started for something else; start again.",
            ));
        }
        Ok(ceremony)
    }

    /// Starts adding a passkey for the session's person.
    pub async fn start_registration(
        &self,
        session: &AuthSession,
        device: RegistrationDevice,
    ) -> Result<CeremonyOptions> {
        session.may_register_methods(self.now())?;
        let user = self.active_user(session.user_id).await?;
        let policy = self.policy().await?;
        self.admit(&policy, &user).await?;
        if !policy.is_self_service_registration_allowed {
            return Err(Refusal::SelfServiceNotAllowed.into_error());
        }
        if policy.is_attestation_enforced && device == RegistrationDevice::Another {
            // As in Entra: phones answering the browser's cross-device request send no
            // attestation, so with attestation enforced the QR-code path can only end in a
            // refusal. Say so before the person walks through it.
            return Err(code(
                ErrorCode::PasskeyCrossDeviceNeedsAttestation,
                "This organization requires attested passkeys, and a passkey created on another device through the browser carries no attestation. Create it on this device instead.",
            ));
        }
        let existing = self.store().passkeys_of(user.id).await?;
        if existing.len() >= MAX_PASSKEYS_PER_USER {
            return Err(limit_reached());
        }
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect();
        let (challenge, state) = self
            .inner
            .webauthn
            .start_passkey_registration(
                user.id,
                &user.user_principal_name,
                &user.display_name,
                Some(exclude),
            )
            .map_err(|e| Error::Internal(format!("cannot start passkey registration: {e}")))?;
        let mut options = serde_json::to_value(&challenge)
            .map_err(|e| Error::Internal(format!("cannot serialize options: {e}")))?;
        // webauthn-rs's passkey defaults ask for no attestation and a non-resident key; this
        // server needs discoverable credentials and wants the attestation to judge the model.
        let public_key = &mut options["publicKey"];
        public_key["attestation"] = Value::from("direct");
        let attachment = match device {
            RegistrationDevice::This => "platform",
            RegistrationDevice::Another => "cross-platform",
        };
        public_key["authenticatorSelection"] = serde_json::json!({
            "authenticatorAttachment": attachment,
            "residentKey": "required",
            "requireResidentKey": true,
            "userVerification": "required",
        });
        match device {
            // "hybrid" makes the browser offer its QR code for a phone or tablet at once.
            RegistrationDevice::Another => public_key["hints"] = serde_json::json!(["hybrid"]),
            RegistrationDevice::This => public_key["hints"] = serde_json::json!(["client-device"]),
        }
        let mut ceremony = self
            .begin(
                CeremonyKind::Registration,
                Some(user.id),
                to_text(&state)?,
                options,
            )
            .await?;
        let restrictions = &policy.key_restrictions;
        ceremony.model_restriction = restrictions.is_enforced.then(|| ModelRestriction {
            enforcement_type: restrictions.enforcement_type,
            aa_guids: restrictions
                .aa_guids
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
        });
        Ok(ceremony)
    }

    /// Finishes adding a passkey: verifies the response, judges its model and attestation
    /// against the policy, and stores it with its name.
    pub async fn finish_registration(
        &self,
        session: &AuthSession,
        request: &RequestContext,
        ceremony_id: Uuid,
        name: &str,
        credential: &Value,
    ) -> Result<Fido2Method> {
        let now = self.now();
        session.may_register_methods(now)?;
        let display_name = check_name(name)?;
        let response: RegisterPublicKeyCredential = parse_credential(credential)?;
        // Checked before the ceremony is taken: a malformed credential changes nothing.
        check_registration_shape(&response)?;
        let ceremony = self
            .take(ceremony_id, &[CeremonyKind::Registration])
            .await?;
        if ceremony.user_id != Some(session.user_id) {
            return Err(code(
                ErrorCode::PasskeyChallengeNotFound,
                "This passkey challenge was started by someone else; start again.",
            ));
        }
        let state: PasskeyRegistration = from_text("registration state", &ceremony.state)?;
        let passkey = self
            .inner
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(ceremony_error)?;
        let aaguid = aaguid_of(&response.response.attestation_object)?;
        let aaguid_text = aaguid.hyphenated().to_string();

        // The policy may have changed while the person was at their authenticator.
        let user = self.active_user(session.user_id).await?;
        let policy = self.policy().await?;
        self.admit(&policy, &user).await?;
        if !policy.is_self_service_registration_allowed {
            return Err(Refusal::SelfServiceNotAllowed.into_error());
        }
        let credential_internals: Credential = passkey.clone().into();
        let assessment = self.inner.roots.assess(&credential_internals, aaguid);
        if policy.is_attestation_enforced && assessment.level != AttestationLevel::Attested {
            return Err(credential_error(
                ErrorCode::PasskeyAttestationRequired,
                format!(
                    "This organization requires passkeys whose model is proven by attestation. {}",
                    assessment.shortfall.unwrap_or_default()
                ),
            ));
        }
        policy
            .allows_model(&aaguid_text)
            .map_err(Refusal::into_error)?;

        let stored = StoredPasskey {
            id: self.inner.deps.entropy.uuid(),
            user_id: user.id,
            credential_id: passkey.cred_id().to_vec(),
            display_name,
            aaguid: aaguid_text,
            model: self.inner.roots.model(aaguid),
            attestation_level: assessment.level,
            backup_eligible: credential_internals.backup_eligible,
            backup_state: credential_internals.backup_state,
            sign_count: credential_internals.counter,
            credential: to_text(&passkey)?,
            created: now,
            last_used: None,
        };
        let audit = self.method_audit(
            &user_actor(&user),
            request,
            USER_REGISTERED,
            &user,
            &stored,
            None,
        );
        self.store()
            .insert_passkey(&stored, MAX_PASSKEYS_PER_USER, audit)
            .await?;
        Ok(Fido2Method::from(&stored))
    }

    /// Starts a sign-in. Without a username the authenticator chooses (discoverable), and
    /// `conditional` asks the browser for autofill (conditional mediation). With a username the
    /// options list that person's passkeys (`allowCredentials`); for a username that is unknown
    /// or has no passkey they list decoys instead — credential ids derived from the username
    /// with a server secret, so the same name always gets the same ids on every node, shaped
    /// like real ones — after the same reads a real answer makes. So the answer never tells
    /// whether an account exists or has a passkey. An assertion against a decoy cannot
    /// succeed: no authenticator holds those credentials.
    pub async fn start_sign_in(
        &self,
        username: Option<&str>,
        conditional: bool,
    ) -> Result<CeremonyOptions> {
        let store = &self.inner.deps.store;
        let Some(name) = username.map(str::trim).filter(|u| !u.is_empty()) else {
            return self.start_discoverable(conditional, Vec::new()).await;
        };
        let user = store.user_by_upn(name).await?;
        // Read a person's passkeys whether or not the account exists, so both answers cost the
        // same reads.
        let stored = self
            .store()
            .passkeys_of(user.as_ref().map_or(Uuid::nil(), |u| u.id))
            .await?;
        if let Some(user) = user.filter(|_| !stored.is_empty()) {
            let passkeys: Vec<Passkey> = stored
                .iter()
                .map(|p| from_text("passkey", &p.credential))
                .collect::<Result<_>>()?;
            let (challenge, state) = self
                .inner
                .webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| Error::Internal(format!("cannot start sign-in: {e}")))?;
            let options = serde_json::to_value(&challenge)
                .map_err(|e| Error::Internal(format!("cannot serialize options: {e}")))?;
            return self
                .begin(
                    CeremonyKind::Authentication,
                    Some(user.id),
                    to_text(&state)?,
                    options,
                )
                .await;
        }
        self.start_discoverable(false, decoy_credentials(&self.inner.decoy_key, name))
            .await
    }

    /// A discoverable sign-in; with `allow`, its options name those credentials (decoys).
    async fn start_discoverable(
        &self,
        conditional: bool,
        allow: Vec<Value>,
    ) -> Result<CeremonyOptions> {
        let (mut challenge, state) = self
            .inner
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| Error::Internal(format!("cannot start sign-in: {e}")))?;
        if !conditional {
            // webauthn-rs always asks for conditional mediation; a "Sign in with a passkey"
            // button wants the ordinary modal prompt.
            challenge.mediation = None;
        }
        let mut options = serde_json::to_value(&challenge)
            .map_err(|e| Error::Internal(format!("cannot serialize options: {e}")))?;
        if !allow.is_empty() {
            // Shaped as webauthn-rs shapes a real person's options, which ask for no
            // extension (a discoverable sign-in asks for `uvm`).
            options["publicKey"]["allowCredentials"] = Value::Array(allow);
            if let Some(public_key) = options["publicKey"].as_object_mut() {
                public_key.remove("extensions");
            }
        }
        self.begin(
            CeremonyKind::DiscoverableAuthentication,
            None,
            to_text(&state)?,
            options,
        )
        .await
    }

    /// Finishes a sign-in: verifies the assertion, applies the policy to the person and to the
    /// passkey's model, advances the signature counter (refusing a counter that did not move
    /// forward: a possibly cloned authenticator), and starts or extends the session.
    ///
    /// Every attempt — refused or not — writes a sign-in log entry saying why; if the entry
    /// cannot be written the sign-in fails, so no attempt goes unlogged.
    pub async fn finish_sign_in(
        &self,
        facts: &RequestFacts,
        ceremony_id: Uuid,
        credential: &Value,
        current: Option<&AuthSession>,
    ) -> Result<SignedIn> {
        let staged = self
            .stage_sign_in(facts, ceremony_id, credential, current)
            .await?;
        // The success's log entry goes in with what it changed: no sign-in without its entry.
        let mut changes = staged.changes.clone();
        if let Some(entry) = sign_in::first_factor_entry(
            &self.inner.deps,
            Self::attempt(facts, Some(&staged.signed_in.user), None),
        ) {
            changes.push(Change::from(LogChange::InsertSignInLogEntry(Box::new(
                entry,
            ))));
        }
        if let Err(e) = self.inner.deps.store.commit(changes, None).await {
            return Err(self.settle_failure(facts, &staged, e).await);
        }
        Ok(staged.signed_in)
    }

    /// Verifies an assertion and decides everything a successful sign-in changes, without
    /// storing it: the caller commits [`StagedSignIn::changes`] together with its own (a sign-in
    /// flow's step, its log entry, an authorization code) in one transaction, and hands a
    /// failure of that commit to [`Passkeys::settle_failure`]. A refused assertion is logged
    /// here, and its challenge used up, as a stored one would be.
    pub async fn stage_sign_in(
        &self,
        facts: &RequestFacts,
        ceremony_id: Uuid,
        credential: &Value,
        current: Option<&AuthSession>,
    ) -> Result<StagedSignIn> {
        let mut owner = None;
        let outcome = self
            .verify_sign_in(facts, ceremony_id, credential, current, &mut owner)
            .await;
        if let Err(e) = &outcome {
            self.discard_ceremony(ceremony_id).await;
            self.log_attempt(facts, owner.as_ref(), Some(e)).await?;
        }
        outcome
    }

    /// Uses up a staged sign-in's challenge when the caller refuses the sign-in for its own
    /// reasons (another account, not the passkey just registered), so it cannot be tried again.
    pub async fn discard(&self, staged: &StagedSignIn) {
        self.discard_ceremony(staged.ceremony_id).await;
    }

    async fn discard_ceremony(&self, ceremony_id: Uuid) {
        if let Err(e) = self.store().take_ceremony(ceremony_id).await {
            tracing::warn!(error = %e, "could not remove a refused passkey challenge");
        }
    }

    /// What a failed commit of a staged sign-in means: a counter that another sign-in moved
    /// first is a possibly cloned authenticator (audited), and a challenge used meanwhile is a
    /// replay; both are logged as failed attempts. Other errors pass through unchanged.
    pub async fn settle_failure(
        &self,
        facts: &RequestFacts,
        staged: &StagedSignIn,
        error: Error,
    ) -> Error {
        let error = match error {
            Error::Conflict { code, .. } if code == COUNTER_NOT_ADVANCED => {
                let request = RequestContext {
                    correlation_id: facts.correlation_id,
                    ip_address: facts.ip_address.clone(),
                    acknowledge_lockout: false,
                };
                self.report_possible_clone(&request, &staged.stored).await;
                ceremony_error(WebauthnError::CredentialPossibleCompromise)
            }
            Error::Conflict {
                code: ErrorCode::PasskeyChallengeNotFound,
                message,
            } => Error::Invalid {
                code: ErrorCode::PasskeyChallengeNotFound,
                target: None,
                message,
            },
            other => return other,
        };
        if let Err(e) = self
            .log_attempt(facts, Some(&staged.signed_in.user), Some(&error))
            .await
        {
            tracing::error!(error = %e, "could not log a failed passkey sign-in");
        }
        error
    }

    /// The sign-in log entry of one passkey attempt (see `sign_in::record_first_factor`
    /// for which are written inside a flow).
    async fn log_attempt(
        &self,
        facts: &RequestFacts,
        user: Option<&User>,
        failure: Option<&Error>,
    ) -> Result<()> {
        sign_in::record_first_factor(&self.inner.deps, Self::attempt(facts, user, failure))
            .await
            .map(|_| ())
    }

    fn attempt<'a>(
        facts: &'a RequestFacts,
        user: Option<&'a User>,
        failure: Option<&Error>,
    ) -> Attempt<'a> {
        Attempt {
            facts,
            user,
            typed_user_principal_name: "",
            method: MethodKind::Fido2,
            succeeded: failure.is_none(),
            error_code: PASSKEY_SIGN_IN_FAILED,
            failure_reason: failure.map(Error::public_message),
        }
    }

    async fn verify_sign_in(
        &self,
        facts: &RequestFacts,
        ceremony_id: Uuid,
        credential: &Value,
        current: Option<&AuthSession>,
        owner: &mut Option<User>,
    ) -> Result<StagedSignIn> {
        let request = &RequestContext {
            correlation_id: facts.correlation_id,
            ip_address: facts.ip_address.clone(),
            acknowledge_lockout: false,
        };
        let response: PublicKeyCredential = parse_credential(credential)?;
        let ceremony = self
            .peek(
                ceremony_id,
                &[
                    CeremonyKind::Authentication,
                    CeremonyKind::DiscoverableAuthentication,
                ],
            )
            .await?;
        let not_registered = || {
            credential_error(
                ErrorCode::PasskeyNotRegistered,
                "This passkey is not registered here (it may have been removed).",
            )
        };
        let (stored, found_owner) = self
            .store()
            .passkey_and_owner(&response.raw_id)
            .await?
            .ok_or_else(not_registered)?;
        // The passkey of a deleted user (kept for a restore) signs nobody in: to sign-in it
        // is not registered, as it was not before deleted users were kept.
        if found_owner.is_none() {
            return Err(not_registered());
        }
        *owner = found_owner;
        let passkey: Passkey = from_text("passkey", &stored.credential)?;
        let webauthn = &self.inner.webauthn;
        let rp = &self.inner.relying_party;
        let internals: Credential = passkey.clone().into();
        // ES256 keys: the same checks as webauthn-rs with ring's signature arithmetic (see
        // `es256`); any other key, or a state it cannot read, goes to webauthn-rs.
        let fast = |kind| {
            es256::verify(rp, kind, &ceremony.state, &response, &internals)
                .map(|r| r.map(|v| Passkey::from(v.credential)))
        };
        let verified: std::result::Result<Passkey, WebauthnError> = match ceremony.kind {
            CeremonyKind::Authentication => {
                if ceremony.user_id != Some(stored.user_id) {
                    return Err(not_registered());
                }
                match fast(es256::Ceremony::AllowList) {
                    Some(r) => r,
                    None => {
                        let state: PasskeyAuthentication =
                            from_text("sign-in state", &ceremony.state)?;
                        webauthn
                            .finish_passkey_authentication(&response, &state)
                            .map(|r| updated(&passkey, &r))
                    }
                }
            }
            _ => {
                let (handle, _) = webauthn
                    .identify_discoverable_authentication(&response)
                    .map_err(|_| {
                        credential_error(
                            ErrorCode::PasskeyMalformed,
                            "The passkey response does not name its account (userHandle).",
                        )
                    })?;
                if handle != stored.user_id {
                    return Err(not_registered());
                }
                match fast(es256::Ceremony::Discoverable) {
                    Some(r) => r,
                    None => {
                        let state: DiscoverableAuthentication =
                            from_text("sign-in state", &ceremony.state)?;
                        webauthn
                            .finish_discoverable_authentication_v2(&response, state, &internals)
                            .map(|r| updated(&passkey, &r))
                    }
                }
            }
        };
        let updated = match verified {
            Ok(p) => p,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.report_possible_clone(request, &stored).await;
                return Err(ceremony_error(WebauthnError::CredentialPossibleCompromise));
            }
            Err(e) => return Err(ceremony_error(e)),
        };

        // The owner was read before the check so a failure can be logged under their name.
        let user = enabled(owner.clone())?;
        let policy = self.policy().await?;
        self.admit(&policy, &user).await?;
        if let Err(refusal) = policy.allows_model(&stored.aaguid) {
            tracing::info!(user_id = %user.id, passkey_id = %stored.id, aaguid = %stored.aaguid,
                "passkey sign-in refused: the key restrictions no longer allow this model");
            return Err(refusal.into_error());
        }

        let now = self.now();
        let internals: Credential = updated.clone().into();
        let used = PasskeyUse {
            id: stored.id,
            sign_count: internals.counter,
            backup_eligible: internals.backup_eligible,
            backup_state: internals.backup_state,
            credential: to_text(&updated)?,
            at: now,
        };
        let method = SessionMethod {
            method: MethodKind::Fido2,
            at: now,
            aaguid: Some(stored.aaguid.clone()),
            credential_id: Some(stored.id.to_string()),
            one_time: false,
            backup_eligible: stored.backup_eligible,
        };
        let deps = &self.inner.deps;
        let mut changes = vec![
            Change::TakeCeremony(ceremony_id),
            Change::RecordPasskeyUse(used.clone()),
        ];
        let (session, new_token) = match current.filter(|s| s.user_id == user.id) {
            Some(existing) => {
                changes.push(Change::from(SessionChange::AddSessionMethod {
                    session_id: existing.id,
                    method: method.clone(),
                }));
                let mut session = existing.clone();
                session.methods.push(method);
                (session, None)
            }
            None => {
                let (session, token) = new_session(deps, user.id, method);
                changes.push(Change::from(SessionChange::InsertSession(session.clone())));
                (session, Some(token))
            }
        };
        let mut shown = stored.clone();
        shown.sign_count = used.sign_count;
        shown.backup_eligible = used.backup_eligible;
        shown.backup_state = used.backup_state;
        shown.last_used = Some(now);
        Ok(StagedSignIn {
            signed_in: SignedIn {
                user,
                passkey: Fido2Method::from(&shown),
                session,
                new_token,
            },
            changes,
            ceremony_id,
            stored,
        })
    }

    /// A signature counter that did not advance means two copies of the private key may
    /// exist. The sign-in is refused; the event goes to the log and to the audit trail so an
    /// administrator sees it, and nothing about the passkey changes.
    async fn report_possible_clone(&self, request: &RequestContext, passkey: &StoredPasskey) {
        tracing::warn!(
            user_id = %passkey.user_id,
            passkey_id = %passkey.id,
            aaguid = %passkey.aaguid,
            stored_sign_count = passkey.sign_count,
            "passkey sign-in refused: signature counter did not advance; possibly cloned authenticator"
        );
        let user = self
            .inner
            .deps
            .store
            .user(passkey.user_id)
            .await
            .ok()
            .flatten();
        let Some(user) = user else { return };
        let mut audit = self.method_audit(
            &user_actor(&user),
            request,
            POSSIBLE_CLONE,
            &user,
            passkey,
            None,
        );
        audit.result = "failure".into();
        audit.result_reason =
            "The passkey's signature counter did not advance; the authenticator may have been cloned."
                .into();
        if let Err(e) = self
            .inner
            .deps
            .store
            .commit(Vec::<Change>::new(), Some(audit))
            .await
        {
            tracing::error!(error = %e, "could not audit a possibly cloned authenticator");
        }
    }
}

/// The stored passkey as webauthn-rs updates it after a sign-in (counter, backup state).
fn updated(passkey: &Passkey, result: &AuthenticationResult) -> Passkey {
    let mut p = passkey.clone();
    p.update_credential(result);
    p
}

fn limit_reached() -> Error {
    Error::Conflict {
        code: ErrorCode::PasskeyLimitReached,
        message: format!(
            "This account already has {MAX_PASSKEYS_PER_USER} passkeys, the most allowed; remove one first."
        ),
    }
}

/// The account, if it exists and may sign in.
fn enabled(found: Option<User>) -> Result<User> {
    match found {
        Some(u) if u.account_enabled => Ok(u),
        Some(_) => Err(Error::Forbidden("This account is disabled.".into())),
        None => Err(Error::Unauthenticated(
            "The account this session belongs to no longer exists.".into(),
        )),
    }
}
