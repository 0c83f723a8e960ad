//! The audit trail: every administrative change writes one [`DirectoryAudit`] in the shape of
//! Graph's `directoryAudit`, committed in the same transaction as the change it describes, so a
//! change without its entry (or an entry without its change) cannot exist.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::authz::Actor;
use crate::kernel::clock::graph_datetime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryAudit {
    pub id: Uuid,
    /// `UserManagement`, `GroupManagement`, `RoleManagement`, `ApplicationManagement`, `Policy`…
    pub category: String,
    pub correlation_id: Uuid,
    /// `success` or `failure`.
    pub result: String,
    pub result_reason: String,
    pub activity_display_name: String,
    #[serde(with = "graph_datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub activity_date_time: OffsetDateTime,
    pub logged_by_service: String,
    /// `Add`, `Update`, `Delete`, `Assign`, `Unassign`.
    pub operation_type: String,
    pub initiated_by: AuditActivityInitiator,
    pub target_resources: Vec<TargetResource>,
    pub additional_details: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditActivityInitiator {
    pub user: Option<UserIdentity>,
    pub app: Option<AppIdentity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppIdentity {
    pub app_id: Option<String>,
    pub display_name: Option<String>,
    pub service_principal_id: Option<String>,
    pub service_principal_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetResource {
    pub id: String,
    pub display_name: Option<String>,
    /// `User`, `Group`, `Role`, `Application`, `Policy`, `NamedLocation`…
    #[serde(rename = "type")]
    pub resource_type: String,
    pub user_principal_name: Option<String>,
    pub modified_properties: Vec<ModifiedProperty>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedProperty {
    pub display_name: String,
    /// JSON text of the old value, as Graph writes it.
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl AuditActivityInitiator {
    pub fn from_actor(actor: &Actor, ip_address: Option<String>) -> Self {
        match actor {
            Actor::User {
                id,
                user_principal_name,
            } => AuditActivityInitiator {
                user: Some(UserIdentity {
                    id: id.to_string(),
                    display_name: None,
                    user_principal_name: Some(user_principal_name.clone()),
                    ip_address,
                }),
                app: None,
            },
            Actor::App {
                id,
                app_id,
                display_name,
            } => AuditActivityInitiator {
                user: None,
                app: Some(AppIdentity {
                    app_id: Some(app_id.to_string()),
                    display_name: Some(display_name.clone()),
                    service_principal_id: Some(id.to_string()),
                    service_principal_name: Some(display_name.clone()),
                }),
            },
            Actor::System => AuditActivityInitiator {
                user: None,
                app: Some(AppIdentity {
                    app_id: None,
                    display_name: Some("Portcullis".to_string()),
                    service_principal_id: None,
                    service_principal_name: Some("Portcullis".to_string()),
                }),
            },
        }
    }

    /// The id of whoever initiated the change (user id or application id), for filtering.
    pub fn initiator_id(&self) -> Option<String> {
        self.user
            .as_ref()
            .map(|u| u.id.clone())
            .or_else(|| self.app.as_ref().and_then(|a| a.app_id.clone()))
    }
}

impl TargetResource {
    pub fn new(resource_type: &str, id: impl ToString, display_name: impl Into<String>) -> Self {
        TargetResource {
            id: id.to_string(),
            display_name: Some(display_name.into()),
            resource_type: resource_type.to_string(),
            user_principal_name: None,
            modified_properties: Vec::new(),
        }
    }

    pub fn with_upn(mut self, upn: &str) -> Self {
        self.user_principal_name = Some(upn.to_string());
        self
    }

    /// Records a property change. Values are written as JSON text, as Graph does.
    pub fn modified(
        mut self,
        name: &str,
        old: Option<&serde_json::Value>,
        new: Option<&serde_json::Value>,
    ) -> Self {
        self.modified_properties.push(ModifiedProperty {
            display_name: name.to_string(),
            old_value: old.map(|v| v.to_string()),
            new_value: new.map(|v| v.to_string()),
        });
        self
    }
}

/// Facts about the request an audit entry records besides the actor.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: Uuid,
    pub ip_address: Option<String>,
    /// The caller said it knows the change may lock administrators out
    /// (`?acknowledgeLockout=true`, or the portal's checkbox): the lockout guard lets it pass.
    pub acknowledge_lockout: bool,
}

impl RequestContext {
    pub fn new(correlation_id: Uuid) -> Self {
        RequestContext {
            correlation_id,
            ip_address: None,
            acknowledge_lockout: false,
        }
    }
}
