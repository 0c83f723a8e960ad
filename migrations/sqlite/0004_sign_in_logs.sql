-- The sign-in log: one row per attempt. The whole entry is kept as JSON (Graph's signIn shape);
-- the columns beside it are the ones the admin API filters and pages on.
CREATE TABLE sign_ins (
    id TEXT NOT NULL PRIMARY KEY,
    created BIGINT NOT NULL,
    user_principal_name TEXT NOT NULL,
    user_id TEXT,
    app_id TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    ip_address TEXT,
    error_code BIGINT NOT NULL,
    conditional_access_status TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    client_app_used TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX sign_ins_created_id ON sign_ins (created, id);
CREATE INDEX sign_ins_user ON sign_ins (lower(user_principal_name), created);
CREATE INDEX sign_ins_user_id ON sign_ins (user_id, created);
CREATE INDEX sign_ins_app ON sign_ins (app_id, created);
CREATE INDEX sign_ins_correlation ON sign_ins (correlation_id);
