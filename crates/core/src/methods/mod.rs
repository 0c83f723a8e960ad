//! Authentication methods: passkeys (FIDO2) and their WebAuthn ceremonies, Temporary Access
//! Passes, passwords, software OATH (TOTP) codes, the method policies that govern them, and
//! smart lockout of repeated failures.
//!
//! Each method verifies what a person presents and says what it proved; a first factor used on
//! its own (the pages' `/auth/*` endpoints) also opens a session and logs the attempt. What it
//! must never do: decide whether a sign-in to an application is allowed (Conditional Access and
//! the sign-in flow do), or compare a secret other than in constant time.

pub mod config;
pub mod lockout;
pub mod passkeys;
pub mod password;
pub mod store;
pub mod tap;
pub mod totp;

use crate::Result;
use crate::directory::model::User;
use crate::kernel::Deps;
use crate::logs::sign_in::RequestFacts;
use crate::logs::store::LogStore;
use crate::session::{AuthSession, MethodKind};

/// Logs a first-factor attempt, whatever its outcome, and hands the outcome back. If the entry
/// cannot be written the sign-in fails: no attempt goes unlogged.
pub(crate) async fn logged_first_factor<S: LogStore + ?Sized>(
    deps: &Deps<S>,
    facts: &RequestFacts,
    typed_user_principal_name: &str,
    method: MethodKind,
    found: Option<&User>,
    outcome: Result<(User, AuthSession, String)>,
) -> Result<(User, AuthSession, String)> {
    let (succeeded, error_code, failure_reason) = match &outcome {
        Ok(_) => (true, 0, None),
        Err(e) => (
            false,
            e.sign_in_code()
                .map_or(FAULT_DURING_SIGN_IN, |code| code.code()),
            Some(e.to_string()),
        ),
    };
    crate::logs::sign_in::record_first_factor(
        deps,
        crate::logs::sign_in::Attempt {
            facts,
            user: found,
            typed_user_principal_name,
            method,
            succeeded,
            error_code,
            failure_reason,
        },
    )
    .await?;
    outcome
}

/// The log's error code for an attempt that failed on a fault (the database, a defect) rather
/// than a refusal. Not one of Entra's codes, so that no search for a refusal finds it.
const FAULT_DURING_SIGN_IN: u32 = 500;
