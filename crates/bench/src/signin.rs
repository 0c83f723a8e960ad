//! One complete sign-in, as a browser and an OpenID Connect application do it together:
//! authorization request with PKCE → the person's method (a passkey; a password and an
//! authenticator app's code; or a first pass, then a new passkey registered and proven) →
//! Conditional Access (the server's) → code → token exchange → ID token validated against the
//! published keys.
//!
//! Without OIDC on the server (`--no-oidc`, or a server that has no discovery document), the
//! sign-in starts with `POST /signin/flows` and ends at `granted`; the authorize and token legs
//! are the only difference.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::http::{Browser, Reply, Tab, Transport, percent_encode};
use crate::passkey::SoftPasskey;
use crate::passkey::{b64url, from_b64url};
use crate::provision::{BenchUser, Method, REDIRECT_URI};

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

/// What the load signs in with; each mode has its own legs, timed one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Complete passkey sign-ins (the figure the targets are about).
    Passkey,
    /// Password, then an authenticator app's code, as the baseline "MFA for everyone" asks.
    Password,
    /// A new person's first sign-in: a one-time pass, "more information required", a new
    /// passkey registered and proven, then the application.
    TapRegistration,
}

impl Mode {
    /// The legs of one sign-in, in order.
    pub fn legs(self) -> &'static [&'static str] {
        match self {
            Mode::Passkey => &["authorize", "options", "verify", "token"],
            Mode::Password => &["authorize", "identify", "password", "code", "token"],
            Mode::TapRegistration => &[
                "authorize",
                "identify",
                "pass",
                "register",
                "prove",
                "token",
            ],
        }
    }

    /// The name the last line gives the rate.
    pub fn rate_name(self) -> &'static str {
        match self {
            Mode::Passkey => "passkey-signins-per-s",
            Mode::Password => "password-signins-per-s",
            Mode::TapRegistration => "tap-registrations-per-s",
        }
    }
}

/// The time of each leg of a successful sign-in.
pub type LegTimes = Vec<Duration>;

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

fn transport(step: &str, e: &Transport) -> String {
    format!("{step}: {}", e.kind())
}

/// Times the legs of one sign-in as they happen.
struct Legs {
    times: LegTimes,
    began: Instant,
}

impl Legs {
    fn new() -> Legs {
        Legs {
            times: Vec::with_capacity(6),
            began: Instant::now(),
        }
    }

    fn done(&mut self) {
        let now = Instant::now();
        self.times.push(now - self.began);
        self.began = now;
    }
}

/// One step of a flow: POST `body` to `/signin/flows/{flow}/{path}`, which must answer 2xx and,
/// unless `expected` is empty, with one of the `expected` statuses.
async fn step(
    tab: &mut Tab,
    leg: &str,
    flow: &str,
    path: &str,
    session: Option<&str>,
    body: &Value,
    expected: &[&str],
) -> Result<Reply, String> {
    let reply = tab
        .post(&format!("/signin/flows/{flow}/{path}"), session, body)
        .await
        .map_err(|e| transport(leg, &e))?;
    let status = reply.body["status"].as_str().unwrap_or_default();
    if !reply.status.is_success() || !(expected.is_empty() || expected.contains(&status)) {
        return Err(refused(leg, &reply));
    }
    Ok(reply)
}

/// The typed username, for the modes whose first factor is not a passkey.
async fn identify(tab: &mut Tab, flow: &str, username: &str) -> Result<Reply, String> {
    step(
        tab,
        "identify",
        flow,
        "identify",
        None,
        &json!({"username": username}),
        &["firstFactor"],
    )
    .await
}

/// What ends a sign-in: `granted`, or `completed` when the flow came from /authorize and the
/// code was issued.
const DONE: &[&str] = &["granted", "completed"];

/// The application's side of one sign-in: its authorization request (PKCE, state, nonce) and,
/// at the end, the code exchanged and the ID token checked.
struct Authorization {
    state: String,
    nonce: String,
    verifier: String,
}

impl Authorization {
    /// Starts a flow: `/authorize` with PKCE, or `POST /signin/flows` without OIDC.
    async fn start(
        tab: &mut Tab,
        client_id: &str,
        oidc: Option<&Oidc>,
    ) -> Result<(String, Authorization), String> {
        let rng = SystemRandom::new();
        let request = Authorization {
            state: random_text(&rng, 16),
            nonce: random_text(&rng, 16),
            verifier: random_text(&rng, 32),
        };
        let challenge = b64url(
            ring::digest::digest(&ring::digest::SHA256, request.verifier.as_bytes()).as_ref(),
        );
        let flow_id = match oidc {
            Some(_) => {
                let query = format!(
                    "/oauth2/v2.0/authorize?client_id={client_id}&redirect_uri={}&response_type=code\
                     &scope=openid%20profile%20offline_access&state={}&nonce={}\
                     &code_challenge={challenge}&code_challenge_method=S256",
                    percent_encode(REDIRECT_URI),
                    request.state,
                    request.nonce,
                );
                let reply = tab
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
                let reply = tab
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
        Ok((flow_id, request))
    }

    /// With OIDC: the code from the flow's last reply, exchanged with the PKCE verifier, and
    /// the ID token validated as a relying party must. Without: nothing more to do.
    async fn finish(
        &self,
        tab: &mut Tab,
        client_id: &str,
        oidc: Option<&Oidc>,
        last: &Reply,
    ) -> Result<(), String> {
        let Some(oidc) = oidc else {
            return Ok(());
        };
        let redirect = last.body["redirectUrl"]
            .as_str()
            .ok_or_else(|| "flow: no redirectUrl".to_string())?;
        if query_value(redirect, "state").as_deref() != Some(self.state.as_str()) {
            return Err("flow: state mismatch".into());
        }
        let code = query_value(redirect, "code").ok_or_else(|| "flow: no code".to_string())?;
        let token = tab
            .post_form(
                "/oauth2/v2.0/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", client_id),
                    ("code_verifier", &self.verifier),
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
        oidc.validate(id_token, client_id, &self.nonce)
    }
}

/// One complete sign-in of `user` to the application `client_id`, the way the person's method
/// makes it. The error is a short kind ("verify: HTTP 400 passkeySignatureInvalid"), counted
/// in the report.
pub async fn sign_in(
    tab: &mut Tab,
    client_id: &str,
    user: &mut BenchUser,
    oidc: Option<&Oidc>,
) -> Result<LegTimes, String> {
    let mut legs = Legs::new();
    let (flow, request) = Authorization::start(tab, client_id, oidc).await?;
    legs.done();
    let last = match &mut user.method {
        Method::Passkey(passkey) => {
            let (last, times) =
                with_passkey(tab, &flow, None, passkey, "options", "verify").await?;
            legs.times.extend(times);
            legs.began = Instant::now();
            last
        }
        Method::PasswordAndApp { password, app } => {
            identify(tab, &flow, &user.upn).await?;
            legs.done();
            let signed_in = step(
                tab,
                "password",
                &flow,
                "password",
                None,
                &json!({"password": password}),
                &["requirements", "granted", "completed"],
            )
            .await?;
            legs.done();
            if signed_in.body["status"] != "requirements" {
                // No policy asked for more (a run with no policies): there is no code leg.
                legs.times.push(Duration::ZERO);
                signed_in
            } else {
                let session = signed_in
                    .session_cookie
                    .ok_or_else(|| "password: no session cookie".to_string())?;
                let code = app
                    .next_code()
                    .ok_or_else(|| "code: this step's code was already used".to_string())?;
                let last = step(
                    tab,
                    "code",
                    &flow,
                    "totp",
                    Some(&session),
                    &json!({"code": code}),
                    DONE,
                )
                .await?;
                legs.done();
                last
            }
        }
        Method::FirstPass(pass) => {
            let pass = pass
                .take()
                .ok_or_else(|| "pass: already used".to_string())?;
            identify(tab, &flow, &user.upn).await?;
            legs.done();
            let signed_in = step(
                tab,
                "pass",
                &flow,
                "tap",
                None,
                &json!({"temporaryAccessPass": pass}),
                &["registrationNeeded"],
            )
            .await?;
            let session = signed_in
                .session_cookie
                .ok_or_else(|| "pass: no session cookie".to_string())?;
            legs.done();
            let options = step(
                tab,
                "register",
                &flow,
                "registration/options",
                Some(&session),
                &json!({"device": "this"}),
                &[],
            )
            .await?;
            let (mut passkey, credential) =
                SoftPasskey::create(&options.body["options"], tab.origin())
                    .map_err(|e| format!("register: {e}"))?;
            step(
                tab,
                "register",
                &flow,
                "registration",
                Some(&session),
                &json!({"ceremonyId": options.body["ceremonyId"], "name": "Bench key", "credential": credential}),
                &["proveRegistration"],
            )
            .await?;
            legs.done();
            let (last, _) =
                with_passkey(tab, &flow, Some(&session), &mut passkey, "prove", "prove").await?;
            legs.done();
            last
        }
    };
    request.finish(tab, client_id, oidc, &last).await?;
    if oidc.is_some() {
        legs.done();
    }
    Ok(legs.times)
}

/// Options and an assertion with `passkey` in the flow; the last reply and the two legs' times.
async fn with_passkey(
    tab: &mut Tab,
    flow: &str,
    session: Option<&str>,
    passkey: &mut SoftPasskey,
    options_leg: &str,
    verify_leg: &str,
) -> Result<(Reply, [Duration; 2]), String> {
    let began = Instant::now();
    let options = step(
        tab,
        options_leg,
        flow,
        "passkey/options",
        session,
        &json!({}),
        &[],
    )
    .await?;
    let options_time = began.elapsed();
    let began = Instant::now();
    let assertion = passkey
        .assert(&options.body["options"])
        .map_err(|e| format!("{options_leg}: {e}"))?;
    let verified = step(
        tab,
        verify_leg,
        flow,
        "passkey/verify",
        session,
        &json!({"ceremonyId": options.body["ceremonyId"], "credential": assertion}),
        DONE,
    )
    .await?;
    Ok((verified, [options_time, began.elapsed()]))
}

/// A query parameter of a URL or a relative reference, percent- and `+`-decoded.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key).as_deref() == Some(name)).then(|| decode(value))?
    })
}

/// `application/x-www-form-urlencoded` decoding; `None` for a malformed escape.
fn decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(b) = rest.next() {
        bytes.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [rest.next()?, rest.next()?];
                // from_str_radix alone would take "%+1" as a signed number.
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_found_and_decoded() {
        let url = "https://app.example/cb?code=a%2Bb%3D&state=x+y&flow=&empty#frag";
        assert_eq!(query_value(url, "code").as_deref(), Some("a+b="));
        assert_eq!(query_value(url, "state").as_deref(), Some("x y"));
        assert_eq!(query_value(url, "flow").as_deref(), Some(""));
        assert_eq!(query_value(url, "missing"), None);
        assert_eq!(
            query_value("/signin?flow=abc", "flow").as_deref(),
            Some("abc")
        );
        assert_eq!(query_value("/signin", "flow"), None);
        // A broken escape is no value rather than a wrong one.
        assert_eq!(query_value("/cb?code=%4", "code"), None);
        assert_eq!(query_value("/cb?code=%+1", "code"), None);
        assert_eq!(query_value("/cb?code=%zz", "code"), None);
    }

    #[test]
    fn what_is_encoded_decodes_to_itself() {
        let text = "https://app.example/cb?x=1 & y/é";
        let encoded = percent_encode(text);
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
        );
        assert_eq!(decode(&encoded).as_deref(), Some(text));
    }
}
