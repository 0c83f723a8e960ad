-- Sign-in flows: one row per sign-in in progress, so that any node can serve any step.
-- Same conventions as 0001: TEXT ids, BIGINT unix-millisecond instants.

CREATE TABLE sign_in_flows (
    id TEXT NOT NULL PRIMARY KEY,
    -- The step the flow is at; a step's write names the step it expects, so two racing
    -- submissions of one step cannot both move the flow on.
    step TEXT NOT NULL,
    -- JSON of the whole flow (application, request facts, user, session, pending passkey).
    state TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX sign_in_flows_expires ON sign_in_flows (expires);
