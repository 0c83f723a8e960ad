//! The Conditional Access engine of Portcullis.
//!
//! This crate owns the policy model in Microsoft Graph's shape (Conditional Access policies,
//! authentication strengths, named locations), its import and export as Graph JSON, the
//! decision for a sign-in ([`evaluate`]) with a per-policy trace, the What-If request and
//! response shapes, `lint`, and the exhaustive analyzer ([`analyze`]) built on `evaluate`.
//!
//! It must stay pure, and the build keeps it so: no async, no I/O, no clock, no randomness, no
//! global mutable state. Everything a decision depends on comes in through [`SignInContext`]
//! and [`PolicySet`], so the same code decides live sign-ins, the What-If API, the offline CLI
//! and tests, and the same inputs always give the same decision.
//!
//! Security rules this crate guarantees (tested in `tests/engine`): exclusion beats inclusion;
//! an unknown platform matches only `all`; every applicable enabled policy must be satisfied;
//! block wins; report-only policies never change the decision; a temporary access pass meets
//! only the Multifactor strength; and a condition the engine cannot evaluate is never read as
//! "matches everything": the policy fails closed and the trace says why.
//!
//! # Decisions where Entra's documentation is silent
//!
//! - "All resources" reaches the register-security-info user action (Entra's precedence rule
//!   for registration strengths presupposes it) but not device registration or authentication
//!   contexts, which only policies naming them reach.
//! - Portcullis guests are local accounts: Entra's `internalGuest`. `GuestsOrExternalUsers`
//!   matches them; B2B-only guest types do not.
//! - The Microsoft app groups `Office365` and `MicrosoftAdminPortals` contain no Portcullis
//!   application.
//! - An unknown policy state is enforced; an unknown grant operator requires every control; an
//!   unknown grant control, a custom control, app protection, approved app and risk remediation
//!   can never be satisfied here.
//! - A condition whose signal the sign-in lacks (location without an IP address) does not apply,
//!   as in Graph's What-If API; live sign-ins always carry the address.
//! - A location reference that cannot be evaluated (undefined id, GPS country lookup, a location
//!   type this engine does not know) fails closed, like any unmodelled condition.
//! - A sign-in whose country is not known (the server has no country database, or the database
//!   does not place the address) is from an unknown country, as Entra treats an address it
//!   cannot map: a country location matches it only if it includes unknown countries and
//!   regions. So an allow-list ("all locations except these countries") applies to it and fails
//!   closed, while a deny-list ("these countries") reaches it only with
//!   `includeUnknownCountriesAndRegions`, which is what a deny-list should set. The engine never
//!   guesses a country; the caller's lookup supplies it in [`SignInContext::country`].
//! - An unmet control that cannot be met by prompting (non-compliant device) blocks at once, so
//!   the user is not prompted for MFA first and blocked after.
//! - `mfa` is the built-in Multifactor strength. When one required strength always meets
//!   another (phishing-resistant always meets Multifactor), only the stronger is asked for.
//! - A platform or location condition with exclusions and no inclusions means "all except".
//! - Session controls other than sign-in frequency and persistent browser are kept, reported in
//!   `Decision::session.not_enforced`, and not enforced.

pub mod analyze;
pub mod context;
pub mod device_filter;
pub mod enums;
pub mod evaluate;
pub mod graph;
pub mod lint;
pub mod location;
pub mod model;
pub mod policy_set;
pub mod strength;
pub mod values;
pub mod whatif;

pub use context::{SignInContext, Target, UserKind};
pub use device_filter::DeviceFacts;
pub use enums::*;
pub use evaluate::{
    BlockReason, BlockingPolicy, ConditionFailure, Decision, FailureDetail, GrantOutcome, Outcome,
    PolicyTrace, Requirement, SessionOutcome, evaluate,
};
pub use location::{NamedLocation, named_locations_containing};
pub use model::ConditionalAccessPolicy;
pub use policy_set::{Control, PolicySet};
pub use strength::{
    AuthenticationStrength, MULTIFACTOR_STRENGTH_ID, PASSWORDLESS_STRENGTH_ID,
    PHISHING_RESISTANT_STRENGTH_ID, SatisfiedMethod, built_in_strength, built_in_strengths,
};
