//! Sign-in logs: every entry reads back as written (its policies and method details
//! included), newest first, filterable on the columns the admin API filters on, and purged by
//! age only.

use portcullis_core::kernel::query::Cursor;
use portcullis_core::logs::replay_context::{ReplayContext, ReplayTarget, Verdict};
use portcullis_core::logs::sign_in::{
    AppliedConditionalAccessPolicy, AuthenticationDetail, DeviceDetail, SignInLogEntry,
    SignInStatus,
};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery, Op, Value};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, pred, query, text};

contract!(
    sign_ins_read_back_newest_first_filter_and_purge_by_age,
    replay_reads_contexts_in_time_order_in_batches_within_the_window,
);

fn entry(upn: &str, error_code: u32, when: i64) -> SignInLogEntry {
    SignInLogEntry {
        id: Uuid::new_v4(),
        created_date_time: at(when),
        user_principal_name: upn.to_string(),
        user_id: (error_code != 50126).then(Uuid::new_v4),
        user_display_name: Some("Joni Sherman".to_string()),
        app_display_name: "Contoso Portal".to_string(),
        app_id: "2f4e9a1c-0000-4000-8000-000000000001".to_string(),
        ip_address: Some("192.0.2.7".to_string()),
        client_app_used: "Browser".to_string(),
        correlation_id: Uuid::new_v4(),
        is_interactive: true,
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)".to_string(),
        device_detail: DeviceDetail {
            operating_system: "Windows".to_string(),
            browser: "Edge 131".to_string(),
        },
        status: SignInStatus {
            error_code,
            failure_reason: (error_code != 0).then(|| "Invalid username or password.".into()),
            additional_details: None,
        },
        conditional_access_status: if error_code == 0 {
            "success".to_string()
        } else {
            "notApplied".to_string()
        },
        applied_conditional_access_policies: vec![AppliedConditionalAccessPolicy {
            id: Uuid::new_v4().to_string(),
            display_name: "Passkey test: enforcement".to_string(),
            result: "success".to_string(),
            enforced_grant_controls: vec!["Authentication strength".to_string()],
            enforced_session_controls: Vec::new(),
            conditions_not_satisfied: None,
            result_reason: "Joni is in Admins.".to_string(),
        }],
        authentication_details: vec![AuthenticationDetail {
            authentication_method: "Passkey".to_string(),
            succeeded: error_code == 0,
            authentication_step_result_detail: "MFA completed".to_string(),
            authentication_step_requirement: "Primary authentication".to_string(),
            authentication_step_date_time: at(when),
        }],
        authentication_requirement: "multiFactorAuthentication".to_string(),
        authentication_strength: Some("Phishing-resistant MFA".to_string()),
        replay_context: None,
        location: portcullis_core::logs::sign_in::SignInLocation {
            country_or_region: Some("SE".to_string()),
        },
    }
}

async fn sign_ins_read_back_newest_first_filter_and_purge_by_age(store: SqlStore) {
    let success = entry("joni@contoso.com", 0, T0);
    let wrong_pass = entry("joni@contoso.com", 50126, T0 + 1_000);
    let other = entry("grady@contoso.com", 0, T0 + 2_000);
    commit(
        &store,
        [&success, &wrong_pass, &other]
            .into_iter()
            .map(|e| Change::InsertSignInLogEntry(Box::new(e.clone())))
            .collect(),
    )
    .await;

    let all = store.list_sign_ins(&ListQuery::default()).await.unwrap();
    assert_eq!(
        all.items,
        vec![other.clone(), wrong_pass.clone(), success.clone()],
        "every field reads back, newest first"
    );

    let failures = store
        .list_sign_ins(&query(vec![pred("error_code", Op::Eq, Value::Int(50126))]))
        .await
        .unwrap();
    assert_eq!(failures.items, vec![wrong_pass.clone()]);
    let jonis = store
        .list_sign_ins(&query(vec![pred(
            "user_principal_name",
            Op::Eq,
            text("joni@contoso.com"),
        )]))
        .await
        .unwrap();
    assert_eq!(jonis.items, vec![wrong_pass.clone(), success.clone()]);

    // Purging removes what is older than the cut-off, and only that.
    assert_eq!(store.purge_sign_ins(at(T0 + 1_000)).await.unwrap(), 1);
    let left = store.list_sign_ins(&ListQuery::default()).await.unwrap();
    assert_eq!(left.items, vec![other, wrong_pass]);
}

/// A replay context that says which entry it belongs to (in its country member).
fn context(tag: &str) -> ReplayContext {
    ReplayContext {
        user_id: Uuid::new_v4(),
        group_ids: vec![Uuid::new_v4(), Uuid::new_v4()],
        role_template_ids: Vec::new(),
        guest: false,
        targets: vec![ReplayTarget::Application(Uuid::new_v4().to_string())],
        platform: None,
        client_app_type: None,
        ip_address: Some("203.0.113.7".parse().unwrap()),
        country: Some(tag.to_owned()),
        sign_in_risk: None,
        user_risk: None,
        device: None,
        methods: Vec::new(),
        password_changed: false,
        accepted_terms_of_use: Vec::new(),
        verdict: Verdict::Block,
    }
}

async fn replay_reads_contexts_in_time_order_in_batches_within_the_window(store: SqlStore) {
    // Five entries: two in the same millisecond (ordered by id), one without a context (as
    // logged before contexts were kept), one outside the window on each side.
    let mut entries = Vec::new();
    for (tag, when) in [
        ("early", T0 - 1),
        ("a", T0),
        ("b", T0 + 10),
        ("c", T0 + 10),
        ("none", T0 + 20),
        ("late", T0 + 31),
    ] {
        let mut e = entry(&format!("{tag}@contoso.com"), 0, when);
        e.replay_context = (tag != "none").then(|| context(tag));
        entries.push(e);
    }
    commit(
        &store,
        entries
            .iter()
            .map(|e| Change::InsertSignInLogEntry(Box::new(e.clone())))
            .collect(),
    )
    .await;
    let (from, to) = (at(T0), at(T0 + 30));
    let mut read = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let batch = store
            .logged_decisions(from, to, after.as_ref(), 2)
            .await
            .unwrap();
        assert!(batch.len() <= 2, "a batch holds at most its limit");
        let Some(last) = batch.last() else { break };
        after = Some(Cursor {
            created: last.created,
            id: last.id.to_string(),
        });
        read.extend(batch);
    }
    let mut same_instant = [entries[2].id, entries[3].id];
    same_instant.sort_by_key(|id| id.to_string());
    let expected_ids = [
        entries[1].id,
        same_instant[0],
        same_instant[1],
        entries[4].id,
    ];
    assert_eq!(
        read.iter().map(|r| r.id).collect::<Vec<_>>(),
        expected_ids,
        "oldest first, ties by id, inside the window only"
    );
    for row in &read {
        let written = entries.iter().find(|e| e.id == row.id).unwrap();
        assert_eq!(row.user_principal_name, written.user_principal_name);
        assert_eq!(row.app_id, written.app_id);
        assert_eq!(row.created, written.created_date_time);
        assert_eq!(row.user_id, written.user_id);
        let back = row
            .context
            .as_deref()
            .map(|bytes| ReplayContext::decode(bytes).unwrap());
        assert_eq!(back, written.replay_context, "the context reads back whole");
    }
    // The log's own reading is unchanged by the context beside it.
    let listed = store.list_sign_ins(&ListQuery::default()).await.unwrap();
    assert!(listed.items.iter().all(|e| e.replay_context.is_none()));
}
