//! [`Store::commit`](portcullis_core::store::Store::commit): every change of a list and its
//! audit entry in one transaction, the cascades each [`Change`] documents included.
//!
//! Each change is applied by one function that knows what it touches, so that a failure can be
//! reported in the caller's terms: a unique index that refuses a row becomes a 409 naming the
//! property that clashed, an update or delete that matches no row becomes a 404 naming the
//! object. The first failing change ends the transaction and nothing of the list remains.

use portcullis_core::Error;
use portcullis_core::directory::audit::DirectoryAudit;
use portcullis_core::directory::model::{Application, Group, PasswordCredential, User};
use portcullis_core::kernel::clock::unix_millis;
use portcullis_core::kernel::error::ErrorCode;
use portcullis_core::store::{Change, CommittedEvent, Revisions};
use uuid::Uuid;

use crate::SqlStore;
use crate::db::{self, Conn, Query};
use crate::error::{self, Violation};
use crate::rows::{json_or, to_json};

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Commits `changes` with `audit`. Failed operations are recorded here, the one place every
/// audited operation passes (see `portcullis_core::directory::audit`): a failure entry is
/// written only within its initiator's budget, and when the transaction of an audited change
/// fails for a reason the log records (a unique index, a row gone), the entry is written again,
/// alone, as that operation's failure.
pub(crate) async fn commit(
    store: &SqlStore,
    changes: Vec<Change>,
    audit: Option<DirectoryAudit>,
) -> Result<(), Error> {
    let audit = match audit {
        Some(entry) if entry.is_failure() => {
            let admitted = store.failures.admitted(entry);
            if admitted.is_none() && changes.is_empty() {
                return Ok(());
            }
            admitted
        }
        other => other,
    };
    // The server's own changes (the first start, the first-party applications it keeps) are
    // attempts by nobody: one that finds its work done is not a failure to record.
    let attempted = audit
        .as_ref()
        .filter(|entry| !entry.is_failure() && !changes.is_empty())
        .filter(|entry| entry.initiated_by.initiator_id().is_some())
        .cloned();
    match apply_all(store, changes, audit).await {
        Err(error) => {
            if let Some(failed) = attempted
                .and_then(|entry| entry.failed(&error))
                .and_then(|entry| store.failures.admitted(entry))
                && let Err(e) = apply_all(store, Vec::new(), Some(failed)).await
            {
                tracing::warn!(error = %e, "could not record a refused operation in the audit log");
            }
            Err(error)
        }
        ok => ok,
    }
}

async fn apply_all(
    store: &SqlStore,
    changes: Vec<Change>,
    audit: Option<DirectoryAudit>,
) -> Result<(), Error> {
    if changes.is_empty() && audit.is_none() {
        return Ok(());
    }
    // The large JSON columns are written out here, on the caller's thread, rather than on the
    // one writer thread every commit queues for (BENCHMARKS.md).
    let bodies = changes
        .iter()
        .map(serialized_body)
        .collect::<Result<Vec<_>, Error>>()?;
    let audit_body = audit.as_ref().map(to_json).transpose()?;
    // Copies for the events sink, only when one is listening; told after the commit.
    let events = store
        .observer
        .as_ref()
        .map(|observer| (observer.clone(), committed_events(&changes, audit.as_ref())));
    // Sign-in log entries are made into their statements here too, compact.
    let sign_ins = crate::sign_ins::prepare(&store.log, &changes);
    let revisions = sign_ins.revisions;
    let sign_in_statements = sign_ins.statements;
    // An error from the body rolls the whole list back.
    store
        .write(move |mut tx| {
            Box::pin(async move {
                for (change, body) in changes.iter().zip(bodies) {
                    apply(&mut tx, change, body).await?;
                }
                for (index, statement) in sign_in_statements {
                    run(&mut tx, &changes[index], statement).await?;
                }
                // After the changes, so that a deletion takes its rows' locks before the
                // revision rows' (as every other commit does), and before the revisions move.
                for change in &changes {
                    if let Change::ExpectRevisions(expected) = change {
                        expect_revisions(&mut tx, expected).await?;
                    }
                }
                if changes.iter().any(|c| {
                    matches!(
                        c,
                        Change::InsertDocument(_)
                            | Change::UpdateDocument(_)
                            | Change::DeleteDocument { .. }
                    )
                }) {
                    bump_revision(&mut tx, DOCUMENTS_REVISION).await?;
                }
                if changes.iter().any(|c| {
                    matches!(
                        c,
                        Change::AddMember { .. }
                            | Change::RemoveMember { .. }
                            | Change::InsertRoleAssignment(_)
                            | Change::DeleteRoleAssignment(_)
                            | Change::DeleteUser(_)
                            | Change::MoveMembershipsRevision
                            | Change::SoftDeleteUser { .. }
                            | Change::RestoreUser(_)
                            | Change::DeleteGroup(_)
                            | Change::DeleteApplication(_)
                    )
                }) {
                    bump_revision(&mut tx, MEMBERSHIPS_REVISION).await?;
                }
                if let Some(audit) = &audit {
                    insert_audit(&mut tx, audit, audit_body).await?;
                }
                Ok(())
            })
        })
        .await?;
    store
        .log
        .confirmed(revisions, unix_millis(time::OffsetDateTime::now_utc()));
    if let Some((observer, events)) = events
        && !events.is_empty()
    {
        observer.committed(events);
    }
    Ok(())
}

/// The sign-in log entries and the audit entry of a change list, in the order they are stored.
fn committed_events(changes: &[Change], audit: Option<&DirectoryAudit>) -> Vec<CommittedEvent> {
    let mut events: Vec<CommittedEvent> = changes
        .iter()
        .filter_map(|change| match change {
            Change::InsertSignInLogEntry(entry) => Some(CommittedEvent::SignIn(entry.clone())),
            _ => None,
        })
        .collect();
    if let Some(audit) = audit {
        events.push(CommittedEvent::DirectoryAudit(Box::new(audit.clone())));
    }
    events
}

/// The JSON text of a change's large column, for the changes every sign-in makes.
fn serialized_body(change: &Change) -> Result<Option<String>, Error> {
    Ok(match change {
        Change::InsertSignInFlow(flow) | Change::AdvanceSignInFlow { flow, .. } => {
            Some(to_json(flow.as_ref())?)
        }
        Change::InsertOAuthGrant(grant) => Some(to_json(grant.as_ref())?),
        Change::InsertSession(session) => Some(to_json(&session.methods)?),
        _ => None,
    })
}

/// The `kind` of the rows in `policy_documents` that are not documents: each one's body is a
/// revision (see `Store::revisions`), its id says which. Kept there rather than in a table of
/// their own so that they need no migration; no document kind has this name.
pub(crate) const REVISION_KIND: &str = "documentsRevision";
pub(crate) const DOCUMENTS_REVISION: &str = "documents";
pub(crate) const MEMBERSHIPS_REVISION: &str = "memberships";

/// A new random revision, written in the transaction that makes the change it stands for.
async fn bump_revision(tx: &mut Conn<'_>, which: &'static str) -> Result<(), Error> {
    let now = unix_millis(time::OffsetDateTime::now_utc());
    tx.execute(
        db::query(
            "INSERT INTO policy_documents (kind, id, display_name, body, created, modified) \
             VALUES ($1, $2, '', $3, $4, $4) \
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, modified = excluded.modified",
        )
        .bind(REVISION_KIND)
        .bind(which)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(now),
    )
    .await
    .map_err(error::storage)?;
    Ok(())
}

/// Fails with `revisionMoved` unless both revisions are still the expected ones. On PostgreSQL
/// the rows are locked (documents, then memberships: the order `commit` moves them in) and read
/// at their latest committed state, so of two commits that each checked what the other
/// changes, the second to get here sees the first's revision and fails. SQLite's one writer
/// already runs commits one at a time.
async fn expect_revisions(tx: &mut Conn<'_>, expected: &Revisions) -> Result<(), Error> {
    let select = match tx.dialect() {
        crate::Dialect::Postgres => {
            "SELECT body FROM policy_documents WHERE kind = $1 AND id = $2 FOR UPDATE"
        }
        crate::Dialect::Sqlite => "SELECT body FROM policy_documents WHERE kind = $1 AND id = $2",
    };
    for (which, want) in [
        (DOCUMENTS_REVISION, &expected.documents),
        (MEMBERSHIPS_REVISION, &expected.memberships),
    ] {
        let row = tx
            .fetch_optional(db::query(select).bind(REVISION_KIND).bind(which))
            .await
            .map_err(error::storage)?;
        let current = match row {
            Some(row) => crate::rows::text(&row, "body")?,
            None => {
                // No row yet reads as the empty revision. Make one, so that there is a row to
                // hold; if another commit made it first, it moved.
                let now = unix_millis(time::OffsetDateTime::now_utc());
                let made = tx
                    .execute(
                        db::query(
                            "INSERT INTO policy_documents (kind, id, display_name, body, created, modified) \
                             VALUES ($1, $2, '', $3, $4, $4) ON CONFLICT (kind, id) DO NOTHING",
                        )
                        .bind(REVISION_KIND)
                        .bind(which)
                        .bind(Uuid::new_v4().to_string())
                        .bind(now),
                    )
                    .await
                    .map_err(error::storage)?;
                if made == 0 {
                    "moved".to_string()
                } else {
                    String::new()
                }
            }
        };
        if current != *want {
            return Err(Error::Conflict {
                code: ErrorCode::RevisionMoved,
                message: format!(
                    "The {which} changed while this change was being checked; nothing was written. Try again."
                ),
            });
        }
    }
    Ok(())
}

/// What a change did when it ran into a constraint, in the caller's words.
fn violation(change: &Change, violation: Violation) -> Error {
    match violation {
        Violation::Unique { detail } => Error::conflict(conflict_message(change, &detail)),
        Violation::ForeignKey => match change {
            Change::AddMember { group_id, .. } => Error::not_found("group", group_id.to_string()),
            Change::InsertPasswordCredential { application_id, .. } => {
                Error::not_found("application", application_id.to_string())
            }
            Change::InsertAppRoleAssignment(assignment) => {
                Error::not_found("application", assignment.resource_id.to_string())
            }
            // No other write has a foreign key; if one is added without a case here, say so.
            other => Error::Internal(format!(
                "unexpected foreign key violation in {}",
                change_name(other)
            )),
        },
    }
}

fn conflict_message(change: &Change, detail: &str) -> String {
    let user_upn = |user: &User| {
        format!(
            "A user with userPrincipalName '{}' already exists",
            user.user_principal_name
        )
    };
    let app_id = |app: &Application| {
        format!(
            "Another object with the same value for property appId already exists: '{}'",
            app.app_id
        )
    };
    match change {
        Change::InsertTenant(_) => "The tenant already exists".to_string(),
        Change::InsertUser(user) | Change::UpdateUser(user) => {
            if detail.contains("upn") || detail.contains("user_principal_name") {
                user_upn(user)
            } else {
                format!("A user with id '{}' already exists", user.id)
            }
        }
        Change::InsertGroup(group) | Change::UpdateGroup(group) => {
            format!("A group with id '{}' already exists", group.id)
        }
        Change::AddMember {
            group_id,
            member_id,
            ..
        } => format!("'{member_id}' is already a member of group '{group_id}'"),
        Change::InsertRoleAssignment(assignment) => {
            if detail.contains("principal") {
                format!(
                    "Principal '{}' already holds role '{}' at scope '{}'",
                    assignment.principal_id,
                    assignment.role_definition_id,
                    assignment.directory_scope_id
                )
            } else {
                format!(
                    "A role assignment with id '{}' already exists",
                    assignment.id
                )
            }
        }
        Change::RestoreUser(user_id) => format!(
            "Another live user has the same userPrincipalName as deleted user '{user_id}'; \
             rename or delete that user first"
        ),
        Change::InsertApplication(app) | Change::UpdateApplication(app) => {
            if detail.contains("identifier_uris") {
                format!(
                    "Another object with the same value for property identifierUris already exists: one of {:?}",
                    app.access.identifier_uris
                )
            } else if detail.contains("app_id") {
                app_id(app)
            } else if detail.contains("password_credentials") {
                format!(
                    "Application '{}' has two password credentials with the same keyId",
                    app.id
                )
            } else {
                format!("An application with id '{}' already exists", app.id)
            }
        }
        Change::InsertPasswordCredential {
            application_id,
            credential,
        } => format!(
            "Application '{application_id}' already has a password credential with keyId '{}'",
            credential.key_id
        ),
        Change::InsertDocument(document) | Change::UpdateDocument(document) => format!(
            "A {} with id '{}' already exists",
            document.kind.as_str(),
            document.id
        ),
        Change::InsertSigningKey(key) => {
            format!("A signing key with kid '{}' already exists", key.kid)
        }
        Change::InsertAppRoleAssignment(assignment) => {
            if detail.contains("principal") {
                format!(
                    "Permission being assigned already exists on the object: principal '{}' already holds app role '{}' of '{}'",
                    assignment.principal_id, assignment.app_role_id, assignment.resource_id
                )
            } else {
                format!(
                    "An app role assignment with id '{}' already exists",
                    assignment.id
                )
            }
        }
        other => format!("{} conflicts with an existing object", change_name(other)),
    }
}

/// A change's name for messages that have nothing more specific to say.
fn change_name(change: &Change) -> &'static str {
    match change {
        Change::InsertTenant(_) => "InsertTenant",
        Change::InsertUser(_) => "InsertUser",
        Change::UpdateUser(_) => "UpdateUser",
        Change::DeleteUser(_) => "DeleteUser",
        Change::SoftDeleteUser { .. } => "SoftDeleteUser",
        Change::RestoreUser(_) => "RestoreUser",
        Change::InsertGroup(_) => "InsertGroup",
        Change::UpdateGroup(_) => "UpdateGroup",
        Change::DeleteGroup(_) => "DeleteGroup",
        Change::AddMember { .. } => "AddMember",
        Change::RemoveMember { .. } => "RemoveMember",
        Change::InsertRoleAssignment(_) => "InsertRoleAssignment",
        Change::DeleteRoleAssignment(_) => "DeleteRoleAssignment",
        Change::InsertApplication(_) => "InsertApplication",
        Change::UpdateApplication(_) => "UpdateApplication",
        Change::DeleteApplication(_) => "DeleteApplication",
        Change::InsertAppRoleAssignment(_) => "InsertAppRoleAssignment",
        Change::DeleteAppRoleAssignment(_) => "DeleteAppRoleAssignment",
        Change::InsertPasswordCredential { .. } => "InsertPasswordCredential",
        Change::DeletePasswordCredential { .. } => "DeletePasswordCredential",
        Change::InsertDocument(_) => "InsertDocument",
        Change::UpdateDocument(_) => "UpdateDocument",
        Change::DeleteDocument { .. } => "DeleteDocument",
        Change::EndSignIns { .. } => "EndSignIns",
        Change::ExpectRevisions(_) => "ExpectRevisions",
        Change::MoveMembershipsRevision => "MoveMembershipsRevision",
        Change::InsertSigningKey(_) => "InsertSigningKey",
        Change::RetireSigningKey { .. } => "RetireSigningKey",
        Change::InsertSession(_) => "InsertSession",
        Change::AddSessionMethod { .. } => "AddSessionMethod",
        Change::DeleteSession(_) => "DeleteSession",
        Change::PutTemporaryAccessPass(_) => "PutTemporaryAccessPass",
        Change::DeleteTemporaryAccessPass { .. } => "DeleteTemporaryAccessPass",
        Change::SetPassword { .. } => "SetPassword",
        Change::DeletePassword { .. } => "DeletePassword",
        Change::InsertSoftwareOath(_) => "InsertSoftwareOath",
        Change::DeleteSoftwareOath { .. } => "DeleteSoftwareOath",
        Change::InsertSignInLogEntry(_) => "InsertSignInLogEntry",
        Change::InsertSignInFlow(_) => "InsertSignInFlow",
        Change::AdvanceSignInFlow { .. } => "AdvanceSignInFlow",
        Change::InsertOAuthGrant(_) => "InsertOAuthGrant",
        Change::InsertAuthorizationCode(_) => "InsertAuthorizationCode",
        Change::InsertRefreshToken(_) => "InsertRefreshToken",
        Change::RevokeOAuthGrant { .. } => "RevokeOAuthGrant",
        Change::RevokeSessionGrants { .. } => "RevokeSessionGrants",
        Change::TakeCeremony(_) => "TakeCeremony",
        Change::TakeAuthorizationCode { .. } => "TakeAuthorizationCode",
        Change::RecordPasskeyUse(_) => "RecordPasskeyUse",
    }
}

/// Runs one statement of `change`, mapping constraint violations in the change's terms.
pub(crate) async fn run(conn: &mut Conn<'_>, change: &Change, query: Query) -> Result<u64, Error> {
    match conn.execute(query).await {
        Ok(done) => Ok(done),
        Err(err) => Err(match error::classify(err) {
            Ok(found) => violation(change, found),
            Err(other) => other,
        }),
    }
}

/// Fails with 404 when an update or delete matched no row.
fn require_row(done: u64, resource: &'static str, key: impl Into<String>) -> Result<(), Error> {
    if done == 0 {
        Err(Error::not_found(resource, key))
    } else {
        Ok(())
    }
}

/// Applies one change; `body` is its large column's JSON when already made.
async fn apply(conn: &mut Conn<'_>, change: &Change, body: Option<String>) -> Result<(), Error> {
    match change {
        Change::InsertSession(_)
        | Change::AddSessionMethod { .. }
        | Change::DeleteSession(_)
        | Change::PutTemporaryAccessPass(_)
        | Change::DeleteTemporaryAccessPass { .. }
        | Change::SetPassword { .. }
        | Change::DeletePassword { .. }
        | Change::InsertSoftwareOath(_)
        | Change::DeleteSoftwareOath { .. }
        | Change::InsertSignInFlow(_)
        | Change::AdvanceSignInFlow { .. } => {
            return crate::sessions::apply(conn, change, body).await;
        }
        Change::InsertOAuthGrant(_)
        | Change::InsertAuthorizationCode(_)
        | Change::TakeAuthorizationCode { .. }
        | Change::InsertRefreshToken(_)
        | Change::RevokeOAuthGrant { .. }
        | Change::RevokeSessionGrants { .. }
        | Change::EndSignIns { .. } => {
            return crate::oidc::apply(conn, change, body).await;
        }
        // Checked by `commit` once the list has been applied.
        Change::ExpectRevisions(_) => {}
        // Moved by `commit` with the other membership changes.
        Change::MoveMembershipsRevision => {}
        // Run by `commit` from the statement made before it was queued (`sign_ins.rs`).
        Change::InsertSignInLogEntry(_) => {}
        Change::TakeCeremony(_) | Change::RecordPasskeyUse(_) => {
            return crate::passkeys::apply(conn, change).await;
        }
        Change::InsertTenant(tenant) => {
            let query =
                db::query("INSERT INTO tenant (id, display_name, created) VALUES ($1, $2, $3)")
                    .bind(id(tenant.id))
                    .bind(tenant.display_name.clone())
                    .bind(unix_millis(tenant.created_date_time));
            run(conn, change, query).await?;
        }
        Change::InsertUser(user) => {
            let query = db::query(
                "INSERT INTO users (id, user_principal_name, display_name, mail, \
                 account_enabled, user_type, created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            );
            let query = bind_user(query, user).bind(unix_millis(user.created_date_time));
            run(conn, change, query).await?;
        }
        Change::UpdateUser(user) => {
            // `created` is set once, at insert.
            let query = db::query(
                "UPDATE users SET user_principal_name = $2, display_name = $3, mail = $4, \
                 account_enabled = $5, user_type = $6 WHERE id = $1",
            );
            let done = run(conn, change, bind_user(query, user)).await?;
            require_row(done, "user", user.id.to_string())?;
        }
        Change::DeleteUser(user_id) => {
            let query = db::query("DELETE FROM users WHERE id = $1").bind(id(*user_id));
            let done = run(conn, change, query).await?;
            require_row(done, "user", user_id.to_string())?;
            remove_principal(conn, change, *user_id).await?;
            set_aside_removed(conn, change, *user_id).await?;
            crate::sessions::remove_user(conn, change, *user_id).await?;
        }
        Change::SoftDeleteUser { user_id, at } => {
            let query =
                db::query("UPDATE users SET deleted = $2 WHERE id = $1 AND deleted IS NULL")
                    .bind(id(*user_id))
                    .bind(unix_millis(*at));
            let done = run(conn, change, query).await?;
            require_row(done, "user", user_id.to_string())?;
            // Set aside before removing: the live tables then hold live principals only.
            for sql in [
                "INSERT INTO deleted_group_members (group_id, member_id, member_kind) \
                 SELECT group_id, member_id, member_kind FROM group_members WHERE member_id = $1",
                "INSERT INTO deleted_role_assignments (id, principal_id, role_definition_id, \
                 directory_scope_id) SELECT id, principal_id, role_definition_id, \
                 directory_scope_id FROM role_assignments WHERE principal_id = $1",
                "INSERT INTO deleted_app_role_assignments (id, resource_id, app_role_id, \
                 principal_id, principal_type, created) SELECT id, resource_id, app_role_id, \
                 principal_id, principal_type, created FROM app_role_assignments \
                 WHERE principal_id = $1",
            ] {
                run(conn, change, db::query(sql).bind(id(*user_id))).await?;
            }
            remove_principal(conn, change, *user_id).await?;
        }
        Change::RestoreUser(user_id) => {
            // A live user with the same userPrincipalName makes this a unique violation
            // (the index covers live users only), reported as a conflict.
            let query =
                db::query("UPDATE users SET deleted = NULL WHERE id = $1 AND deleted IS NOT NULL")
                    .bind(id(*user_id));
            let done = run(conn, change, query).await?;
            require_row(done, "deletedUser", user_id.to_string())?;
            // Back what still has somewhere to go: a group or an application deleted
            // meanwhile took its memberships and assignments with it. Role definitions are
            // built in and always exist.
            for sql in [
                "INSERT INTO group_members (group_id, member_id, member_kind) \
                 SELECT d.group_id, d.member_id, d.member_kind FROM deleted_group_members d \
                 WHERE d.member_id = $1 AND EXISTS (SELECT 1 FROM groups g WHERE g.id = d.group_id)",
                "INSERT INTO role_assignments (id, principal_id, role_definition_id, \
                 directory_scope_id) SELECT id, principal_id, role_definition_id, \
                 directory_scope_id FROM deleted_role_assignments WHERE principal_id = $1",
                "INSERT INTO app_role_assignments (id, resource_id, app_role_id, principal_id, \
                 principal_type, created) SELECT d.id, d.resource_id, d.app_role_id, \
                 d.principal_id, d.principal_type, d.created FROM deleted_app_role_assignments d \
                 WHERE d.principal_id = $1 \
                 AND EXISTS (SELECT 1 FROM applications a WHERE a.id = d.resource_id)",
            ] {
                run(conn, change, db::query(sql).bind(id(*user_id))).await?;
            }
            set_aside_removed(conn, change, *user_id).await?;
        }
        Change::InsertGroup(group) => {
            let query = db::query(
                "INSERT INTO groups (id, display_name, description, mail_nickname, \
                 security_enabled, created, is_assignable_to_role) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            );
            // isAssignableToRole is written here only: no update changes it.
            let query = bind_group(query, group)
                .bind(unix_millis(group.created_date_time))
                .bind(flag(group.is_assignable_to_role));
            run(conn, change, query).await?;
        }
        Change::UpdateGroup(group) => {
            let query = db::query(
                "UPDATE groups SET display_name = $2, description = $3, mail_nickname = $4, \
                 security_enabled = $5 WHERE id = $1",
            );
            let done = run(conn, change, bind_group(query, group)).await?;
            require_row(done, "group", group.id.to_string())?;
        }
        Change::DeleteGroup(group_id) => {
            // Its own member list first: the foreign key from group_members to groups would
            // refuse the group's deletion while rows still point at it.
            let query =
                db::query("DELETE FROM group_members WHERE group_id = $1").bind(id(*group_id));
            run(conn, change, query).await?;
            let query = db::query("DELETE FROM groups WHERE id = $1").bind(id(*group_id));
            let done = run(conn, change, query).await?;
            require_row(done, "group", group_id.to_string())?;
            remove_principal(conn, change, *group_id).await?;
        }
        Change::AddMember {
            group_id,
            member_id,
            member_kind,
        } => {
            let query = db::query(
                "INSERT INTO group_members (group_id, member_id, member_kind) VALUES ($1, $2, $3)",
            )
            .bind(id(*group_id))
            .bind(id(*member_id))
            .bind(member_kind.as_str());
            run(conn, change, query).await?;
        }
        Change::RemoveMember {
            group_id,
            member_id,
        } => {
            let query =
                db::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
                    .bind(id(*group_id))
                    .bind(id(*member_id));
            let done = run(conn, change, query).await?;
            require_row(done, "member", format!("{group_id}/members/{member_id}"))?;
        }
        Change::InsertRoleAssignment(assignment) => {
            let query = db::query(
                "INSERT INTO role_assignments (id, principal_id, role_definition_id, \
                 directory_scope_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(id(assignment.id))
            .bind(id(assignment.principal_id))
            .bind(id(assignment.role_definition_id))
            .bind(assignment.directory_scope_id.clone());
            run(conn, change, query).await?;
        }
        Change::DeleteRoleAssignment(assignment_id) => {
            let query =
                db::query("DELETE FROM role_assignments WHERE id = $1").bind(id(*assignment_id));
            let done = run(conn, change, query).await?;
            require_row(done, "roleAssignment", assignment_id.to_string())?;
        }
        Change::InsertApplication(app) => {
            let query = db::query(
                "INSERT INTO applications (id, app_id, display_name, is_fallback_public_client, \
                 web_redirect_uris, public_client_redirect_uris, spa_redirect_uris, \
                 api_permissions, access, id_token_signed_response_alg, created, \
                 bootstrap_automation) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            );
            // The automation marker is written here only: no update changes it.
            let query = bind_application(query, app)?
                .bind(unix_millis(app.created_date_time))
                .bind(flag(app.bootstrap_automation));
            run(conn, change, query).await?;
            for credential in &app.password_credentials {
                insert_credential(conn, change, app.id, credential).await?;
            }
            insert_identifier_uris(conn, change, app).await?;
        }
        Change::UpdateApplication(app) => {
            let query = db::query(
                "UPDATE applications SET app_id = $2, display_name = $3, \
                 is_fallback_public_client = $4, web_redirect_uris = $5, \
                 public_client_redirect_uris = $6, spa_redirect_uris = $7, \
                 api_permissions = $8, access = $9, id_token_signed_response_alg = $10 \
                 WHERE id = $1",
            );
            let done = run(conn, change, bind_application(query, app)?).await?;
            require_row(done, "application", app.id.to_string())?;
            let query =
                db::query("DELETE FROM application_identifier_uris WHERE application_id = $1")
                    .bind(id(app.id));
            run(conn, change, query).await?;
            insert_identifier_uris(conn, change, app).await?;
        }
        Change::DeleteApplication(app_id) => {
            for sql in [
                "DELETE FROM password_credentials WHERE application_id = $1",
                "DELETE FROM application_identifier_uris WHERE application_id = $1",
                "DELETE FROM app_role_assignments WHERE resource_id = $1",
            ] {
                run(conn, change, db::query(sql).bind(id(*app_id))).await?;
            }
            let query = db::query("DELETE FROM applications WHERE id = $1").bind(id(*app_id));
            let done = run(conn, change, query).await?;
            require_row(done, "application", app_id.to_string())?;
            remove_principal(conn, change, *app_id).await?;
        }
        Change::InsertPasswordCredential {
            application_id,
            credential,
        } => insert_credential(conn, change, *application_id, credential).await?,
        Change::InsertAppRoleAssignment(assignment) => {
            let query = db::query(
                "INSERT INTO app_role_assignments (id, resource_id, app_role_id, principal_id, \
                 principal_type, created) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id(assignment.id))
            .bind(id(assignment.resource_id))
            .bind(id(assignment.app_role_id))
            .bind(id(assignment.principal_id))
            .bind(assignment.principal_type.as_str())
            .bind(unix_millis(assignment.created_date_time));
            run(conn, change, query).await?;
        }
        Change::DeleteAppRoleAssignment(assignment_id) => {
            let query = db::query("DELETE FROM app_role_assignments WHERE id = $1")
                .bind(id(*assignment_id));
            let done = run(conn, change, query).await?;
            require_row(done, "appRoleAssignment", assignment_id.to_string())?;
        }
        Change::DeletePasswordCredential {
            application_id,
            key_id,
        } => {
            let query = db::query(
                "DELETE FROM password_credentials WHERE application_id = $1 AND key_id = $2",
            )
            .bind(id(*application_id))
            .bind(id(*key_id));
            let done = run(conn, change, query).await?;
            require_row(done, "passwordCredential", key_id.to_string())?;
        }
        Change::InsertDocument(document) => {
            let query = db::query(
                "INSERT INTO policy_documents (kind, id, display_name, body, created, modified) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(document.kind.as_str())
            .bind(document.id.clone())
            .bind(document.display_name.clone())
            .bind(to_json(&document.body)?)
            .bind(unix_millis(document.created))
            .bind(unix_millis(document.modified));
            run(conn, change, query).await?;
        }
        Change::UpdateDocument(document) => {
            // `created` is set once, at insert.
            let query = db::query(
                "UPDATE policy_documents SET display_name = $3, body = $4, modified = $5 \
                 WHERE kind = $1 AND id = $2",
            )
            .bind(document.kind.as_str())
            .bind(document.id.clone())
            .bind(document.display_name.clone())
            .bind(to_json(&document.body)?)
            .bind(unix_millis(document.modified));
            let done = run(conn, change, query).await?;
            require_row(done, document.kind.as_str(), document.id.clone())?;
        }
        Change::DeleteDocument { kind, id: doc_id } => {
            let query = db::query("DELETE FROM policy_documents WHERE kind = $1 AND id = $2")
                .bind(kind.as_str())
                .bind(doc_id.clone());
            let done = run(conn, change, query).await?;
            require_row(done, kind.as_str(), doc_id.clone())?;
        }
        Change::InsertSigningKey(key) => {
            let query = db::query(
                "INSERT INTO signing_keys (kid, algorithm, sealed_private_key, public_jwk, \
                 created, retired, activates) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(key.kid.clone())
            .bind(key.algorithm.as_str())
            .bind(key.sealed_private_key.clone())
            .bind(key.public_jwk.clone())
            .bind(unix_millis(key.created))
            .bind(key.retired.map(unix_millis))
            .bind(key.activates.map(unix_millis));
            run(conn, change, query).await?;
        }
        Change::RetireSigningKey { kid, at } => {
            let query = db::query("UPDATE signing_keys SET retired = $2 WHERE kid = $1")
                .bind(kid.clone())
                .bind(unix_millis(*at));
            let done = run(conn, change, query).await?;
            require_row(done, "signingKey", kid.clone())?;
        }
    }
    Ok(())
}

/// Binds a user's columns but `created` as $1..$6, in the order of `rows::user_columns!`;
/// inserts bind `created` after them, updates leave it alone.
fn bind_user(query: Query, user: &User) -> Query {
    query
        .bind(id(user.id))
        .bind(user.user_principal_name.clone())
        .bind(user.display_name.clone())
        .bind(user.mail.clone())
        .bind(flag(user.account_enabled))
        .bind(user.user_type.as_str())
}

/// Binds a group's columns but `created` as $1..$5, in the order of `rows::group_columns!`.
fn bind_group(query: Query, group: &Group) -> Query {
    query
        .bind(id(group.id))
        .bind(group.display_name.clone())
        .bind(group.description.clone())
        .bind(group.mail_nickname.clone())
        .bind(flag(group.security_enabled))
}

/// Binds an application's own columns but `created` and the automation marker as $1..$10:
/// those of `rows::application_columns!` before `created`, then `access` and the ID token's
/// signing algorithm.
fn bind_application(query: Query, app: &Application) -> Result<Query, Error> {
    Ok(query
        .bind(id(app.id))
        .bind(id(app.app_id))
        .bind(app.display_name.clone())
        .bind(flag(app.is_fallback_public_client))
        .bind(to_json(&app.web.redirect_uris)?)
        .bind(to_json(&app.public_client.redirect_uris)?)
        .bind(to_json(&app.spa.redirect_uris)?)
        .bind(to_json(&app.api_permissions)?)
        .bind(to_json(&app.access)?)
        .bind(app.id_token_signed_response_alg.as_str()))
}

/// Claims the application's identifier URIs (lower-cased): one that another application
/// holds is a conflict.
async fn insert_identifier_uris(
    conn: &mut Conn<'_>,
    change: &Change,
    app: &Application,
) -> Result<(), Error> {
    for uri in &app.access.identifier_uris {
        let query = db::query(
            "INSERT INTO application_identifier_uris (uri, application_id) VALUES ($1, $2)",
        )
        .bind(uri.to_lowercase())
        .bind(id(app.id));
        run(conn, change, query).await?;
    }
    Ok(())
}

async fn insert_credential(
    conn: &mut Conn<'_>,
    change: &Change,
    application_id: Uuid,
    credential: &PasswordCredential,
) -> Result<(), Error> {
    let query = db::query(
        "INSERT INTO password_credentials (application_id, key_id, display_name, hint, \
         start_date_time, end_date_time, secret_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id(application_id))
    .bind(id(credential.key_id))
    .bind(credential.display_name.clone())
    .bind(credential.hint.clone())
    .bind(unix_millis(credential.start_date_time))
    .bind(unix_millis(credential.end_date_time))
    .bind(credential.secret_hash.clone());
    run(conn, change, query).await?;
    Ok(())
}

/// Removes what pointed at a deleted user, group or application: its memberships in groups and
/// its role assignments, so that no row names an object that no longer exists.
async fn remove_principal(
    conn: &mut Conn<'_>,
    change: &Change,
    principal_id: Uuid,
) -> Result<(), Error> {
    let query = db::query("DELETE FROM group_members WHERE member_id = $1").bind(id(principal_id));
    run(conn, change, query).await?;
    let query =
        db::query("DELETE FROM role_assignments WHERE principal_id = $1").bind(id(principal_id));
    run(conn, change, query).await?;
    let query = db::query("DELETE FROM app_role_assignments WHERE principal_id = $1")
        .bind(id(principal_id));
    run(conn, change, query).await?;
    Ok(())
}

/// Forgets what was set aside for a deleted user's restore.
async fn set_aside_removed(
    conn: &mut Conn<'_>,
    change: &Change,
    user_id: Uuid,
) -> Result<(), Error> {
    for sql in [
        "DELETE FROM deleted_group_members WHERE member_id = $1",
        "DELETE FROM deleted_role_assignments WHERE principal_id = $1",
        "DELETE FROM deleted_app_role_assignments WHERE principal_id = $1",
    ] {
        run(conn, change, db::query(sql).bind(id(user_id))).await?;
    }
    Ok(())
}

/// `body`: the entry's JSON when already made.
pub(crate) async fn insert_audit(
    conn: &mut Conn<'_>,
    audit: &DirectoryAudit,
    body: Option<String>,
) -> Result<(), Error> {
    let query = db::query(
        "INSERT INTO directory_audits (id, activity_date_time, category, activity_display_name, \
         result, correlation_id, initiated_by_id, operation_type, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id(audit.id))
    .bind(unix_millis(audit.activity_date_time))
    .bind(audit.category.clone())
    .bind(audit.activity_display_name.clone())
    .bind(audit.result.clone())
    .bind(id(audit.correlation_id))
    .bind(audit.initiated_by.initiator_id())
    .bind(audit.operation_type.clone())
    .bind(json_or(body, audit)?);
    match conn.execute(query).await {
        Ok(_) => insert_audit_targets(conn, audit).await,
        Err(err) => Err(match error::classify(err) {
            Ok(Violation::Unique { .. }) => Error::conflict(format!(
                "A directory audit with id '{}' already exists",
                audit.id
            )),
            Ok(Violation::ForeignKey) => {
                Error::Internal("unexpected foreign key violation writing an audit".to_string())
            }
            Err(other) => other,
        }),
    }
}

/// The ids the entry is about (migration 0020), once each and lowercased, as the filter on
/// `targetResources/any(t: t/id eq …)` compares them: one statement whatever their number.
async fn insert_audit_targets(conn: &mut Conn<'_>, audit: &DirectoryAudit) -> Result<(), Error> {
    let mut ids: Vec<String> = audit
        .target_resources
        .iter()
        .map(|target| target.id.trim().to_lowercase())
        .filter(|target| !target.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..ids.len())
        .map(|n| format!("($1, $2, ${})", n + 3))
        .collect();
    let mut query = db::assembled(format!(
        "INSERT INTO directory_audit_targets (audit_id, activity_date_time, target_id) VALUES {}",
        rows.join(", ")
    ))
    .bind(id(audit.id))
    .bind(unix_millis(audit.activity_date_time));
    for target in ids {
        query = query.bind(target);
    }
    conn.execute(query)
        .await
        .map_err(|err| match error::classify(err) {
            Ok(Violation::Unique { detail }) => Error::Internal(format!(
                "could not index an audit entry's targets: {detail}"
            )),
            Ok(Violation::ForeignKey) => Error::Internal(
                "could not index an audit entry's targets: no such entry".to_string(),
            ),
            Err(other) => other,
        })?;
    Ok(())
}
