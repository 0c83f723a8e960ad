//! argon2id for the secrets people type (passwords and Temporary Access Passes), and where
//! that work runs.
//!
//! One hash costs about 20 ms of a core and 19 MiB of memory. Run on the threads that serve
//! requests, each one stalls every other request on its thread for that long (a passkey
//! sign-in waits behind a stranger's password); run without a bound, a burst of password
//! sign-ins holds 19 MiB per sign-in in flight. So the computation is handed to an [`Offload`]
//! the server supplies: its own threads, at most one hash per core at once. This crate knows
//! no async runtime, hence the trait; [`Inline`] is for tools and tests with nothing else to
//! serve.
//!
//! The 19 MiB of argon2's state are kept between hashes (one buffer per core) rather than
//! allocated each time: fresh memory cost 6 ms of page faults on a 20 ms hash (server CPU per
//! password sign-in 26.6 ms against 20.7 ms), and with glibc's allocator freed blocks that
//! size lingered in its per-thread arenas (317 MB resident after a burst of 16 password
//! sign-ins). Kept buffers make the resident memory a fixed cost whatever the allocator.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::kernel::Deps;
use crate::{Error, Result};

/// Where slow, blocking computations run.
#[async_trait::async_trait]
pub trait Offload: Send + Sync {
    /// Runs `work` to completion where it may block for tens of milliseconds.
    async fn run(&self, work: Box<dyn FnOnce() + Send>);
}

/// Runs the work on the calling thread.
pub struct Inline;

#[async_trait::async_trait]
impl Offload for Inline {
    async fn run(&self, work: Box<dyn FnOnce() + Send>) {
        work()
    }
}

/// An argon2 hash of nothing anyone knows, verified against when the account (or its pass)
/// does not exist, so that unknown accounts take as long to refuse as wrong secrets.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZGVjb3lkZWNveWRlY295$2C0cHqzXbAlbsm4eTSLD8ZQSeX/AMMBnvRhm7i4HNDI";

async fn offloaded<S: ?Sized, T: Send + 'static>(
    deps: &Deps<S>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let slot = Arc::new(Mutex::new(None));
    let out = slot.clone();
    deps.offload
        .run(Box::new(move || {
            let value = work();
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        }))
        .await;
    let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    value.ok_or_else(|| Error::Internal("a hashing task did not finish".into()))
}

/// argon2 state buffers between hashes, at most one per core (the most that run at once).
static SPARE_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// `argon`'s hash of `secret` and `salt` into `out`, in a spare buffer when one is big enough.
/// Argon2 writes every block before it reads it, so what a buffer held before never counts.
fn compute(
    argon: &Argon2,
    secret: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    let blocks = argon.params().block_count();
    let spare = SPARE_MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .filter(|m| m.len() >= blocks);
    let mut memory = spare.unwrap_or_else(|| vec![Block::default(); blocks]);
    let result = argon.hash_password_into_with_memory(secret, salt, out, &mut memory[..]);
    let keep = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut spares = SPARE_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    if spares.len() < keep {
        spares.push(memory);
    }
    result
}

/// The PHC string (argon2id with the crate's default cost, a fresh salt) for `secret`.
fn hash_now(secret: &[u8], salt: &[u8; 16]) -> std::result::Result<String, String> {
    let argon = Argon2::default();
    let salt = SaltString::encode_b64(salt).map_err(|e| format!("salt: {e}"))?;
    let mut raw = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut raw)
        .map_err(|e| format!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, secret, salt_bytes, &mut out).map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// A PHC string (argon2id, a fresh salt) for `secret`.
pub(crate) async fn hash<S: ?Sized>(deps: &Deps<S>, secret: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    deps.entropy.fill(&mut salt);
    let secret = secret.to_string();
    offloaded(deps, move || {
        hash_now(secret.as_bytes(), &salt).map_err(|e| Error::Internal(format!("hashing: {e}")))
    })
    .await?
}

/// Whether `secret` matches the PHC string `hash`; a hash that does not parse matches nothing.
pub(crate) async fn verify<S: ?Sized>(deps: &Deps<S>, secret: &str, hash: &str) -> bool {
    let (secret, hash) = (secret.to_string(), hash.to_string());
    offloaded(deps, move || verify_now(&secret, &hash))
        .await
        .unwrap_or(false)
}

/// Recomputes the hash with the stored algorithm, version, cost and salt; `Output`'s equality
/// is constant-time.
fn verify_now(secret: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut raw = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut raw) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if compute(&argon, secret.as_bytes(), salt, &mut out).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_hash_is_a_valid_argon2_hash_of_something_else() {
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!verify_now("anything", DECOY_HASH));
    }

    /// Both directions against the argon2 crate's own PHC hashing and verification, so the
    /// stored strings stay what they were before the buffers were kept.
    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = {
            let salt = SaltString::encode_b64(&[1u8; 16]).unwrap();
            Argon2::default()
                .hash_password(b"+drkzqAD", &salt)
                .unwrap()
                .to_string()
        };
        assert!(verify_now("+drkzqAD", &theirs));
        assert!(!verify_now("+drkzqAE", &theirs));
        assert!(!verify_now("+drkzqAD", "not a hash"));

        let ours = hash_now(b"+drkzqAD", &[1u8; 16]).unwrap();
        assert_eq!(ours, theirs, "same salt, same cost: the same string");
        let ours = hash_now(b"correct horse", &[7u8; 16]).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horsf", &parsed)
                .is_err()
        );
        assert!(verify_now("correct horse", &ours));
    }

    #[test]
    fn a_hash_with_other_costs_still_verifies() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(&[3u8; 16]).unwrap();
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pass", &salt)
        .unwrap()
        .to_string();
        // Verified after a default-cost hash left a bigger buffer spare.
        hash_now(b"x", &[0u8; 16]).unwrap();
        assert!(verify_now("pass", &cheap));
        assert!(!verify_now("pasS", &cheap));
    }
}
