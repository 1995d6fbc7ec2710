-- Whether the user's email address is verified (OIDC email_verified); set by operators.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
