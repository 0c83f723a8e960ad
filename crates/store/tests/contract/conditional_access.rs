//! Conditional Access documents (policies, named locations, strengths, method configurations)
//! and the revisions that tell every node when its cached policies or memberships are stale.

use portcullis_core::directory::model::{DocumentKind, ObjectKind, PolicyDocument, RoleAssignment};
use portcullis_core::store::Change;
use portcullis_core::store::prelude::*;
use portcullis_store::SqlStore;
use uuid::Uuid;

use crate::fixtures::{T0, at, commit, group, member, user};

contract!(revisions_move_with_what_they_cover);

async fn revisions_move_with_what_they_cover(store: SqlStore) {
    // Nodes keep compiled policies and people's groups and roles for as long as these stay
    // the same: each must move with every change it covers, in the same commit, and only then.
    let revisions = || async {
        store
            .revisions()
            .await
            .unwrap()
            .expect("the store keeps them")
    };
    let joni = user("joni@contoso.com", T0);
    let team = group("Team", T0);
    let mut before = revisions().await;
    let mut step = async |changes: Vec<Change>, documents: bool, memberships: bool, what: &str| {
        commit(&store, changes).await;
        let after = revisions().await;
        assert_eq!(
            after.documents != before.documents,
            documents,
            "documents after {what}"
        );
        assert_eq!(
            after.memberships != before.memberships,
            memberships,
            "memberships after {what}"
        );
        before = after;
    };
    step(
        vec![
            Change::InsertUser(joni.clone()),
            Change::InsertGroup(team.clone()),
        ],
        false,
        false,
        "a new user and group",
    )
    .await;
    step(
        vec![member(&team, joni.id, ObjectKind::User)],
        false,
        true,
        "a new member",
    )
    .await;
    let mut renamed = joni.clone();
    renamed.display_name = "Joni B".into();
    step(
        vec![Change::UpdateUser(renamed)],
        false,
        false,
        "a renamed user",
    )
    .await;
    let mut disabled = joni.clone();
    disabled.account_enabled = false;
    step(
        vec![
            Change::UpdateUser(disabled),
            Change::MoveMembershipsRevision,
        ],
        false,
        true,
        "a disabled user (who holds roles through the team no longer counts)",
    )
    .await;
    let assignment = RoleAssignment {
        id: Uuid::new_v4(),
        principal_id: team.id,
        role_definition_id: Uuid::parse_str("62e90394-69f5-4237-9190-012177145e10").unwrap(),
        directory_scope_id: "/".to_string(),
    };
    step(
        vec![Change::InsertRoleAssignment(assignment.clone())],
        false,
        true,
        "a role assigned",
    )
    .await;
    let location = PolicyDocument {
        kind: DocumentKind::NamedLocation,
        id: Uuid::new_v4().to_string(),
        display_name: "Office".to_string(),
        body: serde_json::json!({"@odata.type": "#microsoft.graph.ipNamedLocation",
                                 "ipRanges": [{"cidrAddress": "192.0.2.0/24"}]}),
        created: at(T0),
        modified: at(T0),
    };
    step(
        vec![Change::InsertDocument(location)],
        true,
        false,
        "a new location",
    )
    .await;
    step(
        vec![Change::DeleteRoleAssignment(assignment.id)],
        false,
        true,
        "a role removed",
    )
    .await;
    step(
        vec![Change::RemoveMember {
            group_id: team.id,
            member_id: joni.id,
        }],
        false,
        true,
        "a member removed",
    )
    .await;
    step(
        vec![Change::DeleteUser(joni.id)],
        false,
        true,
        "a user deleted",
    )
    .await;
    step(
        vec![Change::DeleteGroup(team.id)],
        false,
        true,
        "a group deleted",
    )
    .await;
}
