//! One complete passkey sign-in, as a browser and an OpenID Connect application do it together:
//! authorization request with PKCE → passkey options → assertion → Conditional Access (the
//! server's) → code → token exchange → ID token validated against the published keys.
//!
//! Without OIDC on the server (`--no-oidc`, or a server that has no discovery document), the
//! sign-in starts with `POST /signin/flows` and ends at `granted`; the authorize and token legs
//! are the only difference.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::http::{Browser, Reply};
use crate::passkey::{b64url, from_b64url};
use crate::provision::{BenchUser, REDIRECT_URI};

/// The legs of one sign-in, in order; each one's time is reported on its own.
pub const STEPS: [&str; 4] = ["authorize", "options", "verify", "token"];

/// What the application knows of the provider: issuer and signing keys.
pub struct Oidc {
    pub issuer: String,
    /// Key id → uncompressed P-256 point.
    pub keys: HashMap<String, Vec<u8>>,
}

impl Oidc {
    /// Reads discovery and the key set; `None` when the server has no OIDC provider.
    pub async fn discover(browser: &Browser) -> anyhow::Result<Option<Oidc>> {
        let discovery = browser.get("/.well-known/openid-configuration").await?;
        if !discovery.status.is_success() {
            return Ok(None);
        }
        let issuer = discovery.body["issuer"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("discovery names no issuer"))?
            .to_string();
        let jwks = browser.get("/discovery/v2.0/keys").await?;
        let mut keys = HashMap::new();
        for key in jwks.body["keys"].as_array().into_iter().flatten() {
            if key["kty"] != "EC" || key["crv"] != "P-256" {
                continue;
            }
            let (Some(kid), Some(x), Some(y)) =
                (key["kid"].as_str(), key["x"].as_str(), key["y"].as_str())
            else {
                continue;
            };
            let mut point = vec![0x04];
            point.extend(from_b64url(x)?);
            point.extend(from_b64url(y)?);
            keys.insert(kid.to_string(), point);
        }
        anyhow::ensure!(!keys.is_empty(), "the key set holds no P-256 key");
        Ok(Some(Oidc { issuer, keys }))
    }

    /// Checks an ID token as a relying party must: ES256 signature by a published key, issuer,
    /// audience, nonce and expiry.
    fn validate(&self, token: &str, client_id: &str, nonce: &str) -> Result<(), String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("idToken: not a JWS".into());
        };
        let decode = |part: &str| -> Result<Value, String> {
            let bytes = from_b64url(part).map_err(|_| "idToken: bad base64url".to_string())?;
            serde_json::from_slice(&bytes).map_err(|_| "idToken: bad JSON".to_string())
        };
        let head = decode(header)?;
        if head["alg"] != "ES256" {
            return Err(format!("idToken: alg {}", head["alg"]));
        }
        let kid = head["kid"].as_str().unwrap_or_default();
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| "idToken: unknown kid".to_string())?;
        let signature = from_b64url(signature).map_err(|_| "idToken: bad signature encoding")?;
        let signed_len = header.len() + 1 + payload.len();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
            .verify(&token.as_bytes()[..signed_len], &signature)
            .map_err(|_| "idToken: signature invalid".to_string())?;
        let claims = decode(payload)?;
        if claims["iss"] != self.issuer.as_str() {
            return Err("idToken: wrong issuer".into());
        }
        let audience_ok = match &claims["aud"] {
            Value::String(a) => a == client_id,
            Value::Array(list) => list.iter().any(|a| a == client_id),
            _ => false,
        };
        if !audience_ok {
            return Err("idToken: wrong audience".into());
        }
        if claims["nonce"] != nonce {
            return Err("idToken: wrong nonce".into());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if claims["exp"].as_u64().is_none_or(|exp| exp <= now) {
            return Err("idToken: expired".into());
        }
        Ok(())
    }
}

/// The time of each leg of a successful sign-in.
pub type StepTimes = [Duration; 4];

fn random_text(rng: &SystemRandom, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf).expect("randomness");
    b64url(&buf)
}

/// An error kind for the report: the leg, the HTTP status and the server's error code.
fn refused(step: &str, reply: &Reply) -> String {
    let code = reply.body["error"]["code"]
        .as_str()
        .or_else(|| reply.body["error"].as_str())
        .or_else(|| reply.body["status"].as_str())
        .unwrap_or("");
    format!("{step}: HTTP {} {code}", reply.status.as_u16())
}

fn transport(step: &str, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    format!("{step}: {what}")
}

/// One complete sign-in of `user` to the application `client_id`. The error is a short kind
/// ("verify: HTTP 400 passkeySignatureInvalid"), counted in the report.
pub async fn sign_in(
    browser: &Browser,
    client_id: &str,
    user: &mut BenchUser,
    oidc: Option<&Oidc>,
) -> Result<StepTimes, String> {
    let rng = SystemRandom::new();
    let mut times = [Duration::ZERO; 4];
    let state = random_text(&rng, 16);
    let nonce = random_text(&rng, 16);
    let verifier = random_text(&rng, 32);
    let challenge =
        b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());

    let began = Instant::now();
    let flow_id = match oidc {
        Some(_) => {
            let query = format!(
                "/oauth2/v2.0/authorize?client_id={client_id}&redirect_uri={}&response_type=code\
                 &scope=openid%20profile%20offline_access&state={state}&nonce={nonce}\
                 &code_challenge={challenge}&code_challenge_method=S256",
                encode(REDIRECT_URI)
            );
            let reply = browser
                .get(&query)
                .await
                .map_err(|e| transport("authorize", &e))?;
            if !reply.status.is_redirection() {
                return Err(refused("authorize", &reply));
            }
            let location = reply
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            query_value(location, "flow")
                .ok_or_else(|| "authorize: no flow in Location".to_string())?
        }
        None => {
            let reply = browser
                .post("/signin/flows", None, &json!({"clientId": client_id}))
                .await
                .map_err(|e| transport("authorize", &e))?;
            if !reply.status.is_success() {
                return Err(refused("authorize", &reply));
            }
            reply.body["flowId"]
                .as_str()
                .ok_or_else(|| "authorize: no flowId".to_string())?
                .to_string()
        }
    };
    times[0] = began.elapsed();

    let began = Instant::now();
    let options = browser
        .post(
            &format!("/signin/flows/{flow_id}/passkey/options"),
            None,
            &json!({}),
        )
        .await
        .map_err(|e| transport("options", &e))?;
    if !options.status.is_success() {
        return Err(refused("options", &options));
    }
    times[1] = began.elapsed();

    let began = Instant::now();
    let assertion = user
        .passkey
        .assert(&options.body["options"])
        .map_err(|e| format!("options: {e}"))?;
    let verified = browser
        .post(
            &format!("/signin/flows/{flow_id}/passkey/verify"),
            None,
            &json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
        )
        .await
        .map_err(|e| transport("verify", &e))?;
    // `granted`, or `completed` when the flow came from /authorize and the code was issued.
    let done = verified.body["status"] == "granted" || verified.body["status"] == "completed";
    if !verified.status.is_success() || !done {
        return Err(refused("verify", &verified));
    }
    times[2] = began.elapsed();

    if let Some(oidc) = oidc {
        let began = Instant::now();
        let redirect = verified.body["redirectUrl"]
            .as_str()
            .ok_or_else(|| "verify: no redirectUrl".to_string())?;
        if query_value(redirect, "state").as_deref() != Some(state.as_str()) {
            return Err("verify: state mismatch".into());
        }
        let code = query_value(redirect, "code").ok_or_else(|| "verify: no code".to_string())?;
        let token = browser
            .post_form(
                "/oauth2/v2.0/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", client_id),
                    ("code_verifier", &verifier),
                ],
            )
            .await
            .map_err(|e| transport("token", &e))?;
        if !token.status.is_success() {
            return Err(refused("token", &token));
        }
        let id_token = token.body["id_token"]
            .as_str()
            .ok_or_else(|| "token: no id_token".to_string())?;
        oidc.validate(id_token, client_id, &nonce)?;
        times[3] = began.elapsed();
    }
    Ok(times)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query parameter of a URL or a relative reference.
fn query_value(url: &str, name: &str) -> Option<String> {
    let absolute = reqwest::Url::parse("http://relative.invalid/")
        .ok()?
        .join(url)
        .ok()?;
    absolute
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
