//! Where a sign-in flow is, and the one decision that moves it after Conditional Access.
//!
//! [`FlowStep`] is the flow's state as data: each variant carries what that step needs (the
//! methods offered, the strengths asked for, the policies that interrupted or blocked, the
//! passkey awaiting proof), so a step cannot exist without its data and the JSON status, the
//! pages and the sign-in log all match on the same variants. [`Step`] is its bare kind: what a
//! request expects the flow to be at, and what the store compares when it moves a flow.
//!
//! [`next_step`] is pure: from Conditional Access's decision and what the person has (and could
//! register), the next step. It reads no store and no clock, so it is tested here on its own.
//! What it must never do: special-case a method against a strength — whether a method meets a
//! strength is the engine's business ([`portcullis_policy::AuthenticationStrength`]).

use portcullis_policy::{AuthenticationMethodMode, Decision, Outcome, SatisfiedMethod};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kernel::error::SignInErrorCode;
use crate::session::MethodKind;

/// Entra's error codes for the outcomes a flow logs and shows.
pub const STRONG_AUTH_REQUIRED: u32 = SignInErrorCode::StrongAuthRequired.code();
pub const MORE_INFORMATION_REQUIRED: u32 = SignInErrorCode::MoreInformationRequired.code();
pub const BLOCKED_BY_CONDITIONAL_ACCESS: u32 = SignInErrorCode::BlockedByConditionalAccess.code();

/// The kind of step a flow is at, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// Waiting for a username (or a passkey, which names its own account).
    Identify,
    /// Waiting for a pass, a password or a passkey.
    FirstFactor,
    /// Conditional Access asks for more in this session (a passkey, an app code).
    Requirements,
    /// "More information required": register a method that meets the strength.
    RegistrationNeeded,
    /// A passkey was registered; one assertion with it must prove it.
    ProveRegistration,
    Granted,
    Blocked,
    /// Granted, and the authorization code for it issued (once).
    Completed,
}

impl Step {
    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Identify => "identify",
            Step::FirstFactor => "firstFactor",
            Step::Requirements => "requirements",
            Step::RegistrationNeeded => "registrationNeeded",
            Step::ProveRegistration => "proveRegistration",
            Step::Granted => "granted",
            Step::Blocked => "blocked",
            Step::Completed => "completed",
        }
    }
}

/// A policy named to the person (the one that blocked, or those that asked for more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedPolicy {
    pub id: String,
    pub display_name: String,
}

/// Where a flow is, with what that step needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FlowStep {
    Identify,
    FirstFactor,
    /// Conditional Access asks for one more of the person's own methods.
    Requirements {
        /// The person's methods that would meet every requirement, in Graph's mode names.
        offered: Vec<MethodKind>,
        required_strengths: Vec<String>,
    },
    /// The person has nothing that meets the strength, but can register a passkey that does.
    RegistrationNeeded {
        required_strengths: Vec<String>,
        /// The policies whose requirements sent the person here.
        interrupting_policies: Vec<NamedPolicy>,
    },
    /// A passkey was registered in this flow; one assertion with it must prove it.
    ProveRegistration {
        pending_passkey: Uuid,
        required_strengths: Vec<String>,
        interrupting_policies: Vec<NamedPolicy>,
    },
    Granted,
    Blocked {
        policies: Vec<NamedPolicy>,
        /// The strengths asked for, when the block is "nothing can meet them".
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required_strengths: Vec<String>,
    },
    Completed,
}

impl FlowStep {
    pub fn kind(&self) -> Step {
        match self {
            FlowStep::Identify => Step::Identify,
            FlowStep::FirstFactor => Step::FirstFactor,
            FlowStep::Requirements { .. } => Step::Requirements,
            FlowStep::RegistrationNeeded { .. } => Step::RegistrationNeeded,
            FlowStep::ProveRegistration { .. } => Step::ProveRegistration,
            FlowStep::Granted => Step::Granted,
            FlowStep::Blocked { .. } => Step::Blocked,
            FlowStep::Completed => Step::Completed,
        }
    }

    /// Entra's code for this step's interrupt or block; `None` while the sign-in goes on or
    /// once it succeeded.
    pub fn error_code(&self) -> Option<u32> {
        match self {
            FlowStep::Requirements { .. } => Some(STRONG_AUTH_REQUIRED),
            FlowStep::RegistrationNeeded { .. } => Some(MORE_INFORMATION_REQUIRED),
            FlowStep::Blocked { .. } => Some(BLOCKED_BY_CONDITIONAL_ACCESS),
            _ => None,
        }
    }

    /// The methods the person may present at this step.
    pub fn offered_methods(&self) -> Vec<MethodKind> {
        match self {
            FlowStep::Requirements { offered, .. } => offered.clone(),
            FlowStep::RegistrationNeeded { .. } | FlowStep::ProveRegistration { .. } => {
                vec![MethodKind::Fido2]
            }
            _ => Vec::new(),
        }
    }

    pub fn required_strengths(&self) -> &[String] {
        match self {
            FlowStep::Requirements {
                required_strengths, ..
            }
            | FlowStep::RegistrationNeeded {
                required_strengths, ..
            }
            | FlowStep::ProveRegistration {
                required_strengths, ..
            }
            | FlowStep::Blocked {
                required_strengths, ..
            } => required_strengths,
            _ => &[],
        }
    }

    /// The policies named to the person: those that blocked, or those that interrupted.
    pub fn named_policies(&self) -> &[NamedPolicy] {
        match self {
            FlowStep::Blocked { policies, .. } => policies,
            FlowStep::RegistrationNeeded {
                interrupting_policies,
                ..
            }
            | FlowStep::ProveRegistration {
                interrupting_policies,
                ..
            } => interrupting_policies,
            _ => &[],
        }
    }

    /// A block by these policies.
    pub fn blocked_by(policies: &[portcullis_policy::BlockingPolicy]) -> FlowStep {
        FlowStep::Blocked {
            policies: policies
                .iter()
                .map(|p| NamedPolicy {
                    id: p.policy_id.clone(),
                    display_name: p.display_name.clone(),
                })
                .collect(),
            required_strengths: Vec::new(),
        }
    }
}

/// What the person has, and could add, as far as Conditional Access's requirements go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonMethods {
    /// What this session has already proved.
    pub satisfied: Vec<SatisfiedMethod>,
    /// The AAGUIDs of the person's registered passkeys.
    pub passkeys: Vec<String>,
    /// Whether the person has an authenticator app (TOTP) registered.
    pub authenticator_app: bool,
    /// The AAGUIDs of passkey models the person may register now (empty when self-service
    /// registration is off).
    pub registrable_passkeys: Vec<String>,
}

/// The flow's next step after Conditional Access decided `decision` on what the person has.
///
/// - Grant: granted.
/// - Block: blocked, naming the blocking policies.
/// - Requirements: offer each of the person's own methods that, added to what the session has,
///   would meet every requirement; failing that, registration of a passkey model that would;
///   failing that, a block by the policies that asked ("If the authentication strength doesn't
///   include a method that the user can register and use, the user is blocked from sign-in to
///   the resource").
pub fn next_step(decision: &Decision, person: &PersonMethods) -> FlowStep {
    let requirements = match &decision.outcome {
        Outcome::Grant => return FlowStep::Granted,
        Outcome::Block { policies } => return FlowStep::blocked_by(policies),
        Outcome::Requirements { requirements } => requirements,
    };
    let mut required_strengths: Vec<String> = Vec::new();
    for s in requirements.iter().flat_map(|r| r.strengths()) {
        let name = s.name().to_string();
        if !required_strengths.contains(&name) {
            required_strengths.push(name);
        }
    }
    // Whether one more method of this kind would meet every requirement.
    let meets = |extra: SatisfiedMethod| {
        let mut methods = person.satisfied.clone();
        methods.push(extra);
        requirements
            .iter()
            .all(|r| r.strengths().any(|s| s.is_satisfied_by(&methods)))
    };
    let mut offered = Vec::new();
    if person
        .passkeys
        .iter()
        .any(|aaguid| meets(SatisfiedMethod::passkey(aaguid.clone())))
    {
        offered.push(MethodKind::Fido2);
    }
    if person.authenticator_app
        && meets(SatisfiedMethod::new(AuthenticationMethodMode::SoftwareOath))
    {
        offered.push(MethodKind::SoftwareOath);
    }
    let asking = named_policies(
        decision,
        requirements.iter().flat_map(|r| r.policy_ids.iter()),
    );
    if !offered.is_empty() {
        FlowStep::Requirements {
            offered,
            required_strengths,
        }
    } else if person
        .registrable_passkeys
        .iter()
        .any(|aaguid| meets(SatisfiedMethod::passkey(aaguid.clone())))
    {
        FlowStep::RegistrationNeeded {
            required_strengths,
            interrupting_policies: asking,
        }
    } else {
        FlowStep::Blocked {
            policies: asking,
            required_strengths,
        }
    }
}

/// The policies with these ids, each once, by the names the decision's trace gives them.
fn named_policies<'a>(
    decision: &Decision,
    ids: impl Iterator<Item = &'a String>,
) -> Vec<NamedPolicy> {
    let mut out: Vec<NamedPolicy> = Vec::new();
    for id in ids {
        if out.iter().any(|p| &p.id == id) {
            continue;
        }
        let display_name = decision
            .trace
            .iter()
            .find(|t| t.policy_id() == id)
            .map(|t| t.display_name().to_string())
            .unwrap_or_default();
        out.push(NamedPolicy {
            id: id.clone(),
            display_name,
        });
    }
    out
}
