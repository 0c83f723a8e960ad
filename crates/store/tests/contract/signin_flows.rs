//! Sign-in flows: a flow reads back as written, and of racing requests that advance it from
//! the same step exactly one lands.

use portcullis_core::Error;
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::signin::FlowStep;
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at};

contract!(sign_in_flows_advance_once_per_step);

pub(crate) fn flow(step: FlowStep) -> portcullis_core::signin::SignInFlow {
    portcullis_core::signin::SignInFlow {
        id: Uuid::now_v7(),
        secret_hash: Some("f10w".into()),
        // The token is the browser's, never stored: a flow reads back without it.
        token: String::new(),
        step,
        client_id: Uuid::new_v4(),
        app_display_name: "Contoso Portal".into(),
        correlation_id: Uuid::new_v4(),
        ip_address: Some("192.0.2.7".into()),
        country: Some("SE".into()),
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)".into(),
        username: None,
        user_id: None,
        session_id: None,
        authorization: None,
        reuses_session: false,
        persistent_browser: None,
        requires_assignment: None,
        created: at(T0),
        expires: at(T0 + 600_000),
    }
}

/// A flow reads back as written; of many requests that advance it from the same step, on as
/// many connections, exactly one lands and the others are told it moved on.
async fn sign_in_flows_advance_once_per_step(store: SqlStore) {
    use portcullis_core::signin::Step;
    let start = flow(FlowStep::Identify);
    store
        .commit(
            vec![Change::InsertSignInFlow(Box::new(start.clone()))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.sign_in_flow(start.id).await.unwrap(),
        Some(start.clone())
    );
    assert_eq!(store.sign_in_flow(Uuid::new_v4()).await.unwrap(), None);

    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let mut next = start.clone();
        next.step = FlowStep::FirstFactor;
        next.username = Some(format!("racer{i}@contoso.com"));
        tasks.push(tokio::spawn(async move {
            store
                .commit(
                    vec![Change::AdvanceSignInFlow {
                        flow: Box::new(next),
                        from: Step::Identify,
                    }],
                    None,
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(Error::Conflict { code, .. }) => assert_eq!(code, ErrorCode::SignInStepOutOfOrder),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let stored = store.sign_in_flow(start.id).await.unwrap().unwrap();
    assert_eq!(stored.step, FlowStep::FirstFactor);
    assert!(stored.username.is_some());
    assert_eq!(
        stored.secret_hash, start.secret_hash,
        "advancing rewrites the flow's state, never its secret's hash"
    );
}
