-- One row that /readyz rewrites (at most once a second per process) to learn whether the
-- database commits writes: a full disk or a read-only file or volume still answers reads.
CREATE TABLE heartbeat (
    id  INTEGER PRIMARY KEY NOT NULL,
    at  BIGINT NOT NULL     -- Unix milliseconds of the last write probe
);
INSERT INTO heartbeat (id, at) VALUES (1, 0);
