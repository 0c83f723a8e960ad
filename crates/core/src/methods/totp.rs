//! Software OATH tokens (TOTP, RFC 6238): an authenticator app's six-digit codes, as a second
//! step after a password so that the Multifactor strength has a path without a passkey.
//!
//! Registration is staged: the server makes the secret and seals it into the options it hands
//! out; the person's app shows a code; only a correct code turns the staged secret into a
//! method. Secrets are kept sealed with the server's key. A code is accepted once (the last step
//! used is stored and only later steps pass), within one step of clock skew either way.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::audit::{RequestContext, TargetResource};
use crate::directory::authz::Actor;
use crate::directory::store::DirectoryChange;
use crate::kernel::Deps;
use crate::kernel::clock::{graph_datetime, unix_millis};
use crate::kernel::crypto::Sealer;
use crate::methods::store::{MethodChange as Change, MethodStore};
use crate::methods::tap::audit_entry;
use crate::session::store::SessionChange;
use crate::session::{AuthSession, MethodKind, SessionMethod};
use crate::{Error, Result};

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps of clock skew accepted either side of now.
pub const SKEW_STEPS: i64 = 1;
/// How long a staged registration stays valid.
pub const REGISTRATION_WINDOW_SECONDS: i64 = 600;
pub const MAX_METHODS: usize = 5;

/// A registered authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareOathMethod {
    pub id: Uuid,
    pub user_id: Uuid,
    pub display_name: String,
    /// The shared secret, sealed with the server key (the method id is the associated data).
    pub sealed_secret: Vec<u8>,
    pub created: OffsetDateTime,
    pub last_used_step: i64,
}

/// Graph's `softwareOathAuthenticationMethod`, as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoftwareOathMethodView {
    pub id: Uuid,
    pub display_name: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub created_date_time: OffsetDateTime,
}

/// What the app needs to start showing codes, and the sealed staging the server gets back.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpRegistrationOptions {
    /// Base32, for typing into an app.
    pub secret: String,
    /// `otpauth://totp/…`, for a QR code.
    pub otpauth_uri: String,
    /// The same URI as a QR code (SVG), for the app to scan.
    pub qr_code_svg: String,
    /// Opaque; send it back with the first code.
    pub registration: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinishTotpRegistration {
    pub registration: String,
    pub code: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The RFC 6238 code for a time step (HMAC-SHA1, dynamic truncation, six digits).
pub fn code_at(secret: &[u8], step: i64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

pub fn step_of(t: OffsetDateTime) -> i64 {
    unix_millis(t).div_euclid(1000).div_euclid(STEP_SECONDS)
}

/// The step within the skew window whose code matches, compared in constant time.
fn matching_step(secret: &[u8], code: &str, now: OffsetDateTime) -> Option<i64> {
    use subtle::ConstantTimeEq;
    let code = code.trim().replace(' ', "");
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut found = None;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        if bool::from(code_at(secret, step).as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[derive(Clone)]
pub struct SoftwareOath {
    deps: Deps<dyn MethodStore>,
    sealer: Sealer,
    issuer: String,
}

impl SoftwareOath {
    pub fn new(deps: Deps<dyn MethodStore>, sealer: Sealer, issuer: String) -> Self {
        SoftwareOath {
            deps,
            sealer,
            issuer,
        }
    }

    /// Stages a registration for the session's user. Needs the same recent sign-in as adding a
    /// passkey.
    pub async fn start_registration(
        &self,
        session: &AuthSession,
    ) -> Result<TotpRegistrationOptions> {
        let now = self.deps.clock.now();
        session.may_register_methods(now)?;
        let user = self
            .deps
            .store
            .user(session.user_id)
            .await?
            .ok_or_else(|| Error::not_found("user", session.user_id.to_string()))?;
        if self.deps.store.software_oath_methods(user.id).await?.len() >= MAX_METHODS {
            return Err(Error::invalid(
                "softwareOathMethods",
                format!("At most {MAX_METHODS} authenticator apps per person; remove one first."),
            ));
        }
        let mut secret = [0u8; 20];
        self.deps.entropy.fill(&mut secret);
        let expires = unix_millis(now) / 1000 + REGISTRATION_WINDOW_SECONDS;
        // user id | expiry | secret, sealed: the client cannot alter or reuse it for another person.
        let mut staged = Vec::new();
        staged.extend_from_slice(user.id.as_bytes());
        staged.extend_from_slice(&expires.to_be_bytes());
        staged.extend_from_slice(&secret);
        let sealed = self
            .sealer
            .seal(self.deps.entropy.as_ref(), &staged, b"totp-registration");
        let encoded = BASE32_NOPAD.encode(&secret);
        let label = format!("{}:{}", self.issuer_name(), user.user_principal_name);
        let otpauth_uri = format!(
            "otpauth://totp/{}?secret={encoded}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent(&label),
            percent(&self.issuer_name())
        );
        Ok(TotpRegistrationOptions {
            qr_code_svg: qr_svg(&otpauth_uri)?,
            otpauth_uri,
            secret: encoded,
            registration: data_encoding::BASE64URL_NOPAD.encode(&sealed),
        })
    }

    fn issuer_name(&self) -> String {
        self.issuer
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    pub async fn finish_registration(
        &self,
        session: &AuthSession,
        request: &RequestContext,
        input: FinishTotpRegistration,
    ) -> Result<SoftwareOathMethodView> {
        let now = self.deps.clock.now();
        session.may_register_methods(now)?;
        let bad = || {
            Error::invalid(
                "registration",
                "registration: not one this server issued, or it has expired; start again.",
            )
        };
        let sealed = data_encoding::BASE64URL_NOPAD
            .decode(input.registration.trim().as_bytes())
            .map_err(|_| bad())?;
        let staged = self
            .sealer
            .open(&sealed, b"totp-registration")
            .map_err(|_| bad())?;
        if staged.len() != 16 + 8 + 20 {
            return Err(bad());
        }
        let user_id = Uuid::from_slice(&staged[..16]).map_err(|_| bad())?;
        let expires = i64::from_be_bytes(staged[16..24].try_into().expect("8 bytes"));
        if user_id != session.user_id || unix_millis(now) / 1000 > expires {
            return Err(bad());
        }
        let secret = &staged[24..];
        let step = matching_step(secret, &input.code, now).ok_or_else(|| {
            Error::invalid(
                "code",
                "code: that is not the code your app shows now; check its clock and try again.",
            )
        })?;
        let user = self
            .deps
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::not_found("user", user_id.to_string()))?;
        // A setup is used once: the same sealed setup sent again would add the same secret as
        // another app, past the limit the start checked (found by an attacker's script: eight
        // finishes of one setup made ten apps). The limit is checked again here, at the save.
        let existing = self.deps.store.software_oath_methods(user.id).await?;
        if existing.len() >= MAX_METHODS {
            return Err(Error::invalid(
                "softwareOathMethods",
                format!("At most {MAX_METHODS} authenticator apps per person; remove one first."),
            ));
        }
        if existing.iter().any(|m| {
            self.sealer
                .open(&m.sealed_secret, m.id.as_bytes())
                .is_ok_and(|stored| stored.as_slice() == secret)
        }) {
            return Err(Error::invalid(
                "registration",
                "registration: this setup was already used to add an app; start again.",
            ));
        }
        let id = self.deps.entropy.uuid();
        let name = input
            .display_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Authenticator app".to_string());
        if name.chars().count() > 64 {
            return Err(Error::invalid(
                "displayName",
                "displayName: at most 64 characters.",
            ));
        }
        let method = SoftwareOathMethod {
            id,
            user_id,
            display_name: name,
            sealed_secret: self
                .sealer
                .seal(self.deps.entropy.as_ref(), secret, id.as_bytes()),
            created: now,
            last_used_step: step,
        };
        let actor = Actor::User {
            id: user.id,
            user_principal_name: user.user_principal_name.clone(),
        };
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name)
            .modified(
                "SoftwareOathMethod",
                None,
                Some(&serde_json::json!({ "id": id, "displayName": method.display_name })),
            );
        let audit = audit_entry(
            &self.deps,
            &actor,
            request,
            "UserManagement",
            "User registered security info",
            "Add",
            target,
        );
        self.deps
            .store
            .commit(
                vec![Change::InsertSoftwareOath(method.clone())],
                Some(audit),
            )
            .await?;
        Ok(SoftwareOathMethodView {
            id,
            display_name: method.display_name,
            created_date_time: now,
        })
    }

    pub async fn list(&self, user_id: Uuid) -> Result<Vec<SoftwareOathMethodView>> {
        Ok(self
            .deps
            .store
            .software_oath_methods(user_id)
            .await?
            .into_iter()
            .map(|m| SoftwareOathMethodView {
                id: m.id,
                display_name: m.display_name,
                created_date_time: m.created,
            })
            .collect())
    }

    pub async fn delete(
        &self,
        session: &AuthSession,
        request: &RequestContext,
        id: &str,
    ) -> Result<()> {
        let user = self
            .deps
            .store
            .user(session.user_id)
            .await?
            .ok_or_else(|| Error::not_found("user", session.user_id.to_string()))?;
        let method = self
            .deps
            .store
            .software_oath_methods(user.id)
            .await?
            .into_iter()
            .find(|m| m.id.to_string().eq_ignore_ascii_case(id.trim()))
            .ok_or_else(|| Error::not_found("softwareOathAuthenticationMethod", id))?;
        let actor = Actor::User {
            id: user.id,
            user_principal_name: user.user_principal_name.clone(),
        };
        let target = TargetResource::new("User", user.id, &user.display_name)
            .with_upn(&user.user_principal_name)
            .modified(
                "SoftwareOathMethod",
                Some(&serde_json::json!({ "id": method.id, "displayName": method.display_name })),
                None,
            );
        let audit = audit_entry(
            &self.deps,
            &actor,
            request,
            "UserManagement",
            "User deleted security info",
            "Delete",
            target,
        );
        self.deps
            .store
            .commit(
                vec![
                    Change::DeleteSoftwareOath {
                        user_id: user.id,
                        id: method.id,
                    },
                    // The sessions in which it was used end with it (and their grants).
                    DirectoryChange::EndSignIns {
                        user_id: user.id,
                        credential_id: Some(method.id.to_string()),
                        at: self.deps.clock.now(),
                    }
                    .into(),
                ],
                Some(audit),
            )
            .await
    }

    /// The second step: a code from one of the person's apps, added to their session. Wrong codes
    /// count toward the same lockout as other guesses.
    pub async fn verify(&self, session: &AuthSession, code: &str) -> Result<SessionMethod> {
        let now = self.deps.clock.now();
        let keys = crate::methods::lockout::LockoutKeys::new("totp", Some(session.user_id), None);
        // The guess is counted before it is compared; only an attempt holding its slot compares.
        let attempt = match crate::methods::lockout::begin(&self.deps, &keys).await? {
            Ok(attempt) => attempt,
            Err(lock) => {
                return Err(Error::TooManyRequests {
                    retry_after_secs: lock.retry_after_secs(now),
                });
            }
        };
        for method in self
            .deps
            .store
            .software_oath_methods(session.user_id)
            .await?
        {
            let secret = self
                .sealer
                .open(&method.sealed_secret, method.id.as_bytes())?;
            if let Some(step) = matching_step(&secret, code, now) {
                if !self
                    .deps
                    .store
                    .use_software_oath_step(method.id, step)
                    .await?
                {
                    attempt.released(&self.deps).await?;
                    return Err(Error::invalid(
                        "code",
                        "code: that code was already used; wait for the next one.",
                    ));
                }
                attempt.succeeded(&self.deps).await?;
                let used = SessionMethod {
                    method: MethodKind::SoftwareOath,
                    at: now,
                    aaguid: None,
                    credential_id: Some(method.id.to_string()),
                    one_time: false,
                    backup_eligible: false,
                };
                self.deps
                    .store
                    .commit(
                        vec![Change::from(SessionChange::AddSessionMethod {
                            session_id: session.id,
                            method: used.clone(),
                        })],
                        None,
                    )
                    .await?;
                return Ok(used);
            }
        }
        if let Some(lock) = attempt.failed() {
            return Err(Error::TooManyRequests {
                retry_after_secs: lock.retry_after_secs(now),
            });
        }
        Err(Error::invalid(
            "code",
            "code: that is not the code your app shows now.",
        ))
    }
}

/// An SVG QR code of `text`, sized for a phone camera across a desk.
fn qr_svg(text: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 test vectors (the eight-digit codes' last six digits).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (unix, expected) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(secret, unix / 30), expected, "t={unix}");
        }
    }

    #[test]
    fn skew_window_and_format() {
        let secret = b"12345678901234567890";
        let now = OffsetDateTime::from_unix_timestamp(1_234_567_890).unwrap();
        let step = step_of(now);
        assert_eq!(
            matching_step(secret, &code_at(secret, step), now),
            Some(step)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(secret, &code_at(secret, step + 1), now),
            Some(step + 1)
        );
        assert_eq!(matching_step(secret, &code_at(secret, step - 2), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }
}
