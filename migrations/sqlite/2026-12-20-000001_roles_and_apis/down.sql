DELETE FROM meta WHERE name = 'authz_version';
DROP TABLE apis;
DROP TABLE roles;
