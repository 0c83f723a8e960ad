-- No privilege ladder through groups or applications.
--
-- Only a role-assignable group (Graph's isAssignableToRole, fixed when the group is made) may
-- hold a directory role. Groups that already hold one become role-assignable, so that from now
-- on only those who manage roles change their members.
ALTER TABLE groups ADD COLUMN is_assignable_to_role BIGINT NOT NULL DEFAULT 0;
UPDATE groups SET is_assignable_to_role = 1
    WHERE id IN (SELECT principal_id FROM role_assignments);

-- The automation application made at first start is protected like a Global Administrator. It
-- was made in the tenant's own transaction, at the tenant's creation instant; the first-party
-- applications (fixed client ids) are made afterwards and are not it.
ALTER TABLE applications ADD COLUMN bootstrap_automation BIGINT NOT NULL DEFAULT 0;
UPDATE applications SET bootstrap_automation = 1
    WHERE created = (SELECT created FROM tenant)
      AND app_id NOT IN ('706f08e8-a92c-465d-a0b9-6066aa4623cc',
                         '005cbd19-3de0-4238-a5c6-97d038f6c66d');
