//! # portcullis-core — the identity provider's domain
//!
//! This crate owns what Portcullis *is*: the directory (tenant, users, groups with nested
//! membership, built-in directory roles and their assignments, applications and their secrets),
//! the permissions an administrator or an automation application holds, the audit trail of every
//! administrative change, and the first-start bootstrap.
//!
//! It reaches the outside world only through traits: storage ([`store::Store`]), time
//! ([`clock::Clock`]) and randomness ([`entropy::Entropy`]). That keeps every rule testable with
//! a fixed clock and deterministic randomness, and lets the same logic run on SQLite and on
//! PostgreSQL.
//!
//! What it must never do: speak HTTP or know a web framework's types (the web crate extracts
//! plain facts and hands them here), write SQL (the store crate does), read configuration files
//! or environment variables (the binary does), or keep sign-in state in memory (any node must be
//! able to serve any step, so state lives behind [`store::Store`]).
//!
//! Where to look:
//! - a change an administrator makes: [`directory::Directory`], which checks the
//!   [`authz::Granted`] capability, validates, and commits the change together with its
//!   [`audit::DirectoryAudit`] in one transaction;
//! - a failure: [`error::Error`], one variant per outcome, each documenting its HTTP status;
//! - first start: [`bootstrap`].

pub mod audit;
pub mod authz;
pub mod bootstrap;
pub mod clock;
pub mod conditional_access;
pub mod crypto;
pub mod directory;
pub mod entropy;
pub mod error;
pub mod first_party;
pub mod json;
pub mod lockout;
mod method_config;
pub mod model;
pub mod odata;
pub mod oidc;
pub mod passkeys;
pub mod password;
pub mod roles;
pub mod security_info;
pub mod session;
pub mod signin;
pub mod signin_log;
pub mod store;
pub mod tap;
pub mod tokens;
pub mod totp;
pub mod typed_secret;

pub use error::{Error, Result};
