-- How an application's ID tokens are signed (`idTokenSignedResponseAlg`): ES256 or RS256.
-- Every application registered before this column keeps ES256, as it was signed with until now.
-- Each algorithm has its own signing keys in signing_keys (column algorithm); the server makes
-- the missing RS256 key at its next start.
ALTER TABLE applications ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'ES256';
