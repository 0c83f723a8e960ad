-- Authentication sessions, Temporary Access Passes, passwords, authenticator apps and failure
-- counters (lockout).
-- Same conventions as 0001: TEXT ids, BIGINT 0/1 booleans, BIGINT unix-millisecond instants.

-- The browser holds a random token; only its SHA-256 is kept here.
CREATE TABLE auth_sessions (
    id TEXT NOT NULL PRIMARY KEY,
    token_hash TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- JSON list of the methods satisfied in the session, each with its time.
    methods TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE UNIQUE INDEX auth_sessions_token_hash ON auth_sessions (token_hash);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires ON auth_sessions (expires);

-- One pass per person: the unique index on user_id makes a second one a conflict, so
-- "replace" is a delete and an insert in one transaction.
CREATE TABLE temporary_access_passes (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    pass_hash TEXT NOT NULL,
    start_date_time BIGINT NOT NULL,
    lifetime_minutes BIGINT NOT NULL,
    is_usable_once BIGINT NOT NULL,
    created BIGINT NOT NULL,
    -- Set once, by the one redemption of a one-time pass that wins.
    used BIGINT
);
CREATE UNIQUE INDEX temporary_access_passes_user ON temporary_access_passes (user_id);

-- Failed attempts per key (an account's method, a source address) within a window.
CREATE TABLE failure_counters (
    counter_key TEXT NOT NULL PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);

-- Passwords (argon2id PHC strings), one per person, when the tenant allows them.
CREATE TABLE passwords (
    user_id TEXT NOT NULL PRIMARY KEY,
    hash TEXT NOT NULL,
    changed BIGINT NOT NULL
);

-- Authenticator apps (TOTP). The secret is sealed with the server key; last_used_step makes
-- each code good for one use.
CREATE TABLE software_oath_methods (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    created BIGINT NOT NULL,
    last_used_step BIGINT NOT NULL
);
CREATE INDEX software_oath_methods_user ON software_oath_methods (user_id);
