//! The storage traits implemented: one `impl` per capability: reads here, writes delegated to `write.rs`.

use std::collections::HashMap;

use async_trait::async_trait;
use portcullis_core::Result;
use portcullis_core::directory::audit::DirectoryAudit;
use portcullis_core::directory::model::{
    AppRoleAssignment, Application, DeletedUser, DocumentKind, Group, MemberRef, PolicyDocument,
    RoleAssignment, SigningKey, Tenant, User,
};
use portcullis_core::directory::store::{Commit, DirectoryStore, Revisions};
use portcullis_core::kernel::clock::unix_millis;
use portcullis_core::kernel::query::{ListQuery, Order, Page};
use portcullis_core::kernel::split_token::TokenKey;
use portcullis_core::logs::store::LogStore;
use portcullis_core::methods::store::MethodStore;
use portcullis_core::oidc::store::OidcStore;
use portcullis_core::session::store::SessionStore;
use portcullis_core::signin::store::SignInStore;
use portcullis_core::store::{Change, Flatten, Store};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{self, Row};

use crate::rows::{
    self, credential_columns, deleted_user_columns, document_columns, group_columns,
    role_assignment_columns, signing_key_columns, user_columns,
};
use crate::{SqlStore, list, write};

fn id(value: Uuid) -> String {
    value.hyphenated().to_string()
}

fn decode_all<T>(found: Vec<Row>, decode: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    found.iter().map(decode).collect()
}

/// Members of a set of groups with their names. `{groups}` is replaced by a subquery that
/// yields group ids; it binds `$1` only. Members are listed by name (case-insensitively), then
/// id, so the order is the same on both databases.
macro_rules! members_query {
    ($groups:literal) => {
        concat!(
            "SELECT member_id, member_kind, display_name, user_principal_name FROM (",
            "SELECT DISTINCT m.member_id, m.member_kind, ",
            "COALESCE(u.display_name, g.display_name, a.display_name, '') AS display_name, ",
            "u.user_principal_name ",
            "FROM group_members m ",
            "LEFT JOIN users u ON m.member_kind = 'user' AND u.id = m.member_id ",
            "LEFT JOIN groups g ON m.member_kind = 'group' AND g.id = m.member_id ",
            "LEFT JOIN applications a ON m.member_kind = 'servicePrincipal' AND a.id = m.member_id ",
            "WHERE m.group_id IN (",
            $groups,
            ") AND m.member_id <> $1",
            ") found ORDER BY lower(display_name), member_id"
        )
    };
}

impl SqlStore {
    /// Attaches password credentials to applications read without them, in one query.
    async fn with_credentials(&self, mut apps: Vec<Application>) -> Result<Vec<Application>> {
        if apps.is_empty() {
            return Ok(apps);
        }
        // The placeholders are generated, the ids bound.
        let placeholders: Vec<String> = (1..=apps.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            concat!(
                "SELECT ",
                credential_columns!(),
                " FROM password_credentials WHERE application_id IN ({}) ",
                "ORDER BY start_date_time, key_id"
            ),
            placeholders.join(", ")
        );
        let mut query = db::assembled(sql);
        for app in &apps {
            query = query.bind(id(app.id));
        }
        let found = self.fetch_all(query).await?;
        let mut by_app: HashMap<Uuid, Vec<_>> = HashMap::new();
        for row in &found {
            let (app_id, credential) = rows::credential(row)?;
            by_app.entry(app_id).or_default().push(credential);
        }
        for app in &mut apps {
            app.password_credentials = by_app.remove(&app.id).unwrap_or_default();
        }
        Ok(apps)
    }

    /// One application and its credentials in one statement (it is read on every
    /// authorization request and token exchange): a row per credential, or one row of NULL
    /// credential columns. `key` is `id` or `app_id`.
    async fn one_application(&self, key: Uuid, by_app_id: bool) -> Result<Option<Application>> {
        macro_rules! joined {
            ($key:literal) => {
                concat!(
                    "SELECT a.id, a.app_id, a.display_name, a.is_fallback_public_client, ",
                    "a.web_redirect_uris, a.public_client_redirect_uris, a.spa_redirect_uris, ",
                    "a.api_permissions, a.created, a.bootstrap_automation, a.access, ",
                    "a.id_token_signed_response_alg, ",
                    "c.key_id AS credential_key_id, ",
                    "c.display_name AS credential_display_name, c.hint AS credential_hint, ",
                    "c.start_date_time AS credential_start, c.end_date_time AS credential_end, ",
                    "c.secret_hash AS credential_secret_hash ",
                    "FROM applications a ",
                    "LEFT JOIN password_credentials c ON c.application_id = a.id ",
                    "WHERE a.",
                    $key,
                    " = $1 ORDER BY c.start_date_time, c.key_id"
                )
            };
        }
        let sql = if by_app_id {
            joined!("app_id")
        } else {
            joined!("id")
        };
        let found = self.fetch_all(db::query(sql).bind(id(key))).await?;
        let Some(first) = found.first() else {
            return Ok(None);
        };
        let mut app = rows::application(first)?;
        for row in &found {
            if let Some(credential) = rows::joined_credential(row)? {
                app.password_credentials.push(credential);
            }
        }
        Ok(Some(app))
    }
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn tenant(&self) -> Result<Option<Tenant>> {
        self.fetch_optional(db::query("SELECT id, display_name, created FROM tenant"))
            .await?
            .as_ref()
            .map(rows::tenant)
            .transpose()
    }

    async fn user(&self, user_id: Uuid) -> Result<Option<User>> {
        self.fetch_optional(
            db::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE id = $1 AND deleted IS NULL"
            ))
            .bind(id(user_id)),
        )
        .await?
        .as_ref()
        .map(rows::user)
        .transpose()
    }

    async fn user_by_upn(&self, upn: &str) -> Result<Option<User>> {
        // The same expression as the unique index, so the lookup uses it on both databases.
        self.fetch_optional(
            db::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE lower(user_principal_name) = lower($1) AND deleted IS NULL"
            ))
            .bind(upn.to_string()),
        )
        .await?
        .as_ref()
        .map(rows::user)
        .transpose()
    }

    async fn list_users(&self, query: &ListQuery) -> Result<Page<User>> {
        self.list_users_in_order(query, None).await
    }

    async fn list_users_in_order(
        &self,
        query: &ListQuery,
        order: Option<Order>,
    ) -> Result<Page<User>> {
        let (found, next) = list::ordered_page(self, &list::USERS, query, order).await?;
        let count = list::count(self, &list::USERS, query).await?;
        Ok(Page {
            items: decode_all(found, rows::user)?,
            next,
            count,
        })
    }

    async fn users_by_mail(&self, mail: &str) -> Result<Vec<User>> {
        let found = self
            .fetch_all(
                db::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE lower(mail) = lower($1) AND deleted IS NULL ",
                    "ORDER BY created, id"
                ))
                .bind(mail.to_string()),
            )
            .await?;
        decode_all(found, rows::user)
    }

    async fn deleted_user(&self, user_id: Uuid) -> Result<Option<DeletedUser>> {
        self.fetch_optional(
            db::query(concat!(
                "SELECT ",
                deleted_user_columns!(),
                " FROM users WHERE id = $1 AND deleted IS NOT NULL"
            ))
            .bind(id(user_id)),
        )
        .await?
        .as_ref()
        .map(rows::deleted_user)
        .transpose()
    }

    async fn list_deleted_users(&self, query: &ListQuery) -> Result<Page<DeletedUser>> {
        let (found, next) = list::page(self, &list::DELETED_USERS, query).await?;
        let count = list::count(self, &list::DELETED_USERS, query).await?;
        Ok(Page {
            items: decode_all(found, rows::deleted_user)?,
            next,
            count,
        })
    }

    async fn deleted_users_before(&self, cutoff: OffsetDateTime, limit: u32) -> Result<Vec<Uuid>> {
        let found = self
            .fetch_all(
                db::query(
                    "SELECT id FROM users WHERE deleted IS NOT NULL AND deleted <= $1 \
                     ORDER BY deleted, id LIMIT $2",
                )
                .bind(unix_millis(cutoff))
                .bind(i64::from(limit)),
            )
            .await?;
        found.iter().map(|row| rows::uuid(row, "id")).collect()
    }

    async fn deleted_user_role_definitions(&self, user_id: Uuid) -> Result<Vec<Uuid>> {
        // What a restore puts back: the assignments set aside with the user, and those of the
        // groups whose memberships were set aside (and of every group those are nested in),
        // as `role_definitions_held` walks them for a live user.
        let found = self
            .fetch_all(
                db::query(concat!(
                    "WITH RECURSIVE containing (id) AS (",
                    "SELECT d.group_id FROM deleted_group_members d ",
                    "JOIN groups g ON g.id = d.group_id WHERE d.member_id = $1 ",
                    "UNION ",
                    "SELECT m.group_id FROM group_members m JOIN containing c ON m.member_id = c.id",
                    ") ",
                    "SELECT role_definition_id FROM deleted_role_assignments ",
                    "WHERE principal_id = $1 ",
                    "UNION ",
                    "SELECT role_definition_id FROM role_assignments ",
                    "WHERE principal_id IN (SELECT id FROM containing) ",
                    "ORDER BY role_definition_id"
                ))
                .bind(id(user_id)),
            )
            .await?;
        found
            .iter()
            .map(|row| rows::uuid(row, "role_definition_id"))
            .collect()
    }

    async fn group(&self, group_id: Uuid) -> Result<Option<Group>> {
        self.fetch_optional(
            db::query(concat!(
                "SELECT ",
                group_columns!(),
                " FROM groups WHERE id = $1"
            ))
            .bind(id(group_id)),
        )
        .await?
        .as_ref()
        .map(rows::group)
        .transpose()
    }

    async fn list_groups(&self, query: &ListQuery) -> Result<Page<Group>> {
        let (found, next) = list::page(self, &list::GROUPS, query).await?;
        let count = list::count(self, &list::GROUPS, query).await?;
        Ok(Page {
            items: decode_all(found, rows::group)?,
            next,
            count,
        })
    }

    async fn members(&self, group_id: Uuid) -> Result<Vec<MemberRef>> {
        let found = self
            .fetch_all(db::query(members_query!("SELECT $1")).bind(id(group_id)))
            .await?;
        decode_all(found, rows::member)
    }

    async fn transitive_members(&self, group_id: Uuid) -> Result<Vec<MemberRef>> {
        // `nested` is the group and every group reachable below it. UNION (not UNION ALL)
        // drops ids already found, so a cycle of groups ends instead of recursing forever.
        // The group itself is not its own member, even when a cycle leads back to it.
        let found = self
            .fetch_all(
                db::query(concat!(
                    "WITH RECURSIVE nested (id) AS (",
                    "SELECT CAST($1 AS TEXT) ",
                    "UNION ",
                    "SELECT m.member_id FROM group_members m JOIN nested n ON m.group_id = n.id ",
                    "WHERE m.member_kind = 'group'",
                    ") ",
                    members_query!("SELECT id FROM nested")
                ))
                .bind(id(group_id)),
            )
            .await?;
        decode_all(found, rows::member)
    }

    async fn member_of(&self, object_id: Uuid) -> Result<Vec<Group>> {
        let found = self.fetch_all(db::query(concat!(
            "SELECT ",
            group_columns!(),
            " FROM groups WHERE id IN (SELECT group_id FROM group_members WHERE member_id = $1) ",
            "ORDER BY lower(display_name), id"
        ))
        .bind(id(object_id))).await?;
        decode_all(found, rows::group)
    }

    async fn transitive_member_of(&self, object_id: Uuid) -> Result<Vec<Group>> {
        // Upwards from the object: the groups that hold it, then the groups that hold those.
        // UNION ends cycles as in `transitive_members`.
        let found = self.fetch_all(db::query(concat!(
            "WITH RECURSIVE containing (id) AS (",
            "SELECT group_id FROM group_members WHERE member_id = $1 ",
            "UNION ",
            "SELECT m.group_id FROM group_members m JOIN containing c ON m.member_id = c.id",
            ") ",
            "SELECT ",
            group_columns!(),
            " FROM groups WHERE id IN (SELECT id FROM containing) AND id <> $1 ",
            "ORDER BY lower(display_name), id"
        ))
        .bind(id(object_id))).await?;
        decode_all(found, rows::group)
    }

    async fn role_assignment(&self, assignment_id: Uuid) -> Result<Option<RoleAssignment>> {
        self.fetch_optional(
            db::query(concat!(
                "SELECT ",
                role_assignment_columns!(),
                " FROM role_assignments WHERE id = $1"
            ))
            .bind(id(assignment_id)),
        )
        .await?
        .as_ref()
        .map(rows::role_assignment)
        .transpose()
    }

    async fn role_definitions_held(&self, user_id: Uuid) -> Result<Vec<Uuid>> {
        // The same upward walk as `transitive_member_of`, joined to the assignments.
        let found = self.fetch_all(db::query(concat!(
            "WITH RECURSIVE containing (id) AS (",
            "SELECT group_id FROM group_members WHERE member_id = $1 ",
            "UNION ",
            "SELECT m.group_id FROM group_members m JOIN containing c ON m.member_id = c.id",
            ") ",
            "SELECT DISTINCT role_definition_id FROM role_assignments ",
            "WHERE principal_id = $1 OR principal_id IN (SELECT id FROM containing) ",
            "ORDER BY role_definition_id"
        ))
        .bind(id(user_id))).await?;
        found
            .iter()
            .map(|row| rows::uuid(row, "role_definition_id"))
            .collect()
    }

    async fn role_assignments(&self, principal_id: Option<Uuid>) -> Result<Vec<RoleAssignment>> {
        let found = match principal_id {
            Some(principal_id) => {
                self.fetch_all(
                    db::query(concat!(
                        "SELECT ",
                        role_assignment_columns!(),
                        " FROM role_assignments WHERE principal_id = $1 ",
                        "ORDER BY role_definition_id, directory_scope_id, id"
                    ))
                    .bind(id(principal_id)),
                )
                .await
            }
            None => {
                self.fetch_all(db::query(concat!(
                    "SELECT ",
                    role_assignment_columns!(),
                    " FROM role_assignments ",
                    "ORDER BY principal_id, role_definition_id, directory_scope_id, id"
                )))
                .await
            }
        }?;
        decode_all(found, rows::role_assignment)
    }

    async fn application(&self, app_object_id: Uuid) -> Result<Option<Application>> {
        self.one_application(app_object_id, false).await
    }

    async fn application_by_app_id(&self, app_id: Uuid) -> Result<Option<Application>> {
        self.one_application(app_id, true).await
    }

    async fn list_applications(&self, query: &ListQuery) -> Result<Page<Application>> {
        let (found, next) = list::page(self, &list::APPLICATIONS, query).await?;
        let count = list::count(self, &list::APPLICATIONS, query).await?;
        let apps = decode_all(found, rows::application)?;
        Ok(Page {
            items: self.with_credentials(apps).await?,
            next,
            count,
        })
    }

    async fn application_by_identifier_uri(&self, uri: &str) -> Result<Option<Application>> {
        let found = self
            .fetch_all(
                db::query("SELECT application_id FROM application_identifier_uris WHERE uri = $1")
                    .bind(uri.to_lowercase()),
            )
            .await?;
        match found.first() {
            Some(row) => {
                self.one_application(rows::uuid(row, "application_id")?, false)
                    .await
            }
            None => Ok(None),
        }
    }

    async fn app_role_assignments(&self, resource_id: Uuid) -> Result<Vec<AppRoleAssignment>> {
        let found = self
            .fetch_all(
                db::query(concat!(
                    "SELECT r.id, r.app_role_id, r.principal_id, r.principal_type, ",
                    "r.resource_id, r.created, a.display_name AS resource_display_name, ",
                    "COALESCE(u.display_name, g.display_name, p.display_name, '') ",
                    "AS principal_display_name ",
                    "FROM app_role_assignments r ",
                    "JOIN applications a ON a.id = r.resource_id ",
                    "LEFT JOIN users u ON r.principal_type = 'User' AND u.id = r.principal_id ",
                    "LEFT JOIN groups g ON r.principal_type = 'Group' AND g.id = r.principal_id ",
                    "LEFT JOIN applications p ON r.principal_type = 'ServicePrincipal' ",
                    "AND p.id = r.principal_id ",
                    "WHERE r.resource_id = $1 ORDER BY r.created, r.id"
                ))
                .bind(id(resource_id)),
            )
            .await?;
        decode_all(found, rows::app_role_assignment)
    }

    async fn revisions(&self) -> Result<Option<Revisions>> {
        let rows = self
            .fetch_all(
                db::query("SELECT id, body FROM policy_documents WHERE kind = $1")
                    .bind(write::REVISION_KIND),
            )
            .await?;
        // No row yet (nothing changed since this database was made): that too is a revision,
        // and the first change replaces it.
        let mut revisions = Revisions::default();
        for row in &rows {
            let body = rows::text(row, "body")?;
            match rows::text(row, "id")?.as_str() {
                write::DOCUMENTS_REVISION => revisions.documents = body,
                write::MEMBERSHIPS_REVISION => revisions.memberships = body,
                _ => {}
            }
        }
        Ok(Some(revisions))
    }

    async fn document(&self, kind: DocumentKind, doc_id: &str) -> Result<Option<PolicyDocument>> {
        self.fetch_optional(
            db::query(concat!(
                "SELECT ",
                document_columns!(),
                " FROM policy_documents WHERE kind = $1 AND id = $2"
            ))
            .bind(kind.as_str())
            .bind(doc_id.to_string()),
        )
        .await?
        .as_ref()
        .map(rows::document)
        .transpose()
    }

    async fn documents(&self, kind: DocumentKind) -> Result<Vec<PolicyDocument>> {
        let found = self
            .fetch_all(
                db::query(concat!(
                    "SELECT ",
                    document_columns!(),
                    " FROM policy_documents WHERE kind = $1 ORDER BY created, id"
                ))
                .bind(kind.as_str()),
            )
            .await?;
        decode_all(found, rows::document)
    }

    async fn list_audits(&self, query: &ListQuery) -> Result<Page<DirectoryAudit>> {
        let (found, next) = list::page(self, &list::AUDITS, query).await?;
        let count = list::count(self, &list::AUDITS, query).await?;
        Ok(Page {
            items: decode_all(found, rows::audit)?,
            next,
            count,
        })
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn session_by_token(
        &self,
        key: &TokenKey,
    ) -> Result<Option<portcullis_core::session::AuthSession>> {
        self.read_session_by_token(key).await
    }
}

#[async_trait]
impl LogStore for SqlStore {
    async fn list_sign_ins(
        &self,
        query: &ListQuery,
    ) -> Result<Page<portcullis_core::logs::sign_in::SignInLogEntry>> {
        self.sign_in_page(query).await
    }

    async fn logged_decisions(
        &self,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        after: Option<&portcullis_core::kernel::query::Cursor>,
        limit: usize,
    ) -> Result<Vec<portcullis_core::logs::store::LoggedDecision>> {
        self.read_logged_decisions(from, to, after, limit).await
    }

    async fn purge_sign_ins(&self, before: time::OffsetDateTime) -> Result<u64> {
        self.purge_sign_in_log(before).await
    }
}

#[async_trait]
impl MethodStore for SqlStore {
    async fn temporary_access_pass(
        &self,
        user_id: Uuid,
    ) -> Result<Option<portcullis_core::methods::tap::TemporaryAccessPass>> {
        self.read_temporary_access_pass(user_id).await
    }

    async fn consume_temporary_access_pass(
        &self,
        id: Uuid,
        at: time::OffsetDateTime,
    ) -> Result<bool> {
        self.consume_pass(id, at).await
    }

    async fn take_failure_slot(
        &self,
        key: &str,
        at: time::OffsetDateTime,
        rule: &portcullis_core::store::LockRule,
    ) -> Result<portcullis_core::store::SlotTaking> {
        self.take_slot(key, at, rule).await
    }

    async fn return_failure_slot(
        &self,
        key: &str,
        taken: &portcullis_core::store::FailureCount,
    ) -> Result<()> {
        self.return_slot(key, taken).await
    }

    async fn failures(&self, key: &str) -> Result<Option<portcullis_core::store::FailureCount>> {
        self.read_failures(key).await
    }

    async fn clear_failures(&self, key: &str) -> Result<()> {
        self.forget_failures(key).await
    }

    async fn is_familiar_source(&self, user_id: Uuid, source: &str) -> Result<bool> {
        self.read_familiar_source(user_id, source).await
    }

    async fn remember_familiar_source(
        &self,
        user_id: Uuid,
        source: &str,
        at: time::OffsetDateTime,
        keep: u32,
    ) -> Result<()> {
        self.put_familiar_source(user_id, source, at, keep).await
    }

    async fn password(&self, user_id: Uuid) -> Result<Option<(String, time::OffsetDateTime)>> {
        self.read_password(user_id).await
    }

    async fn software_oath_methods(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<portcullis_core::methods::totp::SoftwareOathMethod>> {
        self.read_software_oath(user_id).await
    }

    async fn use_software_oath_step(&self, id: Uuid, step: i64) -> Result<bool> {
        self.advance_oath_step(id, step).await
    }
}

#[async_trait]
impl SignInStore for SqlStore {
    async fn sign_in_flow(&self, id: Uuid) -> Result<Option<portcullis_core::signin::SignInFlow>> {
        self.read_sign_in_flow(id).await
    }

    async fn purge_expired_sign_in_state(&self, now: time::OffsetDateTime) -> Result<u64> {
        self.delete_expired_sign_in_state(now).await
    }
}

#[async_trait]
impl OidcStore for SqlStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        let found = self
            .fetch_all(db::query(concat!(
                "SELECT ",
                signing_key_columns!(),
                " FROM signing_keys ORDER BY created DESC, kid DESC"
            )))
            .await?;
        decode_all(found, rows::signing_key)
    }

    async fn authorization_code(
        &self,
        key: &TokenKey,
    ) -> Result<portcullis_core::kernel::query::Taken<portcullis_core::oidc::AuthorizationCode>>
    {
        self.read_code(key).await
    }

    async fn take_refresh_token(
        &self,
        key: &TokenKey,
        at: time::OffsetDateTime,
    ) -> Result<portcullis_core::kernel::query::Taken<portcullis_core::oidc::store::RefreshToken>>
    {
        self.take_refresh(key, at).await
    }

    async fn refresh_token(
        &self,
        key: &TokenKey,
    ) -> Result<Option<portcullis_core::oidc::store::RefreshToken>> {
        self.read_refresh_token(key).await
    }

    async fn oauth_grant(&self, id: Uuid) -> Result<Option<portcullis_core::oidc::OAuthGrant>> {
        self.read_grant(id).await
    }

    async fn oauth_grant_and_person(
        &self,
        id: Uuid,
    ) -> Result<Option<(portcullis_core::oidc::OAuthGrant, Option<User>)>> {
        self.read_grant_and_person(id).await
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        self.fetch_optional(db::query("SELECT 1 AS one")).await?;
        Ok(())
    }
}

/// Every capability's changes reach the one writer as the flat list the store applies.
#[async_trait]
impl<C: Flatten + Send + 'static> Commit<C> for SqlStore {
    async fn commit(&self, changes: Vec<C>, audit: Option<DirectoryAudit>) -> Result<()> {
        write::commit(self, Change::flatten(changes), audit).await
    }
}
