//! The lockout guard: a change to Conditional Access (a policy, or a named location or strength
//! that policies name) or to a method policy (passkeys, passwords, Temporary Access Passes) that
//! would leave every Global Administrator — or the person making the change — unable to reach the
//! Admin Portal is refused with 409 `policyWouldLockOut`, the proof in the error, unless the
//! request acknowledges it ([`RequestContext::acknowledge_lockout`]).
//!
//! What it owns: who must keep access (the holders of Global Administrator, directly or through
//! a role-assignable group, and the user making the change), what each of them can present
//! (their passkeys the passkey policy admits, a password when passwords are on, an
//! authenticator app, a usable Temporary Access Pass), and the rule below. What it must never
//! do: decide a sign-in itself. Whether a person gets through is the analyzer's answer
//! ([`portcullis_policy::analyze::ConditionSpace::can_reach`]), over every platform, location
//! and client, decided by the engine.
//!
//! The rule, where Entra is silent:
//! - A change is judged by what it takes away: the people who could reach the Admin Portal
//!   before it and could not after it. Administrators who were already locked out do not make
//!   every change refused.
//! - Refused when it takes the Admin Portal from the last Global Administrators who had it, or
//!   from the person making the change (a person, not an application: an automation client
//!   does not sign in to the portal).
//! - "Can reach" needs a way to sign in at all: someone left with no passkey the policy admits,
//!   no password and no usable pass cannot, whatever Conditional Access says. The person making
//!   the change is signed in as they make it, so they count as able to begin one (their pass may
//!   be used up, and Conditional Access still decides every page they open next).
//! - Report-only and disabled policies never trip it: the engine does not enforce them.

use std::sync::Arc;

use portcullis_policy::analyze::{
    ConditionSpace, Finding, FindingKind, PersonFacts, PolicyRef, Reach, Severity, Witness,
};
use portcullis_policy::{
    AuthenticationMethodMode, ClientAppType, Outcome, PolicySet, RiskLevel, SatisfiedMethod, Target,
};
use uuid::Uuid;

use crate::conditional_access::PolicyChangeCheck;
use crate::directory::audit::RequestContext;
use crate::directory::authz::Actor;
use crate::directory::first_party::ADMIN_PORTAL_APP_ID;
use crate::directory::model::{ObjectKind, User};
use crate::directory::roles::GLOBAL_ADMINISTRATOR;
use crate::directory::store::DirectoryStore;
use crate::kernel::Deps;
use crate::methods::config::MethodPolicyCheck;
use crate::methods::passkeys::{FIDO2_CONFIGURATION_ID, Fido2Policy, PasskeyPolicyCheck};
use crate::methods::password::PasswordConfiguration;
use crate::methods::store::MethodStore;
use crate::methods::tap::{TapConfiguration, usability};
use crate::{Error, Result};

pub mod analysis;

/// The lockout guard; see the module docs.
#[derive(Clone)]
pub struct LockoutGuard {
    deps: Deps<dyn MethodStore>,
    /// Whether any passkey can prove its model: false when no attestation root is trusted, so
    /// that a policy enforcing attestation lets nobody register one.
    can_attest: bool,
}

/// One person the guard protects, with what the method policies let them present.
struct Protected {
    user: User,
    groups: Vec<Uuid>,
    roles: Vec<String>,
    /// Every passkey's AAGUID, before the passkey policy filters them.
    passkeys: Vec<String>,
    /// Methods that do not depend on the passkey policy: password, authenticator app, pass.
    other_methods: Vec<SatisfiedMethod>,
    /// Whether a password or a usable pass lets them start a sign-in without a passkey.
    other_first_factor: bool,
}

/// The method policies that decide what a person can present besides passkeys, read once per
/// judgement or analysis rather than once per person.
struct MethodRules {
    passwords_on: bool,
    passes: TapConfiguration,
}

/// The rules a judgement is made under: the policies, the passkey method policy, and the
/// password and pass policies.
struct Scenario<'a> {
    policies: &'a PolicySet,
    passkeys: &'a Fido2Policy,
    methods: &'a MethodRules,
    /// Whether any passkey can prove its model (the guard's `can_attest`).
    can_attest: bool,
}

/// Whether a person reaches the Admin Portal under a scenario.
enum Standing {
    Reaches,
    LockedOut(Box<Finding>),
}

impl LockoutGuard {
    pub fn new(deps: Deps<dyn MethodStore>) -> Self {
        LockoutGuard {
            deps,
            can_attest: true,
        }
    }

    /// Says whether this server trusts any attestation root (the `can_attest` field).
    pub fn with_attestation_roots(mut self, any: bool) -> Self {
        self.can_attest = any;
        self
    }

    /// Refuses `before` → `after` when it takes the Admin Portal from the last Global
    /// Administrators who had it, or from `actor`. The callers have already let an acknowledged
    /// change through, before reading anything.
    async fn judge(&self, actor: &Actor, before: Scenario<'_>, after: Scenario<'_>) -> Result<()> {
        let holders = self.global_administrators().await?;
        let actor_user = match actor {
            Actor::User { id, .. } => self.deps.store.user(*id).await?,
            Actor::App { .. } | Actor::System => None,
        };
        // Each person as the password and pass policies of either side let them present; read
        // twice only when a change of those policies is judged.
        let same_methods = std::ptr::eq(before.methods, after.methods);
        let mut people: Vec<(Protected, Option<Protected>)> = Vec::new();
        for user in holders.iter().chain(actor_user.iter()) {
            if people.iter().any(|(p, _)| p.user.id == user.id) {
                continue;
            }
            let signed_in_now = actor_user.as_ref().is_some_and(|a| a.id == user.id);
            let then = self
                .protected(user.clone(), signed_in_now, before.methods)
                .await?;
            let now = if same_methods {
                None
            } else {
                Some(
                    self.protected(user.clone(), signed_in_now, after.methods)
                        .await?,
                )
            };
            people.push((then, now));
        }
        let before_space = space(before.policies);
        let after_space = space(after.policies);
        let mut kept_by_someone = false;
        let mut lost = None;
        let mut actor_lost = None;
        for (person, changed) in &people {
            let reached = matches!(standing(&before_space, &before, person), Standing::Reaches);
            if !reached {
                continue;
            }
            let holder = holders.iter().any(|h| h.id == person.user.id);
            match standing(&after_space, &after, changed.as_ref().unwrap_or(person)) {
                Standing::Reaches => kept_by_someone |= holder,
                Standing::LockedOut(finding) => {
                    if actor_user.as_ref().is_some_and(|a| a.id == person.user.id) {
                        actor_lost = Some(finding.clone());
                    }
                    if holder && lost.is_none() {
                        lost = Some(finding);
                    }
                }
            }
        }
        let refusal = match (actor_lost, lost) {
            (Some(finding), _) => Some((
                format!(
                    "This change would lock you out: {} could no longer reach the Admin Portal. {}",
                    person_name(&finding),
                    ACKNOWLEDGE
                ),
                finding,
            )),
            (None, Some(finding)) if !kept_by_someone => Some((
                format!(
                    "This change would leave no Global Administrator able to reach the Admin Portal ({} could before). {}",
                    person_name(&finding),
                    ACKNOWLEDGE
                ),
                finding,
            )),
            _ => None,
        };
        match refusal {
            None => Ok(()),
            Some((message, finding)) => Err(Error::WouldLockOut {
                message,
                finding: Box::new(finding.to_json()),
            }),
        }
    }

    /// Everyone holding Global Administrator: assigned directly, or a member (at any depth) of
    /// a group it is assigned to. Disabled accounts cannot sign in and are not counted.
    async fn global_administrators(&self) -> Result<Vec<User>> {
        let store = &self.deps.store;
        let mut ids: Vec<Uuid> = Vec::new();
        for assignment in store.role_assignments(None).await? {
            if assignment.role_definition_id != GLOBAL_ADMINISTRATOR {
                continue;
            }
            if store.group(assignment.principal_id).await?.is_some() {
                for member in store.transitive_members(assignment.principal_id).await? {
                    if member.kind == ObjectKind::User && !ids.contains(&member.id) {
                        ids.push(member.id);
                    }
                }
            } else if !ids.contains(&assignment.principal_id) {
                ids.push(assignment.principal_id);
            }
        }
        let mut users = Vec::new();
        for id in ids {
            if let Some(user) = store.user(id).await?
                && user.account_enabled
            {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// The password and pass policies in force.
    async fn method_rules(&self) -> Result<MethodRules> {
        let passwords: PasswordConfiguration =
            crate::methods::config::load(&self.deps, crate::methods::password::CONFIGURATION_ID)
                .await?;
        let passes: TapConfiguration =
            crate::methods::config::load(&self.deps, crate::methods::tap::CONFIGURATION_ID).await?;
        Ok(MethodRules {
            passwords_on: passwords.state.eq_ignore_ascii_case("enabled"),
            passes,
        })
    }

    /// `signed_in_now`: the person making the change, who is signed in at this moment, so can
    /// begin a sign-in whatever is left of their methods (a pass they used up, say).
    async fn protected(
        &self,
        user: User,
        signed_in_now: bool,
        rules: &MethodRules,
    ) -> Result<Protected> {
        let store = &self.deps.store;
        let groups: Vec<Uuid> = store
            .transitive_member_of(user.id)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        let roles = store
            .role_definitions_held(user.id)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        let passkeys = store
            .passkeys_of(user.id)
            .await?
            .into_iter()
            .map(|p| p.aaguid)
            .collect();
        let mut other_methods = Vec::new();
        let mut other_first_factor = signed_in_now;
        if rules.passwords_on && store.password(user.id).await?.is_some() {
            other_methods.push(SatisfiedMethod::new(AuthenticationMethodMode::Password));
            other_first_factor = true;
        }
        if !store.software_oath_methods(user.id).await?.is_empty() {
            other_methods.push(SatisfiedMethod::new(AuthenticationMethodMode::SoftwareOath));
        }
        if let Some(tap) = store.temporary_access_pass(user.id).await? {
            let (usable, _) = usability(
                &tap,
                rules.passes.applies_to(&groups),
                self.deps.clock.now(),
            );
            if usable {
                other_methods.push(SatisfiedMethod::new(if tap.is_usable_once {
                    AuthenticationMethodMode::TemporaryAccessPassOneTime
                } else {
                    AuthenticationMethodMode::TemporaryAccessPassMultiUse
                }));
                other_first_factor = true;
            }
        }
        Ok(Protected {
            user,
            groups,
            roles,
            passkeys,
            other_methods,
            other_first_factor,
        })
    }

    /// The passkey method policy in force.
    async fn passkey_policy(&self) -> Result<Fido2Policy> {
        match self
            .deps
            .store
            .document(
                crate::directory::model::DocumentKind::AuthenticationMethodConfiguration,
                FIDO2_CONFIGURATION_ID,
            )
            .await?
        {
            Some(doc) => Fido2Policy::from_stored(&doc.body),
            None => Ok(Fido2Policy::default()),
        }
    }
}

impl Protected {
    /// The person as the analyzer knows them: their memberships and what they can present
    /// under the passkey policy `passkeys`; and whether a passkey is among it.
    fn facts(&self, passkeys: &Fido2Policy) -> (PersonFacts, bool) {
        let mut methods = self.other_methods.clone();
        let mut has_passkey = false;
        if passkeys.admits(&self.groups).is_ok() {
            for aaguid in &self.passkeys {
                if passkeys.allows_model(aaguid).is_ok() {
                    methods.push(SatisfiedMethod::passkey(aaguid.clone()));
                    has_passkey = true;
                }
            }
        }
        let facts = PersonFacts {
            user_id: self.user.id.to_string(),
            group_ids: self.groups.iter().map(Uuid::to_string).collect(),
            role_template_ids: self.roles.clone(),
            guest: self.user.user_type == crate::directory::model::UserType::Guest,
            methods,
        };
        (facts, has_passkey)
    }
}

const ACKNOWLEDGE: &str = "If that is what you intend, repeat the request with acknowledgeLockout=true (in the portal, tick \"I understand this may lock administrators out\").";

fn admin_portal() -> Target {
    Target::Application(ADMIN_PORTAL_APP_ID.to_string())
}

fn space(policies: &PolicySet) -> ConditionSpace {
    ConditionSpace::new(policies, &[admin_portal()])
}

fn person_name(finding: &Finding) -> &str {
    &finding.witness.user
}

/// Whether `person` reaches the Admin Portal under `scenario`, and if not, the proof.
fn standing(space: &ConditionSpace, scenario: &Scenario<'_>, person: &Protected) -> Standing {
    let admitted = scenario.passkeys.admits(&person.groups).is_ok();
    let (facts, has_passkey) = person.facts(scenario.passkeys);
    let methods = facts.methods.clone();
    if !has_passkey && !person.other_first_factor {
        // Nothing to begin a sign-in with: no policy is involved, so the witness is any
        // browser sign-in to the Admin Portal and What-If's own decision for it.
        let witness = Witness {
            user: person.user.user_principal_name.clone(),
            groups: facts.group_ids.clone(),
            roles: facts.role_template_ids.clone(),
            guest: facts.guest,
            target: admin_portal(),
            platform: None,
            client_app: ClientAppType::Browser,
            ip: None,
            methods,
            sign_in_risk: RiskLevel::None,
            user_risk: RiskLevel::None,
        };
        let decision =
            portcullis_policy::evaluate(&witness.to_context(scenario.policies), scenario.policies);
        return Standing::LockedOut(Box::new(Finding {
            kind: FindingKind::Lockout,
            severity: Severity::High,
            message: format!(
                "{} would have no way to sign in: no passkey the passkey policy admits, no password and no usable Temporary Access Pass.",
                person.user.user_principal_name
            ),
            policies: Vec::new(),
            witness,
            decision: decision.outcome,
        }));
    }
    let locked = match space.can_reach(scenario.policies, &facts, &admin_portal()) {
        Reach::Reachable(_) => return Standing::Reaches,
        Reach::LockedOut { witness, decision } => (witness, decision),
    };
    // Asked for a passkey they do not have, a person who can sign in registers one on the
    // way (the sign-in flow offers it): they are not locked out if a model they may register
    // would get them through. The same candidates as the flow's.
    if admitted {
        for aaguid in registrable_models(scenario.passkeys, scenario.can_attest) {
            let mut with_new = facts.clone();
            with_new.methods.push(SatisfiedMethod::passkey(aaguid));
            if matches!(
                space.can_reach(scenario.policies, &with_new, &admin_portal()),
                Reach::Reachable(_)
            ) {
                return Standing::Reaches;
            }
        }
    }
    let (mut witness, decision) = locked;
    // The analyzer names people by id; the proof is read by administrators.
    witness.user = person.user.user_principal_name.clone();
    let policies = involved(scenario.policies, &decision.outcome);
    let names: Vec<&str> = policies.iter().map(|p| p.display_name.as_str()).collect();
    let message = match &decision.outcome {
        Outcome::Block { .. } => format!(
            "{} would be blocked from the Admin Portal on every platform, location and client app, by {}.",
            person.user.user_principal_name,
            names.join(", ")
        ),
        _ => format!(
            "{} would be asked for a method they neither have nor may register, on every platform, location and client app, by {}.",
            person.user.user_principal_name,
            names.join(", ")
        ),
    };
    Standing::LockedOut(Box::new(Finding {
        kind: FindingKind::Lockout,
        severity: Severity::High,
        message,
        policies,
        witness,
        decision: decision.outcome,
    }))
}

/// The passkey models a person may register during a sign-in under `policy`: the allow-list,
/// or, when any model may be registered, one no strength names standing for all of them.
fn registrable_models(policy: &Fido2Policy, can_attest: bool) -> Vec<String> {
    use crate::methods::passkeys::policy::{EnforcementType, MethodState};
    if !policy.is_self_service_registration_allowed
        || policy.state != MethodState::Enabled
        || (policy.is_attestation_enforced && !can_attest)
    {
        return Vec::new();
    }
    let restrictions = &policy.key_restrictions;
    if restrictions.is_enforced && restrictions.enforcement_type == EnforcementType::Allow {
        restrictions.aa_guids.clone()
    } else {
        vec![Uuid::nil().to_string()]
    }
}

/// The policies behind a block or a requirement, with their names.
fn involved(set: &PolicySet, outcome: &Outcome) -> Vec<PolicyRef> {
    let ids: Vec<&String> = match outcome {
        Outcome::Grant => Vec::new(),
        Outcome::Block { policies } => policies.iter().map(|p| &p.policy_id).collect(),
        Outcome::Requirements { requirements } => requirements
            .iter()
            .flat_map(|r| r.policy_ids.iter())
            .collect(),
    };
    let mut out: Vec<PolicyRef> = Vec::new();
    for id in ids {
        if out.iter().any(|p| &p.id == id) {
            continue;
        }
        let display_name = set
            .policies()
            .iter()
            .find(|p| &p.id == id)
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        out.push(PolicyRef {
            id: id.clone(),
            display_name,
        });
    }
    out
}

#[async_trait::async_trait]
impl PolicyChangeCheck for LockoutGuard {
    async fn check_policy_change(
        &self,
        actor: &Actor,
        request: &RequestContext,
        before: &PolicySet,
        after: &PolicySet,
    ) -> Result<()> {
        if request.acknowledge_lockout {
            return Ok(());
        }
        let passkeys = self.passkey_policy().await?;
        let methods = self.method_rules().await?;
        self.judge(
            actor,
            Scenario {
                policies: before,
                passkeys: &passkeys,
                methods: &methods,
                can_attest: self.can_attest,
            },
            Scenario {
                policies: after,
                passkeys: &passkeys,
                methods: &methods,
                can_attest: self.can_attest,
            },
        )
        .await
    }
}

#[async_trait::async_trait]
impl PasskeyPolicyCheck for LockoutGuard {
    async fn check_passkey_policy_change(
        &self,
        actor: &Actor,
        request: &RequestContext,
        before: &Fido2Policy,
        after: &Fido2Policy,
    ) -> Result<()> {
        if request.acknowledge_lockout {
            return Ok(());
        }
        let policies: Arc<PolicySet> = Arc::new(
            crate::conditional_access::ConditionalAccess::new(crate::narrow!(
                self.deps,
                DirectoryStore
            ))
            .configuration()
            .await?
            .policy_set(),
        );
        let methods = self.method_rules().await?;
        self.judge(
            actor,
            Scenario {
                policies: &policies,
                passkeys: before,
                methods: &methods,
                can_attest: self.can_attest,
            },
            Scenario {
                policies: &policies,
                passkeys: after,
                methods: &methods,
                can_attest: self.can_attest,
            },
        )
        .await
    }
}

#[async_trait::async_trait]
impl MethodPolicyCheck for LockoutGuard {
    async fn check_method_policy_change(
        &self,
        actor: &Actor,
        request: &RequestContext,
        configuration_id: &str,
        after: &serde_json::Value,
    ) -> Result<()> {
        if request.acknowledge_lockout {
            return Ok(());
        }
        let before = self.method_rules().await?;
        let changed = if configuration_id == crate::methods::password::CONFIGURATION_ID {
            let passwords: PasswordConfiguration = serde_json::from_value(after.clone())
                .map_err(|e| Error::Internal(format!("password configuration: {e}")))?;
            MethodRules {
                passwords_on: passwords.state.eq_ignore_ascii_case("enabled"),
                passes: before.passes.clone(),
            }
        } else if configuration_id == crate::methods::tap::CONFIGURATION_ID {
            MethodRules {
                passwords_on: before.passwords_on,
                passes: serde_json::from_value(after.clone()).map_err(|e| {
                    Error::Internal(format!("Temporary Access Pass configuration: {e}"))
                })?,
            }
        } else {
            // No other method's policy decides whether someone can begin a sign-in.
            return Ok(());
        };
        let passkeys = self.passkey_policy().await?;
        let policies = crate::conditional_access::ConditionalAccess::new(crate::narrow!(
            self.deps,
            DirectoryStore
        ))
        .configuration()
        .await?
        .policy_set();
        self.judge(
            actor,
            Scenario {
                policies: &policies,
                passkeys: &passkeys,
                methods: &before,
                can_attest: self.can_attest,
            },
            Scenario {
                policies: &policies,
                passkeys: &passkeys,
                methods: &changed,
                can_attest: self.can_attest,
            },
        )
        .await
    }
}
