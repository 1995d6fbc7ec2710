-- Sigil's first schema. Times are Unix seconds (BIGINT) on both backends so no
-- timestamp semantics differ between SQLite and PostgreSQL.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY NOT NULL,
    alg            TEXT NOT NULL,
    private_key    BLOB NOT NULL,      -- nonce || AES-256-GCM(PKCS#8), kid as associated data
    public_jwk     TEXT NOT NULL,
    public_pem     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,    -- published from here on
    activates_at   BIGINT NOT NULL,    -- signs from here on
    deactivates_at BIGINT,             -- stops signing (superseded)
    retires_at     BIGINT              -- unpublished from here on
);

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY NOT NULL,
    name                       TEXT NOT NULL,
    public                     BOOLEAN NOT NULL,
    secret_hash                BLOB,
    previous_secret_hash       BLOB,
    previous_secret_expires_at BIGINT,
    grants                     TEXT NOT NULL,   -- JSON array
    scopes                     TEXT NOT NULL,   -- JSON array
    audiences                  TEXT NOT NULL,   -- JSON array
    roles                      TEXT NOT NULL,   -- JSON array
    redirect_uris              TEXT NOT NULL,   -- JSON array
    post_logout_redirect_uris  TEXT NOT NULL,   -- JSON array
    pkce                       TEXT NOT NULL,
    jwks                       TEXT,            -- public keys for private_key_jwt
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

-- Change counters: every write to keys or clients bumps one in the same transaction, and each
-- server polls them to invalidate its in-memory copies.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('keys_version', 0), ('clients_version', 0);

-- Leases so one process among many runs each scheduled job.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY NOT NULL,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO leases (name, holder, expires_at) VALUES ('key_rotation', '', 0), ('prune', '', 0), ('keys', '', 0);
