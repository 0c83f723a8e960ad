-- Passkeys (FIDO2) and the WebAuthn ceremonies in progress.
--
-- Conventions as in 0001 and in migrations/postgres (one SQL text serves both databases): ids
-- are TEXT, booleans BIGINT 0/1, instants BIGINT unix milliseconds, JSON TEXT. The credential
-- id is kept as lowercase hex TEXT so that both databases compare and index it the same way.

-- One row per registered passkey. A person's passkeys go with them: deleting the user deletes
-- them (the cascade is the database's, so no code path can leave orphans behind).
CREATE TABLE passkeys (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    aaguid TEXT NOT NULL,
    model TEXT,
    -- attested, selfAttested or none
    attestation_level TEXT NOT NULL,
    backup_eligible BIGINT NOT NULL,
    backup_state BIGINT NOT NULL,
    sign_count BIGINT NOT NULL,
    -- webauthn-rs's serialized credential (public key, counter, flags, attestation)
    credential TEXT NOT NULL,
    created BIGINT NOT NULL,
    last_used BIGINT
);
-- A credential id names one passkey of one person, across the whole tenant.
CREATE UNIQUE INDEX passkeys_credential_id ON passkeys (credential_id);
CREATE INDEX passkeys_user_created ON passkeys (user_id, created, id);

-- Registration and sign-in ceremonies that have started and not finished. A row is deleted
-- when the ceremony is finished (or refused): the delete is what makes a challenge single-use.
CREATE TABLE passkey_ceremonies (
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT,
    state TEXT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_expires ON passkey_ceremonies (expires);
