//! Portcullis's own applications: the pages people sign in to that are not a customer's
//! application — "My Account" (security info, `/my/…`) and "Admin Portal" (`/admin`).
//!
//! They are ordinary directory applications with fixed client ids, so that a sign-in to them is
//! a sign-in flow like any other (Conditional Access decides, the sign-in log names them) and an
//! administrator can target them in a policy by a client id that is the same in every tenant.
//! They have no redirect URIs and no secrets: the sign-in page itself sends the person back to
//! the page they came from once the flow is granted.
//!
//! They are made at every start when missing, not only at first start, so a database created
//! before they existed (or one where an administrator deleted them) gets them back.

use uuid::{Uuid, uuid};

use crate::directory::audit::{AuditActivityInitiator, DirectoryAudit, TargetResource};
use crate::directory::authz::Actor;
use crate::directory::model::{Application, RedirectUris};
use crate::directory::store::{DirectoryChange as Change, DirectoryStore};
use crate::kernel::Deps;
use crate::{Error, Result};

/// Client id of "My Account": the security-info pages.
pub const MY_ACCOUNT_APP_ID: Uuid = uuid!("706f08e8-a92c-465d-a0b9-6066aa4623cc");
pub const MY_ACCOUNT_APP_NAME: &str = "My Account";
/// Client id of "Admin Portal": the administration pages under `/admin`.
pub const ADMIN_PORTAL_APP_ID: Uuid = uuid!("005cbd19-3de0-4238-a5c6-97d038f6c66d");
pub const ADMIN_PORTAL_APP_NAME: &str = "Admin Portal";

/// The first-party applications: client id and display name.
pub const FIRST_PARTY_APPLICATIONS: &[(Uuid, &str)] = &[
    (MY_ACCOUNT_APP_ID, MY_ACCOUNT_APP_NAME),
    (ADMIN_PORTAL_APP_ID, ADMIN_PORTAL_APP_NAME),
];

/// The first-party application a local page belongs to: `/admin…` is the Admin Portal,
/// everything else a person signs in to through the pages is My Account.
pub fn application_for_path(path: &str) -> Uuid {
    if path == "/admin" || path.starts_with("/admin/") {
        ADMIN_PORTAL_APP_ID
    } else {
        MY_ACCOUNT_APP_ID
    }
}

/// Creates whichever first-party applications are missing, each with its audit entry. Several
/// nodes may start at once: a node that loses the race to insert one finds it there and carries
/// on.
pub async fn ensure_first_party_applications<S: DirectoryStore + ?Sized>(
    deps: &Deps<S>,
) -> Result<()> {
    for (app_id, name) in FIRST_PARTY_APPLICATIONS {
        if deps.store.application_by_app_id(*app_id).await?.is_some() {
            continue;
        }
        let now = deps.clock.now();
        let app = Application {
            id: deps.entropy.uuid(),
            app_id: *app_id,
            display_name: (*name).to_string(),
            is_fallback_public_client: false,
            web: RedirectUris::default(),
            public_client: RedirectUris::default(),
            spa: RedirectUris::default(),
            api_permissions: Vec::new(),
            password_credentials: Vec::new(),
            access: Default::default(),
            created_date_time: now,
            bootstrap_automation: false,
            id_token_signed_response_alg: Default::default(),
        };
        let audit = DirectoryAudit {
            id: deps.entropy.uuid(),
            category: "ApplicationManagement".to_string(),
            correlation_id: deps.entropy.uuid(),
            result: "success".to_string(),
            result_reason: String::new(),
            activity_display_name: "Add application".to_string(),
            activity_date_time: now,
            logged_by_service: "Core Directory".to_string(),
            operation_type: "Add".to_string(),
            initiated_by: AuditActivityInitiator::from_actor(&Actor::System, None),
            target_resources: vec![TargetResource::new("Application", app.id, *name)],
            additional_details: Vec::new(),
        };
        match deps
            .store
            .commit(vec![Change::InsertApplication(app)], Some(audit))
            .await
        {
            Ok(()) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_pages_belong_to_the_admin_portal_and_nothing_else_does() {
        assert_eq!(application_for_path("/admin"), ADMIN_PORTAL_APP_ID);
        assert_eq!(application_for_path("/admin/users"), ADMIN_PORTAL_APP_ID);
        assert_eq!(application_for_path("/administrator"), MY_ACCOUNT_APP_ID);
        assert_eq!(application_for_path("/my/security-info"), MY_ACCOUNT_APP_ID);
    }
}
