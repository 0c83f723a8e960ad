-- Ending a person's trust (disable, delete, admin reset, revokeSignInSessions) revokes every
-- grant of theirs: `UPDATE oauth_grants … WHERE user_id = $1`. Without this index that update
-- reads the whole table, and it runs in the same transaction as the change that ends the trust.
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);
