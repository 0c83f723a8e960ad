-- Smart lockout counts a guess before comparing it and gives the count back when the secret
-- was right. Giving back must not leave a lock that only the right secret's attempt began, so
-- each counter keeps the failure before its latest one as well.
ALTER TABLE failure_counters ADD COLUMN previous_failure BIGINT;

-- The sources each account has signed in from (Entra's familiar locations): a lock earned on a
-- source by guesses at other accounts does not refuse an account there. Only the most recent
-- few are kept per account; they go with the account.
CREATE TABLE familiar_sources (
    user_id TEXT NOT NULL,
    source TEXT NOT NULL,
    last_success BIGINT NOT NULL,
    PRIMARY KEY (user_id, source)
);
CREATE INDEX familiar_sources_by_recency ON familiar_sources (user_id, last_success);
