-- OpenID Connect: one grant per authorization, with the code and the refresh tokens issued
-- under it. Codes and refresh tokens are kept only as SHA-256 hashes; each is taken once by a
-- conditional UPDATE on `used`, so a replay is seen on every node and revokes the grant.
-- Same conventions as 0001: TEXT ids, BIGINT unix-millisecond instants.

CREATE TABLE oauth_grants (
    id TEXT NOT NULL PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    -- JSON: scopes, nonce, auth_time, amr, acr, acrs.
    state TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    revoked BIGINT
);
CREATE INDEX oauth_grants_session ON oauth_grants (session_id);
CREATE INDEX oauth_grants_expires ON oauth_grants (expires);

CREATE TABLE oauth_codes (
    code_hash TEXT NOT NULL PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    expires BIGINT NOT NULL,
    used BIGINT
);
CREATE INDEX oauth_codes_expires ON oauth_codes (expires);

CREATE TABLE oauth_refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    used BIGINT
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
