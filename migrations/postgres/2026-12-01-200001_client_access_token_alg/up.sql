-- The algorithm this client's access tokens are signed with; NULL: the server's
-- tokens.access_token_alg.
ALTER TABLE clients ADD COLUMN access_token_alg TEXT;
