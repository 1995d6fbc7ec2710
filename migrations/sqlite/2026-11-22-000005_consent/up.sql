-- First-party clients skip the consent screen; others ask each user once per scope set.
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,   -- every scope granted so far, space-delimited
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
