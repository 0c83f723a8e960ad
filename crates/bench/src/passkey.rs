//! The generator's software passkeys: one ES256 key per user, signed with `ring` so that the
//! generator spends as little of the shared CPU as it can on its own side of the ceremony.
//!
//! The bytes are built as a browser and a CTAP2 authenticator build them (client data JSON,
//! authenticator data, a `none` attestation object), the same shape the test kit's
//! authenticator sends, so the server runs every check it runs for a real browser.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// The AAGUID the generator's passkeys report (the test kit's software authenticator's, so a
/// tenant whose allow-list names it admits both).
pub const BENCH_AAGUID: [u8; 16] = [
    0x7e, 0x57, 0xa0, 0xa0, 0x00, 0x00, 0x40, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn from_b64url(text: &str) -> anyhow::Result<Vec<u8>> {
    Ok(URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))?)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// One discoverable credential of one user on one relying party.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub origin: String,
    /// The authenticator keeps a counter, as a security key does; each assertion moves it on,
    /// so two sign-ins with one passkey must never be in flight at once (the server would
    /// rightly call the slower one a clone).
    pub sign_count: u32,
}

fn str_field<'a>(v: &'a Value, what: &str) -> anyhow::Result<&'a str> {
    v.as_str()
        .ok_or_else(|| anyhow::anyhow!("the server's WebAuthn options lack {what}"))
}

impl SoftPasskey {
    /// Answers the server's creation options (`{"publicKey": …}`) with a new credential:
    /// the passkey, and the credential as `PublicKeyCredential.toJSON()`.
    pub fn create(options: &Value, origin: &str) -> anyhow::Result<(SoftPasskey, Value)> {
        let rng = SystemRandom::new();
        let pk = &options["publicKey"];
        let rp_id = str_field(&pk["rp"]["id"], "rp.id")?.to_string();
        let challenge = from_b64url(str_field(&pk["challenge"], "a challenge")?)?;
        let user_handle = from_b64url(str_field(&pk["user"]["id"], "user.id")?)?;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("cannot load the generated key"))?;
        let mut credential_id = vec![0u8; 32];
        rng.fill(&mut credential_id)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;

        // An uncompressed SEC1 point: 0x04, x, y.
        let point = key.public_key().as_ref();
        let cose_key = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())), // kty: EC2
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())), // alg: ES256
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())), // crv: P-256
            (
                Cbor::Integer((-2).into()),
                Cbor::Bytes(point[1..33].to_vec()),
            ),
            (
                Cbor::Integer((-3).into()),
                Cbor::Bytes(point[33..65].to_vec()),
            ),
        ]);
        let mut auth_data = Vec::with_capacity(200);
        auth_data.extend_from_slice(&sha256(rp_id.as_bytes()));
        auth_data.push(FLAG_UP | FLAG_UV | FLAG_AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&BENCH_AAGUID);
        auth_data.extend_from_slice(&(credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&credential_id);
        ciborium::into_writer(&cose_key, &mut auth_data)?;
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&object, &mut attestation_object)?;
        let client_data = client_data("webauthn.create", &challenge, origin);
        let credential = json!({
            "id": b64url(&credential_id),
            "rawId": b64url(&credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(&client_data),
                "attestationObject": b64url(&attestation_object),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        });
        let passkey = SoftPasskey {
            key,
            credential_id,
            user_handle,
            rp_id,
            origin: origin.to_string(),
            sign_count: 0,
        };
        Ok((passkey, credential))
    }

    /// Answers the server's request options with an assertion, as
    /// `PublicKeyCredential.toJSON()`.
    pub fn assert(&mut self, options: &Value) -> anyhow::Result<Value> {
        let pk = &options["publicKey"];
        let rp_id = str_field(&pk["rpId"], "rpId")?;
        anyhow::ensure!(
            rp_id == self.rp_id,
            "the server asks for RP '{rp_id}', the passkey belongs to '{}'",
            self.rp_id
        );
        let challenge = from_b64url(str_field(&pk["challenge"], "a challenge")?)?;
        self.sign_count += 1;
        let client_data = client_data("webauthn.get", &challenge, &self.origin);
        let mut signed = Vec::with_capacity(37 + 32);
        signed.extend_from_slice(&sha256(self.rp_id.as_bytes()));
        signed.push(FLAG_UP | FLAG_UV);
        signed.extend_from_slice(&self.sign_count.to_be_bytes());
        let auth_data_len = signed.len();
        signed.extend_from_slice(&sha256(&client_data));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(json!({
            "id": b64url(&self.credential_id),
            "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(&client_data),
                "authenticatorData": b64url(&signed[..auth_data_len]),
                "signature": b64url(signature.as_ref()),
                "userHandle": b64url(&self.user_handle),
            },
            "clientExtensionResults": {},
        }))
    }
}

fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": kind,
        "challenge": b64url(challenge),
        "origin": origin,
        "crossOrigin": false,
    }))
    .expect("client data serializes")
}
