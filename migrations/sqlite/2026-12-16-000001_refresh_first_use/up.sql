-- PostgreSQL gets the sigil_refresh_first_use function here; SQLite rotates in one
-- transaction of plain statements, so there is nothing to create.
SELECT 1;
