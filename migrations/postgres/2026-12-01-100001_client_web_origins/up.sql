-- Browser origins (besides those of the redirect URIs) whose CORS requests the token,
-- userinfo, revocation and introspection endpoints answer for this client: a JSON list.
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '[]';
