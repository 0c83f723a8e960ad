//! DESIGN.md's story in a real browser, against the real server on a free port opened as
//! `http://localhost:PORT` (WebAuthn refuses the IP address), configured only through the admin
//! API. Screenshots of the key screens land in `target/e2e-screenshots/`.
//!
//! Also the pages' friendly errors over plain HTTP (no browser needed for those).

mod accessibility;
mod admin_story;
mod audit_views;
mod deleted_users;
mod editor_live;
mod harness;
mod pages;
mod policy_editor;
mod relying_party;
mod spa;
mod story;
mod trusted_pages;
mod use_case_1;
mod use_case_2;
mod users_view;
mod views;
