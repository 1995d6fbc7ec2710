-- The audit trail: append-only, each event linked to the previous one by a keyed hash
-- (HMAC-SHA256 under a key derived from the master key), so an edited, inserted or deleted
-- event breaks the chain (`sigil audit verify`).
CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,   -- 1, 2, 3, ... without gaps
    at        BIGINT NOT NULL,      -- Unix seconds
    kind      TEXT NOT NULL,        -- e.g. refresh_token.reuse, user.disable
    actor     TEXT NOT NULL,        -- cli, system, client:<id>, user:<id>, anonymous
    subject   TEXT,                 -- what it concerns: a user id, client id, kid, ...
    client_id TEXT,
    details   TEXT NOT NULL,        -- JSON object; never a secret or a token
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);

-- Appends take this row's lock so the chain has one head across processes.
INSERT INTO leases (name, holder, expires_at) VALUES ('audit', '', 0);
