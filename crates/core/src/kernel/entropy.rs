//! Randomness comes in through [`Entropy`] so that tests can be deterministic where they need
//! to be. Production uses the operating system's generator.

use uuid::Uuid;

pub trait Entropy: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);

    fn uuid(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// An id that begins with the instant `at` (RFC 9562 version 7, 74 random bits), for rows
    /// written on every sign-in (log entries, sessions, grants): inserted in time order, they
    /// go to the end of their indexes instead of a random page each, which is a page written
    /// per row fewer (BENCHMARKS.md). Never for an id that stands for a capability.
    fn ordered_uuid(&self, at: time::OffsetDateTime) -> Uuid {
        let mut random = [0u8; 10];
        self.fill(&mut random);
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    /// A secret of `len` characters from an alphabet that survives copy and paste, URLs and
    /// shells. Rejection sampling keeps every character equally likely.
    fn secret_text(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_~.";
        let limit = 256 - (256 % ALPHABET.len());
        let mut out = String::with_capacity(len);
        let mut buf = [0u8; 64];
        while out.len() < len {
            self.fill(&mut buf);
            for &b in &buf {
                if (b as usize) < limit && out.len() < len {
                    out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                }
            }
        }
        out
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::rng().fill_bytes(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_ids_carry_their_instant_and_sort_by_it() {
        let at = time::macros::datetime!(2026-12-05 01:00:00.123 UTC);
        let first = SystemEntropy.ordered_uuid(at);
        let later = SystemEntropy.ordered_uuid(at + time::Duration::milliseconds(1));
        let same_instant = SystemEntropy.ordered_uuid(at);
        assert_eq!(first.get_version_num(), 7);
        let (seconds, nanos) = first.get_timestamp().expect("a v7 timestamp").to_unix();
        assert_eq!((seconds, nanos), (1_796_432_400, 123_000_000));
        assert!(
            first.to_string() < later.to_string(),
            "text order follows time"
        );
        assert_ne!(
            first, same_instant,
            "random bits tell ids of one instant apart"
        );
    }
}
