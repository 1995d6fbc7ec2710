-- The algorithm this client's ID tokens are signed with (OIDC id_token_signed_response_alg).
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
