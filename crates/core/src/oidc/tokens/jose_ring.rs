//! ES256 and RS256 signing for `jsonwebtoken` with `ring`'s arithmetic, through the crate's own
//! extension point ([`CryptoProvider`]). Everything else (RS256 verification among it, which
//! uses only the public key) stays with the crate's RustCrypto provider.
//!
//! RS256 signs with `ring` for safety rather than speed: the `rsa` crate's private-key
//! operations are not constant-time (RUSTSEC-2023-0071, the Marvin attack), `ring`'s are. The
//! `rsa` crate only generates keys (see [`super::generate_signing_key`]); it never signs.
//!
//! Why: the RustCrypto provider parses the PKCS#8 key (deriving its public key, one scalar
//! multiplication) and computes a recoverable signature for every token it signs. Two tokens
//! per sign-in made that about as costly as the rest of the token endpoint (BENCHMARKS.md).
//! Here the active key is parsed once and kept, and `ring` signs in a fraction of the time.
//! JOSE itself (headers, encoding, claims, validation) is still `jsonwebtoken`'s: only the
//! signature arithmetic changes hands, and the output is the same JWS `r || s` form, which the
//! tests below check against the RustCrypto provider in both directions.

use std::sync::{Arc, LazyLock, Mutex};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, rust_crypto};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, UnparsedPublicKey,
};

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: rust_crypto::DEFAULT_PROVIDER.key_utils.clone(),
});

/// The provider itself, for benchmarks that compare it with jsonwebtoken's own.
pub fn provider() -> &'static CryptoProvider {
    &PROVIDER
}

/// Makes this the process's provider. Idempotent; if another provider was installed first
/// (only a test harness would), that one stays and tokens are still correct, only slower.
pub fn install() {
    let _ = PROVIDER.install_default();
}

/// The last key parsed: a node signs with one active key at a time, so one entry is enough,
/// and a rotated key simply replaces it.
static PARSED: Mutex<Option<(Vec<u8>, Arc<EcdsaKeyPair>)>> = Mutex::new(None);

fn key_pair(der: &[u8]) -> JwtResult<Arc<EcdsaKeyPair>> {
    let mut parsed = PARSED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((bytes, pair)) = parsed.as_ref()
        && bytes.as_slice() == der
    {
        return Ok(pair.clone());
    }
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    let pair = Arc::new(pair);
    *parsed = Some((der.to_vec(), pair.clone()));
    Ok(pair)
}

/// The last RSA key parsed, kept for the same reason (parsing checks the key, which costs more
/// than a signature).
static PARSED_RSA: Mutex<Option<(Vec<u8>, Arc<RsaKeyPair>)>> = Mutex::new(None);

/// An RSA key pair from its PKCS#8 DER: what [`super::generate_signing_key`] stores for RS256
/// (`ring` accepts moduli of 2048 to 4096 bits).
pub(crate) fn rsa_key_pair(der: &[u8]) -> JwtResult<Arc<RsaKeyPair>> {
    let mut parsed = PARSED_RSA.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((bytes, pair)) = parsed.as_ref()
        && bytes.as_slice() == der
    {
        return Ok(pair.clone());
    }
    let pair = Arc::new(RsaKeyPair::from_pkcs8(der).map_err(|_| {
        ErrorKind::InvalidRsaKey("not an RSA private key in PKCS#8 that ring accepts".into())
    })?);
    *parsed = Some((der.to_vec(), pair.clone()));
    Ok(pair)
}

struct Rs256Signer(Arc<RsaKeyPair>);

impl signature::Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut sig = vec![0u8; self.0.public().modulus_len()];
        self.0
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| signature::Error::new())?;
        Ok(sig)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Es256Signer(Arc<EcdsaKeyPair>);

impl signature::Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.0
            .sign(&SystemRandom::new(), msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Es256Verifier(Vec<u8>);

impl signature::Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::ES256 => Ok(Box::new(Es256Signer(key_pair(key.as_bytes())?))),
        // Never the RustCrypto signer for RSA (see the module's documentation).
        Algorithm::RS256 => Ok(Box::new(Rs256Signer(rsa_key_pair(key.as_bytes())?))),
        other => (rust_crypto::DEFAULT_PROVIDER.signer_factory)(other, key),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    match algorithm {
        // An EC key from components or DER holds the SEC1 point; anything else (a secret, an
        // RSA key) is not an ES256 key, as the RustCrypto provider would also say.
        Algorithm::ES256 => match key.try_get_as_bytes() {
            Ok(point) if point.len() == 65 && point[0] == 4 => {
                Ok(Box::new(Es256Verifier(point.to_vec())))
            }
            _ => Err(ErrorKind::InvalidEcdsaKey.into()),
        },
        other => (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(other, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::EncodePrivateKey;

    fn key() -> (Vec<u8>, DecodingKey) {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).expect("valid scalar");
        let der = secret.to_pkcs8_der().expect("pkcs8").as_bytes().to_vec();
        let point = secret.public_key().to_sec1_bytes();
        let decoding = DecodingKey::from_ec_der(&point);
        (der, decoding)
    }

    const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJqb25pIn0";

    #[test]
    fn ring_signatures_verify_with_rustcrypto_and_back() {
        let (der, decoding) = key();
        let encoding = EncodingKey::from_ec_der(&der);
        let ours = new_signer(&Algorithm::ES256, &encoding)
            .unwrap()
            .try_sign(MESSAGE)
            .unwrap();
        assert_eq!(ours.len(), 64, "JWS ES256 is r || s, 32 bytes each");
        let theirs = (rust_crypto::DEFAULT_PROVIDER.signer_factory)(&Algorithm::ES256, &encoding)
            .unwrap()
            .try_sign(MESSAGE)
            .unwrap();
        let rc =
            (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&Algorithm::ES256, &decoding).unwrap();
        let ring = new_verifier(&Algorithm::ES256, &decoding).unwrap();
        for sig in [&ours, &theirs] {
            assert!(rc.verify(MESSAGE, sig).is_ok());
            assert!(ring.verify(MESSAGE, sig).is_ok());
        }
    }

    #[test]
    fn altered_messages_and_signatures_are_refused_by_both() {
        let (der, decoding) = key();
        let encoding = EncodingKey::from_ec_der(&der);
        let sig = new_signer(&Algorithm::ES256, &encoding)
            .unwrap()
            .try_sign(MESSAGE)
            .unwrap();
        let rc =
            (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&Algorithm::ES256, &decoding).unwrap();
        let ring = new_verifier(&Algorithm::ES256, &decoding).unwrap();
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        let mut other_message = MESSAGE.to_vec();
        other_message[3] ^= 1;
        for (msg, s) in [
            (MESSAGE, &flipped),
            (other_message.as_slice(), &sig),
            (MESSAGE, &sig[..63].to_vec()),
        ] {
            assert!(rc.verify(msg, s).is_err());
            assert!(ring.verify(msg, s).is_err());
        }
    }

    #[test]
    fn a_rotated_key_replaces_the_cached_one() {
        let (der, _) = key();
        let other = p256::SecretKey::from_slice(&[9u8; 32])
            .unwrap()
            .to_pkcs8_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        let a = key_pair(&der).unwrap();
        let b = key_pair(&other).unwrap();
        assert_ne!(
            ring::signature::KeyPair::public_key(&*a).as_ref(),
            ring::signature::KeyPair::public_key(&*b).as_ref()
        );
        assert!(Arc::ptr_eq(&b, &key_pair(&other).unwrap()));
    }

    /// A new 2048-bit RSA key as stored (PKCS#8), as PKCS#1 (what jsonwebtoken's RustCrypto
    /// signer reads), and its public key from ring's n and e.
    fn rsa_key() -> (Vec<u8>, Vec<u8>, DecodingKey) {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey as _;
        let entropy = crate::kernel::entropy::SystemEntropy;
        let private =
            rsa::RsaPrivateKey::new(&mut super::super::EntropyRng(&entropy), 2048).unwrap();
        let pkcs8 = private.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let pkcs1 = private.to_pkcs1_der().unwrap().as_bytes().to_vec();
        let public = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(
            rsa_key_pair(&pkcs8).unwrap().public(),
        );
        let decoding = DecodingKey::from_rsa_raw_components(&public.n, &public.e);
        (pkcs8, pkcs1, decoding)
    }

    #[test]
    fn rs256_signs_with_ring_as_rustcrypto_would_and_verifies_there() {
        let (pkcs8, pkcs1, decoding) = rsa_key();
        let ours = new_signer(&Algorithm::RS256, &EncodingKey::from_rsa_der(&pkcs8))
            .unwrap()
            .try_sign(MESSAGE)
            .unwrap();
        assert_eq!(ours.len(), 256, "a 2048-bit signature");
        // PKCS#1 v1.5 is deterministic: the same key signs the same bytes identically.
        let theirs = (rust_crypto::DEFAULT_PROVIDER.signer_factory)(
            &Algorithm::RS256,
            &EncodingKey::from_rsa_der(&pkcs1),
        )
        .unwrap()
        .try_sign(MESSAGE)
        .unwrap();
        assert_eq!(ours, theirs);
        let verifier = new_verifier(&Algorithm::RS256, &decoding).unwrap();
        assert!(verifier.verify(MESSAGE, &ours).is_ok());
        let mut flipped = ours.clone();
        flipped[100] ^= 1;
        assert!(verifier.verify(MESSAGE, &flipped).is_err());
        assert!(verifier.verify(b"another message", &ours).is_err());
    }

    #[test]
    fn an_rs256_key_that_is_not_pkcs8_is_refused_not_signed_with_by_rustcrypto() {
        let (_, pkcs1, _) = rsa_key();
        assert!(new_signer(&Algorithm::RS256, &EncodingKey::from_rsa_der(&pkcs1)).is_err());
    }

    #[test]
    fn not_an_ec_key_is_refused() {
        let secret = DecodingKey::from_secret(b"not a point");
        assert!(new_verifier(&Algorithm::ES256, &secret).is_err());
    }
}
