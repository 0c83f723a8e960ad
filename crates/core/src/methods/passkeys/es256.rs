//! Passkey assertions signed with a P-256 key (ES256, what nearly every passkey uses), verified
//! with `ring` instead of the RustCrypto `p256` crate that webauthn-rs verifies with.
//!
//! Why: the load generator showed webauthn-rs's signature check to be the largest single cost of
//! a sign-in (`p256` verifies about 2,600 signatures a second per core here, `ring` about
//! 12,500). webauthn-rs offers no choice of backend, so this module makes the same decision
//! with every check webauthn-rs 0.6.2 makes, in the same order and with the same errors —
//! `authenticate_credential`, `authenticate_single_credential` and `verify_credential_internal`
//! — using webauthn-rs's own parsers for the authenticator data and the client data, its own
//! origin comparison and its own ceremony state. Only the signature arithmetic is `ring`'s.
//! Keys of any other kind (RSA, P-384, Ed25519) return `None`, and the caller hands them to
//! webauthn-rs unchanged.
//!
//! The unit tests below run both implementations on the same valid and falsified assertions and
//! require the same verdict for each. What this module must never do: accept anything
//! webauthn-rs would refuse, or grow a check of its own that webauthn-rs lacks without saying
//! so here.

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::Deserialize;
use webauthn_rs::prelude::{
    COSEKeyType, Credential, ECDSACurve, PublicKeyCredential, Url, WebauthnError,
};
use webauthn_rs_core::internals::AuthenticatorData;
use webauthn_rs_core::proto::{
    Authentication, CollectedClientData, UserVerificationPolicy, origin::origins_match,
};

/// The relying party as the `Webauthn` instance was built: one origin, no subdomains, no other
/// ports (WebauthnBuilder's defaults, which `Passkeys::new` keeps).
#[derive(Clone)]
pub(crate) struct RelyingParty {
    pub rp_id_hash: [u8; 32],
    pub origin: Url,
}

impl RelyingParty {
    pub fn new(rp_id: &str, origin: Url) -> Self {
        RelyingParty {
            rp_id_hash: sha256(rp_id.as_bytes()),
            origin,
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// The parts of webauthn-rs's `AuthenticationState` the verdict depends on, read from the same
/// serialized state the ceremony stored (webauthn-rs's `danger-allow-state-serialisation`).
#[derive(Deserialize)]
struct StoredState {
    ast: AuthenticationFacts,
}

#[derive(Deserialize)]
struct AuthenticationFacts {
    credentials: Vec<Credential>,
    policy: UserVerificationPolicy,
    #[serde(with = "b64url")]
    challenge: Vec<u8>,
    appid: Option<String>,
    allow_backup_eligible_upgrade: bool,
}

mod b64url {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(serde::de::Error::custom)
    }
}

/// The stored credential updated as `Passkey::update_credential` updates it (counter, backup
/// flags); the caller stores it after every sign-in, changed or not.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub credential: Credential,
}

/// Which webauthn-rs call this stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ceremony {
    /// `finish_passkey_authentication`: the credential is looked up in the state's allow list.
    AllowList,
    /// `finish_discoverable_authentication_v2`: the caller names the credential.
    Discoverable,
}

/// Verifies an assertion as webauthn-rs would; `None` when the credential's key is not P-256,
/// or the state cannot be read this way (the caller then asks webauthn-rs).
pub(crate) fn verify(
    rp: &RelyingParty,
    ceremony: Ceremony,
    state_text: &str,
    response: &PublicKeyCredential,
    stored: &Credential,
) -> Option<Result<Verified, WebauthnError>> {
    let state: StoredState = serde_json::from_str(state_text).ok()?;
    let state = state.ast;
    // authenticate_credential: the credential comes from the state's allow list.
    let cred = match ceremony {
        Ceremony::AllowList => {
            match state
                .credentials
                .iter()
                .find(|c| c.cred_id.as_slice() == response.raw_id.as_slice())
            {
                Some(c) => c.clone(),
                None => return Some(Err(WebauthnError::CredentialNotFound)),
            }
        }
        Ceremony::Discoverable => stored.clone(),
    };
    let (x, y) = match &cred.cred.key {
        COSEKeyType::EC_EC2(ec) if ec.curve == ECDSACurve::SECP256R1 => (&ec.x, &ec.y),
        _ => return None,
    };
    Some(verify_p256(rp, &state, response, &cred, x, y).map(|facts| facts.apply_to(stored.clone())))
}

fn verify_p256(
    rp: &RelyingParty,
    state: &AuthenticationFacts,
    rsp: &PublicKeyCredential,
    cred: &Credential,
    x: &[u8],
    y: &[u8],
) -> Result<Asserted, WebauthnError> {
    // authenticate_single_credential
    if cred.cred_id.as_slice() != rsp.raw_id.as_slice() {
        return Err(WebauthnError::CredentialNotFound);
    }
    // verify_credential_internal: parse as AuthenticatorAssertionResponse::try_from does.
    let raw = &rsp.response;
    let auth_data =
        AuthenticatorData::<Authentication>::try_from(raw.authenticator_data.as_slice())?;
    let client: CollectedClientData = serde_json::from_slice(raw.client_data_json.as_slice())
        .map_err(WebauthnError::ParseJSONFailure)?;
    if client.type_ != "webauthn.get" {
        return Err(WebauthnError::InvalidClientDataType);
    }
    if client.challenge.as_slice() != state.challenge.as_slice() {
        return Err(WebauthnError::MismatchedChallenge);
    }
    if !origins_match(false, false, &client.origin, &rp.origin) {
        return Err(WebauthnError::InvalidRPOrigin);
    }
    let appid_hash = if rsp.extensions.appid.unwrap_or(false) {
        state.appid.as_ref().map(|id| sha256(id.as_bytes()))
    } else {
        None
    };
    // The parser accepted the data, so it holds at least the 32-byte RP ID hash.
    let rp_id_hash = &raw.authenticator_data[..32];
    if !(rp_id_hash == rp.rp_id_hash || Some(rp_id_hash) == appid_hash.as_ref().map(|h| &h[..])) {
        return Err(WebauthnError::InvalidRPIDHash);
    }
    if !auth_data.user_present {
        return Err(WebauthnError::UserNotPresent);
    }
    match (&state.policy, &cred.registration_policy) {
        (_, UserVerificationPolicy::Required) | (UserVerificationPolicy::Required, _)
            if !auth_data.user_verified =>
        {
            return Err(WebauthnError::UserNotVerified);
        }
        (_, UserVerificationPolicy::Preferred)
            if cred.user_verified && !auth_data.user_verified =>
        {
            return Err(WebauthnError::UserNotVerified);
        }
        _ => {}
    }
    if cred.backup_eligible != auth_data.backup_eligible
        && !(state.allow_backup_eligible_upgrade
            && !cred.backup_eligible
            && auth_data.backup_eligible)
    {
        return Err(WebauthnError::CredentialBackupEligibilityInconsistent);
    }
    if auth_data.backup_state && !cred.backup_eligible {
        return Err(WebauthnError::CredentialMayNotBeHardwareBound);
    }
    // webauthn-rs builds the key from the raw coordinates first and fails on a bad point.
    if x.len() != 32 || y.len() != 32 {
        return Err(WebauthnError::EcdsaPointInvalid);
    }
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..33].copy_from_slice(x);
    point[33..].copy_from_slice(y);
    let mut signed = Vec::with_capacity(raw.authenticator_data.len() + 32);
    signed.extend_from_slice(&raw.authenticator_data);
    signed.extend_from_slice(&sha256(&raw.client_data_json));
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point[..])
        .verify(&signed, &raw.signature)
        .map_err(|_| WebauthnError::AuthenticationFailure)?;

    // authenticate_single_credential, after the signature: the counter.
    let counter = auth_data.counter;
    if (counter > 0 || cred.counter > 0) && counter <= cred.counter {
        return Err(WebauthnError::CredentialPossibleCompromise);
    }
    Ok(Asserted {
        counter,
        backup_eligible: auth_data.backup_eligible,
        backup_state: auth_data.backup_state,
    })
}

/// What the assertion said, as webauthn-rs's `AuthenticationResult` carries it.
struct Asserted {
    counter: u32,
    backup_eligible: bool,
    backup_state: bool,
}

impl Asserted {
    /// `Passkey::update_credential` on the stored credential.
    fn apply_to(self, mut cred: Credential) -> Verified {
        if self.counter > cred.counter {
            cred.counter = self.counter;
        }
        if self.backup_state != cred.backup_state {
            cred.backup_state = self.backup_state;
        }
        if self.backup_eligible && !cred.backup_eligible {
            cred.backup_eligible = true;
        }
        Verified { credential: cred }
    }
}

#[cfg(test)]
mod tests {
    //! Differential tests: webauthn-rs and this module judge the same assertions, honest and
    //! falsified field by field, and must agree on every verdict and on the updated credential.

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ciborium::Value as Cbor;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};
    use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, RegisterPublicKeyCredential};
    use webauthn_rs::{Webauthn, WebauthnBuilder};

    use super::*;

    const ORIGIN: &str = "http://localhost:8080";

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn webauthn() -> Webauthn {
        WebauthnBuilder::new("localhost", &Url::parse(ORIGIN).unwrap())
            .unwrap()
            .build()
            .unwrap()
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false}),
        )
        .unwrap()
    }

    /// A passkey registered through webauthn-rs with flags `flags` (UP|UV|AT at least).
    fn register(w: &Webauthn, key: &SigningKey, id: &[u8], flags: u8) -> Passkey {
        let (options, state) = w
            .start_passkey_registration(uuid::Uuid::from_u128(7), "a@b.c", "A", None)
            .unwrap();
        let options = serde_json::to_value(&options).unwrap();
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let point = key.verifying_key().to_encoded_point(false);
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (
                Cbor::Integer((-2).into()),
                Cbor::Bytes(point.x().unwrap().to_vec()),
            ),
            (
                Cbor::Integer((-3).into()),
                Cbor::Bytes(point.y().unwrap().to_vec()),
            ),
        ]);
        let mut auth = Sha256::digest(b"localhost").to_vec();
        auth.push(flags);
        auth.extend_from_slice(&0u32.to_be_bytes());
        auth.extend_from_slice(&[0u8; 16]);
        auth.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth.extend_from_slice(id);
        ciborium::into_writer(&cose, &mut auth).unwrap();
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth)),
        ]);
        let mut att = Vec::new();
        ciborium::into_writer(&object, &mut att).unwrap();
        let response: RegisterPublicKeyCredential = serde_json::from_value(json!({
            "id": b64(id), "rawId": b64(id), "type": "public-key",
            "response": {"clientDataJSON": b64(&client_data("webauthn.create", challenge, ORIGIN)),
                         "attestationObject": b64(&att)},
            "clientExtensionResults": {},
        }))
        .unwrap();
        w.finish_passkey_registration(&response, &state).unwrap()
    }

    /// One falsification of an honest assertion.
    #[derive(Default, Clone)]
    struct Fake {
        kind: Option<&'static str>,
        origin: Option<&'static str>,
        challenge: Option<String>,
        rp_id: Option<&'static str>,
        flags: Option<u8>,
        count: Option<u32>,
        flip_signature: bool,
        truncate_auth_data: bool,
        other_key: bool,
        garbage_client_data: bool,
        raw_id: Option<Vec<u8>>,
    }

    fn assertion(key: &SigningKey, id: &[u8], challenge: &str, f: &Fake) -> Value {
        let data = if f.garbage_client_data {
            b"{not json".to_vec()
        } else {
            client_data(
                f.kind.unwrap_or("webauthn.get"),
                f.challenge.as_deref().unwrap_or(challenge),
                f.origin.unwrap_or(ORIGIN),
            )
        };
        let mut auth = Sha256::digest(f.rp_id.unwrap_or("localhost").as_bytes()).to_vec();
        auth.push(f.flags.unwrap_or(0x05));
        auth.extend_from_slice(&f.count.unwrap_or(5).to_be_bytes());
        if f.truncate_auth_data {
            auth.truncate(30);
        }
        let mut signed = auth.clone();
        signed.extend_from_slice(&Sha256::digest(&data));
        let signer = if f.other_key {
            SigningKey::from_bytes(&[3u8; 32].into()).unwrap()
        } else {
            key.clone()
        };
        let sig: Signature = signer.sign(&signed);
        let mut der = sig.to_der().as_bytes().to_vec();
        if f.flip_signature {
            let last = der.len() - 1;
            der[last] ^= 1;
        }
        let raw_id = f.raw_id.clone().unwrap_or(id.to_vec());
        json!({
            "id": b64(&raw_id), "rawId": b64(&raw_id), "type": "public-key",
            "response": {"clientDataJSON": b64(&data), "authenticatorData": b64(&auth),
                         "signature": b64(&der), "userHandle": b64(uuid::Uuid::from_u128(7).as_bytes())},
            "clientExtensionResults": {},
        })
    }

    /// Accepted with (counter, backup eligible, backup state) stored afterwards, or refused.
    type Verdict = Result<(u32, bool, bool), WebauthnError>;

    fn both(passkey: &Passkey, f: &Fake) -> (Verdict, Verdict) {
        let w = webauthn();
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let id = [9u8; 32];
        let (options, state): (_, DiscoverableAuthentication) =
            w.start_discoverable_authentication().unwrap();
        let options = serde_json::to_value(&options).unwrap();
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_string();
        let response: PublicKeyCredential =
            serde_json::from_value(assertion(&key, &id, &challenge, f)).unwrap();
        let credential: Credential = passkey.clone().into();
        let text = serde_json::to_string(&state).unwrap();
        let theirs = w
            .finish_discoverable_authentication_v2(&response, state, &credential)
            .map(|r| {
                let mut p = passkey.clone();
                p.update_credential(&r);
                let c: Credential = p.into();
                (c.counter, c.backup_eligible, c.backup_state)
            });
        let rp = RelyingParty::new("localhost", Url::parse(ORIGIN).unwrap());
        let ours = verify(&rp, Ceremony::Discoverable, &text, &response, &credential)
            .expect("a P-256 key takes the fast path")
            .map(|v| {
                (
                    v.credential.counter,
                    v.credential.backup_eligible,
                    v.credential.backup_state,
                )
            });
        (theirs, ours)
    }

    fn same_verdict(passkey: &Passkey, f: Fake, accept: bool) {
        let (theirs, ours) = both(passkey, &f);
        match (&theirs, &ours) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
            _ => panic!("webauthn-rs: {theirs:?}, ring path: {ours:?}"),
        }
        assert_eq!(theirs.is_ok(), accept, "{theirs:?}");
    }

    #[test]
    fn both_implementations_agree_on_honest_and_falsified_assertions() {
        let w = webauthn();
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let id = [9u8; 32];
        let passkey = register(&w, &key, &id, 0x45);
        same_verdict(&passkey, Fake::default(), true);
        // An authenticator that keeps no counter (zero before and after) is accepted by both.
        same_verdict(
            &passkey,
            Fake {
                count: Some(0),
                ..Fake::default()
            },
            true,
        );
        let cases: Vec<Fake> = vec![
            Fake {
                kind: Some("webauthn.create"),
                ..Fake::default()
            },
            Fake {
                origin: Some("http://localhost:8081"),
                ..Fake::default()
            },
            Fake {
                origin: Some("https://localhost:8080"),
                ..Fake::default()
            },
            Fake {
                origin: Some("http://evil.localhost:8080"),
                ..Fake::default()
            },
            Fake {
                challenge: Some(b64(b"another challenge")),
                ..Fake::default()
            },
            Fake {
                rp_id: Some("example.com"),
                ..Fake::default()
            },
            Fake {
                flags: Some(0x04),
                ..Fake::default()
            },
            Fake {
                flags: Some(0x01),
                ..Fake::default()
            },
            Fake {
                flags: Some(0x05 | 0x08),
                ..Fake::default()
            },
            Fake {
                flags: Some(0x05 | 0x10),
                ..Fake::default()
            },
            Fake {
                flip_signature: true,
                ..Fake::default()
            },
            Fake {
                other_key: true,
                ..Fake::default()
            },
            Fake {
                truncate_auth_data: true,
                ..Fake::default()
            },
            Fake {
                garbage_client_data: true,
                ..Fake::default()
            },
            Fake {
                raw_id: Some(vec![1u8; 32]),
                ..Fake::default()
            },
        ];
        for f in cases {
            same_verdict(&passkey, f, false);
        }
    }

    #[test]
    fn a_counter_that_does_not_advance_is_refused_by_both() {
        let w = webauthn();
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let passkey = register(&w, &key, &[9u8; 32], 0x45);
        let mut cred: Credential = passkey.into();
        cred.counter = 5;
        let passkey: Passkey = cred.into();
        same_verdict(&passkey, Fake::default(), false);
        same_verdict(
            &passkey,
            Fake {
                count: Some(6),
                ..Fake::default()
            },
            true,
        );
    }

    #[test]
    fn backup_flags_are_judged_and_recorded_alike() {
        let w = webauthn();
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        // A synced passkey: backup eligible and backed up at registration.
        let synced = register(&w, &key, &[9u8; 32], 0x45 | 0x08 | 0x10);
        same_verdict(
            &synced,
            Fake {
                flags: Some(0x05 | 0x08 | 0x10),
                ..Fake::default()
            },
            true,
        );
        same_verdict(
            &synced,
            Fake {
                flags: Some(0x05 | 0x08),
                ..Fake::default()
            },
            true,
        );
        same_verdict(
            &synced,
            Fake {
                flags: Some(0x05),
                ..Fake::default()
            },
            false,
        );
    }
}
