//! Whether a person may change their own security info now — add a passkey or an authenticator
//! app, change their password, rename or remove a method — from security info.
//!
//! One decision for the page and for every `/my/…` endpoint: the session must still be let into
//! My Account (the application security info belongs to), and Conditional Access for the user
//! action "Register security information" (`urn:user:registersecurityinfo`) must grant, with
//! this session's methods and this request's facts (its platform, its address and so the named
//! locations it falls in). A policy that blocks the action, or asks for more than the session
//! has proved, refuses the change before anything is touched.
//!
//! The "More information required" interrupt during a sign-in is the other way in; it evaluates
//! the same user action in [`crate::signin::SignIns::registration_options`], with the flow's
//! facts and its own rule for the policies that caused the interrupt.

use portcullis_policy::{Outcome, Target, UserAction};

use crate::directory::first_party::MY_ACCOUNT_APP_ID;
use crate::logs::sign_in::RequestFacts;
use crate::session::AuthSession;
use crate::signin::SignIns;
use crate::{Error, Result};

/// `Ok` when the session may change its person's security info with this request; otherwise
/// a 403 whose message says why, naming the policies that decided it.
pub async fn may_change(
    sign_ins: &SignIns,
    session: &AuthSession,
    facts: &RequestFacts,
) -> Result<()> {
    if !sign_ins
        .session_may_use(session, facts, MY_ACCOUNT_APP_ID)
        .await?
    {
        return Err(Error::Forbidden(
            "Your organization's policies don't let this sign-in use My Account now. Sign in again, then try again.".into(),
        ));
    }
    let decision = sign_ins
        .session_decision(
            session,
            facts,
            Target::UserAction(UserAction::RegisterSecurityInformation),
        )
        .await?;
    let Some(decision) = decision else {
        return Err(Error::Forbidden(
            "This account can't change its security info.".into(),
        ));
    };
    let named = |ids: &[&str]| -> String {
        decision
            .trace
            .iter()
            .filter(|t| ids.iter().any(|id| t.policy.id.eq_ignore_ascii_case(id)))
            .map(|t| format!("'{}'", t.policy.display_name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &decision.outcome {
        Outcome::Grant => Ok(()),
        Outcome::Block { policies } => {
            let ids: Vec<&str> = policies.iter().map(|p| p.policy_id.as_str()).collect();
            Err(Error::Forbidden(format!(
                "Your organization's policy {} doesn't let you register or change security info from here (error {}). Try again from a place or device your organization allows.",
                named(&ids),
                crate::kernel::error::SignInErrorCode::BlockedByConditionalAccess.code()
            )))
        }
        Outcome::Requirements { requirements } => {
            let ids: Vec<&str> = requirements
                .iter()
                .flat_map(|r| r.policy_ids.iter().map(String::as_str))
                .collect();
            Err(Error::Forbidden(format!(
                "Your organization's policy {} asks for a stronger sign-in before you register or change security info. Sign in again with a method it accepts, then try again.",
                named(&ids)
            )))
        }
    }
}
