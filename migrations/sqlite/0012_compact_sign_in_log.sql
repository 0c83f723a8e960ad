-- The compact sign-in log (portcullis_core::logs::compact). A new entry keeps in `entry` a
-- small CBOR map of what its columns do not hold, its policy results packed to a few bytes a
-- policy, and in `policy_revision` the key of the policy revision they were decided on: each
-- policy's id and display name, stored once per distinct revision in the table below (the key is
-- a hash of the body). `body` is '' for such entries; entries written before keep their JSON
-- `body` (and a NULL `entry`) and read back as they always did.
CREATE TABLE sign_in_policy_revisions (
    revision TEXT NOT NULL PRIMARY KEY,
    body BLOB NOT NULL,
    -- When a node last wrote or confirmed it (unix ms): a revision unused for longer than the
    -- log is kept is purged with the entries that named it.
    last_used BIGINT NOT NULL
);
ALTER TABLE sign_ins ADD COLUMN policy_revision TEXT;
ALTER TABLE sign_ins ADD COLUMN entry BLOB;
