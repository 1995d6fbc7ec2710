-- Refresh tokens. A token is honoured only while the SHA-256 of its id is here, unrevoked and
-- unexpired. Rotation marks a row used; its successor's id is derived from the parent's id with
-- a keyed hash, so a repeat within the reuse window re-issues the same successor.
CREATE TABLE refresh_tokens (
    id_hash         TEXT PRIMARY KEY NOT NULL,
    family_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    scope           TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    session_hash    TEXT,               -- bound to a login session unless offline_access
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,    -- min(idle, family absolute)
    family_expires_at BIGINT NOT NULL,
    used_at         BIGINT,
    revoked         BOOLEAN NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
