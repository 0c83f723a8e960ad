//! End-to-end tests of the admin API against the real server, started in-process on port 0 —
//! on SQLite, or on PostgreSQL when PORTCULLIS_TEST_DATABASE_URL is set. One test binary for
//! the crate keeps link times short.

mod analysis;
mod apis;
mod audit_failures;
mod bad_input;
mod certification;
mod cli;
mod conditional_access;
mod conformance;
mod connections;
mod countries;
mod deleted_users;
mod directory;
mod editor_analysis;
mod entra_values;
mod events;
mod graph_contract;
mod guard;
mod import_review;
mod ladder;
mod lockout;
mod oidc;
mod passes;
mod passkeys;
mod passwords;
mod policy_editor;
mod portal;
mod portal_exports;
mod rate_limits;
mod replay;
mod server;
mod sign_in_cost;
mod sign_ins;
mod signin;
mod signing_algorithms;
mod tiers;
mod trust;
mod users_view;
