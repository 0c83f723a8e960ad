//! What a sign-in log entry keeps so that Conditional Access can decide the sign-in again: the
//! engine's [`SignInContext`] as it stood when the sign-in was decided — the person, their
//! groups and roles *as they were then*, the target, platform, client app type, address,
//! country, risks, device facts, the methods the session had performed — and the outcome the
//! engine gave. Replay ([`crate::logs::replay`]) reads it back; nothing else does.
//!
//! It is stored beside the entry as a small CBOR document (`ciborium`, already core's WebAuthn
//! decoder) with one- or two-letter keys: ids as 16 bytes, enumerations as Graph's words, and
//! every member but the person, target and outcome optional, so a member added later reads
//! old contexts as "absent" and a compact log format can carry the bytes as they are.
//!
//! What it must never do: hold a secret (a method is its kind and a passkey's model, never a
//! credential), or guess: a context that cannot be read back is reported as such, and the
//! caller skips the entry rather than deciding it on invented facts.

use std::net::IpAddr;

use portcullis_policy::{
    AuthenticationMethodMode, ClientAppType, Decision, DeviceFacts, DevicePlatform, Outcome,
    PolicySet, RiskLevel, SatisfiedMethod, SignInContext, Target, UserAction, UserKind,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The outcome the engine gave, in What-If's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Grant,
    Requirements,
    Block,
}

impl Verdict {
    pub fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Grant => Verdict::Grant,
            Outcome::Requirements { .. } => Verdict::Requirements,
            Outcome::Block { .. } => Verdict::Block,
        }
    }

    /// `grant`, `requirements` or `block`, as `portcullis policy what-if` prints them.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Grant => "grant",
            Verdict::Requirements => "requirements",
            Verdict::Block => "block",
        }
    }
}

/// What the sign-in was for. The first target is the one the flow was decided for; the
/// authentication contexts an application asked for are evaluated beside it and combined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplayTarget {
    #[serde(rename = "a")]
    Application(String),
    #[serde(rename = "u")]
    UserAction(UserAction),
    #[serde(rename = "c")]
    AuthenticationContext(String),
}

impl ReplayTarget {
    fn of(target: &Target) -> Self {
        match target {
            Target::Application(app) => ReplayTarget::Application(app.clone()),
            Target::UserAction(action) => ReplayTarget::UserAction(action.clone()),
            Target::AuthenticationContext(c) => ReplayTarget::AuthenticationContext(c.clone()),
        }
    }

    fn target(&self) -> Target {
        match self {
            ReplayTarget::Application(app) => Target::Application(app.clone()),
            ReplayTarget::UserAction(action) => Target::UserAction(action.clone()),
            ReplayTarget::AuthenticationContext(c) => Target::AuthenticationContext(c.clone()),
        }
    }
}

/// The stored context of one decided sign-in. Field names are short because one is written
/// with every sign-in; the Rust names say what they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayContext {
    #[serde(rename = "u")]
    pub user_id: Uuid,
    /// Transitive group memberships when the sign-in was decided.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub group_ids: Vec<Uuid>,
    /// Active directory role templates when the sign-in was decided.
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub role_template_ids: Vec<Uuid>,
    #[serde(rename = "q", default, skip_serializing_if = "is_false")]
    pub guest: bool,
    #[serde(rename = "t")]
    pub targets: Vec<ReplayTarget>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DevicePlatform>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub client_app_type: Option<ClientAppType>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub sign_in_risk: Option<RiskLevel>,
    #[serde(rename = "ur", default, skip_serializing_if = "Option::is_none")]
    pub user_risk: Option<RiskLevel>,
    /// Device attributes by their rule names (`trustType`, `isCompliant`, …); absent for an
    /// unregistered device.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Vec<(String, String)>>,
    /// The methods performed in the session: kind, and a passkey's model.
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<(AuthenticationMethodMode, Option<String>)>,
    #[serde(rename = "w", default, skip_serializing_if = "is_false")]
    pub password_changed: bool,
    #[serde(rename = "tu", default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_terms_of_use: Vec<String>,
    /// The engine's outcome when the sign-in was decided.
    #[serde(rename = "o")]
    pub verdict: Verdict,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A stored context that does not read back as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("the stored replay context is not readable: {0}")]
    Unreadable(String),
    #[error("the stored replay context names no target")]
    NoTarget,
}

impl ReplayContext {
    /// The context of a sign-in decided on `ctx` (and on the same facts for each of
    /// `auth_contexts`), whose combined decision was `decision`.
    pub fn record(ctx: &SignInContext, auth_contexts: &[String], decision: &Decision) -> Self {
        let ids = |list: &[String]| -> Vec<Uuid> {
            // Memberships come from the directory as GUIDs; anything else cannot be one and
            // could not be matched by a policy either.
            list.iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect()
        };
        let mut targets = vec![ReplayTarget::of(&ctx.target)];
        targets.extend(
            auth_contexts
                .iter()
                .map(|c| ReplayTarget::AuthenticationContext(c.clone())),
        );
        ReplayContext {
            user_id: Uuid::parse_str(&ctx.user_id).unwrap_or(Uuid::nil()),
            group_ids: ids(&ctx.group_ids),
            role_template_ids: ids(&ctx.role_template_ids),
            guest: ctx.user_kind == UserKind::Guest,
            targets,
            platform: ctx.platform.clone(),
            client_app_type: Some(ctx.client_app_type.clone()),
            ip_address: ctx.ip_address,
            country: ctx.country.clone(),
            sign_in_risk: Some(ctx.sign_in_risk.clone()).filter(|r| *r != RiskLevel::None),
            user_risk: Some(ctx.user_risk.clone()).filter(|r| *r != RiskLevel::None),
            device: ctx.device.as_ref().map(device_attributes),
            methods: ctx
                .methods
                .iter()
                .map(|m| (m.mode.clone(), m.aaguid.clone()))
                .collect(),
            password_changed: ctx.password_changed,
            accepted_terms_of_use: ctx.accepted_terms_of_use.clone(),
            verdict: Verdict::of(&decision.outcome),
        }
    }

    /// The bytes stored with the entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(128);
        // Writing plain data into a Vec cannot fail: there is no I/O and every member is
        // serializable.
        ciborium::into_writer(self, &mut bytes).expect("a replay context serializes");
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ContextError> {
        let context: ReplayContext =
            ciborium::from_reader(bytes).map_err(|e| ContextError::Unreadable(e.to_string()))?;
        if context.targets.is_empty() {
            return Err(ContextError::NoTarget);
        }
        Ok(context)
    }

    /// The engine's contexts for this sign-in under `set`: one per target, named locations
    /// found again in `set` from the stored address and country.
    pub fn sign_in_contexts(&self, set: &PolicySet) -> Vec<SignInContext> {
        let mut base = SignInContext::new(
            self.user_id.to_string(),
            Target::UserAction(UserAction::RegisterSecurityInformation),
        );
        base.group_ids = self.group_ids.iter().map(Uuid::to_string).collect();
        base.role_template_ids = self.role_template_ids.iter().map(Uuid::to_string).collect();
        base.user_kind = if self.guest {
            UserKind::Guest
        } else {
            UserKind::Member
        };
        base.platform = self.platform.clone();
        base.client_app_type = self
            .client_app_type
            .clone()
            .unwrap_or(ClientAppType::Browser);
        base.ip_address = self.ip_address;
        base.country = self.country.clone();
        if let Some(ip) = self.ip_address {
            base.named_locations = set.locations_for(ip, self.country.as_deref());
        }
        base.sign_in_risk = self.sign_in_risk.clone().unwrap_or(RiskLevel::None);
        base.user_risk = self.user_risk.clone().unwrap_or(RiskLevel::None);
        base.device = self.device.as_ref().map(|attributes| {
            let mut device = DeviceFacts::default();
            for (name, value) in attributes {
                device.set(name, value);
            }
            device
        });
        base.methods = self
            .methods
            .iter()
            .map(|(mode, aaguid)| SatisfiedMethod {
                mode: mode.clone(),
                aaguid: aaguid.clone(),
            })
            .collect();
        base.password_changed = self.password_changed;
        base.accepted_terms_of_use = self.accepted_terms_of_use.clone();
        self.targets
            .iter()
            .map(|t| {
                let mut ctx = base.clone();
                ctx.target = t.target();
                ctx
            })
            .collect()
    }

    /// The decision `set` gives this sign-in: every target's, combined as the flow combines
    /// them.
    pub fn decide(&self, set: &PolicySet) -> Decision {
        let mut contexts = self.sign_in_contexts(set).into_iter();
        // `decode` refuses a context without a target, and `record` always writes one.
        let first = contexts
            .next()
            .expect("a replay context has at least one target");
        let mut decision = portcullis_policy::evaluate(&first, set);
        for ctx in contexts {
            decision = decision.combine(portcullis_policy::evaluate(&ctx, set));
        }
        decision
    }
}

/// A device's attributes as (rule name, value) pairs, so that `DeviceFacts::set` reads them
/// back.
fn device_attributes(device: &DeviceFacts) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut one = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            out.push((name.to_owned(), v.clone()));
        }
    };
    one("deviceId", &device.device_id);
    one("displayName", &device.display_name);
    one("deviceOwnership", &device.device_ownership);
    one("enrollmentProfileName", &device.enrollment_profile_name);
    one(
        "isCompliant",
        &device.is_compliant.map(|b| {
            if b {
                "True".to_owned()
            } else {
                "False".to_owned()
            }
        }),
    );
    one("manufacturer", &device.manufacturer);
    one("mdmAppId", &device.mdm_app_id);
    one("model", &device.model);
    one("operatingSystem", &device.operating_system);
    one("operatingSystemVersion", &device.operating_system_version);
    one("profileType", &device.profile_type);
    one("trustType", &device.trust_type);
    for (index, value) in device.extension_attributes.iter().enumerate() {
        one(&format!("extensionAttribute{}", index + 1), value);
    }
    for id in &device.physical_ids {
        out.push(("physicalIds".to_owned(), id.clone()));
    }
    for label in &device.system_labels {
        out.push(("systemLabels".to_owned(), label.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignInContext {
        let mut ctx = SignInContext::new(
            Uuid::new_v4().to_string(),
            Target::Application(Uuid::new_v4().to_string()),
        );
        ctx.group_ids = (0..3).map(|_| Uuid::new_v4().to_string()).collect();
        ctx.role_template_ids = vec![Uuid::new_v4().to_string()];
        ctx.platform = Some(DevicePlatform::Android);
        ctx.client_app_type = ClientAppType::Browser;
        ctx.ip_address = Some("203.0.113.9".parse().unwrap());
        ctx.country = Some("NL".into());
        ctx.sign_in_risk = RiskLevel::Medium;
        ctx.methods = vec![
            SatisfiedMethod::passkey("cb69481e-8ff7-4039-93ec-0a2729a154a8"),
            SatisfiedMethod::new(AuthenticationMethodMode::TemporaryAccessPassOneTime),
        ];
        let mut device = DeviceFacts::default();
        assert!(device.set("trustType", "AzureAD"));
        assert!(device.set("isCompliant", "True"));
        assert!(device.set("extensionAttribute3", "kiosk"));
        assert!(device.set("physicalIds", "[USER-GID]:1"));
        ctx.device = Some(device);
        ctx
    }

    #[test]
    fn a_context_reads_back_as_the_engine_saw_it() {
        let ctx = sample();
        let set = PolicySet::new(Vec::new(), Vec::new(), Vec::new());
        let decision = portcullis_policy::evaluate(&ctx, &set);
        let stored = ReplayContext::record(&ctx, &["c2".to_owned()], &decision);
        let back = ReplayContext::decode(&stored.encode()).expect("reads back");
        assert_eq!(back, stored);
        let contexts = back.sign_in_contexts(&set);
        assert_eq!(contexts.len(), 2);
        assert_eq!(contexts[0], ctx, "every fact the engine reads survives");
        assert_eq!(
            contexts[1].target,
            Target::AuthenticationContext("c2".into())
        );
        assert_eq!(back.verdict, Verdict::Grant);
    }

    #[test]
    fn it_is_small() {
        let ctx = sample();
        let set = PolicySet::new(Vec::new(), Vec::new(), Vec::new());
        let decision = portcullis_policy::evaluate(&ctx, &set);
        let bytes = ReplayContext::record(&ctx, &[], &decision).encode();
        // Four GUIDs of memberships and the person (16 bytes each), an app id, an address,
        // two methods and a device: a few hundred bytes, not the kilobytes of JSON.
        assert!(bytes.len() < 400, "{} bytes", bytes.len());
    }

    #[test]
    fn garbage_is_refused_not_guessed() {
        assert!(matches!(
            ReplayContext::decode(b"not cbor at all"),
            Err(ContextError::Unreadable(_))
        ));
        let mut empty = ReplayContext::record(
            &sample(),
            &[],
            &portcullis_policy::evaluate(
                &sample(),
                &PolicySet::new(Vec::new(), Vec::new(), Vec::new()),
            ),
        );
        empty.targets.clear();
        assert_eq!(
            ReplayContext::decode(&empty.encode()),
            Err(ContextError::NoTarget)
        );
    }
}
