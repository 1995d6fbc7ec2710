-- Short-lived state every replica shares when no Redis is configured (cache::postgres): consent
-- screens, authorization codes, login counters and locks, revocation markers, used assertion
-- ids. A row whose expires_at (Unix seconds) has passed is ignored by every read and deleted by
-- the prune job. A logged table: revocations must survive a crash.
CREATE TABLE shared_state (
    key         TEXT PRIMARY KEY NOT NULL,
    value       BYTEA,              -- put/take/get; NULL for markers and counters
    count       BIGINT NOT NULL,    -- incr counters; 0 otherwise
    expires_at  BIGINT NOT NULL
);
CREATE INDEX shared_state_expires_at ON shared_state (expires_at);

-- GCRA rate limits: the theoretical arrival time of each key, in Unix microseconds. A row whose
-- tat has passed is the same as none, and is deleted by the prune job.
CREATE TABLE shared_rate_limits (
    key         TEXT PRIMARY KEY NOT NULL,
    tat         BIGINT NOT NULL,
    allowed     BOOLEAN NOT NULL    -- whether the last request was let through
);
CREATE INDEX shared_rate_limits_tat ON shared_rate_limits (tat);
