-- Revoked access tokens (`jti:<jti>`), ended login sessions (`sid:<public id>`) and revoked
-- refresh-token families (`fid:<family>`): every replica refuses an access token that names
-- one of them at /introspect and /userinfo. Each row lives as long as a token it can concern.
CREATE TABLE revocations (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
