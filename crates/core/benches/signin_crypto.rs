//! The cryptography of one passkey sign-in, per call: verifying the assertion the way the
//! server does (webauthn-rs, every check), the bare ES256 verification inside it with the
//! RustCrypto `p256` crate webauthn-rs uses and with `ring` for comparison, and signing a token
//! with ES256: through jsonwebtoken's RustCrypto provider (what `TokenService` used), through
//! Portcullis's ring provider (what it uses now), and with `ring` alone.
//!
//! BENCHMARKS.md reads these next to the load generator's figures to say where a sign-in's
//! time goes.

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, PublicKeyCredential, RegisterPublicKeyCredential, Url,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

const ORIGIN: &str = "http://localhost:8080";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key() -> SigningKey {
    // A fixed key: runs are comparable, and its value does not matter to the cost.
    SigningKey::from_bytes(&[7u8; 32].into()).expect("a valid scalar")
}

fn client_data(kind: &str, challenge: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": kind, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false}),
    )
    .expect("client data")
}

/// A registered passkey (through webauthn-rs, attestation `none`) and the key behind it.
fn registered(webauthn: &Webauthn, key: &SigningKey) -> Credential {
    let user = uuid::Uuid::from_u128(42);
    let (options, state) = webauthn
        .start_passkey_registration(user, "bench@example.com", "Bench", None)
        .expect("registration starts");
    let options = serde_json::to_value(&options).expect("options serialize");
    let challenge = options["publicKey"]["challenge"]
        .as_str()
        .expect("challenge");
    let point = key.verifying_key().to_encoded_point(false);
    let cose = Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
        (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
        (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
        (
            Cbor::Integer((-2).into()),
            Cbor::Bytes(point.x().expect("x").to_vec()),
        ),
        (
            Cbor::Integer((-3).into()),
            Cbor::Bytes(point.y().expect("y").to_vec()),
        ),
    ]);
    let id = [9u8; 32];
    let mut auth_data = Sha256::digest(b"localhost").to_vec();
    auth_data.push(0x01 | 0x04 | 0x40);
    auth_data.extend_from_slice(&0u32.to_be_bytes());
    auth_data.extend_from_slice(&[0u8; 16]);
    auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
    auth_data.extend_from_slice(&id);
    ciborium::into_writer(&cose, &mut auth_data).expect("COSE key");
    let object = Cbor::Map(vec![
        (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
        (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
        (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
    ]);
    let mut attestation = Vec::new();
    ciborium::into_writer(&object, &mut attestation).expect("attestation object");
    let response: RegisterPublicKeyCredential = serde_json::from_value(json!({
        "id": b64(&id), "rawId": b64(&id), "type": "public-key",
        "response": {"clientDataJSON": b64(&client_data("webauthn.create", challenge)),
                     "attestationObject": b64(&attestation)},
        "clientExtensionResults": {},
    }))
    .expect("registration response parses");
    let passkey = webauthn
        .finish_passkey_registration(&response, &state)
        .expect("registration verifies");
    passkey.into()
}

/// A discoverable sign-in's state and an assertion answering it.
fn assertion(webauthn: &Webauthn, key: &SigningKey) -> (DiscoverableAuthentication, Value) {
    let (options, state) = webauthn
        .start_discoverable_authentication()
        .expect("sign-in starts");
    let options = serde_json::to_value(&options).expect("options serialize");
    let challenge = options["publicKey"]["challenge"]
        .as_str()
        .expect("challenge");
    let data = client_data("webauthn.get", challenge);
    let mut signed = Sha256::digest(b"localhost").to_vec();
    signed.push(0x01 | 0x04);
    signed.extend_from_slice(&1u32.to_be_bytes());
    let auth_data = signed.clone();
    signed.extend_from_slice(&Sha256::digest(&data));
    let signature: Signature = key.sign(&signed);
    let id = [9u8; 32];
    let credential = json!({
        "id": b64(&id), "rawId": b64(&id), "type": "public-key",
        "response": {"clientDataJSON": b64(&data), "authenticatorData": b64(&auth_data),
                     "signature": b64(signature.to_der().as_bytes()),
                     "userHandle": b64(uuid::Uuid::from_u128(42).as_bytes())},
        "clientExtensionResults": {},
    });
    (state, credential)
}

fn webauthn_assertion(c: &mut Criterion) {
    let webauthn = WebauthnBuilder::new("localhost", &Url::parse(ORIGIN).expect("origin"))
        .expect("builder")
        .build()
        .expect("webauthn");
    let key = key();
    let credential = registered(&webauthn, &key);
    let (state, response) = assertion(&webauthn, &key);
    c.bench_function(
        "webauthn-rs: parse + verify a discoverable assertion",
        |b| {
            b.iter_batched(
                || state.clone(),
                |state| {
                    let parsed: PublicKeyCredential =
                        serde_json::from_value(response.clone()).expect("assertion parses");
                    webauthn
                        .finish_discoverable_authentication_v2(&parsed, state, &credential)
                        .expect("assertion verifies")
                },
                BatchSize::SmallInput,
            )
        },
    );
}

fn raw_es256_verify(c: &mut Criterion) {
    let key = key();
    let message = [0x5au8; 69];
    let signature: Signature = key.sign(&message);
    let der = signature.to_der();
    let verifying = *key.verifying_key();
    c.bench_function("ES256 verify: p256 0.13 (RustCrypto)", |b| {
        b.iter(|| {
            verifying
                .verify(black_box(&message), black_box(&signature))
                .expect("verifies")
        })
    });
    let point = verifying.to_encoded_point(false);
    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        point.as_bytes().to_vec(),
    );
    c.bench_function("ES256 verify: ring 0.17", |b| {
        b.iter(|| {
            ring_key
                .verify(black_box(&message), black_box(der.as_bytes()))
                .expect("verifies")
        })
    });
}

fn token_signing(c: &mut Criterion) {
    let key = key();
    let der = key.to_pkcs8_der().expect("pkcs8");
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
    // An ID token's claims, the size a sign-in's token has.
    let claims = json!({
        "iss": "http://localhost:8080/00000000-0000-4000-8000-000000000001/v2.0",
        "aud": "4a1f2c3d-0000-4000-8000-00000000abcd",
        "sub": "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA", "oid": "8e0c7a52-1111-4000-8000-000000000042",
        "tid": "00000000-0000-4000-8000-000000000001", "nonce": "n-0S6_WzA2Mj",
        "preferred_username": "bench0@bench.example", "name": "Bench user 0",
        "amr": ["fido", "mfa"], "acr": "phishingResistant",
        "iat": 1_760_000_000, "nbf": 1_760_000_000, "exp": 1_760_003_600, "auth_time": 1_760_000_000,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("bench-key".into());
    // What `jsonwebtoken::encode` does for the signature, per token: ask the provider for a
    // signer for the key, then sign. Its RustCrypto provider (what TokenService used before)
    // against the ring provider TokenService installs now.
    let message = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).expect("header")),
        b64(&serde_json::to_vec(&claims).expect("claims"))
    );
    let alg = jsonwebtoken::Algorithm::ES256;
    for (name, provider) in [
        (
            "ID token ES256 signature: jsonwebtoken's RustCrypto provider (before)",
            &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
        ),
        (
            "ID token ES256 signature: Portcullis's ring provider (TokenService now)",
            portcullis_core::oidc::tokens::jose_ring::provider(),
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                (provider.signer_factory)(&alg, &encoding)
                    .expect("signer")
                    .try_sign(black_box(message.as_bytes()))
                    .expect("signs")
            })
        });
    }
    let rng = ring::rand::SystemRandom::new();
    let ring_key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der.as_bytes(),
        &rng,
    )
    .expect("ring loads the key");
    c.bench_function("ES256 sign: ring 0.17 (same signing input)", |b| {
        b.iter(|| {
            ring_key
                .sign(&rng, black_box(message.as_bytes()))
                .expect("signs")
        })
    });
}

criterion_group!(benches, webauthn_assertion, raw_es256_verify, token_signing);
criterion_main!(benches);
