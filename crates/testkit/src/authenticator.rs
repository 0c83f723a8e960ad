//! A software passkey authenticator for tests: ES256 keys (the `p256` crate), client data,
//! authenticator data and attestation objects built byte by byte as a browser and a CTAP2
//! authenticator would, with attestation `none`, packed self-attestation, or packed full
//! attestation whose x5c chains to a test root made by [`TestAttestationCa`].
//!
//! Browsers refuse many bad inputs before a server sees them (no user verification, a wrong
//! origin), so the server's own checks can only be tested from code like this: every field a
//! test may want to falsify is a knob on [`Tweaks`].
//!
//! What it must never do: be used outside tests. Its keys live in memory and its "user
//! verification" is a flag.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The AAGUID the test authenticator reports unless a test says otherwise.
pub const TEST_AAGUID: Uuid = Uuid::from_u128(0x7e57_a0a0_0000_4000_8000_0000_0000_0001);

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn from_b64url(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("server options carry base64url")
}

fn random_key() -> SigningKey {
    loop {
        // A random 256-bit value is out of range for P-256 with negligible probability.
        let bytes: [u8; 32] = rand::random();
        if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
            return key;
        }
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// How the authenticator attests a new credential.
#[derive(Clone)]
pub enum Attestation {
    /// `fmt: "none"`: what synced passkeys and most browsers send.
    None,
    /// `fmt: "packed"` signed with the new credential's own key.
    SelfAttested,
    /// `fmt: "packed"` with an attestation certificate issued by this root.
    Full(TestAttestationCa),
}

/// Falsifications and options for one ceremony. `Tweaks::default()` is an honest answer.
#[derive(Debug, Clone, Default)]
pub struct Tweaks {
    /// Origin in the client data instead of the real one.
    pub origin: Option<String>,
    /// RP ID hashed into the authenticator data instead of the one the options name.
    pub rp_id: Option<String>,
    /// Clear the user-verified flag.
    pub no_user_verification: bool,
    /// Answer this challenge instead of the options' one.
    pub challenge: Option<Vec<u8>>,
    /// Report this signature counter (assertions) instead of the next one.
    pub sign_count: Option<u32>,
    /// Replace the client data JSON with these bytes.
    pub client_data: Option<Vec<u8>>,
    /// Replace the attestation object (registration) or authenticator data (sign-in) with these
    /// bytes.
    pub raw_object: Option<Vec<u8>>,
    /// Sign in with this credential (index into [`SoftwareAuthenticator::credentials`]).
    pub credential: Option<usize>,
}

/// One credential the authenticator holds.
#[derive(Clone)]
pub struct SoftCredential {
    pub id: Vec<u8>,
    pub key: SigningKey,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub sign_count: u32,
}

#[derive(Clone)]
pub struct SoftwareAuthenticator {
    pub aaguid: Uuid,
    pub attestation: Attestation,
    /// Whether the authenticator keeps a signature counter (synced passkeys keep none: 0).
    pub counts_signatures: bool,
    /// Backup eligible and backed up: a synced passkey.
    pub synced: bool,
    /// The page's origin, e.g. `http://localhost:1234`.
    pub origin: String,
    pub credentials: Vec<SoftCredential>,
}

impl SoftwareAuthenticator {
    pub fn new(origin: &str, aaguid: Uuid, attestation: Attestation) -> Self {
        SoftwareAuthenticator {
            aaguid,
            attestation,
            counts_signatures: true,
            synced: false,
            origin: origin.to_string(),
            credentials: Vec::new(),
        }
    }

    fn flags(&self, extra: u8, tweaks: &Tweaks) -> u8 {
        let mut flags = FLAG_UP | extra;
        if !tweaks.no_user_verification {
            flags |= FLAG_UV;
        }
        if self.synced {
            flags |= FLAG_BE | FLAG_BS;
        }
        flags
    }

    fn client_data(&self, kind: &str, challenge: &[u8], tweaks: &Tweaks) -> Vec<u8> {
        if let Some(raw) = &tweaks.client_data {
            return raw.clone();
        }
        let challenge = tweaks.challenge.as_deref().unwrap_or(challenge);
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": b64url(challenge),
            "origin": tweaks.origin.as_deref().unwrap_or(&self.origin),
            "crossOrigin": false,
        }))
        .expect("client data serializes")
    }

    /// Answers `navigator.credentials.create()` for the server's creation options (the whole
    /// `{"publicKey": …}` object). Returns the credential as `PublicKeyCredential.toJSON()`.
    pub fn create(&mut self, options: &Value) -> Value {
        self.create_with(options, &Tweaks::default())
    }

    pub fn create_with(&mut self, options: &Value, tweaks: &Tweaks) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"]
            .as_str()
            .expect("options name the RP")
            .to_string();
        let challenge = from_b64url(pk["challenge"].as_str().expect("options carry a challenge"));
        let user_handle = from_b64url(pk["user"]["id"].as_str().expect("options name the user"));
        let key = random_key();
        let id = random_bytes(32);

        let client_data = self.client_data("webauthn.create", &challenge, tweaks);
        let point = key.verifying_key().to_encoded_point(false);
        let cose_key = Cbor::Map(vec![
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
        let mut auth_data = Vec::new();
        auth_data.extend_from_slice(&Sha256::digest(
            tweaks.rp_id.as_deref().unwrap_or(&rp_id).as_bytes(),
        ));
        auth_data.push(self.flags(FLAG_AT, tweaks));
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(self.aaguid.as_bytes());
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        ciborium::into_writer(&cose_key, &mut auth_data).expect("COSE key encodes");

        let signed: Vec<u8> = auth_data
            .iter()
            .copied()
            .chain(Sha256::digest(&client_data))
            .collect();
        let (fmt, statement) = match &self.attestation {
            Attestation::None => ("none", Vec::new()),
            Attestation::SelfAttested => {
                let sig: Signature = key.sign(&signed);
                (
                    "packed",
                    vec![
                        (Cbor::Text("alg".into()), Cbor::Integer((-7).into())),
                        (
                            Cbor::Text("sig".into()),
                            Cbor::Bytes(sig.to_der().as_bytes().to_vec()),
                        ),
                    ],
                )
            }
            Attestation::Full(ca) => {
                let attestation_key = random_key();
                let leaf =
                    ca.issue_attestation_certificate(attestation_key.verifying_key(), self.aaguid);
                let sig: Signature = attestation_key.sign(&signed);
                (
                    "packed",
                    vec![
                        (Cbor::Text("alg".into()), Cbor::Integer((-7).into())),
                        (
                            Cbor::Text("sig".into()),
                            Cbor::Bytes(sig.to_der().as_bytes().to_vec()),
                        ),
                        (
                            Cbor::Text("x5c".into()),
                            Cbor::Array(vec![Cbor::Bytes(leaf)]),
                        ),
                    ],
                )
            }
        };
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text(fmt.into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(statement)),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        let mut attestation_object = Vec::new();
        ciborium::into_writer(&object, &mut attestation_object).expect("object encodes");
        if let Some(raw) = &tweaks.raw_object {
            attestation_object = raw.clone();
        }

        self.credentials.push(SoftCredential {
            id: id.clone(),
            key,
            user_handle,
            rp_id,
            sign_count: 0,
        });
        json!({
            "id": b64url(&id),
            "rawId": b64url(&id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(&client_data),
                "attestationObject": b64url(&attestation_object),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers `navigator.credentials.get()` for the server's request options: with the first
    /// credential the options allow, or (no allowCredentials) the newest one for the RP.
    pub fn get(&mut self, options: &Value) -> Value {
        self.get_with(options, &Tweaks::default())
    }

    pub fn get_with(&mut self, options: &Value, tweaks: &Tweaks) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"]
            .as_str()
            .expect("options name the RP")
            .to_string();
        let challenge = from_b64url(pk["challenge"].as_str().expect("options carry a challenge"));
        let allowed: Vec<Vec<u8>> = pk["allowCredentials"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|c| c["id"].as_str().map(from_b64url))
                    .collect()
            })
            .unwrap_or_default();
        let index = tweaks.credential.unwrap_or_else(|| {
            self.credentials
                .iter()
                .enumerate()
                .rev()
                .find(|(_, c)| c.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&c.id)))
                .map(|(i, _)| i)
                .expect("the authenticator holds a credential the options allow")
        });
        let flags = self.flags(0, tweaks);
        let counts = self.counts_signatures;
        let credential = &mut self.credentials[index];
        let count = tweaks
            .sign_count
            .unwrap_or(if counts { credential.sign_count + 1 } else { 0 });
        credential.sign_count = count;
        let credential = credential.clone();

        let client_data = self.client_data("webauthn.get", &challenge, tweaks);
        let mut auth_data = Vec::new();
        auth_data.extend_from_slice(&Sha256::digest(
            tweaks.rp_id.as_deref().unwrap_or(&rp_id).as_bytes(),
        ));
        auth_data.push(flags);
        auth_data.extend_from_slice(&count.to_be_bytes());
        if let Some(raw) = &tweaks.raw_object {
            auth_data = raw.clone();
        }
        let signed: Vec<u8> = auth_data
            .iter()
            .copied()
            .chain(Sha256::digest(&client_data))
            .collect();
        let sig: Signature = credential.key.sign(&signed);
        json!({
            "id": b64url(&credential.id),
            "rawId": b64url(&credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(&client_data),
                "authenticatorData": b64url(&auth_data),
                "signature": b64url(sig.to_der().as_bytes()),
                "userHandle": b64url(&credential.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

// --- a test attestation root, its certificates written in DER by hand ----------------------

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn oid(encoded: &[u8]) -> Vec<u8> {
    der(0x06, encoded)
}

const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_C: &[u8] = &[0x55, 0x04, 0x06];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
const OID_OU: &[u8] = &[0x55, 0x04, 0x0b];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// id-fido-gen-ce-aaguid, 1.3.6.1.4.1.45724.1.1.4
const OID_FIDO_AAGUID: &[u8] = &[
    0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xe5, 0x1c, 0x01, 0x01, 0x04,
];

fn name(parts: &[(&[u8], &str)]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = parts
        .iter()
        .map(|(o, value)| {
            // Country is a PrintableString; the rest UTF8String, as the packed format asks.
            let tag = if *o == OID_C { 0x13 } else { 0x0c };
            der(0x31, &sequence(&[oid(o), der(tag, value.as_bytes())]))
        })
        .collect();
    sequence(&rdns)
}

fn extension(id: &[u8], critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(der(0x01, &[0xff]));
    }
    parts.push(der(0x04, &value));
    sequence(&parts)
}

fn utc_time(t: time::OffsetDateTime) -> Vec<u8> {
    let text = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    der(0x17, text.as_bytes())
}

fn certificate(
    issuer_key: &SigningKey,
    issuer: &[u8],
    subject: &[u8],
    subject_key: &VerifyingKey,
    extensions: Vec<Vec<u8>>,
) -> Vec<u8> {
    // Real time, not the test clock: webauthn-rs checks validity against the system time.
    let now = time::OffsetDateTime::now_utc();
    let mut serial = random_bytes(12);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let algorithm = sequence(&[oid(OID_ECDSA_SHA256)]);
    let spki = subject_key
        .to_public_key_der()
        .expect("public key encodes")
        .as_bytes()
        .to_vec();
    let tbs = sequence(&[
        der(0xa0, &der(0x02, &[2])),
        der(0x02, &serial),
        algorithm.clone(),
        issuer.to_vec(),
        sequence(&[
            utc_time(now - time::Duration::days(1)),
            utc_time(now + time::Duration::days(3650)),
        ]),
        subject.to_vec(),
        spki,
        der(0xa3, &sequence(&extensions)),
    ]);
    let sig: Signature = issuer_key.sign(&tbs);
    let mut bits = vec![0u8];
    bits.extend_from_slice(sig.to_der().as_bytes());
    sequence(&[tbs, algorithm, der(0x03, &bits)])
}

/// A test attestation root: a CA key and its self-signed certificate.
#[derive(Clone)]
pub struct TestAttestationCa {
    key: SigningKey,
    subject: Vec<u8>,
    pub root_der: Vec<u8>,
}

impl TestAttestationCa {
    pub fn generate(common_name: &str) -> Self {
        let key = random_key();
        let subject = name(&[
            (OID_C, "SE"),
            (OID_O, "Portcullis Test Vendor"),
            (OID_CN, common_name),
        ]);
        let root_der = certificate(
            &key,
            &subject,
            &subject,
            key.verifying_key(),
            vec![
                extension(OID_BASIC_CONSTRAINTS, true, sequence(&[der(0x01, &[0xff])])),
                // keyCertSign and cRLSign.
                extension(OID_KEY_USAGE, true, der(0x03, &[0x01, 0x06])),
            ],
        );
        TestAttestationCa {
            key,
            subject,
            root_der,
        }
    }

    /// The root as a PEM file's text.
    pub fn root_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.root_der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// A FIDO MDS BLOB payload naming this root for `aaguid`, as JSON text.
    pub fn metadata_json(&self, aaguid: Uuid, description: &str) -> String {
        json!({
            "legalHeader": "test",
            "no": 1,
            "nextUpdate": "2099-01-01",
            "entries": [{
                "aaguid": aaguid.to_string(),
                "metadataStatement": {
                    "aaguid": aaguid.to_string(),
                    "description": description,
                    "attestationRootCertificates": [STANDARD.encode(&self.root_der)],
                },
                "statusReports": [{"status": "FIDO_CERTIFIED_L1"}],
            }],
        })
        .to_string()
    }

    /// An attestation certificate for `key`, meeting the packed format's requirements and
    /// naming `aaguid` in id-fido-gen-ce-aaguid.
    pub fn issue_attestation_certificate(&self, key: &VerifyingKey, aaguid: Uuid) -> Vec<u8> {
        let subject = name(&[
            (OID_C, "SE"),
            (OID_O, "Portcullis Test Vendor"),
            (OID_OU, "Authenticator Attestation"),
            (OID_CN, "Portcullis Test Authenticator"),
        ]);
        certificate(
            &self.key,
            &self.subject,
            &subject,
            key,
            vec![
                extension(OID_BASIC_CONSTRAINTS, true, sequence(&[])),
                extension(OID_FIDO_AAGUID, false, der(0x04, aaguid.as_bytes())),
            ],
        )
    }
}
