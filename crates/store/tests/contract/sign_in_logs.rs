//! Sign-in logs: every entry reads back as written (its policies and method details
//! included), newest first, filterable on the columns the admin API filters on, and purged by
//! age only.

use portcullis_core::logs::sign_in::{
    AppliedConditionalAccessPolicy, AuthenticationDetail, DeviceDetail, SignInLogEntry,
    SignInStatus,
};
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery, Op, Value};
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, pred, query, text};

contract!(sign_ins_read_back_newest_first_filter_and_purge_by_age);

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
