DELETE FROM meta WHERE name = 'users_version';
DROP TABLE users;
