-- When a retiring key leaves the JWKS: once the access and ID tokens it signed have expired.
-- It stays in the ring until retires_at for Sigil's own refresh tokens. NULL (keys stored
-- before): published until retires_at.
ALTER TABLE signing_keys ADD COLUMN unpublishes_at BIGINT;
