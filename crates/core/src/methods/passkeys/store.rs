//! The storage contract for passkeys and their WebAuthn ceremonies. The store crate implements
//! it on SQLite and PostgreSQL; core never sees SQL.
//!
//! It keeps two things: registered passkeys (one row per credential, with the serialized
//! webauthn-rs credential beside the columns the API shows) and ceremonies in progress (the
//! serialized webauthn-rs state of a registration or sign-in that has started). Ceremony state
//! never goes to the browser: the browser gets an id, the database keeps the state, and
//! [`PasskeyStore::take_ceremony`] hands it out exactly once, however many nodes race for it.
//!
//! What it must never do: decide whether a passkey may be registered or used (core decides),
//! or let two callers consume one ceremony.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::audit::DirectoryAudit;

/// How far the administrator can trust what a passkey says about its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttestationLevel {
    /// The attestation chains to a root the administrator trusts: the AAGUID is proven.
    Attested,
    /// The authenticator signed its own attestation with the new key: it proves possession of
    /// the key and nothing about the model.
    SelfAttested,
    /// No attestation at all (synced passkeys, or a browser that strips it).
    None,
}

impl AttestationLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationLevel::Attested => "attested",
            AttestationLevel::SelfAttested => "selfAttested",
            AttestationLevel::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "attested" => Some(AttestationLevel::Attested),
            "selfAttested" => Some(AttestationLevel::SelfAttested),
            "none" => Some(AttestationLevel::None),
            _ => None,
        }
    }
}

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The method id Graph shows (`fido2AuthenticationMethod.id`).
    pub id: Uuid,
    pub user_id: Uuid,
    /// The WebAuthn credential id, as the authenticator made it. Unique across all users.
    pub credential_id: Vec<u8>,
    pub display_name: String,
    /// Lowercase hyphenated GUID; all zeros when the authenticator does not say.
    pub aaguid: String,
    pub model: Option<String>,
    pub attestation_level: AttestationLevel,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub sign_count: u32,
    /// webauthn-rs's serialized credential (public key, counter, flags, attestation).
    pub credential: String,
    pub created: OffsetDateTime,
    pub last_used: Option<OffsetDateTime>,
}

/// What a ceremony is for; a ceremony started for one purpose cannot finish another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Registration,
    /// Sign-in where the person named their account first (allowCredentials).
    Authentication,
    /// Sign-in where the authenticator names the account (usernameless, autofill).
    DiscoverableAuthentication,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
            CeremonyKind::DiscoverableAuthentication => "discoverableAuthentication",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "registration" => Some(CeremonyKind::Registration),
            "authentication" => Some(CeremonyKind::Authentication),
            "discoverableAuthentication" => Some(CeremonyKind::DiscoverableAuthentication),
            _ => None,
        }
    }
}

/// A ceremony that has started and not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub id: Uuid,
    pub kind: CeremonyKind,
    /// The person it was started for; `None` for a usernameless sign-in.
    pub user_id: Option<Uuid>,
    /// webauthn-rs's serialized ceremony state (challenge, policy, allowed credentials).
    pub state: String,
    pub expires: OffsetDateTime,
}

/// What a sign-in changes on a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    pub id: Uuid,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The credential as webauthn-rs updated it.
    pub credential: String,
    pub at: OffsetDateTime,
}

#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// A person's passkeys, oldest first.
    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<StoredPasskey>>;
    /// Every registered passkey's owner and model (AAGUID), nothing else: what a change to the
    /// passkey policy would keep or stop.
    async fn passkey_models(&self) -> Result<Vec<(Uuid, String)>>;
    async fn passkey(&self, id: Uuid) -> Result<Option<StoredPasskey>>;
    async fn passkey_by_credential_id(&self, credential_id: &[u8])
    -> Result<Option<StoredPasskey>>;
    /// The passkey with this credential id and its owner (`None` when their account is gone),
    /// in one read: a passkey sign-in needs both, and two reads were one too many per sign-in.
    async fn passkey_and_owner(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<(StoredPasskey, Option<crate::directory::model::User>)>>;

    /// Adds a passkey and its audit entry in one transaction, unless the person already has
    /// `limit` passkeys ([`Error::Conflict`](crate::Error::Conflict) with code
    /// `passkeyLimitReached`) or the credential id is registered already (409,
    /// `passkeyAlreadyRegistered`). Concurrent registrations cannot exceed the limit.
    async fn insert_passkey(
        &self,
        passkey: &StoredPasskey,
        limit: usize,
        audit: DirectoryAudit,
    ) -> Result<()>;

    /// Renames a person's passkey; 404 when they have no such passkey.
    async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        display_name: &str,
        audit: DirectoryAudit,
    ) -> Result<()>;

    /// Removes a person's passkey; 404 when they have no such passkey. In the same transaction
    /// the sign-ins that used it end (as `DirectoryChange::EndSignIns` with its id, at `at`):
    /// the sessions in which it was used, and the grants made in them.
    async fn delete_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        at: time::OffsetDateTime,
        audit: DirectoryAudit,
    ) -> Result<()>;

    async fn insert_ceremony(&self, ceremony: &Ceremony) -> Result<()>;

    /// The ceremony, without using it up: a sign-in verifies against it and then takes it in
    /// the transaction that stores the sign-in ([`Change::TakeCeremony`]).
    ///
    /// [`Change::TakeCeremony`]: crate::methods::store::MethodChange::TakeCeremony
    async fn ceremony(&self, id: Uuid) -> Result<Option<Ceremony>>;

    /// Removes the ceremony and returns it: to exactly one caller, expired or not (the caller
    /// checks the expiry, so that it can say "expired" rather than "unknown").
    async fn take_ceremony(&self, id: Uuid) -> Result<Option<Ceremony>>;

    /// Forgets ceremonies that expired before `now`; returns how many.
    async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64>;
}
