-- Roles bundle permissions; APIs (resource servers) declare the permissions that belong to their
-- audience. Users and clients keep naming their roles in their `roles` JSON lists.
CREATE TABLE roles (
    name         TEXT PRIMARY KEY NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    permissions  TEXT NOT NULL DEFAULT '[]',   -- JSON list, sorted, unique
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE TABLE apis (
    audience     TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    permissions  TEXT NOT NULL DEFAULT '[]',   -- JSON list, sorted, unique
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
-- Bumped by every change to `roles` or `apis`; servers reload both when it moves.
INSERT INTO meta (name, value) VALUES ('authz_version', 0);
-- Every role a user or client held before roles had permissions becomes a role without any, so
-- existing memberships stay valid.
INSERT INTO roles (name, description, permissions, created_at, updated_at)
SELECT DISTINCT held.value, '', '[]', CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
FROM (SELECT j.value AS value FROM users, json_each(users.roles) AS j
      UNION SELECT j.value AS value FROM clients, json_each(clients.roles) AS j) AS held
WHERE held.value <> 'sigil-admin';
