-- Deleted users, restorable for 30 days (Entra's soft delete; Graph's directory/deletedItems).
--
-- A deleted user keeps its row in users, with `deleted` set to the instant of deletion; every
-- read of live users says `deleted IS NULL`. Its passkeys and other methods keep their rows
-- (nobody can reach them: sign-in finds live users only). Its memberships, role assignments
-- and app role assignments move to the deleted_* tables below, so the live tables hold live
-- principals only and nothing that reads them (member lists, role holders, token claims, the
-- lockout guard's count of Global Administrators) can see a deleted user. A restore moves them
-- back (those whose group, role or application still exists); a permanent delete or the purge
-- after 30 days removes everything.
ALTER TABLE users ADD COLUMN deleted BIGINT;

-- A new user may take a deleted user's userPrincipalName, as in Entra (restoring the deleted one
-- is then a conflict): the name is unique among live users only.
DROP INDEX users_upn_lower;
CREATE UNIQUE INDEX users_upn_lower ON users (lower(user_principal_name)) WHERE deleted IS NULL;
CREATE INDEX users_deleted_id ON users (deleted, id) WHERE deleted IS NOT NULL;

CREATE TABLE deleted_group_members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    PRIMARY KEY (member_id, group_id)
);

CREATE TABLE deleted_role_assignments (
    id TEXT NOT NULL PRIMARY KEY,
    principal_id TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    directory_scope_id TEXT NOT NULL
);
CREATE INDEX deleted_role_assignments_principal ON deleted_role_assignments (principal_id);

CREATE TABLE deleted_app_role_assignments (
    id TEXT NOT NULL PRIMARY KEY,
    resource_id TEXT NOT NULL,
    app_role_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX deleted_app_role_assignments_principal ON deleted_app_role_assignments (principal_id);
