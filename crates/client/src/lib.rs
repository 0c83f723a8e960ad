//! The client side of Portcullis' admin API.
//!
//! Owns: [`AdminClient`], a typed async client of the Microsoft Graph–compatible API under
//! `/graph/v1.0/` (OAuth 2.0 client credentials, bearer tokens refreshed before they expire,
//! `@odata.nextLink` paging, Graph and OAuth errors parsed into one [`ClientError`]); where its
//! credentials come from ([`Credentials`]: bootstrap.json or `PORTCULLIS_*` variables); and
//! [`cli`], the `users|groups|roles|apps|locations|audit|logs|passes|ca|strengths|methods|
//! passkeys|sessions` commands of the `portcullis` binary,
//! with their table printer.
//!
//! Must never: depend on the server's crates (core, store, web): it speaks only HTTP and JSON,
//! so it works against any Portcullis a person can reach and tests the API as outsiders see it;
//! send the bearer token anywhere but the address it was given (links from responses are
//! re-based, redirects are refused); print or log a client secret except the one `apps
//! add-secret` was asked to create.

pub mod ca;
pub mod cli;
mod client;
mod credentials;
mod error;
pub mod security;
pub mod table;

pub use client::{
    AdminClient, GRAPH_PREFIX, ListOptions, NewApplication, NewUser, UserUpdate, odata_string,
    segment,
};
pub use credentials::{Credentials, DEFAULT_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_URL};
pub use error::{ClientError, Exit, parse_error};
