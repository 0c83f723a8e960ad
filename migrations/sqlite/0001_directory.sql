-- The directory: tenant, users, groups and their members, role assignments, applications and
-- their secrets, policy documents, directory audits and token signing keys.
--
-- Conventions shared with migrations/postgres (the store reads both through one SQL text):
-- ids are TEXT (lowercase hyphenated uuids, or the document's own id), booleans are BIGINT 0/1,
-- instants are BIGINT unix milliseconds, JSON documents and lists are TEXT.
-- The only difference from the PostgreSQL file is BLOB for BYTEA.

-- One row at most: a deployment serves one tenant, and a second insert is a conflict.
CREATE TABLE tenant (
    id TEXT NOT NULL PRIMARY KEY,
    singleton BIGINT NOT NULL DEFAULT 1 CHECK (singleton = 1),
    display_name TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX tenant_singleton ON tenant (singleton);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    user_principal_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    mail TEXT,
    account_enabled BIGINT NOT NULL,
    user_type TEXT NOT NULL,
    created BIGINT NOT NULL
);
-- userPrincipalName is unique regardless of case, as in Entra; lookups use the same expression.
CREATE UNIQUE INDEX users_upn_lower ON users (lower(user_principal_name));
CREATE INDEX users_created_id ON users (created, id);
CREATE INDEX users_display_name_lower ON users (lower(display_name));
CREATE INDEX users_mail_lower ON users (lower(mail));

CREATE TABLE groups (
    id TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    description TEXT,
    mail_nickname TEXT,
    security_enabled BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX groups_created_id ON groups (created, id);
CREATE INDEX groups_display_name_lower ON groups (lower(display_name));

-- member_id names a user, a group or a service principal (member_kind says which), so only the
-- container has a foreign key; the store removes memberships of deleted members itself.
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id),
    member_id TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);

CREATE TABLE role_assignments (
    id TEXT NOT NULL PRIMARY KEY,
    principal_id TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    directory_scope_id TEXT NOT NULL
);
CREATE UNIQUE INDEX role_assignments_principal_role_scope
    ON role_assignments (principal_id, role_definition_id, directory_scope_id);

CREATE TABLE applications (
    id TEXT NOT NULL PRIMARY KEY,
    app_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    is_fallback_public_client BIGINT NOT NULL,
    web_redirect_uris TEXT NOT NULL,
    public_client_redirect_uris TEXT NOT NULL,
    spa_redirect_uris TEXT NOT NULL,
    api_permissions TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE UNIQUE INDEX applications_app_id ON applications (app_id);
CREATE INDEX applications_created_id ON applications (created, id);
CREATE INDEX applications_display_name_lower ON applications (lower(display_name));

CREATE TABLE password_credentials (
    application_id TEXT NOT NULL REFERENCES applications (id),
    key_id TEXT NOT NULL,
    display_name TEXT,
    hint TEXT NOT NULL,
    start_date_time BIGINT NOT NULL,
    end_date_time BIGINT NOT NULL,
    secret_hash TEXT NOT NULL,
    PRIMARY KEY (application_id, key_id)
);

CREATE TABLE policy_documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    body TEXT NOT NULL,
    created BIGINT NOT NULL,
    modified BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX policy_documents_kind_created ON policy_documents (kind, created, id);

-- The whole entry is kept as JSON in body; the columns beside it exist to filter and order.
CREATE TABLE directory_audits (
    id TEXT NOT NULL PRIMARY KEY,
    activity_date_time BIGINT NOT NULL,
    category TEXT NOT NULL,
    activity_display_name TEXT NOT NULL,
    result TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    initiated_by_id TEXT,
    operation_type TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX directory_audits_time_id ON directory_audits (activity_date_time, id);
CREATE INDEX directory_audits_correlation ON directory_audits (correlation_id);
CREATE INDEX directory_audits_initiator ON directory_audits (initiated_by_id);
CREATE INDEX directory_audits_category ON directory_audits (category);

CREATE TABLE signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    algorithm TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created BIGINT NOT NULL,
    retired BIGINT
);
