-- The TOTP second factor (RFC 6238). The shared secret is sealed with AES-256-GCM under the
-- master key, the row's user id bound as associated data, so a database read yields no secret
-- and a sealed secret moved to another user's row does not open.
CREATE TABLE totp_factors (
    user_id      TEXT PRIMARY KEY NOT NULL,
    secret       BLOB NOT NULL,      -- nonce || ciphertext || tag
    created_at   BIGINT NOT NULL
);
-- Single-use recovery codes: only an HMAC-SHA256 of each, under a key derived from the master
-- key; a code is deleted when it is used.
CREATE TABLE totp_recovery_codes (
    user_id      TEXT NOT NULL,
    code_hash    BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
-- The methods a session's sign-in used (OIDC amr), a JSON list; sessions from before remember
-- a password only.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '["pwd"]';
