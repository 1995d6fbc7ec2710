-- End users who log in through Sigil's login page.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    username            TEXT NOT NULL UNIQUE,
    email               TEXT,
    password_hash       TEXT NOT NULL,      -- bcrypt over HMAC-SHA256(pepper, password)
    disabled            BOOLEAN NOT NULL,
    roles               TEXT NOT NULL,      -- JSON array
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('users_version', 0);
