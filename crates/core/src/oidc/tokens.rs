//! Signed access tokens for the admin API (OAuth 2.0 client credentials), and the signing keys
//! behind them.
//!
//! Keys are ES256 (P-256). The private half is sealed with the configured secret key before it
//! reaches the store; the public half is published as a JWK. Every node loads the same keys from
//! the database, so a token issued by one node verifies on any other.

pub mod jose_ring;

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::EncodePrivateKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::directory::authz::{Actor, Principal};
use crate::directory::model::{Application, SigningKey};
use crate::kernel::Deps;
use crate::kernel::clock::unix_millis;
use crate::kernel::crypto::Sealer;
use crate::oidc::store::{OidcChange as Change, OidcStore};
use crate::{Error, Result};

/// How long an admin API access token lives (Entra's default for access tokens is 60–90 minutes).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(1);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub aud: String,
    /// Object id of the application.
    pub sub: String,
    /// Client id of the application.
    pub appid: String,
    /// The same client id under RFC 9068's name (§2.2), which JWT access-token validators
    /// require. Tokens issued before it was added lack it.
    #[serde(default)]
    pub client_id: String,
    pub tid: String,
    /// The application the token was issued to, as OpenID Connect names it (the same as
    /// `client_id`). Tokens issued before it was added lack it.
    #[serde(default)]
    pub azp: String,
    pub roles: Vec<String>,
    /// `app` for an application acting as itself, as Entra's `idtyp`.
    pub idtyp: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

struct LoadedKeys {
    /// The key that signs new tokens.
    active: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
    jwks: Vec<serde_json::Value>,
}

pub struct TokenService {
    deps: Deps<dyn OidcStore>,
    sealer: Sealer,
    issuer: String,
    tenant_id: Uuid,
    keys: RwLock<LoadedKeys>,
}

/// A freshly made key pair: the row to store, and nothing else leaves this module.
pub fn generate_signing_key<S: OidcStore + ?Sized>(
    deps: &Deps<S>,
    sealer: &Sealer,
    activates: Option<OffsetDateTime>,
) -> Result<SigningKey> {
    let secret = loop {
        let mut bytes = [0u8; 32];
        deps.entropy.fill(&mut bytes);
        // A random 256-bit value is out of range for P-256 with negligible probability.
        if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
            break k;
        }
    };
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| Error::Internal(format!("encoding a new signing key: {e}")))?;
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let kid = URL_SAFE_NO_PAD.encode(&deps.entropy.uuid().as_bytes()[..12]);
    let jwk = serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": "ES256",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point has x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point has y")),
    });
    Ok(SigningKey {
        sealed_private_key: sealer.seal(deps.entropy.as_ref(), der.as_bytes(), kid.as_bytes()),
        kid,
        algorithm: "ES256".to_string(),
        public_jwk: jwk.to_string(),
        created: deps.clock.now(),
        retired: None,
        activates,
    })
}

/// How a rotation hands signing over to the next key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The next key is published at once and signs only after `lead`; the key in use signs
    /// until then. Clients that cache the key set (for up to a day, some of them) have fetched
    /// the new key before any token carries it.
    Prepublished { lead: Duration },
    /// The key in use is retired and the new one signs at once: for a key that may have leaked.
    /// A client that cached the key set less than its refresh interval ago cannot verify new
    /// tokens until it fetches the set again.
    Immediate,
}

/// When a key signs from: its activation time, or its creation for a key that signs at once.
fn activation(key: &SigningKey) -> OffsetDateTime {
    key.activates.unwrap_or(key.created)
}

/// Whether a key that is not retired may sign at `now`. A key made to sign at once does so
/// whatever this node's clock says of its creation (the command that made it may run on a
/// clock a little ahead).
fn started(key: &SigningKey, now: OffsetDateTime) -> bool {
    key.activates.is_none_or(|at| at <= now)
}

/// Which of `keys` signs at `now`, and when each stopped signing (retired, or superseded by a
/// later key that has started). The one place this is decided.
fn schedule(
    keys: &[SigningKey],
    now: OffsetDateTime,
) -> (Option<usize>, Vec<Option<OffsetDateTime>>) {
    let signing = (0..keys.len())
        .filter(|&i| keys[i].retired.is_none() && started(&keys[i], now))
        .max_by_key(|&i| (activation(&keys[i]), keys[i].created));
    let ended = keys
        .iter()
        .map(|k| {
            let superseded = keys
                .iter()
                .filter(|other| {
                    other.retired.is_none()
                        && activation(other) > activation(k)
                        && started(other, now)
                })
                .map(activation)
                .min();
            match (k.retired, superseded) {
                (Some(r), Some(s)) => Some(r.min(s)),
                (r, s) => r.or(s),
            }
        })
        .collect();
    (signing, ended)
}

impl TokenService {
    pub fn new(deps: Deps<dyn OidcStore>, sealer: Sealer, issuer: String, tenant_id: Uuid) -> Self {
        jose_ring::install();
        TokenService {
            deps,
            sealer,
            issuer,
            tenant_id,
            keys: RwLock::new(LoadedKeys {
                active: None,
                verifying: HashMap::new(),
                jwks: Vec::new(),
            }),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience of admin API tokens.
    pub fn graph_audience(&self) -> String {
        format!("{}/graph", self.issuer.trim_end_matches('/'))
    }

    /// Loads the keys from the store, creating the first one if there is none.
    pub async fn load_keys(&self) -> Result<()> {
        let mut keys = self.deps.store.signing_keys().await?;
        if !keys.iter().any(|k| k.retired.is_none()) {
            let key = generate_signing_key(&self.deps, &self.sealer, None)?;
            self.deps
                .store
                .commit(vec![Change::InsertSigningKey(key)], None)
                .await?;
            keys = self.deps.store.signing_keys().await?;
        }
        let mut loaded = LoadedKeys {
            active: None,
            verifying: HashMap::new(),
            jwks: Vec::new(),
        };
        let now = self.deps.clock.now();
        let (signing, ended) = schedule(&keys, now);
        for (index, key) in keys.into_iter().enumerate() {
            let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk).map_err(|e| {
                Error::Internal(format!("stored JWK of {} is not JSON: {e}", key.kid))
            })?;
            let x = jwk["x"].as_str().unwrap_or_default();
            let y = jwk["y"].as_str().unwrap_or_default();
            let decoding = DecodingKey::from_ec_components(x, y).map_err(|e| {
                Error::Internal(format!("stored JWK of {} is unusable: {e}", key.kid))
            })?;
            // A key that stopped signing stays published until every token it signed has
            // expired; a key that has not started yet is published already.
            let published =
                ended[index].is_none_or(|r| now < r + ACCESS_TOKEN_LIFETIME + Duration::minutes(5));
            if published {
                loaded.verifying.insert(key.kid.clone(), decoding);
                loaded.jwks.push(jwk);
            }
            if signing == Some(index) {
                let der = self
                    .sealer
                    .open(&key.sealed_private_key, key.kid.as_bytes())?;
                loaded.active = Some((key.kid.clone(), EncodingKey::from_ec_der(&der)));
            }
        }
        *self.keys.write().expect("key lock poisoned") = loaded;
        Ok(())
    }

    /// Makes the next signing key, in one transaction with an audit entry, and returns its id
    /// and when it signs from. [`Rotation::Prepublished`] leaves the key in use signing until
    /// then (a key made by an earlier rotation that has not started yet is withdrawn: the
    /// newest rotation wins); [`Rotation::Immediate`] retires every key at once. Tokens signed
    /// by a key that stopped signing keep verifying until they expire: the key stays published
    /// that long. Other nodes pick the new key up when they next reload (within a minute, see
    /// the server's reload task).
    pub async fn rotate(
        &self,
        request: &crate::directory::audit::RequestContext,
        rotation: Rotation,
    ) -> Result<(String, OffsetDateTime)> {
        let now = self.deps.clock.now();
        let keys = self.deps.store.signing_keys().await?;
        let (signing, _) = schedule(&keys, now);
        let activates = match rotation {
            Rotation::Prepublished { lead } => Some(now + lead),
            Rotation::Immediate => None,
        };
        let mut changes: Vec<Change> = keys
            .iter()
            .enumerate()
            .filter(|(i, k)| {
                k.retired.is_none() && (rotation == Rotation::Immediate || Some(*i) != signing)
            })
            .map(|(_, k)| Change::RetireSigningKey {
                kid: k.kid.clone(),
                at: now,
            })
            .collect();
        let key = generate_signing_key(&self.deps, &self.sealer, activates)?;
        let kid = key.kid.clone();
        changes.push(Change::InsertSigningKey(key));
        let audit = crate::directory::audit::DirectoryAudit {
            id: self.deps.entropy.uuid(),
            category: "KeyManagement".to_string(),
            correlation_id: request.correlation_id,
            result: "success".to_string(),
            result_reason: String::new(),
            activity_display_name: "Rotate token signing key".to_string(),
            activity_date_time: now,
            logged_by_service: "Core Directory".to_string(),
            operation_type: "Update".to_string(),
            initiated_by: crate::directory::audit::AuditActivityInitiator::from_actor(
                &Actor::System,
                request.ip_address.clone(),
            ),
            target_resources: vec![crate::directory::audit::TargetResource::new(
                "SigningKey",
                &kid,
                "ES256 token signing key",
            )],
            additional_details: Vec::new(),
        };
        self.deps.store.commit(changes, Some(audit)).await?;
        self.load_keys().await?;
        Ok((kid, activates.unwrap_or(now)))
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.read().expect("key lock poisoned").jwks })
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// Signs `claims` with the active key (ES256), naming the key in the header.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String> {
        let keys = self.keys.read().expect("key lock poisoned");
        let (kid, key) = keys
            .active
            .as_ref()
            .ok_or_else(|| Error::Internal("no active signing key loaded".into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, key)
            .map_err(|e| Error::Internal(format!("signing a token: {e}")))
    }

    /// Issues an access token for an application acting as itself.
    pub fn issue_app_token(&self, app: &Application) -> Result<(String, i64)> {
        let now = self.deps.clock.now();
        let iat = unix_millis(now) / 1000;
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            aud: self.graph_audience(),
            sub: app.id.to_string(),
            appid: app.app_id.to_string(),
            client_id: app.app_id.to_string(),
            tid: self.tenant_id.to_string(),
            azp: app.app_id.to_string(),
            roles: app.api_permissions.clone(),
            idtyp: "app".to_string(),
            iat,
            nbf: iat,
            exp: iat + ACCESS_TOKEN_LIFETIME.whole_seconds(),
            jti: self.deps.entropy.uuid().to_string(),
        };
        let token = self.sign(&claims, "at+jwt")?;
        Ok((token, ACCESS_TOKEN_LIFETIME.whole_seconds()))
    }

    /// Issues an access token for an application acting as itself toward `api`, an application
    /// registered here as an API (client credentials with `<api>/.default`): `aud` is the API's
    /// appId and `roles` the API's app roles assigned to the caller. The admin API refuses it:
    /// its audience is not the admin API's.
    pub fn issue_api_app_token(
        &self,
        app: &Application,
        api: &Application,
        roles: Vec<String>,
    ) -> Result<(String, i64)> {
        let now = self.deps.clock.now();
        let iat = unix_millis(now) / 1000;
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            aud: api.app_id.to_string(),
            sub: app.id.to_string(),
            appid: app.app_id.to_string(),
            client_id: app.app_id.to_string(),
            tid: self.tenant_id.to_string(),
            azp: app.app_id.to_string(),
            roles,
            idtyp: "app".to_string(),
            iat,
            nbf: iat,
            exp: iat + ACCESS_TOKEN_LIFETIME.whole_seconds(),
            jti: self.deps.entropy.uuid().to_string(),
        };
        let token = self.sign(&claims, "at+jwt")?;
        Ok((token, ACCESS_TOKEN_LIFETIME.whole_seconds()))
    }

    /// Verifies an admin API bearer token: signature, issuer, audience, lifetime.
    pub async fn verify_access_token(&self, token: &str) -> Result<AccessTokenClaims> {
        let audience = self.graph_audience();
        self.verify(token, Some(&audience)).await
    }

    /// Verifies a token this server signed: signature by a published key, issuer, lifetime,
    /// and the audience when one is given.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<T> {
        self.decode(token, audience, true).await
    }

    /// An ID token handed back as a logout hint: issued here, possibly expired (OpenID
    /// Connect RP-Initiated Logout §2 allows an expired hint).
    pub async fn verify_hint(&self, token: &str) -> Result<crate::oidc::IdTokenClaims> {
        self.decode(token, None, false).await
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        token: &str,
        audience: Option<&str>,
        check_expiry: bool,
    ) -> Result<T> {
        let refused =
            |why: &str| Error::Unauthenticated(format!("Access token is not valid: {why}."));
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| refused("it is not a signed JWT"))?;
        if header.alg != Algorithm::ES256 {
            return Err(refused("unexpected signing algorithm"));
        }
        let kid = header.kid.ok_or_else(|| refused("it names no key"))?;
        let known = self
            .keys
            .read()
            .expect("key lock poisoned")
            .verifying
            .contains_key(&kid);
        if !known {
            // Another node may have rotated keys since this one loaded them.
            self.load_keys().await?;
        }
        let keys = self.keys.read().expect("key lock poisoned");
        let key = keys
            .verifying
            .get(&kid)
            .ok_or_else(|| refused("it was signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation.leeway = 30;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    refused("its signature does not verify")
                }
                _ => refused("its claims do not verify"),
            },
        )?;
        // Checked against the clock the server uses, so a fixed test clock governs expiry too.
        let now = unix_millis(self.deps.clock.now()) / 1000;
        let exp = data.claims["exp"].as_i64().unwrap_or(0);
        if check_expiry && exp + 30 < now {
            return Err(refused("it has expired"));
        }
        serde_json::from_value(data.claims).map_err(|_| refused("its claims do not verify"))
    }

    /// The caller behind a verified token. Permissions are those in the token that the
    /// application still holds, so revoking a permission or deleting the application takes
    /// effect at once rather than when the token expires.
    pub async fn principal_for(&self, claims: &AccessTokenClaims) -> Result<Principal> {
        let app_id = Uuid::parse_str(&claims.appid)
            .map_err(|_| Error::Unauthenticated("Access token is not valid: bad appid.".into()))?;
        let app = self
            .deps
            .store
            .application_by_app_id(app_id)
            .await?
            .ok_or_else(|| {
                Error::Unauthenticated(
                    "Access token is not valid: the application no longer exists.".into(),
                )
            })?;
        let permissions = claims
            .roles
            .iter()
            .filter(|r| app.api_permissions.contains(r))
            .cloned()
            .collect();
        Ok(Principal {
            actor: Actor::App {
                id: app.id,
                app_id: app.app_id,
                display_name: app.display_name,
            },
            permissions,
        })
    }
}
