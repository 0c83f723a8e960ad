-- Applications as APIs and who may use them. `access` keeps what an application exposes
-- (identifierUris, api.oauth2PermissionScopes, appRoles) and its access settings
-- (appRoleAssignmentRequired, groupMembershipClaims) as one JSON document.
ALTER TABLE applications ADD COLUMN access TEXT NOT NULL DEFAULT '{}';

-- Identifier URIs, lower-cased: unique in the tenant, and how a scope's resource is found.
CREATE TABLE application_identifier_uris (
    uri TEXT NOT NULL PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id)
);
CREATE INDEX application_identifier_uris_application
    ON application_identifier_uris (application_id);

-- App role assignments: a user, group or application (principal) holds an app role of a
-- resource application, or its default access (the nil role id).
CREATE TABLE app_role_assignments (
    id TEXT NOT NULL PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES applications (id),
    app_role_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX app_role_assignments_resource_principal_role
    ON app_role_assignments (resource_id, principal_id, app_role_id);
CREATE INDEX app_role_assignments_principal ON app_role_assignments (principal_id);
