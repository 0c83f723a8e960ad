//! The directory: the tenant, users, groups with nested membership, built-in directory roles and
//! their assignments, applications and their secrets, policy documents as stored, the
//! permissions a caller holds ([`authz`]), the rules that keep managing groups and applications
//! from becoming a privilege ladder ([`ladder`]), who may take sensitive actions on whom
//! ([`tiers`]), deleted users kept restorable for 30 days (`deleted`) and the audit entry of
//! every change ([`audit`]).
//!
//! Every other capability stands on it: a person, an application and a role are directory
//! objects. What it must never do: know how anyone signs in (methods, sessions, flows and tokens
//! live above it), or write anything except through [`store::Commit`] with its audit entry.

pub mod access;
pub mod audit;
pub mod authz;
mod deleted;
pub mod first_party;
pub mod ladder;
pub mod last_admin;
pub mod model;
pub mod references;
pub mod roles;
mod service;
pub mod store;
pub mod tiers;

pub use service::*;
