//! Rows the contract tests build again and again (users, groups, applications, secrets, audit
//! entries at fixed instants), and the assertions they share about conflicts and missing rows.

use portcullis_core::Error;
use portcullis_core::directory::audit::{
    AuditActivityInitiator, DirectoryAudit, TargetResource, UserIdentity,
};
use portcullis_core::directory::model::{
    Application, Group, ObjectKind, PasswordCredential, RedirectUris, User, UserType,
};
use portcullis_core::kernel::clock::from_unix_millis;
use portcullis_core::store::prelude::*;
use portcullis_core::store::{Change, ListQuery, Op, Predicate, Value};
use portcullis_store::SqlStore;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn at(ms: i64) -> OffsetDateTime {
    from_unix_millis(ms)
}

pub(crate) const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

pub(crate) fn user(upn: &str, created: i64) -> User {
    User {
        id: Uuid::new_v4(),
        user_principal_name: upn.to_string(),
        display_name: upn.split('@').next().unwrap_or(upn).to_string(),
        mail: None,
        account_enabled: true,
        user_type: UserType::Member,
        created_date_time: at(created),
    }
}

pub(crate) fn group(name: &str, created: i64) -> Group {
    Group {
        id: Uuid::new_v4(),
        display_name: name.to_string(),
        description: None,
        mail_nickname: None,
        security_enabled: true,
        is_assignable_to_role: false,
        created_date_time: at(created),
    }
}

pub(crate) fn credential(hint: &str, start: i64) -> PasswordCredential {
    PasswordCredential {
        key_id: Uuid::new_v4(),
        display_name: Some(format!("secret {hint}")),
        hint: hint.to_string(),
        start_date_time: at(start),
        end_date_time: at(start + 86_400_000),
        secret_hash: format!("{:064x}", start),
    }
}

pub(crate) fn application(name: &str, created: i64) -> Application {
    Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        display_name: name.to_string(),
        is_fallback_public_client: false,
        web: RedirectUris {
            redirect_uris: vec!["https://app.example/callback".to_string()],
        },
        public_client: RedirectUris::default(),
        spa: RedirectUris {
            redirect_uris: vec![
                "http://localhost:3000/".to_string(),
                "https://spa.example/".to_string(),
            ],
        },
        api_permissions: vec!["User.ReadWrite.All".to_string()],
        password_credentials: Vec::new(),
        access: Default::default(),
        created_date_time: at(created),
        bootstrap_automation: false,
        id_token_signed_response_alg: Default::default(),
    }
}

pub(crate) fn audit(activity: &str, category: &str, when: i64, initiator: Uuid) -> DirectoryAudit {
    DirectoryAudit {
        id: Uuid::new_v4(),
        category: category.to_string(),
        correlation_id: Uuid::new_v4(),
        result: "success".to_string(),
        result_reason: String::new(),
        activity_display_name: activity.to_string(),
        activity_date_time: at(when),
        logged_by_service: "Core Directory".to_string(),
        operation_type: "Add".to_string(),
        initiated_by: AuditActivityInitiator {
            user: Some(UserIdentity {
                id: initiator.to_string(),
                display_name: None,
                user_principal_name: Some("admin@contoso.com".to_string()),
                ip_address: Some("192.0.2.1".to_string()),
            }),
            app: None,
        },
        target_resources: vec![
            TargetResource::new("User", Uuid::new_v4(), "Joni").modified(
                "displayName",
                None,
                Some(&serde_json::json!("Joni")),
            ),
        ],
        additional_details: Vec::new(),
    }
}

pub(crate) fn member(group: &Group, id: Uuid, kind: ObjectKind) -> Change {
    Change::AddMember {
        group_id: group.id,
        member_id: id,
        member_kind: kind,
    }
}

pub(crate) fn query(filter: Vec<Predicate>) -> ListQuery {
    ListQuery {
        filter,
        ..ListQuery::default()
    }
}

pub(crate) fn pred(field: &'static str, op: Op, value: Value) -> Predicate {
    Predicate { field, op, value }
}

pub(crate) fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

#[track_caller]
pub(crate) fn expect_conflict(result: Result<(), Error>, mentions: &str) {
    match result {
        Err(Error::Conflict { message, .. }) => assert!(
            message.contains(mentions),
            "conflict message {message:?} should mention {mentions:?}"
        ),
        other => panic!("expected a conflict mentioning {mentions:?}, got {other:?}"),
    }
}

#[track_caller]
pub(crate) fn expect_not_found(result: Result<(), Error>, resource: &str) {
    match result {
        Err(Error::NotFound {
            resource: found, ..
        }) => assert_eq!(found, resource),
        other => panic!("expected {resource} not found, got {other:?}"),
    }
}

pub(crate) async fn commit(store: &SqlStore, changes: Vec<Change>) {
    store.commit(changes, None).await.expect("commit");
}

/// Directory audit entries in the store (up to 100).
pub(crate) async fn audit_count(store: &SqlStore) -> usize {
    store
        .list_audits(&ListQuery {
            top: 100,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .items
        .len()
}
