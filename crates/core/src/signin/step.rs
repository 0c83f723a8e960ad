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
pub const NOT_ASSIGNED_TO_APPLICATION: u32 = SignInErrorCode::NotAssignedToApplication.code();

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
    /// The application admits only people assigned to it, and this person is not (Entra's
    /// AADSTS50105). Shown as a block.
    NotAssigned,
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
            FlowStep::Blocked { .. } | FlowStep::NotAssigned => Step::Blocked,
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
            FlowStep::NotAssigned => Some(NOT_ASSIGNED_TO_APPLICATION),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use portcullis_policy::{
        AuthenticationStrength, BlockReason, BlockingPolicy, ConditionalAccessStatus, Control,
        MULTIFACTOR_STRENGTH_ID, PHISHING_RESISTANT_STRENGTH_ID, Requirement, built_in_strength,
    };

    use super::*;

    /// A YubiKey 5's AAGUID, as an allow-list would name it.
    const YUBIKEY: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

    fn strength(id: &str) -> Arc<AuthenticationStrength> {
        Arc::new(built_in_strength(id).expect("a built-in strength").clone())
    }

    fn decision(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            trace: Vec::new(),
            session: Default::default(),
            status: ConditionalAccessStatus::Failure,
        }
    }

    fn asking(strength_id: &str, policy: &str) -> Decision {
        decision(Outcome::Requirements {
            requirements: vec![Requirement {
                alternatives: vec![Control::AuthenticationStrength(strength(strength_id))],
                policy_ids: vec![policy.to_string()],
            }],
        })
    }

    fn after_pass() -> PersonMethods {
        PersonMethods {
            satisfied: vec![SatisfiedMethod::new(
                AuthenticationMethodMode::TemporaryAccessPassOneTime,
            )],
            ..PersonMethods::default()
        }
    }

    fn policy_ids(step: &FlowStep) -> Vec<&str> {
        step.named_policies()
            .iter()
            .map(|p| p.id.as_str())
            .collect()
    }

    #[test]
    fn a_grant_grants_and_a_block_names_every_blocking_policy() {
        assert_eq!(
            next_step(&decision(Outcome::Grant), &after_pass()),
            FlowStep::Granted
        );
        let blocked = next_step(
            &decision(Outcome::Block {
                policies: vec![
                    BlockingPolicy {
                        policy_id: "p1".into(),
                        display_name: "Block Android".into(),
                        reason: BlockReason::BlockControl,
                    },
                    BlockingPolicy {
                        policy_id: "p2".into(),
                        display_name: "Block legacy".into(),
                        reason: BlockReason::BlockControl,
                    },
                ],
            }),
            &after_pass(),
        );
        assert_eq!(blocked.kind(), Step::Blocked);
        assert_eq!(policy_ids(&blocked), ["p1", "p2"]);
        assert_eq!(blocked.named_policies()[0].display_name, "Block Android");
        assert_eq!(blocked.error_code(), Some(53003));
    }

    #[test]
    fn a_registered_passkey_that_meets_the_strength_is_offered() {
        let person = PersonMethods {
            passkeys: vec![YUBIKEY.into()],
            authenticator_app: true,
            ..after_pass()
        };
        let step = next_step(&asking(PHISHING_RESISTANT_STRENGTH_ID, "p1"), &person);
        // The app's code does not meet phishing-resistant MFA, so it is not offered.
        assert_eq!(
            step,
            FlowStep::Requirements {
                offered: vec![MethodKind::Fido2],
                required_strengths: vec!["Phishing resistant MFA".into()],
            }
        );
        assert_eq!(step.error_code(), Some(50074));
        assert_eq!(step.offered_methods(), [MethodKind::Fido2]);
    }

    #[test]
    fn an_authenticator_app_is_offered_when_it_completes_multifactor() {
        let person = PersonMethods {
            satisfied: vec![SatisfiedMethod::new(AuthenticationMethodMode::Password)],
            authenticator_app: true,
            ..PersonMethods::default()
        };
        let step = next_step(&asking(MULTIFACTOR_STRENGTH_ID, "p1"), &person);
        assert_eq!(step.offered_methods(), [MethodKind::SoftwareOath]);
    }

    #[test]
    fn nothing_to_offer_but_a_registrable_passkey_asks_for_registration() {
        let person = PersonMethods {
            registrable_passkeys: vec![YUBIKEY.into()],
            authenticator_app: true,
            ..after_pass()
        };
        let step = next_step(&asking(PHISHING_RESISTANT_STRENGTH_ID, "p1"), &person);
        assert_eq!(step.kind(), Step::RegistrationNeeded);
        assert_eq!(policy_ids(&step), ["p1"]);
        assert_eq!(step.offered_methods(), [MethodKind::Fido2]);
        assert_eq!(step.error_code(), Some(50079));
    }

    #[test]
    fn nothing_that_can_meet_the_strength_blocks_with_the_policies_that_asked() {
        // Self-service registration is off: nothing can be registered.
        let step = next_step(&asking(PHISHING_RESISTANT_STRENGTH_ID, "p1"), &after_pass());
        assert_eq!(step.kind(), Step::Blocked);
        assert_eq!(policy_ids(&step), ["p1"]);
        assert_eq!(step.required_strengths(), ["Phishing resistant MFA"]);
        assert_eq!(step.error_code(), Some(53003));
    }

    #[test]
    fn every_requirement_must_be_met_by_what_is_offered() {
        // Two policies: MFA and phishing-resistant. An authenticator app meets the first only,
        // so it is not offered; the passkey meets both.
        let both = decision(Outcome::Requirements {
            requirements: vec![
                Requirement {
                    alternatives: vec![Control::AuthenticationStrength(strength(
                        MULTIFACTOR_STRENGTH_ID,
                    ))],
                    policy_ids: vec!["mfa".into()],
                },
                Requirement {
                    alternatives: vec![Control::AuthenticationStrength(strength(
                        PHISHING_RESISTANT_STRENGTH_ID,
                    ))],
                    policy_ids: vec!["prm".into()],
                },
            ],
        });
        let person = PersonMethods {
            passkeys: vec![YUBIKEY.into()],
            authenticator_app: true,
            ..after_pass()
        };
        let step = next_step(&both, &person);
        assert_eq!(step.offered_methods(), [MethodKind::Fido2]);
        assert_eq!(step.required_strengths().len(), 2);
    }

    #[test]
    fn a_stored_step_reads_back_as_written() {
        let steps = [
            FlowStep::Identify,
            FlowStep::Requirements {
                offered: vec![MethodKind::Fido2, MethodKind::SoftwareOath],
                required_strengths: vec!["Multifactor authentication".into()],
            },
            FlowStep::ProveRegistration {
                pending_passkey: Uuid::nil(),
                required_strengths: Vec::new(),
                interrupting_policies: vec![NamedPolicy {
                    id: "p1".into(),
                    display_name: "Passkeys for admins".into(),
                }],
            },
            FlowStep::Completed,
        ];
        for step in steps {
            let json = serde_json::to_value(&step).expect("serialises");
            assert_eq!(json["kind"], step.kind().as_str());
            let back: FlowStep = serde_json::from_value(json).expect("reads back");
            assert_eq!(back, step);
        }
    }
}
