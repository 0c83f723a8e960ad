-- The objects each directory audit entry is about (its targetResources' ids), so that the
-- entries about one person, group or application are read from an index instead of by reading
-- every entry's body. Written in the same transaction as the entry; ids are kept lowercased, as
-- the filter compares them. The instant is repeated here so that "the latest entries about X"
-- is one range of this index.
CREATE TABLE directory_audit_targets (
    audit_id TEXT NOT NULL REFERENCES directory_audits (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL,
    activity_date_time BIGINT NOT NULL,
    PRIMARY KEY (target_id, audit_id)
);
CREATE INDEX directory_audit_targets_time ON directory_audit_targets (target_id, activity_date_time, audit_id);
CREATE INDEX directory_audit_targets_audit ON directory_audit_targets (audit_id);

-- The entries written before this table: their targets, from the bodies they were stored with.
INSERT INTO directory_audit_targets (audit_id, target_id, activity_date_time)
SELECT DISTINCT a.id, lower(t.value ->> 'id'), a.activity_date_time
FROM directory_audits a, jsonb_array_elements(a.body::jsonb -> 'targetResources') t
WHERE t.value ->> 'id' IS NOT NULL AND t.value ->> 'id' <> '';
