//! What the OpenID Connect provider keeps in storage beyond a sign-in's grant and code: refresh
//! tokens, the one-use state of codes and refresh tokens, revocations, and token signing keys.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;
use crate::directory::model::SigningKey;
use crate::directory::store::{Commit, DirectoryChange};
use crate::kernel::query::Taken;
use crate::kernel::split_token::TokenKey;
use crate::logs::store::LogChange;
use crate::methods::store::MethodChange;
use crate::session::store::SessionChange;
use crate::signin::authorization::{AuthorizationCode, OAuthGrant};
use crate::signin::store::{SignInChange, SignInStore};

/// A refresh token as stored (the hash of its secret part, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The token's id; for a token issued before split tokens, the hash of the whole token.
    pub key: TokenKey,
    /// SHA-256 (hex) of the token's secret part; `None` for a token issued before split
    /// tokens.
    pub secret_hash: Option<String>,
    pub grant_id: Uuid,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

/// One change the provider makes, or one of a layer below that must land with it.
#[derive(Debug, Clone, PartialEq)]
pub enum OidcChange {
    /// Marks an authorization code used if it is still unused; otherwise the change fails with
    /// a conflict (`authorizationCodeUsed`). Of any number of racing commits on any number of
    /// nodes, exactly one succeeds.
    TakeAuthorizationCode {
        key: TokenKey,
        at: OffsetDateTime,
    },
    InsertRefreshToken(RefreshToken),
    /// Revokes a grant: its refresh tokens stop working and its access tokens stop being
    /// accepted by userinfo. Revoking a revoked grant keeps the first time.
    RevokeOAuthGrant {
        id: Uuid,
        at: OffsetDateTime,
    },
    /// Revokes every grant made in a session (logout).
    RevokeSessionGrants {
        session_id: Uuid,
        at: OffsetDateTime,
    },
    InsertSigningKey(SigningKey),
    RetireSigningKey {
        kid: String,
        at: OffsetDateTime,
    },
    SignIn(SignInChange),
}

impl From<SignInChange> for OidcChange {
    fn from(change: SignInChange) -> Self {
        OidcChange::SignIn(change)
    }
}

impl From<MethodChange> for OidcChange {
    fn from(change: MethodChange) -> Self {
        OidcChange::SignIn(change.into())
    }
}

impl From<SessionChange> for OidcChange {
    fn from(change: SessionChange) -> Self {
        OidcChange::SignIn(change.into())
    }
}

impl From<LogChange> for OidcChange {
    fn from(change: LogChange) -> Self {
        OidcChange::SignIn(change.into())
    }
}

impl From<DirectoryChange> for OidcChange {
    fn from(change: DirectoryChange) -> Self {
        OidcChange::SignIn(change.into())
    }
}

#[async_trait]
pub trait OidcStore: SignInStore + Commit<OidcChange> {
    /// Every key, retired ones included, newest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;

    /// An authorization code as it stands, without using it: [`Taken::Fresh`] while unused,
    /// [`Taken::Replayed`] once used. The token endpoint uses it up with
    /// [`OidcChange::TakeAuthorizationCode`] in the transaction that stores what it issues.
    /// The code's secret is core's to judge, before anything else.
    async fn authorization_code(&self, key: &TokenKey) -> Result<Taken<AuthorizationCode>>;

    /// Marks a refresh token used, with the same guarantee as codes. Core calls it only for a
    /// token whose secret it has checked against [`OidcStore::refresh_token`].
    async fn take_refresh_token(
        &self,
        key: &TokenKey,
        at: OffsetDateTime,
    ) -> Result<Taken<RefreshToken>>;

    /// A refresh token, used or not.
    async fn refresh_token(&self, key: &TokenKey) -> Result<Option<RefreshToken>>;

    async fn oauth_grant(&self, id: Uuid) -> Result<Option<OAuthGrant>>;

    /// A grant and its person (`None` when their account is gone), in one read: every use of
    /// a grant checks that its person is still enabled.
    async fn oauth_grant_and_person(
        &self,
        id: Uuid,
    ) -> Result<Option<(OAuthGrant, Option<crate::directory::model::User>)>>;
}
