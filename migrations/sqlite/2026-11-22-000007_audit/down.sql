DROP TABLE audit_events;
DELETE FROM leases WHERE name = 'audit';
