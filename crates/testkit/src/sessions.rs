//! Sign-in sessions made directly in the store, for tests that need a session before the
//! sign-in that would make it exists as an API.
//!
//! Temporary Access Pass sign-in is being built beside the passkey work; until it lands, the
//! passkey registration tests get their TAP session here. This is the one place the test kit
//! writes to the server's store to set a test up: remove it (and use the TAP sign-in API) once
//! that API exists.

use portcullis_core::crypto::hash_secret;
use portcullis_core::session::{AuthSession, MethodKind, SESSION_LIFETIME, SessionMethod};
use portcullis_core::store::{Change, Store};
use uuid::Uuid;

use crate::TestServer;

/// Inserts a session for `user_id` that began with a Temporary Access Pass just now, and
/// returns the token its cookie carries.
pub async fn tap_session(t: &TestServer, user_id: Uuid, one_time: bool) -> String {
    use portcullis_core::clock::Clock;
    let now = t.clock.now();
    let token = format!(
        "test-{}-{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let session = AuthSession {
        id: Uuid::new_v4(),
        token_hash: hash_secret(&token),
        user_id,
        methods: vec![SessionMethod {
            method: MethodKind::TemporaryAccessPass,
            at: now,
            aaguid: None,
            credential_id: None,
            one_time,
        }],
        created: now,
        expires: now + SESSION_LIFETIME,
    };
    t.store()
        .commit(vec![Change::InsertSession(session)], None)
        .await
        .expect("the test session is stored");
    token
}
