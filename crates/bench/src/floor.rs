//! The physical floor: how many ES256 signatures this machine verifies per second with the
//! fastest library at hand (`ring`), measured in the same run as the load so the sign-in rate
//! can be read as a fraction of it. Every passkey sign-in costs the server at least one such
//! verification, so no server on this machine can do more sign-ins per second than this.

use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};

/// Verifications per second on one thread, verifying for about `span`.
pub fn verify_rate_one_core(span: Duration) -> f64 {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .expect("P-256 key generation");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .expect("P-256 key loads");
    // The message a passkey signs: authenticator data (37 bytes) and a client data hash.
    let message = [0x5au8; 69];
    let signature = key.sign(&rng, &message).expect("signing");
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref());
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < span {
        for _ in 0..64 {
            public
                .verify(&message, signature.as_ref())
                .expect("a valid signature verifies");
        }
        done += 64;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// The machine's rate: one verifying thread per core at once, summed.
pub fn verify_rate_machine(cores: usize, span: Duration) -> f64 {
    let threads: Vec<_> = (0..cores)
        .map(|_| std::thread::spawn(move || verify_rate_one_core(span)))
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("verifier thread"))
        .sum()
}
