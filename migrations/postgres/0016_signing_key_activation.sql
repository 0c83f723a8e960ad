-- When a key starts signing. A rotation publishes the next key first and lets it sign only
-- once clients that cached the key set have had time to fetch it again. NULL: the key signed
-- from its creation (every key made before this column, and an immediate rotation's).
ALTER TABLE signing_keys ADD COLUMN activates BIGINT;
