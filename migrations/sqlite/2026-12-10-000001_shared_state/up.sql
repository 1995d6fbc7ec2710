-- PostgreSQL gets the shared_state tables here. A SQLite database serves one server, which keeps
-- that state in process, so there is nothing to create.
SELECT 1;
