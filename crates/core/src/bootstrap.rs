//! First start: the tenant, a bootstrap Global Administrator with a one-time Temporary Access
//! Pass, and an automation application holding every admin API permission — and, at every
//! start, the first-party applications ([`crate::directory::first_party`]) when they are missing.
//!
//! First start cannot be left half done. It is prepared in memory ([`begin`]), handed out by the
//! caller (the binary writes `bootstrap.json` and prints the pass), and only then made real by
//! one commit ([`FirstStart::commit`]) that stores the tenant, the administrator, the role, the
//! application and the pass together. A crash before the commit leaves nothing, and the next
//! start begins again; a crash after it leaves a complete installation whose credentials were
//! already shown. Nothing here writes files or prints: that is the caller's part.
//!
//! Several nodes may start at the same moment on one PostgreSQL database; the tenant row is the
//! arbiter. The node whose transaction inserts it wins; the others see the conflict, find the
//! tenant, and must withdraw what they handed out ([`FirstStartCommit::AnotherNodeCreated`]).

use serde::Serialize;
use uuid::Uuid;

use crate::directory::Directory;
use crate::directory::audit::{AuditActivityInitiator, DirectoryAudit, TargetResource};
use crate::directory::authz::{Actor, perm};
use crate::directory::first_party::ensure_first_party_applications;
use crate::directory::model::{Application, RedirectUris, RoleAssignment, Tenant, User, UserType};
use crate::directory::roles::GLOBAL_ADMINISTRATOR;
use crate::directory::store::{DirectoryChange, DirectoryStore};
use crate::kernel::Deps;
use crate::kernel::clock::graph_datetime;
use crate::methods::store::{MethodChange, MethodStore};
use crate::methods::tap::TemporaryAccessPasses;
use crate::store::Store;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct BootstrapSettings {
    pub tenant_display_name: String,
    pub admin_user_principal_name: String,
    pub admin_display_name: String,
    pub automation_app_display_name: String,
}

/// What first start created; the secret exists only here and in the file the binary writes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapCredentials {
    pub tenant_id: Uuid,
    pub admin_user_id: Uuid,
    pub admin_user_principal_name: String,
    pub client_id: Uuid,
    pub client_secret: String,
}

/// The bootstrap administrator's one-time pass. It is shown once and never written to a file.
#[derive(Debug, Clone)]
pub struct BootstrapPass {
    pub temporary_access_pass: String,
    pub valid_until: time::OffsetDateTime,
}

/// What [`begin`] found.
#[derive(Debug)]
pub enum Bootstrap {
    /// The tenant exists: nothing to hand out.
    Existing(Tenant),
    /// No tenant yet: hand out [`FirstStart::credentials`] and [`FirstStart::pass`], then
    /// [`FirstStart::commit`].
    FirstStart(Box<FirstStart>),
}

/// A first start prepared in memory; nothing of it is stored until [`FirstStart::commit`].
#[derive(Debug)]
pub struct FirstStart {
    pub tenant: Tenant,
    pub credentials: BootstrapCredentials,
    pub pass: BootstrapPass,
    changes: Vec<MethodChange>,
    audit: DirectoryAudit,
}

/// What the one commit of a first start did.
#[derive(Debug, Clone)]
pub enum FirstStartCommit {
    /// This start created the tenant: the credentials it handed out are the real ones.
    Created(Tenant),
    /// Another node created the tenant first: what this start handed out is void and must be
    /// withdrawn.
    AnotherNodeCreated(Tenant),
}

/// Looks for the tenant; when there is none, prepares everything a first start creates. At
/// every start that finds the tenant, the first-party applications are made sure of.
pub async fn begin(deps: &Deps<dyn Store>, settings: &BootstrapSettings) -> Result<Bootstrap> {
    if let Some(tenant) = deps.store.tenant().await? {
        ensure_first_party_applications(deps).await?;
        return Ok(Bootstrap::Existing(tenant));
    }
    let now = deps.clock.now();
    let tenant = Tenant {
        id: deps.entropy.uuid(),
        display_name: settings.tenant_display_name.clone(),
        created_date_time: now,
    };
    let admin = User {
        id: deps.entropy.uuid(),
        user_principal_name: settings.admin_user_principal_name.clone(),
        display_name: settings.admin_display_name.clone(),
        mail: None,
        account_enabled: true,
        user_type: UserType::Member,
        created_date_time: now,
    };
    let directory = Directory::new(crate::narrow!(deps, DirectoryStore));
    let secret = directory.new_secret(Some("bootstrap".to_string()), None)?;
    let app = Application {
        id: deps.entropy.uuid(),
        app_id: deps.entropy.uuid(),
        display_name: settings.automation_app_display_name.clone(),
        is_fallback_public_client: false,
        web: RedirectUris::default(),
        public_client: RedirectUris::default(),
        spa: RedirectUris::default(),
        api_permissions: perm::ALL.iter().map(|p| p.to_string()).collect(),
        password_credentials: vec![secret.credential.clone()],
        access: Default::default(),
        created_date_time: now,
        bootstrap_automation: true,
        id_token_signed_response_alg: Default::default(),
    };
    let role = RoleAssignment {
        id: deps.entropy.uuid(),
        principal_id: admin.id,
        role_definition_id: GLOBAL_ADMINISTRATOR,
        directory_scope_id: "/".to_string(),
    };
    let passes = TemporaryAccessPasses::new(crate::narrow!(deps, MethodStore));
    let (tap, pass) = passes.prepare_bootstrap(&admin).await?;
    let valid_until = tap.start + time::Duration::minutes(i64::from(tap.lifetime_minutes));
    let audit = DirectoryAudit {
        id: deps.entropy.uuid(),
        category: "DirectoryManagement".to_string(),
        correlation_id: deps.entropy.uuid(),
        result: "success".to_string(),
        result_reason: String::new(),
        activity_display_name: "Create company".to_string(),
        activity_date_time: now,
        logged_by_service: "Core Directory".to_string(),
        operation_type: "Add".to_string(),
        initiated_by: AuditActivityInitiator::from_actor(&Actor::System, None),
        target_resources: vec![
            TargetResource::new("Company", tenant.id, &tenant.display_name),
            TargetResource::new("User", admin.id, &admin.display_name)
                .with_upn(&admin.user_principal_name)
                .modified(
                    "TemporaryAccessPass",
                    None,
                    Some(&serde_json::json!({
                        "startDateTime": graph_datetime::format(tap.start),
                        "lifetimeInMinutes": tap.lifetime_minutes,
                        "isUsableOnce": tap.is_usable_once,
                    })),
                ),
            TargetResource::new("Application", app.id, &app.display_name),
        ],
        additional_details: Vec::new(),
    };
    let credentials = BootstrapCredentials {
        tenant_id: tenant.id,
        admin_user_id: admin.id,
        admin_user_principal_name: admin.user_principal_name.clone(),
        client_id: app.app_id,
        client_secret: secret.secret_text,
    };
    let changes = vec![
        DirectoryChange::InsertTenant(tenant.clone()).into(),
        DirectoryChange::InsertUser(admin).into(),
        DirectoryChange::InsertRoleAssignment(role).into(),
        DirectoryChange::InsertApplication(app).into(),
        MethodChange::PutTemporaryAccessPass(tap),
    ];
    Ok(Bootstrap::FirstStart(Box::new(FirstStart {
        tenant,
        credentials,
        pass: BootstrapPass {
            temporary_access_pass: pass,
            valid_until,
        },
        changes,
        audit,
    })))
}

impl FirstStart {
    /// Stores the whole first start in one transaction. Call it only after the credentials
    /// and the pass have been handed out, so that a crash cannot leave a tenant nobody can
    /// enter.
    pub async fn commit(self, deps: &Deps<dyn Store>) -> Result<FirstStartCommit> {
        let committed = deps.store.commit(self.changes, Some(self.audit)).await;
        match committed {
            Ok(()) => {
                ensure_first_party_applications(deps).await?;
                Ok(FirstStartCommit::Created(self.tenant))
            }
            Err(Error::Conflict { .. }) => {
                ensure_first_party_applications(deps).await?;
                let tenant = deps.store.tenant().await?.ok_or_else(|| {
                    Error::Internal("bootstrap conflicted but no tenant exists".into())
                })?;
                Ok(FirstStartCommit::AnotherNodeCreated(tenant))
            }
            Err(e) => Err(e),
        }
    }
}
