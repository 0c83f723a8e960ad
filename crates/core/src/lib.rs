//! # portcullis-core — the identity provider's domain
//!
//! This crate owns what Portcullis *is*, cut by capability. Its top-level modules form layers;
//! each imports only the ones listed before it (a test, `tests/layers.rs`, fails on any import
//! that goes the other way):
//!
//! | module | owns |
//! |---|---|
//! | [`kernel`] | the one error type, time, randomness, hashing of secrets, list queries, [`kernel::Deps`] |
//! | [`directory`] | tenant, users, groups, roles, applications, policy documents as stored, permissions ([`directory::authz`]), directory audits, the storage door ([`directory::store::Commit`]) |
//! | [`conditional_access`] | policies, named locations and strengths as administered, and the live policy set the pure engine (`portcullis-policy`) evaluates |
//! | [`session`] | who proved what, and when; what each kind of method means ([`session::MethodKind`]) |
//! | [`logs`] | the sign-in log |
//! | [`methods`] | passkeys, Temporary Access Passes, passwords, TOTP, method policies, smart lockout |
//! | [`guard`] | the lockout guard: no change may take the Admin Portal from the last Global Administrators or from the person making it |
//! | [`signin`] | the sign-in flow, what a completed flow issues to its application, security-info rules |
//! | [`oidc`] | OpenID Connect: authorize, token, refresh, userinfo, logout, signing keys |
//! | [`store`] | the whole storage contract, composed for the store crate and the server |
//! | [`bootstrap`] | the first start |
//!
//! It reaches the outside world only through traits: storage (one trait per capability, each a
//! supertrait of the next, all composed as [`store::Store`]), time ([`kernel::clock::Clock`]) and
//! randomness ([`kernel::entropy::Entropy`]). That keeps every rule testable with a fixed clock and
//! deterministic randomness, and lets the same logic run on SQLite and on PostgreSQL.
//!
//! What it must never do: speak HTTP or know a web framework's types (the web crate extracts
//! plain facts and hands them here), write SQL (the store crate does), read configuration files
//! or environment variables (the binary does), or keep sign-in state in memory (any node must be
//! able to serve any step, so state lives behind the storage traits).
//!
//! Where to look:
//! - a change an administrator makes: [`directory::Directory`], which checks the
//!   [`directory::authz::Granted`] capability, validates, and commits the change together with
//!   its [`directory::audit::DirectoryAudit`] in one transaction;
//! - a failure: [`Error`], one variant per outcome, each documenting its HTTP status;
//! - a sign-in: [`signin::SignIns`];
//! - first start: [`bootstrap`].

pub mod kernel;

pub mod directory;

pub mod conditional_access;

pub mod session;

pub mod logs;

pub mod methods;

pub mod guard;

pub mod signin;

pub mod oidc;

pub mod store;

pub mod bootstrap;

pub use kernel::{Error, Result};
