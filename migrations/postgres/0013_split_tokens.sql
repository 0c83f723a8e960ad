-- Split tokens (issue 18): codes, refresh tokens, session cookies and sign-in flow ids are
-- `ID.SECRET`, the row found by its time-ordered id (so each insert appends at the right edge
-- of the key instead of dirtying a random leaf) and the secret kept only as its SHA-256 in
-- `secret_hash`, which nothing indexes. Core compares it in constant time.
-- Tokens issued before this migration keep working until they expire: their rows have no
-- secret_hash and are found the old way (the columns below say how for each table).
-- Written once for both databases (no dialect's own statement), so the two folders match.

-- Codes and refresh tokens were keyed by the hash of the whole token; that key becomes `id`.
-- A new row's id is the token's id (a UUID); an older row's stays the 64-hex hash of its whole
-- token, which a presented old-style token is still hashed to. The two never coincide.
ALTER TABLE oauth_codes RENAME COLUMN code_hash TO id;
ALTER TABLE oauth_codes ADD COLUMN secret_hash TEXT;
ALTER TABLE oauth_refresh_tokens RENAME COLUMN token_hash TO id;
ALTER TABLE oauth_refresh_tokens ADD COLUMN secret_hash TEXT;

-- Sessions were already keyed by a time-ordered id, but found through a unique index on the
-- hash of the whole cookie. The table is rebuilt (SQLite cannot drop a NOT NULL) so that a new
-- session has no such hash, and the index keeps only the older sessions' hashes: no insert
-- touches it, and it empties as they expire.
CREATE TABLE auth_sessions_split (
    id TEXT NOT NULL PRIMARY KEY,
    secret_hash TEXT,
    -- SHA-256 of the whole cookie, for sessions begun before split tokens only.
    legacy_token_hash TEXT,
    user_id TEXT NOT NULL,
    methods TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
INSERT INTO auth_sessions_split (id, secret_hash, legacy_token_hash, user_id, methods, created, expires)
    SELECT id, NULL, token_hash, user_id, methods, created, expires FROM auth_sessions;
DROP TABLE auth_sessions;
ALTER TABLE auth_sessions_split RENAME TO auth_sessions;
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires ON auth_sessions (expires);
CREATE INDEX auth_sessions_legacy_token ON auth_sessions (legacy_token_hash)
    WHERE legacy_token_hash IS NOT NULL;

-- Flows were keyed by a random UUID that was itself the token. New flows get a time-ordered id
-- and a secret; a flow begun before this migration has no secret_hash and is still found by
-- its bare id (flows live 10 minutes).
ALTER TABLE sign_in_flows ADD COLUMN secret_hash TEXT;
