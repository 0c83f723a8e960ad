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
