//! First start: the tenant, a bootstrap Global Administrator, and an automation application
//! holding every admin API permission — created once, in one transaction — and, at every start,
//! the first-party applications ([`crate::directory::first_party`]) when they are missing.
//!
//! Several nodes may start at the same moment on one PostgreSQL database; the tenant row is the
//! arbiter. The node whose transaction inserts it wins; the others see the conflict, find the
//! tenant, and carry on without creating anything.

use serde::Serialize;
use uuid::Uuid;

use crate::directory::Directory;
use crate::directory::audit::{AuditActivityInitiator, DirectoryAudit, TargetResource};
use crate::directory::authz::{Actor, perm};
use crate::directory::first_party::ensure_first_party_applications;
use crate::directory::model::{Application, RedirectUris, RoleAssignment, Tenant, User, UserType};
use crate::directory::roles::GLOBAL_ADMINISTRATOR;
use crate::directory::store::{DirectoryChange as Change, DirectoryStore};
use crate::kernel::Deps;
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

#[derive(Debug, Clone)]
pub struct BootstrapOutcome {
    pub tenant: Tenant,
    /// `Some` only on the start that created the tenant.
    pub created: Option<BootstrapCredentials>,
}

pub async fn ensure_bootstrapped(
    deps: &Deps<dyn Store>,
    settings: &BootstrapSettings,
) -> Result<BootstrapOutcome> {
    if let Some(tenant) = deps.store.tenant().await? {
        ensure_first_party_applications(deps).await?;
        return Ok(BootstrapOutcome {
            tenant,
            created: None,
        });
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
        created_date_time: now,
        bootstrap_automation: true,
    };
    let role = RoleAssignment {
        id: deps.entropy.uuid(),
        principal_id: admin.id,
        role_definition_id: GLOBAL_ADMINISTRATOR,
        directory_scope_id: "/".to_string(),
    };
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
                .with_upn(&admin.user_principal_name),
            TargetResource::new("Application", app.id, &app.display_name),
        ],
        additional_details: Vec::new(),
    };
    let changes = vec![
        Change::InsertTenant(tenant.clone()),
        Change::InsertUser(admin.clone()),
        Change::InsertRoleAssignment(role),
        Change::InsertApplication(app.clone()),
    ];
    let committed = deps.store.commit(changes, Some(audit)).await;
    if matches!(committed, Ok(()) | Err(Error::Conflict { .. })) {
        ensure_first_party_applications(deps).await?;
    }
    match committed {
        Ok(()) => Ok(BootstrapOutcome {
            created: Some(BootstrapCredentials {
                tenant_id: tenant.id,
                admin_user_id: admin.id,
                admin_user_principal_name: admin.user_principal_name,
                client_id: app.app_id,
                client_secret: secret.secret_text,
            }),
            tenant,
        }),
        Err(Error::Conflict { .. }) => {
            let tenant = deps.store.tenant().await?.ok_or_else(|| {
                Error::Internal("bootstrap conflicted but no tenant exists".into())
            })?;
            Ok(BootstrapOutcome {
                tenant,
                created: None,
            })
        }
        Err(e) => Err(e),
    }
}
