//! The sign-in state machine: one [`SignInFlow`] per person signing in to one application,
//! taken step by step — identify, first factor, Conditional Access, then whatever Conditional
//! Access asks for (another method in the same session, or registering a passkey and proving it
//! with one assertion) — until it is granted or blocked.
//!
//! The flow lives in the database ([`SignInStore::sign_in_flow`](crate::signin::store::SignInStore::sign_in_flow)),
//! so any node can serve any step; every move names the step it expects, so a step submitted out
//! of order, twice, or by two racing nodes moves the flow at most once. After the first factor a
//! flow belongs to one session: a step must come with that session.
//!
//! This module owns the *order* of the steps and the Conditional Access decision for the flow:
//! the facts (`SignInContext`), the outcome (granted, requirements, registration needed,
//! blocked) and the sign-in log entry of every outcome. The credential checks themselves belong
//! to the method services ([`TemporaryAccessPasses`], [`Passwords`], [`SoftwareOath`],
//! [`Passkeys`]), which it calls and never duplicates. It must never special-case a method
//! against a strength (the engine's strengths decide what a TAP satisfies), never issue codes or
//! tokens (the OIDC layer does, on top of a granted flow), and never see an HTTP type.

use std::net::IpAddr;

use portcullis_policy::{
    Decision, Outcome, SatisfiedMethod, SignInContext, Target, UserAction, UserKind, evaluate,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::conditional_access::{ConditionalAccess, DecisionInputs};
use crate::directory::audit::RequestContext;
use crate::directory::model::{User, UserType};
use crate::directory::store::DirectoryStore;
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::kernel::error::ErrorCode;
use crate::kernel::split_token::{self, LegacyLookup, PresentedToken};
use crate::logs::replay_context::ReplayContext;
use crate::logs::sign_in::SignInLogEntry;
use crate::logs::sign_in::{self, FlowRecord, RequestFacts};
use crate::logs::store::LogChange;
use crate::methods::passkeys::policy::EnforcementType;
use crate::methods::passkeys::{CeremonyOptions, Passkeys, RegistrationDevice};
use crate::methods::password::Passwords;
use crate::methods::tap::TemporaryAccessPasses;
use crate::methods::totp::SoftwareOath;
use crate::session::{AuthSession, MethodKind, SessionMethod};
use crate::signin::authorization::AuthorizationRequest;
use crate::signin::authorization::AuthorizationResponse;
use crate::signin::step::{
    BLOCKED_BY_CONDITIONAL_ACCESS, FlowStep, NamedPolicy, PersonMethods, Step, next_step,
};
use crate::signin::store::{SignInChange as Change, SignInStore};
use crate::{Error, Result};

/// "Every time" sign-in frequency accepts a sign-in this recent (Entra allows five minutes of
/// clock skew and sign-in time).
pub const EVERY_TIME_TOLERANCE: Duration = Duration::minutes(5);

/// How long a sign-in may take from start to finish.
pub const FLOW_LIFETIME: Duration = Duration::minutes(10);

/// Characters in the secret part of a flow's token (about 190 bits): the flow's id is no
/// secret, and before the first factor the token alone lets its bearer take the flow's steps.
const FLOW_SECRET_LENGTH: usize = 32;

/// One sign-in in progress, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInFlow {
    /// The time-ordered id the flow's row is kept under (the id part of its token).
    pub id: Uuid,
    /// SHA-256 (hex) of the secret part of the flow's token, kept in its own column and never
    /// in the flow's JSON; `None` for a flow started before split tokens, whose token was its
    /// bare id.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// The token the browser holds for this flow (`ID.SECRET`, see
    /// [`crate::kernel::split_token`]), as it was issued or presented in this request: what
    /// the flow's state reports as `flowId`. Never stored.
    #[serde(skip)]
    pub token: String,
    /// Where the flow is, with what that step needs.
    pub step: FlowStep,
    /// The application's client id (`appId`).
    pub client_id: Uuid,
    pub app_display_name: String,
    /// The facts of the request that started the flow; later steps are decided on these, so a
    /// flow cannot change platform halfway.
    pub correlation_id: Uuid,
    pub ip_address: Option<String>,
    /// The country of `ip_address` when the flow started (see
    /// [`crate::conditional_access::countries`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    pub user_agent: String,
    /// What the person typed at the identify step.
    pub username: Option<String>,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// The application's authorization request, when the flow came from `/authorize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationRequest>,
    /// The flow began with an existing session (single sign-on) rather than a first factor,
    /// so the session's age is checked against sign-in frequency.
    #[serde(default)]
    pub reuses_session: bool,
    /// Conditional Access's persistent-browser control for this sign-in: `Some(false)` for
    /// "never persistent", `Some(true)` for "always".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<bool>,
    /// The application's object id when it admits only people assigned to it
    /// (`appRoleAssignmentRequired`), as it stood when the flow started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_assignment: Option<Uuid>,
    #[serde(with = "graph_datetime")]
    pub created: OffsetDateTime,
    #[serde(with = "graph_datetime")]
    pub expires: OffsetDateTime,
}

/// Where a sign-in comes from, as the request (or the flow that began with it) tells: what the
/// engine's platform, client app, address and location conditions are decided on.
struct Origin<'a> {
    user_agent: &'a str,
    ip_address: Option<&'a str>,
    country: Option<&'a str>,
}

/// What the person (or the page) sees of a flow after a step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowState {
    /// The flow's token: the browser presents it at every step.
    pub flow_id: String,
    /// The step the flow is at (`identify`, `requirements`, `blocked`, …).
    pub status: Step,
    pub app_id: Uuid,
    pub app_display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// Entra's code for an interrupt or a block (50074, 50079, 53003).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Methods that would meet what is asked, in Graph's mode names (`fido2`, `softwareOath`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<MethodKind>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_strengths: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<NamedPolicy>,
    /// For a block: what the person hands to support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The cookie token of a session started by this step; the web layer sets it and never
    /// shows it.
    #[serde(skip)]
    pub new_session_token: Option<String>,
    /// Whether the session cookie may outlive the browser (Conditional Access's persistent
    /// browser control); `None` leaves the default.
    #[serde(skip)]
    pub persistent_session: Option<bool>,
    /// For a flow from `/authorize` that this step completed: the code (or error) to send
    /// back to the application; the web layer turns it into `redirect_url` or `form_post`.
    #[serde(skip)]
    pub completion: Option<AuthorizationResponse>,
    /// Where the browser goes next: the application's redirect URI with the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// For `response_mode=form_post`: `{action, fields}` for the page to post instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form_post: Option<Value>,
}

/// The methods a session has satisfied, as the engine's strengths read them. The mapping is
/// here once; whether a mode meets a strength is the engine's business.
pub fn satisfied_methods(session: &AuthSession) -> Vec<SatisfiedMethod> {
    session
        .methods
        .iter()
        .map(SessionMethod::strength_mode)
        .collect()
}

/// Whether `text` has the shape of a flow's token (`ID.SECRET`, or the bare id of a flow from
/// before split tokens), for a page that tells a malformed link from a sign-in that is gone.
/// Says nothing of whether such a flow exists.
pub fn could_name_a_flow(text: &str) -> bool {
    PresentedToken::parse(text, LegacyLookup::PlainId)
        .row_id()
        .is_some()
}

/// The sign-in service. Cheap to clone.
#[derive(Clone)]
pub struct SignIns {
    deps: Deps<dyn SignInStore>,
    conditional_access: ConditionalAccess,
    passes: TemporaryAccessPasses,
    passwords: Passwords,
    software_oath: SoftwareOath,
    passkeys: Passkeys,
}

fn out_of_order(expected: &[Step], actual: Step) -> Error {
    let names: Vec<&str> = expected.iter().map(Step::as_str).collect();
    Error::Conflict {
        code: ErrorCode::SignInStepOutOfOrder,
        message: format!(
            "This sign-in is at step '{}'; this request belongs to step {}.",
            actual.as_str(),
            names.join(" or ")
        ),
    }
}

fn wrong_session() -> Error {
    Error::Conflict {
        code: ErrorCode::SignInFlowSessionMismatch,
        message: "This sign-in belongs to another session; start again.".into(),
    }
}

impl SignIns {
    pub fn new(
        deps: Deps<dyn SignInStore>,
        conditional_access: ConditionalAccess,
        passes: TemporaryAccessPasses,
        passwords: Passwords,
        software_oath: SoftwareOath,
        passkeys: Passkeys,
    ) -> Self {
        SignIns {
            deps,
            conditional_access,
            passes,
            passwords,
            software_oath,
            passkeys,
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.deps.clock.now()
    }

    /// Starts a sign-in to the application with this client id.
    pub async fn start(&self, client_id: &str, facts: &RequestFacts) -> Result<FlowState> {
        self.start_for(client_id, facts, None).await
    }

    /// Starts a sign-in, keeping the application's authorization request (if it came from
    /// `/authorize`) for the code issued at the end.
    pub async fn start_for(
        &self,
        client_id: &str,
        facts: &RequestFacts,
        authorization: Option<AuthorizationRequest>,
    ) -> Result<FlowState> {
        let unknown = || Error::Invalid {
            code: ErrorCode::UnknownClient,
            target: Some("clientId".into()),
            message: format!("No application has the client id '{client_id}'."),
        };
        let app_id = Uuid::parse_str(client_id.trim()).map_err(|_| unknown())?;
        let app = self
            .deps
            .store
            .application_by_app_id(app_id)
            .await?
            .ok_or_else(unknown)?;
        self.start_for_application(&app, facts, authorization).await
    }

    /// Starts a sign-in to an application the caller has just read (`/authorize` validated
    /// the request against it), so that one request reads it once.
    pub async fn start_for_application(
        &self,
        app: &crate::directory::model::Application,
        facts: &RequestFacts,
        authorization: Option<AuthorizationRequest>,
    ) -> Result<FlowState> {
        let now = self.now();
        let token = split_token::issue(self.deps.entropy.as_ref(), now, FLOW_SECRET_LENGTH);
        let flow = SignInFlow {
            id: token.id,
            secret_hash: Some(token.secret_hash),
            token: token.text,
            step: FlowStep::Identify,
            client_id: app.app_id,
            app_display_name: app.display_name.clone(),
            correlation_id: facts.correlation_id,
            ip_address: facts.ip_address.clone(),
            country: facts.country.clone(),
            user_agent: facts.user_agent.chars().take(512).collect(),
            username: None,
            user_id: None,
            session_id: None,
            authorization,
            reuses_session: false,
            persistent_browser: None,
            requires_assignment: app.access.app_role_assignment_required.then_some(app.id),
            created: now,
            expires: now + FLOW_LIFETIME,
        };
        self.deps
            .store
            .commit(vec![Change::InsertSignInFlow(Box::new(flow.clone()))], None)
            .await?;
        Ok(self.state(&flow, None))
    }

    /// Single sign-on: a sign-in to `app` with a session the browser already has. Conditional
    /// Access decides again for this application: a strength met earlier counts, a block still
    /// blocks, and a session older than a sign-in frequency control sends the person back to
    /// the first factor.
    pub async fn start_with_session(
        &self,
        app: &crate::directory::model::Application,
        facts: &RequestFacts,
        authorization: AuthorizationRequest,
        session: &AuthSession,
    ) -> Result<FlowState> {
        let user = self
            .deps
            .store
            .user(session.user_id)
            .await?
            .filter(|u| u.account_enabled)
            .ok_or_else(|| {
                Error::Unauthenticated("This session's account is not available.".into())
            })?;
        let now = self.now();
        let token = split_token::issue(self.deps.entropy.as_ref(), now, FLOW_SECRET_LENGTH);
        let flow = SignInFlow {
            id: token.id,
            secret_hash: Some(token.secret_hash),
            token: token.text,
            step: FlowStep::Identify,
            client_id: app.app_id,
            app_display_name: app.display_name.clone(),
            correlation_id: facts.correlation_id,
            ip_address: facts.ip_address.clone(),
            country: facts.country.clone(),
            user_agent: facts.user_agent.chars().take(512).collect(),
            username: Some(user.user_principal_name.clone()),
            user_id: Some(user.id),
            session_id: Some(session.id),
            authorization: Some(authorization),
            reuses_session: true,
            persistent_browser: None,
            requires_assignment: app.access.app_role_assignment_required.then_some(app.id),
            created: now,
            expires: now + FLOW_LIFETIME,
        };
        // The new flow is stored by the decision's own commit, with its outcome and log
        // entry: one write transaction for the request, and nothing stored if it fails.
        self.decide(flow, None, &user, session, None, Vec::new())
            .await
    }

    /// The live flow this token names, at one of `steps`, and (once it has one) with this
    /// session. A token whose secret part is wrong is a flow that does not exist.
    async fn flow(
        &self,
        token: &str,
        steps: &[Step],
        session: Option<&AuthSession>,
    ) -> Result<SignInFlow> {
        let presented = PresentedToken::parse(token, LegacyLookup::PlainId);
        let found = match presented.row_id() {
            Some(id) => self.deps.store.sign_in_flow(id).await?,
            None => None,
        };
        let mut flow = found
            .filter(|f| presented.matches(f.secret_hash.as_deref()))
            .filter(|f| f.expires > self.now())
            .ok_or_else(|| Error::Invalid {
                code: ErrorCode::SignInFlowNotFound,
                target: Some("flowId".into()),
                message:
                    "This sign-in is unknown or has expired (they last 10 minutes); start again."
                        .into(),
            })?;
        if !steps.contains(&flow.step.kind()) {
            return Err(out_of_order(steps, flow.step.kind()));
        }
        if let Some(bound) = flow.session_id
            && session.map(|s| s.id) != Some(bound)
        {
            return Err(wrong_session());
        }
        flow.token = token.to_string();
        Ok(flow)
    }

    /// Stores `flow`, which was read at step `from`; refused if another request moved it first.
    async fn save(&self, flow: &SignInFlow, from: Step) -> Result<()> {
        self.deps
            .store
            .commit(
                vec![Change::AdvanceSignInFlow {
                    flow: Box::new(flow.clone()),
                    from,
                }],
                None,
            )
            .await
    }

    /// The current state, for a page that reloads.
    pub async fn current(&self, id: &str, session: Option<&AuthSession>) -> Result<FlowState> {
        let all = [
            Step::Identify,
            Step::FirstFactor,
            Step::Requirements,
            Step::RegistrationNeeded,
            Step::ProveRegistration,
            Step::Granted,
            Step::Blocked,
            Step::Completed,
        ];
        let flow = self.flow(id, &all, session).await?;
        Ok(self.state(&flow, None))
    }

    /// The identify step: remembers what was typed. Whether such an account exists is not said
    /// here; the first factor answers the same either way.
    pub async fn identify(&self, id: &str, username: &str) -> Result<FlowState> {
        let mut flow = self.flow(id, &[Step::Identify], None).await?;
        let username = username.trim();
        if username.is_empty() || username.len() > 256 {
            return Err(Error::invalid(
                "username",
                "username must be between 1 and 256 characters.",
            ));
        }
        flow.username = Some(username.to_string());
        flow.step = FlowStep::FirstFactor;
        self.save(&flow, Step::Identify).await?;
        Ok(self.state(&flow, None))
    }

    /// The request's facts for a method service checking a step of this flow: a failure is
    /// logged under the flow's application, a success left for the flow's own entry.
    fn step_facts(facts: &RequestFacts, flow: &SignInFlow) -> RequestFacts {
        RequestFacts {
            application: Some(sign_in::FlowApplication {
                app_id: flow.client_id.to_string(),
                display_name: flow.app_display_name.clone(),
            }),
            ..facts.clone()
        }
    }

    fn typed_username(flow: &SignInFlow) -> Result<&str> {
        flow.username
            .as_deref()
            .ok_or_else(|| out_of_order(&[Step::Identify], Step::FirstFactor))
    }

    /// First factor: a Temporary Access Pass, checked by the pass service.
    pub async fn with_pass(&self, id: &str, pass: &str, facts: &RequestFacts) -> Result<FlowState> {
        self.with_secret(id, facts, |username, step_facts| async move {
            self.passes.sign_in(&username, pass, &step_facts).await
        })
        .await
    }

    /// First factor: a password, checked by the password service.
    pub async fn with_password(
        &self,
        id: &str,
        password: &str,
        facts: &RequestFacts,
    ) -> Result<FlowState> {
        self.with_secret(id, facts, |username, step_facts| async move {
            self.passwords
                .sign_in(&username, password, &step_facts)
                .await
        })
        .await
    }

    /// A typed first factor (pass or password): the service `check` names checks it for the
    /// typed username, and a success moves the flow on to Conditional Access.
    async fn with_secret<F, Fut>(
        &self,
        id: &str,
        facts: &RequestFacts,
        check: F,
    ) -> Result<FlowState>
    where
        F: FnOnce(String, RequestFacts) -> Fut,
        Fut: std::future::Future<Output = Result<(User, AuthSession, String)>>,
    {
        let flow = self.flow(id, &[Step::FirstFactor], None).await?;
        let username = Self::typed_username(&flow)?.to_string();
        let (user, session, token) = check(username, Self::step_facts(facts, &flow)).await?;
        self.after_first_factor(flow, &user, &session, token, Vec::new())
            .await
    }

    /// Passkey options for the step the flow is at: the first factor (the typed username's
    /// passkeys, or any discoverable one), or an assertion Conditional Access asked for.
    pub async fn passkey_options(
        &self,
        id: &str,
        session: Option<&AuthSession>,
    ) -> Result<CeremonyOptions> {
        let flow = self
            .flow(
                id,
                &[
                    Step::Identify,
                    Step::FirstFactor,
                    Step::Requirements,
                    Step::ProveRegistration,
                ],
                session,
            )
            .await?;
        let username = match flow.user_id {
            Some(user_id) => self
                .deps
                .store
                .user(user_id)
                .await?
                .map(|u| u.user_principal_name),
            None => flow.username.clone(),
        };
        self.passkeys
            .start_sign_in(username.as_deref(), false)
            .await
    }

    /// A passkey assertion, checked by the passkey service: the first factor, the method
    /// Conditional Access asked for, or the proof of a passkey just registered.
    pub async fn with_passkey(
        &self,
        id: &str,
        session: Option<&AuthSession>,
        facts: &RequestFacts,
        ceremony_id: Uuid,
        credential: &Value,
    ) -> Result<FlowState> {
        let flow = self
            .flow(
                id,
                &[
                    Step::Identify,
                    Step::FirstFactor,
                    Step::Requirements,
                    Step::ProveRegistration,
                ],
                session,
            )
            .await?;
        let current = if flow.session_id.is_some() {
            session
        } else {
            None
        };
        let step_facts = Self::step_facts(facts, &flow);
        // The passkey's changes (challenge used, counter, session) are committed with the
        // step's outcome, its log entry and any code, in one transaction.
        let staged = self
            .passkeys
            .stage_sign_in(&step_facts, ceremony_id, credential, current)
            .await?;
        let signed_in = &staged.signed_in;
        let refusal = if let Some(user_id) = flow.user_id
            && signed_in.user.id != user_id
        {
            Some(Error::Invalid {
                code: ErrorCode::SignInWrongAccount,
                target: Some("credential".into()),
                message: "This passkey belongs to another account than the one signing in.".into(),
            })
        } else if let FlowStep::ProveRegistration {
            pending_passkey, ..
        } = &flow.step
            && *pending_passkey != signed_in.passkey.id
        {
            Some(Error::Invalid {
                code: ErrorCode::SignInProveNewPasskey,
                target: Some("credential".into()),
                message: "Use the passkey you just created to finish signing in.".into(),
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.passkeys.discard(&staged).await;
            return Err(refusal);
        }
        let outcome = match &signed_in.new_token {
            Some(token) => {
                self.after_first_factor(
                    flow,
                    &signed_in.user,
                    &signed_in.session,
                    token.clone(),
                    staged.changes.iter().cloned().map(Change::from).collect(),
                )
                .await
            }
            None => {
                let from = flow.step.kind();
                self.decide(
                    flow,
                    Some(from),
                    &signed_in.user,
                    &signed_in.session,
                    None,
                    staged.changes.iter().cloned().map(Change::from).collect(),
                )
                .await
            }
        };
        match outcome {
            Ok(state) => Ok(state),
            Err(e) => Err(self.passkeys.settle_failure(&step_facts, &staged, e).await),
        }
    }

    /// A code from an authenticator app, when Conditional Access asked for more.
    pub async fn with_totp(
        &self,
        id: &str,
        session: &AuthSession,
        code: &str,
    ) -> Result<FlowState> {
        let flow = self.flow(id, &[Step::Requirements], Some(session)).await?;
        let used = self.software_oath.verify(session, code).await?;
        let mut session = session.clone();
        session.methods.push(used);
        let user = self.user(&flow).await?;
        self.decide(
            flow,
            Some(Step::Requirements),
            &user,
            &session,
            None,
            Vec::new(),
        )
        .await
    }

    /// "More information required": options to create a passkey on this or another device.
    /// The register-security-info policies are evaluated first; a block there blocks the flow.
    pub async fn registration_options(
        &self,
        id: &str,
        session: &AuthSession,
        device: RegistrationDevice,
    ) -> Result<std::result::Result<CeremonyOptions, FlowState>> {
        let mut flow = self
            .flow(id, &[Step::RegistrationNeeded], Some(session))
            .await?;
        let user = self.user(&flow).await?;
        let inputs = self.conditional_access.decision_inputs(user.id).await?;
        let ctx = self.context(
            &inputs,
            &flow,
            &user,
            session,
            Target::UserAction(UserAction::RegisterSecurityInformation),
        );
        let decision = evaluate(&ctx, &inputs.policies);
        match &decision.outcome {
            Outcome::Block { policies } => {
                flow.step = FlowStep::blocked_by(policies);
                let replay = ReplayContext::record(&ctx, &[], &decision);
                self.save_logged(
                    &flow,
                    Some(Step::RegistrationNeeded),
                    &user,
                    (session, &decision, replay),
                    BLOCKED_BY_CONDITIONAL_ACCESS,
                    Vec::new(),
                )
                .await?;
                return Ok(Err(self.state(&flow, None)));
            }
            Outcome::Requirements { requirements } => {
                // The interrupt exists to meet the policies that sent the person here; asking
                // for those same strengths before registering would be circular. Any other
                // policy on registering security information still has to be met.
                let interrupting: Vec<&str> = flow
                    .step
                    .named_policies()
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect();
                let other = requirements
                    .iter()
                    .flat_map(|r| r.policy_ids.iter())
                    .any(|id| !interrupting.contains(&id.as_str()));
                if other {
                    return Err(Error::Conflict {
                        code: ErrorCode::RegistrationRequirementsNotMet,
                        message: "Your organization's policies for registering security information ask for more than this sign-in has proved.".into(),
                    });
                }
            }
            Outcome::Grant => {}
        }
        self.passkeys
            .start_registration(session, device)
            .await
            .map(Ok)
    }

    /// Whether this session, as it stands, may use the application: Conditional Access for it
    /// grants on the session's methods and this request's facts. The first-party pages (security
    /// info, the admin portal) ask on every visit, so a session whose first factor was followed
    /// by a block or an unmet requirement — in this flow or any other — never opens them, and a
    /// policy an administrator just changed applies at once. Nothing is logged: this is a check
    /// of an existing sign-in, not a sign-in.
    pub async fn session_may_use(
        &self,
        session: &AuthSession,
        facts: &RequestFacts,
        client_id: Uuid,
    ) -> Result<bool> {
        let decision = self
            .session_decision(session, facts, Target::Application(client_id.to_string()))
            .await?;
        Ok(decision.is_some_and(|d| matches!(d.outcome, Outcome::Grant)))
    }

    /// Conditional Access for `target` (an application, a user action) on this session as it
    /// stands and this request's facts; `None` when the account is gone or disabled. Nothing
    /// is logged.
    pub async fn session_decision(
        &self,
        session: &AuthSession,
        facts: &RequestFacts,
        target: Target,
    ) -> Result<Option<Decision>> {
        let Some(user) = self.deps.store.user(session.user_id).await? else {
            return Ok(None);
        };
        if !user.account_enabled {
            return Ok(None);
        }
        let inputs = self.conditional_access.decision_inputs(user.id).await?;
        let ctx = self.context_for(
            &inputs,
            Origin {
                user_agent: &facts.user_agent,
                ip_address: facts.ip_address.as_deref(),
                country: facts.country.as_deref(),
            },
            &user,
            session,
            target,
        );
        Ok(Some(evaluate(&ctx, &inputs.policies)))
    }

    /// Finishes registering the passkey; the flow then waits for one assertion with it.
    pub async fn finish_registration(
        &self,
        id: &str,
        session: &AuthSession,
        facts: &RequestFacts,
        ceremony_id: Uuid,
        name: &str,
        credential: &Value,
    ) -> Result<FlowState> {
        let mut flow = self
            .flow(id, &[Step::RegistrationNeeded], Some(session))
            .await?;
        let request = RequestContext {
            correlation_id: facts.correlation_id,
            ip_address: facts.ip_address.clone(),
            acknowledge_lockout: false,
        };
        let method = self
            .passkeys
            .finish_registration(session, &request, ceremony_id, name, credential)
            .await?;
        let (required_strengths, interrupting_policies) = match flow.step {
            FlowStep::RegistrationNeeded {
                required_strengths,
                interrupting_policies,
            } => (required_strengths, interrupting_policies),
            _ => (Vec::new(), Vec::new()),
        };
        flow.step = FlowStep::ProveRegistration {
            pending_passkey: method.id,
            required_strengths,
            interrupting_policies,
        };
        self.save(&flow, Step::RegistrationNeeded).await?;
        Ok(self.state(&flow, None))
    }

    async fn user(&self, flow: &SignInFlow) -> Result<User> {
        let id = flow
            .user_id
            .ok_or_else(|| out_of_order(&[Step::FirstFactor], flow.step.kind()))?;
        self.deps
            .store
            .user(id)
            .await?
            .ok_or_else(|| Error::not_found("user", id.to_string()))
    }

    /// `pending`: what the first factor changed, committed with the outcome.
    async fn after_first_factor(
        &self,
        mut flow: SignInFlow,
        user: &User,
        session: &AuthSession,
        token: String,
        pending: Vec<Change>,
    ) -> Result<FlowState> {
        let from = flow.step.kind();
        flow.user_id = Some(user.id);
        flow.session_id = Some(session.id);
        self.decide(flow, Some(from), user, session, Some(token), pending)
            .await
    }

    /// The engine's view of this sign-in.
    fn context(
        &self,
        inputs: &DecisionInputs,
        flow: &SignInFlow,
        user: &User,
        session: &AuthSession,
        target: Target,
    ) -> SignInContext {
        self.context_for(
            inputs,
            Origin {
                user_agent: &flow.user_agent,
                ip_address: flow.ip_address.as_deref(),
                country: flow.country.as_deref(),
            },
            user,
            session,
            target,
        )
    }

    /// The engine's view of a sign-in from these request facts, with the policies and the
    /// person's memberships read for this decision.
    fn context_for(
        &self,
        inputs: &DecisionInputs,
        origin: Origin<'_>,
        user: &User,
        session: &AuthSession,
        target: Target,
    ) -> SignInContext {
        let Origin {
            user_agent,
            ip_address,
            country,
        } = origin;
        let ua = portcullis_useragent::parse(user_agent);
        let mut ctx = SignInContext::new(user.id.to_string(), target);
        let memberships = &inputs.memberships;
        ctx.group_ids = memberships.group_ids.clone();
        ctx.role_template_ids = memberships.role_template_ids.clone();
        ctx.user_kind = match user.user_type {
            UserType::Guest => UserKind::Guest,
            _ => UserKind::Member,
        };
        ctx.platform = ua.platform;
        ctx.client_app_type = ua.client_app_type;
        ctx.ip_address = ip_address.and_then(|ip| ip.parse::<IpAddr>().ok());
        // The country was looked up when the request's facts were taken (see
        // `conditional_access::countries`); without it the sign-in is of unknown country.
        ctx.country = country.map(str::to_owned);
        if let Some(ip) = ctx.ip_address {
            ctx.named_locations = inputs.policies.locations_for(ip, country);
        }
        ctx.methods = satisfied_methods(session);
        ctx
    }

    /// Conditional Access for the application, and the flow's next step from its outcome.
    ///
    /// The policy set comes compiled from [`ConditionalAccess::decision_inputs`], which recompiles
    /// whenever the stored documents' revision moves: reading and compiling 50 policies per
    /// decision was the largest cost of a passkey sign-in after the signature check
    /// (BENCHMARKS.md), and the revision is the cross-node invalidation that keeps a decision
    /// from ever using a policy an administrator already changed.
    ///
    /// `pending` holds what the step itself changed and has not stored yet (a passkey
    /// sign-in's challenge, counter and session): it is committed in the same transaction as
    /// the outcome, so a step is stored whole or not at all. `from` is the step the flow was
    /// read at; `None` for a flow this request made, which that same commit inserts.
    async fn decide(
        &self,
        mut flow: SignInFlow,
        from: Option<Step>,
        user: &User,
        session: &AuthSession,
        token: Option<String>,
        pending: Vec<Change>,
    ) -> Result<FlowState> {
        let inputs = self.conditional_access.decision_inputs(user.id).await?;
        let set = &inputs.policies;
        let ctx = self.context(
            &inputs,
            &flow,
            user,
            session,
            Target::Application(flow.client_id.to_string()),
        );
        let mut decision = evaluate(&ctx, set);
        // An application asking for authentication contexts (step-up) must also pass the
        // policies that target them: the same facts, another target.
        let contexts = flow
            .authorization
            .as_ref()
            .map(|a| a.auth_contexts.clone())
            .unwrap_or_default();
        for context in &contexts {
            let mut step_up = ctx.clone();
            step_up.target = Target::AuthenticationContext(context.clone());
            decision = decision.combine(evaluate(&step_up, set));
        }
        let replay = ReplayContext::record(&ctx, &contexts, &decision);
        flow.persistent_browser = match decision.session.persistent_browser {
            Some(portcullis_policy::PersistentBrowserMode::Never) => Some(false),
            Some(portcullis_policy::PersistentBrowserMode::Always) => Some(true),
            _ => None,
        };
        if flow.reuses_session
            && !matches!(decision.outcome, Outcome::Block { .. })
            && let Some(hours) = decision
                .session
                .sign_in_frequency
                .as_ref()
                .and_then(|f| f.window_hours())
        {
            // "Every time" still tolerates the few minutes a sign-in takes, as Entra does.
            let window = if hours == 0 {
                EVERY_TIME_TOLERANCE
            } else {
                Duration::hours(i64::try_from(hours).unwrap_or(i64::MAX / 3_600_000))
            };
            if self.now() - crate::signin::authorization::auth_time(session) > window {
                return self.sign_in_again(flow, from, pending).await;
            }
        }
        // What the person has and could add, read before matching on the outcome (so no
        // lookup waits while its borrows are held), and only when something is asked of them:
        // a granted sign-in, the common case, reads none of it.
        let (passkeys, apps, registrable) =
            if matches!(decision.outcome, Outcome::Requirements { .. }) {
                (
                    self.passkeys.my_passkeys(session).await?,
                    self.deps.store.software_oath_methods(user.id).await?,
                    self.registrable_models().await?,
                )
            } else {
                (Vec::new(), Vec::new(), Vec::new())
            };
        // An application that admits only assigned people refuses everyone else, whatever
        // Conditional Access would ask of them.
        let not_assigned = match flow.requires_assignment {
            Some(application) => {
                let store: &dyn DirectoryStore = &*self.deps.store;
                !crate::directory::access::is_assigned(store, application, user.id).await?
            }
            None => false,
        };
        flow.username = Some(user.user_principal_name.clone());
        let person = PersonMethods {
            satisfied: satisfied_methods(session),
            passkeys: passkeys.into_iter().map(|p| p.aa_guid).collect(),
            authenticator_app: !apps.is_empty(),
            registrable_passkeys: registrable,
        };
        flow.step = if not_assigned {
            FlowStep::NotAssigned
        } else {
            next_step(&decision, &person)
        };
        let error_code = flow.step.error_code().unwrap_or(0);
        // A flow from `/authorize` is completed by the same commit that grants it.
        let issued = match flow.step {
            FlowStep::Granted => {
                crate::signin::authorization::issue_code(&self.deps, &flow, session)
            }
            _ => None,
        };
        let mut more = pending;
        let completion = match issued {
            Some((changes, response)) => {
                flow.step = FlowStep::Completed;
                more.extend(changes);
                Some(response)
            }
            None => None,
        };
        self.save_logged(
            &flow,
            from,
            user,
            (session, &decision, replay),
            error_code,
            more,
        )
        .await?;
        let mut state = self.state(&flow, token);
        state.completion = completion;
        Ok(state)
    }

    /// Sign-in frequency has lapsed for a session being reused: the flow goes back to the first
    /// factor for the same person, and no longer belongs to the old session.
    async fn sign_in_again(
        &self,
        mut flow: SignInFlow,
        from: Option<Step>,
        pending: Vec<Change>,
    ) -> Result<FlowState> {
        flow.step = FlowStep::FirstFactor;
        flow.session_id = None;
        flow.user_id = None;
        flow.reuses_session = false;
        let mut changes = pending;
        changes.push(stored(&flow, from));
        self.deps.store.commit(changes, None).await?;
        let mut state = self.state(&flow, None);
        state.message = Some(
            "Your organization asks you to sign in again to use this application.".to_string(),
        );
        Ok(state)
    }

    /// The passkey models (AAGUIDs) the person could register here: none when the passkey
    /// policy is off or does not allow self-service; the allow-list when it has one; otherwise a
    /// model no strength names, standing for "any".
    async fn registrable_models(&self) -> Result<Vec<String>> {
        let policy = self.passkeys.policy().await?;
        if !policy.is_self_service_registration_allowed
            || policy.state != crate::methods::passkeys::policy::MethodState::Enabled
            || (policy.is_attestation_enforced && !self.passkeys.can_attest())
        {
            return Ok(Vec::new());
        }
        let restrictions = &policy.key_restrictions;
        let candidates: Vec<String> = if restrictions.is_enforced
            && restrictions.enforcement_type == EnforcementType::Allow
        {
            restrictions.aa_guids.clone()
        } else {
            // Any model may be registered; one the strength does not name stands for it.
            vec![Uuid::nil().to_string()]
        };
        Ok(candidates)
    }

    /// Stores the flow's outcome, its sign-in log entry and `more` (an issued code) in one
    /// transaction: a flow never moves without its entry, and a sign-in's outcome costs one
    /// commit. Refused, with nothing written, if another request moved the flow first.
    ///
    /// `decided` is the session the decision was made for, the decision, and what it was
    /// made on, kept with the entry for replay.
    async fn save_logged(
        &self,
        flow: &SignInFlow,
        from: Option<Step>,
        user: &User,
        decided: (&AuthSession, &Decision, ReplayContext),
        error_code: u32,
        more: Vec<Change>,
    ) -> Result<()> {
        let (session, decision, replay) = decided;
        let mut entry = self.log_entry(flow, user, session, decision, error_code);
        entry.replay_context = Some(replay);
        let mut changes = Vec::with_capacity(2 + more.len());
        changes.push(stored(flow, from));
        changes.push(Change::from(LogChange::InsertSignInLogEntry(Box::new(
            entry,
        ))));
        changes.extend(more);
        self.deps.store.commit(changes, None).await
    }

    /// The sign-in log entry for the flow's outcome.
    fn log_entry(
        &self,
        flow: &SignInFlow,
        user: &User,
        session: &AuthSession,
        decision: &Decision,
        error_code: u32,
    ) -> SignInLogEntry {
        let facts = RequestFacts {
            correlation_id: flow.correlation_id,
            ip_address: flow.ip_address.clone(),
            country: flow.country.clone(),
            user_agent: flow.user_agent.clone(),
            application: None,
        };
        let failure_reason = match &flow.step {
            FlowStep::Requirements { .. } => Some("Strong Authentication is required.".to_string()),
            FlowStep::RegistrationNeeded { .. } => Some(
                "The user is required to use multi-factor authentication and must register security information (More information required).".to_string(),
            ),
            FlowStep::Blocked { policies, .. } => Some(format!(
                "Access has been blocked by Conditional Access policies: {}.",
                display_names(policies)
            )),
            FlowStep::NotAssigned => Some(format!(
                "The signed in user '{}' is not assigned to a role for the application '{}' ({}), which requires assignment.",
                user.user_principal_name, flow.app_display_name, flow.client_id
            )),
            _ => None,
        };
        sign_in::flow_entry(
            &self.deps,
            FlowRecord {
                facts: &facts,
                user,
                app_id: flow.client_id.to_string(),
                app_display_name: &flow.app_display_name,
                session,
                decision,
                error_code,
                failure_reason,
            },
        )
    }

    fn state(&self, flow: &SignInFlow, token: Option<String>) -> FlowState {
        let message = match &flow.step {
            FlowStep::Requirements { .. } => Some(
                "Your organization asks for a stronger sign-in to use this application."
                    .to_string(),
            ),
            FlowStep::RegistrationNeeded { .. } => Some("More information required: your organization needs you to set up a passkey to keep your account secure.".to_string()),
            FlowStep::Blocked { policies, .. } => Some(format!(
                "You cannot access this right now. Blocked by: {}.",
                display_names(policies)
            )),
            FlowStep::NotAssigned => Some(format!(
                "You are not assigned to '{}'. Your organization lets only the people it has assigned to this application use it: ask your administrator for access.",
                flow.app_display_name
            )),
            _ => None,
        };
        // What the person is shown of the policies: the blocking ones, or those that sent them
        // to registration (not those asking for more of their own methods).
        let policies = match &flow.step {
            FlowStep::Blocked { .. } | FlowStep::RegistrationNeeded { .. } => {
                flow.step.named_policies().to_vec()
            }
            _ => Vec::new(),
        };
        let details = flow.step.kind().eq(&Step::Blocked).then(|| {
            let ua = portcullis_useragent::parse(&flow.user_agent);
            serde_json::json!({
                "errorCode": flow.step.error_code().unwrap_or(BLOCKED_BY_CONDITIONAL_ACCESS),
                "correlationId": flow.correlation_id,
                "timestamp": graph_datetime::format(self.now()),
                "appId": flow.client_id,
                "appDisplayName": flow.app_display_name,
                "platform": ua.operating_system,
                "ipAddress": flow.ip_address,
            })
        });
        FlowState {
            flow_id: flow.token.clone(),
            status: flow.step.kind(),
            app_id: flow.client_id,
            app_display_name: flow.app_display_name.clone(),
            user_principal_name: flow.username.clone(),
            error_code: flow.step.error_code(),
            message,
            methods: flow.step.offered_methods(),
            required_strengths: flow.step.required_strengths().to_vec(),
            policies,
            details,
            new_session_token: token,
            persistent_session: flow.persistent_browser,
            completion: None,
            redirect_url: None,
            form_post: None,
        }
    }
}

/// The change that stores `flow`'s new state: moved from the step it was read at (refused if
/// another request moved it first), or inserted when this request made it (`from` is `None`).
fn stored(flow: &SignInFlow, from: Option<Step>) -> Change {
    match from {
        Some(from) => Change::AdvanceSignInFlow {
            flow: Box::new(flow.clone()),
            from,
        },
        None => Change::InsertSignInFlow(Box::new(flow.clone())),
    }
}

/// Policy names for a sentence: "A, B".
fn display_names(policies: &[NamedPolicy]) -> String {
    policies
        .iter()
        .map(|p| p.display_name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
