//! The generator's authenticator app: RFC 6238 codes (HMAC-SHA1, 30-second steps, six digits),
//! computed with `ring` independently of the server's own implementation, so that a sign-in
//! that works proves the two agree.
//!
//! The server accepts each step's code once per app, so one person signs in with a password at
//! most once per step: [`AuthenticatorApp::ready_in`] says how long until the next one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

pub const STEP_SECONDS: u64 = 30;

/// One registered app: its secret and the last step whose code the server has seen.
pub struct AuthenticatorApp {
    key: hmac::Key,
    pub last_step: u64,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The six-digit code of `step` for `secret` (RFC 4226 dynamic truncation).
pub fn code(key: &hmac::Key, step: u64) -> String {
    let tag = hmac::sign(key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

impl AuthenticatorApp {
    /// The app for the Base32 secret the server showed (as a person types it into their app).
    pub fn from_base32(secret: &str) -> anyhow::Result<AuthenticatorApp> {
        let bytes = data_encoding::BASE32_NOPAD
            .decode(secret.trim_end_matches('=').as_bytes())
            .map_err(|e| anyhow::anyhow!("the server's authenticator secret is not Base32: {e}"))?;
        Ok(AuthenticatorApp {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &bytes),
            last_step: 0,
        })
    }

    /// The code for now, recording its step as used; `None` when this step's code was already
    /// used (wait [`Self::ready_in`]).
    pub fn next_code(&mut self) -> Option<String> {
        self.next_code_at(now())
    }

    fn next_code_at(&mut self, now: Duration) -> Option<String> {
        let step = now.as_secs() / STEP_SECONDS;
        if step <= self.last_step {
            return None;
        }
        self.last_step = step;
        Some(code(&self.key, step))
    }

    /// How long until a code not yet used is shown; zero when one is.
    pub fn ready_in(&self) -> Duration {
        self.ready_in_at(now())
    }

    fn ready_in_at(&self, now: Duration) -> Duration {
        Duration::from_secs((self.last_step + 1) * STEP_SECONDS).saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows, truncated to six digits.
    #[test]
    fn codes_match_the_rfc_vectors() {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"12345678901234567890");
        assert_eq!(code(&key, 59 / 30), "287082");
        assert_eq!(code(&key, 1_111_111_109 / 30), "081804");
        assert_eq!(code(&key, 1_234_567_890 / 30), "005924");
        assert_eq!(code(&key, 20_000_000_000 / 30), "353130");
    }

    #[test]
    fn a_step_is_used_once() {
        let mut app = AuthenticatorApp::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let t = Duration::from_secs(59);
        assert_eq!(app.next_code_at(t).as_deref(), Some("287082"));
        assert_eq!(app.next_code_at(t + Duration::from_millis(500)), None);
        assert_eq!(app.ready_in_at(t), Duration::from_secs(1));
        assert_eq!(app.ready_in_at(Duration::from_secs(60)), Duration::ZERO);
        assert!(app.next_code_at(Duration::from_secs(60)).is_some());
    }
}
