//! Signed access tokens for the admin API (OAuth 2.0 client credentials), and the signing keys
//! behind them.
//!
//! There is a key per algorithm ([`SigningAlgorithm`]): ES256 (P-256), which signs by default,
//! and RS256 (RSA, 2048 bits), OpenID Connect's mandatory-to-implement algorithm, which signs
//! the tokens of applications registered with `idTokenSignedResponseAlg: RS256`. Both are
//! published, each JWK naming its `alg`. The private half is sealed with the configured secret
//! key before it reaches the store; the public half is published as a JWK. Every node loads the
//! same keys from the database, so a token issued by one node verifies on any other. Each
//! algorithm's keys rotate on the same schedule ([`TokenService::rotate`]).

pub mod jose_ring;

use std::collections::{BTreeMap, HashMap};
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
use crate::directory::model::{Application, SigningAlgorithm, SigningKey};
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
    /// The key that signs new tokens, per algorithm.
    active: BTreeMap<SigningAlgorithm, (String, EncodingKey)>,
    /// Every published key by its id, with the algorithm it verifies (and only that one).
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: Vec<serde_json::Value>,
}

impl LoadedKeys {
    fn empty() -> Self {
        LoadedKeys {
            active: BTreeMap::new(),
            verifying: HashMap::new(),
            jwks: Vec::new(),
        }
    }
}

/// jsonwebtoken's name for an algorithm.
fn jose(algorithm: SigningAlgorithm) -> Algorithm {
    match algorithm {
        SigningAlgorithm::Es256 => Algorithm::ES256,
        SigningAlgorithm::Rs256 => Algorithm::RS256,
    }
}

/// The size of a new RS256 key: 2048 bits, the size RFC 7518 §3.3 requires at least and every
/// client accepts.
const RSA_KEY_BITS: usize = 2048;

/// The server's [`Entropy`](crate::kernel::entropy::Entropy) as the random source the `rsa`
/// crate's key generation takes.
pub(crate) struct EntropyRng<'a>(pub(crate) &'a dyn crate::kernel::entropy::Entropy);

impl rsa::rand_core::RngCore for EntropyRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> std::result::Result<(), rsa::rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

/// The server's entropy is the operating system's generator (or a test's).
impl rsa::rand_core::CryptoRng for EntropyRng<'_> {}

pub struct TokenService {
    deps: Deps<dyn OidcStore>,
    sealer: Sealer,
    issuer: String,
    tenant_id: Uuid,
    keys: RwLock<LoadedKeys>,
}

/// A freshly made key pair for `algorithm`: the row to store, and nothing else leaves this
/// module.
pub fn generate_signing_key<S: OidcStore + ?Sized>(
    deps: &Deps<S>,
    sealer: &Sealer,
    algorithm: SigningAlgorithm,
    activates: Option<OffsetDateTime>,
) -> Result<SigningKey> {
    let kid = URL_SAFE_NO_PAD.encode(&deps.entropy.uuid().as_bytes()[..12]);
    let (der, jwk) = match algorithm {
        SigningAlgorithm::Es256 => es256_key(deps)?,
        SigningAlgorithm::Rs256 => rs256_key(deps)?,
    };
    let mut jwk = jwk;
    jwk["use"] = "sig".into();
    jwk["alg"] = algorithm.as_str().into();
    jwk["kid"] = kid.clone().into();
    Ok(SigningKey {
        sealed_private_key: sealer.seal(deps.entropy.as_ref(), &der, kid.as_bytes()),
        kid,
        algorithm,
        public_jwk: jwk.to_string(),
        created: deps.clock.now(),
        retired: None,
        activates,
    })
}

/// A P-256 key: its PKCS#8 DER and its public JWK members.
fn es256_key<S: OidcStore + ?Sized>(deps: &Deps<S>) -> Result<(Vec<u8>, serde_json::Value)> {
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
    let jwk = serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point has x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point has y")),
    });
    Ok((der.as_bytes().to_vec(), jwk))
}

/// An RSA key: generated by the `rsa` crate (key generation only, never signing), kept as
/// PKCS#8 DER, and read back by `ring`, which signs with it and gives its public members (so a
/// key `ring` would refuse is never stored).
fn rs256_key<S: OidcStore + ?Sized>(deps: &Deps<S>) -> Result<(Vec<u8>, serde_json::Value)> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let private = rsa::RsaPrivateKey::new(&mut EntropyRng(deps.entropy.as_ref()), RSA_KEY_BITS)
        .map_err(|e| Error::Internal(format!("generating an RSA signing key: {e}")))?;
    let der = private
        .to_pkcs8_der()
        .map_err(|e| Error::Internal(format!("encoding a new RSA signing key: {e}")))?;
    drop(private);
    let pair = jose_ring::rsa_key_pair(der.as_bytes())
        .map_err(|e| Error::Internal(format!("reading a new RSA signing key: {e}")))?;
    let public = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    let jwk = serde_json::json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(&public.n),
        "e": URL_SAFE_NO_PAD.encode(&public.e),
    });
    Ok((der.as_bytes().to_vec(), jwk))
}

/// The key that checks tokens signed by `key`, from its published JWK.
fn decoding_key(key: &SigningKey, jwk: &serde_json::Value) -> Result<DecodingKey> {
    let member = |name: &str| jwk[name].as_str().unwrap_or_default();
    let decoding = match key.algorithm {
        SigningAlgorithm::Es256 => DecodingKey::from_ec_components(member("x"), member("y")),
        SigningAlgorithm::Rs256 => DecodingKey::from_rsa_components(member("n"), member("e")),
    };
    decoding.map_err(|e| Error::Internal(format!("stored JWK of {} is unusable: {e}", key.kid)))
}

/// What a rotation made: the next key of each algorithm, and when they sign from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedKeys {
    pub kids: BTreeMap<SigningAlgorithm, String>,
    pub signs_from: OffsetDateTime,
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
            keys: RwLock::new(LoadedKeys::empty()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience of admin API tokens.
    pub fn graph_audience(&self) -> String {
        format!("{}/graph", self.issuer.trim_end_matches('/'))
    }

    /// Loads the keys from the store, creating the first key of each algorithm that has none
    /// (at first start, and for RS256 at the first start after an upgrade). When several nodes
    /// start at once each may make one; all are published, and every node signs with the same
    /// one, the newest ([`schedule`]), from its next load.
    pub async fn load_keys(&self) -> Result<()> {
        let mut keys = self.deps.store.signing_keys().await?;
        let missing: Vec<Change> = SigningAlgorithm::ALL
            .into_iter()
            .filter(|alg| {
                !keys
                    .iter()
                    .any(|k| k.algorithm == *alg && k.retired.is_none())
            })
            .map(|alg| generate_signing_key(&self.deps, &self.sealer, alg, None))
            .map(|key| key.map(Change::InsertSigningKey))
            .collect::<Result<_>>()?;
        if !missing.is_empty() {
            self.deps.store.commit(missing, None).await?;
            keys = self.deps.store.signing_keys().await?;
        }
        let mut loaded = LoadedKeys::empty();
        let now = self.deps.clock.now();
        for algorithm in SigningAlgorithm::ALL {
            let keys: Vec<SigningKey> = keys
                .iter()
                .filter(|k| k.algorithm == algorithm)
                .cloned()
                .collect();
            let (signing, ended) = schedule(&keys, now);
            for (index, key) in keys.into_iter().enumerate() {
                let jwk: serde_json::Value =
                    serde_json::from_str(&key.public_jwk).map_err(|e| {
                        Error::Internal(format!("stored JWK of {} is not JSON: {e}", key.kid))
                    })?;
                let decoding = decoding_key(&key, &jwk)?;
                // A key that stopped signing stays published until every token it signed has
                // expired; a key that has not started yet is published already.
                let published = ended[index]
                    .is_none_or(|r| now < r + ACCESS_TOKEN_LIFETIME + Duration::minutes(5));
                if published {
                    loaded
                        .verifying
                        .insert(key.kid.clone(), (jose(algorithm), decoding));
                    loaded.jwks.push(jwk);
                }
                if signing == Some(index) {
                    let der = self
                        .sealer
                        .open(&key.sealed_private_key, key.kid.as_bytes())?;
                    let encoding = match algorithm {
                        SigningAlgorithm::Es256 => EncodingKey::from_ec_der(&der),
                        // PKCS#8, read by the ring signer (jose_ring), never by RustCrypto.
                        SigningAlgorithm::Rs256 => EncodingKey::from_rsa_der(&der),
                    };
                    loaded.active.insert(algorithm, (key.kid.clone(), encoding));
                }
            }
        }
        *self.keys.write().expect("key lock poisoned") = loaded;
        Ok(())
    }

    /// Makes the next signing key of every algorithm, in one transaction with an audit entry,
    /// and returns their ids and when they sign from; each algorithm's keys follow the same
    /// rules. [`Rotation::Prepublished`] leaves the key in use signing until
    /// then (a key made by an earlier rotation that has not started yet is withdrawn: the
    /// newest rotation wins); [`Rotation::Immediate`] retires every key at once. Tokens signed
    /// by a key that stopped signing keep verifying until they expire: the key stays published
    /// that long. Other nodes pick the new key up when they next reload (within a minute, see
    /// the server's reload task).
    pub async fn rotate(
        &self,
        request: &crate::directory::audit::RequestContext,
        rotation: Rotation,
    ) -> Result<RotatedKeys> {
        let now = self.deps.clock.now();
        let all_keys = self.deps.store.signing_keys().await?;
        let activates = match rotation {
            Rotation::Prepublished { lead } => Some(now + lead),
            Rotation::Immediate => None,
        };
        let mut changes: Vec<Change> = Vec::new();
        let mut kids = BTreeMap::new();
        let mut targets = Vec::new();
        for algorithm in SigningAlgorithm::ALL {
            let keys: Vec<&SigningKey> = all_keys
                .iter()
                .filter(|k| k.algorithm == algorithm)
                .collect();
            let owned: Vec<SigningKey> = keys.iter().map(|k| (*k).clone()).collect();
            let (signing, _) = schedule(&owned, now);
            changes.extend(
                keys.iter()
                    .enumerate()
                    .filter(|(i, k)| {
                        k.retired.is_none()
                            && (rotation == Rotation::Immediate || Some(*i) != signing)
                    })
                    .map(|(_, k)| Change::RetireSigningKey {
                        kid: k.kid.clone(),
                        at: now,
                    }),
            );
            let key = generate_signing_key(&self.deps, &self.sealer, algorithm, activates)?;
            targets.push(crate::directory::audit::TargetResource::new(
                "SigningKey",
                &key.kid,
                format!("{algorithm} token signing key"),
            ));
            kids.insert(algorithm, key.kid.clone());
            changes.push(Change::InsertSigningKey(key));
        }
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
            target_resources: targets,
            additional_details: Vec::new(),
        };
        self.deps.store.commit(changes, Some(audit)).await?;
        self.load_keys().await?;
        Ok(RotatedKeys {
            kids,
            signs_from: activates.unwrap_or(now),
        })
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.read().expect("key lock poisoned").jwks })
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// Signs `claims` with the active key of `algorithm`, naming the key in the header.
    pub fn sign<T: Serialize>(
        &self,
        claims: &T,
        typ: &str,
        algorithm: SigningAlgorithm,
    ) -> Result<String> {
        let keys = self.keys.read().expect("key lock poisoned");
        let (kid, key) = keys
            .active
            .get(&algorithm)
            .ok_or_else(|| Error::Internal(format!("no active {algorithm} signing key loaded")))?;
        let mut header = Header::new(jose(algorithm));
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
        let token = self.sign(&claims, "at+jwt", app.id_token_signed_response_alg)?;
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
        // Signed as the API, which verifies it, asked.
        let token = self.sign(&claims, "at+jwt", api.id_token_signed_response_alg)?;
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
        let (algorithm, key) = keys
            .verifying
            .get(&kid)
            .ok_or_else(|| refused("it was signed by an unknown key"))?;
        // The key decides the algorithm: a header naming another one (`none`, HS256 with the
        // public key as the secret, …) is refused before any verification.
        if header.alg != *algorithm {
            return Err(refused("unexpected signing algorithm"));
        }
        let mut validation = Validation::new(*algorithm);
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
