-- Browser sessions at Sigil (the login page's). The cookie holds a random id; only its SHA-256
-- is stored, so a database read does not yield usable cookies.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,   -- when the user last entered a password
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,   -- idle timeout counts from here
    expires_at   BIGINT NOT NULL    -- absolute timeout
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
