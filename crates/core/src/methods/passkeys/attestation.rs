//! Which passkey attestations the administrator trusts, and what a passkey's attestation proves.
//!
//! [`TrustedAttestationRoots`] holds root certificates from a FIDO Metadata Service BLOB (each
//! root vouching for the AAGUIDs its metadata entry names, with the model's name) and from PEM
//! files (each root vouching for any AAGUID its chain attests). The binary loads the files named
//! in configuration at start; nothing is downloaded at run time. The MDS BLOB's JWS signature is
//! not checked: the file is trusted because the administrator put it there, like a PEM file.
//! Entries the metadata marks as revoked or compromised are left out.
//!
//! What it must never do: call an AAGUID proven without a certificate chain to a trusted root.
//! Self-attestation proves only that the new key signed its own registration, and `none` proves
//! nothing; neither ever passes.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AttestationCaList, AttestationCaListBuilder, Credential, ParsedAttestationData,
};

use super::store::AttestationLevel;
use crate::{Error, Result};

/// Status reports after which an MDS entry is no longer trusted.
const UNTRUSTED_STATUSES: &[&str] = &[
    "REVOKED",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
    "USER_VERIFICATION_BYPASS",
];

/// Well-known AAGUIDs (reference notes §4.3, §4.6) so that common models get a name without
/// metadata. Names from configured metadata take precedence.
const KNOWN_MODELS: &[(&str, &str)] = &[
    (
        "de1e552d-db1d-4423-a619-566b625cdc84",
        "Microsoft Authenticator for Android",
    ),
    (
        "90a3ccdf-635c-4729-a248-9b709135078f",
        "Microsoft Authenticator for iOS",
    ),
    ("fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"),
    (
        "dd4ec289-e01d-41c9-bb89-70fa845d4bf2",
        "iCloud Keychain (Managed)",
    ),
    (
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
        "Google Password Manager",
    ),
    ("9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"),
];

/// The attestation roots and model names the administrator configured.
#[derive(Debug, Clone, Default)]
pub struct TrustedAttestationRoots {
    cas: AttestationCaList,
    models: BTreeMap<Uuid, String>,
}

/// What a new passkey's attestation proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub level: AttestationLevel,
    /// Why the level is not `Attested`, when it is not: for the error a person sees when
    /// attestation is enforced.
    pub shortfall: Option<String>,
}

impl TrustedAttestationRoots {
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// How many root certificates are trusted.
    pub fn len(&self) -> usize {
        self.cas.len()
    }

    /// Adds every certificate of a PEM file as a root that vouches for any AAGUID.
    pub fn add_pem(&mut self, pem: &[u8], source: &str) -> Result<usize> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::invalid("attestation_roots", format!("{source} is not text")))?;
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let mut added = 0;
        let mut rest = text;
        while let Some(start) = rest.find(BEGIN) {
            let Some(len) = rest[start..].find(END) else {
                break;
            };
            let block = &rest[start..start + len + END.len()];
            let one = AttestationCaList::try_from(block.as_bytes()).map_err(|e| {
                Error::invalid(
                    "attestation_roots",
                    format!("{source}: certificate {} cannot be read: {e}", added + 1),
                )
            })?;
            self.cas.union(&one);
            added += 1;
            rest = &rest[start + len + END.len()..];
        }
        if added == 0 {
            return Err(Error::invalid(
                "attestation_roots",
                format!("{source} holds no PEM certificate"),
            ));
        }
        Ok(added)
    }

    /// Adds the roots and model names of a FIDO Metadata Service BLOB: the JWT as downloaded
    /// from the MDS, or its decoded JSON payload. Returns how many entries were taken.
    pub fn add_mds_blob(&mut self, blob: &[u8], source: &str) -> Result<usize> {
        let bad = |why: String| Error::invalid("attestation_roots", format!("{source}: {why}"));
        let text = std::str::from_utf8(blob)
            .map_err(|_| bad("not text".into()))?
            .trim();
        let payload: Value = if text.starts_with('{') {
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?
        } else {
            let part = text.split('.').nth(1).ok_or_else(|| {
                bad(
                    "neither PEM certificates nor a FIDO MDS BLOB (a JWT, or its JSON payload)"
                        .into(),
                )
            })?;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|e| bad(format!("JWT payload is not base64url: {e}")))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("JWT payload is not JSON: {e}")))?
        };
        let entries = payload["entries"]
            .as_array()
            .ok_or_else(|| bad("no 'entries' list".into()))?;
        let mut builder = AttestationCaListBuilder::new();
        let mut taken = 0;
        for entry in entries {
            let Some(aaguid) = entry["aaguid"]
                .as_str()
                .and_then(|a| Uuid::parse_str(a).ok())
            else {
                continue; // U2F entries name attestation key ids, not AAGUIDs.
            };
            let revoked = entry["statusReports"].as_array().is_some_and(|reports| {
                reports.iter().any(|r| {
                    r["status"]
                        .as_str()
                        .is_some_and(|s| UNTRUSTED_STATUSES.contains(&s))
                })
            });
            if revoked {
                continue;
            }
            let statement = &entry["metadataStatement"];
            let description = statement["description"]
                .as_str()
                .unwrap_or("Unnamed authenticator")
                .to_string();
            let roots = statement["attestationRootCertificates"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for root in roots {
                let Some(b64) = root.as_str() else { continue };
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| bad(format!("root of {aaguid} is not base64: {e}")))?;
                builder
                    .insert_device_der(&der, aaguid, description.clone(), BTreeMap::new())
                    .map_err(|e| bad(format!("root of {aaguid} cannot be read: {e}")))?;
            }
            self.models.insert(aaguid, description);
            taken += 1;
        }
        self.cas.union(&builder.build());
        Ok(taken)
    }

    /// The model's name, from configured metadata or the well-known list.
    pub fn model(&self, aaguid: Uuid) -> Option<String> {
        self.models.get(&aaguid).cloned().or_else(|| {
            let text = aaguid.hyphenated().to_string();
            KNOWN_MODELS
                .iter()
                .find(|(id, _)| *id == text)
                .map(|(_, name)| name.to_string())
        })
    }

    /// What the attestation of a newly registered credential proves about `aaguid`.
    pub fn assess(&self, credential: &Credential, aaguid: Uuid) -> Assessment {
        let not = |level, why: &str| Assessment {
            level,
            shortfall: Some(why.to_string()),
        };
        match &credential.attestation.data {
            ParsedAttestationData::None => {
                return not(
                    AttestationLevel::None,
                    "The passkey sent no attestation, so its model cannot be verified.",
                );
            }
            ParsedAttestationData::Self_ => {
                return not(
                    AttestationLevel::SelfAttested,
                    "The passkey attested itself (self-attestation), which does not prove its model.",
                );
            }
            ParsedAttestationData::ECDAA | ParsedAttestationData::Uncertain => {
                return not(
                    AttestationLevel::None,
                    "The passkey's attestation is of a kind this server cannot verify.",
                );
            }
            ParsedAttestationData::Basic(_)
            | ParsedAttestationData::AttCa(_)
            | ParsedAttestationData::AnonCa(_) => {}
        }
        if self.cas.is_empty() {
            return not(
                AttestationLevel::None,
                "No trusted attestation roots are configured on this server (attestation_roots).",
            );
        }
        match credential.verify_attestation(&self.cas) {
            Ok(Some(ca)) if ca.blanket_allow() || ca.aaguids().contains_key(&aaguid) => {
                Assessment {
                    level: AttestationLevel::Attested,
                    shortfall: None,
                }
            }
            Ok(Some(_)) => not(
                AttestationLevel::None,
                "The passkey's attestation root is trusted, but not for this model (AAGUID).",
            ),
            Ok(None) | Err(_) => not(
                AttestationLevel::None,
                "The passkey's attestation certificate does not chain to a root this server trusts.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Value {
        serde_json::json!({
            "entries": [
                {"aaguid": "11111111-1111-4111-8111-111111111111",
                 "metadataStatement": {"description": "Good Key"},
                 "statusReports": [{"status": "FIDO_CERTIFIED_L2"}]},
                {"aaguid": "22222222-2222-4222-8222-222222222222",
                 "metadataStatement": {"description": "Broken Key"},
                 "statusReports": [{"status": "FIDO_CERTIFIED"}, {"status": "ATTESTATION_KEY_COMPROMISE"}]},
                {"attestationCertificateKeyIdentifiers": ["abcd"],
                 "metadataStatement": {"description": "U2F Key"}}
            ]
        })
    }

    #[test]
    fn metadata_names_models_and_leaves_out_compromised_entries() {
        let good = Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap();
        let broken = Uuid::parse_str("22222222-2222-4222-8222-222222222222").unwrap();
        // The decoded JSON payload…
        let mut roots = TrustedAttestationRoots::default();
        let taken = roots
            .add_mds_blob(payload().to_string().as_bytes(), "mds.json")
            .unwrap();
        assert_eq!(taken, 1);
        assert_eq!(roots.model(good).as_deref(), Some("Good Key"));
        assert_eq!(roots.model(broken), None);
        // …and the JWT as the Metadata Service serves it read the same.
        let jwt = format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload().to_string())
        );
        let mut from_jwt = TrustedAttestationRoots::default();
        assert_eq!(from_jwt.add_mds_blob(jwt.as_bytes(), "mds.jwt").unwrap(), 1);
        assert_eq!(from_jwt.model(good).as_deref(), Some("Good Key"));
        // Well-known models are named without metadata.
        let android = Uuid::parse_str("de1e552d-db1d-4423-a619-566b625cdc84").unwrap();
        assert_eq!(
            roots.model(android).as_deref(),
            Some("Microsoft Authenticator for Android")
        );
    }

    #[test]
    fn unreadable_files_are_refused_with_their_name() {
        let mut roots = TrustedAttestationRoots::default();
        let err = roots.add_mds_blob(b"not a blob", "mds.jwt").unwrap_err();
        assert!(err.to_string().contains("mds.jwt"), "{err}");
        let err = roots
            .add_pem(b"no certificates here", "roots.pem")
            .unwrap_err();
        assert!(err.to_string().contains("roots.pem"), "{err}");
        let err = roots
            .add_pem(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "bad.pem",
            )
            .unwrap_err();
        assert!(err.to_string().contains("bad.pem"), "{err}");
        assert!(roots.is_empty());
    }
}
