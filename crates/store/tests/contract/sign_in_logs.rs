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
    entries_of_the_previous_format_read_back_beside_compact_ones,
    a_compact_entry_is_a_fraction_of_the_previous_one,
    a_revision_is_purged_only_when_no_entry_names_it,
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
        }]
        .into(),
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
            key: None,
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

async fn entries_of_the_previous_format_read_back_beside_compact_ones(store: SqlStore) {
    use portcullis_store::testing::{sample_policy_set, sample_sign_in_both_ways};
    let set = sample_policy_set(50);
    let mut compact = Vec::new();
    let mut previous = Vec::new();
    for n in 0..6 {
        let (new, old) = sample_sign_in_both_ways(&set, n, at(T0 + n as i64 * 1_000));
        if n % 2 == 0 {
            store.insert_previous_format_sign_in(&old).await.unwrap();
            previous.push(old);
        } else {
            compact.push(new);
        }
    }
    // One made by hand, its policies listed rather than from a decision, and one with none.
    let by_hand = entry("joni@contoso.com", 0, T0 + 10_000);
    let mut first_factor = entry("joni@contoso.com", 50126, T0 + 11_000);
    first_factor.applied_conditional_access_policies = Default::default();
    compact.push(by_hand);
    compact.push(first_factor);
    commit(
        &store,
        compact
            .iter()
            .map(|e| Change::InsertSignInLogEntry(Box::new(e.clone())))
            .collect(),
    )
    .await;
    let mut written: Vec<SignInLogEntry> = compact.iter().chain(&previous).cloned().collect();
    written.sort_by_key(|e| std::cmp::Reverse(e.created_date_time));
    let mut read = store
        .list_sign_ins(&ListQuery::default())
        .await
        .unwrap()
        .items;
    for e in &mut written {
        // The log's reading never carries the replay context (replay reads it on its own).
        e.replay_context = None;
    }
    assert_eq!(read.len(), written.len());
    for (r, w) in read.iter().zip(&written) {
        assert_eq!(r, w, "entry {} reads back as written", w.id);
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::to_value(w).unwrap(),
            "and writes out as the same JSON"
        );
    }
    // Filters on the columns find either format.
    let person = &previous[1].user_principal_name;
    let found = store
        .list_sign_ins(&query(vec![pred(
            "user_principal_name",
            Op::Eq,
            text(person),
        )]))
        .await
        .unwrap();
    assert!(found.items.iter().any(|e| e.id == previous[1].id));
    read.retain(|e| e.id == compact[0].id);
    assert_eq!(read.len(), 1);
}

/// Bytes a sign-in takes in the database, in each format, for 50 and 240 policies: each
/// measured as the growth of the database over 300 sign-ins appended (no deletes between, so
/// no page is reused), the compact ones with their one revision row included.
async fn a_compact_entry_is_a_fraction_of_the_previous_one(store: SqlStore) {
    use portcullis_store::testing::{sample_policy_set, sample_sign_in_both_ways};
    const ROWS: usize = 300;
    let mut at_ms = T0;
    let mut measured = Vec::new();
    for policies in [50, 240] {
        let set = sample_policy_set(policies);
        for compact in [false, true] {
            let before = store.sign_in_log_bytes().await.unwrap();
            let mut changes = Vec::new();
            for n in 0..ROWS {
                at_ms += 10;
                let (new, old) = sample_sign_in_both_ways(&set, n, at(at_ms));
                if compact {
                    changes.push(Change::InsertSignInLogEntry(Box::new(new)));
                } else {
                    store.insert_previous_format_sign_in(&old).await.unwrap();
                }
            }
            if compact {
                commit(&store, changes).await;
            }
            let after = store.sign_in_log_bytes().await.unwrap();
            let per_row = (after - before) / ROWS as u64;
            eprintln!(
                "{:?}: {policies} policies, {}: {per_row} bytes per sign-in",
                store.dialect(),
                if compact {
                    "compact"
                } else {
                    "previous format"
                }
            );
            measured.push((policies, compact, per_row));
        }
    }
    for (policies, compact, per_row) in &measured {
        if *compact {
            assert!(
                *per_row < 2_048,
                "{policies} policies: {per_row} bytes a sign-in"
            );
            let previous = measured
                .iter()
                .find(|(p, c, _)| p == policies && !c)
                .unwrap()
                .2;
            // PostgreSQL compresses the previous format's JSON (TOAST); SQLite does not.
            assert!(
                per_row * 2 < previous,
                "{per_row} compact against {previous}"
            );
        }
    }
    assert_eq!(
        store.sign_in_policy_revision_rows().await.unwrap(),
        2,
        "two policy sets, two revisions"
    );
}

async fn a_revision_is_purged_only_when_no_entry_names_it(store: SqlStore) {
    use portcullis_store::testing::{sample_policy_set, sample_sign_in};
    // Two entries under two policy sets; the purge below comes 40 days after both revisions
    // were written (confirmed now), and removes the first entry but not the second (made to
    // look newer than the cut-off).
    let now = time::OffsetDateTime::now_utc();
    let first = sample_sign_in(&sample_policy_set(12), 1, at(T0));
    let second = sample_sign_in(&sample_policy_set(13), 2, now + time::Duration::days(100));
    commit(
        &store,
        vec![
            Change::InsertSignInLogEntry(Box::new(first)),
            Change::InsertSignInLogEntry(Box::new(second.clone())),
        ],
    )
    .await;
    assert_eq!(store.sign_in_policy_revision_rows().await.unwrap(), 2);
    // A purge whose cut-off is not a day past their confirmation leaves both revisions.
    assert_eq!(store.purge_sign_ins(at(T0 + 1)).await.unwrap(), 1);
    assert_eq!(store.sign_in_policy_revision_rows().await.unwrap(), 2);
    // Long after: the revision no entry names goes, the one the second entry names stays.
    let far = now + time::Duration::days(40);
    assert_eq!(store.purge_sign_ins(far).await.unwrap(), 0);
    assert_eq!(store.sign_in_policy_revision_rows().await.unwrap(), 1);
    let left = store.list_sign_ins(&ListQuery::default()).await.unwrap();
    let mut expected = second;
    expected.replay_context = None;
    assert_eq!(
        left.items,
        vec![expected],
        "the remaining entry still reads back"
    );
}
