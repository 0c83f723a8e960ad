//! Signing in: the sign-in flow (a state machine kept in the database, so any node serves any
//! step), Conditional Access applied to it, what a completed flow issues to its application
//! ([`authorization`]), and the rules for changing one's own security info.
//!
//! It stands on the methods (which verify what a person presents), sessions, the sign-in log and
//! Conditional Access. What it must never do: speak OAuth's protocol ([`crate::oidc`] stands on
//! this module, never the reverse) or keep a step's state in memory.

pub mod authorization;
mod flow;
pub mod security_info;
pub mod step;
pub mod store;

pub use flow::*;
pub use step::{FlowStep, NamedPolicy, Step};
