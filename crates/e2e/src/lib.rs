//! # portcullis-e2e — the story in a real browser
//!
//! This crate holds no library code: its one integration test binary (`tests/browser`) starts
//! the real server with `portcullis-testkit`, drives Debian's Chromium through chromedriver with
//! a virtual passkey authenticator, and walks DESIGN.md's use cases as a person would, saving a
//! screenshot of each key screen under `target/e2e-screenshots/`.
//!
//! Chromium and chromedriver come from Debian (`scripts/install-test-deps.sh`). When they are
//! missing the tests fail and say so: a skipped browser test would hide a missing feature.
