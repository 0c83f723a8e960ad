//! Column lists and row decoding, one place per table so that every query selecting a type
//! selects the same columns in the same shape.
//!
//! The column lists are macros rather than constants so that `concat!` can build whole query
//! texts at compile time: a fixed text needs no allocation and is prepared once per connection.

use crate::db::Row;
use portcullis_core::Error;
use portcullis_core::directory::audit::DirectoryAudit;
use portcullis_core::directory::model::{
    AppRoleAssignment, Application, AssignedPrincipalType, DeletedUser, DocumentKind, Group,
    MemberRef, ObjectKind, PasswordCredential, PolicyDocument, RedirectUris, RoleAssignment,
    SigningAlgorithm, SigningKey, Tenant, User, UserType,
};
use portcullis_core::kernel::clock::from_unix_millis;
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! user_columns {
    () => {
        "id, user_principal_name, display_name, mail, account_enabled, user_type, created"
    };
}
/// A deleted user's columns: the user's and when it was deleted.
macro_rules! deleted_user_columns {
    () => {
        "id, user_principal_name, display_name, mail, account_enabled, user_type, created, deleted"
    };
}
macro_rules! group_columns {
    () => {
        "id, display_name, description, mail_nickname, security_enabled, is_assignable_to_role, \
         created"
    };
}
macro_rules! application_columns {
    () => {
        "id, app_id, display_name, is_fallback_public_client, web_redirect_uris, \
         public_client_redirect_uris, spa_redirect_uris, api_permissions, created, \
         bootstrap_automation, access, id_token_signed_response_alg"
    };
}
macro_rules! credential_columns {
    () => {
        "application_id, key_id, display_name, hint, start_date_time, end_date_time, secret_hash"
    };
}
macro_rules! role_assignment_columns {
    () => {
        "id, principal_id, role_definition_id, directory_scope_id"
    };
}
macro_rules! document_columns {
    () => {
        "kind, id, display_name, body, created, modified"
    };
}
macro_rules! audit_columns {
    () => {
        "id, activity_date_time, body"
    };
}
macro_rules! signing_key_columns {
    () => {
        "kid, algorithm, sealed_private_key, public_jwk, created, retired, activates"
    };
}
pub(crate) use {
    application_columns, audit_columns, credential_columns, deleted_user_columns, document_columns,
    group_columns, role_assignment_columns, signing_key_columns, user_columns,
};

pub(crate) use crate::db::corrupt;

pub(crate) fn text(row: &Row, column: &str) -> Result<String, Error> {
    row.text(column)
}

pub(crate) fn opt_text(row: &Row, column: &str) -> Result<Option<String>, Error> {
    row.opt_text(column)
}

pub(crate) fn int(row: &Row, column: &str) -> Result<i64, Error> {
    row.int(column)
}

fn flag(row: &Row, column: &str) -> Result<bool, Error> {
    Ok(int(row, column)? != 0)
}

pub(crate) fn instant(row: &Row, column: &str) -> Result<OffsetDateTime, Error> {
    Ok(from_unix_millis(int(row, column)?))
}

pub(crate) fn opt_instant(row: &Row, column: &str) -> Result<Option<OffsetDateTime>, Error> {
    Ok(row.opt_int(column)?.map(from_unix_millis))
}

pub(crate) fn uuid(row: &Row, column: &str) -> Result<Uuid, Error> {
    let value = text(row, column)?;
    Uuid::parse_str(&value).map_err(|e| corrupt(column, e))
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, column: &str) -> Result<T, Error> {
    let value = text(row, column)?;
    serde_json::from_str(&value).map_err(|e| corrupt(column, e))
}

/// JSON text of a value the store writes; serializing plain data cannot fail, but a failure
/// must still be an error, not a panic.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot serialize: {e}")))
}

/// `value`'s JSON text, or the text already made of it before the change reached the writer
/// (see `write::commit`).
pub(crate) fn json_or<T: serde::Serialize>(
    made: Option<String>,
    value: &T,
) -> Result<String, Error> {
    match made {
        Some(text) => Ok(text),
        None => to_json(value),
    }
}

pub(crate) fn tenant(row: &Row) -> Result<Tenant, Error> {
    Ok(Tenant {
        id: uuid(row, "id")?,
        display_name: text(row, "display_name")?,
        created_date_time: instant(row, "created")?,
    })
}

pub(crate) fn user(row: &Row) -> Result<User, Error> {
    let user_type = text(row, "user_type")?;
    Ok(User {
        id: uuid(row, "id")?,
        user_principal_name: text(row, "user_principal_name")?,
        display_name: text(row, "display_name")?,
        mail: opt_text(row, "mail")?,
        account_enabled: flag(row, "account_enabled")?,
        user_type: UserType::parse(&user_type)
            .ok_or_else(|| corrupt("user_type", format!("unknown user type '{user_type}'")))?,
        created_date_time: instant(row, "created")?,
    })
}

pub(crate) fn deleted_user(row: &Row) -> Result<DeletedUser, Error> {
    Ok(DeletedUser {
        user: user(row)?,
        deleted_date_time: instant(row, "deleted")?,
    })
}

/// A person joined to the row of what they own (`LEFT JOIN users u`), read from columns named
/// `owner_upn`, `owner_display_name`, `owner_mail`, `owner_enabled`, `owner_user_type` and
/// `owner_created`; `None` when the join found no person.
pub(crate) fn owner(row: &Row, user_id: Uuid) -> Result<Option<User>, Error> {
    let Some(upn) = opt_text(row, "owner_upn")? else {
        return Ok(None);
    };
    let user_type = text(row, "owner_user_type")?;
    Ok(Some(User {
        id: user_id,
        user_principal_name: upn,
        display_name: text(row, "owner_display_name")?,
        mail: opt_text(row, "owner_mail")?,
        account_enabled: flag(row, "owner_enabled")?,
        user_type: UserType::parse(&user_type).ok_or_else(|| {
            corrupt(
                "owner_user_type",
                format!("unknown user type '{user_type}'"),
            )
        })?,
        created_date_time: instant(row, "owner_created")?,
    }))
}

pub(crate) fn group(row: &Row) -> Result<Group, Error> {
    Ok(Group {
        id: uuid(row, "id")?,
        display_name: text(row, "display_name")?,
        description: opt_text(row, "description")?,
        mail_nickname: opt_text(row, "mail_nickname")?,
        security_enabled: flag(row, "security_enabled")?,
        is_assignable_to_role: flag(row, "is_assignable_to_role")?,
        created_date_time: instant(row, "created")?,
    })
}

/// A member row joined with the member's name (see `read.rs` for the query).
pub(crate) fn member(row: &Row) -> Result<MemberRef, Error> {
    let kind = text(row, "member_kind")?;
    Ok(MemberRef {
        id: uuid(row, "member_id")?,
        kind: ObjectKind::parse(&kind)
            .ok_or_else(|| corrupt("member_kind", format!("unknown member kind '{kind}'")))?,
        display_name: text(row, "display_name")?,
        user_principal_name: opt_text(row, "user_principal_name")?,
    })
}

pub(crate) fn role_assignment(row: &Row) -> Result<RoleAssignment, Error> {
    Ok(RoleAssignment {
        id: uuid(row, "id")?,
        principal_id: uuid(row, "principal_id")?,
        role_definition_id: uuid(row, "role_definition_id")?,
        directory_scope_id: text(row, "directory_scope_id")?,
    })
}

pub(crate) fn app_role_assignment(row: &Row) -> Result<AppRoleAssignment, Error> {
    let kind = text(row, "principal_type")?;
    Ok(AppRoleAssignment {
        id: uuid(row, "id")?,
        app_role_id: uuid(row, "app_role_id")?,
        principal_id: uuid(row, "principal_id")?,
        principal_type: AssignedPrincipalType::parse(&kind)
            .ok_or_else(|| corrupt("principal_type", format!("unknown principal type '{kind}'")))?,
        principal_display_name: text(row, "principal_display_name")?,
        resource_id: uuid(row, "resource_id")?,
        resource_display_name: text(row, "resource_display_name")?,
        created_date_time: instant(row, "created")?,
    })
}

/// The application without its credentials; the caller attaches them.
pub(crate) fn application(row: &Row) -> Result<Application, Error> {
    let uris = |column: &str| -> Result<RedirectUris, Error> {
        Ok(RedirectUris {
            redirect_uris: json(row, column)?,
        })
    };
    Ok(Application {
        id: uuid(row, "id")?,
        app_id: uuid(row, "app_id")?,
        display_name: text(row, "display_name")?,
        is_fallback_public_client: flag(row, "is_fallback_public_client")?,
        web: uris("web_redirect_uris")?,
        public_client: uris("public_client_redirect_uris")?,
        spa: uris("spa_redirect_uris")?,
        api_permissions: json(row, "api_permissions")?,
        password_credentials: Vec::new(),
        access: json(row, "access")?,
        created_date_time: instant(row, "created")?,
        bootstrap_automation: flag(row, "bootstrap_automation")?,
        id_token_signed_response_alg: algorithm(row, "id_token_signed_response_alg")?,
    })
}

/// A credential and the application it belongs to.
pub(crate) fn credential(row: &Row) -> Result<(Uuid, PasswordCredential), Error> {
    Ok((
        uuid(row, "application_id")?,
        PasswordCredential {
            key_id: uuid(row, "key_id")?,
            display_name: opt_text(row, "display_name")?,
            hint: text(row, "hint")?,
            start_date_time: instant(row, "start_date_time")?,
            end_date_time: instant(row, "end_date_time")?,
            secret_hash: text(row, "secret_hash")?,
        },
    ))
}

/// The credential columns of an application read with its credentials joined
/// (`read.rs`); `None` for the row of an application without any.
pub(crate) fn joined_credential(row: &Row) -> Result<Option<PasswordCredential>, Error> {
    let Some(key_id) = opt_text(row, "credential_key_id")? else {
        return Ok(None);
    };
    Ok(Some(PasswordCredential {
        key_id: Uuid::parse_str(&key_id).map_err(|e| corrupt("credential_key_id", e))?,
        display_name: opt_text(row, "credential_display_name")?,
        hint: text(row, "credential_hint")?,
        start_date_time: instant(row, "credential_start")?,
        end_date_time: instant(row, "credential_end")?,
        secret_hash: text(row, "credential_secret_hash")?,
    }))
}

pub(crate) fn document_kind(value: &str) -> Option<DocumentKind> {
    [
        DocumentKind::NamedLocation,
        DocumentKind::ConditionalAccessPolicy,
        DocumentKind::AuthenticationStrength,
        DocumentKind::AuthenticationMethodConfiguration,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == value)
}

pub(crate) fn document(row: &Row) -> Result<PolicyDocument, Error> {
    let kind = text(row, "kind")?;
    Ok(PolicyDocument {
        kind: document_kind(&kind)
            .ok_or_else(|| corrupt("kind", format!("unknown document kind '{kind}'")))?,
        id: text(row, "id")?,
        display_name: text(row, "display_name")?,
        body: json(row, "body")?,
        created: instant(row, "created")?,
        modified: instant(row, "modified")?,
    })
}

pub(crate) fn audit(row: &Row) -> Result<DirectoryAudit, Error> {
    json(row, "body")
}

fn algorithm(row: &Row, column: &str) -> Result<SigningAlgorithm, Error> {
    let name = text(row, column)?;
    SigningAlgorithm::parse(&name)
        .ok_or_else(|| corrupt(column, format!("unknown signing algorithm '{name}'")))
}

pub(crate) fn signing_key(row: &Row) -> Result<SigningKey, Error> {
    Ok(SigningKey {
        kid: text(row, "kid")?,
        algorithm: algorithm(row, "algorithm")?,
        sealed_private_key: row.blob("sealed_private_key")?,
        public_jwk: text(row, "public_jwk")?,
        created: instant(row, "created")?,
        retired: opt_instant(row, "retired")?,
        activates: opt_instant(row, "activates")?,
    })
}
