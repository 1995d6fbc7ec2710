DROP TABLE leases;
DROP TABLE meta;
DROP TABLE clients;
DROP TABLE signing_keys;
