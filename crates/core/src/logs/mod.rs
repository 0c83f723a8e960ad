//! The sign-in log: one entry for every sign-in attempt — success, failure or interrupt — with
//! the request's facts and each Conditional Access policy's result, in Graph's `signIn` shape;
//! beside each decided entry, what Conditional Access decided it on ([`replay_context`]), so
//! that [`replay`] can decide the log again under candidate policies. Entries are stored
//! compact ([`compact`]: policy results against a shared policy revision) and read back as
//! Graph's `signIn`.
//!
//! What it must never do: hold a secret, or let an attempt go unlogged (a step whose entry cannot
//! be written fails). Directory audits are the directory's ([`crate::directory::audit`]).

pub mod compact;
pub mod replay;
pub mod replay_context;
pub mod sign_in;
pub mod store;
