//! The kernel: what every capability stands on and nothing domain-specific — the one error type,
//! time, randomness, hashing of secrets, JSON reading, the shape of list queries and the
//! dependency bundle.
//!
//! What it must never do: import any other module of this crate. Everything else imports it.

pub mod clock;
pub mod crypto;
pub mod deps;
pub mod entropy;
pub mod error;
pub mod json;
pub mod odata;
pub mod query;
pub mod split_token;
pub mod typed_secret;

pub use deps::Deps;
pub use error::{Error, Result};
