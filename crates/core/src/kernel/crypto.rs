//! Secrets at rest.
//!
//! Client secrets and similar bearer secrets are generated here with 240+ bits of entropy, so a
//! single SHA-256 is the right hash for them: a slow password hash adds nothing against guessing
//! a value that size and would cost ~90 ms of CPU on every token request. Human-chosen passwords
//! use argon2id elsewhere. Comparisons are constant-time.
//!
//! Private signing keys are sealed with AES-256-GCM under the key from configuration
//! ([`Sealer`]); the database never holds them in the clear.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::kernel::entropy::Entropy;
use crate::{Error, Result};

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn verify_secret(secret: &str, expected_hash_hex: &str) -> bool {
    let actual = hash_secret(secret);
    actual.as_bytes().ct_eq(expected_hash_hex.as_bytes()).into()
}

/// Seals and opens data with AES-256-GCM. The output is `nonce (12 bytes) || ciphertext+tag`.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// `aad` binds the sealed value to its purpose (e.g. the key id), so a sealed blob cannot be
    /// moved to another row and opened there.
    pub fn seal(&self, entropy: &dyn Entropy, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of a bounded buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return Err(Error::Internal("sealed value is truncated".into()));
        }
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("split at 12");
        self.cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: body, aad })
            .map_err(|_| {
                Error::Internal(
                    "a sealed signing key does not open with the configured secret key: is secret_key the same on every node?"
                        .into(),
                )
            })
    }
}

/// A key for one purpose, derived from the server's secret key (HMAC-SHA256 of the purpose), so
/// that every node derives the same key and no two purposes share one.
pub fn derive_key(secret: &[u8; 32], purpose: &str) -> [u8; 32] {
    keyed_hash(secret, purpose.as_bytes())
}

/// HMAC-SHA256 of `message` under `key`.
pub fn keyed_hash(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::entropy::SystemEntropy;

    #[test]
    fn seal_round_trips_and_binds_aad() {
        let s = Sealer::new(&[7u8; 32]);
        let sealed = s.seal(&SystemEntropy, b"private", b"kid-1");
        assert_eq!(s.open(&sealed, b"kid-1").unwrap(), b"private");
        assert!(s.open(&sealed, b"kid-2").is_err());
        assert!(Sealer::new(&[8u8; 32]).open(&sealed, b"kid-1").is_err());
    }

    #[test]
    fn secrets_verify_only_themselves() {
        let h = hash_secret("abc");
        assert!(verify_secret("abc", &h));
        assert!(!verify_secret("abd", &h));
    }
}
